"""The default model shipped with prnet: what `prnet predict`, `prnet eval`, `prnet bench` and `prnet quickstart`
use when no `--model` is given.

The full PRNet (at the input size its checkpoint records: 128 px today) trained by this project's own `prnet train`
on its own synthetic faces, stored as an FP16 inference checkpoint (`scripts/assets/release_checkpoint.py`); it
loads with `prnet.checkpoint.load_model` like any checkpoint. Beside it ship its compressed form, made from it by
`prnet compress` (`--model default-fast` in every command that takes a model), and the full PRNet at 256 px,
fine-tuned from it (`--model full256`); docs/MODEL_CARD.md has the commands and figures of each.
"""

from __future__ import annotations

from pathlib import Path

from prnet.io import PrnetInputError

# Module attribute, not a constant buried in a function: tests and tools point it elsewhere.
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "assets" / "default_model.pt"
# --model NAME -> shipped file (a path that exists always wins over a name)
SHIPPED_MODELS = {"default": "default_model.pt", "default-fast": "default_model_fast.onnx",
                  "full256": "full256_model.pt"}
# how each shipped file is made, for the error when an install lacks it (exact commands: docs/MODEL_CARD.md)
MADE_BY = {"default-fast": "`prnet compress` from the default model",
           "full256": "`prnet train --init prnet/assets/default_model.pt --input-size 256 ...`"}

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


def shipped_model_path(name: str) -> Path:
    """The file behind a shipped model name (SHIPPED_MODELS), next to the default model."""
    if name == "default":
        return default_model_path()
    path = DEFAULT_MODEL_PATH.parent / SHIPPED_MODELS[name]
    if not path.is_file():
        raise PrnetInputError(f"--model {name}: this install has no {path.name} ({path} is missing); make one with "
                              f"{MADE_BY[name]} (docs/MODEL_CARD.md) and pass its path")
    return path


def resolve_model(model: str | Path | None) -> Path:
    """`--model` as given, a shipped model's name (SHIPPED_MODELS: 'default', 'default-fast', 'full256'), or the
    default model when it is omitted (every command's --model defaults to it). An existing file of that name wins
    over the name."""
    if model is None:
        return default_model_path()
    if str(model) in SHIPPED_MODELS and not Path(model).exists():
        return shipped_model_path(str(model))
    return Path(model)
