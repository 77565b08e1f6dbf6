"""Count multiply-accumulates (MACs) and parameters per layer, by running the model once with hooks.

Counting what actually runs (hooks on a real forward pass) instead of reading the config means the same
function measures PRNet, its deployment form, and any factorized/quantized variant of either.
A conv computes, per output pixel, Cin/groups * k*k MACs per output channel; a transposed conv scatters
each INPUT pixel into Cout/groups * k*k outputs, so its MACs are counted on the input side.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class LayerCost:
    name: str
    kind: str  # "conv" | "deconv" | "linear"
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    input_hw: tuple[int, int]
    output_hw: tuple[int, int]
    params: int
    macs: int

    def to_dict(self) -> dict:
        return asdict(self)


def _layer_cost(name: str, module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> LayerCost:
    params = sum(p.numel() for p in module.parameters(recurse=False))
    if isinstance(module, nn.Linear):
        rows = x.numel() // x.shape[-1] // x.shape[0]
        return LayerCost(name, "linear", module.in_features, module.out_features, (1, 1), (1, 1), (1, 1), (1, 1),
                         params, rows * module.in_features * module.out_features)
    kh, kw = module.kernel_size
    per_group_in = module.in_channels // module.groups
    per_group_out = module.out_channels // module.groups
    in_hw, out_hw = tuple(x.shape[-2:]), tuple(y.shape[-2:])
    if isinstance(module, nn.ConvTranspose2d):  # each input pixel scatters a k x k x Cout/groups patch
        macs = in_hw[0] * in_hw[1] * module.in_channels * per_group_out * kh * kw
        kind = "deconv"
    else:
        macs = out_hw[0] * out_hw[1] * module.out_channels * per_group_in * kh * kw
        kind = "conv"
    return LayerCost(name, kind, module.in_channels, module.out_channels, (kh, kw), tuple(module.stride),
                     in_hw, out_hw, params, macs)


@torch.no_grad()
def layer_costs(model: nn.Module, input_size: int, in_channels: int = 3) -> list[LayerCost]:
    """Per-layer MACs (for ONE image) and parameters of every Conv2d / ConvTranspose2d / Linear, in run order."""
    costs: list[LayerCost] = []
    names = {module: name for name, module in model.named_modules()}
    handles = []

    def hook(module, inputs, output):
        costs.append(_layer_cost(names[module], module, inputs[0], output))

    for module in names:
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            handles.append(module.register_forward_hook(hook))
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(1, in_channels, input_size, input_size, device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return costs


def total_macs(model: nn.Module, input_size: int) -> int:
    return sum(c.macs for c in layer_costs(model, input_size))


def total_params(model: nn.Module) -> int:
    """All parameters and buffers that a deployed model has to carry (BN statistics included)."""
    return sum(p.numel() for p in model.parameters()) + sum(
        b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked")
    )
