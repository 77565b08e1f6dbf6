"""ONNX plumbing for compression: export a (deployment-form) module and map ONNX convs back to module names.
(The metadata a runner needs is the export area's: prnet.compress.pipeline.stamp_metadata.)"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from torch import nn

from prnet.io import atomic_path


def export_onnx(module: nn.Module, path: str | Path, input_size: int, opset: int = 17, dynamic_batch: bool = True) -> Path:
    """The float model compression quantizes and times: the export area's tracer (TorchScript, ~1 s), not
    simplified so that initializers keep their state-dict names, one self-contained file written atomically."""
    import onnx

    from prnet.export.onnx_export import build_onnx

    model = build_onnx(module, input_size, opset=opset, dynamic_batch=dynamic_batch, simplify=False)
    with atomic_path(path, suffix=".onnx") as tmp:
        onnx.save_model(model, str(tmp), save_as_external_data=False)
    return Path(path)


def _conv_weights(model_proto, follow):
    """(Conv node, the tensor its weight comes from) for each Conv, in graph order: from the node's weight
    input, step back through the producing node's first input while `follow(tensor, producer)` says so."""
    producers = {out: node for node in model_proto.graph.node for out in node.output}
    for node in model_proto.graph.node:
        if node.op_type != "Conv":
            continue
        weight = node.input[1]
        while weight in producers and follow(weight, producers[weight]):
            weight = producers[weight].input[0]
        yield node, weight


def conv_module_names(model_proto) -> dict[str, str]:
    """ONNX Conv node name -> the torch module it came from (its weight initializer is '<module>.weight',
    possibly behind an Identity that deduplicated equal tensors)."""
    names = {}
    for node, weight in _conv_weights(model_proto, lambda _, producer: producer.op_type in ("Identity", "DequantizeLinear")):
        names[node.name] = weight[: -len(".weight")] if weight.endswith(".weight") else weight
    return names


def conv_channels(model_proto) -> dict[str, tuple[int, int]]:
    """ONNX Conv node name -> (Cin, Cout) from its weight initializer's shape."""
    inits = {init.name: tuple(init.dims) for init in model_proto.graph.initializer}
    channels = {}
    for node, weight in _conv_weights(model_proto, lambda name, _: name not in inits):
        if weight in inits:
            cout, cin_per_group = inits[weight][:2]
            groups = next((a.i for a in node.attribute if a.name == "group"), 1)
            channels[node.name] = (cin_per_group * groups, cout)
    return channels


def select_convs(model_proto, patterns: tuple[str, ...], thin_channels: int = 0) -> list[str]:
    """ONNX Conv node names whose module name matches a pattern, or with <= `thin_channels` in/out channels."""
    names, channels = conv_module_names(model_proto), conv_channels(model_proto)
    chosen = []
    for node_name, module_name in names.items():
        cin, cout = channels.get(node_name, (1 << 30, 1 << 30))
        if any(fnmatch.fnmatchcase(module_name, p) for p in patterns) or min(cin, cout) <= thin_channels:
            chosen.append(node_name)
    return chosen


def float_tail(model_proto, float_nodes: list[str]) -> list[str]:
    """Non-Conv nodes fed only by float nodes (in graph order): the ReLUs after a float conv and the whole
    output head (Sigmoid, x output_scale). Left to the quantizer, the pixel output itself would be stored
    in u8: one step = output_scale / 255 ~ 1.1 px at 256."""
    excluded = set(float_nodes)
    initializers = {init.name for init in model_proto.graph.initializer}
    producer = {out: node.name for node in model_proto.graph.node for out in node.output}
    tail = []
    for node in model_proto.graph.node:
        if node.name in excluded or node.op_type == "Conv":
            continue
        sources = [producer.get(i) for i in node.input if i and i not in initializers]
        if sources and all(source in excluded for source in sources):
            excluded.add(node.name)
            tail.append(node.name)
    return tail
