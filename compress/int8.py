"""INT8 post-training quantization with ONNX Runtime: `apply(model, Int8Config(...), forward_loop, path)`.

Static QDQ (QuantizeLinear/DequantizeLinear pairs) on the DEPLOYMENT form (BN folded, transposed convs as
plain convs: ORT's CPU provider runs a quantized ConvTranspose in float, so the original graph gains nothing).
The recipe measured on this CPU (shared/TOOLCHAIN.md): export -> `quant_pre_process` (shape inference +
graph clean-up) -> `quantize_static` with per-channel symmetric s8 weights and per-tensor u8 activations,
the input conv and every 3-channel conv kept in float (8-bit steps on 3 channels at 256x256 cost accuracy
and run slowly), and with them everything fed only by float layers -- the output head above all: the sigmoid
output scaled by 281.6 px, if quantized, is stored in u8 steps of ~1.1 px (measured on a toy-trained full
PRNet: keeping the head float took the INT8 NME delta from +0.63 to +0.54).

One QDQ file serves ONNX Runtime and OpenVINO (which re-quantizes it into its own int8 kernels). TensorRT
needs symmetric activations (zero point 0): `activations="s8"` writes that variant.

Saturation on AVX2 without VNNI: ORT's u8s8 kernel (VPMADDUBSW) adds two u8*s8 products in int16, which can
saturate. `reduce_range=True` (7-bit weights) or `weights="u8"` (u8u8 kernel, no saturation) avoid it;
`python -m prnet.compress.measure int8-settings` measures the accuracy and speed of each here.

Calibration goes through the modelopt-style `forward_loop(model)`: it is called once with a callable that
records the (B, 3, S, S) image batches it is given (and returns the float model's output).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from prnet.compress.onnx_util import export_onnx, float_tail, select_convs
from prnet.export.metadata import INPUT_NAME
from prnet.io import PrnetInputError, atomic_path

CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
DEFAULT_KEEP_FLOAT = ("stem.*",)  # the input conv; 3-channel convs are caught by `thin_channels`


@dataclass
class Int8Config:
    calibration: str = "minmax"  # minmax | percentile | entropy
    calibration_count: int = 64  # images (the CLI takes them from the training data)
    percentile: float = 99.999  # for calibration="percentile"
    activations: str = "u8"  # "u8" asymmetric per-tensor (CPU: ORT, OpenVINO) | "s8" symmetric (TensorRT)
    weights: str = "s8"  # "s8" per-channel symmetric | "u8" (ORT's u8u8 kernel: no AVX2 saturation)
    per_channel: bool = True
    reduce_range: bool = False  # 7-bit weights: another way around u8s8 saturation without VNNI
    keep_float: tuple[str, ...] = DEFAULT_KEEP_FLOAT  # fnmatch patterns of module names that stay float
    thin_channels: int = 3  # convs with <= this many input or output channels stay float (0: none)
    op_types: tuple[str, ...] = ()  # ONNX op types to quantize; () = all ORT supports (Conv, Add, Concat...).
    # ("Conv",) measured WORSE on the toy-trained PRNet (+1.57 NME vs +0.54) and slower: kept as a lever only
    opset: int = 17
    preprocess: bool = True  # onnxruntime's quant_pre_process before quantizing

    def __post_init__(self) -> None:
        if self.calibration not in CALIBRATION_METHODS:
            raise PrnetInputError(f"calibration must be one of {CALIBRATION_METHODS}, got {self.calibration!r}")
        if self.activations not in ("u8", "s8") or self.weights not in ("u8", "s8"):
            raise PrnetInputError(f"activations/weights must be 'u8' or 's8', got {self.activations}/{self.weights}")
        if self.calibration_count < 1:
            raise PrnetInputError(f"calibration_count must be >= 1, got {self.calibration_count}")
        self.keep_float, self.op_types = tuple(self.keep_float), tuple(self.op_types)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Int8Result:
    path: Path  # the QDQ ONNX model
    float_path: Path | None  # the FP32 ONNX it was quantized from (pre-processed)
    quantized_convs: list[str] = field(default_factory=list)  # ONNX node names
    float_convs: list[str] = field(default_factory=list)
    calibration_images: int = 0


class _Recorder:
    """Looks like the float model to `forward_loop`, and keeps every input batch for calibration."""

    def __init__(self, model: nn.Module, limit: int):
        self.model, self.limit, self.batches, self.count = model, limit, [], 0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.count < self.limit:
            take = images[: self.limit - self.count].detach().cpu().float().numpy()
            self.batches.append(np.ascontiguousarray(take))
            self.count += len(take)
        with torch.no_grad():
            return self.model(images)


def record_calibration(model: nn.Module, forward_loop: Callable, limit: int) -> list[np.ndarray]:
    recorder = _Recorder(model.eval(), limit)
    forward_loop(recorder)
    if not recorder.batches:
        raise PrnetInputError("forward_loop ran no images: calibration needs at least one batch")
    return recorder.batches


def _reader(batches: list[np.ndarray]):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{INPUT_NAME: b[i : i + 1]} for b in batches for i in range(len(b))])

        def get_next(self):
            return next(self.items, None)

    return Reader()


def quantize_onnx(float_onnx: str | Path, out_path: str | Path, config: Int8Config, batches: list[np.ndarray]) -> Int8Result:
    """Static QDQ quantization of an FP32 ONNX file (made from a deployment-form model)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out_path = Path(out_path)
    source = Path(float_onnx)
    if config.preprocess:
        prepared = out_path.with_name(out_path.stem + ".prep.onnx")
        with atomic_path(prepared, suffix=".onnx") as tmp:
            quant_pre_process(str(source), str(tmp), skip_symbolic_shape=False)
        source = prepared
    proto = onnx.load(str(source))
    keep = select_convs(proto, config.keep_float, config.thin_channels)
    convs = [n.name for n in proto.graph.node if n.op_type == "Conv"]
    method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
              "entropy": CalibrationMethod.Entropy}[config.calibration]
    types = {"u8": QuantType.QUInt8, "s8": QuantType.QInt8}
    extra = {"ActivationSymmetric": config.activations == "s8", "WeightSymmetric": config.weights == "s8"}
    if config.calibration == "percentile":
        extra["CalibPercentile"] = config.percentile
    with atomic_path(out_path, suffix=".onnx") as tmp:
        quantize_static(
            str(source), str(tmp), _reader(batches), quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(config.op_types) or None, per_channel=config.per_channel, reduce_range=config.reduce_range,
            activation_type=types[config.activations], weight_type=types[config.weights],
            nodes_to_exclude=keep + float_tail(proto, keep), calibrate_method=method, extra_options=extra,
            calibration_providers=["CPUExecutionProvider"],
        )
    return Int8Result(path=out_path, float_path=source, quantized_convs=[c for c in convs if c not in keep],
                      float_convs=keep, calibration_images=sum(len(b) for b in batches))


def apply(model: nn.Module, config: Int8Config, forward_loop: Callable, path: str | Path) -> Int8Result:
    """Export `model` (deployment form, output in pixels) to ONNX and quantize it to QDQ INT8 at `path`."""
    path = Path(path)
    batches = record_calibration(model, forward_loop, config.calibration_count)
    input_size = int(batches[0].shape[-1])
    float_path = path.with_name(path.stem + ".fp32.onnx")
    export_onnx(model, float_path, input_size, opset=config.opset)
    return quantize_onnx(float_path, path, config, batches)
