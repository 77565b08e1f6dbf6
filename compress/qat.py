"""Quantization-aware fine-tuning (QAT), modelopt style: `apply` inserts fake quantization and calibrates it,
the caller trains (`prnet.compress.distill.finetune`), `strip` removes it, and `prnet.compress.int8` quantizes for real.

The fake quantization simulates exactly what ONNX Runtime's static QDQ recipe (prnet.compress.int8) will do to the
same deployment-form convs: weights per output channel, symmetric int8 (scale = max|w| / 127, recomputed every
step, so the trained weights sit on the grid ORT will derive from them); each quantized conv's input per
tensor, asymmetric uint8 (or symmetric int8) over the range seen during calibration, frozen for training.
Gradients pass straight through the rounding (torch's fake_quantize ops). Layers kept in float by the
Int8Config (input conv, 3-channel convs, name patterns) are left alone, as in the real INT8 model.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from prnet.compress.int8 import Int8Config


@dataclass
class QatConfig:
    steps: int = 200  # fine-tuning steps under fake quantization (run by prnet.compress.distill.finetune)
    lr: float = 2e-5  # QAT wants a small learning rate: the weights only need to settle on their grid
    int8: Int8Config = field(default_factory=Int8Config)  # which layers and what number formats to simulate


class FakeQuantConv(nn.Module):
    """A conv whose input and weight are fake-quantized like ORT's QDQ Conv."""

    def __init__(self, conv: nn.Conv2d, activations: str):
        super().__init__()
        self.conv, self.activations = conv, activations
        self.register_buffer("input_min", torch.tensor(float("inf")))
        self.register_buffer("input_max", torch.tensor(float("-inf")))
        self.calibrating = True

    def _input_qparams(self) -> tuple[float, int, int, int]:
        low, high = min(float(self.input_min), 0.0), max(float(self.input_max), 0.0)  # the range holds 0
        if self.activations == "s8":
            bound = max(abs(low), abs(high), 1e-8)
            return bound / 127.0, 0, -128, 127
        scale = max(high - low, 1e-8) / 255.0
        return scale, int(round(-low / scale)), 0, 255

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.calibrating:
            self.input_min = torch.minimum(self.input_min, x.detach().min())
            self.input_max = torch.maximum(self.input_max, x.detach().max())
            return self.conv(x)
        scale, zero_point, qmin, qmax = self._input_qparams()
        x = torch.fake_quantize_per_tensor_affine(x, scale, zero_point, qmin, qmax)
        w = self.conv.weight
        w_scale = (w.detach().abs().amax(dim=(1, 2, 3)) / 127.0).clamp_min(1e-12).float()
        zeros = torch.zeros_like(w_scale, dtype=torch.int32)
        w = torch.fake_quantize_per_channel_affine(w, w_scale, zeros, 0, -127, 127)
        return self.conv._conv_forward(x, w, self.conv.bias)


def _keep_float(name: str, conv: nn.Conv2d, config: Int8Config) -> bool:
    thin = min(conv.in_channels, conv.out_channels) <= config.thin_channels
    return thin or any(fnmatch.fnmatchcase(name, p) for p in config.keep_float)


def quantizable_convs(model: nn.Module, config: Int8Config) -> list[str]:
    """Names of the convs prnet.compress.int8 would quantize (plain convs, not kept float by the config)."""
    return [name for name, m in model.named_modules()
            if type(m) is nn.Conv2d and m.groups == 1 and not _keep_float(name, m, config)]


def wrap(model: nn.Module, names: list[str], activations: str, forward_loop: Callable) -> nn.Module:
    """Fake-quantize the named convs in place and calibrate their input ranges with `forward_loop(model)`."""
    modules = dict(model.named_modules())
    wrappers = []
    for name in names:
        parent, _, child = name.rpartition(".")
        wrapper = FakeQuantConv(modules[name], activations)
        setattr(modules[parent] if parent else model, child, wrapper)
        wrappers.append(wrapper)
    model.eval()
    with torch.no_grad():
        forward_loop(model)
    for wrapper in wrappers:
        wrapper.calibrating = False
    return model


def apply(model: nn.Module, config: QatConfig, forward_loop: Callable) -> nn.Module:
    """Wrap the quantizable convs of `model` in place, calibrate input ranges with `forward_loop(model)`,
    and return the model ready for fine-tuning."""
    return wrap(model, quantizable_convs(model, config.int8), config.int8.activations, forward_loop)


def strip(model: nn.Module) -> nn.Module:
    """Put the plain convs back (in place); the weights keep what QAT taught them."""
    for name, module in list(model.named_modules()):
        if isinstance(module, FakeQuantConv):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, module.conv)
    return model
