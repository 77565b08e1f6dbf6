"""The registered model variants (name -> VariantSpec). Each builds from the FP32 model in the context.

fp32 is the trained PRNet as it is (the reference). The compressed variants come from `compress/`.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from bench.specs import BenchContext, BuiltVariant, VariantSpec


def _cost(module, input_size: int) -> tuple[int, int | None, list[str]]:
    """(parameters, MACs per image, notes) of a float module; MACs come from compress.macs (hooks on a forward)."""
    params = sum(p.numel() for p in module.parameters())
    try:
        from compress.macs import total_macs
    except ImportError as err:
        return params, None, [f"MACs not counted: compress.macs is not importable ({err})"]
    return params, int(total_macs(module, input_size)), []


def build_fp32(ctx: BenchContext) -> BuiltVariant:
    model = ctx.loaded.model.eval()
    params, macs, notes = _cost(model, ctx.input_size)
    return BuiltVariant("fp32", "fp32", module=model, output_scale=float(ctx.loaded.config.output_scale),
                        params=params, macs=macs, notes=notes)


class HalfPrecision(nn.Module):
    """A module converted to float16 behind a float32 interface: casts the input to half, the output back."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner.half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.half()).float()


def build_fp16(ctx: BenchContext) -> BuiltVariant:
    """Weights and activations in float16. x86 CPUs have no fast FP16 math: this row shows the accuracy cost
    (and the size) that GPUs, CoreML and TensorRT pay for their FP16 speed, not a CPU speed-up."""
    params, macs, notes = _cost(ctx.loaded.model, ctx.input_size)
    module = HalfPrecision(copy.deepcopy(ctx.loaded.model).eval())
    return BuiltVariant("fp16", "fp16", module=module, output_scale=float(ctx.loaded.config.output_scale),
                        params=params, macs=macs, notes=notes)


VARIANTS: dict[str, VariantSpec] = {
    spec.name: spec
    for spec in [
        VariantSpec("fp32", "the trained model as it is (the reference row)", build_fp32, requires=("torch",)),
        VariantSpec("fp16", "float16 weights and activations", build_fp16, requires=("torch",)),
    ]
}
DEFAULT_VARIANTS = ["fp32", "fp16", "int8", "svd", "svd+int8"]
