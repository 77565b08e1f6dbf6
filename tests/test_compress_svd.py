import pytest
import torch
from torch import nn

from prnet.compress import svd
from prnet.compress.macs import layer_costs, total_macs
from prnet.export.parity import check_parity, rounding_tolerance
from tests.compress_fixtures import awake_model
from prnet.io import PrnetInputError

LAYERS = {
    "conv4x4-s2-bias": lambda: nn.Conv2d(8, 12, 4, 2, padding=1, bias=True),
    "conv3x3": lambda: nn.Conv2d(8, 12, 3, 1, padding=1, bias=False),
    "deconv4x4-s2": lambda: nn.ConvTranspose2d(8, 12, 4, 2, padding=1, bias=True),
    "deconv4x4-s1": lambda: nn.ConvTranspose2d(8, 12, 4, 1),
}


@pytest.mark.parametrize("scheme", svd.SCHEMES)
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_full_rank_factorization_is_exact(kind, scheme):
    torch.manual_seed(0)
    layer = LAYERS[kind]()
    x = torch.randn(2, 8, 9, 9)
    full = min(svd.weight_matrix(layer, scheme).shape)
    pair = svd.factorize(layer, scheme, full)
    assert pair.rank == full
    with torch.no_grad():  # the pair's float32 rounding (two layers) bounds the SVD's own (a backward error of
        check_parity(pair(x), layer(x), rounding_tolerance(pair, x), kind)  # ~eps * rank per weight) as well


@pytest.mark.parametrize("scheme", svd.SCHEMES)
def test_low_rank_weight_is_recovered_at_its_rank(scheme):
    torch.manual_seed(1)
    layer = nn.Conv2d(16, 16, 3, padding=1, bias=False)
    a, b = torch.randn(16, 2), torch.randn(2, 16 * 9)  # rank 2 in the spatial_first unfolding
    with torch.no_grad():
        layer.weight.copy_((a @ b).reshape(16, 16, 3, 3))
    s = torch.linalg.svdvals(svd.weight_matrix(layer, "spatial_first"))
    assert svd.rank_for_energy(s, 0.999999, multiple=1) == 2
    pair = svd.factorize(layer, "spatial_first", 2)
    x = torch.randn(1, 16, 8, 8)
    with torch.no_grad():  # a @ b rounded to float32 is rank 2 up to ~eps per weight: dropped by the truncation
        check_parity(pair(x), layer(x), rounding_tolerance(pair, x), f"rank 2, {scheme}")


def test_energy_plan_skips_thin_layers_and_saves_macs():
    model = awake_model(64)
    rounded = {p.name: p for p in svd.apply(model, svd.SvdConfig(energy=0.5, input_size=64)).layers}
    tail = rounded["decoder.16.deconv"]  # 3 channels: a rank rounded up to 8 saves nothing
    assert tail.rank == 0 and tail.status.startswith("kept")
    result = svd.apply(model, svd.SvdConfig(energy=0.5, input_size=64, rank_multiple=1))
    factorized = [p for p in result.layers if p.rank]
    assert factorized and all(p.macs_after <= 0.9 * p.macs_before for p in factorized)
    assert total_macs(result.model, 64) < total_macs(model, 64)
    x = torch.rand(1, 3, 64, 64)
    assert result.model(x).shape == model(x).shape
    assert any(p.rank for p in svd.apply(model, svd.SvdConfig(energy=0.5, input_size=64, skip=("decoder.*",))).layers
               if p.name.startswith("encoder"))


def test_parameter_target_counts_the_layers_a_skip_pattern_keeps_whole():
    model = awake_model(64).eval()
    images = torch.rand(4, 3, 64, 64)
    skip = ("encoder.*",)
    result = svd.apply(model, svd.parse_svd_spec("params:0.6", input_size=64, rank_multiple=1, fit="responses",
                                                 skip=skip), lambda m: m(images))
    params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert params(result.model) <= 0.6 * params(model) * 1.02  # the share is of the whole model
    encoder = [p for p in result.layers if p.name.startswith("encoder")]
    assert encoder and all(p.rank == 0 and "skip" in p.status for p in encoder)
    assert any(p.rank for p in result.layers if p.name.startswith("decoder"))
    assert result.config.describe() == "params 0.6, fit to responses, whole: encoder.*"


def test_global_mac_target_is_met():
    model = awake_model(64)
    before = total_macs(model, 64)
    result = svd.apply(model, svd.parse_svd_spec("macs:0.6", input_size=64, rank_multiple=1))
    assert total_macs(result.model, 64) <= 0.6 * before * 1.001
    assert result.energy_used is not None and 0 < result.energy_used < 1


