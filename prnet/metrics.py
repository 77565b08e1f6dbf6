"""Face alignment / reconstruction metrics (the AFLW2000-3D protocol of PRNet, 3DDFA and others).

NME (normalized mean error) of one face = mean over points of the Euclidean error / normalizer, where the
normalizer is sqrt(w * h) of the bounding box of the GROUND-TRUTH 2D landmarks (x, y only, also for 3D errors).
Every function returns fractions (0.0362 = 3.62 %); reports multiply by 100.

3D errors: the absolute depth of a face is not observable from one image and the datasets fix it by convention
(ours: min z over the mesh = 0; AFLW2000-3D: the 3DMM's frame), so by default each face's predicted and GT
z are centred on their mean over the compared points before measuring (`z_alignment="mean"`);
`z_alignment="none"` compares raw z.

Yaw bins follow the protocol: |yaw| in [0, 30), [30, 60), [60, 90] degrees (faces past 90 go to the last bin);
the balanced mean is the mean of the bin means, so frontal faces (the majority) do not dominate.
"""

from __future__ import annotations

import numpy as np

YAW_BINS: tuple[tuple[float, float], ...] = ((0.0, 30.0), (30.0, 60.0), (60.0, 90.0))
YAW_BIN_NAMES: tuple[str, ...] = ("[0,30)", "[30,60)", "[60,90]")
Z_ALIGNMENTS = ("mean", "none")


def landmark_box_size(gt: np.ndarray) -> np.ndarray:
    """sqrt(w * h) of the 2D bounding box of GT landmarks (B, K, >=2) -> (B,). One face (K, >=2) -> scalar array."""
    gt = np.asarray(gt, dtype=np.float64)
    extent = gt[..., :2].max(axis=-2) - gt[..., :2].min(axis=-2)  # (..., 2) = (w, h)
    return np.sqrt(extent[..., 0] * extent[..., 1])


