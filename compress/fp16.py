"""FP16: `apply(model, Fp16Config(), path)` writes an FP16 ONNX model (inputs/outputs stay float32).

For GPUs, TensorRT and CoreML (Apple's Neural Engine runs FP16 natively). It halves the file size. On x86 CPUs
it gains NOTHING: neither ONNX Runtime's CPU provider nor this AVX2 CPU computes convolutions in FP16, so the
runtime inserts Casts around each conv and is at best as fast as FP32 (measured: not faster, see
shared/TOOLCHAIN.md). OpenVINO on CPU reads the FP16 weights and computes in FP32 (or BF16 where the CPU has
AMX/AVX512-BF16, which this one does not).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from prnet.compress.onnx_util import export_onnx
from prnet.io import atomic_path


@dataclass
class Fp16Config:
    keep_io_types: bool = True  # float32 image in, float32 pixels out; FP16 inside
    keep_float_ops: tuple[str, ...] = ("Sigmoid",)  # op types left in FP32 (the pixel output scale needs it)
    opset: int = 17

    def to_dict(self) -> dict:
        return asdict(self)


def convert_onnx(float_onnx: str | Path, path: str | Path, config: Fp16Config) -> Path:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(float_onnx)), keep_io_types=config.keep_io_types,
                                     op_block_list=list(config.keep_float_ops))
    with atomic_path(path, suffix=".onnx") as tmp:
        onnx.save(model, str(tmp))
    return Path(path)


def apply(model: nn.Module, config: Fp16Config, path: str | Path, input_size: int) -> Path:
    """Export `model` (FP32) and convert the ONNX file to FP16 at `path`. The PyTorch form in FP16 is just
    `model.half()` (what the compressed checkpoint stores with --fp16)."""
    path = Path(path)
    float_path = path.with_name(path.stem + ".fp32.onnx")
    export_onnx(model, float_path, input_size, opset=config.opset)
    return convert_onnx(float_path, path, config)


def half_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
