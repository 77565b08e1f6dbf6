"""Similarity crops as PRNet does them, and their inverse.

A crop is a 2x3 matrix M mapping original image pixels to crop pixels: p_crop = M @ [x, y, 1]. Position maps
live in the crop frame; z is scaled by the same factor as x and y (a similarity transform), so mapping a
map back to the original image is `transform_points(points, inverse_similarity(M))`.

Box conventions (documented in the README):
- from ground-truth 2D landmarks (training data): square box centred on the landmark bounding box,
  side = LANDMARK_BOX_SCALE (1.5) x the mean of its width and height (PRNet's generate_posmap_300WLP). PRNet's
  evaluation with ground-truth landmarks (its api.process) uses 1.6 instead: prnet.data.aflw2000 passes that.
- from a face detector box: centre shifted down by DETECTION_SHIFT x the box size, side = DETECTION_BOX_SCALE x
  the box size (PRNet's demo uses 0.14 and 1.58 for dlib boxes; detectors differ, see prnet.predict.detect).
"""

from __future__ import annotations

import numpy as np

LANDMARK_BOX_SCALE = 1.5
DETECTION_BOX_SCALE = 1.58
DETECTION_SHIFT = 0.14


def box_from_landmarks(points_2d: np.ndarray, scale: float = LANDMARK_BOX_SCALE) -> tuple[np.ndarray, float]:
    """(center (2,), side) of PRNet's square crop around landmarks (K, >=2)."""
    points = np.asarray(points_2d, dtype=np.float64)[:, :2]
    lo, hi = points.min(axis=0), points.max(axis=0)
    return (lo + hi) / 2.0, float((hi - lo).mean() * scale)


def box_from_detection(
    box_xyxy: np.ndarray, scale: float = DETECTION_BOX_SCALE, shift: float = DETECTION_SHIFT
) -> tuple[np.ndarray, float]:
    """(center (2,), side) of PRNet's square crop around a detector box (left, top, right, bottom)."""
    left, top, right, bottom = (float(v) for v in box_xyxy)
    size = (right - left + bottom - top) / 2.0
    center = np.array([(left + right) / 2.0, (top + bottom) / 2.0 + size * shift])
    return center, size * scale


def crop_matrix(center: np.ndarray, side: float, out_size: int = 256) -> np.ndarray:
    """2x3 matrix mapping the square box (center, side) onto [0, out_size) x [0, out_size).

    Pixel centres are at integer coordinates: box corner center - side/2 maps to -0.5.
    """
    if side <= 0:
        raise ValueError(f"crop side must be positive, got {side}")
    s = out_size / side
    cx, cy = float(center[0]), float(center[1])
    return np.array(
        [[s, 0.0, out_size / 2.0 - 0.5 - s * (cx - 0.5)], [0.0, s, out_size / 2.0 - 0.5 - s * (cy - 0.5)]]
    )


def similarity_scale(matrix: np.ndarray) -> float:
    """The isotropic scale of a similarity 2x3 matrix (sqrt of |det|)."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix)[:, :2]))))


def inverse_similarity(matrix: np.ndarray) -> np.ndarray:
    full = np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """outer o inner as a 2x3 matrix (apply inner first)."""
    a = np.vstack([outer, [0, 0, 1]])
    b = np.vstack([inner, [0, 0, 1]])
    return (a @ b)[:2]


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 similarity to (..., 2) or (..., 3) points; z is multiplied by the similarity's scale."""
    points = np.asarray(points, dtype=np.float64)
    out = points.copy()
    out[..., :2] = points[..., :2] @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]
    if points.shape[-1] >= 3:
        out[..., 2] = points[..., 2] * similarity_scale(matrix)
    return out


def warp_image(image: np.ndarray, matrix: np.ndarray, out_size: int = 256, border_value: int = 0) -> np.ndarray:
    """Resample `image` into the crop frame (bilinear; INTER_AREA-like prefilter when shrinking a lot)."""
    import cv2

    scale = similarity_scale(matrix)
    if scale < 0.5:  # shrinking: blur first so the crop is not aliased
        sigma = 0.5 / scale * 0.5
        image = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma)
    return cv2.warpAffine(
        image,
        np.asarray(matrix, dtype=np.float64),
        (out_size, out_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(border_value,) * 3,
    )
