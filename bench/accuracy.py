"""Accuracy of a row's position maps: 68-point and dense NME against the ground truth (prnet.metrics, the
AFLW2000-3D protocol: normalized by the GT landmark box sqrt(w*h), 3D with per-face mean depth aligned), and
the deviation of its output from the FP32 reference row's output, in pixels.

All NMEs in this module's results are PERCENT (prnet.metrics returns fractions).
"""

from __future__ import annotations

import numpy as np


def run_all(runner, images: np.ndarray, batch: int) -> np.ndarray:
    """The runner's position maps for every image, fed `batch` at a time: (N, S, S, 3) float32."""
    outputs = [np.asarray(runner(images[i : i + batch]), dtype=np.float32) for i in range(0, len(images), batch)]
    maps = np.concatenate(outputs)
    if maps.shape != images.shape:
        raise ValueError(f"runner {getattr(runner, 'name', runner)!r} returned {maps.shape} for inputs {images.shape}")
    return maps


def landmarks_from_maps(maps: np.ndarray, layout) -> np.ndarray:
    """(N, 68, 3) landmarks read from (N, S, S, 3) maps at the layout's landmark UVs (bilinear)."""
    from prnet.geometry.posmap import landmarks_from_posmap

    return np.asarray(landmarks_from_posmap(maps, layout), dtype=np.float64)


def nme_metrics(maps: np.ndarray, gt_maps: np.ndarray, gt_landmarks: np.ndarray, layout) -> dict[str, float]:
    """Mean over faces of 68-point NME 2D and 3D and dense NME (all face pixels of the layout), percent."""
    from prnet.metrics import dense_nme, nme_68

    landmarks = landmarks_from_maps(maps, layout)
    face = layout.face_mask
    return {
        "nme68_2d": 100.0 * float(nme_68(landmarks, gt_landmarks, dims=2).mean()),
        "nme68_3d": 100.0 * float(nme_68(landmarks, gt_landmarks, dims=3).mean()),
        "dense_nme": 100.0 * float(dense_nme(maps[:, face], gt_maps[:, face], gt_landmarks, dims=3).mean()),
    }


def deltas(metrics: dict[str, float], reference: dict[str, float] | None) -> dict[str, float]:
    """metrics plus delta_<name> = this row minus the reference row (percentage points)."""
    out = dict(metrics)
    if reference:
        for key, value in metrics.items():
            if reference.get(key) is not None:
                out[f"delta_{key}"] = value - reference[key]
    return out


def deviation_px(maps: np.ndarray, reference_maps: np.ndarray, layout) -> dict[str, float]:
    """Mean, p99 and max Euclidean (x, y, z) distance per face pixel between two sets of maps, in crop pixels."""
    from prnet.metrics import map_deviation

    return map_deviation(maps, reference_maps, layout.face_mask)
