"""The default model shipped with prnet: what `prnet predict`, `prnet eval`, `prnet bench` and `prnet quickstart`
use when no `--model` is given.

A full-size PRNet (256 px) trained by this project's own `prnet train` on its own synthetic faces, stored as an
FP16 inference checkpoint (`scripts/assets/release_checkpoint.py`); it loads with `prnet.checkpoint.load_model` like
any checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from prnet.io import PrnetInputError

# Module attribute, not a constant buried in a function: tests and tools point it elsewhere.
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "assets" / "default_model.pt"

HOW_TO_TRAIN = (
    "train one with `prnet train --data synth --preset full --out runs/default` (a GPU helps; `--preset cpu-small` "
    "trains a small model on a CPU in minutes), then pass `--model runs/default/checkpoints/best.pt`, or release it "
    f"as the default with `python -m scripts.assets.release_checkpoint runs/default/checkpoints/best.pt {DEFAULT_MODEL_PATH}`"
)


def has_default_model() -> bool:
    return DEFAULT_MODEL_PATH.is_file()


def default_model_path() -> Path:
    """The shipped default checkpoint, or a PrnetInputError saying how to get a model when this install has none."""
    if not DEFAULT_MODEL_PATH.is_file():
        raise PrnetInputError(
            f"no --model given and this install has no default model ({DEFAULT_MODEL_PATH} is missing); pass "
            f"--model CKPT (a checkpoint from `prnet train` or an exported model), or {HOW_TO_TRAIN}"
        )
    return DEFAULT_MODEL_PATH


def resolve_model(model: str | Path | None) -> Path:
    """`--model` as given, or the default model when it is omitted (every command's --model defaults to it)."""
    return Path(model) if model is not None else default_model_path()
