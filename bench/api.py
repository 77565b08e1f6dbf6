"""`benchmark(...)`: what `prnet bench` runs, as a plain function (load model and data, run, write, print)."""

from __future__ import annotations

import datetime as _dt
import functools
from pathlib import Path
from typing import Callable

from prnet import default_model
from prnet.io import PrnetInputError

DEFAULT_SAMPLES = 32


def parse_names(text: str | None, registry: dict, kind: str) -> list[str]:
    """Comma-separated names -> list (all registered ones when empty); unknown names are a clear error."""
    if not text:
        return list(registry)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise PrnetInputError(f"unknown {kind} {', '.join(unknown)}; available here: {', '.join(registry)}")
    return list(dict.fromkeys(names))


def default_out_dir() -> Path:
    return Path("runs") / "bench" / _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def benchmark(
    model: str | Path | None,
    variants: str | None,
    backends: str | None,
    data: str | Path | None,
    samples: int,
    settings,
    out: str | Path | None,
    compressed: str | Path | None = None,
    log: Callable[[str], None] = lambda message: None,
    print_table: bool = True,
) -> tuple[dict, dict[str, Path]]:
    """Benchmark a checkpoint's variants on the chosen backends; write the run directory; return (report, files)."""
    from bench import data as bench_data
    from bench.backends import BACKENDS
    from bench.core import run_benchmark
    from bench.report import print_table as show, write_run_dir
    from bench.variants import VARIANTS, compressed_variants
    from prnet.checkpoint import load_model

    variant_specs = [VARIANTS[n] for n in parse_names(variants, VARIANTS, "variant")]
    backend_specs = [BACKENDS[n] for n in parse_names(backends, BACKENDS, "backend")]
    if compressed is not None:  # a `prnet compress` output, benchmarked beside the variants built here
        variant_specs += compressed_variants(compressed)
    if samples < 1:
        raise PrnetInputError(f"--samples must be at least 1, got {samples}")
    model_path = Path(model) if model is not None else default_model.default_model_path()
    loaded = load_model(model_path)
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
