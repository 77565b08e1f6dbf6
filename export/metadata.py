"""What every exported artifact carries, so `load_runner(path)` needs nothing but the path.

One JSON document (key `prnet_metadata`) holds the input contract (size, layout, normalization), the output
contract (units, scale), the UV layout (its id plus the arrays, as a base64 .npz) and provenance (project
version, model config, precision, exporter options). Each format stores the JSON where it can:
ONNX metadata_props, OpenVINO rt_info, CoreML user_defined_metadata, an ExecuTorch constant method, and a
small header in front of a TensorRT engine.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from prnet.io import PrnetInputError
from prnet.layout import UVLayout

METADATA_KEY = "prnet_metadata"
METADATA_FORMAT = "prnet-export"
METADATA_VERSION = 1
INPUT_NAME, OUTPUT_NAME = "image", "posmap"  # the I/O names of every model the project writes (ONNX, Core ML)
INPUT_DESCRIPTION = "float32 (B, 3, S, S) RGB in [0, 1] (= uint8 pixels * 1/255, no mean/std)"
OUTPUT_DESCRIPTION = "float32 (B, 3, S, S) position map (x, y, z) in pixels of the input crop"


def encode_layout(layout: UVLayout) -> str:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **layout.to_arrays())
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_layout(text: str, source: str) -> UVLayout:
    try:
        with np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False) as data:
            return UVLayout.from_arrays({k: data[k] for k in data.files}, source=source)
    except (ValueError, OSError) as err:
        if isinstance(err, PrnetInputError):
            raise
        raise PrnetInputError(f"{source}: the embedded UV layout is corrupt ({err}); export the model again") from err


@dataclass
class ExportMetadata:
    input_size: int
    output_scale: float  # pixels = raw output * output_scale (1.0: the deployment form outputs pixels)
    layout: UVLayout
    model_name: str = "prnet"
    model_config: dict[str, Any] = field(default_factory=dict)
    precision: str = "fp32"  # weights/compute precision of the artifact: fp32, fp16, int8, ...
    export_format: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # exporter options (opset, dynamic batch, ...)
    project_version: str = ""
    source: str = ""  # the checkpoint it came from

    def to_json(self) -> str:
        document = {k: v for k, v in asdict(self).items() if k != "layout"}
        document.update(
            format=METADATA_FORMAT,
            version=METADATA_VERSION,
            input=INPUT_DESCRIPTION,
            normalization={"scale": 1 / 255, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "channels": "RGB"},
            output=OUTPUT_DESCRIPTION,
            layout_id=self.layout.layout_id,
            layout_npz_base64=encode_layout(self.layout),
        )
        return json.dumps(document)

    def summary(self) -> dict[str, str]:
        """Short human-readable key/values shown by tools such as Netron next to the full JSON."""
        return {
            "prnet_input_size": str(self.input_size),
            "prnet_output_scale": repr(self.output_scale),
            "prnet_layout_id": self.layout.layout_id,
            "prnet_precision": self.precision,
            "prnet_version": self.project_version,
            "prnet_model": self.model_name,
        }

    @classmethod
    def from_json(cls, text: str, source: str) -> "ExportMetadata":
        try:
            document = json.loads(text)
        except (json.JSONDecodeError, TypeError) as err:
            raise PrnetInputError(f"{source}: unreadable prnet metadata ({err}); export the model again") from err
        if document.get("format") != METADATA_FORMAT:
            raise PrnetInputError(f"{source}: not a prnet export (metadata format {document.get('format')!r})")
        if document.get("version", 0) > METADATA_VERSION:
            raise PrnetInputError(f"{source}: metadata version {document['version']} is newer than this prnet "
                                  f"understands ({METADATA_VERSION}); upgrade prnet")
        layout = decode_layout(document["layout_npz_base64"], source)
        if layout.layout_id != document.get("layout_id"):
            raise PrnetInputError(f"{source}: embedded layout does not match its id {document.get('layout_id')}")
        known = set(cls.__dataclass_fields__) - {"layout"}
        return cls(layout=layout, **{k: v for k, v in document.items() if k in known})


def metadata_for(loaded: Any, export_format: str, precision: str, options: dict[str, Any],
                 source: str = "") -> ExportMetadata:
    """Metadata of a deployment-form export of `loaded` (a prnet.checkpoint.LoadedModel)."""
    from prnet import __version__

    return ExportMetadata(
        input_size=int(loaded.config.input_size),
        output_scale=1.0,
        layout=loaded.layout,
        model_name=loaded.config.name,
        model_config=loaded.config.to_dict(),
        precision=precision,
        export_format=export_format,
        options=dict(options),
        project_version=__version__,
        source=source,
    )


def missing_metadata_error(path: Any) -> PrnetInputError:
    return PrnetInputError(f"{path}: no prnet metadata ({METADATA_KEY}) in this model, so its input size, output "
                           f"scale and UV layout are unknown; export it with `prnet export <format> --model CKPT`")
