"""The final report of `prnet quickstart`: OUT/report.json (schema below) and OUT/report.md, written atomically.

    {"schema": "prnet-quickstart", "version": 1, "created": ISO time, "ok": bool, "exit_code": 0 | 1,
     "total_seconds": float, "start": how training started, "machine": {..., "load_average_start/end"},
     "config": QuickstartConfig as a dict,
     "stages": [{"name", "status" (ok | failed | skipped | blocked), "seconds", "budget_s", "over_budget",
                 "headline", "error", "notes", "numbers" (stage-specific), "artifacts": [...]}, ...],
     "artifacts": [{"stage", "path", "kind", "status", "size_bytes", "note"}, ...],   # every file, all stages
     "files": {"markdown": path, "json": path}}
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import platform
import time
from pathlib import Path
from typing import Any

from prnet.report import fmt, markdown_table, mb, md_cell, write_report_files

SCHEMA, VERSION = "prnet-quickstart", 1


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def headline(name: str, status: str, numbers: dict, error: str | None) -> str:
    """One line per stage for the summary table."""
    if status in ("skipped", "blocked"):
        return error or "skipped (--skip)"
    try:
        return _headline(name, numbers) + (f"; {error}" if error else "")
    except (KeyError, TypeError):
        return error or ""


def _headline(name: str, n: dict) -> str:
    if name == "data":
        return f"{n['samples']} synthetic samples (seed {n['seed']})"
    if name == "train":
        before = f"{pct(n['val_nme_before'])} -> " if "val_nme_before" in n else ""
        return f"{n['mode']}, {n['steps']} steps: val NME {before}{pct(n.get('val_nme_after'))}"
    if name == "compress":
        parts = []
        for plan, label in (("int8", "INT8"), ("svd_int8", "SVD+INT8")):
            cells = n[plan]["variants"].get("compressed-int8", {}).get("runtimes", {})
            best = min((c for c in cells.values() if c.get("speedup")), key=lambda c: -c["speedup"], default=None)
            if best:
                parts.append(f"{label} {best['speedup']:.2f}x, NME {fmt(best['nme68_2d'], '.2f')} %")
        return "; ".join(parts)
    if name == "export":
        return ", ".join(f"{f} {r['status']}" for f, r in n["formats"].items())
    if name == "bench":
        rows = n["rows"]
        ok = {k: r for k, r in rows.items() if r["status"] == "ok" and r["p50_ms"] is not None}
        counts = {s: sum(r["status"] == s for r in rows.values()) for s in ("ok", "unavailable", "failed")}
        fastest = min(ok, key=lambda k: ok[k]["p50_ms"], default=None)
        tail = f"; fastest {fastest} {ok[fastest]['p50_ms']:.1f} ms" if fastest else ""
        return ", ".join(f"{v} {k}" for k, v in counts.items() if v) + tail
    if name == "report":
        return "report.md + report.json"
    return ""


def build_report(run, started: float, load_before: tuple, start: str, thread_timings: dict) -> dict[str, Any]:
    import torch

    stages, artifacts = [], []
    for name, result in run.results.items():
        stage = {"name": name, "status": result.status, "seconds": round(result.seconds, 1),
                 "budget_s": result.budget_s, "over_budget": result.seconds > result.budget_s,
                 "headline": headline(name, result.status, result.numbers, result.error), "error": result.error,
                 "notes": result.notes, "numbers": result.numbers,
                 "artifacts": [dataclasses.asdict(a) for a in result.artifacts]}
        stages.append(stage)
        artifacts += [{"stage": name, **a} for a in stage["artifacts"]]
    failed = [s["name"] for s in stages if s["status"] in ("failed", "blocked")]
    out = Path(run.config.out)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(run.config).items()}
    return {
        "schema": SCHEMA, "version": VERSION, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "ok": not failed, "exit_code": 1 if failed else 0, "failed_stages": failed,
        "total_seconds": round(time.perf_counter() - started, 1), "start": start,
        "machine": {"platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                    "threads": run.threads, "thread_probe_ms": {t: round(1000 * v, 2) for t, v in thread_timings.items()},
                    "load_average_start": [round(x, 2) for x in load_before],
                    "load_average_end": [round(x, 2) for x in os.getloadavg()]},
        "config": config, "stages": stages, "artifacts": artifacts,
        "files": {"markdown": str(out / "report.md"), "json": str(out / "report.json")},
    }


def write_report(report: dict, out: Path) -> dict[str, Path]:
    return write_report_files(out, report, render_markdown(report))


def render_markdown(report: dict) -> str:
    m = report["machine"]
    lines = ["# prnet quickstart report", "",
             f"{'All stages ok' if report['ok'] else 'FAILED: ' + ', '.join(report['failed_stages'])}; "
             f"total {report['total_seconds']:.0f} s on {m['cpu_count']} CPU cores, {m['threads']} thread(s) used ({m['platform']}, torch {m['torch']}; "
             f"load average {m['load_average_start'][0]} at start, {m['load_average_end'][0]} at the end). "
             f"{report['created']}.", "", f"Training: {report['start']}.", "", "## Stages", ""]
    over = {s["name"]: " (over)" if s["over_budget"] and s["status"] != "skipped" else "" for s in report["stages"]}
    lines += markdown_table(["stage", "status", "seconds", "budget", "result"], [
        [s["name"], s["status"], f"{s['seconds']:.0f}{over[s['name']]}", f"{s['budget_s']:.0f}", md_cell(s["headline"])]
        for s in report["stages"]])
    lines += ["", "## Artifacts", ""] + markdown_table(["stage", "kind", "status", "MB", "path", "note"], [
        [a["stage"], a["kind"], a["status"], mb(a["size_bytes"]), f"`{a['path']}`", md_cell(a["note"])]
        for a in report["artifacts"]])
    by_name = {s["name"]: s for s in report["stages"]}
    lines += compress_section(by_name.get("compress")) + export_section(by_name.get("export"))
    lines += bench_section(by_name.get("bench"))
    problems = [f"- {s['name']}: {s['status']}: {s['error']}" for s in report["stages"] if s["error"]]
    notes = [f"- {s['name']}: {n}" for s in report["stages"] for n in s["notes"]]
    if problems or notes:
        lines += ["", "## Problems and notes", ""] + problems + notes
    lines += ["", "Timings come from a shared machine (see the load average): compare rows of one table, not runs."]
    return "\n".join(lines) + "\n"


def compress_section(stage: dict | None) -> list[str]:
    if not stage or stage["status"] != "ok" and not stage["numbers"].get("int8"):
        return []
    rows = [[plan, variant, runtime, fmt(c["median_ms"], ".1f"), fmt(c["speedup"], ".2f"), fmt(c["nme68_2d"], ".3f")]
            for plan in ("int8", "svd_int8")
            for variant, row in (stage["numbers"].get(plan) or {}).get("variants", {}).items()
            for runtime, c in row["runtimes"].items()]
    return ["", "## Compression (`prnet compress`)", ""] + markdown_table(
        ["plan", "variant", "runtime", "ms", "x vs original ORT", "NME68 2D %"], rows)


def export_section(stage: dict | None) -> list[str]:
    if not stage or not stage["numbers"].get("formats"):
        return []
    rows = [[name, r["status"], r.get("precision", "-"), mb(r.get("size_bytes")), fmt(r.get("max_deviation_px"), ".3g"),
             fmt(r.get("mean_deviation_px"), ".3g"), fmt(r.get("latency_ms"), ".1f"), md_cell(r.get("reason", ""))]
            for name, r in stage["numbers"]["formats"].items()]
    return ["", "## Export (`prnet export`)", ""] + markdown_table(
        ["format", "status", "precision", "MB", "max px", "mean px", "ms", "why"], rows)


def bench_section(stage: dict | None) -> list[str]:
    if not stage or not stage["numbers"].get("rows"):
        return []
    n = stage["numbers"]
    rows = [[name, r["status"], fmt(r["p50_ms"], ".1f"), fmt(r["nme68_2d"], ".3f"), mb(r["size_bytes"]),
             md_cell(r["reason"])] for name, r in n["rows"].items()]
    return ["", "## Benchmark (`prnet bench`)", "", f"On {n['data']}; reference row {n['reference_row']}; Pareto "
            f"front: {', '.join(n['pareto_front'] or [])}.", ""] + markdown_table(
        ["row", "status", "p50 ms", "NME68 2D %", "MB", "why"], rows)
