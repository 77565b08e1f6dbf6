"""Does bf16 autocast train as well as fp32? Continue one checkpoint for N steps in each precision on exactly the
same batches (a resumed run's data order follows from the step) and plot the two loss curves side by side.

    python -m scripts.measure.precision_curves CHECKPOINT --steps 100 --out docs/precision_curves.png

CHECKPOINT is a resumable `prnet train` step checkpoint. Both continuations use a constant learning rate (the
checkpoint run's rate at that step) so that only the precision differs; each writes its own run directory under
--work. The figure shows the training loss of both, and the text output the mean relative loss difference and
each run's images/s and validation NME at the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def continue_run(checkpoint: Path, precision: str, steps: int, out_dir: Path, threads: int) -> list[dict]:
    from prnet.checkpoint import load_checkpoint
    from prnet.train.config import TrainConfig, lr_at

    meta = load_checkpoint(checkpoint)["meta"]
    start, config = int(meta["train_state"]["step"]), TrainConfig.from_dict(meta["train_config"])
    lr = lr_at(start, config)
    command = [sys.executable, "-m", "prnet", "train", "--resume", str(checkpoint), "--out", str(out_dir),
               "--precision", precision, "--threads", str(threads), "--no-progress",
               "--set", f"max_steps={start + steps}", "--set", "lr_schedule=constant", "--set", f"lr={lr}",
               "--set", "warmup_steps=0", "--set", "log_every=10", "--set", f"eval_every={steps}",
               "--set", f"save_every={steps}", "--set", "keep_last=1", "--set", "tensorboard=false"]
    subprocess.run(command, check=True)
    return [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines() if line]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("runs/precision_curves"))
    parser.add_argument("--out", type=Path, default=Path("precision_curves.png"))
    a = parser.parse_args(argv)
    runs = {p: continue_run(a.checkpoint, p, a.steps, a.work / p, a.threads) for p in ("fp32", "bf16")}
    train = {p: [r for r in rows if "loss" in r] for p, rows in runs.items()}
    val = {p: [r for r in rows if "val_nme" in r] for p, rows in runs.items()}
    pairs = list(zip(train["fp32"], train["bf16"]))
    rel = sum(abs(b["loss"] - f["loss"]) / f["loss"] for f, b in pairs) / max(1, len(pairs))
    summary = {p: {"images_per_s": sum(r["images_per_s"] for r in train[p][1:]) / max(1, len(train[p]) - 1),
                   "final_loss": train[p][-1]["loss"], "val_nme": val[p][-1]["val_nme"] if val[p] else None}
               for p in runs}
    summary["mean_relative_loss_difference"] = rel
    print(json.dumps(summary, indent=1))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8), dpi=110)
    for p, style in (("fp32", "-"), ("bf16", "--")):
        s = summary[p]
        ax.plot([r["step"] for r in train[p]], [r["loss"] for r in train[p]], style, marker=".",
                label=f"{p}: {s['images_per_s']:.1f} img/s, val NME {100 * (s['val_nme'] or float('nan')):.2f} %")
    ax.set_xlabel("step (same batches in both runs)")
    ax.set_ylabel("training loss (weighted MSE, mean of 10 steps)")
    ax.set_title(f"fp32 vs bf16 autocast from {a.checkpoint.name}; mean |diff| {100 * rel:.1f} %", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from prnet.io import atomic_path

    with atomic_path(a.out) as tmp:
        fig.savefig(tmp, format="png")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
