"""`run_benchmark`: every (variant, backend) row from build to report, one failure never stopping the rest.

Top to bottom: pin threads -> build each variant -> prepare + load each row's runner (memory measured) ->
accuracy of every row (reference row first, so the others get deltas and deviations) -> batch-1 latency of
all rows, interleaved -> batch-B throughput, interleaved -> sgemm roofline -> Pareto front -> report dict.
"""

from __future__ import annotations

import datetime as _dt
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from prnet import timing
from prnet.bench import accuracy, measure
from prnet.bench.data import ValidationSet
from prnet.bench.report import SCHEMA_NAME, SCHEMA_VERSION, Row, mark_pareto
from prnet.bench.specs import BackendSpec, BenchContext, BuiltVariant, PreparedRow, Unavailable, VariantSpec, unavailable_reason
from prnet.hardware import StealMeter
from prnet.io import size_on_disk


@dataclass
class BenchSettings:
    threads: int = 2
    batch: int = 8  # throughput batch size B
    iters: int = 30  # timed batch-1 calls per row (in total, over all rounds)
    warmup: int = 3  # untimed calls per row before timing
    rounds: int = 5  # interleaved rounds the timed calls are spread over
    throughput_iters: int = 5  # timed batch-B calls per row
    reference: str = "fp32/torch"  # the row deltas/deviations are measured against (else the first ok fp32 row)
    speed_baseline: str = "fp32/onnxruntime"  # speedups are its p50 / each row's p50 (else the reference row)
    sgemm_n: int = 1024
    device: str = "cpu"  # the torch backend's device (cpu | cuda | auto); the other runtimes run on CPU here


@dataclass
class _Live:
    """A row being measured: its report entry plus what only lives during the run."""

    row: Row
    variant: BuiltVariant | None = None
    prepared: PreparedRow | None = None
    runner: Any = None
    maps: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