def point_errors(pred: np.ndarray, gt: np.ndarray, dims: int = 2, z_alignment: str = "mean") -> np.ndarray:
    """Euclidean error per point (B, K) between pred and gt (B, K, >=dims) using the first `dims` coordinates."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape[:-1] != gt.shape[:-1]:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} must hold the same points")
    if dims not in (2, 3) or pred.shape[-1] < dims or gt.shape[-1] < dims:
        raise ValueError(f"dims must be 2 or 3 and both arrays need >= dims coordinates (pred {pred.shape}, gt {gt.shape})")
    if z_alignment not in Z_ALIGNMENTS:
        raise ValueError(f"z_alignment must be one of {Z_ALIGNMENTS}, got {z_alignment!r}")
    diff = pred[..., :dims] - gt[..., :dims]
    if dims == 3 and z_alignment == "mean":
        diff[..., 2] -= diff[..., 2].mean(axis=-1, keepdims=True)  # = (pz - mean pz) - (gz - mean gz)
    return np.linalg.norm(diff, axis=-1)


def nme(
    pred: np.ndarray,
    gt: np.ndarray,
    dims: int = 2,
    normalizer: np.ndarray | None = None,
    z_alignment: str = "mean",
) -> np.ndarray:
    """Per-face NME (B,) over any point set; `normalizer` (B,) defaults to the GT box size of these points."""
    errors = point_errors(pred, gt, dims=dims, z_alignment=z_alignment)
    norm = landmark_box_size(gt) if normalizer is None else np.asarray(normalizer, dtype=np.float64)
    if np.any(~np.isfinite(norm)) or np.any(norm <= 0):
        raise ValueError("the normalizer must be positive: a GT landmark box has zero width or height")
    return errors.mean(axis=-1) / norm


def nme_68(pred: np.ndarray, gt: np.ndarray, dims: int = 2, z_alignment: str = "mean") -> np.ndarray:
    """68-point NME per face (B,): pred, gt (B, 68, 2|3); normalized by the GT 2D landmark box sqrt(w*h)."""
    if np.asarray(gt).shape[-2] != 68:
        raise ValueError(f"nme_68 expects 68 landmarks, got {np.asarray(gt).shape}")
    return nme(pred, gt, dims=dims, z_alignment=z_alignment)


INNER_51 = slice(17, 68)  # iBUG 68 without the 17 jaw points (brows, nose, eyes, mouth)


def nme_inner_51(pred: np.ndarray, gt: np.ndarray, dims: int = 2, z_alignment: str = "mean") -> np.ndarray:
    """NME of the 51 inner points (no jaw) per face (B,), normalized like nme_68 by the box of ALL 68 GT points
    (so it is directly comparable with nme_68). People label the visible jaw outline in 2D while a mesh's jaw
    landmarks are fixed on its surface: at large yaw they disagree by convention, the inner points do not."""
    if np.asarray(gt).shape[-2] != 68:
        raise ValueError(f"nme_inner_51 expects 68 landmarks, got {np.asarray(gt).shape}")
    pred, gt = np.asarray(pred), np.asarray(gt)
    return nme(pred[..., INNER_51, :], gt[..., INNER_51, :], dims=dims, normalizer=landmark_box_size(gt),
               z_alignment=z_alignment)


def dense_nme(
    pred_points: np.ndarray,
    gt_points: np.ndarray,
    gt_landmarks: np.ndarray,
    dims: int = 3,
    z_alignment: str = "mean",
) -> np.ndarray:
    """Dense-vertex NME per face (B,): pred/gt (B, N, 3) in correspondence, normalized by the 68-landmark GT box."""
    return nme(pred_points, gt_points, dims=dims, normalizer=landmark_box_size(gt_landmarks), z_alignment=z_alignment)


def per_landmark_nme(pred: np.ndarray, gt: np.ndarray, dims: int = 2, z_alignment: str = "mean") -> np.ndarray:
    """Mean normalized error of each landmark over the faces: (K,)."""
    errors = point_errors(pred, gt, dims=dims, z_alignment=z_alignment)  # (B, K)
    return (errors / landmark_box_size(gt)[:, None]).mean(axis=0)


def yaw_bin_index(yaw_degrees: np.ndarray) -> np.ndarray:
    """Bin of each |yaw| (degrees): 0 for [0, 30), 1 for [30, 60), 2 for [60, 90] and beyond."""
    yaw = np.abs(np.asarray(yaw_degrees, dtype=np.float64))
    return np.clip(np.searchsorted([30.0, 60.0], yaw, side="right"), 0, 2)


def yaw_binned(values: np.ndarray, yaw_degrees: np.ndarray) -> dict:
    """Per-bin count and mean of `values` (B,) and the balanced mean (mean of the non-empty bin means).

    Returns {"bins": {"[0,30)": {"count": n, "mean": m | None}, ...}, "balanced_mean": m | None}.
    """
    values = np.asarray(values, dtype=np.float64)
    index = yaw_bin_index(yaw_degrees)
    bins, means = {}, []
    for i, name in enumerate(YAW_BIN_NAMES):
        members = values[index == i]
        mean = float(members.mean()) if members.size else None
        bins[name] = {"count": int(members.size), "mean": mean}
        if mean is not None:
            means.append(mean)
    return {"bins": bins, "balanced_mean": float(np.mean(means)) if means else None}


def ced_curve(errors: np.ndarray, max_error: float = 0.1, num: int = 201) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: thresholds (num,) in [0, max_error] and the fraction of faces <= each."""
    errors = np.sort(np.asarray(errors, dtype=np.float64).ravel())
    thresholds = np.linspace(0.0, max_error, num)
    if errors.size == 0:
        return thresholds, np.zeros_like(thresholds)
    return thresholds, np.searchsorted(errors, thresholds, side="right") / errors.size


def ced_auc(errors: np.ndarray, max_error: float = 0.1, num: int = 1001) -> float:
    """Area under the CED curve up to max_error, normalized to [0, 1] (1 = every face has zero error)."""
    thresholds, fractions = ced_curve(errors, max_error, num)
    area = np.sum((fractions[1:] + fractions[:-1]) / 2.0 * np.diff(thresholds))  # trapezoid rule
    return float(area / max_error)


def face_pixel_distance(maps: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(B, P) Euclidean (x, y, z) distance in pixels between two sets of (B, S, S, 3) position maps at the P pixels
    of the (S, S) bool `mask` (the layout's face mask)."""
    return np.linalg.norm(maps[:, mask].astype(np.float64) - reference[:, mask], axis=-1)


def map_deviation(maps: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """How far one model's position maps are from another's (e.g. INT8 from FP32) over the face pixels.

    maps/reference: (B, S, S, 3) in crop pixels; mask: (S, S) bool (the layout's face mask). Returns the mean,
    99th percentile and max of the per-pixel Euclidean (x, y, z) distance, in pixels: the max alone is one pixel
    of one face, so p99 says whether it is an outlier or the bulk.
    """
    distance = face_pixel_distance(maps, reference, mask)
    return {"mean": float(distance.mean()), "p99": float(np.percentile(distance, 99)), "max": float(distance.max())}
