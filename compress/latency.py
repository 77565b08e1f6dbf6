"""Side-by-side latency of ONNX variants in ONNX Runtime and OpenVINO, in ONE process, interleaved.

The CPU is shared and drifts by ~10% between runs, so absolute milliseconds from separate runs are not
comparable: every variant/runtime pair is timed round-robin (one call each per round) and the medians and
ratios to a named baseline are reported together.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from prnet.io import PrnetInputError

RUNTIMES = ("onnxruntime", "openvino")
# OpenVINO's CPU plugin silently defaults to INFERENCE_PRECISION_HINT=bf16 on CPUs with AVX512-BF16/AMX (float
# layers then run in bf16: measured 0.3 px mean deviation on a trained model). "openvino" pins f32 so FP32 means
# FP32 (and INT8 models keep their float layers in f32); "openvino-bf16" is the runtime's default, named.
OPTIONAL_RUNTIMES = ("openvino-bf16",)


def ort_callable(path: str | Path, threads: int = 2) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda images: session.run(None, {name: images})[0]


def openvino_callable(path: str | Path, threads: int = 2, precision: str = "f32") -> Callable[[np.ndarray], np.ndarray]:
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                                     "INFERENCE_PRECISION_HINT": precision})
    request = compiled.create_infer_request()
    return lambda images: request.infer({0: images})[compiled.output(0)]


def runtime_callable(runtime: str, path: str | Path, threads: int = 2) -> Callable[[np.ndarray], np.ndarray]:
    if runtime == "onnxruntime":
        return ort_callable(path, threads)
    if runtime == "openvino":
        return openvino_callable(path, threads, "f32")
    if runtime == "openvino-bf16":
        return openvino_callable(path, threads, "bf16")
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
                baseline: str | None = None) -> dict[str, Timing]:
    """Time each zero-argument call `repeats` times, round-robin; medians and speed-ups vs `baseline`."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            samples[name].append((time.perf_counter() - start) * 1e3)
    timings = {}
    for name, values in samples.items():
        ordered = sorted(values)
        timings[name] = Timing(name, statistics.median(values), ordered[int(0.9 * (len(ordered) - 1))],
                               ordered[0], len(values))
    if baseline is not None:
        reference = timings[baseline].median_ms
        for timing in timings.values():
            timing.ratio_to_baseline = reference / timing.median_ms
    return timings


def compare_onnx(models: dict[str, str | Path], runtimes: tuple[str, ...] = RUNTIMES, input_size: int = 256,
                 repeats: int = 20, threads: int = 2, baseline: str | None = None,
                 seed: int = 0) -> tuple[dict[str, Timing], dict[str, str]]:
    """Time every (model, runtime) pair, named 'model@runtime'; failures are returned, not swallowed."""
    image = np.random.default_rng(seed).random((1, 3, input_size, input_size), dtype=np.float32)
    calls, failures = {}, {}
    for model_name, path in models.items():
        for runtime in runtimes:
            key = f"{model_name}@{runtime}"
            try:
                run = runtime_callable(runtime, path, threads)
                run(image)
                calls[key] = (lambda run=run: run(image))
            except Exception as err:  # reported in the table with the reason
                failures[key] = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    if baseline is not None and baseline not in calls:
        baseline = None
    return (interleaved(calls, repeats=repeats, baseline=baseline) if calls else {}), failures
