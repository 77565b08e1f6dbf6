"""UV layouts of the Basel Face Model: "bfm-uv" (BFM_UV.mat, what PRNet/face3d use) and "bfm-tutte".

Both are built the same way from per-vertex UV pixel coordinates:
- the BFM triangles (tri + tri_mouth) are rasterized once in UV space; every covered pixel centre stores its
  triangle's 3 vertex ids and barycentric weights (a `UVSampler`), so a position map is a gather + weighted
  sum (`UVSampler.render`), exactly face3d's `render_colors(uv_coords, full_triangles, position)`;
- face_mask = covered pixels; landmark_uv = the UV pixel coordinates of the 68 kpt_ind vertices;
- weight_mask (PRNet's loss weights): 16 at the pixel nearest each landmark, 4 in the eyes-nose-mouth region,
  3 on the rest of the face, 0 elsewhere. The eyes-nose-mouth region is defined on the mean shape: points
  closer than REGION_RADIUS x (outer eye-corner distance, landmarks 36-45) in 3D to any landmark of the eyes
  (36-47), the nose (27-35) or the mouth (48-67); the per-vertex distance is interpolated into UV space and
  thresholded, so the region follows the surface whatever the UV parameterization;
- face_triangles: two triangles per 2x2 block of face pixels (the grid mesh PRNet's triangles.txt is).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prnet.data.bfm import BFMModel, uv_to_pixels
from prnet.io import PrnetInputError
from prnet.layout import WEIGHT_EYES_NOSE_MOUTH, WEIGHT_FACE, WEIGHT_LANDMARK, WEIGHT_OTHER, UVLayout

REGION_RADIUS = 0.12  # x outer eye-corner distance (about 11 mm on an adult face)
EYES_NOSE_MOUTH_LANDMARKS = np.r_[27:36, 36:48, 48:68]
OUTER_EYE_CORNERS = (36, 45)
LAYOUT_CHOICES = ("bfm-uv", "tutte")


@dataclass(frozen=True, eq=False)
class UVSampler:
    """Per covered UV pixel: the vertex ids and barycentric weights of the triangle that covers it."""

    size: int
    rows: np.ndarray  # (P,) int32
    cols: np.ndarray  # (P,) int32
    vertex_ids: np.ndarray  # (P, 3) int32
    weights: np.ndarray  # (P, 3) float64, rows sum to 1

    @property
    def mask(self) -> np.ndarray:
        mask = np.zeros((self.size, self.size), dtype=bool)
        mask[self.rows, self.cols] = True
        return mask

    def render(self, values: np.ndarray, background: float = 0.0) -> np.ndarray:
        """(n, C) per-vertex values -> (S, S, C) float32 map (background outside the covered pixels)."""
        values = np.asarray(values, dtype=np.float64)
        out = np.full((self.size, self.size, values.shape[1]), background, dtype=np.float32)
        out[self.rows, self.cols] = np.einsum("pk,pkc->pc", self.weights, values[self.vertex_ids])
        return out

    def render_scalar(self, values: np.ndarray, background: float = 0.0) -> np.ndarray:
        return self.render(np.asarray(values).reshape(-1, 1), background)[..., 0]


def build_uv_sampler(uv_pixels: np.ndarray, triangles: np.ndarray, size: int) -> UVSampler:
    """Rasterize `triangles` at UV pixel coordinates (n, 2) (u = column, v = row) into a UVSampler."""
    from prnet.geometry.raster import rasterize_triangle_ids

    uv_pixels = np.asarray(uv_pixels, dtype=np.float64)
    triangles = np.asarray(triangles, dtype=np.int64)
    ids = rasterize_triangle_ids(uv_pixels, triangles, size, size)  # (S, S) int, -1 = empty
    rows, cols = np.nonzero(ids >= 0)
    tri = triangles[ids[rows, cols]]
    weights = _barycentric(uv_pixels[tri], np.stack([cols, rows], axis=1).astype(np.float64))
    return UVSampler(
        size=size,
        rows=rows.astype(np.int32),
        cols=cols.astype(np.int32),
        vertex_ids=tri.astype(np.int32),
        weights=weights,
    )


def _barycentric(corners: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(P, 3) barycentric weights of points (P, 2) in triangles (P, 3, 2); clipped to the triangle."""
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    v0, v1, v2 = b - a, c - a, points - a
    d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
    d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
    denom = d00 * d11 - d01 * d01
    denom = np.where(np.abs(denom) > 1e-12, denom, 1.0)  # degenerate triangles: weight on vertex a
    w1 = (d11 * d20 - d01 * d21) / denom
    w2 = (d00 * d21 - d01 * d20) / denom
    weights = np.clip(np.stack([1.0 - w1 - w2, w1, w2], axis=1), 0.0, 1.0)
    return weights / weights.sum(axis=1, keepdims=True)


def grid_triangles(face_mask: np.ndarray) -> np.ndarray:
    """(M, 3) int32 triangles over the face pixels (indices in row-major order of the True pixels):
    for each 2x2 block whose 4 pixels are all face pixels, (tl, bl, tr) and (tr, bl, br)."""
    mask = np.asarray(face_mask, dtype=bool)
    index = np.full(mask.shape, -1, dtype=np.int64)
    index[mask] = np.arange(int(mask.sum()))
    tl, tr, bl, br = index[:-1, :-1], index[:-1, 1:], index[1:, :-1], index[1:, 1:]
    full = (tl >= 0) & (tr >= 0) & (bl >= 0) & (br >= 0)
    first = np.stack([tl[full], bl[full], tr[full]], axis=1)
    second = np.stack([tr[full], bl[full], br[full]], axis=1)
    return np.concatenate([first, second]).astype(np.int32)


