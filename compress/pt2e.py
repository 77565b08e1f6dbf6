"""INT8 the PyTorch-native way (PT2E): `apply(model, Pt2eConfig(...), forward_loop, input_size)`.

For the targets that do not go through ONNX: ExecuTorch (XNNPACK quantizer: symmetric int8 activations and
per-channel weights, what XNNPACK runs) and torch.compile/Inductor on x86 (X86InductorQuantizer). The result is a
converted `torch.fx.GraphModule` with quantize/dequantize ops around the convs (a reference model: it runs in
PyTorch and is what the lowering step consumes):

    quantized = pt2e.apply(deployed, Pt2eConfig(backend="xnnpack"), forward_loop, input_size=256)
    exported = torch.export.export(quantized, (example,))
    # ExecuTorch (export area): to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])

`torch.ao.quantization.quantize_pt2e` is gone in torch 2.13: prepare/convert live in torchao, the XNNPACK
quantizer in executorch. CoreML's route is weight-only (coremltools' linear_quantize_weights, in export/):
activation quantization in coremltools calibrates by running the model, which only works on macOS.
Layers kept in float follow the Int8Config rule (input conv, 3-channel convs, name patterns).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from prnet.compress.int8 import DEFAULT_KEEP_FLOAT
from prnet.io import PrnetInputError

# Quantizer targets, not runtimes (those are prnet.export.formats' runtime names): xnnpack is the quantizer whose
# model the executorch runtime runs, x86 the one torch.compile/Inductor lowers.
BACKENDS = ("xnnpack", "x86")


@dataclass
class Pt2eConfig:
    backend: str = "xnnpack"  # xnnpack (ExecuTorch) | x86 (Inductor)
    per_channel: bool = True
    keep_float: tuple[str, ...] = DEFAULT_KEEP_FLOAT
    thin_channels: int = 3

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise PrnetInputError(f"PT2E backend must be one of {BACKENDS}, got {self.backend!r}")


def float_module_names(model: nn.Module, config: Pt2eConfig) -> list[str]:
    names = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            thin = min(module.in_channels, module.out_channels) <= config.thin_channels
            if thin or any(fnmatch.fnmatchcase(name, p) for p in config.keep_float):
                names.append(name)
    return names


def _fqn(path: str) -> str:
    """nn_module_stack paths may read "L['self'].stem.0" or "stem.0"."""
    return path.split("L['self'].", 1)[-1].removeprefix("self.")


def make_quantizer(model: nn.Module, config: Pt2eConfig):
    if config.backend == "xnnpack":
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )

        keep = set(float_module_names(model, config))

        def quantize_node(node) -> bool:  # XNNPACKQuantizer cannot set a module to None: filter nodes instead
            stack = node.meta.get("nn_module_stack", {}) or {}
            return not any(_fqn(path) in keep for path, _ in stack.values())

        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=config.per_channel))
        return quantizer.set_filter_function(quantize_node)
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    quantizer = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config())
    for name in float_module_names(model, config):
        quantizer.set_module_name_qconfig(name, None)
    return quantizer


def quantize_graph(graph_module: torch.fx.GraphModule, model: nn.Module, config: Pt2eConfig,
                   forward_loop: Callable, static_batch: int | None = None) -> torch.fx.GraphModule:
    """prepare_pt2e -> forward_loop(calibration) -> convert_pt2e on an exported graph of `model` (whose module
    names choose the float layers). With a static batch, calibration batches are fed in chunks of that size."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    prepared = prepare_pt2e(graph_module, make_quantizer(model, config))

    def run(images: torch.Tensor):
        if static_batch is None:
            return prepared(images)
        usable = len(images) - len(images) % static_batch  # a remainder smaller than the batch is skipped
        return [prepared(images[i : i + static_batch]) for i in range(0, usable, static_batch)]

    with torch.no_grad():
        forward_loop(run)
    return convert_pt2e(prepared)


def apply(model: nn.Module, config: Pt2eConfig, forward_loop: Callable, input_size: int) -> torch.fx.GraphModule:
    """Export `model` (any batch size), insert observers, calibrate with `forward_loop`, convert."""
    model = model.eval()
    example = (torch.zeros(2, 3, input_size, input_size),)
    batch = torch.export.Dim("batch", min=1, max=1024)  # calibration batches can have any size
    exported = torch.export.export(model, example, dynamic_shapes=({0: batch},)).module()
    return quantize_graph(exported, model, config, forward_loop)


def executorch_hook(model: nn.Module, config: Pt2eConfig, forward_loop: Callable) -> Callable:
    """`options["quantize"]` for prnet.export.executorch_export: `(graph_module, example_inputs) -> quantized`, with
    this module's float-layer filter (the graph it gets is an export of `model`, static batch)."""

    def quantize(graph_module: torch.fx.GraphModule, example_inputs: tuple) -> torch.fx.GraphModule:
        return quantize_graph(graph_module, model, config, forward_loop, static_batch=example_inputs[0].shape[0])

    return quantize
