"""The benchmark report: one `Row` per (variant, backend), the Pareto front, and its four renderings.

A report is plain data (dataclasses -> JSON, schema in bench/SCHEMA.md); the rich table, the Markdown
file and the latency-vs-NME plot are all rendered from the JSON dict, so what a user reads in the
terminal is exactly what the files hold. `write_run_dir` writes every file atomically.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from prnet.hardware import STEAL_WARNING, steal_clause, steal_summary
from prnet.report import fmt, markdown_table, mb, rich_table, write_report_files

SCHEMA_NAME = "prnet-bench"
SCHEMA_VERSION = 1
STATUSES = ("ok", "unavailable", "failed")
REPORT_FILES = {"json": "report.json", "markdown": "report.md", "plot": "latency_vs_nme.png"}


@dataclass
class Row:
    """One benchmarked (variant, backend). Every measurement is None when it was not (or could not be) taken."""

    variant: str
    backend: str
    status: str = "ok"  # ok | unavailable | failed
    reason: str | None = None  # why unavailable/failed; None when ok
    runner: str | None = None  # the runner's own name (e.g. "onnxruntime:model.onnx")
    artifact: str | None = None  # the file (or folder) this row loads
    size_bytes: int | None = None
    params: int | None = None
    macs: int | None = None  # multiply-accumulates per image (batch 1)
    latency_ms: dict[str, float] | None = None  # p50, p90, p99, mean, min at batch 1; "n" timed calls
    throughput: dict[str, float] | None = None  # batch, images_per_s (median), ms_per_batch (median), n
    memory: dict[str, Any] | None = None  # peak_rss_delta_bytes, method
    accuracy: dict[str, float] | None = None  # nme68_2d, nme68_3d, dense_nme (percent) and their delta_* vs FP32
    deviation_px: dict[str, float] | None = None  # mean, p99, max per-pixel distance to the FP32 output (pixels)
    speedup: float | None = None  # the speed baseline row's p50 / this row's p50 (2.0 = twice as fast)
    roofline_ms: float | None = None  # macs / measured peak sgemm MAC rate: the floor for this row's latency
    pareto: bool = False  # on the latency-vs-NME Pareto front of the ok rows
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return row_name(self.variant, self.backend)

    def fail(self, reason: str) -> None:
        self.status, self.reason = "failed", reason

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, **asdict(self)}


def row_name(variant: str, backend: str) -> str:
    return f"{variant}/{backend}"


def find_row(rows: Iterable[Row] | Iterable[Mapping], name: str):
    """The row called `name` ("variant/backend"); rows are looked up by name, never by position."""
    for row in rows:
        if (row.name if isinstance(row, Row) else row["name"]) == name:
            return row
    raise KeyError(f"no row named {name!r}")


def pareto_front(points: Mapping[str, tuple[float, float]], y_tolerance: float = 0.0) -> list[str]:
    """Names of the points no other point dominates, when both coordinates are to be minimized.

    A point is dominated when another is <= in both coordinates and < in at least one. `y_tolerance` makes
    second coordinates closer than it count as equal (NMEs that differ by float noise are a tie, so the
    faster row wins). Identical points are all kept. Returned sorted by the first coordinate.
    """
    def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
        (ax, ay), (bx, by) = a, b
        y_le, y_lt = ay <= by + y_tolerance, ay < by - y_tolerance
        return ax <= bx and y_le and (ax < bx or y_lt)

    front = [name for name, point in points.items()
             if not any(dominates(other, point) for key, other in points.items() if key != name)]
    return sorted(front, key=lambda n: points[n])


NME_TIE = 1e-3  # percentage points: NMEs closer than this are a tie on the Pareto front


def mark_pareto(rows: list[Row], metric: str = "nme68_2d") -> list[str]:
    """Set `row.pareto` for ok rows with a p50 latency and `metric`; returns the front's names."""
    points = {
        row.name: (row.latency_ms["p50"], row.accuracy[metric])
        for row in rows
        if row.status == "ok" and row.latency_ms and row.accuracy and row.accuracy.get(metric) is not None
    }
    front = pareto_front(points, y_tolerance=NME_TIE)
    for row in rows:
        row.pareto = row.name in front
    return front


# --- rendering ---------------------------------------------------------------------------------------
# (header, function(row dict) -> str); shared by the rich table and the Markdown table.


def _px(value: float | None) -> str:
    if value is None:  # reports written before p99 was measured
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _get(row: Mapping, group: str, key: str):
    return (row.get(group) or {}).get(key)


def _status(row: Mapping) -> str:
    return row["status"] + ("*" if row.get("pareto") else "")


