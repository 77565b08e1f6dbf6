"""The README's benchmark table, cut from a `prnet bench` run's report.json (the same cells as its report.md,
fewer columns), so that the README is regenerated, never typed:

    prnet bench --threads 2 --variants fp32,deploy,int8,svd,svd+int8 --backends torch,onnxruntime,openvino,executorch \
        --compressed runs/c_int8_pct256 --out runs/bench
    python -m scripts.measure.readme_bench_table runs/bench/report.json     # paste under README "## Benchmark"
"""

from __future__ import annotations

import argparse
import json
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
    report = json.loads(parser.parse_args(argv).report.read_text())
    print(f"{report['created']}, {report['machine']['cpu']} ({report['machine']['platform']})")
    print("\n".join(readme_table(report)))


if __name__ == "__main__":
    main()
