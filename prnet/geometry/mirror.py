"""Left-right mirror correspondence of the UV layout, for exact horizontal-flip augmentation.

Flipping a crop mirrors the face, so the flipped image's position map is NOT the old map flipped on its UV
grid: UV pixel p must hold the mirrored position of the face point that is p's mirror partner m(p). The
Tutte layout is only nearly symmetric, so `mirror_map` finds m(p) densely on the template: the point of the
template surface closest to p's template point reflected in the symmetry plane.

Measured on the packaged template (`python -m scripts.measure.mirror_quality`, over the layout's face pixels;
symmetry plane x = -0.193; built in ~1 s at 256 px):
                                            median / p90 / max
    involution |m(m(p)) - p|, px       256 px:  0.006 / 0.025 / 6.6
                                       128 px:  0.003 / 0.012 / 2.7
    3D label error |R T(m(p)) - T(p)|, mm (T: template map, R: reflection in the plane)
        mirror map,                    256 px:  0.24 / 0.52 / 2.2
        plain u-flip (u -> S-1-u),     256 px:  1.25 / 2.98 / 16.4
        mirror map,                    128 px:  0.24 / 0.52 / 6.7 (max: a nostril fold, the 128 px map's own
                                                                  bilinear error; 2.3 read from a 1024 px map)
        plain u-flip,                  128 px:  1.25 / 2.97 / 15.3
The label error left over is the template's own asymmetry (it is not exactly mirror-symmetric). The few
involution outliers (0.26 % of face pixels over 0.5 px at 256 px) sit in or next to the fan that closes the
mouth (118 of 125): its triangles are nearly degenerate in 3D, so closest points there are ambiguous.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from prnet.geometry.layout import DEFAULT_SIZE, LAYOUT_NAME, default_layout, uv_pixels
from prnet.geometry.mesh import FaceMesh, load_face_mesh
from prnet.geometry.posmap import bilinear_sample, uv_sampler
from prnet.geometry.resample import resize_layout, resize_uv_map
from prnet.io import PrnetInputError
from prnet.layout import UVLayout

FINE_FACTOR = 2  # the template is searched on a map this many times finer than the mirror map
# Weight of the UV-distance prior in the closest-point search, in mm per UV unit (0.3 mm per pixel at 256 px):
# where two surface sheets touch in 3D (the closed lips, the mouth fan) the prior picks the sheet on the
# expected side; elsewhere it is far below the 3D distances and the Gauss-Newton step removes its pull.
PRIOR_MM_PER_UV = 75.0


def symmetry_plane(mesh: FaceMesh, iterations: int = 10) -> float:
    """x = c of the template's mirror plane: the median x-offset of the reflected face-region vertices to their
    nearest template vertices is zero.

    Not the least-squares fit over the 68 landmarks and their partners: the template's landmarks are asymmetric
    by up to ~9 mm (jaw 4/5/11/12, brows), which puts that plane 0.5 mm to the side and doubles the mirror map's
    label error (median 0.51 mm instead of 0.24 at 256 px). This dense fit (a one-parameter ICP whose median
    ignores the asymmetric parts) starts from the landmark plane and converges in a few steps.
    """
    from scipy.spatial import cKDTree

    face = mesh.vertices[mesh.face_vertex_mask].astype(np.float64)
    c = float(mesh.vertices[mesh.landmark_ids, 0].mean())  # the landmark least-squares plane: mean of the pairs
    tree = cKDTree(face)
    for _ in range(iterations):
        reflected = face * [-1.0, 1.0, 1.0] + [2.0 * c, 0.0, 0.0]
        _, nearest = tree.query(reflected)
        step = float(np.median(face[nearest, 0] - reflected[:, 0])) / 2.0  # moving the plane by d moves them by 2d
        c += step
        if abs(step) < 1e-4:
            break
    return c


def layout_axis(mesh: FaceMesh, size: int) -> float:
    """The layout's own mirror column: least squares over the landmark pairs (u_k + u_mirror(k) = 2 a)."""
    return float(uv_pixels(mesh.uv[mesh.landmark_ids], size)[:, 0].mean())


