"""A training run's directory: its step checkpoints and its metrics log, as `prnet train` writes and resumes them.

out_dir/checkpoints/step_NNNNNNN.pt (the last N), best.pt, superseded/ (later history a resume replaced) and
out_dir/metrics.jsonl (one JSON record per log or eval line).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from prnet.checkpoint import load_checkpoint
from prnet.io import PrnetInputError, write_bytes_atomic


def step_checkpoints(out_dir: Path) -> list[Path]:
    return sorted((out_dir / "checkpoints").glob("step_*.pt"))


def latest_checkpoint(out_dir: str | Path) -> Path:
    found = step_checkpoints(Path(out_dir))
    if not found:
        raise PrnetInputError(f"{out_dir}: no checkpoints/step_*.pt to resume from")
    return found[-1]


def append_metrics(out_dir: Path, record: dict[str, Any]) -> None:
    with open(out_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


def read_metrics(out_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(out_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []


def truncate_metrics(out_dir: Path, step: int) -> None:
    """On resume, drop the records the interrupted run logged after its last checkpoint (atomically: a crash
    here leaves the old log, never half of it)."""
    path = out_dir / "metrics.jsonl"
    if path.exists():
        kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        write_bytes_atomic(path, "".join(line + "\n" for line in kept).encode())


def set_aside_later_checkpoints(out_dir: Path, step: int) -> list[Path]:
    """On resume at `step`, checkpoints of later steps (e.g. of a run resumed from an older checkpoint) belong to
    the history the resumed run replaces: move them to checkpoints/superseded/ (kept, never deleted) so that
    `--resume auto` and best.pt follow the new run. Returns where they went."""
    folder, moved = out_dir / "checkpoints" / "superseded", []
    later = [p for p in step_checkpoints(out_dir) if int(p.stem.split("_")[1]) > step]
    best = out_dir / "checkpoints" / "best.pt"
    # mmap: only the small meta dict is read, not best.pt's ~54 MB of weights
    if best.is_file() and load_checkpoint(best, mmap=True)["meta"].get("step", 0) > step:
        later.append(best)
    for path in later:
        folder.mkdir(exist_ok=True)
        target = folder / path.name
        target = target if not target.exists() else folder / f"{path.stem}.{int(time.time())}{path.suffix}"
        moved.append(path.replace(target))
    return moved
