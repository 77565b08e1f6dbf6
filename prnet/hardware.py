"""What this machine's CPU can do, read from /proc/cpuinfo (the CPU kind changes between machines: never assume)."""

from __future__ import annotations

import functools
import platform

BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # native bf16 dot products (AVX512-BF16 on Zen 4/5 and Xeon, AMX on Xeon 4+)
REPORTED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def parse_cpuinfo(text: str) -> dict[str, object]:
    """/proc/cpuinfo text -> {'name', 'vendor', 'family', 'model', 'flags': [the REPORTED_FLAGS present]}."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor is enough: all cores are one kind here
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    return {
        "name": fields.get("model name") or platform.processor() or platform.machine(),
        "vendor": fields.get("vendor_id", ""),
        "family": fields.get("cpu family", ""),
        "model": fields.get("model", ""),
        "flags": [f for f in REPORTED_FLAGS if f in flags],
    }


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict[str, object]:
    """This machine's CPU (parse_cpuinfo of /proc/cpuinfo); best effort off Linux."""
    try:
        with open("/proc/cpuinfo") as f:
            return parse_cpuinfo(f.read())
    except OSError:
        return parse_cpuinfo("")


def cpu_summary() -> str:
    """One line naming the CPU for benchmark output, e.g. 'Intel(R) Xeon(R) Processor (family 6 model 207; avx2 ... amx_bf16)'."""
    info = cpu_info()
    return f"{info['name']} (family {info['family']} model {info['model']}; {' '.join(info['flags']) or 'no AVX flags read'})"


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX) and oneDNN agrees; bf16 elsewhere is emulated
    and slower than fp32."""
    if not any(flag in cpu_info()["flags"] for flag in BF16_FLAGS):
        return False
    try:
        import torch

        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


# --- CPU steal: time the hypervisor gave to other guests -------------------------------------------------------
STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")  # guest time is inside user


def parse_proc_stat(text: str) -> tuple[int, int] | None:
    """/proc/stat text -> (steal, total) clock ticks of the all-CPU 'cpu' line; None when it has no steal column."""
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu" and len(parts) > len(STAT_FIELDS):
            ticks = [int(v) for v in parts[1 : 1 + len(STAT_FIELDS)]]
            return ticks[STAT_FIELDS.index("steal")], sum(ticks)
    return None


def cpu_steal_ticks() -> tuple[int, int] | None:
    try:
        with open("/proc/stat") as f:
            return parse_proc_stat(f.read())
    except OSError:  # not Linux
        return None


def steal_fraction(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """Share of all CPU time between two readings that was stolen (0..1); None without both or without ticks."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


STEAL_WARNING = 0.05  # above this share of CPU time taken by the hypervisor, absolute timings mislead


def steal_summary(steal: float) -> str:
    """'CPU steal 0.2 % during the run', with a warning above STEAL_WARNING: what benchmark headers print."""
    if steal <= STEAL_WARNING:
        return f"CPU steal {100 * steal:.1f} % during the run"
    return (f"CPU steal {100 * steal:.0f} % during the run: the VM's host gave that share of its CPU time to other "
            "guests, so absolute timings are slower than on a quiet machine (ratios measured side by side in this "
            "run still compare)")


def steal_clause(steal: float | None) -> str:
    """'; CPU steal 0.2 % during the run' (steal_summary) to end a benchmark header with, '' when not measured."""
    return "" if steal is None else f"; {steal_summary(steal)}"


class StealMeter:
    """CPU steal since the meter started or since its last lap: the `st` column of top and vmstat. On a VM whose
    host is oversubscribed every timing slows by about this share (measured here: 45-52 % for a whole session, when
    the same CPU kind trained 2.3x faster on another day), so benchmarks and training logs record it."""

    def __init__(self) -> None:
        self._last = cpu_steal_ticks()

    def lap(self) -> float | None:
        now = cpu_steal_ticks()
        fraction, self._last = steal_fraction(self._last, now), now
        return None if fraction is None else round(fraction, 4)