COLUMNS: list[tuple[str, Any]] = [
    ("row", lambda r: r["name"]),
    ("status", _status),
    ("size MB", lambda r: mb(r["size_bytes"])),
    ("params M", lambda r: fmt(r["params"] and r["params"] / 1e6, ".3f")),
    ("GMACs", lambda r: fmt(r["macs"] and r["macs"] / 1e9, ".3f")),
    ("p50 ms", lambda r: fmt(_get(r, "latency_ms", "p50"), ".2f")),
    ("p90 ms", lambda r: fmt(_get(r, "latency_ms", "p90"), ".2f")),
    ("p99 ms", lambda r: fmt(_get(r, "latency_ms", "p99"), ".2f")),
    ("speedup", lambda r: "-" if r.get("speedup") is None else f"{r['speedup']:.2f}x"),
    ("img/s@B", lambda r: fmt(_get(r, "throughput", "images_per_s"), ".1f")),
    ("mem MB", lambda r: fmt(_get(r, "memory", "peak_rss_delta_bytes") and _get(r, "memory", "peak_rss_delta_bytes") / 1e6, ".1f")),
    ("NME2D %", lambda r: fmt(_get(r, "accuracy", "nme68_2d"), ".3f")),
    ("NME3D %", lambda r: fmt(_get(r, "accuracy", "nme68_3d"), ".3f")),
    ("dense %", lambda r: fmt(_get(r, "accuracy", "dense_nme"), ".3f")),
    ("dNME2D", lambda r: fmt(_get(r, "accuracy", "delta_nme68_2d"), "+.3f")),
    ("dev px mean/p99/max", lambda r: "-" if r.get("deviation_px") is None else
        "/".join(_px(r["deviation_px"].get(k)) for k in ("mean", "p99", "max"))),
]


def roofline_cells(report: Mapping) -> dict[str, str] | None:
    roof = report.get("roofline")
    if not roof or roof.get("latency_ms") is None:
        return None
    return {
        "row": "roofline",
        "status": "ref",
        "GMACs": fmt(roof["macs"] / 1e9, ".3f"),
        "p50 ms": fmt(roof["latency_ms"], ".2f"),
    }


def table_rows(report: Mapping) -> list[list[str]]:
    """The table body as strings: one line per row, then the roofline reference line."""
    lines = [[fn(row) for _, fn in COLUMNS] for row in report["rows"]]
    roof = roofline_cells(report)
    if roof:
        lines.append([roof.get(header, "") for header, _ in COLUMNS])
    return lines


def settings_line(report: Mapping) -> str:
    s = report["settings"]
    return (
        f"threads {s['threads']}, batch-1 latency over {s['iters']} timed calls per row in {s['rounds']} "
        f"interleaved rounds after {s['warmup']} warm-up calls, throughput at batch {s['batch']}; "
        f"accuracy on {report['data']['num_samples']} samples of {report['data']['source']}; "
        f"reference row {report.get('reference_row') or '-'}; speedup vs {report.get('speed_baseline') or '-'}; roofline = FP32 MACs / measured sgemm peak "
        f"{(report.get('roofline') or {}).get('peak_gmacs') or 0:.1f} GMAC/s"
    )


