"""What `prnet quickstart` shows while it runs: a rule per stage (budget), a bar or spinner inside it, the
stage's own messages above the bar, a status line per stage, and the summary table at the end.

On a terminal the bars are live; elsewhere (CI logs, tests) only plain lines are printed. Training draws its
own bar (prnet.train.loop), so no live display of ours is active during that stage (rich allows one at a time).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

STATUS_STYLE = {"ok": "green", "skipped": "yellow", "unavailable": "yellow", "blocked": "red", "failed": "red",
                "parity-failed": "red"}


def clock(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


class Display:
    def __init__(self, console=None):
        from rich.console import Console

        self.console = console or Console(soft_wrap=True)
        self.is_terminal = self.console.is_terminal
        self.progress = None  # the live Progress of the current stage, if any
        self.task = None

    def intro(self, config, why: str) -> None:
        total = sum(config.budgets.values())
        mode = "fast (CI) path" if config.fast else "full path"
        self.console.print(f"[bold]prnet quickstart[/bold]: {mode}, output {config.out}, stage budgets total "
                           f"{clock(total)}; {why}", highlight=False)

    def stage_start(self, index: int, name: str, budget_s: float) -> None:
        self.console.rule(f"[bold]{index}/6 {name}[/bold]  (budget {clock(budget_s)})")

    def stage_end(self, index: int, name: str, result) -> None:
        style = STATUS_STYLE.get(result.status, "white")
        over = "  [yellow]over budget[/yellow]" if result.seconds > result.budget_s and result.status != "skipped" else ""
        line = f"[{style}]{result.status}[/{style}] {name} in {clock(result.seconds)} (budget {clock(result.budget_s)}){over}"
        if result.error:
            line += f": {escape(result.error)}"
        self.console.print(line, highlight=False)
        for note in result.notes:
            self.console.print(f"  {escape(note)}", style="dim", highlight=False)

    def note(self, message: str) -> None:
        """A stage's progress message: above the live bar (and as the bar's text), else a plain dim line."""
        text = escape(str(message).strip().splitlines()[0] if str(message).strip() else "")
        if self.progress is not None and self.is_terminal:
            self.progress.update(self.task, info=text[:80])
            self.progress.console.print(f"  {text}", style="dim", highlight=False)
        else:
            self.console.print(f"  {text}", style="dim", highlight=False)

    def show(self, draw: Callable[[Any], None]) -> None:
        draw(self.console)

    @contextmanager
    def _live(self, label: str, total: float | None, spinner: bool) -> Iterator[Any]:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn)

        columns = [SpinnerColumn(), TextColumn(label)] if spinner else [TextColumn(label), BarColumn(), MofNCompleteColumn()]
        columns += [TimeElapsedColumn(), TextColumn("[dim]{task.fields[info]}")]
        self.progress = Progress(*columns, console=self.console, disable=not self.is_terminal, transient=spinner)
        self.task = self.progress.add_task(label, total=total, info="")
        try:
            with self.progress:
                yield self.progress
        finally:
            self.progress, self.task = None, None

    @contextmanager
    def bar(self, label: str, total: int) -> Iterator[Callable[[int], None]]:
        """A bar to `total`; yields update(completed)."""
        with self._live(label, total, spinner=False) as progress:
            task = self.task
            yield lambda completed: progress.update(task, completed=completed)

    @contextmanager
    def steps(self, label: str, total: int) -> Iterator[Callable[[], None]]:
        """A bar over `total` sub-steps; yields advance()."""
        with self._live(label, total, spinner=False) as progress:
            task = self.task
            yield lambda: progress.advance(task)

    @contextmanager
    def spinner(self, label: str) -> Iterator[None]:
        with self._live(label, None, spinner=True):
            yield

    def summary(self, report: dict) -> None:
        from prnet.report import rich_table

        table = rich_table("prnet quickstart", ("stage", "status", "time", "budget", "result"),
                           right=("time", "budget"), title_justify="left")
        for stage in report["stages"]:
            style = STATUS_STYLE.get(stage["status"], "white")
            table.add_row(stage["name"], f"[{style}]{stage['status']}[/{style}]", clock(stage["seconds"]),
                          clock(stage["budget_s"]), escape(stage["headline"]))
        self.console.print(table)
        self.console.print(f"total {clock(report['total_seconds'])}; report: {report['files']['markdown']} and "
                           f"{report['files']['json']}", highlight=False)


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)
