"""Export formats as data: one `ExportFormat` per target, found by name (never by position).

Adding a format = one exporter function, one runner class, one row below. Functions are named as
"module:attribute" strings and imported only when used, so listing formats imports no runtime.

This table is also the one registry of runtimes: a format's `runtime_name` is the name of what runs it
everywhere a runtime is named (`prnet bench --backends`, `prnet compress --runtimes`, report rows, runner
names). It is the format's own name except for ONNX, whose runtime is ONNX Runtime ("onnxruntime"); where a
runtime is asked for, the format name is accepted too (`runtime_name_of`, the only alias mapping).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


class ExportUnavailable(RuntimeError):
    """The format cannot be produced or run here (missing package, GPU or OS); the message says what is needed."""


class ParityError(RuntimeError):
    """The exported model's output differs from the FP32 PyTorch model by more than the tolerance."""


PLATFORM_NAMES = {"darwin": "macOS", "linux": "Linux", "win32": "Windows"}

# Default parity tolerances per precision, in output pixels: (max |diff|, mean |diff|).
TOLERANCES_PX: dict[str, tuple[float, float]] = {
    "fp32": (0.05, 0.005),
    "fp16": (4.0, 0.5),
    "int8": (16.0, 2.0),
}


@dataclass(frozen=True)
class ExportFormat:
    name: str  # CLI sub-command and table row
    suffix: str  # of the artifact; a directory for OpenVINO
    exporter: str | None  # "module:function" (module, path, metadata, options) -> list of notes; None: a source
    runner: str  # "module:Class", called as Class(path, **options) -> Runner
    requires: tuple[str, ...]  # Python modules the exporter needs
    install: str  # what to install, shown when something is missing
    runtime_modules: tuple[str, ...] = ()  # Python modules the runner needs (defaults to `requires`)
    runtime_name: str = ""  # what runs it, in bench/compress/report rows (defaults to `name`)
    takes_threads: bool = False  # the runner takes `threads=N` (the others use their runtime's own pool)
    run_platforms: tuple[str, ...] = ()  # sys.platform values the runner works on; empty: anywhere
    validator: str | None = None  # "module:function" (path) -> dict: checks an artifact without running it
    precisions: tuple[str, ...] = ("fp32",)
    is_directory: bool = False
    directory_marker: str = ""  # a glob that identifies an artifact directory under any name (e.g. "*.xml")
    extra_suffixes: tuple[str, ...] = ()  # other file suffixes the runner accepts
    description: str = ""

    def __post_init__(self) -> None:
        if not self.runtime_name:
            object.__setattr__(self, "runtime_name", self.name)

    def missing(self, modules: tuple[str, ...] | None = None) -> list[str]:
        return [m for m in (self.requires if modules is None else modules) if not module_available(m)]

    def check_exportable(self) -> None:
        missing = self.missing()
        if missing:
            raise ExportUnavailable(f"{self.name} export needs the Python package(s) {', '.join(missing)}: "
                                    f"{self.install}")

    def can_run_here(self) -> str | None:
        """None when the runner works on this machine, else why not."""
        if self.run_platforms and sys.platform not in self.run_platforms:
            names = "/".join(PLATFORM_NAMES.get(p, p) for p in self.run_platforms)
            return f"{self.name} models run only on {names} (this is {PLATFORM_NAMES.get(sys.platform, sys.platform)})"
        missing = self.missing(self.runtime_modules or self.requires)
        if missing:
            return f"{self.runtime_name} runtime needs {', '.join(missing)}: {self.install}"
        return None

    def matches(self, path: Path) -> bool:
        name = path.name.lower()
        if any(name.endswith(s) for s in (self.suffix, *self.extra_suffixes)):
            return True
        return bool(self.directory_marker) and path.is_dir() and any(path.glob(self.directory_marker))


def module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def resolve(target: str) -> Callable[..., Any]:
    module_name, attribute = target.split(":")
    return getattr(importlib.import_module(module_name), attribute)


