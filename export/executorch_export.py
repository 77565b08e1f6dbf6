"""ExecuTorch export: torch.export -> [PT2E INT8 hook] -> XNNPACK delegate -> .pte, metadata as a constant method.

INT8 hook: `options["quantize"]` is a callable `(graph_module, example_inputs) -> quantized graph_module`
(prepare_pt2e + calibration + convert_pt2e, e.g. from `compress/`). `xnnpack_int8_hook(calibration_images)`
is the built-in one: XNNPACKQuantizer, symmetric per-channel weights, calibrated on the images you give.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from prnet.export.metadata import METADATA_KEY, ExportMetadata
from prnet.io import PrnetInputError

QuantizeHook = Callable[[Any, tuple], Any]


def xnnpack_int8_hook(calibration_images: np.ndarray) -> QuantizeHook:
    """PT2E INT8 for XNNPACK, calibrated on (N, S, S, 3) float32 RGB images in [0, 1]."""

    def quantize(graph_module: Any, example_inputs: tuple) -> Any:
        import torch
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                             get_symmetric_quantization_config)
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
        prepared = prepare_pt2e(graph_module, quantizer)
        batch = example_inputs[0].shape[0]
        images = torch.from_numpy(np.ascontiguousarray(calibration_images.transpose(0, 3, 1, 2)))
        with torch.no_grad():
            for start in range(0, len(images) - batch + 1, batch):  # the exported program has a static batch
                prepared(images[start : start + batch])
        return convert_pt2e(prepared)

    return quantize


def export_executorch(module: Any, path: Path, metadata: ExportMetadata, options: dict[str, Any]) -> list[str]:
    """Options: precision (fp32 | int8), quantize (hook, required for int8), batch_size (static, default 1)."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    precision, quantize = options.get("precision", "fp32"), options.get("quantize")
    if precision == "int8" and quantize is None:
        raise PrnetInputError("ExecuTorch INT8 needs a quantizer hook (options['quantize']); the CLI builds one "
                              "from --data calibration images with --precision int8")
    if precision == "fp32" and quantize is not None:
        raise PrnetInputError("a quantizer hook was given for an fp32 ExecuTorch export; use --precision int8")
    example = (torch.rand(int(options.get("batch_size", 1)), 3, metadata.input_size, metadata.input_size),)
    with torch.no_grad():
        program = torch.export.export(module.eval(), example)
        if quantize is not None:
            program = torch.export.export(quantize(program.module(), example), example)
    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()],
                                       constant_methods={METADATA_KEY: metadata.to_json()})
    graph = edge.exported_program().graph_module.graph
    calls = [n for n in graph.nodes if n.op == "call_function"]
    delegated = sum("executorch_call_delegate" in str(n.target) for n in calls)
    leftover = sorted({str(n.target).split(".")[-2] for n in calls
                       if "executorch_call_delegate" not in str(n.target) and "getitem" not in str(n.target)})
    path.write_bytes(edge.to_executorch().buffer)  # `path` is already a temporary name (prnet.export.api)
    return [f"XNNPACK delegate: {delegated} partition(s); ops left on the portable CPU kernels: "
            f"{', '.join(leftover) or 'none'}"]
