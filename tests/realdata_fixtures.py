"""Tiny BFM / BFM_UV / 300W-LP / AFLW2000-3D files with known geometry, written with scipy.io.savemat.

The synthetic BFM is a planar grid (GX x GY vertices) whose mean shape, identity and expression bases are all
affine in the grid coordinates, and whose UV puts vertex (i, j) exactly on pixel (COL0 + 2i, ROW0 + 2j) of an
S x S map. After any pose and crop (affine maps) every position-map pixel is therefore a closed-form affine
function of its (column, row): `expected_posmap` computes it without any rasterizer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

GX, GY = 12, 10
S = 32  # UV map / crop size in tests
COL0, ROW0 = 4, 6  # UV pixel of vertex (0, 0)
SPACING = 1000.0  # BFM units between grid vertices (the real BFM is in micrometres)
N = GX * GY


def grid_ij() -> tuple[np.ndarray, np.ndarray]:
    j, i = np.meshgrid(np.arange(GY), np.arange(GX), indexing="ij")
    return i.reshape(-1).astype(np.float64), j.reshape(-1).astype(np.float64)  # vertex k = j * GX + i


def mean_vertices() -> np.ndarray:
    """(N, 3): x right, y up (row j grows downwards in UV, so y decreases with j), z a tilted plane."""
    i, j = grid_ij()
    x = (i - (GX - 1) / 2) * SPACING
    y = ((GY - 1) / 2 - j) * SPACING
    z = 0.3 * x - 0.2 * y + 50_000.0
    return np.stack([x, y, z], axis=1)


def landmark_ids() -> np.ndarray:
    """68 distinct 0-based ids of interior grid vertices (a fixed permutation; a real face's landmarks are
    not on the mesh border either)."""
    i, j = grid_ij()
    interior = np.flatnonzero((i > 0) & (i < GX - 1) & (j > 0) & (j < GY - 1))
    return np.random.default_rng(7).permutation(interior)[:68].astype(np.int32)


def grid_triangles() -> np.ndarray:
    """(T, 3) 0-based, counter-clockwise in the model's x-right / y-up frame."""
    tris = []
    for j in range(GY - 1):
        for i in range(GX - 1):
            a, b, c, d = j * GX + i, j * GX + i + 1, (j + 1) * GX + i, (j + 1) * GX + i + 1
            tris += [(a, c, b), (b, c, d)]
    return np.array(tris, dtype=np.int64)


def shape_basis(n_shape: int = 199) -> np.ndarray:
    """(3N, n_shape): column 0 scales x by 1% per unit; the rest are random (tests give them 0 weight or
    check the linear combination)."""
    basis = np.random.default_rng(1).normal(0, 10.0, size=(3 * N, n_shape))
    basis[:, 0] = 0.0
    basis[0::3, 0] = mean_vertices()[:, 0] * 0.01
    return basis


def exp_basis(n_exp: int = 29) -> np.ndarray:
    """(3N, n_exp): column 0 moves every vertex +100 in z per unit; the rest random."""
    basis = np.random.default_rng(2).normal(0, 10.0, size=(3 * N, n_exp))
    basis[:, 0] = 0.0
    basis[2::3, 0] = 100.0
    return basis


def uv_pixels() -> np.ndarray:
    i, j = grid_ij()
    return np.stack([COL0 + 2 * i, ROW0 + 2 * j], axis=1)


def uv_coords() -> np.ndarray:
    """BFM_UV's UV in [0, 1] (v up) such that face3d's process_uv gives exactly uv_pixels()."""
    px = uv_pixels()
    return np.stack([px[:, 0] / (S - 1), 1.0 - px[:, 1] / (S - 1)], axis=1)