def _describe(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def _attempt(live: _Live, step: str, fn: Callable[[], Any], log: Callable[[str], None]) -> Any:
    """Run one step of a row; Unavailable marks it unavailable, any other error failed. Returns None then."""
    try:
        return fn()
    except Unavailable as err:
        live.row.status, live.row.reason = "unavailable", str(err)
    except Exception as err:  # isolation: report it on this row and go on with the others
        live.row.fail(f"{step}: {_describe(err)}")
        log(f"{live.row.name} failed while {step}:\n{traceback.format_exc(limit=4)}")
    return None


def _build_variants(specs: list[VariantSpec], ctx: BenchContext, rows: dict[str, list[_Live]], log) -> None:
    for spec in specs:
        lives = rows[spec.name]
        reason = unavailable_reason(spec)
        if reason:
            for live in lives:
                live.row.status, live.row.reason = "unavailable", f"variant {spec.name}: {reason}"
            continue
        log(f"building variant {spec.name}")
        probe = _Live(Row(spec.name, "*"))
        start = time.perf_counter()
        built = _attempt(probe, f"building variant {spec.name}", lambda: spec.build(ctx), log)
        for live in lives:
            if built is None:
                live.row.status, live.row.reason = probe.row.status, probe.row.reason
            else:
                live.variant = built
                live.row.params, live.row.macs = built.params, built.macs
                live.row.notes += built.notes
                live.extra["build_s"] = time.perf_counter() - start


def _prepare_and_load(live: _Live, spec: BackendSpec, ctx: BenchContext, data: ValidationSet, log) -> None:
    reason = unavailable_reason(spec)
    if reason:
        live.row.status, live.row.reason = "unavailable", f"backend {spec.name}: {reason}"
        return
    log(f"preparing {live.row.name}")
    prepared = _attempt(live, "exporting", lambda: spec.prepare(live.variant, ctx), log)
    if prepared is None:
        return
    live.prepared = prepared
    live.row.artifact = str(prepared.artifact) if prepared.artifact else None
    live.row.size_bytes = size_on_disk(prepared.artifact)
    live.row.notes += prepared.notes
    first_batch = data.batch(ctx.batch)

    def load_and_run_once():
        with measure.PeakRSS() as peak:
            runner = prepared.load()
            size = getattr(runner, "input_size", data.input_size)
            if size != data.input_size:  # e.g. a 96 px student beside the 128 px reference: resampled for it
                runner = ResampledRunner(runner, data.input_size)
            runner(first_batch)
        return runner, peak

    loaded = _attempt(live, "loading", load_and_run_once, log)
    if loaded is None:
        return
    live.runner, peak = loaded
    live.row.runner = getattr(live.runner, "name", type(live.runner).__name__)
    live.row.memory = {"peak_rss_delta_bytes": peak.peak_delta}
    if isinstance(live.runner, ResampledRunner):
        live.row.notes.append(f"the model takes {live.runner.runner.input_size} px: scored on the {data.input_size} "
                              f"px inputs resized to it and its maps resampled back; timed on inputs at its own "
                              f"size (a deployment crops at that size)")


class ResampledRunner:
    """A Runner of another input size seen at `size`: images resized in, position maps resampled back (UV grid
    and crop pixels, `resize_posmap`: the convention the model was trained in), so every row is scored on the
    same data against the same reference."""

    def __init__(self, runner: Any, size: int):
        self.runner, self.input_size, self.name = runner, int(size), getattr(runner, "name", "runner")

    def __call__(self, images: np.ndarray) -> np.ndarray:
        from prnet.geometry.resample import resize_posmap

        maps = self.runner(self.resize_in(images))
        return np.stack([resize_posmap(m, self.input_size) for m in maps]).astype(np.float32)

    def resize_in(self, images: np.ndarray) -> np.ndarray:
        """(B, size, size, 3) -> (B, n, n, 3) at the wrapped runner's input size n."""
        import cv2

        n = self.runner.input_size
        small = [cv2.resize(im, (n, n), interpolation=cv2.INTER_AREA) for im in images]
        return np.ascontiguousarray(np.stack(small), dtype=np.float32)


def _timed_call(runner: Any, images: np.ndarray):
    """What a row's latency times: the model on inputs at its own size. The resampling that scores a model of
    another size beside the reference is not part of its latency (`prnet predict` crops at the model's size)."""
    if isinstance(runner, ResampledRunner):
        inner, own = runner.runner, runner.resize_in(images)
        return lambda: inner(own)
    return lambda: runner(images)


def _find_reference(lives: list[_Live], wanted: str) -> _Live | None:
    ok = [live for live in lives if live.runner is not None]
    for live in ok:
        if live.row.name == wanted:
            return live
    return next((live for live in ok if live.row.variant == "fp32"), None)


def _speed_baseline(lives: list[_Live], wanted: str, reference: _Live | None) -> _Live | None:
    """The row speedups are relative to: `wanted` if it was timed, else the reference row if it was."""
    timed = {live.row.name: live for live in lives if live.row.status == "ok" and live.row.latency_ms}
    if wanted in timed:
        return timed[wanted]
    return reference if reference is not None and reference.row.name in timed else None


def _score(lives: list[_Live], reference: _Live | None, data: ValidationSet, batch: int, log) -> None:
    order = ([reference] if reference else []) + [live for live in lives if live is not reference]
    for live in order:
        if live.runner is None:
            continue
        maps = _attempt(live, "running the validation set", lambda: accuracy.run_all(live.runner, data.images, batch), log)
        if maps is None:
            live.runner = None
            continue
        if not np.isfinite(maps).all():
            live.row.fail("output holds NaN or Inf")
            live.runner = None
            continue
        live.maps = maps
        if reference is not None and reference.maps is not None:
            live.row.deviation_px = accuracy.deviation_px(maps, reference.maps, data.layout)
        metrics = _attempt(live, "scoring", lambda: accuracy.nme_metrics(maps, data.posmaps, data.landmarks, data.layout), log)
        if metrics is None:  # the scoring code is shared by all rows: keep the row, say why accuracy is missing
            live.row.notes.append(f"accuracy not measured: {live.row.reason}")
            live.row.status, live.row.reason = "ok", None
            continue
        ref = reference.row.accuracy if reference is not None and live is not reference else None
        live.row.accuracy = accuracy.deltas(metrics, ref)


def _time(lives: list[_Live], data: ValidationSet, settings: BenchSettings, log) -> None:
    by_name = {live.row.name: live for live in lives if live.runner is not None}

    def failed(step):
        def on_error(name: str, err: BaseException) -> None:
            by_name[name].row.fail(f"{step}: {_describe(err)}")
            by_name[name].runner = None
        return on_error

    one = data.batch(1)
    log(f"timing {len(by_name)} rows at batch 1: {settings.iters} calls each in {settings.rounds} interleaved rounds")
    latencies = timing.time_interleaved(
        {name: _timed_call(live.runner, one) for name, live in by_name.items()},
        settings.iters, settings.rounds, settings.warmup, failed("timing batch 1"),
        on_round=lambda done, total: log(f"  round {done + 1}/{total}"), settle=1,
    )
    for name, samples in latencies.items():
        by_name[name].row.latency_ms = timing.percentiles_ms(samples)
    alive = {name: live for name, live in by_name.items() if live.runner is not None}
    many = data.batch(settings.batch)
    log(f"timing {len(alive)} rows at batch {settings.batch}: {settings.throughput_iters} calls each")
    batches = timing.time_interleaved(
        {name: _timed_call(live.runner, many) for name, live in alive.items()},
        settings.throughput_iters, min(settings.rounds, settings.throughput_iters), 1, failed(f"timing batch {settings.batch}"),
        settle=1,
    )
    for name, samples in batches.items():
        median = float(np.median(samples))
        alive[name].row.throughput = {"batch": settings.batch, "images_per_s": settings.batch / median,
                                      "ms_per_batch": 1e3 * median, "n": len(samples)}


def run_benchmark(
    loaded: Any,
    data: ValidationSet,
    variants: list[VariantSpec],
    backends: list[BackendSpec],
    settings: BenchSettings,
    workdir: Path,
    calibration: Callable[[], tuple[np.ndarray, str]] | None = None,
    model_info: dict | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> dict:
    """Benchmark every (variant, backend) pair; returns the report dict (schema: bench/SCHEMA.md)."""
    steal = StealMeter()  # a busy VM host slows every row: the report says by how much
    threads = measure.pin_threads(settings.threads)
    ctx = BenchContext(loaded=loaded, workdir=Path(workdir), threads=settings.threads, batch=settings.batch,
                       device=settings.device, calibration_images=calibration or (lambda: (data.images, "the evaluation images themselves")))
    lives = [_Live(Row(v.name, b.name)) for v in variants for b in backends]
    by_variant = {v.name: [live for live in lives if live.row.variant == v.name] for v in variants}
    if getattr(loaded, "layout", None) is not None and loaded.layout.layout_id != data.layout.layout_id:
        from prnet.io import PrnetInputError

        raise PrnetInputError(
            f"the model reads position maps in UV layout {loaded.layout.layout_id} but the data "
            f"({data.source}) is in {data.layout.layout_id}; benchmark on data made with the model's layout"
        )

    _build_variants(variants, ctx, by_variant, log)
    backend_by_name = {b.name: b for b in backends}
    for live in lives:
        if live.variant is not None and live.row.status == "ok":
            _prepare_and_load(live, backend_by_name[live.row.backend], ctx, data, log)
    reference = _find_reference(lives, settings.reference)
    _score(lives, reference, data, settings.batch, log)
    _time(lives, data, settings, log)

    peak = measure.sgemm_peak_macs_per_s(settings.threads, n=settings.sgemm_n)
    for live in lives:
        if live.row.macs:
            live.row.roofline_ms = 1e3 * live.row.macs / peak["macs_per_s"]
        if live.row.status != "ok":  # drop half-measured numbers of rows that failed midway
            live.row.latency_ms = live.row.throughput = live.row.accuracy = live.row.deviation_px = None
    baseline = _speed_baseline(lives, settings.speed_baseline, reference)
    if baseline is not None:
        for live in lives:
            if live.row.latency_ms:
                live.row.speedup = baseline.row.latency_ms["p50"] / live.row.latency_ms["p50"]
    front = mark_pareto([live.row for live in lives])
    fp32_macs = next((live.row.macs for live in lives if live.row.variant == "fp32" and live.row.macs), None)
    return {
        "schema": SCHEMA_NAME,
        "version": SCHEMA_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": model_info or {"name": getattr(getattr(loaded, "config", None), "name", "model")},
        "data": {"source": data.source, "num_samples": len(data), "input_size": data.input_size,
                 "layout_id": data.layout.layout_id},
        "settings": {"variants": [v.name for v in variants], "backends": [b.name for b in backends],
                     "threads": settings.threads, "threads_pinned": threads, "batch": settings.batch,
                     "iters": settings.iters, "rounds": min(settings.rounds, settings.iters), "warmup": settings.warmup,
                     "throughput_iters": settings.throughput_iters, "device": settings.device},
        "machine": {**measure.machine_info(), "cpu_steal": steal.lap()},
        "memory_method": measure.MEMORY_METHOD,
        "roofline": {"macs": fp32_macs, "peak_gmacs": peak["macs_per_s"] / 1e9, "sgemm": peak,
                     "latency_ms": 1e3 * fp32_macs / peak["macs_per_s"] if fp32_macs else None},
        "reference_row": reference.row.name if reference else None,
        "speed_baseline": baseline.row.name if baseline else None,
        "pareto_front": front,
        "rows": [live.row.to_json() for live in lives],
    }
