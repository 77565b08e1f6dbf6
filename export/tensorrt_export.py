"""TensorRT engine build (NVIDIA GPUs): deployment-form ONNX -> TensorRT Python API -> serialized engine.

FP16 (default) or FP32; INT8 either from an explicitly quantized QDQ ONNX model (`onnx` option, e.g. made by
`prnet compress`: TensorRT keeps its scales) or, for a float model, an entropy calibrator fed with project
calibration images. An optimization profile covers batch sizes min..opt..max when the batch is dynamic.

The file is a prnet container: b"PRNETTRT" + uint32 length + metadata JSON + the engine bytes, so the engine
carries its input size, output scale and UV layout like every other export (TensorRT engines have no
metadata of their own). Engines are specific to the GPU model and TensorRT version that built them.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from prnet.export.formats import ExportUnavailable, get_format
from prnet.export.metadata import ExportMetadata
from prnet.export.onnx_export import DEFAULT_OPSET, build_onnx, checked_onnx, save_onnx
from prnet.io import PrnetInputError, existing_file

MAGIC = b"PRNETTRT"


def require_tensorrt() -> Any:
    """The tensorrt module, or ExportUnavailable saying exactly what is missing (package, GPU)."""
    needs = get_format("tensorrt").install
    try:
        import tensorrt as trt
    except ImportError as err:
        raise ExportUnavailable(f"TensorRT is not installed ({err}). It needs {needs}.") from err
    except OSError as err:  # the bindings wheel without its libraries: libnvinfer/libnvonnxparser missing
        raise ExportUnavailable(f"TensorRT's libraries are missing ({err}). It needs {needs}.") from err
    import torch

    if not torch.cuda.is_available():
        raise ExportUnavailable(f"TensorRT {trt.__version__} is installed but no CUDA GPU is visible to torch "
                                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda}). It needs {needs}.")
    return trt


def write_engine_file(path: Path, metadata: ExportMetadata, engine: bytes) -> None:
    header = metadata.to_json().encode()
    with open(path, "wb") as f:  # `path` is already a temporary name (prnet.export.api moves it into place)
        f.write(MAGIC + struct.pack("<I", len(header)) + header)
        f.write(engine)


def read_engine_file(path: Path) -> tuple[ExportMetadata, bytes]:
    data = existing_file(path, "engine file").read_bytes()
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise PrnetInputError(f"{path}: not a prnet TensorRT engine (no {MAGIC!r} header); build it with "
                              f"`prnet export tensorrt` so it carries its metadata")
    (length,) = struct.unpack("<I", data[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    if start + length > len(data):
        raise PrnetInputError(f"{path}: truncated engine file")
    metadata = ExportMetadata.from_json(data[start : start + length].decode(), str(path))
    return metadata, data[start + length :]


def make_calibrator(trt: Any, images: np.ndarray, batch_size: int, cache: Path) -> Any:
    """An IInt8EntropyCalibrator2 over (N, S, S, 3) float32 images in [0, 1] (implicit INT8 quantization)."""
    import torch

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            super().__init__()
            self.batches = [torch.from_numpy(np.ascontiguousarray(images[i : i + batch_size].transpose(0, 3, 1, 2)))
                            for i in range(0, len(images) - batch_size + 1, batch_size)]
            self.current = None

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            if not self.batches:
                return None
            self.current = self.batches.pop(0).cuda()  # keep a reference while TensorRT reads it
            return [int(self.current.data_ptr())]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data: bytes) -> None:
            cache.write_bytes(bytes(data))

    if len(images) < batch_size:
        raise PrnetInputError(f"INT8 calibration needs at least {batch_size} images, got {len(images)}")
    return Calibrator()


def build_engine(onnx_path: Path, precision: str, batch: tuple[int, int, int], input_size: int,
                 workspace_gib: float = 4.0, calibration_images: np.ndarray | None = None) -> tuple[bytes, list[str]]:
    """Serialized engine for `onnx_path`. batch = (min, opt, max); used when the ONNX batch is dynamic."""
    trt = require_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(trt.__version__.split(".")[0])
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise PrnetInputError(f"{onnx_path}: TensorRT's ONNX parser failed: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    notes = [f"TensorRT {trt.__version__}"]
    is_qdq = any(network.get_layer(i).type == trt.LayerType.QUANTIZE for i in range(network.num_layers))
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)  # INT8 engines run what is not quantized in FP16
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        if is_qdq:
            notes.append("INT8 from the QDQ model's scales (explicit quantization)")
        elif calibration_images is not None:
            cache = Path(tempfile.mkdtemp(prefix="prnet-trt-")) / "calibration.cache"
            config.int8_calibrator = make_calibrator(trt, calibration_images, batch[1], cache)
            notes.append(f"INT8 entropy calibration on {len(calibration_images)} images")
        else:
            raise PrnetInputError("TensorRT INT8 needs a QDQ ONNX model (--onnx) or calibration images (--data)")
    model_input = network.get_input(0)
    if model_input.shape[0] == -1:
        low, opt, high = batch
        profile = builder.create_optimization_profile()
        shape = (3, input_size, input_size)
        profile.set_shape(model_input.name, (low, *shape), (opt, *shape), (high, *shape))
        config.add_optimization_profile(profile)
        if precision == "int8" and not is_qdq:
            config.set_calibration_profile(profile)
        notes.append(f"batch profile {low}/{opt}/{high}")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build the {precision} engine (see the TensorRT log above)")
    return bytes(serialized), notes


def export_tensorrt(module: Any, path: Path, metadata: ExportMetadata, options: dict[str, Any]) -> list[str]:
    """Options: precision (fp16 | fp32 | int8), onnx (a QDQ ONNX model to build instead), batch (min, opt, max),
    workspace_gib, calibration_images ((N, S, S, 3) float32 for INT8 without QDQ), opset."""
    require_tensorrt()  # fail before any work when the package or GPU is missing
    precision = options.get("precision", "fp16")
    batch = tuple(options.get("batch", (1, 1, 1)))
    if not 1 <= batch[0] <= batch[1] <= batch[2]:
        raise PrnetInputError(f"batch profile must be 1 <= min <= opt <= max, got {batch}")
    with tempfile.TemporaryDirectory(prefix="prnet-trt-") as tmp:
        onnx_path = Path(options["onnx"]) if options.get("onnx") else Path(tmp) / "model.onnx"
        if not options.get("onnx"):
            save_onnx(build_onnx(module, metadata.input_size, opset=options.get("opset", DEFAULT_OPSET),
                                 dynamic_batch=batch[2] > 1), onnx_path)
        else:
            onnx_path = checked_onnx(onnx_path, metadata.input_size)
        engine, notes = build_engine(onnx_path, precision, batch, metadata.input_size,
                                     options.get("workspace_gib", 4.0), options.get("calibration_images"))
    write_engine_file(path, metadata, engine)
    return notes
