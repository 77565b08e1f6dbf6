"""The README's benchmark table, cut from a `prnet bench` run's report.json (the same cells as its report.md,
fewer columns), so that the README is regenerated, never typed:

    prnet bench --threads 2 --variants fp32,deploy,int8,svd,svd+int8 --backends torch,onnxruntime,openvino,executorch \
        --compressed runs/c_int8_pct256 --out runs/bench
    python -m scripts.measure.readme_bench_table runs/bench/report.json     # paste under README "## Benchmark"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from prnet.bench.report import COLUMNS
from prnet.report import markdown_table

README_COLUMNS = ("row", "status", "size MB", "GMACs", "p50 ms", "speedup", "NME2D %", "dNME2D", "dev px mean/p99/max")


def readme_table(report: dict) -> list[str]:
    """Rows that ran (a variant a backend cannot run, e.g. INT8 QDQ in torch, is left out), README columns."""
    cells = dict(COLUMNS)
    rows = [row for row in report["rows"] if row["status"] != "unavailable"]
    return markdown_table(README_COLUMNS, [[cells[name](row) for name in README_COLUMNS] for row in rows])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="report.json of a prnet bench run")
    path = parser.parse_args(argv).report
    try:
        report = json.loads(path.read_text())
        rows = readme_table(report)
    except (OSError, ValueError, KeyError, TypeError) as err:
        print(f"error: {path}: not a readable prnet bench report.json ({type(err).__name__}: {err}); pass the "
              "report.json that `prnet bench --out DIR` writes", file=sys.stderr)
        raise SystemExit(2) from None

    print(f"{report['created']}, {report['machine']['cpu']} ({report['machine']['platform']})")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
