"""The parity tolerances (prnet.export.parity): derived from the arithmetic, wide enough for any float
implementation, and still far below what a real bug does to the output."""

import copy

import numpy as np
import pytest
import torch

from prnet.export.deploy import to_deployment
from prnet.export.parity import (FLOAT16_EPS, FLOAT32_EPS, FLOAT64_EPS, check_deviation, check_parity,
                                 pixel_budget, quantization_tolerance, reduction_depth, rounding_tolerance)
from prnet.model import create_model
from tests.export_fixtures import randomize_batchnorm

SIZE = 64


@pytest.fixture(scope="module")
def deployed():
    torch.manual_seed(0)
    model = create_model("prnet-quarter", input_size=SIZE)
    return to_deployment(randomize_batchnorm(model, torch.rand(4, 3, SIZE, SIZE), damping=2.0))


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


def test_reduction_depth_counts_the_products_per_output():
    assert reduction_depth(torch.nn.Conv2d(8, 4, 3)) == 72
    assert reduction_depth(torch.nn.Conv2d(8, 8, 3, groups=8)) == 9
    assert reduction_depth(torch.nn.ConvTranspose2d(8, 4, 4, stride=2)) == 32  # 4 of the 16 taps per output
    assert reduction_depth(torch.nn.Linear(10, 2)) == 10 and reduction_depth(torch.nn.ReLU()) == 0


def test_float32_run_is_within_its_own_rounding_tolerance(deployed, images):
    tolerance = rounding_tolerance(deployed, images)
    with torch.no_grad():
        fp32, fp64 = deployed(images), copy.deepcopy(deployed).double()(images.double())
    check_parity(fp32.double(), fp64, tolerance, "float32 vs float64")
    # the tolerance scales with the arithmetic: float16 >> float32 >> float64
    assert rounding_tolerance(deployed, images, eps=FLOAT16_EPS).max > 1000 * tolerance.max
    assert rounding_tolerance(deployed, images, eps=FLOAT64_EPS).max < 1e-6 * tolerance.max
    assert 0 < tolerance.mean < tolerance.max < 0.01  # px: far below anything a bug does


def test_real_bugs_exceed_the_tolerance_by_far(deployed, images):
    """One-pixel shift, 1 % scale, swapped input channels, a dropped tap: each must fail by >= 10x."""
    tolerance = rounding_tolerance(deployed, images)
    with torch.no_grad():
        reference = deployed(images)
        swapped = copy.deepcopy(deployed)
        first = next(m for m in swapped.modules() if isinstance(m, torch.nn.Conv2d))
        first.weight.copy_(first.weight[:, [2, 1, 0]])  # RGB read as BGR
        dropped = copy.deepcopy(deployed)
        convs = [m for m in dropped.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size[0] > 1]
        conv = convs[len(convs) // 2]
        conv.weight[:, :, 0, 0] = 0  # one kernel tap lost (a wrong pad/offset does the same to a border)
        broken = {
            "one-pixel shift": torch.roll(reference, 1, dims=-1),
            "1% scale": reference * 1.01,
            "swapped channels": swapped(images),
            "dropped tap": dropped(images),
        }
    for name, output in broken.items():
        with pytest.raises(AssertionError, match="deviation"):
            check_parity(output, reference, tolerance, name)
        assert (output - reference).abs().max().item() > 10 * tolerance.max, name


def test_quantization_tolerance_follows_the_step():
    """8-bit grids: the tolerance is in the size of the steps (not 0, not the output range), and an actual
    fake-quantized run of the layers stays within it."""
    torch.manual_seed(2)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(16, 3, 3, padding=1)).eval()
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    tolerance = quantization_tolerance(model, x, x, ["2"])
    with torch.no_grad():
        hidden = model[1](model[0](x))
        step = hidden.max() / 255  # u8 over [0, max]: the ReLU output
        w = model[2].weight
        w_step = w.abs().amax(dim=(1, 2, 3), keepdim=True) / 127
        fake = torch.nn.functional.conv2d((hidden / step).round() * step, (w / w_step).round() * w_step,
                                          model[2].bias, padding=1)
        reference = model(x)
    max_dev, mean_dev = check_parity(fake, reference, tolerance, "fake-quantized")
    assert 0 < mean_dev and tolerance.max < 0.05 * reference.abs().max().item()
    swapped = reference[:, [1, 0, 2]]  # x and y swapped (1 % scale is the size of INT8 error itself: 1/255)
    with pytest.raises(AssertionError):
        check_parity(swapped, reference, tolerance, "swapped channels")
    assert (swapped - reference).abs().max().item() > 10 * tolerance.max


def test_pixel_budget_states_its_reason_and_nan_fails():
    with pytest.raises(ValueError):
        pixel_budget(1.0, reason="")
    budget = pixel_budget(1.0, 0.1, reason="stated")
    check_deviation(0.5, 0.05, budget)
    with pytest.raises(AssertionError, match="stated"):
        check_deviation(0.5, 0.2, budget)
    with pytest.raises(AssertionError):
        check_parity(np.array([np.nan]), np.array([0.0]), budget)
    assert FLOAT32_EPS == 2.0**-23