def eyes_nose_mouth_distance(model: BFMModel) -> np.ndarray:
    """(n,) distance of each mean-shape vertex to the nearest eye/nose/mouth landmark, in units of the
    outer eye-corner distance."""
    vertices = model.mean_vertices.astype(np.float64)
    landmarks = vertices[model.landmark_ids]
    scale = np.linalg.norm(landmarks[OUTER_EYE_CORNERS[0]] - landmarks[OUTER_EYE_CORNERS[1]])
    if not scale > 0:
        raise PrnetInputError(f"{model.source}: landmarks 36 and 45 (outer eye corners) coincide; bad kpt_ind")
    targets = landmarks[EYES_NOSE_MOUTH_LANDMARKS]
    best = np.full(len(vertices), np.inf)
    for start in range(0, len(targets), 8):  # chunks keep memory at n x 8
        chunk = targets[start : start + 8]
        best = np.minimum(best, np.linalg.norm(vertices[:, None, :] - chunk[None], axis=2).min(axis=1))
    return best / scale


def build_layout(
    name: str, model: BFMModel, uv_pixels: np.ndarray, size: int, triangles: np.ndarray | None = None
) -> tuple[UVLayout, UVSampler]:
    """UVLayout + sampler for the BFM with per-vertex UV pixel coordinates (n, 2); `triangles` defaults to
    all of the model's (tri + tri_mouth)."""
    triangles = model.triangles if triangles is None else triangles
    sampler = build_uv_sampler(uv_pixels, triangles, size)
    face_mask = sampler.mask
    if not face_mask.any():
        raise PrnetInputError(f"layout '{name}': the BFM triangles cover no pixel of the {size}x{size} UV map")
    distance = sampler.render_scalar(eyes_nose_mouth_distance(model), background=np.inf)
    weight_mask = np.full((size, size), WEIGHT_OTHER, dtype=np.float32)
    weight_mask[face_mask] = WEIGHT_FACE
    weight_mask[face_mask & (distance < REGION_RADIUS)] = WEIGHT_EYES_NOSE_MOUTH
    landmark_uv = np.asarray(uv_pixels, dtype=np.float64)[model.landmark_ids].astype(np.float32)
    nearest = np.clip(np.round(landmark_uv).astype(np.int64), 0, size - 1)
    on_face = face_mask[nearest[:, 1], nearest[:, 0]]
    weight_mask[nearest[on_face, 1], nearest[on_face, 0]] = WEIGHT_LANDMARK
    layout = UVLayout(
        name=name,
        size=size,
        landmark_uv=landmark_uv,
        face_mask=face_mask,
        weight_mask=weight_mask,
        face_triangles=grid_triangles(face_mask),
    )
    return layout, sampler


def bfm_uv_layout(model: BFMModel, uv: np.ndarray, size: int = 256) -> tuple[UVLayout, UVSampler]:
    """The "bfm-uv" layout from BFM_UV.mat's UV (n, 2) in [0, 1] (face3d's process_uv mapping)."""
    if len(uv) != model.n_vertices:
        raise PrnetInputError(f"BFM_UV has {len(uv)} coordinates but the BFM has {model.n_vertices} vertices")
    return build_layout("bfm-uv", model, uv_to_pixels(uv, size), size)


def bfm_tutte_layout(model: BFMModel, size: int = 256) -> tuple[UVLayout, UVSampler]:
    """The "bfm-tutte" layout: this project's Tutte flattening (prnet.geometry.tutte.flatten_face) applied to
    the BFM mean shape, the whole BFM mesh counting as face (3DDFA's BFM is already cropped to the face).
    Needs tri + tri_mouth to form a topological disk. UV v grows downwards there: row = v * (S - 1)."""
    from prnet.geometry.tutte import flatten_face

    vertices = model.mean_vertices.astype(np.float64)
    center_x = float(vertices[model.landmark_ids, 0].mean())
    try:
        uv, keep = flatten_face(vertices, model.triangles, np.ones(len(vertices), bool), center_x)
    except PrnetInputError as err:
        raise PrnetInputError(f"{model.source}: cannot flatten the BFM mesh for --layout tutte ({err})") from err
    landmarks_in_map = np.isfinite(uv[model.landmark_ids]).all()
    if not landmarks_in_map:
        raise PrnetInputError(f"{model.source}: some landmark vertices fall outside the Tutte map; use --layout bfm-uv")
    uv_pixels = np.nan_to_num(uv, nan=0.0) * (size - 1)  # u = column, v = row
    return build_layout("bfm-tutte", model, uv_pixels, size, triangles=model.triangles[keep])


def make_layout(
    kind: str, model: BFMModel, bfm_uv_path: str | None, size: int = 256
) -> tuple[UVLayout, UVSampler]:
    """Layout by CLI name: "bfm-uv" (needs BFM_UV.mat) or "tutte"/"bfm-tutte"."""
    from prnet.data.bfm import load_bfm_uv

    if kind == "bfm-uv":
        if bfm_uv_path is None:
            raise PrnetInputError("--layout bfm-uv needs --bfm-uv BFM_UV.mat (or use --layout tutte)")
        return bfm_uv_layout(model, load_bfm_uv(bfm_uv_path, model.n_vertices), size)
    if kind in ("tutte", "bfm-tutte"):
        return bfm_tutte_layout(model, size)
    raise PrnetInputError(f"unknown layout {kind!r}; use bfm-uv or tutte")
