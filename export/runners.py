"""Runners for exported models, behind prnet.runner's Runner interface, and `load_runner(path)`.

    runner = load_runner("face.onnx")          # or .pt, *_openvino/, .xml, .pte, .engine, .mlpackage, .tflite
    maps = runner(images)                      # (B, S, S, 3) RGB in [0, 1] -> (B, S, S, 3) crop pixels

Every artifact carries its metadata (input size, output scale, UV layout), so the path is all a runner needs.
Runtimes are imported when a runner is built, never at module import.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from prnet.export.formats import ExportUnavailable, format_for_path, resolve
from prnet.export.metadata import METADATA_KEY, ExportMetadata, missing_metadata_error
from prnet.io import PrnetInputError
from prnet.runner import Runner, check_runner_input

DEFAULT_THREADS = 0  # 0: the runtime's default (all cores)


def load_runner(path: str | os.PathLike | None = None, device: str = "auto", **options: Any) -> Runner:
    """The one way to run a model: a Runner for any model file this project makes, found from the path: a
    checkpoint (plain or compressed by `prnet compress`: PyTorch on `device`) or an exported artifact. No path:
    the default model."""
    from prnet.default_model import resolve_model

    path = resolve_model(path)
    if not path.exists():
        raise PrnetInputError(f"{path}: model file not found")
    spec = format_for_path(path)
    reason = spec.can_run_here()
    if reason:
        raise ExportUnavailable(f"{path}: cannot run here: {reason}")
    if spec.name == "torch":
        options["device"] = device
    return resolve(spec.runner)(path, **options)


class ExportedRunner:
    """Shared part: metadata, input checks, NHWC <-> NCHW, splitting into the batch the model accepts."""

    fixed_batch: int | None = None  # the only batch size the artifact accepts (None: any)
    max_batch: int = 16  # chunk size for dynamic-batch artifacts (bounds memory)

    def _setup(self, path: Path, metadata: ExportMetadata, runtime: str) -> None:
        self.path, self.metadata = path, metadata
        self.input_size = int(metadata.input_size)
        self.layout = metadata.layout
        self.output_scale = float(metadata.output_scale)
        self.name = f"{runtime}:{path.name}"

    def _run(self, batch: np.ndarray) -> np.ndarray:  # (b, 3, S, S) float32 -> (b, 3, S, S)
        raise NotImplementedError

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = check_runner_input(images, self.input_size)
        step = self.fixed_batch or self.max_batch
        outputs = []
        for start in range(0, len(images), step):
            chunk = np.ascontiguousarray(images[start : start + step].transpose(0, 3, 1, 2))  # (b, 3, S, S)
            count = len(chunk)
            if self.fixed_batch and count < self.fixed_batch:  # pad a short last chunk, drop the padding after
                chunk = np.concatenate([chunk, np.zeros((self.fixed_batch - count, *chunk.shape[1:]), np.float32)])
            out = np.asarray(self._run(chunk), dtype=np.float32)[:count]
            outputs.append(out.transpose(0, 2, 3, 1) * self.output_scale)  # (b, S, S, 3) crop pixels
        if not outputs:
            return np.zeros((0, self.input_size, self.input_size, 3), np.float32)
        return np.ascontiguousarray(np.concatenate(outputs), dtype=np.float32)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, input_size={self.input_size}, layout={self.layout.name!r})"


def _static_batch(dim: Any) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def ort_session(model: str | os.PathLike | bytes, threads: int = DEFAULT_THREADS,
                providers: list[str] | None = None) -> Any:
    """The one place an ONNX Runtime session is configured (runners, `prnet compress` timing and scoring):
    `threads` intra-op threads (0: ORT's default, all cores), sequential execution with one inter-op thread (the
    graph is a chain: parallel branches buy nothing), every graph optimization, errors only in the log."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)  # a path, or a serialized model
    try:
        return ort.InferenceSession(source, options, providers=providers or ["CPUExecutionProvider"])
    except Exception as err:  # ORT raises its own exception types for corrupt/invalid models
        where = "<serialized model>" if isinstance(model, bytes) else model
        raise PrnetInputError(f"{where}: ONNX Runtime cannot load this model ({err})") from err


