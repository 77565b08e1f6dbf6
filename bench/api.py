"""`benchmark(...)`: what `prnet bench` runs, as a plain function (load model and data, run, write, print)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
from pathlib import Path
from typing import Callable

from prnet import default_model
from prnet.io import PrnetInputError

DEFAULT_SAMPLES = 32


def parse_names(text: str | None, registry: dict, kind: str, aliases: dict | None = None) -> list[str]:
    """Comma-separated names -> list (all registered ones when empty); unknown names are a clear error."""
    if not text:
        return list(registry)
    names = [(aliases or {}).get(n.strip(), n.strip()) for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise PrnetInputError(f"unknown {kind} {', '.join(unknown)}; available here: {', '.join(registry)}")
    return list(dict.fromkeys(names))


def canonical_row(name: str) -> str:
    """A row name as typed ("fp32/onnx") -> the report's ("fp32/onnxruntime"): backends go by runtime name."""
    from prnet.export.formats import runtime_name_of

    variant, slash, backend = name.rpartition("/")
    return f"{variant}/{runtime_name_of(backend)}" if slash else name


def default_out_dir() -> Path:
    return Path("runs") / "bench" / _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def reference_model(models: list[Path], given: str | Path | None) -> Path:
    """The FP32 model the user's models are compared with: `given`, else the first plain checkpoint among them,
    else the checkpoint the first compressed one was made from (when it is still there), else the default model."""
    from prnet.checkpoint import load_checkpoint
    from prnet.export.formats import format_for_path

    if given is not None:
        return Path(given)
    checkpoints = [m for m in models if not m.is_dir() and format_for_path(m).name == "torch"]
    for path in checkpoints:
        if load_checkpoint(path).get("compression") is None:
            return path
    for path in checkpoints:
        source = load_checkpoint(path).get("meta", {}).get("source")
        if source and Path(source).is_file():
            return Path(source)
    return default_model.default_model_path()


def benchmark(
    model: str | Path | list | None,
    variants: str | None,
    backends: str | None,
    data: str | Path | None,
    samples: int,
    settings,
    out: str | Path | None,
    compressed: str | Path | None = None,
    log: Callable[[str], None] = lambda message: None,
    print_table: bool = True,
    reference: str | Path | None = None,
) -> tuple[dict, dict[str, Path]]:
    """Benchmark models x backends; write the run directory; return (report, files).

    `model`: one path or several: checkpoints, `prnet compress` checkpoints, exported artifacts. They are rows
    beside the FP32 reference (`reference`, see reference_model). One plain checkpoint alone (or none: the default
    model) gets the built-in variants (fp32, fp16, int8, svd-no-finetune...) unless `variants` says otherwise."""
    from prnet.bench import data as bench_data
    from prnet.bench.backends import BACKENDS
    from prnet.bench.core import run_benchmark
    from prnet.bench.report import print_table as show, write_run_dir
    from prnet.bench.variants import ALIASES, VARIANTS, user_variants
    from prnet.checkpoint import load_model
    from prnet.export.formats import RUNTIME_ALIASES

    given = model if isinstance(model, (list, tuple)) else [model] if model is not None else []
    models = [default_model.resolve_model(m) for m in given]  # shipped names too: --model default-fast
    models += [Path(compressed)] if compressed is not None else []
    models = [m / "model.pt" if m.is_dir() and (m / "model.pt").is_file() else m for m in models]
    for m in models:
        if not m.exists():
            raise PrnetInputError(f"{m}: model file not found")
    model_path = reference_model(models, reference) if models else default_model.default_model_path()
    others = [m for m in models if m.resolve() != model_path.resolve()]
    variant_specs = [VARIANTS[n] for n in parse_names(variants or (None if not others else "fp32"), VARIANTS,
                                                      "variant", ALIASES)]
    backend_specs = [BACKENDS[n] for n in parse_names(backends, BACKENDS, "backend", RUNTIME_ALIASES)]
    settings = dataclasses.replace(settings, reference=canonical_row(settings.reference),
                                   speed_baseline=canonical_row(settings.speed_baseline))
    for m in others:
        variant_specs += user_variants(m)
    if samples < 1:
        raise PrnetInputError(f"--samples must be at least 1, got {samples}")
    loaded = load_model(model_path)
    if loaded.compression is not None:
        raise PrnetInputError(f"{model_path}: the FP32 reference must be an uncompressed checkpoint")
    validation = bench_data.validation_set(data, samples, int(loaded.config.input_size))
    out_dir = Path(out) if out is not None else default_out_dir()
    log(f"benchmarking {model_path} on {len(validation)} samples of {validation.source}; writing {out_dir}")

    @functools.lru_cache(maxsize=1)  # int8 and svd+int8 share one set of calibration images
    def calibration():
        return bench_data.calibration_images(data, max(samples, 32), validation)

    report = run_benchmark(
        loaded, validation, variant_specs, backend_specs, settings, out_dir / "artifacts",
        calibration=calibration,
        model_info={"name": loaded.config.name, "path": str(model_path), "input_size": loaded.config.input_size,
                    "layout_id": loaded.layout.layout_id, "config": loaded.config.to_dict()},
        log=log,
    )
    written = write_run_dir(report, out_dir)
    if print_table:
        show(report)
    return report, written