def bfm_struct(n_mouth: int = 2) -> dict:
    """The `model` struct as face3d's generate.m writes it: interleaved xyz, 1-based 3 x T triangles."""
    mean = mean_vertices()
    exp_mu = np.zeros(3 * N)
    exp_mu[2::3] = 500.0  # the expression mean is added to the shape mean
    tris = grid_triangles()
    return {
        "shapeMU": (mean.reshape(-1) - exp_mu).reshape(-1, 1),  # + expMU = mean
        "shapePC": shape_basis(),
        "shapeEV": np.ones((199, 1)),
        "expMU": exp_mu.reshape(-1, 1),
        "expPC": exp_basis(),
        "expEV": np.ones((29, 1)),
        "tri": (tris[n_mouth:] + 1).T.astype(np.float64),  # MATLAB doubles, 1-based, 3 x T
        "tri_mouth": (tris[:n_mouth] + 1).T.astype(np.float64),
        "kpt_ind": (landmark_ids() + 1).reshape(1, -1).astype(np.float64),
    }


def write_bfm(path: Path, **overrides) -> Path:
    model = bfm_struct()
    for key, value in overrides.items():
        if value is None:
            model.pop(key)
        else:
            model[key] = value
    scipy.io.savemat(str(path), {"model": model})
    return path


def write_bfm_uv(path: Path, uv: np.ndarray | None = None) -> Path:
    scipy.io.savemat(str(path), {"UV": uv_coords() if uv is None else uv})
    return path


@pytest.fixture(scope="module")
def bfm_files(tmp_path_factory) -> tuple[Path, Path]:
    """(BFM.mat, BFM_UV.mat) of the synthetic BFM, written once per test module that imports this fixture."""
    root = tmp_path_factory.mktemp("bfm")
    return write_bfm(root / "BFM.mat"), write_bfm_uv(root / "BFM_UV.mat")


def write_fit(path: Path, pose, shape_para=None, exp_para=None, **extra) -> Path:
    shape_para = np.zeros(199) if shape_para is None else np.asarray(shape_para, float)
    exp_para = np.zeros(29) if exp_para is None else np.asarray(exp_para, float)
    variables = {
        "Pose_Para": np.asarray(pose, float).reshape(1, 7),
        "Shape_Para": shape_para.reshape(-1, 1),
        "Exp_Para": exp_para.reshape(-1, 1),
        "pt2d": np.zeros((2, 68)),
        **extra,
    }
    scipy.io.savemat(str(path), variables)
    return path


def write_image(path: Path, height: int = 120, width: int = 140, seed: int = 0) -> np.ndarray:
    import cv2

    image = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    cv2.imwrite(str(path), image[..., ::-1])
    return image


def rotation_reference(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """3DDFA's R written differently: the transpose of the usual right-handed Rz(roll) Ry(yaw) Rx(pitch)."""
    def rx(a):
        return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])

    def ry(a):
        return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])

    def rz(a):
        return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])

    return (rz(roll) @ ry(yaw) @ rx(pitch)).T


def expected_image_vertices(pose, height: int, shape_para=None, exp_para=None) -> np.ndarray:
    """Hand-computed image-frame vertices (independent of prnet.data.bfm)."""
    v = mean_vertices().copy()
    if shape_para is not None:
        v[:, 0] *= 1.0 + 0.01 * shape_para[0]
    if exp_para is not None:
        v[:, 2] += 100.0 * exp_para[0]
    pitch, yaw, roll, tx, ty, tz, s = pose
    out = s * v @ rotation_reference(pitch, yaw, roll).T + np.array([tx, ty, tz])
    out[:, 1] = height - out[:, 1] - 1
    return out


def expected_posmap(vertices_crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed form of the position map: the affine map (col, row, 1) -> xyz fitted exactly through the grid
    vertices (which are affine in their UV pixels). Returns (S, S, 3) values everywhere and the (S, S) mask
    of pixels inside the UV rectangle."""
    px = uv_pixels()
    design = np.hstack([px, np.ones((N, 1))])
    affine, residual, *_ = np.linalg.lstsq(design, vertices_crop, rcond=None)
    assert np.allclose(design @ affine, vertices_crop, atol=1e-6), "fixture geometry is not affine in UV"
    rows, cols = np.mgrid[0:S, 0:S]
    grid = np.stack([cols, rows, np.ones_like(cols)], axis=-1).astype(np.float64)
    inside = (cols >= COL0) & (cols <= COL0 + 2 * (GX - 1)) & (rows >= ROW0) & (rows <= ROW0 + 2 * (GY - 1))
    return grid @ affine, inside
