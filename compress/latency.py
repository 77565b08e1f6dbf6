"""Side-by-side latency of ONNX variants in ONNX Runtime and OpenVINO, in ONE process, interleaved.

The CPU is shared and drifts by ~10% between runs, so absolute milliseconds from separate runs are not
comparable: every variant/runtime pair is timed by prnet.timing in interleaved rounds (a block of back-to-back
calls each per round after one untimed settling call, the start rotating; one-call round-robin let each
runtime's spinning threads slow the next one's call) and the medians and ratios to a named baseline are
reported together. Sessions are built by
prnet.export.runners (one place configures ORT sessions and OpenVINO compiled models); the files here are raw
ONNX (no prnet metadata needed), so the calls take and return NCHW arrays as the graph does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from prnet.io import PrnetInputError

# Runtime names are the registry's (prnet.export.formats: "onnxruntime", "openvino"); OPENVINO_PRECISION also
# names the one compress-only setting. OpenVINO's CPU plugin silently defaults to INFERENCE_PRECISION_HINT=bf16
# on CPUs with AVX512-BF16/AMX (float layers then run in bf16: measured 0.3 px mean deviation on a trained
# model). "openvino" pins f32 so FP32 means FP32 (and INT8 models keep their float layers in f32);
# "openvino-bf16" is the runtime's default, named.
RUNTIMES = ("onnxruntime", "openvino")
OPTIONAL_RUNTIMES = ("openvino-bf16",)
OPENVINO_PRECISION = {"openvino": "f32", "openvino-bf16": "bf16"}
ROUNDS = 5  # interleaved rounds the timed calls are spread over, as `prnet bench` does


def runtime_names(text: str) -> tuple[str, ...]:
    """Comma-separated runtimes as typed (a format name such as "onnx" is accepted for its runtime) -> names."""
    from prnet.export.formats import runtime_name_of

    chosen = tuple(dict.fromkeys(runtime_name_of(r) for r in text.split(",") if r.strip()))
    unknown = [r for r in chosen if r not in RUNTIMES + OPTIONAL_RUNTIMES]
    if unknown or not chosen:
        raise PrnetInputError(f"--runtimes {text!r}: choose from {', '.join(RUNTIMES + OPTIONAL_RUNTIMES)}")
    return chosen


def ort_callable(path: str | Path, threads: int = 2) -> Callable[[np.ndarray], np.ndarray]:
    from prnet.export.runners import ort_session

    session = ort_session(path, threads)
    name = session.get_inputs()[0].name
    return lambda images: session.run(None, {name: images})[0]


def openvino_callable(path: str | Path, threads: int = 2, precision: str = "f32") -> Callable[[np.ndarray], np.ndarray]:
    import openvino as ov

    from prnet.export.runners import openvino_compile

    compiled = openvino_compile(ov.Core(), str(path), threads=threads, precision=precision)
    request = compiled.create_infer_request()
    return lambda images: request.infer({0: images})[compiled.output(0)]


def runtime_callable(runtime: str, path: str | Path, threads: int = 2) -> Callable[[np.ndarray], np.ndarray]:
    from prnet.export.formats import runtime_name_of

    runtime = runtime_name_of(runtime)
    if runtime == "onnxruntime":
        return ort_callable(path, threads)
    if runtime in OPENVINO_PRECISION:
        return openvino_callable(path, threads, OPENVINO_PRECISION[runtime])
    raise PrnetInputError(f"unknown runtime {runtime!r}; use one of {RUNTIMES + OPTIONAL_RUNTIMES}")


@dataclass
class Timing:
    name: str
    median_ms: float
    p90_ms: float
    min_ms: float
    runs: int
    ratio_to_baseline: float | None = None  # baseline median / this median (2.0 = twice as fast)

    def to_dict(self) -> dict:
        return asdict(self)


def interleaved(calls: dict[str, Callable[[], object]], repeats: int = 20, warmup: int = 3,
                baseline: str | None = None,
                on_error: Callable[[str, BaseException], None] | None = None) -> dict[str, Timing]:
    """Time each zero-argument call `repeats` times in interleaved blocks; medians and speed-ups vs `baseline`.
    A call that raises goes to `on_error(name, error)` and is left out (without `on_error` it raises)."""
    from prnet.timing import percentiles_ms, time_interleaved

    # blocks of back-to-back calls (a deployed model runs so), one untimed settling call per turn, rounds rotating
    samples = time_interleaved(calls, repeats, max(1, min(ROUNDS, repeats // 2)), warmup, on_error, settle=1)
    timings = {}
    for name, values in samples.items():
        stats = percentiles_ms(values)
        timings[name] = Timing(name, stats["p50"], stats["p90"], stats["min"], stats["n"])
    if baseline is not None and baseline in timings:
        reference = timings[baseline].median_ms
        for timing in timings.values():
            timing.ratio_to_baseline = reference / timing.median_ms
    return timings


def _reason(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"


def compare_onnx(models: dict[str, str | Path], runtimes: tuple[str, ...] = RUNTIMES,
                 input_size: int | Mapping[str, int] = 256, repeats: int = 20, threads: int = 2,
                 baseline: str | None = None, seed: int = 0) -> tuple[dict[str, Timing], dict[str, str]]:
    """Time every (model, runtime) pair, named 'model@runtime'; failures are returned, not swallowed.
    `input_size`: one size for all, or one per model name (a smaller-input student beside its teacher)."""
    sizes = input_size if isinstance(input_size, Mapping) else {name: input_size for name in models}
    rng = np.random.default_rng(seed)
    images = {s: rng.random((1, 3, s, s), dtype=np.float32) for s in sorted(set(sizes.values()))}
    calls, failures = {}, {}
    for model_name, path in models.items():
        image = images[sizes[model_name]]
        for runtime in runtimes:
            key = f"{model_name}@{runtime}"
            try:
                run = runtime_callable(runtime, path, threads)
                run(image)
                calls[key] = (lambda run=run, image=image: run(image))
            except Exception as err:  # reported in the table with the reason
                failures[key] = _reason(err)
    timings = interleaved(calls, repeats=repeats, baseline=baseline,
                          on_error=lambda key, err: failures.__setitem__(key, _reason(err))) if calls else {}
    return timings, failures