def problem_lines(report: Mapping) -> list[str]:
    """One line per distinct (status, reason), naming every row it applies to (a missing runtime is one line)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for row in report["rows"]:
        if row["status"] != "ok":
            reason = row["reason"] or ""
            for prefix in (f"backend {row['backend']}: ", f"variant {row['variant']}: "):
                reason = reason[len(prefix):] if reason.startswith(prefix) else reason
            groups.setdefault((row["status"], reason), []).append(row["name"])
    return [f"{', '.join(names)}: {status}: {reason}" for (status, reason), names in groups.items()]


def steal_note(report: Mapping) -> str:
    """'; CPU steal 0.2 % during the run' (prnet.hardware.steal_summary) when the run measured it, else ''."""
    return steal_clause(report["machine"].get("cpu_steal"))


def to_markdown(report: Mapping) -> str:
    headers = [header for header, _ in COLUMNS]
    out = [
        f"# prnet bench: {report['model']['name']}",
        "",
        f"{report['created']} on {report['machine'].get('cpu_summary') or report['machine']['cpu']} ({report['machine']['platform']}){steal_note(report)}",
        "",
        settings_line(report) + ".",
        "",
    ]
    out += markdown_table(headers, table_rows(report))
    out += [
        "",
        "`*` after the status: on the Pareto front of p50 latency vs 68-point 2D NME. NME in percent of the GT "
        "landmark box sqrt(w*h); dNME = row minus the reference row; dev px = per-vertex distance of the output "
        "from the reference row's output over the face pixels. Memory: " + report.get("memory_method", "-") + ".",
    ]
    problems = problem_lines(report)
    if problems:
        out += ["", "## Rows that did not run", ""] + [f"- {line}" for line in problems]
    for row in report["rows"]:
        for note in row.get("notes") or []:
            out.append(f"- note {row['name']}: {note}")
    return "\n".join(out) + "\n"


# The terminal table leaves out what only fits in the files (params, p90, memory, 3D and dense NME) so that it
# stays readable at ~100 columns; numbers wrap instead of being cut.
TERMINAL_HEADERS = ("row", "status", "size MB", "GMACs", "p50 ms", "p99 ms", "speedup", "img/s@B", "NME2D %",
                    "dNME2D", "dev px mean/p99/max")
DROP_FIRST = ("p99 ms", "GMACs", "img/s@B", "size MB", "dNME2D", "speedup")  # on narrow terminals, in this order
SHORT_STATUS = {"unavailable": "n/a", "failed": "FAIL"}


def print_table(report: Mapping, console=None) -> None:
    from rich import box
    from rich.console import Console

    console = console or Console()
    lines = table_rows(report)
    for cells in lines:
        status = cells[1].rstrip("*")
        cells[1] = SHORT_STATUS.get(status, status) + ("*" if cells[1].endswith("*") else "")
    headers = [header for header, _ in COLUMNS]
    # a column is as wide as its widest number or its header; numbers are never cut, so on a narrow terminal
    # whole columns are left out instead (they are all in report.md)
    widths = {h: max([len(cells[i]) for cells in lines] + [len(h)]) for i, h in enumerate(headers)}
    shown = [h for h in TERMINAL_HEADERS]
    for header in DROP_FIRST:
        if sum(widths[h] + 2 for h in shown) + 4 <= console.width:
            break
        shown.remove(header)
    index = [headers.index(h) for h in shown]
    table = rich_table(f"prnet bench: {report['model']['name']}", shown, right=set(shown) - {"row", "status"},
                       min_widths=widths, caption=settings_line(report), box=box.SIMPLE_HEAD, padding=(0, 1),
                       pad_edge=False)
    styles = {"ok": None, "n/a": "yellow", "FAIL": "red", "ref": "dim"}
    for cells in lines:
        table.add_row(*[cells[i] for i in index], style=styles.get(cells[1].rstrip("*")))
    console.print(table)
    console.print("  * = on the Pareto front (p50 latency vs NME2D); n/a = unavailable here; all columns: report.md",
                  style="dim", highlight=False)
    steal = report["machine"].get("cpu_steal")
    if steal is not None and steal > STEAL_WARNING:
        console.print(f"  {steal_summary(steal)}", style="yellow", highlight=False)
    for line in problem_lines(report):
        console.print(f"  {line}", style="yellow" if ": unavailable: " in line else "red", markup=False,
                      highlight=False)


def plot_latency_vs_nme(report: Mapping, path: Path) -> bool:
    """Scatter p50 latency vs 68-point NME of the ok rows, the Pareto front as a step line. False if nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report["rows"] if r["status"] == "ok" and _get(r, "latency_ms", "p50") is not None
            and _get(r, "accuracy", "nme68_2d") is not None]
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    backends = list(dict.fromkeys(r["backend"] for r in rows))  # colour = backend, marker = variant
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    markers = "os^Dv<>pPX*h"
    for r in rows:
        x, y = r["latency_ms"]["p50"], r["accuracy"]["nme68_2d"]
        ax.scatter([x], [y], s=60 if r["pareto"] else 36, zorder=3,
                   color=plt.cm.tab10(backends.index(r["backend"]) % 10),
                   marker=markers[variants.index(r["variant"]) % len(markers)],
                   edgecolors="black" if r["pareto"] else "none", linewidths=1.2)
    for b in backends:
        ax.scatter([], [], color=plt.cm.tab10(backends.index(b) % 10), marker="o", label=b)
    front = sorted((r["latency_ms"]["p50"], r["accuracy"]["nme68_2d"]) for r in rows if r["pareto"])
    if front:
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="black", lw=1, ls="-",
                label="Pareto front (black edge)")
    roof = report.get("roofline") or {}
    if roof.get("latency_ms") is not None:
        ax.axvline(roof["latency_ms"], color="gray", ls="--", lw=1, label="FP32 roofline (sgemm peak)")
    ax.set_xscale("log")
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    low, high = ax.get_ylim()
    if high - low < 1e-3:  # all rows equally accurate: give the axis a readable span
        ax.set_ylim(low - 0.05, high + 0.05)
    _label_points(ax, sorted(rows, key=lambda r: not r["pareto"]))
    ax.set_xlabel(f"latency p50 at batch 1 (ms, log scale, {report['settings']['threads']} threads)")
    ax.set_ylabel("68-point NME 2D (%)")
    ax.set_title(f"prnet bench: {report['model']['name']}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    from prnet.io import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return True


def _label_points(ax, rows: list[Mapping]) -> None:
    """Name the points, Pareto rows first, skipping a label that would overlap one already drawn."""
    placed: list[tuple[float, float]] = []
    for r in rows:
        x, y = r["latency_ms"]["p50"], r["accuracy"]["nme68_2d"]
        px, py = ax.transData.transform((x, y))
        if any(abs(px - qx) < 60 and abs(py - qy) < 10 for qx, qy in placed):
            continue
        placed.append((px, py))
        ax.annotate(r["name"], (x, y), textcoords="offset points", xytext=(5, 3), fontsize=7, alpha=0.85)


def write_run_dir(report: Mapping, out_dir: Path) -> dict[str, Path]:
    """Write report.json, report.md and latency_vs_nme.png (when any row has both numbers), atomically."""
    out_dir = Path(out_dir)
    written = write_report_files(out_dir, report, to_markdown(report), REPORT_FILES["json"], REPORT_FILES["markdown"])
    if plot_latency_vs_nme(report, out_dir / REPORT_FILES["plot"]):
        written["plot"] = out_dir / REPORT_FILES["plot"]
    return written
