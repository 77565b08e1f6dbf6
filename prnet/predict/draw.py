"""Pictures of predictions: sparse landmarks, dense points and the shaded mesh over the image.

All functions take and return HxWx3 uint8 RGB images (a copy; the input is not modified) and points in the
image frame (x right, y down, z larger = closer).
"""

from __future__ import annotations

import numpy as np

# iBUG 68 contours: (first, last, closed)
IBUG_CONTOURS = ((0, 16, False), (17, 21, False), (22, 26, False), (27, 30, False), (31, 35, False),
                 (36, 41, True), (42, 47, True), (48, 59, True), (60, 67, True))
LANDMARK_COLOR = (0, 255, 0)
CONTOUR_COLOR = (255, 255, 255)
DENSE_COLOR = (255, 80, 0)


def _thickness(image: np.ndarray) -> int:
    return max(1, int(round(max(image.shape[:2]) / 500)))


def draw_landmarks(image: np.ndarray, landmarks_2d: np.ndarray, contours: bool = True) -> np.ndarray:
    """68 landmarks as dots joined along the iBUG contours."""
    import cv2

    out = image.copy()
    t = _thickness(image)
    points = np.round(np.asarray(landmarks_2d)[:, :2] * 16).astype(np.int32)  # 4 fractional bits
    if contours and len(points) == 68:
        for first, last, closed in IBUG_CONTOURS:
            cv2.polylines(out, [points[first : last + 1]], closed, CONTOUR_COLOR, t, cv2.LINE_AA, shift=4)
    for p in points:
        cv2.circle(out, (int(p[0]), int(p[1])), 16 * (t + 1), LANDMARK_COLOR, -1, cv2.LINE_AA, shift=4)
    return out


def draw_dense(image: np.ndarray, vertices: np.ndarray, step: int = 4) -> np.ndarray:
    """Every `step`-th dense vertex as a single pixel dot."""
    out = image.copy()
    h, w = out.shape[:2]
    xy = np.round(np.asarray(vertices)[::step, :2]).astype(np.int64)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    out[xy[inside, 1], xy[inside, 0]] = DENSE_COLOR
    return out


def triangle_shading(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Lambert shade in [0, 1] per triangle, light from the viewer (towards -z in the image frame)."""
    v = np.asarray(vertices, dtype=np.float64)
    a, b, c = v[triangles[:, 0]], v[triangles[:, 1]], v[triangles[:, 2]]
    normals = np.cross(b - a, c - a)
    length = np.linalg.norm(normals, axis=1)
    cosine = np.abs(normals[:, 2]) / np.maximum(length, 1e-12)  # two-sided: orientation-agnostic
    return np.where(length > 0, 0.25 + 0.75 * cosine, 0.0)



def render_mesh(image: np.ndarray, vertices: np.ndarray, triangles: np.ndarray, alpha: float = 0.85) -> np.ndarray:
    """The mesh, flat-shaded, blended over the image; hidden surfaces removed with prnet.geometry.raster's
    z-buffer (larger z = closer). Only the mesh's bounding region of the image is rasterized."""
    from prnet.geometry.raster import rasterize

    vertices = np.asarray(vertices, dtype=np.float64)
    h, w = image.shape[:2]
    finite = np.isfinite(vertices).all(axis=1)
    if not finite.any():
        return image.copy()
    x0, y0 = np.clip(np.floor(vertices[finite, :2].min(0)).astype(int), 0, [w, h])
    x1, y1 = np.clip(np.ceil(vertices[finite, :2].max(0)).astype(int) + 1, 0, [w, h])
    out = image.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    raster = rasterize(vertices[:, :2] - [x0, y0], triangles, int(y1 - y0), int(x1 - x0), depth=vertices[:, 2])
    rows, cols = np.nonzero(raster.mask)
    gray = 255.0 * triangle_shading(vertices, np.asarray(triangles))[raster.triangle_id[rows, cols]]
    region = out[y0:y1, x0:x1]
    region[rows, cols] = (alpha * gray[:, None] + (1 - alpha) * region[rows, cols]).astype(np.uint8)
    return out