def openvino_compile(core: Any, model: Any, device: str = "CPU", threads: int = DEFAULT_THREADS,
                     precision: str | None = None) -> Any:
    """The one place an OpenVINO model is compiled (runners, `prnet compress`): the latency hint, `threads`
    inference threads (0: the plugin's default) and `precision` as INFERENCE_PRECISION_HINT. None keeps the
    plugin's default, which is bf16 on CPUs with AVX512-BF16/AMX (0.3 px off an FP32 model, measured), so
    callers that mean FP32 pass "f32"."""
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    return core.compile_model(model, device, config)


class OnnxRuntimeRunner(ExportedRunner):
    """ONNX Runtime. `providers` default to CPU; pass e.g. ["CUDAExecutionProvider", "CPUExecutionProvider"]."""

    def __init__(self, path: str | os.PathLike, providers: list[str] | None = None, threads: int = DEFAULT_THREADS,
                 **_: Any):
        path = Path(path)
        self.session = ort_session(path, threads, providers)
        meta = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise missing_metadata_error(path)
        self._setup(path, ExportMetadata.from_json(meta[METADATA_KEY], str(path)), "onnxruntime")
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.fixed_batch = _static_batch(model_input.shape[0])

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]


def _openvino_xml(path: Path) -> Path:
    if path.is_dir():
        xmls = sorted(path.glob("*.xml"))
        if len(xmls) != 1:
            raise PrnetInputError(f"{path}: expected one OpenVINO .xml in the directory, found {len(xmls)}")
        return xmls[0]
    return path


class OpenVINORunner(ExportedRunner):
    """OpenVINO (CPU by default): latency hint, `threads` inference threads (0: all).

    `inference_precision`: "auto" runs FP32 artifacts in f32 and others at the runtime's default. OpenVINO's
    CPU default can be bf16 (it is on this project's AVX2 dev machine): 0.35 px off an FP32 model."""

    def __init__(self, path: str | os.PathLike, device: str = "CPU", threads: int = DEFAULT_THREADS,
                 inference_precision: str | None = "auto", **_: Any):
        import openvino as ov

        path = Path(path)
        xml = _openvino_xml(path)
        if not xml.with_suffix(".bin").is_file():
            raise PrnetInputError(f"{xml}: the weights file {xml.with_suffix('.bin').name} is missing next to it")
        core = ov.Core()
        try:
            model = core.read_model(str(xml))
        except RuntimeError as err:
            raise PrnetInputError(f"{xml}: OpenVINO cannot read this model ({err})") from err
        if not model.has_rt_info([METADATA_KEY]):
            raise missing_metadata_error(path)
        metadata = ExportMetadata.from_json(model.get_rt_info([METADATA_KEY]).astype(str), str(path))
        self._setup(path, metadata, "openvino")
        batch_dim = model.input(0).get_partial_shape()[0]
        self.fixed_batch = batch_dim.get_length() if batch_dim.is_static else None
        if inference_precision == "auto":
            inference_precision = "f32" if self.metadata.precision == "fp32" else None
        self.compiled = openvino_compile(core, model, device, threads, inference_precision)
        self.request = self.compiled.create_infer_request()

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.request.infer({0: batch})[self.compiled.output(0)]


class ExecuTorchRunner(ExportedRunner):
    """ExecuTorch program (XNNPACK delegate) through its Python runtime bindings."""

    def __init__(self, path: str | os.PathLike, **_: Any):
        from executorch.runtime import Runtime

        path = Path(path)
        try:
            program = Runtime.get().load_program(str(path))
        except Exception as err:  # the bindings raise RuntimeError/ValueError on corrupt programs
            raise PrnetInputError(f"{path}: ExecuTorch cannot load this program ({err})") from err
        if METADATA_KEY not in program.method_names:
            raise missing_metadata_error(path)
        text = program.load_method(METADATA_KEY).execute([])[0]
        self._setup(path, ExportMetadata.from_json(str(text), str(path)), "executorch")
        self.fixed_batch = int(self.metadata.options.get("batch_size", 1))
        self.method = program.load_method("forward")

    def _run(self, batch: np.ndarray) -> np.ndarray:
        import torch

        return self.method.execute([torch.from_numpy(batch)])[0].numpy()


