"""Turn a training checkpoint into a compact inference checkpoint (FP16 weights, no optimizer state).

    python scripts/release_checkpoint.py runs/prnet/checkpoints/best.pt prnet/assets/default_model.pt

The result loads with prnet.checkpoint.load_model like any checkpoint (weights are cast back to FP32 on
load). Only the model, its config, its UV layout and a small `meta` summary (step, validation NME, the train
config) are kept: a full-size PRNet goes from ~160 MB (with Adam state) to ~27 MB.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from prnet.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint

KEPT_META = ("step", "val_nme", "best_nme", "train_config", "metrics", "prnet_version", "world_size")


def release(source: Path, target: Path, note: str = "") -> None:
    payload = load_checkpoint(source)
    model, layout = model_from_checkpoint(payload, source=str(source))
    model.half()  # BN statistics too: their range is far inside FP16's
    meta = {k: v for k, v in payload["meta"].items() if k in KEPT_META}
    meta.update(weights_dtype="float16", released_from=source.name, note=note)
    save_checkpoint(target, model, layout, **meta)
    print(f"{target}: {target.stat().st_size / 2**20:.1f} MiB, step {meta.get('step')}, meta keys {sorted(meta)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    release(args.source, args.target, args.note)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
