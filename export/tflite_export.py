"""TFLite / LiteRT export with litert-torch, metadata in the flatbuffer's `metadata` table.

litert-torch 0.10 resolves beside torch 2.13.0 but pins older typing-extensions and pydantic (and pulls in
jax and transformers), so install it in its own virtual environment:
    python -m venv --system-site-packages .venv-litert && .venv-litert/bin/pip install litert-torch torch==2.13.0
The runner needs only `ai-edge-litert` (the interpreter, with its XNNPACK delegate).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from prnet.export.metadata import METADATA_KEY, ExportMetadata, missing_metadata_error
from prnet.io import PrnetInputError

TFLITE_IDENTIFIER = b"TFL3"


def add_tflite_metadata(model_bytes: bytes, entries: dict[str, str]) -> bytes:
    """Return the flatbuffer with `entries` stored as named metadata buffers (the TFLite schema's own field)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_bytes, 0))
    model.metadata = [m for m in (model.metadata or []) if m.name.decode() not in entries]
    for name, text in entries.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(text.encode(), dtype=np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name, entry.buffer = name, len(model.buffers) - 1
        model.metadata.append(entry)
    builder = flatbuffers.Builder(len(model_bytes) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())


def read_tflite_metadata(path: Path) -> ExportMetadata:
    from ai_edge_litert import schema_py_generated as schema

    data = path.read_bytes()
    if data[4:8] != TFLITE_IDENTIFIER:
        raise PrnetInputError(f"{path}: not a TFLite model (no {TFLITE_IDENTIFIER!r} identifier)")
    model = schema.Model.GetRootAsModel(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name().decode() == METADATA_KEY:
            text = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode()
            return ExportMetadata.from_json(text, str(path))
    raise missing_metadata_error(path)


def export_tflite(module: Any, path: Path, metadata: ExportMetadata, options: dict[str, Any]) -> list[str]:
    """Options: batch_size (static, default 1). FP32; NCHW input like every other export."""
    import litert_torch
    import torch

    example = (torch.rand(int(options.get("batch_size", 1)), 3, metadata.input_size, metadata.input_size),)
    with torch.no_grad():
        edge_model = litert_torch.convert(module.eval(), example)
    raw = path.with_name(path.name + ".raw")
    try:
        edge_model.export(str(raw))
        model_bytes = raw.read_bytes()
    finally:
        raw.unlink(missing_ok=True)
    path.write_bytes(add_tflite_metadata(model_bytes, {METADATA_KEY: metadata.to_json(), **metadata.summary()}))
    return [f"litert-torch {getattr(litert_torch, '__version__', '?')}, FP32 flatbuffer"]
