"""The one latency timer: interleaved rounds, warm-up, per-call durations, percentiles.

Every latency number the project prints (`prnet bench`, `prnet compress`, `prnet export`, the speed scripts)
comes from `time_interleaved`, so rows are comparable side by side on a noisy shared machine: every call is
warmed up, the timed calls are spread over rounds in which all calls run one after another, and the starting
call rotates each round, so slow drift (thermal, other processes) spreads over all of them instead of biasing
the ones timed last. Reports give medians and percentiles of single calls, never means of everything.
Training-throughput and stage timers (prnet.train.loop, the quickstart stages) are not latency timers and do not
use it.
"""

from __future__ import annotations

import time
from typing import Callable, Mapping

import numpy as np


def percentiles_ms(samples_s: list[float]) -> dict[str, float]:
    """p50/p90/p99/mean/min in milliseconds of per-call times in seconds, and the count n."""
    ms = np.asarray(samples_s, dtype=np.float64) * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(ms.mean()),
            "min": float(ms.min()), "n": int(ms.size)}


def round_orders(names: list[str], rounds: int) -> list[list[str]]:
    """The row order of each round: round r starts at row r mod n, so no row is always first or last."""
    n = len(names)
    return [[names[(r + i) % n] for i in range(n)] for r in range(rounds)] if n else []


def time_interleaved(
    calls: Mapping[str, Callable[[], object]],
    iters: int,
    rounds: int,
    warmup: int,
    on_error: Callable[[str, BaseException], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    on_round: Callable[[int, int], None] = lambda done, total: None,
    settle: int = 0,
) -> dict[str, list[float]]:
    """Time each call `iters` times in total, spread over `rounds` interleaved rounds, after `warmup` calls each.

    `settle`: untimed calls each time a call takes its turn in a round. The first call after another runtime's
    pays for that runtime's threads still spinning (ONNX Runtime and OpenVINO both spin-wait after a call) and
    for cold caches: on 2 cores one-call round-robin measured an ONNX Runtime model at 21-37 ms that runs at
    15.5 ms called back to back (docs/compress.md). A deployed model is called back to back.

    A call that raises is reported through `on_error(name, error)` and dropped from the remaining rounds;
    the others go on (without `on_error` it raises). Returns the per-call durations (seconds) of the calls that never
    failed. `rounds == iters` is plain round-robin: one call of each per round.
    """
    alive = dict(calls)
    times: dict[str, list[float]] = {name: [] for name in calls}

    def run(name: str, count: int, record: bool) -> None:
        try:
            for _ in range(count):
                start = clock()
                alive[name]()
                if record:
                    times[name].append(clock() - start)
        except Exception as err:  # one broken row must not stop the others
            if on_error is None:
                raise
            del alive[name]
            times.pop(name, None)
            on_error(name, err)

    for name in list(alive):
        run(name, warmup, record=False)
    per_round = max(1, -(-iters // max(1, rounds)))  # ceil
    orders = round_orders(list(calls), rounds)
    for number, order in enumerate(orders):
        on_round(number, len(orders))
        for name in order:
            remaining = iters - len(times.get(name, ()))
            if name in alive and remaining > 0:
                run(name, settle, record=False)
                if name in alive:  # a settling call may fail too
                    run(name, min(per_round, remaining), record=True)
    return times


def median_ms(call: Callable[[], object], runs: int, warmup: int = 1) -> float | None:
    """Median milliseconds of `runs` calls of one callable after `warmup` calls (None when runs <= 0)."""
    if runs <= 0:
        return None
    return percentiles_ms(time_interleaved({"call": call}, runs, 1, warmup)["call"])["p50"]
