"""The PyTorch form of a compressed model: one .pt file that rebuilds it without the original checkpoint.

    {"format": "prnet-compressed", "version": 1,
     "model_config": PRNetConfig dict,        # the architecture before compression
     "deploy_config": {"upsample": ...},      # the deployment rewrite it was built on (export.deploy)
     "svd_plan": [{"name", "scheme", "rank"}],# which layers are factorized, how (compress.svd.apply_plan)
     "state_dict": {...}, "dtype": "float32" | "float16",
     "layout": {...}, "layout_id": str, "meta": {...}}

Rebuild = PRNet(config) -> to_deployment -> factorized structure -> load weights. The module outputs pixels.
Loadable with `torch.load(weights_only=True)`; written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compress.svd import apply_plan
from prnet.checkpoint import layout_from_tensors, layout_to_tensors
from prnet.io import PrnetInputError, atomic_path
from prnet.layout import UVLayout
from prnet.model import PRNetConfig, model_from_config

COMPRESSED_FORMAT = "prnet-compressed"
COMPRESSED_VERSION = 1


@dataclass
class LoadedCompressed:
    model: nn.Module  # deployment form (+ low-rank pairs), eval mode, outputs pixels
    config: PRNetConfig
    layout: UVLayout
    svd_plan: list[dict] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def output_scale(self) -> float:
        return 1.0  # already pixels


def save_compressed(path: str | Path, model: nn.Module, config: PRNetConfig, layout: UVLayout, svd_plan: list[dict],
                    half: bool = False, **meta: Any) -> None:
    deploy_config = getattr(model, "deploy_config", None)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if half:
        state = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    payload = {
        "format": COMPRESSED_FORMAT,
        "version": COMPRESSED_VERSION,
        "model_config": config.to_dict(),
        "deploy_config": {"upsample": deploy_config.upsample} if deploy_config is not None else {},
        "svd_plan": list(svd_plan),
        "state_dict": state,
        "dtype": "float16" if half else "float32",
        "layout": layout_to_tensors(layout),
        "layout_id": layout.layout_id,
        "meta": meta,
    }
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(payload, tmp)


def is_compressed_checkpoint(path: str | Path) -> bool:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return False
    return isinstance(payload, dict) and payload.get("format") == COMPRESSED_FORMAT


def load_compressed(path: str | Path) -> LoadedCompressed:
    """Rebuild a compressed model (FP32 in memory even when stored in FP16)."""
    from export.deploy import DeployConfig, to_deployment

    path = Path(path)
    if not path.is_file():
        raise PrnetInputError(f"{path}: compressed model not found; make one with `prnet compress`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise PrnetInputError(f"{path}: not a readable PyTorch file ({type(err).__name__}); re-run `prnet compress`") from err
    if not isinstance(payload, dict) or payload.get("format") != COMPRESSED_FORMAT:
        raise PrnetInputError(f"{path}: not a prnet compressed model (no format tag {COMPRESSED_FORMAT!r})")
    if payload.get("version") != COMPRESSED_VERSION:
        raise PrnetInputError(f"{path}: compressed-model version {payload.get('version')} is not supported")
    base = model_from_config(payload["model_config"]).eval()
    model = to_deployment(base, DeployConfig(**payload["deploy_config"]))
    apply_plan(model, payload["svd_plan"], from_weights=False)
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in payload["state_dict"].items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise PrnetInputError(f"{path}: weights do not fit the stored structure ({str(err).splitlines()[0]})") from err
    layout = layout_from_tensors(payload["layout"], source=str(path))
    return LoadedCompressed(model.eval().requires_grad_(False), base.config, layout, payload["svd_plan"],
                            payload.get("meta", {}))