def template_map(mesh: FaceMesh, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(template position per UV pixel (S, S, 3) float64, covered-pixel mask (S, S))."""
    sampler = uv_sampler(mesh, size)
    covered = np.zeros((size, size), bool)
    covered[sampler.rows, sampler.cols] = True
    return sampler.render(mesh.vertices).astype(np.float64), covered


def reflect(points: np.ndarray, plane: float) -> np.ndarray:
    out = np.array(points, dtype=np.float64)
    out[..., 0] = 2.0 * plane - out[..., 0]
    return out


@functools.lru_cache(maxsize=4)
def mirror_map(mesh: FaceMesh, size: int) -> np.ndarray:
    """(S, S, 2) float32, read-only: for every UV pixel the continuous UV pixel (u, v) of its mirror partner.

    Covered pixels: closest point of the template surface to the reflected template point, searched on a
    FINE_FACTOR x finer map (cKDTree in 3D plus a weak UV prior), then one Gauss-Newton step on the fine map's
    tangent plane for sub-sample accuracy. Uncovered pixels: u reflected about the layout's mirror column.
    """
    from scipy.spatial import cKDTree

    plane, axis = symmetry_plane(mesh), layout_axis(mesh, size)
    fine_size = FINE_FACTOR * size
    to_fine = (fine_size - 1) / (size - 1)
    prior = PRIOR_MM_PER_UV / (size - 1)  # mm per coarse pixel
    coarse, covered = template_map(mesh, size)
    fine, fine_covered = template_map(mesh, fine_size)

    rows, cols = np.nonzero(covered)
    fine_rows, fine_cols = np.nonzero(fine_covered)
    fine_uv = np.stack([fine_cols, fine_rows], axis=1) / to_fine  # in coarse pixels
    tree = cKDTree(np.hstack([fine[fine_rows, fine_cols], prior * fine_uv]))
    target = reflect(coarse[rows, cols], plane)
    guess = np.stack([2.0 * axis - cols, rows], axis=1)
    _, nearest = tree.query(np.hstack([target, prior * guess]))
    step = tangent_step(fine, fine_rows[nearest], fine_cols[nearest], target)

    grid_rows, grid_cols = np.mgrid[0:size, 0:size]
    out = np.stack([np.clip(2.0 * axis - grid_cols, 0, size - 1), grid_rows], axis=-1).astype(np.float32)
    partner = (np.stack([fine_cols[nearest], fine_rows[nearest]], axis=1) + step) / to_fine
    out[rows, cols] = np.clip(partner, 0, size - 1)  # the tangent step may overshoot the map's border
    out.setflags(write=False)
    return out


def tangent_step(fine: np.ndarray, rows: np.ndarray, cols: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(P, 2) (du, dv) in fine pixels from the sample at (rows, cols) to the foot of `target` on the tangent
    plane (least squares with central-difference derivatives), clipped to one pixel: a fold or the map's
    border cannot throw it further than the sampling error it corrects."""
    size = fine.shape[0]
    r, c = np.clip(rows, 1, size - 2), np.clip(cols, 1, size - 2)
    jacobian = np.stack([fine[r, c + 1] - fine[r, c - 1], fine[r + 1, c] - fine[r - 1, c]], axis=-1) / 2.0
    residual = target - fine[rows, cols]
    normal = np.einsum("pki,pkj->pij", jacobian, jacobian) + 1e-6 * np.eye(2)  # damped: degenerate triangles
    step = np.linalg.solve(normal, np.einsum("pki,pk->pi", jacobian, residual)[..., None])[..., 0]
    return np.clip(step, -1.0, 1.0)


def flip_points(points: np.ndarray, width: int) -> np.ndarray:
    """Image-space points (..., 2 or 3) of a crop `width` pixels wide -> the same points in the crop flipped
    left-right (pixel centres at integers, so x -> width - 1 - x; y and z unchanged)."""
    out = np.array(points, copy=True)
    out[..., 0] = (width - 1) - out[..., 0]
    return out


def flip_posmap(posmap: np.ndarray, mirror: np.ndarray, width: int) -> np.ndarray:
    """The position map (S, S, 3) of the left-right flipped crop (`width` px wide): pixel p holds the mirrored
    position of the face point at its partner mirror[p] (bilinear)."""
    size = posmap.shape[0]
    sampled = bilinear_sample(posmap, mirror.reshape(-1, 2)).reshape(size, size, 3)
    return flip_points(sampled, width).astype(np.float32)


@dataclass(frozen=True, eq=False)
class LayoutMirror:
    """What an exact flip needs, at the stored maps' size (built by `layout_mirror`)."""

    mirror: np.ndarray  # (S, S, 2) UV pixel of each pixel's mirror partner (mirror_map)
    landmark_uv: np.ndarray  # (68, 2) the layout's landmark UVs, where the flipped map's landmarks are read


def layout_mirror(layout: UVLayout, use: str = "augment.flip_prob > 0: horizontal flips",
                  fix: str = "train it with augment.flip_prob=0") -> LayoutMirror:
    """The mirror correspondence of the data's (or a model's) layout. PrnetInputError unless it is the
    project's own layout: the mirror map comes from the packaged face mesh, so another mesh's layout (e.g.
    300W-LP's BFM UVs) would be flipped wrong. `use` and `fix` name the caller in that error."""
    if layout.name == LAYOUT_NAME and layout.layout_id == default_layout(layout.size).layout_id:
        return LayoutMirror(mirror_map(load_face_mesh(), layout.size), layout.landmark_uv)
    if layout.name == f"{LAYOUT_NAME}@{layout.size}" and \
            layout.layout_id == resize_layout(default_layout(DEFAULT_SIZE), layout.size).layout_id:
        # a model trained on resized maps (e.g. 128 px): the full-size mirror map resampled as the maps were
        # (resize_uv_map, pixel centres), its values (UV pixels) rescaled with the same convention
        scale = layout.size / DEFAULT_SIZE
        sampled = resize_uv_map(mirror_map(load_face_mesh(), DEFAULT_SIZE).astype(np.float32), layout.size)
        return LayoutMirror(np.clip((sampled + 0.5) * scale - 0.5, 0, layout.size - 1).astype(np.float32),
                            layout.landmark_uv)
    raise PrnetInputError(f"{use} need the project's UV layout '{LAYOUT_NAME}' (they use its mirror map), but "
                          f"this layout is '{layout.layout_id}'; {fix}")
