"""TorchRunner: the Runner contract, batching, checkpoints, errors."""

import numpy as np
import pytest
import torch

from prnet.checkpoint import LoadedModel, save_checkpoint
from prnet.io import PrnetInputError
from prnet.export.parity import check_parity, rounding_tolerance, ulps_tolerance
from prnet.model import create_model
from prnet.runner import Runner, TorchRunner
from tests.predict_fixtures import disk_layout


@pytest.fixture(scope="module")
def loaded():
    torch.manual_seed(0)
    model = create_model("prnet-quarter", input_size=64).eval()
    return LoadedModel(model=model, config=model.config, layout=disk_layout(64))


def test_runner_matches_model_times_output_scale(loaded):
    runner = TorchRunner(loaded, device="cpu", batch_size=2)
    assert isinstance(runner, Runner)
    assert runner.input_size == 64 and runner.layout is loaded.layout and "cpu" in runner.name
    images = np.random.default_rng(0).uniform(0, 1, (5, 64, 64, 3)).astype(np.float32)
    maps = runner(images)
    with torch.no_grad():
        expected = loaded.model(torch.from_numpy(images).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    assert maps.shape == (5, 64, 64, 3) and maps.dtype == np.float32
    # batches of 2 vs 5 at once: the conv kernels may sum in another order (float32 rounding, not bit-exact)
    tolerance = rounding_tolerance(loaded.model, images, output_scale=loaded.config.output_scale, channels_last=True)
    check_parity(maps, expected * loaded.config.output_scale, tolerance, "batch 2 vs the model")
    # batch size does not change results
    check_parity(TorchRunner(loaded, device="cpu", batch_size=16)(images), maps, tolerance, "batch 16 vs batch 2")
    assert runner(images[:0]).shape == (0, 64, 64, 3)


def test_runner_from_checkpoint_path(tmp_path, loaded):
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, loaded.model, loaded.layout)
    runner = TorchRunner(path, device="cpu")
    assert runner.layout.layout_id == loaded.layout.layout_id
    images = np.full((1, 64, 64, 3), 0.5, np.float32)
    np.testing.assert_array_equal(runner(images), TorchRunner(loaded, device="cpu")(images))  # same weights, same path


def test_runner_from_module_with_pixel_output(loaded):
    runner = TorchRunner.from_module(loaded.model, loaded.layout, 64, output_scale=1.0, device="cpu")
    images = np.full((1, 64, 64, 3), 0.5, np.float32)
    scaled = TorchRunner(loaded, device="cpu")(images)
    check_parity(scaled, runner(images) * loaded.config.output_scale,  # the same model output, scaled twice
                 ulps_tolerance(scaled, 2, reason="x output_scale in the runner and here"), "output_scale")


def test_runner_errors(tmp_path, loaded):
    runner = TorchRunner(loaded, device="cpu")
    with pytest.raises(ValueError, match="64, 64, 3"):
        runner(np.zeros((1, 32, 32, 3), np.float32))
    with pytest.raises(PrnetInputError):
        TorchRunner(tmp_path / "missing.pt")
    if not torch.cuda.is_available():
        with pytest.raises(PrnetInputError, match="CUDA"):
            TorchRunner(loaded, device="cuda")
