"""The project's UV layout "prnet-tutte-v1": masks, weights and landmark positions of a position map.

Built from the face mesh asset (`FaceMesh.uv`, the Tutte embedding of `prnet.geometry.tutte`) by
rasterizing its UV triangles once:
- landmark_uv: the 68 landmark vertices' UV positions in pixels (u = column, v = row), continuous, so
  landmarks are read by bilinear sampling at the exact position (~10x more accurate than rounding);
- face_mask: pixels whose covering triangle lies in the face region (all three corners REGION_FACE or
  higher): the dense output mesh;
- weight_mask: PRNet's loss weights: 4 on eyes-nose-mouth triangles, 3 on the rest of the face, 0 on the
  margin, and 16 on the 2x2 pixels around each landmark (exactly the pixels bilinear sampling reads);
- face_triangles: two triangles per 2x2 block of face pixels, wound like the mesh's triangles in UV.
"""

from __future__ import annotations

import functools

import numpy as np

from prnet.geometry.mesh import REGION_EYES_NOSE_MOUTH, REGION_FACE, FaceMesh, load_face_mesh
from prnet.geometry.raster import rasterize
from prnet.layout import WEIGHT_EYES_NOSE_MOUTH, WEIGHT_FACE, WEIGHT_LANDMARK, UVLayout

LAYOUT_NAME = "prnet-tutte-v1"
DEFAULT_SIZE = 256


def uv_pixels(uv: np.ndarray, size: int) -> np.ndarray:
    """UV in [0, 1] -> pixel coordinates: 0 and 1 land on the centres of the first and last pixels."""
    return np.asarray(uv, dtype=np.float64) * (size - 1)


def landmark_support(landmark_uv: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the 2x2 pixels bilinear sampling reads around each landmark ((68*4,) each)."""
    c0 = np.clip(np.floor(landmark_uv[:, 0]).astype(int), 0, size - 2)
    r0 = np.clip(np.floor(landmark_uv[:, 1]).astype(int), 0, size - 2)
    rows = np.stack([r0, r0, r0 + 1, r0 + 1], axis=1).ravel()
    cols = np.stack([c0, c0 + 1, c0, c0 + 1], axis=1).ravel()
    return rows, cols


def grid_triangles(mask: np.ndarray, clockwise: bool) -> np.ndarray:
    """(M, 3) int32 triangles over the True pixels of `mask`, indexing them in row-major order.

    clockwise=True winds each triangle clockwise on screen (v down), i.e. positive signed area in (u, v)."""
    size_r, size_c = mask.shape
    index = np.full(mask.shape, -1, np.int64)
    index[mask] = np.arange(int(mask.sum()))
    tl, tr, bl, br = index[:-1, :-1], index[:-1, 1:], index[1:, :-1], index[1:, 1:]
    upper = np.stack([tl, tr, bl], axis=-1)[(tl >= 0) & (tr >= 0) & (bl >= 0)]  # tl -> tr -> bl: clockwise
    lower = np.stack([tr, br, bl], axis=-1)[(tr >= 0) & (br >= 0) & (bl >= 0)]
    triangles = np.concatenate([upper, lower])
    return (triangles if clockwise else triangles[:, ::-1]).astype(np.int32)


def build_layout(mesh: FaceMesh, size: int = DEFAULT_SIZE, uv: np.ndarray | None = None, name: str = LAYOUT_NAME) -> UVLayout:
    """Rasterize the mesh's UV triangles (or `uv`, e.g. a freshly recomputed embedding) into a UVLayout."""
    uv = mesh.uv if uv is None else uv
    tris = mesh.triangles[mesh.layout_triangles]
    px = uv_pixels(uv, size)
    raster = rasterize(px, tris, size, size)
    covered = raster.mask
    region = mesh.regions[tris].min(axis=1)[np.maximum(raster.triangle_id, 0)]  # (S, S) weakest corner
    face_mask = covered & (region >= REGION_FACE)
    weight = np.where(region >= REGION_EYES_NOSE_MOUTH, WEIGHT_EYES_NOSE_MOUTH, WEIGHT_FACE).astype(np.float32)
    weight[~face_mask] = 0.0
    landmark_uv = px[mesh.landmark_ids].astype(np.float32)
    weight[landmark_support(landmark_uv, size)] = WEIGHT_LANDMARK
    a, b, c = px[tris[:, 0]], px[tris[:, 1]], px[tris[:, 2]]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    return UVLayout(
        name=name,
        size=size,
        landmark_uv=landmark_uv,
        face_mask=face_mask,
        weight_mask=weight,
        face_triangles=grid_triangles(face_mask, clockwise=bool(np.median(area) > 0)),
    )


@functools.lru_cache(maxsize=4)
def default_layout(size: int = DEFAULT_SIZE) -> UVLayout:
    """The project's layout for the packaged face mesh (cached; treat its arrays as read-only)."""
    layout = build_layout(load_face_mesh(), size)
    for array in (layout.landmark_uv, layout.face_mask, layout.weight_mask, layout.face_triangles):
        array.setflags(write=False)
    return layout
