"""Measurements: interleaved timing, peak memory, the sgemm roofline and sizes on disk.

Timing is done so that rows can be compared side by side on a noisy shared machine: every row gets the
same input arrays, rows are interleaved round by round (the start row rotates each round) so that slow
drift (thermal, other processes) spreads over all rows instead of biasing the ones timed last, and the
report gives medians and percentiles of single calls, never means of everything.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Mapping

import numpy as np


# --- threads -------------------------------------------------------------------------------------------
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def pin_threads(threads: int) -> dict[str, int]:
    """Pin PyTorch's intra-op pool (and the OpenMP env of runtimes loaded later) to `threads`; returns what holds."""
    import torch

    for var in THREAD_ENV_VARS:
        os.environ[var] = str(threads)
    torch.set_num_threads(threads)
    return {"torch_intra_op": torch.get_num_threads(), "env": threads}


# --- timing --------------------------------------------------------------------------------------------
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
    on_error: Callable[[str, BaseException], None],
    clock: Callable[[], float] = time.perf_counter,
    on_round: Callable[[int, int], None] = lambda done, total: None,
) -> dict[str, list[float]]:
    """Time each call `iters` times in total, spread over `rounds` interleaved rounds, after `warmup` calls each.

    A call that raises is reported through `on_error(name, error)` and dropped from the remaining rounds;
    the others go on. Returns the per-call durations (seconds) of the rows that never failed.
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
                run(name, min(per_round, remaining), record=True)
    return times


# --- memory --------------------------------------------------------------------------------------------
MEMORY_METHOD = (
    "peak resident set size (RSS, sampled every 1 ms by a background thread) while the row's runner is loaded "
    "and runs one batch, minus the RSS just before loading; memory the process freed earlier and reuses is "
    "not counted, so rows measured later can read low"
)


def current_rss_bytes() -> int | None:
    """This process's resident set size, or None where it cannot be read (no /proc and no psutil)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        return None


class PeakRSS:
    """Context manager: `.peak_delta` = max RSS seen inside minus RSS at entry (bytes), None if unreadable."""

    def __init__(self, interval_s: float = 0.001):
        self.interval_s = interval_s
        self.peak_delta: int | None = None

    def __enter__(self) -> "PeakRSS":
        self._start = current_rss_bytes()
        self._peak = self._start
        self._stop = threading.Event()
        if self._start is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = current_rss_bytes()
            if rss is not None and rss > self._peak:
                self._peak = rss
            time.sleep(self.interval_s)

    def __exit__(self, *exc) -> None:
        if self._start is None:
            return
        self._stop.set()
        self._thread.join()
        final = current_rss_bytes() or self._start
        self.peak_delta = max(self._peak, final) - self._start


# --- roofline ------------------------------------------------------------------------------------------
def sgemm_peak_macs_per_s(threads: int, n: int = 1024, repeats: int = 10) -> dict[str, float]:
    """Measured FP32 matrix-multiply throughput (MAC/s, median of `repeats`) with `threads` PyTorch threads."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        g = torch.Generator().manual_seed(0)
        a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
        out = torch.empty(n, n)
        for _ in range(2):
            torch.mm(a, b, out=out)
        durations = []
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b, out=out)
            durations.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    median = float(np.median(durations))
    return {"n": n, "threads": threads, "median_s": median, "macs_per_s": n**3 / median}


# --- model size ----------------------------------------------------------------------------------------
def size_on_disk(path: str | os.PathLike | None) -> int | None:
    """Bytes of a file, or of every file under a folder (CoreML .mlpackage, OpenVINO xml+bin folders)."""
    if path is None:
        return None
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return None


def machine_info() -> dict[str, object]:
    import platform

    import torch

    from prnet.hardware import cpu_info

    info = cpu_info()
    return {
        "platform": platform.platform(),
        "cpu": info["name"],
        "cpu_flags": info["flags"],
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
    }
