"""One triangle rasterizer for UV space (position maps) and image space (rendering), camera-agnostic.

The caller projects: it passes 2D screen positions (x = column, y = row, pixel centres at integers) and,
for a z-buffer, one depth per vertex (LARGER = CLOSER, the project's convention). The rasterizer finds,
for every pixel centre, the covering triangle (the closest one with a z-buffer, else the last one drawn)
and its barycentric coordinates; `interpolate` then blends any per-vertex attributes (xyz for a position
map, colours, normals...) with them. Interpolation is affine in screen space, exact for the orthographic /
weak-perspective projections PRNet uses.

A position map is the mesh rendered in UV space with its xyz as attributes; because the UV positions never
change, `prnet.geometry.posmap` rasterizes once and reuses the (triangle, barycentric) lookup for every map.

`rasterize` is compiled with numba; `rasterize_reference` is a slow pure-numpy twin used as the test oracle.
Both use the same arithmetic: barycentrics from edge functions in float64, a pixel is covered when all three
are >= -COVER_EPS (so a centre on a shared edge is never a gap), degenerate and non-finite triangles skip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COVER_EPS = 1e-9


@dataclass(frozen=True)
class Raster:
    triangle_id: np.ndarray  # (H, W) int32, covering triangle, -1 where nothing is drawn
    barycentric: np.ndarray  # (H, W, 3) float32 weights of the triangle's 3 vertices (0 where empty)
    depth: np.ndarray  # (H, W) float32 interpolated depth (larger = closer), -inf where empty

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool coverage."""
        return self.triangle_id >= 0


def _check(screen_xy: np.ndarray, triangles: np.ndarray, depth: np.ndarray | None) -> tuple:
    xy = np.ascontiguousarray(screen_xy, dtype=np.float64)
    tris = np.ascontiguousarray(triangles, dtype=np.int64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"screen_xy must be (N, 2), got {xy.shape}")
    if tris.ndim != 2 or tris.shape[1] != 3:
        raise ValueError(f"triangles must be (T, 3), got {tris.shape}")
    if tris.size and (tris.min() < 0 or tris.max() >= len(xy)):
        raise ValueError("triangle vertex ids out of range")
    z = np.zeros(len(xy)) if depth is None else np.ascontiguousarray(depth, dtype=np.float64).reshape(-1)
    if z.shape != (len(xy),):
        raise ValueError(f"depth must be (N,), got {np.shape(depth)}")
    return xy, tris, z


def _kernel(xy, z, tris, use_z, tri_id, bary, zbuf):  # pragma: no cover - compiled below
    height, width = tri_id.shape
    for t in range(tris.shape[0]):
        a, b, c = tris[t, 0], tris[t, 1], tris[t, 2]
        ax, ay, bx, by, cx, cy = xy[a, 0], xy[a, 1], xy[b, 0], xy[b, 1], xy[c, 0], xy[c, 1]
        if not (np.isfinite(ax + ay + bx + by + cx + cy) and np.isfinite(z[a] + z[b] + z[c])):
            continue
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if area == 0.0:
            continue
        x0 = max(int(np.ceil(min(ax, bx, cx))), 0)
        x1 = min(int(np.floor(max(ax, bx, cx))), width - 1)
        y0 = max(int(np.ceil(min(ay, by, cy))), 0)
        y1 = min(int(np.floor(max(ay, by, cy))), height - 1)
        for y in range(y0, y1 + 1):
            for x in range(x0, x1 + 1):
                w0 = ((bx - x) * (cy - y) - (by - y) * (cx - x)) / area
                w1 = ((cx - x) * (ay - y) - (cy - y) * (ax - x)) / area
                w2 = ((ax - x) * (by - y) - (ay - y) * (bx - x)) / area
                if w0 < -COVER_EPS or w1 < -COVER_EPS or w2 < -COVER_EPS:
                    continue
                zz = w0 * z[a] + w1 * z[b] + w2 * z[c]
                if use_z and zz <= zbuf[y, x]:
                    continue
                zbuf[y, x] = zz
                tri_id[y, x] = t
                bary[y, x, 0] = w0
                bary[y, x, 1] = w1
                bary[y, x, 2] = w2


_compiled = None


def _compiled_kernel():
    global _compiled
    if _compiled is None:
        import numba

        _compiled = numba.njit(cache=True, nogil=True)(_kernel)
    return _compiled


def _empty(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.full((height, width), -1, np.int32),
        np.zeros((height, width, 3), np.float64),
        np.full((height, width), -np.inf, np.float64),
    )


