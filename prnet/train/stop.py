"""Stop a training run cleanly: SIGINT (Ctrl-C) or SIGTERM (`kill`, a scheduler's time limit) asks the loop to
finish the step it is in, write a checkpoint there and return; `prnet train --resume` then continues exactly.
A second signal interrupts at once (what it does without this: Ctrl-C raises KeyboardInterrupt, SIGTERM
kills), for a run stuck inside a step.

Under DDP every rank must stop at the same step (the checkpoint's collectives need all of them): the loop sums
`requested` over the ranks with the loss it already all-reduces, so one rank's signal stops them all."""

from __future__ import annotations

import signal
import threading
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Context manager: while active, SIGINT/SIGTERM set `requested` (the signal's name) instead of killing."""

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for signum in SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:  # e.g. SIGINT of a `nohup ... &` job: stays off
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None:  # the second one: what the signal normally does, now
            previous = self._previous.get(signum)
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
            signal.raise_signal(signum)
            return
        self.requested = signal.Signals(signum).name


def ignore_stop_signals(_worker_id: int = 0) -> None:
    """DataLoader worker_init_fn: Ctrl-C reaches the whole process group, and a worker that died of it would crash
    the main process at its next batch, before it could write the checkpoint; the main process stops the run."""
    for signum in SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
