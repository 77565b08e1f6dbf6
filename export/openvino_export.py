"""OpenVINO IR export: a directory holding model.xml + model.bin, metadata in the IR's rt_info.

Converted from the deployment form's ONNX (or from an ONNX file you give, e.g. a QDQ INT8 model from
`prnet compress`: OpenVINO runs QDQ models in INT8; measured here 2.3-2.4x ONNX Runtime FP32). The default
"phases" upsampling interleaves with Reshape/Transpose because OpenVINO's INT8 pipeline fails on
DepthToSpace after a quantized Concat.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from prnet.export.metadata import METADATA_KEY, ExportMetadata
from prnet.export.onnx_export import DEFAULT_OPSET, build_onnx, checked_onnx, save_onnx
from prnet.io import PrnetInputError

XML_NAME = "model.xml"


def export_openvino(module: Any, path: Path, metadata: ExportMetadata, options: dict[str, Any]) -> list[str]:
    """Options: precision (fp32 | fp16 weights | int8: needs `onnx`), onnx (an ONNX file to convert instead of
    the checkpoint, e.g. a QDQ INT8 model), dynamic_batch, batch_size, opset."""
    import openvino as ov

    precision = options.get("precision", "fp32")
    given_onnx = options.get("onnx")
    if precision == "int8" and not given_onnx:
        raise PrnetInputError("OpenVINO INT8 converts a quantized (QDQ) ONNX model: make one with `prnet compress` "
                              "and pass it with --onnx")
    notes = []
    with tempfile.TemporaryDirectory(prefix="prnet-ov-") as tmp:
        if given_onnx:
            onnx_path = checked_onnx(given_onnx, metadata.input_size)
            notes.append(f"converted from {onnx_path}")
        else:
            onnx_path = Path(tmp) / "model.onnx"
            save_onnx(build_onnx(module, metadata.input_size, opset=options.get("opset", DEFAULT_OPSET),
                                 dynamic_batch=options.get("dynamic_batch", False),
                                 batch_size=options.get("batch_size", 1)), onnx_path)
        model = ov.convert_model(str(onnx_path))
    model.set_rt_info(metadata.to_json(), [METADATA_KEY])
    for key, value in metadata.summary().items():
        model.set_rt_info(value, [key])
    path.mkdir(parents=True)
    ov.save_model(model, str(path / XML_NAME), compress_to_fp16=precision == "fp16")
    ops = sorted({op.get_type_name() for op in model.get_ordered_ops()})
    notes.append(f"{len(model.get_ordered_ops())} ops: {', '.join(o for o in ops if o not in ('Constant',))}")
    return notes
