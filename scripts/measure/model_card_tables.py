"""Markdown tables for docs/MODEL_CARD.md from `prnet eval` reports (eval.json) and a learning curve
(learning_curve.json of scripts/measure/learning_curve.py), so that no figure in the card is typed by hand.

    python -m scripts.measure.model_card_tables --eval synthetic=EVAL_DIR --eval photos=EVAL_DIR ... [--curve RUN_DIR | CURVE.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from prnet.report import markdown_table

BINS = ("[0,30)", "[30,60)", "[60,90]")


def _cell(value) -> str:
    return "-" if value is None else f"{value:.2f} %"


def summary_table(reports: dict[str, dict]) -> str:
    rows = []
    for name, r in reports.items():
        nme, inner, nme3 = r["nme_2d"], r.get("nme_2d_inner") or {}, r.get("nme_3d") or {}
        bins = [nme.get("bins", {}).get(b, {}) for b in BINS]
        rows.append([name, r["samples"], _cell(nme["mean"])]
                    + [f"{_cell(b.get('mean'))} ({b.get('count', 0)})" for b in bins]
                    + [_cell(nme.get("balanced_mean")), _cell(inner.get("mean")), _cell(nme3.get("mean"))])
    return "\n".join(markdown_table(["evaluation set", "faces", "68-pt 2D mean", *BINS, "balanced", "51 inner 2D",
                                      "68-pt 3D"], rows))


def faces_table(report: dict) -> str:
    rows = [[face["name"], "-" if face.get("yaw") is None else f"{face['yaw']:.0f}", _cell(face["nme_2d"]),
             _cell(face.get("nme_2d_inner"))] for face in report.get("faces", [])]
    return "\n".join(markdown_table(["photo", "yaw (est.)", "68-pt 2D", "51 inner"], rows))


def _run_and_name(checkpoint: str) -> str:
    """RUN/step_N.pt for RUN/checkpoints/step_N.pt (runs restart their step count), else the file name."""
    path = Path(checkpoint)
    return f"{path.parent.parent.name}/{path.name}" if path.parent.name == "checkpoints" else path.name


def curve_table(run_dir: Path) -> str:
    """From a curve's points (learning_curve --rows-out JSON: faces seen, each set's NME) or a run's cache."""
    if run_dir.is_file():
        data = json.loads(run_dir.read_text())
        names = list(data["datasets"])
        table = [[_run_and_name(r.get("checkpoint", "-")), r["step"], f"{r['faces_seen']:,}"]
                 + [_cell((r.get(n) or {}).get("nme_2d")) for n in names] for r in data["rows"]]
        return "\n".join(markdown_table(["checkpoint", "step", "faces seen"] + [f"{n} 68-pt" for n in names], table))
    cache = json.loads((run_dir / "learning_curve.json").read_text())
    rows: dict[str, dict] = {}
    for key, value in cache.items():
        checkpoint, data, _ = key.split("|")
        rows.setdefault(checkpoint, {})[Path(data).name] = value
    names = sorted({n for r in rows.values() for n in r})
    table = [[Path(checkpoint).name] + [_cell(rows[checkpoint].get(n, {}).get("nme_2d")) for n in names]
             for checkpoint in sorted(rows)]
    return "\n".join(markdown_table(["checkpoint"] + [f"{n} 68-pt" for n in names], table))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval", action="append", default=[], help="NAME=DIR of a `prnet eval --out DIR`")
    parser.add_argument("--curve", type=Path, default=None, help="RUN_DIR or a learning_curve --rows-out JSON")
    a = parser.parse_args(argv)
    reports = {}
    for item in a.eval:
        name, path = item.split("=", 1)
        reports[name] = json.loads((Path(path) / "eval.json").read_text())
    if reports:
        print(summary_table(reports))
    for name, report in reports.items():
        if report.get("faces"):
            print(f"\n{name}:\n" + faces_table(report))
    if a.curve:
        print("\n" + curve_table(a.curve))


if __name__ == "__main__":
    main()
