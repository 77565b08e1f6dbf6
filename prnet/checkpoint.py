"""PRNet checkpoints: one file holds everything needed to rebuild and use a trained model.

    {"format": "prnet-checkpoint", "version": 1,
     "model_config": PRNetConfig.to_dict(),         # rebuilds the network (nanoGPT style)
     "state_dict": {...},                            # weights + BN statistics
     "layout": {"name": str, "size": int, ...},      # the UV layout as tensors (reads the position maps)
     "layout_id": str,
     "meta": {...}}                                  # whatever the caller passed: train config, step, NME,
                                                     # optimizer/scheduler/RNG state for --resume

Only tensors, dicts, lists, tuples, strings and numbers are stored, so `torch.load(path, weights_only=True)`
reads it (no pickled code runs when loading a checkpoint from elsewhere). Writes are atomic.
"""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from prnet.io import PrnetInputError, atomic_path
from prnet.layout import UVLayout
from prnet.model import PRNet, PRNetConfig, model_from_config

CHECKPOINT_FORMAT = "prnet-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass
class LoadedModel:
    model: PRNet  # in eval mode
    config: PRNetConfig
    layout: UVLayout
    meta: dict[str, Any] = field(default_factory=dict)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain PRNet under DDP (`.module`) and torch.compile (`._orig_mod`) wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel) or (
            hasattr(model, "module") and isinstance(model.module, nn.Module) and not hasattr(model, "config")
        ):
            model = model.module
        else:
            return model


def layout_to_tensors(layout: UVLayout) -> dict[str, Any]:
    arrays = layout.to_arrays()
    return {
        "name": str(arrays["name"]),
        "size": int(arrays["size"]),
        **{k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items() if k not in ("name", "size")},
    }


def layout_from_tensors(stored: dict[str, Any], source: str) -> UVLayout:
    arrays = {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in stored.items()}
    return UVLayout.from_arrays(arrays, source=source)


def save_checkpoint(path: str | Path, model: nn.Module, layout: UVLayout, **extra: Any) -> None:
    """Atomically write `model` (a PRNet, possibly wrapped in DDP/compile), its layout and `extra` as meta.

    `extra` may hold tensors, state dicts, numbers, strings, lists and dicts (no arbitrary objects).
    """
    model = unwrap_model(model)
    if not isinstance(getattr(model, "config", None), PRNetConfig):
        raise TypeError(f"save_checkpoint needs a PRNet (with a PRNetConfig .config), got {type(model).__name__}")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "layout": layout_to_tensors(layout),
        "layout_id": layout.layout_id,
        "meta": extra,
    }
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The raw checkpoint dict, validated (format, version, required keys). Clear errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise PrnetInputError(f"{path}: checkpoint not found; pass the .pt file written by `prnet train`")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PrnetInputError(
            f"{path}: not a readable prnet checkpoint (corrupt, truncated or not a PyTorch file: {first_line}); "
            "use a checkpoint written by `prnet train`"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise PrnetInputError(
            f"{path}: a PyTorch file but not a prnet checkpoint (no format tag {CHECKPOINT_FORMAT!r}); "
            "use a checkpoint written by `prnet train`"
        )
    if payload.get("version") != CHECKPOINT_VERSION:
        raise PrnetInputError(
            f"{path}: checkpoint version {payload.get('version')} is not supported by this prnet "
            f"(reads version {CHECKPOINT_VERSION}); upgrade prnet or re-train"
        )
    missing = [k for k in ("model_config", "state_dict", "layout") if k not in payload]
    if missing:
        raise PrnetInputError(f"{path}: incomplete prnet checkpoint, missing {missing}")
    payload.setdefault("meta", {})
    return payload


def model_from_checkpoint(payload: dict[str, Any], source: str = "checkpoint") -> tuple[PRNet, UVLayout]:
    """Rebuild the PRNet and layout stored in a loaded checkpoint dict."""
    try:
        model = model_from_config(payload["model_config"])
    except (TypeError, ValueError) as err:
        raise PrnetInputError(f"{source}: model config cannot be rebuilt ({err})") from err
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as err:
        raise PrnetInputError(
            f"{source}: weights do not fit the stored model config ({str(err).splitlines()[0]}); "
            "the checkpoint was written by an incompatible prnet version"
        ) from err
    layout = layout_from_tensors(payload["layout"], source=source)
    if layout.size != model.config.input_size:
        raise PrnetInputError(
            f"{source}: UV layout size {layout.size} does not match the model's input size {model.config.input_size}"
        )
    return model, layout


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedModel:
    """Load a checkpoint into a ready PRNet in eval mode, with its config, UV layout and meta."""
    payload = load_checkpoint(path, map_location=map_location)
    model, layout = model_from_checkpoint(payload, source=str(path))
    model.to(map_location).eval()
    return LoadedModel(model=model, config=model.config, layout=layout, meta=payload["meta"])
