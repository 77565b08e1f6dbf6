"""Compiled (numba) versions of the renderer's two per-sample hot loops, with their numpy oracles named.

- `vertex_normals_fast` == appearance.vertex_normals (numpy, sparse incidence): one pass over triangles.
- `interpolate_fast` == prnet.geometry.raster.interpolate: blends per-vertex colours with the raster's
  barycentrics in one pass over pixels instead of nonzero + gather + einsum.
tests/test_synth_model.py checks both against their oracles.
"""

from __future__ import annotations

import numpy as np

_compiled: dict = {}


def _normals_kernel(v, tris, out):  # pragma: no cover - compiled below
    for t in range(tris.shape[0]):
        a, b, c = tris[t, 0], tris[t, 1], tris[t, 2]
        e1x, e1y, e1z = v[b, 0] - v[a, 0], v[b, 1] - v[a, 1], v[b, 2] - v[a, 2]
        e2x, e2y, e2z = v[c, 0] - v[a, 0], v[c, 1] - v[a, 1], v[c, 2] - v[a, 2]
        nx, ny, nz = e1y * e2z - e1z * e2y, e1z * e2x - e1x * e2z, e1x * e2y - e1y * e2x
        for k in (a, b, c):
            out[k, 0] += nx
            out[k, 1] += ny
            out[k, 2] += nz
    for i in range(out.shape[0]):
        norm = np.sqrt(out[i, 0] ** 2 + out[i, 1] ** 2 + out[i, 2] ** 2) + 1e-12
        out[i, 0] /= norm
        out[i, 1] /= norm
        out[i, 2] /= norm


def _interpolate_kernel(tri_id, bary, tris, attributes, out):  # pragma: no cover - compiled below
    height, width = tri_id.shape
    for r in range(height):
        for c in range(width):
            t = tri_id[r, c]
            if t < 0:
                continue
            for k in range(3):
                w = bary[r, c, k]
                vertex = tris[t, k]
                for ch in range(attributes.shape[1]):
                    out[r, c, ch] += w * attributes[vertex, ch]


def _kernel(name: str):
    if name not in _compiled:
        import numba

        source = {"normals": _normals_kernel, "interpolate": _interpolate_kernel}[name]
        _compiled[name] = numba.njit(cache=True, nogil=True)(source)
    return _compiled[name]


def vertex_normals_fast(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(N, 3) float32 area-weighted unit vertex normals."""
    out = np.zeros((len(vertices), 3), np.float32)
    _kernel("normals")(np.ascontiguousarray(vertices, np.float32), np.ascontiguousarray(triangles, np.int32), out)
    return out


def interpolate_fast(raster, triangles: np.ndarray, attributes: np.ndarray) -> np.ndarray:
    """(H, W, C) float32 per-vertex attributes blended over a prnet.geometry.raster.Raster (0 where empty)."""
    height, width = raster.triangle_id.shape
    attributes = np.ascontiguousarray(attributes, np.float32)
    out = np.zeros((height, width, attributes.shape[1]), np.float32)
    _kernel("interpolate")(raster.triangle_id, np.ascontiguousarray(raster.barycentric, np.float32),
                           np.ascontiguousarray(triangles, np.int32), attributes, out)
    return out
