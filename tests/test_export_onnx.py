"""ONNX export: deployment-form graph, embedded metadata, parity against FP32 PyTorch, atomic writes."""

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from prnet.export.api import export_model
from prnet.export.formats import format_for_path
from prnet.export.parity import FLOAT16_EPS, check_deviation, check_parity, parity_images, procedural_images
from prnet.export.runners import OnnxRuntimeRunner, load_runner
from tests.export_fixtures import export_tolerance, make_checkpoint
from prnet.checkpoint import load_model
from prnet.io import PrnetInputError
from prnet.runner import TorchRunner
from tests.train_fixtures import make_dataset


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("export") / "quarter.pt")


@pytest.fixture(scope="module")
def onnx_fp32(checkpoint):
    return export_model("onnx", checkpoint, latency_runs=1)


def test_onnx_fp32_matches_pytorch_and_is_plain_convs(onnx_fp32, checkpoint):
    result = onnx_fp32
    assert result.status == "ok" and result.path == checkpoint.with_suffix(".onnx") and result.path.is_file()
    check_deviation(result.max_deviation_px, result.mean_deviation_px, export_tolerance(checkpoint), "ONNX fp32")
    assert result.size_bytes == result.path.stat().st_size
    ops = {node.op_type for node in onnx.load(str(result.path)).graph.node}
    assert "Conv" in ops and not ops & {"ConvTranspose", "BatchNormalization", "Pad"}
    leftovers = [p.name for p in checkpoint.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no temporary files left behind


def test_onnx_runner_reads_everything_from_the_file(onnx_fp32, checkpoint):
    loaded = load_model(checkpoint)
    runner = load_runner(onnx_fp32.path)
    assert isinstance(runner, OnnxRuntimeRunner) and runner.fixed_batch == 1
    assert runner.input_size == 128 and runner.layout.layout_id == loaded.layout.layout_id
    np.testing.assert_array_equal(runner.layout.face_mask, loaded.layout.face_mask)
    images = procedural_images(3, 128, seed=5)  # batch 3 through a batch-1 model: chunked
    maps = runner(images)
    assert maps.shape == (3, 128, 128, 3) and maps.dtype == np.float32
    reference = TorchRunner(checkpoint, device="cpu")(images)
    check_parity(maps, reference, export_tolerance(checkpoint, images), "ONNX runner")
    assert reference.std() > 1.0  # pixel-scale outputs, not a trivially constant map
    assert runner.metadata.project_version and runner.metadata.model_name == "prnet-quarter"


def test_onnx_dynamic_batch_and_fp16(checkpoint, tmp_path):
    result = export_model("onnx", checkpoint, tmp_path / "dyn16.onnx", precision="fp16",
                          options={"dynamic_batch": True}, parity_count=4, latency_runs=0)
    model = onnx.load(str(result.path))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # I/O stays float32
    # one input name for every ONNX the project writes (prnet.compress's INT8/FP32 graphs too: see its tests)
    assert (model.graph.input[0].name, model.graph.output[0].name) == ("image", "posmap")
    runner = load_runner(result.path)
    assert runner.fixed_batch is None and runner(procedural_images(5, 128)).shape == (5, 128, 128, 3)
    assert result.max_deviation_px > 0  # fp16 weights and activations: float16 rounding, not float32
    check_deviation(result.max_deviation_px, result.mean_deviation_px,
                    export_tolerance(checkpoint, eps=FLOAT16_EPS, parity_count=4), "ONNX fp16")


def test_parity_failure_can_keep_the_artifact(checkpoint, tmp_path):
    """(Without keep_on_mismatch nothing is written: tests/test_export_cli.py checks that and the exit code.)"""
    target = tmp_path / "strict.onnx"
    loaded = load_model(checkpoint)  # an in-memory model in training mode and float64: exported, not altered
    loaded.model.double().train()
    kept = export_model("onnx", loaded, target, tolerance_px=(1e-12, 1e-13), keep_on_mismatch=True,
                        parity_count=2, latency_runs=0)
    assert kept.status == "parity-failed" and target.is_file() and "tolerance" in kept.notes[-1]
    assert loaded.model.training and next(loaded.model.parameters()).dtype == torch.float64


def test_onnx_without_metadata_or_corrupt_is_a_clear_error(onnx_fp32, tmp_path):
    model = onnx.load(str(onnx_fp32.path))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    with pytest.raises(PrnetInputError, match="prnet export"):
        load_runner(bare)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not an onnx model")
    with pytest.raises(PrnetInputError, match="corrupt.onnx"):
        load_runner(corrupt)
    with pytest.raises(PrnetInputError, match="unknown model file type"):
        format_for_path(tmp_path / "model.h5")
    with pytest.raises(PrnetInputError, match="not found"):
        load_runner(tmp_path / "missing.onnx")


def test_load_runner_dispatches_checkpoints_to_torch(checkpoint):
    assert isinstance(load_runner(checkpoint, device="cpu"), TorchRunner)


def test_parity_images_from_dataset_folder_and_procedural(tmp_path):
    root = make_dataset(tmp_path / "ds", n=5, size=32)
    images, description = parity_images(root, 3, 128)
    assert images.shape == (3, 128, 128, 3) and "dataset" in description
    assert images.dtype == np.float32 and 0 <= images.min() and images.max() <= 1
    images, description = parity_images(root / "samples", 10, 64)  # a plain image folder
    assert images.shape == (5, 64, 64, 3) and "images of" in description
    procedural, description = parity_images(None, 2, 64)
    assert procedural.shape == (2, 64, 64, 3) and "procedural" in description
    with pytest.raises(PrnetInputError, match="not found"):
        parity_images(tmp_path / "nothing", 2, 64)


def test_parity_counts_face_pixels_only(onnx_fp32, checkpoint, monkeypatch):
    """The map outside the face mask is never trained nor read: a runner that is exact on the face and wild
    elsewhere passes parity, one that is off on a single face pixel does not."""
    import prnet.export.runners as runners

    loaded = load_model(checkpoint)
    face = loaded.layout.face_mask
    assert face.any() and (~face).any()
    exact = OnnxRuntimeRunner

    class OffFace(exact):
        def __call__(self, images):
            out = super().__call__(images).copy()
            out[:, ~face] += 500.0
            return out

    class OnFace(exact):
        def __call__(self, images):
            out = super().__call__(images).copy()
            v, u = np.argwhere(face)[0]
            out[:, v, u] += 500.0
            return out

    monkeypatch.setattr(runners, "OnnxRuntimeRunner", OffFace)
    assert export_model("onnx", checkpoint, out=checkpoint.parent / "off.onnx", latency_runs=1).status == "ok"
    monkeypatch.setattr(runners, "OnnxRuntimeRunner", OnFace)
    with pytest.raises(Exception, match="differs from FP32"):
        export_model("onnx", checkpoint, out=checkpoint.parent / "on.onnx", latency_runs=1)
