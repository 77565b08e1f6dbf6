"""UV layouts of the Basel Face Model: "bfm-uv" (BFM_UV.mat, what PRNet/face3d use) and "bfm-tutte".

The BFM is wrapped as a `prnet.geometry.mesh.FaceMesh` (mean shape, tri + tri_mouth, kpt_ind, per-vertex
regions, UV) and handed to the geometry code, so both layouts follow exactly the rules of the project's own
layout (`prnet.geometry.layout.build_layout`) and position maps are rendered by the same rasterizer
(`prnet.geometry.posmap.UVSampler`: the triangles rasterized once in UV space, then a gather per map; this is
face3d's `render_colors(uv_coords, full_triangles, position)` with pixel centres at integers):
- landmark_uv: the UV pixel positions of the 68 kpt_ind vertices (continuous; read bilinearly);
- face_mask: every covered pixel (3DDFA's BFM is already cropped to the face);
- weight_mask (PRNet's loss weights): 16 on the 2x2 pixels around each landmark, 4 on triangles whose three
  corners are in the eyes-nose-mouth region, 3 on the rest of the face, 0 elsewhere. The eyes-nose-mouth
  region is defined on the mean shape: vertices closer than REGION_RADIUS x the outer eye-corner distance
  (landmarks 36 and 45; about 11 mm on an adult) in 3D to any landmark of the eyes (36-47), the nose
  (27-35) or the mouth (48-67);
- face_triangles: two triangles per 2x2 block of face pixels (PRNet's triangles.txt is such a grid mesh).
UV pixels: "bfm-uv" maps BFM_UV's (u, v), v up, to (column u*(S-1), row (S-1)*(1-v)) like face3d's
process_uv; "bfm-tutte" flattens the mesh with the Tutte recipe of `prnet.geometry.tutte` (v down).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from prnet.data.bfm import BFMModel
from prnet.io import PrnetInputError
from prnet.layout import UVLayout

if TYPE_CHECKING:
    from prnet.geometry.mesh import FaceMesh
    from prnet.geometry.posmap import UVSampler

REGION_RADIUS = 0.12  # x outer eye-corner distance
EYES_NOSE_MOUTH_LANDMARKS = np.r_[27:36, 36:48, 48:68]
OUTER_EYE_CORNERS = (36, 45)
LAYOUT_CHOICES = ("bfm-uv", "tutte")


def eyes_nose_mouth_distance(model: BFMModel) -> np.ndarray:
    """(n,) distance of each mean-shape vertex to the nearest eye/nose/mouth landmark, in units of the outer
    eye-corner distance."""
    vertices = model.mean_vertices.astype(np.float64)
    landmarks = vertices[model.landmark_ids]
    scale = np.linalg.norm(landmarks[OUTER_EYE_CORNERS[0]] - landmarks[OUTER_EYE_CORNERS[1]])
    if not scale > 0:
        raise PrnetInputError(f"{model.source}: landmarks 36 and 45 (outer eye corners) coincide; bad kpt_ind")
    best = np.full(len(vertices), np.inf)
    for target in landmarks[EYES_NOSE_MOUTH_LANDMARKS]:
        best = np.minimum(best, np.linalg.norm(vertices - target, axis=1))
    return best / scale


def bfm_regions(model: BFMModel) -> np.ndarray:
    """(n,) uint8 REGION_* labels of prnet.geometry.mesh for the BFM (all of it is face)."""
    from prnet.geometry.mesh import REGION_EYES_NOSE_MOUTH, REGION_FACE, REGION_LANDMARK

    regions = np.full(model.n_vertices, REGION_FACE, dtype=np.uint8)
    regions[eyes_nose_mouth_distance(model) < REGION_RADIUS] = REGION_EYES_NOSE_MOUTH
    regions[model.landmark_ids] = REGION_LANDMARK
    return regions


def bfm_face_mesh(model: BFMModel, uv_down: np.ndarray, layout_triangles: np.ndarray | None = None) -> FaceMesh:
    """The BFM as a FaceMesh with UV (n, 2) in [0, 1], u right, v DOWN (NaN where not mapped)."""
    from prnet.geometry.mesh import FaceMesh

    n = model.n_vertices
    return FaceMesh(
        vertices=model.mean_vertices.astype(np.float32),  # BFM units (micrometres in the real file)
        triangles=model.triangles,
        landmark_ids=model.landmark_ids,
        regions=bfm_regions(model),
        uv=np.asarray(uv_down, dtype=np.float64),  # float64: float32 would move vertices on pixel centres
        layout_triangles=np.ones(len(model.triangles), bool) if layout_triangles is None else layout_triangles,
        colors=np.full((n, 3), 0.7, dtype=np.float32),  # the BFM's texture is not needed for position maps
        mouth_fill_vertex=-1,  # tri_mouth closes the mouth; no added vertex
    )


def layout_from_mesh(mesh: FaceMesh, name: str, size: int) -> tuple[UVLayout, UVSampler]:
    """(UVLayout, UVSampler) of a FaceMesh via the geometry code."""
    from prnet.geometry.layout import build_layout
    from prnet.geometry.posmap import uv_sampler

    layout = build_layout(mesh, size, name=name)
    if not layout.face_mask.any():
        raise PrnetInputError(f"layout '{name}': the BFM triangles cover no pixel of the {size}x{size} UV map")
    return layout, uv_sampler(mesh, size)


def bfm_uv_layout(model: BFMModel, uv: np.ndarray, size: int = 256) -> tuple[UVLayout, UVSampler]:
    """The "bfm-uv" layout from BFM_UV.mat's UV (n, 2) in [0, 1], v up (face3d's process_uv mapping)."""
    uv = np.asarray(uv, dtype=np.float64)
    if uv.shape != (model.n_vertices, 2):
        raise PrnetInputError(f"BFM_UV has {len(uv)} coordinates but the BFM has {model.n_vertices} vertices")
    uv_down = np.stack([uv[:, 0], 1.0 - uv[:, 1]], axis=1)
    return layout_from_mesh(bfm_face_mesh(model, uv_down), "bfm-uv", size)


def bfm_tutte_layout(model: BFMModel, size: int = 256) -> tuple[UVLayout, UVSampler]:
    """The "bfm-tutte" layout: the project's Tutte recipe (prnet.geometry.tutte: boundary on the unit square
    split at the symmetry plane, mean-value weights) applied to the whole BFM mesh, which is already cut to
    the face, so there is no face-region cut; triangles with all corners on one side of the square (zero
    area) are dropped as the recipe does. Needs tri + tri_mouth to form a topological disk."""
    from prnet.geometry.mesh import check_disk
    from prnet.geometry.tutte import square_boundary, tutte_embedding

    vertices = model.mean_vertices.astype(np.float64)
    triangles = model.triangles.astype(np.int64)
    center_x = float(vertices[model.landmark_ids, 0].mean())
    keep = np.ones(len(triangles), bool)
    try:
        for _ in range(20):
            loop = check_disk(triangles[keep], what=f"{model.source}: the BFM mesh (tri + tri_mouth)")
            boundary_uv = square_boundary(vertices, loop, center_x)
            flat = np.zeros(len(triangles), bool)
            for axis, value in ((0, 0.0), (0, 1.0), (1, 0.0), (1, 1.0)):
                on_side = np.zeros(len(vertices), bool)
                on_side[loop[np.abs(boundary_uv[:, axis] - value) < 1e-12]] = True
                flat |= on_side[triangles].all(axis=1)
            if not (flat & keep).any():
                break
            keep &= ~flat
    except PrnetInputError as err:
        raise PrnetInputError(f"cannot flatten the BFM for --layout tutte: {err}; use --layout bfm-uv") from err
    uv = tutte_embedding(vertices, triangles[keep], loop, boundary_uv)
    if not np.isfinite(uv[model.landmark_ids]).all():
        raise PrnetInputError(f"{model.source}: landmark vertices fall outside the Tutte map; use --layout bfm-uv")
    return layout_from_mesh(bfm_face_mesh(model, uv, keep), "bfm-tutte", size)


def make_layout(
    kind: str, model: BFMModel, bfm_uv_path: str | None, size: int = 256
) -> tuple[UVLayout, UVSampler]:
    """(UVLayout, UVSampler) by CLI name: "bfm-uv" (needs BFM_UV.mat) or "tutte"."""
    from prnet.data.bfm import load_bfm_uv

    if kind == "bfm-uv":
        if bfm_uv_path is None:
            raise PrnetInputError("--layout bfm-uv needs --bfm-uv BFM_UV.mat (or use --layout tutte)")
        return bfm_uv_layout(model, load_bfm_uv(bfm_uv_path, model.n_vertices), size)
    if kind in ("tutte", "bfm-tutte"):
        return bfm_tutte_layout(model, size)
    raise PrnetInputError(f"unknown layout {kind!r}; use one of {', '.join(LAYOUT_CHOICES)}")

