"""Position maps and UV layouts at another size: what a 128 px model needs of 256 px data (pure functions).
Used by training, evaluation, compression and benchmarks alike."""

from __future__ import annotations

import cv2
import numpy as np

from prnet.layout import WEIGHT_LANDMARK, UVLayout


def resize_uv_map(posmap: np.ndarray, size: int) -> np.ndarray:
    """Resample a position map's UV grid to size x size (values unchanged). A 2x downscale averages 2x2."""
    if posmap.shape[0] == size:
        return posmap
    return cv2.resize(posmap, (size, size), interpolation=cv2.INTER_LINEAR)


def rescale_points(points: np.ndarray, factor: float) -> np.ndarray:
    """(..., 3) points in pixels of an S px crop -> of an S*factor px crop: pixel centres at integers, so
    x' = (x + 0.5) f - 0.5 (y alike) and z' = z f -- how a ground-truth map follows a resized crop."""
    moved = np.array(points, dtype=np.result_type(points, np.float32))  # float64 stays float64
    moved[..., :2] = (moved[..., :2] + 0.5) * factor - 0.5
    moved[..., 2] *= factor
    return moved


def resize_posmap(posmap: np.ndarray, size: int) -> np.ndarray:
    """A position map of an S px crop as the map of the same crop at `size` px: UV grid resampled
    (`resize_uv_map`) and its points rescaled (`rescale_points`)."""
    return rescale_points(resize_uv_map(posmap, size), size / posmap.shape[0])


def grid_triangles(face_mask: np.ndarray) -> np.ndarray:
    """Two triangles per 2x2 block of face pixels, as indices into the face pixels in row-major order."""
    ids = -np.ones(face_mask.shape, np.int64)
    ids[face_mask] = np.arange(int(face_mask.sum()))
    a, b, c, d = ids[:-1, :-1], ids[:-1, 1:], ids[1:, :-1], ids[1:, 1:]
    tris = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)])
    return tris[(tris >= 0).all(1)].astype(np.int32)


def resize_layout(layout: UVLayout, size: int) -> UVLayout:
    """The layout for position maps resampled to size x size (for models with a smaller input).

    Landmark UVs follow the pixel-centre convention; masks are resampled by nearest neighbour, landmark pixels
    keep the landmark weight, and the face triangles are rebuilt as a regular grid over the new face pixels.
    """
    if size == layout.size:
        return layout
    f = size / layout.size
    landmark_uv = ((layout.landmark_uv + 0.5) * f - 0.5).astype(np.float32)
    face = cv2.resize(layout.face_mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST).astype(bool)
    weight = cv2.resize(layout.weight_mask, (size, size), interpolation=cv2.INTER_NEAREST)
    cols, rows = np.clip(np.round(landmark_uv).astype(int), 0, size - 1).T
    weight[rows, cols] = WEIGHT_LANDMARK
    return UVLayout(f"{layout.name}@{size}", size, landmark_uv, face, weight.astype(np.float32), grid_triangles(face))