def rasterize(
    screen_xy: np.ndarray, triangles: np.ndarray, height: int, width: int, depth: np.ndarray | None = None
) -> Raster:
    """Rasterize triangles given (N, 2) screen positions; with `depth` (N,) keep the closest (largest z).

    Without `depth` later triangles overwrite earlier ones (right for a UV layout, where none overlap).
    """
    xy, tris, z = _check(screen_xy, triangles, depth)
    tri_id, bary, zbuf = _empty(height, width)
    _compiled_kernel()(xy, z, tris, depth is not None, tri_id, bary, zbuf)
    return Raster(tri_id, bary.astype(np.float32), zbuf.astype(np.float32))


def rasterize_triangle_ids(
    screen_xy: np.ndarray, triangles: np.ndarray, height: int, width: int, depth: np.ndarray | None = None
) -> np.ndarray:
    """(H, W) int32 covering-triangle ids (-1 = empty): `rasterize(...).triangle_id`."""
    return rasterize(screen_xy, triangles, height, width, depth).triangle_id


def rasterize_reference(
    screen_xy: np.ndarray, triangles: np.ndarray, height: int, width: int, depth: np.ndarray | None = None
) -> Raster:
    """Pure-numpy twin of `rasterize` (slow: a Python loop over triangles); the test oracle."""
    xy, tris, z = _check(screen_xy, triangles, depth)
    tri_id, bary, zbuf = _empty(height, width)
    for t, (a, b, c) in enumerate(tris):
        (ax, ay), (bx, by), (cx, cy) = xy[a], xy[b], xy[c]
        if not (np.isfinite([ax, ay, bx, by, cx, cy]).all() and np.isfinite(z[[a, b, c]]).all()):
            continue
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if area == 0.0:
            continue
        x0, x1 = max(int(np.ceil(min(ax, bx, cx))), 0), min(int(np.floor(max(ax, bx, cx))), width - 1)
        y0, y1 = max(int(np.ceil(min(ay, by, cy))), 0), min(int(np.floor(max(ay, by, cy))), height - 1)
        if x0 > x1 or y0 > y1:
            continue
        y, x = np.mgrid[y0 : y1 + 1, x0 : x1 + 1].astype(np.float64)
        w = np.stack([
            ((bx - x) * (cy - y) - (by - y) * (cx - x)) / area,
            ((cx - x) * (ay - y) - (cy - y) * (ax - x)) / area,
            ((ax - x) * (by - y) - (ay - y) * (bx - x)) / area,
        ], axis=-1)
        zz = w[..., 0] * z[a] + w[..., 1] * z[b] + w[..., 2] * z[c]
        inside = (w >= -COVER_EPS).all(axis=-1)
        if depth is not None:
            inside &= zz > zbuf[y0 : y1 + 1, x0 : x1 + 1]
        rows, cols = np.nonzero(inside)
        tri_id[rows + y0, cols + x0] = t
        bary[rows + y0, cols + x0] = w[rows, cols]
        zbuf[rows + y0, cols + x0] = zz[rows, cols]
    return Raster(tri_id, bary.astype(np.float32), zbuf.astype(np.float32))


def interpolate(raster: Raster, triangles: np.ndarray, attributes: np.ndarray, background: float = 0.0) -> np.ndarray:
    """(H, W, C) float32 (or (H, W) for (N,) input): per-vertex attributes (N, C) blended with the raster's
    barycentrics; `background` where nothing is drawn."""
    attributes = np.asarray(attributes)
    squeeze = attributes.ndim == 1
    values = attributes.reshape(len(attributes), -1).astype(np.float32, copy=False)
    height, width = raster.triangle_id.shape
    flat_ids = raster.triangle_id.ravel()
    covered = np.flatnonzero(flat_ids >= 0)
    corners = np.take(np.asarray(triangles), flat_ids[covered], axis=0)  # (P, 3) vertex ids
    weights = raster.barycentric.reshape(-1, 3)[covered]  # (P, 3)
    blended = np.take(values, corners[:, 0], axis=0) * weights[:, 0:1]
    blended += np.take(values, corners[:, 1], axis=0) * weights[:, 1:2]
    blended += np.take(values, corners[:, 2], axis=0) * weights[:, 2:3]
    out = np.full((height * width, values.shape[1]), background, np.float32)
    out[covered] = blended
    out = out.reshape(height, width, -1)
    return out[..., 0] if squeeze else out


def render(
    screen_xy: np.ndarray,
    triangles: np.ndarray,
    attributes: np.ndarray,
    height: int,
    width: int,
    depth: np.ndarray | None = None,
    background: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Rasterize and interpolate in one call: returns ((H, W, C) float32 image, (H, W) bool mask)."""
    raster = rasterize(screen_xy, triangles, height, width, depth)
    return interpolate(raster, triangles, attributes, background), raster.mask
