"""Position maps: mesh -> map, map -> 68 landmarks / dense face vertices, and .obj output.

A position map (S, S, 3) float32 stores, at each UV pixel, the (x, y, z) of the face surface point there in
the crop frame: x right, y down in pixels, z depth in the same units, larger z = closer, shifted so the
mesh's minimum z is 0 (PRNet's convention). `prnet.geometry.layout` says where the face and landmarks are.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prnet.geometry.layout import LAYOUT_NAME, default_layout, uv_pixels
from prnet.geometry.mesh import FaceMesh, load_face_mesh
from prnet.geometry.raster import rasterize
from prnet.io import PrnetInputError, atomic_path
from prnet.layout import UVLayout


@dataclass(frozen=True)
class UVSampler:
    """A mesh's UV triangles rasterized once: renders per-vertex attributes into UV maps with a gather."""

    size: int
    rows: np.ndarray  # (P,) covered pixels
    cols: np.ndarray  # (P,)
    corners: np.ndarray  # (P, 3) vertex ids of the covering triangle
    weights: np.ndarray  # (P, 3) float32 barycentrics

    @classmethod
    def from_uv(cls, uv_px: np.ndarray, triangles: np.ndarray, size: int) -> "UVSampler":
        """uv_px (N, 2) in pixels (u = column, v = row); triangles (T, 3) that do not overlap in UV."""
        raster = rasterize(uv_px, triangles, size, size)
        rows, cols = np.nonzero(raster.mask)
        corners = np.asarray(triangles, np.int64)[raster.triangle_id[rows, cols]]
        return cls(size, rows, cols, corners, raster.barycentric[rows, cols])

    def render(self, attributes: np.ndarray, background: float = 0.0) -> np.ndarray:
        """(N, C) or batched (B, N, C) per-vertex attributes -> (S, S, C) or (B, S, S, C) float32."""
        attributes = np.asarray(attributes, dtype=np.float32)
        batch, (n, c) = attributes.shape[:-2], attributes.shape[-2:]
        columns = np.moveaxis(attributes.reshape(-1, n, c), 0, 1).reshape(n, -1)  # (N, B*C)
        values = (self._matrix(n) @ columns).reshape(len(self.rows), -1, c)  # (P, B, C)
        out = np.full((values.shape[1], self.size, self.size, c), background, np.float32)
        out[:, self.rows, self.cols, :] = np.moveaxis(values, 1, 0)
        return out.reshape(batch + out.shape[1:])

    def _matrix(self, num_vertices: int):
        """(P, N) sparse interpolation matrix, 3 barycentric weights per row (built once per size)."""
        import scipy.sparse as sp

        cached = self.__dict__.get("_sparse")
        if cached is None or cached.shape[1] != num_vertices:
            if self.corners.size and self.corners.max() >= num_vertices:
                raise PrnetInputError(f"UV sampler needs attributes for {self.corners.max() + 1}+ vertices")
            rows = np.repeat(np.arange(len(self.rows)), 3)
            cached = sp.csr_matrix(
                (self.weights.ravel(), (rows, self.corners.ravel())), shape=(len(self.rows), num_vertices)
            )
            object.__setattr__(self, "_sparse", cached)
        return cached


@functools.lru_cache(maxsize=4)
def _default_sampler(size: int) -> UVSampler:
    mesh = load_face_mesh()
    return UVSampler.from_uv(uv_pixels(mesh.uv, size), mesh.triangles[mesh.layout_triangles], size)


def uv_sampler(mesh: FaceMesh | None = None, size: int = 256) -> UVSampler:
    """The sampler of the packaged mesh (cached) or of another mesh with the same kind of UV."""
    if mesh is None:
        return _default_sampler(size)
    return UVSampler.from_uv(uv_pixels(mesh.uv, size), mesh.triangles[mesh.layout_triangles], size)


def position_map(vertices_img: np.ndarray, mesh: FaceMesh | None = None, layout: UVLayout | None = None) -> np.ndarray:
    """(N, 3) mesh vertices in the crop frame (or (B, N, 3)) -> (S, S, 3) float32 position map (or batched).

    `mesh` defaults to the packaged face mesh, `layout` to `default_layout()`; only the project's own layout
    can be rendered from this mesh (a BFM_UV layout needs BFM's UVs: use UVSampler.from_uv).
    """
    layout = default_layout() if layout is None else layout
    if layout.name != LAYOUT_NAME:
        raise PrnetInputError(f"position_map renders the '{LAYOUT_NAME}' layout, not '{layout.name}'")
    sampler = uv_sampler(mesh, layout.size)
    n = (load_face_mesh() if mesh is None else mesh).num_vertices
    vertices_img = np.asarray(vertices_img)
    if vertices_img.shape[-2:] != (n, 3):
        raise PrnetInputError(f"position_map: vertices must be (..., {n}, 3), got {vertices_img.shape}")
    return sampler.render(vertices_img)


