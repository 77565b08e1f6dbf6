"""Measurements: thread pinning, peak memory and the sgemm roofline.

Timing is prnet.timing's (the project's one latency timer: interleaved rounds, rotating start, medians and
percentiles of single calls); sizes on disk are prnet.io.size_on_disk.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np

from prnet.timing import time_interleaved


# --- threads -------------------------------------------------------------------------------------------
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def pin_threads(threads: int) -> dict[str, int]:
    """Pin PyTorch's intra-op pool (and the OpenMP env of runtimes loaded later) to `threads`; returns what holds."""
    import torch

    for var in THREAD_ENV_VARS:
        os.environ[var] = str(threads)
    torch.set_num_threads(threads)
    return {"torch_intra_op": torch.get_num_threads(), "env": threads}


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
        durations = time_interleaved({"sgemm": lambda: torch.mm(a, b, out=out)}, repeats, 1, warmup=2)["sgemm"]
    finally:
        torch.set_num_threads(previous)
    median = float(np.median(durations))
    return {"n": n, "threads": threads, "median_s": median, "macs_per_s": n**3 / median}


def machine_info() -> dict[str, object]:
    import platform

    import torch

    from prnet.hardware import cpu_info, cpu_summary

    info = cpu_info()
    return {
        "platform": platform.platform(),
        "cpu": info["name"],
        "cpu_summary": cpu_summary(),
        "cpu_flags": info["flags"],
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
    }