class TFLiteRunner(ExportedRunner):
    """TFLite / LiteRT interpreter (ai-edge-litert, XNNPACK delegate on CPU)."""

    def __init__(self, path: str | os.PathLike, threads: int = DEFAULT_THREADS, **_: Any):
        from ai_edge_litert.interpreter import Interpreter

        from prnet.export.tflite_export import read_tflite_metadata

        path = Path(path)
        self._setup(path, read_tflite_metadata(path), "tflite")
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads or None)
            self.interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as err:
            raise PrnetInputError(f"{path}: the TFLite interpreter cannot load this model ({err})") from err
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        self.output_index = self.interpreter.get_output_details()[0]["index"]
        self.fixed_batch = int(self.interpreter.get_input_details()[0]["shape"][0])

    def _run(self, batch: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input_index, batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output_index).copy()


class CoreMLRunner(ExportedRunner):
    """Core ML (macOS only: coremltools cannot predict elsewhere). Image input: uint8 RGB, batch 1."""

    def __init__(self, path: str | os.PathLike, compute_units: str = "ALL", **_: Any):
        if sys.platform != "darwin":
            raise ExportUnavailable(f"{path}: Core ML prediction runs only on macOS (coremltools cannot predict "
                                    f"on {sys.platform}); use `validate_coreml` to check the package here")
        import coremltools as ct

        from prnet.export.coreml_export import read_coreml_metadata

        path = Path(path)
        self.model = ct.models.MLModel(str(path), compute_units=getattr(ct.ComputeUnit, compute_units))
        self._setup(path, read_coreml_metadata(self.model, path), "coreml")
        spec = self.model.get_spec()
        self.input_name = spec.description.input[0].name
        self.output_name = spec.description.output[0].name
        self.image_input = spec.description.input[0].type.WhichOneof("Type") == "imageType"
        self.fixed_batch = 1

    def _run(self, batch: np.ndarray) -> np.ndarray:
        from PIL import Image

        if self.image_input:  # the model scales by 1/255 itself; crops come from uint8 images so this is exact
            pixels = np.clip(np.rint(batch[0].transpose(1, 2, 0) * 255), 0, 255).astype(np.uint8)
            value: Any = Image.fromarray(pixels, "RGB")
        else:
            value = batch
        return np.asarray(self.model.predict({self.input_name: value})[self.output_name])


class TensorRTRunner(ExportedRunner):
    """TensorRT engine (prnet container: metadata header + serialized engine) on an NVIDIA GPU.

    I/O buffers are torch CUDA tensors, so only `tensorrt` and a CUDA build of torch are needed."""

    def __init__(self, path: str | os.PathLike, device: int = 0, **_: Any):
        from prnet.export.tensorrt_export import read_engine_file, require_tensorrt

        trt = require_tensorrt()
        import torch

        path = Path(path)
        metadata, engine_bytes = read_engine_file(path)
        self._setup(path, metadata, "tensorrt")
        self.torch, self.device = torch, torch.device("cuda", device)
        logger = trt.Logger(trt.Logger.WARNING)
        self.engine = trt.Runtime(logger).deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise PrnetInputError(f"{path}: TensorRT could not deserialize the engine (built for another TensorRT "
                                  f"version or GPU?); rebuild it with `prnet export tensorrt` on this machine")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_name = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.output_name = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        static = self.engine.get_tensor_shape(self.input_name)[0]
        self.fixed_batch = static if static > 0 else None
        if self.fixed_batch is None:  # dynamic batch: chunks up to the optimization profile's maximum
            self.max_batch = int(self.engine.get_tensor_profile_shape(self.input_name, 0)[2][0])
        self.stream = torch.cuda.Stream(self.device)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        inputs = torch.from_numpy(batch).to(self.device)
        self.context.set_input_shape(self.input_name, tuple(inputs.shape))
        outputs = torch.empty(tuple(self.context.get_tensor_shape(self.output_name)), dtype=torch.float32,
                              device=self.device)
        self.context.set_tensor_address(self.input_name, inputs.data_ptr())
        self.context.set_tensor_address(self.output_name, outputs.data_ptr())
        with torch.cuda.stream(self.stream):
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError(f"{self.path}: TensorRT execution failed")
        self.stream.synchronize()
        return outputs.cpu().numpy()
