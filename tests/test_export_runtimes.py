"""OpenVINO, Core ML, ExecuTorch and TensorRT exports behind the one Runner interface."""

import sys
from pathlib import Path

import pytest

from prnet.export.api import export_model
from prnet.export.formats import (FORMATS, TOLERANCES_PX, ExportUnavailable, format_for_path, get_format,
                                  module_available)
from prnet.export.metadata import ExportMetadata
from prnet.export.parity import (FLOAT16_EPS, check_deviation, check_parity, pixel_budget,
                                 procedural_images)
from prnet.export.runners import OpenVINORunner, load_runner
from prnet.export.tensorrt_export import read_engine_file, write_engine_file
from tests.export_fixtures import export_tolerance, make_checkpoint
from prnet.checkpoint import load_model
from prnet.io import PrnetInputError
from prnet.runner import TorchRunner

HAS_TENSORRT = module_available("tensorrt")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("runtimes") / "quarter.pt")


def test_formats_are_data_found_by_name():
    names = [spec.name for spec in FORMATS]
    assert len(names) == len(set(names)) and {"onnx", "openvino", "coreml", "executorch", "tensorrt"} <= set(names)
    for spec in FORMATS:
        assert get_format(spec.name) is spec and spec.install and spec.precisions
    assert format_for_path(Path("a/model.engine")).name == "tensorrt"
    assert format_for_path(Path("x.mlpackage")).name == "coreml"
    with pytest.raises(KeyError, match="known"):
        get_format("torchscript")


@pytest.mark.skipif(not module_available("openvino"), reason="openvino is not installed")
def test_openvino_fp32(checkpoint, tmp_path):
    result = export_model("openvino", checkpoint, tmp_path / "m_openvino", parity_count=4, latency_runs=0)
    # FP32 inference forced (the CPU default may be bf16): float32 rounding only
    check_deviation(result.max_deviation_px, result.mean_deviation_px, export_tolerance(checkpoint, parity_count=4),
                    "OpenVINO fp32")
    assert (result.path / "model.xml").is_file() and (result.path / "model.bin").is_file()
    runner = load_runner(result.path)
    assert isinstance(runner, OpenVINORunner) and runner.layout.layout_id == load_model(checkpoint).layout.layout_id
    images = procedural_images(2, 128, seed=3)
    check_parity(runner(images), TorchRunner(checkpoint, device="cpu")(images), export_tolerance(checkpoint, images),
                 "OpenVINO runner")


@pytest.mark.slow
@pytest.mark.skipif(not module_available("openvino"), reason="openvino is not installed")
def test_openvino_fp16_weights(checkpoint, tmp_path):
    half = export_model("openvino", checkpoint, tmp_path / "h_openvino", precision="fp16", parity_count=2,
                        latency_runs=0)
    assert half.size_bytes < 2.2e6  # FP32 weights take 3.5 MB
    check_deviation(half.max_deviation_px, half.mean_deviation_px,
                    export_tolerance(checkpoint, eps=FLOAT16_EPS, parity_count=2), "OpenVINO fp16 weights")


def test_openvino_int8_needs_a_quantized_onnx(checkpoint, tmp_path):
    with pytest.raises(PrnetInputError, match="--onnx"):
        export_model("openvino", checkpoint, tmp_path / "q_openvino", precision="int8")


@pytest.mark.skipif(not module_available("openvino"), reason="openvino is not installed")
def test_openvino_onnx_of_another_input_size_is_refused(checkpoint, tmp_path):
    """A 96 px student's ONNX beside a 128 px --model would be parity-checked on crops of the wrong size."""
    from prnet.export.onnx_export import build_onnx, save_onnx

    small = load_model(make_checkpoint(tmp_path / "q64.pt", input_size=64))
    save_onnx(build_onnx(small.model.eval(), 64, simplify=False), tmp_path / "q64.onnx")
    with pytest.raises(PrnetInputError, match=r"q64.onnx takes 64 px crops, the reference model \(--model\) 128 px"):
        export_model("openvino", checkpoint, tmp_path / "q_openvino", options={"onnx": str(tmp_path / "q64.onnx")})
    assert not (tmp_path / "q_openvino").exists()
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(PrnetInputError, match="bad.onnx: not a readable ONNX model"):
        export_model("openvino", checkpoint, tmp_path / "q_openvino", options={"onnx": str(tmp_path / "bad.onnx")})


@pytest.mark.skipif(not module_available("coremltools"), reason="coremltools is not installed")
def test_coreml_package_is_valid_and_compressed(checkpoint, tmp_path):
    result = export_model("coreml", checkpoint, tmp_path / "m.mlpackage", options={"weights": "int8"})
    assert result.precision == "fp16" and result.path.is_dir()
    validation = next(n for n in result.notes if n.startswith("validated"))
    assert "imageType 128x128" in validation and "conv" in validation and "conv_transpose" not in validation
    assert "constexpr_affine_dequantize" in validation and result.size_bytes < 1.3e6  # FP32 weights: 3.5 MB
    if sys.platform == "darwin":
        # int8 weights + fp16 compute, chosen by Core ML per device (CPU/GPU/ANE) and not runnable off macOS:
        # the export's own fp16 acceptance budget, not a derived bound
        check_deviation(result.max_deviation_px, result.mean_deviation_px,
                        pixel_budget(*TOLERANCES_PX["fp16"], reason="Core ML fp16 export budget (TOLERANCES_PX)"),
                        "Core ML int8 weights")
    else:
        assert result.max_deviation_px is None and any("only on macOS" in n for n in result.notes)
        with pytest.raises(ExportUnavailable, match="macOS"):
            load_runner(result.path)


