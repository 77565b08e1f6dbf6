"""The deployment form (BN folded, transposed convs as plain convs, pixel output) equals the PRNet."""

import pytest
import torch
from torch import nn

from prnet.export.deploy import (UPSAMPLE_MODES, DeployConfig, convert_transposed, deployment_deviation,
                           to_deployment)
from prnet.export.parity import FLOAT64_EPS, check_deviation, check_parity, rounding_tolerance
from tests.export_fixtures import randomize_batchnorm
from prnet.model import PRNetConfig, TransposedConvBN, create_model


@pytest.fixture(scope="module")
def quarter_model():
    torch.manual_seed(0)
    model = create_model("prnet-quarter", input_size=128)
    return randomize_batchnorm(model, torch.rand(4, 3, 128, 128), damping=2.0)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("upsample", UPSAMPLE_MODES)
def test_transposed_conv_rewrite_is_exact(stride, upsample):
    torch.manual_seed(stride)
    layer = TransposedConvBN(6, 5, 4, stride, PRNetConfig(), torch.nn.functional.relu)
    x = torch.randn(2, 6, 9, 7, dtype=torch.float64)
    randomize_batchnorm(layer.double(), x)
    with torch.no_grad():  # the converters work in float64 (to_deployment casts to the model's dtype at the end)
        expected, got = layer(x), convert_transposed(layer, upsample)(x)
    assert got.shape == expected.shape == (2, 5, 9 * stride, 7 * stride)
    assert (expected > 0).double().mean() > 0.2  # the ReLU is not trivially all-zero
    check_parity(got, expected, rounding_tolerance(layer, x, eps=FLOAT64_EPS), "float64 rewrite")


@pytest.mark.parametrize("upsample", UPSAMPLE_MODES)
def test_deployment_equals_prnet_in_pixels(quarter_model, upsample):
    torch.set_num_threads(1)
    deployed = to_deployment(quarter_model, DeployConfig(upsample=upsample))
    images = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        pixels = deployed(images)
    assert pixels.shape == (2, 3, 128, 128)
    assert pixels.std() > 1.0  # the output is not saturated: the comparison means something
    max_dev, mean_dev = deployment_deviation(quarter_model, deployed, images)
    tolerance = rounding_tolerance(quarter_model, images, output_scale=quarter_model.config.output_scale)
    check_deviation(max_dev, mean_dev, tolerance, f"deployment form ({upsample})")
    assert mean_dev < max_dev + 1e-12
    kinds = {type(m) for m in deployed.modules()}
    assert nn.ConvTranspose2d not in kinds and nn.BatchNorm2d not in kinds
    assert deployed.output_scale == pytest.approx(128 * 1.1)


def test_deployment_is_exact_in_float64():
    """Undamped (chaotic) BN statistics: in FP64 the rewrite must agree to float64 rounding (~1e-11 px), so any
    wrong tap, pad or fold shows up at once."""
    torch.manual_seed(3)
    model = create_model("prnet-quarter", input_size=64)
    model = randomize_batchnorm(model, torch.rand(4, 3, 64, 64), damping=1.0).double()
    images = torch.rand(2, 3, 64, 64, dtype=torch.float64)
    tolerance = rounding_tolerance(model, images, eps=FLOAT64_EPS, output_scale=model.config.output_scale)
    for upsample in UPSAMPLE_MODES:
        deployed = to_deployment(model, upsample=upsample)
        assert next(deployed.parameters()).dtype == torch.float64
        max_dev, _ = deployment_deviation(model, deployed, images)
        check_deviation(max_dev, None, tolerance, f"float64 deployment form ({upsample})")


def test_to_deployment_leaves_the_model_unchanged(quarter_model):
    before = {k: v.clone() for k, v in quarter_model.state_dict().items()}
    quarter_model.train()
    to_deployment(quarter_model)
    assert quarter_model.training  # mode untouched
    quarter_model.eval()
    for key, value in quarter_model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_deployment_exports_with_torch_export(quarter_model):
    deployed = to_deployment(quarter_model)
    program = torch.export.export(deployed, (torch.rand(1, 3, 128, 128),))
    ops = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert not any("conv_transpose" in op or "batch_norm" in op for op in ops), ops


def test_unknown_upsample_mode_is_rejected():
    with pytest.raises(ValueError, match="upsample"):
        DeployConfig(upsample="bilinear")


@pytest.mark.slow
def test_full_size_prnet_deployment():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = randomize_batchnorm(create_model("prnet"), torch.rand(2, 3, 256, 256), damping=2.0)
    images = torch.rand(1, 3, 256, 256)
    max_dev, mean_dev = deployment_deviation(model, to_deployment(model), images)
    check_deviation(max_dev, mean_dev, rounding_tolerance(model, images, output_scale=model.config.output_scale),
                    "full PRNet deployment form")
