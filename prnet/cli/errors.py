"""The one way every command reports bad input: a red `error:` line on stderr naming the file and the fix, exit 2."""

from __future__ import annotations

from typing import NoReturn

import typer


def exit_with_error(err: BaseException, code: int = 2, label: str = "error") -> NoReturn:
    """Print `err` after a red `label:` and exit with `code` (2: bad input; export uses 3 for a runtime this machine
    lacks and 1 for a failed parity check). Never hard-wrapped (a path split over two lines cannot be copied back into
    the shell) and markup-escaped (a path with [brackets] prints as it is)."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, soft_wrap=True).print(f"[red]{label}:[/red] {escape(str(err))}", highlight=False)
    raise typer.Exit(code)
