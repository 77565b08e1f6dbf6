"""ONNX export of the deployment form: torch.onnx -> onnxslim -> [FP16] -> metadata -> checker -> one file.

Also the building block of the OpenVINO and TensorRT exports (`build_onnx`), and `attach_metadata` for ONNX
files made elsewhere (e.g. a QDQ INT8 model from `compress/`), so they load with `load_runner(path)` too.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

from prnet.export.metadata import INPUT_NAME, METADATA_KEY, OUTPUT_NAME, ExportMetadata
from prnet.io import PrnetInputError, existing_file

DEFAULT_OPSET = 17  # Conv/Pad/DepthToSpace only need 13; 17 is read by ORT, OpenVINO, TensorRT 8.6+


def build_onnx(module: Any, input_size: int, opset: int = DEFAULT_OPSET, dynamic_batch: bool = False,
               batch_size: int = 1, simplify: bool = True, dynamo: bool = False, fp16: bool = False) -> Any:
    """Trace `module` ((B, 3, S, S) -> (B, 3, S, S)) into an in-memory onnx.ModelProto (weights inline). The one
    ONNX tracer of the project: exports, `prnet compress` (simplify=False keeps its '<module>.weight' initializer
    names, which map quantized convs back to layers) and the benchmarks all go through it."""
    import onnx
    import torch

    device = next(module.parameters()).device  # a module on the GPU is traced there
    example = torch.rand(batch_size, 3, input_size, input_size, device=device)
    with tempfile.TemporaryDirectory(prefix="prnet-onnx-") as tmp:
        raw = Path(tmp) / "raw.onnx"
        kwargs: dict[str, Any] = dict(opset_version=opset, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                      dynamo=dynamo)
        if dynamic_batch and dynamo:
            kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=1024)},)
        elif dynamic_batch:
            kwargs["dynamic_axes"] = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
        with torch.no_grad(), warnings.catch_warnings():  # tracer/constant-folding chatter, not actionable
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), (example,), str(raw), **kwargs)
        model = onnx.load(str(raw))  # pulls in external .data written by the dynamo exporter
    if simplify or fp16:
        import onnxslim
    if simplify:
        model = onnxslim.slim(model)
    if fp16:  # FP16 weights and compute; inputs/outputs stay float32 so runners need not care
        from onnxruntime.transformers.float16 import convert_float_to_float16

        # the converter appends its I/O Casts at the end of the node list; onnxslim sorts the graph again
        model = onnxslim.slim(convert_float_to_float16(model, keep_io_types=True))
    return model


def attach_metadata(model: Any, metadata: ExportMetadata) -> Any:
    """Store the prnet metadata JSON (and a readable summary) in the ONNX model's metadata_props."""
    entries = {**metadata.summary(), METADATA_KEY: metadata.to_json()}
    kept = [p for p in model.metadata_props if p.key not in entries]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in entries.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    model.producer_name = "prnet"
    model.producer_version = metadata.project_version
    model.doc_string = (f"PRNet position map regression ({metadata.model_name}). Input '{INPUT_NAME}': (B, 3, "
                        f"{metadata.input_size}, {metadata.input_size}) RGB in [0, 1]. Output '{OUTPUT_NAME}': "
                        f"(B, 3, S, S) x, y, z in crop pixels. UV layout {metadata.layout.layout_id}.")
    return model


def checked_onnx(path: str | Path, input_size: int) -> Path:
    """A user's ONNX file (`--onnx`) to convert in place of the checkpoint: it must exist and take the
    reference model's input size, else the parity check would feed it crops of the wrong size."""
    import onnx

    path = existing_file(path, "ONNX file")
    try:
        dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    except Exception as err:  # onnx raises DecodeError and friends for a corrupt file
        raise PrnetInputError(f"{path}: not a readable ONNX model ({err})") from err
    size = dims[2].dim_value if len(dims) == 4 else 0
    if size and size != input_size:
        raise PrnetInputError(
            f"{path} takes {size} px crops, the reference model (--model) {input_size} px: pass the checkpoint "
            f"it was made from as --model (a `prnet compress` output's model.pt carries its INT8 model, so "
            f"`--model DIR/model.pt --precision int8` needs no --onnx)")
    return path


def save_onnx(model: Any, path: Path) -> None:
    """Check and write one self-contained file (no external data; PRNet is far below the 2 GB limit)."""
    import onnx

    onnx.checker.check_model(model, full_check=True)
    onnx.save_model(model, str(path), save_as_external_data=False)


def export_onnx(module: Any, path: Path, metadata: ExportMetadata, options: dict[str, Any]) -> list[str]:
    """Options: opset, dynamic_batch, batch_size, simplify, dynamo, precision ("fp32" | "fp16" | "int8"),
    onnx (a QDQ INT8 model made by `prnet compress`: written with the metadata instead of a new graph)."""
    import onnx

    precision = options.get("precision", "fp32")
    if precision == "int8" or options.get("onnx"):
        if not options.get("onnx"):
            raise PrnetInputError("ONNX INT8 is the QDQ model `prnet compress --int8` stores in its checkpoint: "
                                  "pass that checkpoint as --model")
        save_onnx(attach_metadata(onnx.load(str(options["onnx"])), metadata), path)
        return [f"QDQ INT8 model from `prnet compress` ({Path(options['onnx']).name})"]
    if precision not in ("fp32", "fp16"):
        raise ValueError(f"ONNX export makes fp32, fp16 or (from `prnet compress`) int8 models, not {precision!r}")
    model = build_onnx(module, metadata.input_size, opset=options.get("opset", DEFAULT_OPSET),
                       dynamic_batch=options.get("dynamic_batch", False), batch_size=options.get("batch_size", 1),
                       simplify=options.get("simplify", True), dynamo=options.get("dynamo", False),
                       fp16=precision == "fp16")
    save_onnx(attach_metadata(model, metadata), path)
    ops = sorted({node.op_type for node in model.graph.node})
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return [f"opset {opset}, {len(model.graph.node)} nodes: {', '.join(ops)}"]  # the dynamo exporter may raise it