@pytest.mark.skipif(sys.platform != "darwin", reason="Core ML prediction needs macOS (coremltools cannot "
                    "predict on other systems)")
def test_coreml_predictions_match_pytorch_on_macos(checkpoint, tmp_path):
    result = export_model("coreml", checkpoint, tmp_path / "m32.mlpackage", precision="fp32", parity_count=4)
    # Core ML picks CPU or GPU (Metal fast math) itself: the export's own fp32 acceptance budget (not checked
    # off macOS, so not tightened to the float32 rounding bound)
    check_deviation(result.max_deviation_px, result.mean_deviation_px,
                    pixel_budget(*TOLERANCES_PX["fp32"], reason="Core ML fp32 export budget (TOLERANCES_PX)"),
                    "Core ML fp32")


@pytest.mark.slow
@pytest.mark.skipif(not module_available("executorch"), reason="executorch is not installed")
def test_executorch_xnnpack_fp32(checkpoint, tmp_path):
    result = export_model("executorch", checkpoint, tmp_path / "m.pte", parity_count=2, latency_runs=0)
    assert "portable CPU kernels: none" in result.notes[0]
    check_deviation(result.max_deviation_px, result.mean_deviation_px, export_tolerance(checkpoint, parity_count=2),
                    "ExecuTorch fp32")
    runner = load_runner(result.path)
    assert runner.input_size == 128 and runner(procedural_images(3, 128)).shape == (3, 128, 128, 3)


def test_executorch_int8_without_hook_is_refused(checkpoint, tmp_path):
    with pytest.raises(PrnetInputError, match="quantizer hook"):
        export_model("executorch", checkpoint, tmp_path / "q.pte", precision="int8")


@pytest.mark.slow
@pytest.mark.skipif(not module_available("litert_torch"), reason="litert-torch is not installed (it needs its own "
                    "virtual environment: see export/tflite_export.py)")
def test_tflite_fp32_with_embedded_metadata(checkpoint, tmp_path):
    result = export_model("tflite", checkpoint, tmp_path / "m.tflite", parity_count=2, latency_runs=0)
    check_deviation(result.max_deviation_px, result.mean_deviation_px, export_tolerance(checkpoint, parity_count=2),
                    "TFLite fp32")
    runner = load_runner(result.path)
    assert runner.layout.layout_id == load_model(checkpoint).layout.layout_id
    assert runner(procedural_images(2, 128)).shape == (2, 128, 128, 3)


@pytest.mark.skipif(module_available("litert_torch"), reason="litert-torch is installed")
def test_tflite_missing_says_how_to_install(checkpoint, tmp_path):
    with pytest.raises(ExportUnavailable, match="litert-torch.*virtual environment"):
        export_model("tflite", checkpoint, tmp_path / "m.tflite")


@pytest.mark.skipif(HAS_TENSORRT, reason="tensorrt is installed: the unavailable path cannot be tested")
def test_tensorrt_missing_says_what_is_needed(checkpoint, tmp_path):
    with pytest.raises(ExportUnavailable, match="tensorrt.*GPU|GPU.*tensorrt"):
        export_model("tensorrt", checkpoint, tmp_path / "m.engine")
    assert not (tmp_path / "m.engine").exists()


def test_engine_container_round_trip_and_errors(checkpoint, tmp_path):
    loaded = load_model(checkpoint)
    metadata = ExportMetadata(input_size=128, output_scale=1.0, layout=loaded.layout, precision="fp16")
    path = tmp_path / "m.engine"
    write_engine_file(path, metadata, b"\x00engine-bytes")
    read_metadata, engine = read_engine_file(path)
    assert engine == b"\x00engine-bytes" and read_metadata.layout.layout_id == loaded.layout.layout_id
    path.write_bytes(b"plain TensorRT engine")
    with pytest.raises(PrnetInputError, match="not a prnet TensorRT engine"):
        read_engine_file(path)
    path.write_bytes(path.read_bytes()[:0] + b"PRNETTRT" + (10_000).to_bytes(4, "little") + b"{}")
    with pytest.raises(PrnetInputError, match="truncated"):
        read_engine_file(path)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_TENSORRT, reason="needs tensorrt and an NVIDIA GPU")
def test_tensorrt_engine_matches_pytorch(checkpoint, tmp_path):
    result = export_model("tensorrt", checkpoint, tmp_path / "m.engine", precision="fp16",
                          options={"batch": (1, 2, 4)}, parity_count=6)
    assert result.status == "ok"
    check_deviation(result.max_deviation_px, result.mean_deviation_px,
                    export_tolerance(checkpoint, eps=FLOAT16_EPS, parity_count=6), "TensorRT fp16")
    assert get_format("tensorrt").can_run_here() is None
