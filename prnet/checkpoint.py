"""PRNet checkpoints: one file holds everything needed to rebuild and use a trained model.

    {"format": "prnet-checkpoint", "version": 1,
     "model_config": PRNetConfig.to_dict(),         # rebuilds the network (nanoGPT style)
     "state_dict": {...},                            # weights + BN statistics
     "layout": {"name": str, "size": int, ...},      # the UV layout as tensors (reads the position maps)
     "layout_id": str,
     "meta": {...},                                  # whatever the caller passed: train config, step, NME,
                                                     # optimizer/scheduler/RNG state for --resume
     "compression": {...}}                           # optional, written by `prnet compress` (see below)

A compressed model is the same format with a "compression" section; its state_dict is then the deployment form
(prnet.export.deploy: BN folded, plain convs, pixel output) with the SVD pairs:

     "compression": {"deploy_config": {"upsample": ...},        # the deployment rewrite it was built on
                     "svd_plan": [{"name", "scheme", "rank"}],  # factorized layers (prnet.compress.svd.apply_plan)
                     "dtype": "float32" | "float16",            # how the weights are stored (FP32 in memory)
                     "int8_onnx": uint8 tensor,                 # optional: the calibrated QDQ INT8 ONNX model
                     "settings": {...}}                         # the `prnet compress` settings

`load_model` reads both; `LoadedModel.output_scale` is 1.0 for a compressed model (it outputs pixels).

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

from prnet.io import PrnetInputError, atomic_path, existing_file
from prnet.layout import UVLayout
from prnet.model import PRNet, PRNetConfig, model_from_config

CHECKPOINT_FORMAT = "prnet-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass
class LoadedModel:
    model: PRNet  # in eval mode (a compressed model: the deployment form + low-rank pairs, pixel output)
    config: PRNetConfig  # the architecture (before compression)
    layout: UVLayout
    meta: dict[str, Any] = field(default_factory=dict)
    compression: dict[str, Any] | None = None  # the checkpoint's "compression" section (None: a plain PRNet)

    @property
    def output_scale(self) -> float:
        """Pixels = module output * output_scale (a compressed model already outputs pixels)."""
        return 1.0 if self.compression is not None else float(self.config.output_scale)

    @property
    def svd_plan(self) -> list[dict]:
        return list((self.compression or {}).get("svd_plan", []))

    @property
    def int8_onnx(self) -> bytes | None:
        """The QDQ INT8 ONNX model stored by `prnet compress --int8`, or None."""
        stored = (self.compression or {}).get("int8_onnx")
        return None if stored is None else stored.numpy().tobytes()

    def describe(self) -> str:
        if self.compression is None:
            return "fp32"
        parts = [f"svd ({len(self.svd_plan)} layers)"] if self.svd_plan else ["deployment form"]
        return " + ".join(parts + (["int8"] if self.int8_onnx is not None else []))


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


def save_compressed(path: str | Path, model: nn.Module, config: PRNetConfig, layout: UVLayout, svd_plan: list[dict],
                    half: bool = False, int8_onnx: bytes | None = None, **meta: Any) -> None:
    """Atomically write a compressed model (deployment form + SVD pairs, optionally its QDQ INT8 ONNX) as a prnet
    checkpoint with a "compression" section: every command that takes --model takes it."""
    deploy_config = getattr(model, "deploy_config", None)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if half:
        state = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    compression: dict[str, Any] = {
        "deploy_config": {"upsample": deploy_config.upsample} if deploy_config is not None else {},
        "svd_plan": list(svd_plan),
        "dtype": "float16" if half else "float32",
        "settings": meta.pop("settings", {}),
    }
    if int8_onnx is not None:
        compression["int8_onnx"] = torch.frombuffer(bytearray(int8_onnx), dtype=torch.uint8)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_config": config.to_dict(),
        "state_dict": state,
        "layout": layout_to_tensors(layout),
        "layout_id": layout.layout_id,
        "meta": meta,
        "compression": compression,
    }
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(payload, tmp)


def is_compressed_checkpoint(path: str | Path) -> bool:
    try:
        return load_checkpoint(path).get("compression") is not None
    except PrnetInputError:
        return False


def _upgrade_compressed_v1(payload: dict[str, Any]) -> dict[str, Any]:
    """The earlier second format ("prnet-compressed" v1) as a checkpoint with a compression section."""
    section = {k: payload.pop(k) for k in ("deploy_config", "svd_plan", "dtype") if k in payload}
    section["settings"] = payload.get("meta", {}).pop("settings", {})
    return {**payload, "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "compression": section}


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", mmap: bool = False) -> dict[str, Any]:
    """The raw checkpoint dict, validated (format, version, required keys). Clear errors otherwise.
    mmap=True maps the tensors from the file instead of reading them (cheap when only the meta is wanted)."""
    path = existing_file(path, "checkpoint", "pass the .pt file written by `prnet train`")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PrnetInputError(
            f"{path}: not a readable prnet checkpoint (corrupt, truncated or not a PyTorch file: {first_line}); "
            "use a checkpoint written by `prnet train`"
        ) from err
    if isinstance(payload, dict) and payload.get("format") == "prnet-compressed" and payload.get("version") == 1:
        payload = _upgrade_compressed_v1(payload)
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
    if payload.get("compression") is not None:  # rebuild the deployment form and the low-rank structure
        from prnet.compress.svd import apply_plan
        from prnet.export.deploy import DeployConfig, to_deployment

        model = to_deployment(model.eval(), DeployConfig(**payload["compression"].get("deploy_config", {})))
        apply_plan(model, payload["compression"].get("svd_plan", []), from_weights=False)
        payload["state_dict"] = {k: (v.float() if v.is_floating_point() else v) for k, v in payload["state_dict"].items()}
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as err:
        raise PrnetInputError(
            f"{source}: weights do not fit the stored model config ({str(err).splitlines()[0]}); "
            "the checkpoint was written by an incompatible prnet version"
        ) from err
    layout = layout_from_tensors(payload["layout"], source=source)
    if layout.size != model.config.input_size:  # (the deployment form keeps the PRNet's config too)
        raise PrnetInputError(
            f"{source}: UV layout size {layout.size} does not match the model's input size {model.config.input_size}"
        )
    return model, layout


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedModel:
    """Load a checkpoint into a ready PRNet in eval mode, with its config, UV layout and meta."""
    payload = load_checkpoint(path, map_location=map_location)
    model, layout = model_from_checkpoint(payload, source=str(path))
    compression = payload.get("compression")
    if compression is not None:
        model.requires_grad_(False)
    model.to(map_location).eval()
    return LoadedModel(model=model, config=model.config, layout=layout, meta=payload["meta"], compression=compression)
