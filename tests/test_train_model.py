import pytest
import torch

from prnet.model import PRNet, PRNetConfig, count_parameters, create_model, list_models, model_from_config

ENCODER_SHAPES = [(32, 128), (32, 128), (64, 64), (64, 64), (128, 32), (128, 32), (256, 16), (256, 16), (512, 8), (512, 8)]
DECODER_SHAPES = [(512, 8), (256, 16), (256, 16), (256, 16), (128, 32), (128, 32), (128, 32), (64, 64), (64, 64),
                  (64, 64), (32, 128), (32, 128), (16, 256), (16, 256), (3, 256), (3, 256), (3, 256)]


def test_full_model_parameter_count_and_every_layer_shape():
    torch.manual_seed(0)
    model = create_model("prnet").eval()
    assert count_parameters(model) == 13_353_618
    assert all(m.bias is None for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))
    shapes = []
    layers = [model.stem, *model.encoder, *model.decoder]
    hooks = [layer.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:]))) for layer in layers]
    with torch.no_grad():
        out = model(torch.rand(1, 3, 256, 256))
    for hook in hooks:
        hook.remove()
    expected = [(16, 256, 256)] + [(c, s, s) for c, s in ENCODER_SHAPES + DECODER_SHAPES]
    assert shapes == expected
    assert out.shape == (1, 3, 256, 256) and 0.0 <= out.min() and out.max() <= 1.0
    assert model.config.output_scale == pytest.approx(281.6)


@pytest.mark.parametrize("name", list_models())
def test_registered_models_keep_the_input_size_and_round_trip_their_config(name):
    torch.manual_seed(0)
    model = create_model(name, input_size=64).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 3, 64, 64)
    rebuilt = model_from_config(model.config.to_dict())
    assert rebuilt.config == model.config and count_parameters(rebuilt) == count_parameters(model)


def test_width_scales_parameters_quadratically():
    full, half = count_parameters(PRNet(PRNetConfig())), count_parameters(create_model("prnet-half"))
    assert 0.24 < half / full < 0.26