def bilinear_sample(maps: np.ndarray, points_uv: np.ndarray) -> np.ndarray:
    """Sample (..., S, S, C) maps at (K, 2) continuous pixel positions (u = column, v = row) -> (..., K, C)."""
    size_r, size_c = maps.shape[-3], maps.shape[-2]
    u = np.clip(points_uv[:, 0], 0, size_c - 1)
    v = np.clip(points_uv[:, 1], 0, size_r - 1)
    c0 = np.minimum(np.floor(u).astype(int), size_c - 2)
    r0 = np.minimum(np.floor(v).astype(int), size_r - 2)
    fu, fv = (u - c0)[:, None].astype(np.float32), (v - r0)[:, None].astype(np.float32)
    top = maps[..., r0, c0, :] * (1 - fu) + maps[..., r0, c0 + 1, :] * fu
    bottom = maps[..., r0 + 1, c0, :] * (1 - fu) + maps[..., r0 + 1, c0 + 1, :] * fu
    return top * (1 - fv) + bottom * fv


def _check_maps(posmap: np.ndarray, layout: UVLayout) -> np.ndarray:
    posmap = np.asarray(posmap)
    if posmap.ndim < 3 or posmap.shape[-3:] != (layout.size, layout.size, 3):
        raise PrnetInputError(
            f"position map shape {posmap.shape} does not match layout '{layout.name}' "
            f"(expected (..., {layout.size}, {layout.size}, 3))"
        )
    return posmap


def landmarks_from_posmap(posmap: np.ndarray, layout: UVLayout | None = None) -> np.ndarray:
    """(S, S, 3) or (B, S, S, 3) position maps -> (68, 3) or (B, 68, 3) landmarks (x, y, z), bilinear."""
    layout = default_layout() if layout is None else layout
    return bilinear_sample(_check_maps(posmap, layout), layout.landmark_uv).astype(np.float32)


def dense_vertices(posmap: np.ndarray, layout: UVLayout | None = None) -> np.ndarray:
    """(S, S, 3) or batched maps -> (M, 3) / (B, M, 3) face vertices (face pixels in row-major order);
    their triangles are `layout.face_triangles`."""
    layout = default_layout() if layout is None else layout
    rows, cols = layout.face_pixels
    return _check_maps(posmap, layout)[..., rows, cols, :]


def face_triangles(layout: UVLayout | None = None) -> np.ndarray:
    """(M, 3) int32 triangles of the dense output mesh (indices into `dense_vertices`)."""
    return (default_layout() if layout is None else layout).face_triangles


def weak_perspective(vertices: np.ndarray, rotation: np.ndarray, scale: float, translation_xy) -> np.ndarray:
    """Mesh-frame vertices (N, 3) (x right, y up, z to the viewer) -> crop frame (x right, y down, pixels,
    larger z closer, min z = 0): x' = s (R v)_x + tx, y' = -s (R v)_y + ty, z' = s (R v)_z - min."""
    p = np.asarray(vertices, np.float64) @ np.asarray(rotation, np.float64).T * scale
    out = np.stack([p[:, 0] + translation_xy[0], -p[:, 1] + translation_xy[1], p[:, 2]], axis=1)
    out[:, 2] -= out[:, 2].min()
    return out.astype(np.float32)


def write_obj(path: str | Path, vertices: np.ndarray, triangles: np.ndarray, colors: np.ndarray | None = None) -> None:
    """Write a Wavefront .obj (atomic). colors: (N, 3) RGB, float in [0, 1] or uint8, as `v x y z r g b`."""
    vertices = np.asarray(vertices, np.float64)
    triangles = np.asarray(triangles, np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or triangles.ndim != 2 or triangles.shape[1] != 3:
        raise PrnetInputError(f"{path}: write_obj needs (N, 3) vertices and (M, 3) triangles")
    if triangles.size and (triangles.min() < 0 or triangles.max() >= len(vertices)):
        raise PrnetInputError(f"{path}: triangle ids out of range for {len(vertices)} vertices")
    if colors is not None:
        colors = np.asarray(colors)
        colors = colors / 255.0 if colors.dtype == np.uint8 else colors.astype(np.float64)
        if colors.shape != vertices.shape:
            raise PrnetInputError(f"{path}: colors must be (N, 3) like the vertices, got {colors.shape}")
        rows = np.hstack([vertices, np.clip(colors, 0, 1)])
    else:
        rows = vertices
    vertex_format = "v" + " %.6g" * rows.shape[1]
    vertex_lines = "\n".join([vertex_format % tuple(r) for r in rows.tolist()])
    face_lines = "\n".join(["f %d %d %d" % tuple(t) for t in (triangles + 1).tolist()])
    with atomic_path(path) as tmp:
        tmp.write_text(vertex_lines + "\n" + face_lines + "\n")