FORMATS: tuple[ExportFormat, ...] = (
    ExportFormat(
        name="torch", suffix=".pt", extra_suffixes=(".pth", ".ckpt"), exporter=None, runner="prnet.runner:TorchRunner",
        requires=("torch",), install="pip install torch", description="PyTorch checkpoint (the FP32 reference)",
    ),
    ExportFormat(
        name="onnx", suffix=".onnx", exporter="prnet.export.onnx_export:export_onnx",
        runner="prnet.export.runners:OnnxRuntimeRunner", requires=("onnx", "onnxslim", "onnxruntime"),
        runtime_modules=("onnxruntime",), runtime_name="onnxruntime", takes_threads=True,
        install="pip install onnx onnxslim onnxruntime", precisions=("fp32", "fp16", "int8"),
        description="ONNX (simplified, metadata embedded), run by ONNX Runtime",
    ),
    ExportFormat(
        name="openvino", suffix="_openvino", is_directory=True, directory_marker="*.xml", extra_suffixes=(".xml",), exporter="prnet.export.openvino_export:export_openvino",
        runner="prnet.export.runners:OpenVINORunner", requires=("openvino",), install="pip install openvino",
        takes_threads=True,
        precisions=("fp32", "fp16", "int8"), description="OpenVINO IR directory (model.xml + model.bin)",
    ),
    ExportFormat(
        name="executorch", suffix=".pte", exporter="prnet.export.executorch_export:export_executorch",
        runner="prnet.export.runners:ExecuTorchRunner", requires=("executorch",), install="pip install executorch",
        precisions=("fp32", "int8"), description="ExecuTorch program with the XNNPACK delegate (mobile CPU)",
    ),
    ExportFormat(
        name="coreml", suffix=".mlpackage", is_directory=True, exporter="prnet.export.coreml_export:export_coreml",
        runner="prnet.export.runners:CoreMLRunner", requires=("coremltools",), install="pip install coremltools",
        run_platforms=("darwin",), validator="prnet.export.coreml_export:validate_coreml",
        precisions=("fp16", "fp32"), description="Core ML mlprogram (.mlpackage), image input",
    ),
    ExportFormat(
        name="tflite", suffix=".tflite", exporter="prnet.export.tflite_export:export_tflite",
        runner="prnet.export.runners:TFLiteRunner", requires=("litert_torch", "ai_edge_litert"),
        runtime_modules=("ai_edge_litert",), takes_threads=True,
        install="pip install litert-torch torch==2.13.0 in a separate virtual environment (python -m venv "
                "--system-site-packages): it pins older typing-extensions/pydantic; running needs only ai-edge-litert",
        description="TFLite / LiteRT flatbuffer (Android, embedded), XNNPACK delegate",
    ),
    ExportFormat(
        name="tensorrt", suffix=".engine", extra_suffixes=(".plan",), exporter="prnet.export.tensorrt_export:export_tensorrt",
        runner="prnet.export.runners:TensorRTRunner", requires=("tensorrt", "onnx", "onnxslim"),
        runtime_modules=("tensorrt",),
        install="an NVIDIA GPU with its driver, CUDA 12 and `pip install tensorrt-cu12` (from NVIDIA's index, "
                "https://pypi.nvidia.com) plus a CUDA build of torch for the I/O buffers",
        precisions=("fp16", "fp32", "int8"), description="TensorRT serialized engine (NVIDIA GPUs)",
    ),
)


def get_format(name: str) -> ExportFormat:
    for spec in FORMATS:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown export format {name!r}; known: {', '.join(s.name for s in FORMATS)}")


# Format names accepted where a runtime is asked for ({"onnx": "onnxruntime"}): the only alias mapping, and
# derived from the table, so a new format cannot be forgotten in it.
RUNTIME_ALIASES: dict[str, str] = {spec.name: spec.runtime_name for spec in FORMATS if spec.name != spec.runtime_name}


def runtime_name_of(name: str) -> str:
    """The registry's name for a runtime as a user typed it (a format name -> the runtime that runs it);
    anything unknown comes back as it is, for the caller to reject with its own list."""
    name = name.strip()
    return RUNTIME_ALIASES.get(name, name)


def format_for_path(path: str | Path) -> ExportFormat:
    """The format an artifact belongs to, from its suffix (or, for directories, its content)."""
    from prnet.io import PrnetInputError

    path = Path(path)
    for spec in FORMATS:
        if spec.matches(path):
            return spec
    known = ", ".join(f"{s.suffix}{' (directory)' if s.is_directory else ''}" for s in FORMATS)
    raise PrnetInputError(f"{path}: unknown model file type; expected one of {known}")


@dataclass
class ExportResult:
    """What one export produced: reported as a table row by the CLI."""

    format: str
    path: Path | None = None
    precision: str = "fp32"
    size_bytes: int | None = None
    max_deviation_px: float | None = None
    mean_deviation_px: float | None = None
    tolerance_px: tuple[float, float] | None = None
    parity_inputs: str = ""
    latency_ms: float | None = None  # median, batch 1, this machine (noisy: shared CPU)
    seconds: float = 0.0
    status: str = "ok"  # ok | failed | unavailable | parity-failed
    notes: list[str] = field(default_factory=list)
