"""The Basel Face Model as face3d/3DDFA store it, and 3DDFA's pose convention (used by 300W-LP and AFLW2000-3D).

BFM.mat (written by face3d's `examples/Data/BFM/generate.m`) holds one MATLAB struct `model` with
    shapeMU (3n, 1)  mean identity, x, y, z interleaved per vertex: [x0, y0, z0, x1, y1, z1, ...]
    shapePC (3n, 199) identity basis        expMU (3n, 1) mean expression (added to shapeMU)
    expPC   (3n, 29)  expression basis
    tri (3, T) and tri_mouth (3, T') 1-based vertex indices (tri_mouth closes the mouth)
    kpt_ind (68,) 1-based vertex indices of the 68 iBUG landmarks
(53,215 vertices in the real file; any size is read.) A file whose fields are top-level variables
instead of a struct is read too. BFM_UV.mat holds `UV` (n, 2) in [0, 1] (from 3DMMasSTN).

Pose (3DDFA's Pose_Para, 1 x 7): pitch, yaw, roll (radians), tx, ty, tz, scale. The model frame is x right,
y up, z towards the viewer; the image frame is reached by
    v' = scale * R @ v + t,   R = Rx(pitch) @ Ry(yaw) @ Rz(roll) with 3DDFA's signs (each factor is the
    TRANSPOSE of the usual right-handed rotation, so R = (Rz Ry Rx)^T of face3d's angle2matrix),
    then y' = h - y - 1 (image rows grow downwards), orthographic projection (x, y kept, z = depth, larger =
    closer to the camera).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prnet.data.matfile import load_mat, require
from prnet.io import PrnetInputError

N_LANDMARKS = 68


@dataclass(frozen=True, eq=False)
class BFMModel:
    mean: np.ndarray  # (3n,) float32, shapeMU + expMU, interleaved xyz
    shape_basis: np.ndarray  # (3n, n_shape) float32
    exp_basis: np.ndarray  # (3n, n_exp) float32
    triangles: np.ndarray  # (T, 3) int32, 0-based: tri then tri_mouth (face3d's full_triangles)
    n_face_triangles: int  # the first n_face_triangles rows are `tri` (without the mouth)
    landmark_ids: np.ndarray  # (68,) int32, 0-based
    source: str = ""

    @property
    def n_vertices(self) -> int:
        return self.mean.shape[0] // 3

    @property
    def mean_vertices(self) -> np.ndarray:
        """(n, 3) float32 mean shape (identity + expression means)."""
        return self.mean.reshape(-1, 3)

    def vertices(self, shape_para: np.ndarray | None = None, exp_para: np.ndarray | None = None) -> np.ndarray:
        """(n, 3) float32 vertices for the given coefficients (missing or shorter vectors: zeros)."""
        shape = None if shape_para is None else np.asarray(shape_para).reshape(1, -1)
        exp = None if exp_para is None else np.asarray(exp_para).reshape(1, -1)
        return self.vertices_batch(shape, exp)[0]

    def vertices_batch(self, shape_para: np.ndarray | None, exp_para: np.ndarray | None) -> np.ndarray:
        """(B, n, 3) float32 vertices for (B, k) / (B, m) coefficients. One pass over each basis serves the
        whole batch: the bases (~145 MB for the real BFM) are read once instead of B times."""
        batch = len(shape_para) if shape_para is not None else len(exp_para) if exp_para is not None else 1
        flat = np.repeat(self.mean[:, None], batch, axis=1)  # (3n, B)
        for basis, para, name in ((self.shape_basis, shape_para, "Shape_Para"), (self.exp_basis, exp_para, "Exp_Para")):
            if para is None:
                continue
            para = np.asarray(para, dtype=np.float32).reshape(batch, -1)
            if para.shape[1] > basis.shape[1]:
                raise PrnetInputError(
                    f"{name} has {para.shape[1]} coefficients but the BFM {self.source} has only {basis.shape[1]}"
                )
            flat += basis[:, : para.shape[1]] @ para.T
        return np.ascontiguousarray(flat.T).reshape(batch, -1, 3)


def load_bfm(path: str | Path) -> BFMModel:
    """Read BFM.mat (face3d format, see module docstring); a PrnetInputError names any missing/bad field."""
    path = Path(path)
    variables = load_mat(path)
    model = variables.get("model", variables)
    if not isinstance(model, dict):
        raise PrnetInputError(f"{path}: 'model' is not a MATLAB struct; expected face3d's BFM.mat")

    def field(name: str) -> np.ndarray:
        return require(model, name, path, what="BFM field")

    shape_mu = field("shapeMU").astype(np.float32)
    if shape_mu.ndim != 2 or 1 not in shape_mu.shape or shape_mu.size % 3:
        raise PrnetInputError(f"{path}: shapeMU must be a 3n x 1 vector, got shape {shape_mu.shape}")
    mean = shape_mu.reshape(-1)
    n3 = mean.size
    exp_mu = model.get("expMU")
    if exp_mu is not None:
        exp_mu = np.asarray(exp_mu, dtype=np.float32)
        if exp_mu.size != n3:
            raise PrnetInputError(f"{path}: expMU has {exp_mu.size} values but shapeMU has {n3}")
        mean = mean + exp_mu.reshape(-1)
    shape_basis = _basis(field("shapePC"), n3, "shapePC", path)
    exp_basis = _basis(field("expPC"), n3, "expPC", path)
    n_vertices = n3 // 3
    tri = _triangles(field("tri"), n_vertices, "tri", path)
    mouth = _triangles(model["tri_mouth"], n_vertices, "tri_mouth", path) if "tri_mouth" in model else tri[:0]
    kpt = field("kpt_ind").reshape(-1)
    if kpt.size != N_LANDMARKS:
        raise PrnetInputError(f"{path}: kpt_ind must hold {N_LANDMARKS} landmark indices, got {kpt.size}")
    landmark_ids = _one_based(kpt, n_vertices, "kpt_ind", path)
    return BFMModel(
        mean=np.ascontiguousarray(mean, dtype=np.float32),
        shape_basis=shape_basis,
        exp_basis=exp_basis,
        triangles=np.ascontiguousarray(np.vstack([tri, mouth]), dtype=np.int32),
        n_face_triangles=len(tri),
        landmark_ids=landmark_ids,
        source=str(path),
    )


def load_bfm_uv(path: str | Path, n_vertices: int | None = None) -> np.ndarray:
    """(n, 2) float64 UV coordinates in [0, 1] from BFM_UV.mat (variable `UV`)."""
    path = Path(path)
    uv = require(load_mat(path), "UV", path).astype(np.float64)
    if uv.ndim != 2 or 2 not in uv.shape:
        raise PrnetInputError(f"{path}: UV must be n x 2, got shape {uv.shape}")
    if uv.shape[1] != 2:
        uv = uv.T
    if n_vertices is not None and uv.shape[0] != n_vertices:
        raise PrnetInputError(f"{path}: UV has {uv.shape[0]} rows but the BFM has {n_vertices} vertices")
    if not np.isfinite(uv).all() or uv.min() < -1e-6 or uv.max() > 1 + 1e-6:
        raise PrnetInputError(f"{path}: UV coordinates must be finite and in [0, 1]")
    return np.clip(uv, 0.0, 1.0)


def uv_to_pixels(uv: np.ndarray, size: int) -> np.ndarray:
    """face3d's process_uv: u -> column u*(S-1), v -> row (S-1)*(1-v) (v grows upwards in the texture)."""
    uv = np.asarray(uv, dtype=np.float64)
    return np.stack([uv[:, 0] * (size - 1), (size - 1) - uv[:, 1] * (size - 1)], axis=1)