def test_plan_rebuilds_structure_for_saved_weights():
    model = awake_model(32)
    result = svd.apply(model, svd.SvdConfig(energy=0.6, input_size=32, rank_multiple=1))
    rebuilt = svd.apply_plan(awake_model(32, seed=5), result.plan, from_weights=False)
    rebuilt.load_state_dict(result.model.state_dict())
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(rebuilt(x), result.model(x), rtol=0, atol=0)  # same structure, weights and code


@pytest.mark.parametrize("spec", ["1.5", "macs:0", "flops:0.5", "abc"])
def test_bad_svd_spec_is_a_clear_error(spec):
    with pytest.raises(PrnetInputError):
        svd.parse_svd_spec(spec)


def test_macs_of_the_full_prnet_match_the_paper_network():
    from prnet.export.deploy import to_deployment
    from prnet.model import create_model

    model = create_model("prnet").eval()
    costs = layer_costs(model, 256)
    assert 4.10e9 < sum(c.macs for c in costs) < 4.16e9  # 4.13 GMACs (TOOLCHAIN.md)
    assert sum(c.kind == "deconv" for c in costs) == 17
    deployed = total_macs(to_deployment(model), 256)  # sub-pixel phases: the same work, plus the folded shortcuts
    assert abs(deployed - sum(c.macs for c in costs)) / deployed < 0.01


# --- fit="responses": PCA of each layer's output on calibration images ----------------------------------
def _correlated_inputs(seed: int, channels: int = 8, size: int = 24) -> torch.Tensor:
    """Smooth inputs whose channels mix 3 sources (real feature maps are correlated like this), so a
    layer's output lies close to a 3-dimensional subspace of its channels."""
    g = torch.Generator().manual_seed(seed)
    sources = nn.functional.interpolate(torch.randn(16, 3, 2, 2, generator=g), size=(size, size), mode="bilinear")
    mixing = torch.randn(channels, 3, generator=g)
    return torch.einsum("cs,nshw->nchw", mixing, sources) + 0.01 * torch.randn(16, channels, size, size, generator=g)


def _responses(layer: nn.Module, x: torch.Tensor) -> svd.Responses:
    wrapper = nn.Sequential(layer)
    return svd.collect_responses(wrapper, lambda model: model(x), ["0"])["0"]


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_response_fit_at_full_rank_is_exact(kind):
    torch.manual_seed(2)
    layer = LAYERS[kind]()
    x = torch.randn(3, 8, 9, 9)
    pair = svd.factorize(layer, "spatial_first", layer.out_channels, _responses(layer, x))
    with torch.no_grad():
        check_parity(pair(x), layer(x), rounding_tolerance(pair, x), kind)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_response_fit_beats_the_weight_svd_on_its_images(kind):
    torch.manual_seed(3)
    layer = LAYERS[kind]()
    x = _correlated_inputs(3)
    fit = _responses(layer, x)
    with torch.no_grad():
        y = layer(x)
        by_responses = (svd.factorize(layer, "spatial_first", 3, fit)(x) - y).pow(2).mean().item()
        by_weights = (svd.factorize(layer, "spatial_first", 3)(x) - y).pow(2).mean().item()
    # Eckart-Young on the centred outputs: never worse than the weight SVD on these images (up to rounding); the
    # 3 smooth sources span most of a stride-1 output at rank 3 (a stride-2 deconv's 4 phases mix 4x as many)
    assert by_responses < (0.6 if kind == "deconv4x4-s2" else 0.25) * by_weights
    spectrum = fit.principal()[0]
    assert torch.all(spectrum[:-1] >= spectrum[1:]) and fit.count == y.shape[0] * y.shape[2] * y.shape[3]


def test_response_fit_meets_a_parameter_target_and_needs_images():
    model = awake_model(32).eval()
    config = svd.parse_svd_spec("params:0.5", input_size=32, rank_multiple=1, fit="responses")
    with pytest.raises(PrnetInputError, match="calibration images"):
        svd.apply(model, config)
    images = torch.rand(4, 3, 32, 32)
    result = svd.apply(model, config, lambda m: m(images))
    params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert params(result.model) <= 0.5 * params(model) * 1.02
    assert all(p.scheme == "spatial_first" for p in result.layers if p.rank)
    weights = svd.apply(model, svd.parse_svd_spec("params:0.5", input_size=32, rank_multiple=1))
    with torch.no_grad():  # on the images it was fit to, the whole model stays closer to the original
        y = model(images)
        assert (result.model(images) - y).abs().mean() < (weights.model(images) - y).abs().mean()
    with pytest.raises(PrnetInputError, match="fit"):
        svd.SvdConfig(fit="activations")
