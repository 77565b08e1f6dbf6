"""Validation accuracy of any model variant: 68-point NME (prnet.metrics) from its position maps.

A variant is a `maps_fn(images (B, 3, S, S) float32 numpy in [0, 1]) -> (B, 3, S, S) maps in pixels`: a torch
module in pixels (`torch_maps`), an ONNX Runtime session (`prnet.compress.latency.ort_callable`) or an OpenVINO
model, so FP32, SVD and INT8 are all read out and scored the same way.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from prnet.compress.data import Batch
from prnet.layout import UVLayout
from prnet.metrics import nme_68
from prnet.train.losses import landmarks_from_maps

MapsFn = Callable[[np.ndarray], np.ndarray]


def torch_maps(module: nn.Module) -> MapsFn:
    def run(images: np.ndarray) -> np.ndarray:
        device = next(module.parameters()).device
        with torch.inference_mode():
            return module.eval()(torch.from_numpy(images).to(device)).float().cpu().numpy()

    return run


def predict_landmarks(maps_fn: MapsFn, batches: list[Batch], layout: UVLayout) -> np.ndarray:
    """(N, 68, 3) landmarks read from the variant's maps at the layout's landmark UVs."""
    uv = torch.from_numpy(layout.landmark_uv)
    out = []
    for batch in batches:
        maps = np.asarray(maps_fn(np.ascontiguousarray(batch.images.numpy())), dtype=np.float32)
        out.append(landmarks_from_maps(torch.from_numpy(maps), uv).numpy())
    return np.concatenate(out)


def validation_metrics(maps_fn: MapsFn, batches: list[Batch], layout: UVLayout,
                       reference: np.ndarray | None = None) -> tuple[dict, np.ndarray]:
    """NME (percent, 2D and 3D) against the ground truth; with `reference` landmarks (the FP32 model's), also
    the mean landmark deviation from it in pixels (meaningful even for an untrained model)."""
    predicted = predict_landmarks(maps_fn, batches, layout)
    truth = np.concatenate([b.landmarks for b in batches])
    metrics = {
        "images": int(len(truth)),
        "nme68_2d": float(nme_68(predicted, truth, dims=2).mean() * 100),
        "nme68_3d": float(nme_68(predicted, truth, dims=3).mean() * 100),
    }
    if reference is not None:
        metrics["landmark_deviation_px"] = float(np.linalg.norm(predicted[..., :2] - reference[..., :2], axis=-1).mean())
    return metrics, predicted
