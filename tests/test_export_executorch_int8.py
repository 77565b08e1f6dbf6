"""ExecuTorch INT8 of a compressed model through export_model, in seconds: the quick stand-in for
tests/test_chain.py's ExecuTorch case (opt-in, PRNET_TEST_HEAVY=1), which lowers the whole SVD-factorized
prnet-quarter (PT2E + XNNPACK lowering of ~100 quantized convs: about 2 minutes).

The model is a small network made of PRNet's deployment-form pieces (3x3 convs, a stride-2 conv, a residual add, an
SVD low-rank pair, the sub-pixel phase interleave, sigmoid x output scale), wrapped as a compressed checkpoint
(pixel output, an SVD plan, a stored INT8): export_model must pick INT8 for ExecuTorch by itself, calibrate the
XNNPACK quantizer on the parity images, lower it and pass its parity check; the .pte must load with its metadata
and stay within the chain's INT8 budget of the compressed PyTorch model while really being quantized."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from prnet.export.formats import module_available

pytestmark = pytest.mark.skipif(not module_available("executorch"), reason="executorch is not installed")

SIZE = 32


class MiniDeployed(nn.Module):
    """PRNet's deployment-form op set at 32 px: conv/ReLU stem, stride-2 conv, residual block whose 3x3 conv is an
    SVD pair (3x3 to rank 4, then 1x1), a stride-2 upsample as four phase convs + interleave, sigmoid x scale."""

    def __init__(self, output_scale: float):
        super().__init__()
        torch.manual_seed(7)
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.low_rank = nn.Sequential(nn.Conv2d(16, 4, 3, padding=1, bias=False), nn.Conv2d(4, 16, 1))
        self.phases = nn.ModuleList(nn.Conv2d(16, 8, 3, padding=1) for _ in range(4))
        self.head = nn.Conv2d(8, 3, 3, padding=1)
        self.output_scale = output_scale

    def forward(self, x):
        from prnet.export.deploy import interleave_phases

        y = self.down(self.stem(x))
        y = torch.relu(self.low_rank(y) + y)
        y = torch.relu(interleave_phases([phase(y) for phase in self.phases]))
        return torch.sigmoid(self.head(y)) * self.output_scale


def compressed_mini_model():
    """A LoadedModel as `prnet compress --svd --int8` leaves it: pixel output, an SVD plan, a stored INT8 ONNX.
    (ExecuTorch only needs to know that INT8 was asked for: it quantizes with PT2E, never reads the ONNX bytes.)"""
    from prnet.checkpoint import LoadedModel
    from prnet.model import MODEL_CONFIGS
    from tests.train_fixtures import tiny_layout

    config = dataclasses.replace(MODEL_CONFIGS["prnet-quarter"], input_size=SIZE)
    compression = {"svd_plan": [{"name": "low_rank", "rank": 4}],
                   "int8_onnx": torch.frombuffer(bytearray(b"QDQ model, not read by ExecuTorch"), dtype=torch.uint8)}
    return LoadedModel(model=MiniDeployed(config.output_scale).eval(), config=config, layout=tiny_layout(SIZE),
                       compression=compression)


def test_executorch_exports_a_compressed_model_in_int8(tmp_path):
    from prnet.export.api import export_model
    from prnet.export.parity import check_parity, pixel_budget, procedural_images
    from prnet.export.runners import ExecuTorchRunner, load_runner
    from prnet.runner import TorchRunner

    loaded = compressed_mini_model()
    assert loaded.int8_onnx is not None and loaded.output_scale == 1.0
    result = export_model("executorch", loaded, tmp_path / "m.pte", parity_count=4, latency_runs=0)
    assert result.precision == "int8" and result.status == "ok"  # INT8 chosen for the compressed model
    notes = " ".join(result.notes)
    assert "compressed checkpoint: svd (1 layers) + int8" in notes and "XNNPACK INT8 (PT2E) calibrated on" in notes
    assert "XNNPACK delegate:" in notes

    artifact = load_runner(result.path)
    assert isinstance(artifact, ExecuTorchRunner) and artifact.metadata.precision == "int8"
    assert artifact.input_size == SIZE and artifact.layout.layout_id == loaded.layout.layout_id
    images = procedural_images(4, SIZE, seed=3)
    reference = TorchRunner(loaded, device="cpu")  # the compressed PyTorch model
    _, error = check_parity(artifact(images), reference(images),
                            pixel_budget(16.0, 2.0, reason="XNNPACK INT8 calibrated on the parity images"),
                            "ExecuTorch INT8 vs compressed PyTorch")
    assert error > 0  # quantized, not a float program
    assert np.isfinite(artifact(images[:1])).all()
