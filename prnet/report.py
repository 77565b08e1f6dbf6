"""Report helpers shared by every command that writes a table: `prnet compress`, `prnet bench`, `prnet export`,
`prnet quickstart` and the speed scripts.

Each report is plain data rendered twice, for the terminal (rich) and for the run directory (JSON + Markdown,
written atomically). What the renderings have in common lives here, so the tables of different commands read
the same way: a missing number is "-", Markdown tables are pipe tables with one `---` per column, free text in
a cell cannot break the table, and the JSON + Markdown pair is written the same way everywhere. The report
schemas themselves (what the JSON holds) stay with each command.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

MISSING = "-"  # a number that was not measured, in every table


def fmt(value: Any, spec: str, missing: str = MISSING) -> str:
    """`format(value, spec)`, or `missing` for a number that was not measured (None or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return format(value, spec)


def mb(size_bytes: int | None) -> str:
    """Bytes as decimal megabytes with two decimals (the unit of every size column)."""
    return fmt(None if size_bytes is None else size_bytes / 1e6, ".2f")


def md_cell(text: Any, limit: int = 300) -> str:
    """Free text made safe for one Markdown table cell: no pipes or line breaks, at most `limit` characters."""
    return str(text or "").replace("|", "/").replace("\n", " ")[:limit]


def markdown_row(cells: Iterable[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def markdown_table(headers: Sequence[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    """A pipe table as lines: the header, the `|---|` rule, one line per row (cells are written as given)."""
    return [markdown_row(headers), "|" + "---|" * len(headers)] + [markdown_row(row) for row in rows]


def write_report_files(out_dir: str | Path, report: Mapping[str, Any], markdown: str,
                       json_name: str = "report.json", markdown_name: str = "report.md") -> dict[str, Path]:
    """Write the report's JSON and its Markdown rendering into `out_dir`, each atomically (an interrupted run
    never leaves half a report); returns {"json": path, "markdown": path}."""
    from prnet.io import write_bytes_atomic, write_json_atomic

    out_dir = Path(out_dir)
    paths = {"json": out_dir / json_name, "markdown": out_dir / markdown_name}
    write_json_atomic(paths["json"], report)
    write_bytes_atomic(paths["markdown"], markdown.encode())
    return paths


def rich_table(title: str, headers: Sequence[str], right: Iterable[str] = (),
               min_widths: Mapping[str, int] | None = None, **table_options: Any) -> Any:
    """A rich Table with `headers` as columns, the ones in `right` right-justified (numbers). With `min_widths`
    a column is at least that wide and folds instead of cutting: numbers are never truncated."""
    from rich.table import Table

    right = set(right)
    table = Table(title=title, **table_options)
    for header in headers:
        width = {} if min_widths is None else {"min_width": min_widths[header], "overflow": "fold"}
        table.add_column(header, justify="right" if header in right else "left", **width)
    return table