# ---------------------------------------------------------------- pose (3DDFA convention)


def rotation_3ddfa(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """3x3 R = Rx(pitch) Ry(yaw) Rz(roll) with 3DDFA's signs (radians), as face3d's angle2matrix_3ddfa."""
    cx, sx, cy, sy, cz, sz = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw), np.cos(roll), np.sin(roll)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cx, sx], [0.0, -sx, cx]])
    ry = np.array([[cy, 0.0, -sy], [0.0, 1.0, 0.0], [sy, 0.0, cy]])
    rz = np.array([[cz, sz, 0.0], [-sz, cz, 0.0], [0.0, 0.0, 1.0]])
    return rx @ ry @ rz


def parse_pose(pose_para: np.ndarray, source: str | Path = "pose") -> np.ndarray:
    """(7,) float64 [pitch, yaw, roll, tx, ty, tz, scale] from a 1x7 / 7x1 Pose_Para."""
    pose = np.asarray(pose_para, dtype=np.float64).reshape(-1)
    if pose.size != 7 or not np.isfinite(pose).all():
        raise PrnetInputError(
            f"{source}: Pose_Para must hold 7 finite values (pitch yaw roll tx ty tz scale), got shape {np.shape(pose_para)}"
        )
    return pose


def pose_to_image(vertices: np.ndarray, pose: np.ndarray, image_height: int) -> np.ndarray:
    """(n, 3) model vertices -> image frame (x right, y down, z depth larger = closer), float64."""
    pitch, yaw, roll, tx, ty, tz, scale = parse_pose(pose)
    rotation = rotation_3ddfa(pitch, yaw, roll)
    out = scale * (np.asarray(vertices, dtype=np.float64) @ rotation.T) + np.array([tx, ty, tz])
    out[:, 1] = image_height - out[:, 1] - 1
    return out


# ---------------------------------------------------------------- validation helpers


def _basis(value: np.ndarray, n3: int, name: str, path: Path) -> np.ndarray:
    if value.ndim != 2 or value.shape[0] != n3:
        raise PrnetInputError(f"{path}: {name} must be {n3} x k (3 x vertices rows), got shape {value.shape}")
    return np.ascontiguousarray(value, dtype=np.float32)


def _triangles(value: np.ndarray, n_vertices: int, name: str, path: Path) -> np.ndarray:
    value = np.asarray(value)
    if value.ndim != 2 or 3 not in value.shape:
        raise PrnetInputError(f"{path}: {name} must be 3 x T (1-based vertex indices), got shape {value.shape}")
    triangles = value.T if value.shape[0] == 3 else value  # MATLAB stores 3 x T; T x 3 is accepted too
    return _one_based(triangles, n_vertices, name, path).reshape(-1, 3)


def _one_based(indices: np.ndarray, n_vertices: int, name: str, path: Path) -> np.ndarray:
    indices = np.asarray(indices)
    if indices.size and (not np.all(np.isfinite(indices)) or np.any(indices != np.round(indices))):
        raise PrnetInputError(f"{path}: {name} must hold integer vertex indices")
    indices = indices.astype(np.int64)
    if indices.size and (indices.min() < 1 or indices.max() > n_vertices):
        raise PrnetInputError(
            f"{path}: {name} indices must be 1-based in [1, {n_vertices}] (MATLAB), "
            f"got range [{indices.min()}, {indices.max()}]"
        )
    return np.ascontiguousarray(indices - 1, dtype=np.int32)
