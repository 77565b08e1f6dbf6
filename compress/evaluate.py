"""Validation accuracy of any model variant: 68-point NME (prnet.metrics) from its position maps.

A variant is a `maps_fn(images (B, 3, S, S) float32 numpy in [0, 1]) -> (B, 3, S, S) maps in pixels`: a torch
module in pixels (`torch_maps`), an ONNX Runtime session (`prnet.compress.latency.ort_callable`) or an OpenVINO
model, so FP32, SVD and INT8 are all read out and scored the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from prnet.compress.data import Batch
from prnet.layout import UVLayout
from prnet.metrics import map_deviation, nme_68
from prnet.train.losses import landmarks_from_maps

MapsFn = Callable[[np.ndarray], np.ndarray]


def torch_maps(module: nn.Module) -> MapsFn:
    def run(images: np.ndarray) -> np.ndarray:
        device = next(module.parameters()).device
        with torch.inference_mode():
            return module.eval()(torch.from_numpy(images).to(device)).float().cpu().numpy()

    return run


@dataclass
class Prediction:
    """A variant's output on the validation batches: landmarks (N, 68, 3) and position maps (N, S, S, 3), pixels."""

    landmarks: np.ndarray
    maps: np.ndarray


def predict(maps_fn: MapsFn, batches: list[Batch], layout: UVLayout) -> Prediction:
    uv = torch.from_numpy(layout.landmark_uv)
    landmarks, maps = [], []
    for batch in batches:
        out = np.asarray(maps_fn(np.ascontiguousarray(batch.images.numpy())), dtype=np.float32)
        landmarks.append(landmarks_from_maps(torch.from_numpy(out), uv).numpy())
        maps.append(out.transpose(0, 2, 3, 1))  # (B, 3, S, S) -> (B, S, S, 3), the layout's (v, u) order
    return Prediction(np.concatenate(landmarks), np.concatenate(maps))


def predict_landmarks(maps_fn: MapsFn, batches: list[Batch], layout: UVLayout) -> np.ndarray:
    """(N, 68, 3) landmarks read from the variant's maps at the layout's landmark UVs."""
    return predict(maps_fn, batches, layout).landmarks


def validation_metrics(maps_fn: MapsFn, batches: list[Batch], layout: UVLayout,
                       reference: Prediction | None = None) -> tuple[dict, Prediction]:
    """NME (percent, 2D and 3D) against the ground truth; with `reference` (the FP32 model's prediction), also how
    far this variant is from it in pixels (meaningful even for an untrained model): the mean landmark deviation
    and the mean / p99 / max over every face pixel of the position maps (prnet.metrics.map_deviation)."""
    predicted = predict(maps_fn, batches, layout)
    truth = np.concatenate([b.landmarks for b in batches])
    metrics = {
        "images": int(len(truth)),
        "nme68_2d": float(nme_68(predicted.landmarks, truth, dims=2).mean() * 100),
        "nme68_3d": float(nme_68(predicted.landmarks, truth, dims=3).mean() * 100),
    }
    if reference is not None:
        moved = predicted.landmarks[..., :2] - reference.landmarks[..., :2]
        metrics["landmark_deviation_px"] = float(np.linalg.norm(moved, axis=-1).mean())
        metrics["map_deviation_px"] = map_deviation(predicted.maps, reference.maps, layout.face_mask)
    return metrics, predicted
