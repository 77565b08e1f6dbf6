"""The training run's progress display: a rich bar on the main process, plain lines when it is off."""

from __future__ import annotations

from typing import Any


class RunProgress:
    """A rich progress bar (loss, lr, images/s) on the main process; plain lines when the bar is off."""

    def __init__(self, total: int, start: int, enabled: bool, show_bar: bool):
        self.enabled, self.bar = enabled, None
        if enabled and show_bar:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                TimeRemainingColumn(), TextColumn("{task.fields[stats]}"))
            self.task = self.bar.add_task("train", total=total, completed=start, stats="")
            self.bar.start()

    def update(self, step: int, record: dict[str, Any]) -> None:
        stats = f"loss {record['loss']:.4g}  lr {record['lr']:.2e}  {record['images_per_s']:.1f} img/s"
        if self.bar is not None:
            self.bar.update(self.task, completed=step, stats=stats)

    def note(self, message: str) -> None:
        if self.bar is not None:
            self.bar.console.print(message)
        elif self.enabled:
            print(message, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
