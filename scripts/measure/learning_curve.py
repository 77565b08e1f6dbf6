"""Learning curve of a training run: 68-point NME of every kept step checkpoint against the faces seen, on
evaluation sets never used for training (fresh synthetic faces, annotated real photos), as JSON and a PNG.

    python -m scripts.measure.learning_curve RUN_DIR --data synth=DIR --data photos=DIR [--out docs/curve.png]
        [--limit 200] [--also CKPT ...] [--mark 96000="new pool (seed 203)"] [--offset 200000]
        [--prior docs/default_model_curve.json] [--rows-out docs/default_model_curve.json]

RUN_DIR is a `prnet train --out` directory (checkpoints/step_*.pt, metrics.jsonl). Each checkpoint is evaluated
with `prnet eval`'s own code (prnet.evaluate.evaluate: the GT crop for project-format data, the detector +
refine crop for photos, as `prnet predict` runs) in eval mode, exactly as it would be shipped. Results are cached in
RUN_DIR/learning_curve.json per (checkpoint, data) so that a rerun after more training only evaluates the new
checkpoints. `--also` adds checkpoints from other runs (e.g. the continuation of this one in a later session) that
store their own step count; faces seen = step x batch size as stored in each checkpoint. A run started with
`prnet train --init` from an earlier model counts from 0: `--offset` adds the faces that model had seen (its
checkpoints' x values shift; `--also` checkpoints keep their own). `--rows-out` writes the curve's points as JSON
and `--prior` draws such a file's points first, so a later session (whose machine no longer has the earlier
checkpoints) extends the committed curve instead of starting a new one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def faces_seen(checkpoint: Path) -> tuple[int, int]:
    """(step, samples seen) from the checkpoint's training metadata."""
    from prnet.checkpoint import load_checkpoint

    meta = load_checkpoint(checkpoint)["meta"]
    step = int(meta.get("step") or meta.get("train_state", {}).get("step", 0))
    batch = int((meta.get("train_config") or {}).get("batch_size", 0))
    return step, step * batch


def evaluate_checkpoint(checkpoint: Path, data: Path, limit: int | None) -> dict:
    from prnet.evaluate import evaluate
    from prnet.runner import TorchRunner

    report, _ = evaluate(TorchRunner(checkpoint, device="cpu"), data, limit=limit)
    inner = report.get("nme_2d_inner") or {}
    return {"nme_2d": report["nme_2d"]["mean"], "nme_2d_balanced": report["nme_2d"].get("balanced_mean"),
            "nme_2d_inner": inner.get("mean"), "faces": report["samples"]}


def collect(run_dir: Path, datasets: dict[str, Path], limit: int | None, extra: list[Path], log=print,
            offset: int = 0, stride: int = 1) -> list[dict]:
    from prnet.io import write_json_atomic

    cache_path = run_dir / "learning_curve.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    run_checkpoints = sorted((run_dir / "checkpoints").glob("step_*.pt"))
    rows = []
    for checkpoint in run_checkpoints + list(extra):
        step, seen = faces_seen(checkpoint)
        if checkpoint in run_checkpoints:  # --also checkpoints keep their own count and are always drawn
            if step % stride and checkpoint != run_checkpoints[-1]:
                continue  # --stride keeps every Nth step and the run's last checkpoint
            seen += offset
        row = {"checkpoint": str(checkpoint), "step": step, "faces_seen": seen}
        for name, data in datasets.items():
            key = f"{checkpoint.resolve()}|{Path(data).resolve()}|{limit}"
            if key not in cache:
                cache[key] = evaluate_checkpoint(checkpoint, data, limit)
                write_json_atomic(cache_path, cache)
            row[name] = cache[key]
        log(f"step {step:6d} ({seen:7d} faces seen): " + ", ".join(
            f"{name} {row[name]['nme_2d']:.2f} %" for name in datasets))
        rows.append(row)
    return sorted(rows, key=lambda r: r["faces_seen"])


def plot(rows: list[dict], datasets: list[str], path: Path, title: str, marks: dict[int, str] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)

    def series(name: str, key: str, **style) -> None:  # prior points may lack a set or a figure: skip those
        points = [(r["faces_seen"] / 1000, r[name][key]) for r in rows if (r.get(name) or {}).get(key) is not None]
        if points:
            ax.plot(*zip(*points), **style)

    for name in datasets:
        series(name, "nme_2d", marker="o", label=f"{name}: 68 points")
        if name.startswith("photos"):
            series(name, "nme_2d_inner", marker=".", linestyle="--", label=f"{name}: 51 inner")
        if name == "synth":
            series(name, "nme_2d_balanced", marker=".", linestyle="--", label=f"{name}: balanced over yaw bins")
    for seen, label in (marks or {}).items():  # e.g. where a continuation switched to a fresh data pool
        ax.axvline(seen / 1000, color="grey", linestyle=":", linewidth=1)
        ax.annotate(label, (seen / 1000, 0.97), xycoords=("data", "axes fraction"), fontsize=7, color="grey",
                    rotation=90, ha="right", va="top")
    ax.set_xlabel("training faces seen (thousands; step x batch)")
    ax.set_ylabel("2D NME (%), GT box sqrt(w*h)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from prnet.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--data", action="append", required=True, help="NAME=DIR (an evaluation set for prnet eval)")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--also", type=Path, action="append", default=[])
    parser.add_argument("--out", type=Path, default=None, help="PNG path (default RUN_DIR/learning_curve.png)")
    parser.add_argument("--title", default="PRNet learning curve")
    parser.add_argument("--mark", action="append", default=[], help="FACES=LABEL: a vertical line at FACES seen")
    parser.add_argument("--offset", type=int, default=0, help="faces seen before RUN_DIR's run (its --init model)")
    parser.add_argument("--prior", type=Path, default=None, help="earlier points (a --rows-out JSON) drawn first")
    parser.add_argument("--stride", type=int, default=1, help="only RUN_DIR checkpoints whose step is a multiple (and the last)")
    parser.add_argument("--rows-out", type=Path, default=None, help="write all points as JSON")
    a = parser.parse_args(argv)
    datasets = dict(item.split("=", 1) for item in a.data)
    rows = collect(a.run_dir, {k: Path(v) for k, v in datasets.items()}, a.limit, a.also, offset=a.offset,
                   stride=a.stride)
    if a.prior is not None:  # earlier points up to where this run's begin
        first = min((r["faces_seen"] for r in rows), default=float("inf"))
        prior = [r for r in json.loads(a.prior.read_text())["rows"] if r["faces_seen"] < first]
        rows = sorted(prior + rows, key=lambda r: r["faces_seen"])
    if a.rows_out is not None:
        from prnet.io import write_json_atomic

        write_json_atomic(a.rows_out, {"datasets": datasets, "offset": a.offset, "rows": rows})
    marks = {int(k): v for k, v in (item.split("=", 1) for item in a.mark)}
    plot(rows, list(datasets), a.out or a.run_dir / "learning_curve.png", a.title, marks)
    print(f"wrote {a.out or a.run_dir / 'learning_curve.png'}")


if __name__ == "__main__":
    main()
