"""Variants and backends as DATA: one spec each, looked up by name.

A *variant* is a version of the model (fp32, fp16, int8, svd, svd+int8): its spec says what it needs and
how to build it from the FP32 model. A *backend* is a runtime (torch, onnxruntime, openvino, ...): its
spec says what it needs and how to turn a built variant into an artifact on disk plus a Runner.
A row of the report is one (variant, backend) pair. The benchmark (prnet.bench.core) never branches on names:
it asks each spec whether it is available (and why not), builds, and records failures per row.

Build and prepare functions raise `Unavailable` for "cannot run here, and this is what it needs" (a
missing runtime, no GPU, macOS-only, a pair that makes no sense); any other exception is a failure.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np


class Unavailable(Exception):
    """This variant/backend cannot run on this machine; the message says why and what would fix it."""


@dataclass
class BenchContext:
    """What builders and backends may use. `loaded` is a prnet.checkpoint.LoadedModel (model, config, layout)."""

    loaded: Any
    workdir: Path  # artifacts are written here (the run directory's artifacts/ folder)
    threads: int
    batch: int
    # () -> ((N, S, S, 3) float32 RGB in [0, 1], where they come from); only called by builders that calibrate
    calibration_images: Callable[[], tuple[np.ndarray, str]]
    cache: dict[str, Any] = field(default_factory=dict)  # shared between builders (e.g. an exported FP32 ONNX)
    device: str = "cpu"  # where the torch backend runs: cpu | cuda | auto (prnet.runner.resolve_device)

    @property
    def input_size(self) -> int:
        return int(self.loaded.config.input_size)

    @property
    def layout(self):
        return self.loaded.layout


@dataclass
class BuiltVariant:
    """A built variant: a PyTorch form and/or ready-made files per format, plus its cost."""

    name: str
    precision: str  # "fp32" | "fp16" | "int8": what exporters should produce from `module`
    module: Any | None = None  # nn.Module: (B, 3, S, S) in [0, 1] -> maps; multiply by `output_scale` for pixels
    output_scale: float = 1.0
    files: dict[str, Path] = field(default_factory=dict)  # e.g. {"onnx": a QDQ model} made by the compressor
    params: int | None = None
    macs: int | None = None
    notes: list[str] = field(default_factory=list)
    input_size: int | None = None  # the module's input size when it is not the reference model's (None: the same)
    layout: Any = None  # its UV layout then (None: the reference model's)


@dataclass
class PreparedRow:
    """An artifact on disk (its size is reported) and how to load it as a Runner (timed for memory)."""

    artifact: Path | None
    load: Callable[[], Any]  # -> Runner
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VariantSpec:
    name: str
    description: str
    build: Callable[[BenchContext], BuiltVariant]
    requires: tuple[str, ...] = ()  # importable modules, checked without importing them
    check: Callable[[], str | None] = lambda: None  # extra availability check: a reason, or None when fine


@dataclass(frozen=True)
class BackendSpec:
    name: str
    description: str
    prepare: Callable[[BuiltVariant, BenchContext], PreparedRow]
    requires: tuple[str, ...] = ()
    check: Callable[[], str | None] = lambda: None


def missing_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):  # a parent package is missing
        return True


def unavailable_reason(spec: VariantSpec | BackendSpec) -> str | None:
    """Why this spec cannot run here (missing modules first, then its own check), or None."""
    missing = [name for name in spec.requires if missing_module(name)]
    if missing:
        return f"needs the Python module(s) {', '.join(missing)}, not installed here"
    return spec.check()


def select(registry: dict[str, Any], names: list[str], kind: str) -> list[Any]:
    """Specs for `names` in the order given; unknown names are a user error listing what exists."""
    from prnet.io import PrnetInputError

    unknown = [n for n in names if n not in registry]
    if unknown:
        raise PrnetInputError(f"unknown {kind}(s) {', '.join(unknown)}; known: {', '.join(registry)}")
    return [registry[n] for n in names]
