"""Head pose (yaw, pitch, roll) from 3D landmarks: a similarity fitted to the mean face's landmarks (Umeyama).

Frames: predicted points are in the image frame (x right, y down, z larger = closer, pixels); the reference
(the mean shape's 68 landmarks, `prnet.geometry.mesh.load_face_mesh()`) is x right, y up, z to the viewer. The
image points are turned into that right-handed y-up frame by negating y before fitting
    points ~= scale * R @ reference + t.
R = Rz(roll) @ Ry(yaw) @ Rx(pitch), angles in degrees:
    yaw   > 0: the nose points to the image's right       (rotation about the vertical axis)
    pitch > 0: the nose points up                           (rotation about the horizontal axis)
    roll  > 0: the face is tilted counter-clockwise on screen (rotation about the viewing axis)
"""

from __future__ import annotations

import numpy as np


def fit_similarity(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares scale, rotation R (3, 3) and translation t with target ~= scale * R @ source + t (Umeyama)."""
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    mu_s, mu_t = source.mean(0), target.mean(0)
    xs, xt = source - mu_s, target - mu_t
    u, singular, vt = np.linalg.svd(xt.T @ xs / len(source))
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # reflection -> flip the weakest axis
        d[-1] = -1.0
    rotation = u @ np.diag(d) @ vt
    variance = (xs**2).sum() / len(source)
    scale = float((singular * d).sum() / variance) if variance > 0 else 1.0
    return scale, rotation, mu_t - scale * rotation @ mu_s


def rotation_from_angles(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = Rz(roll) @ Ry(yaw) @ Rx(-pitch) in the y-up frame (pitch > 0 = nose up), angles in degrees."""
    y, p, r = np.radians([yaw, -pitch, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def angles_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of R = Rz(roll) @ Ry(yaw) @ Rx(-pitch); inverse of rotation_from_angles."""
    r = np.asarray(rotation, dtype=np.float64)
    yaw = np.arcsin(np.clip(-r[2, 0], -1.0, 1.0))
    if abs(r[2, 0]) < 1.0 - 1e-9:
        pitch = np.arctan2(r[2, 1], r[2, 2])
        roll = np.arctan2(r[1, 0], r[0, 0])
    else:  # gimbal lock at yaw = +-90: put everything in roll
        pitch, roll = 0.0, np.arctan2(-r[0, 1], r[1, 1])
    return float(np.degrees(yaw)), float(-np.degrees(pitch)), float(np.degrees(roll))


def head_pose(landmarks_image: np.ndarray, reference_landmarks: np.ndarray) -> dict:
    """Pose of one face from its (68, 3) image-frame landmarks and the mean shape's (68, 3) landmarks.

    Returns {"yaw", "pitch", "roll"} in degrees, "rotation" (3x3 list, y-up frame) and "scale" (pixels per mm).
    """
    points = np.asarray(landmarks_image, dtype=np.float64).copy()
    points[:, 1] = -points[:, 1]  # image y down -> y up (z already points to the viewer)
    scale, rotation, _ = fit_similarity(reference_landmarks, points)
    yaw, pitch, roll = angles_from_rotation(rotation)
    return {"yaw": yaw, "pitch": pitch, "roll": roll, "rotation": rotation.tolist(), "scale": scale}


def head_pose_2d(landmarks_2d: np.ndarray, reference_landmarks: np.ndarray) -> dict:
    """Pose of one face from 2D image landmarks only (e.g. a .pts annotation): an orthographic camera fitted to
    the mean shape's 68 3D landmarks (least-squares affine, its two rows made orthonormal, third row their cross
    product). Same frames and angle conventions as head_pose; returns {"yaw", "pitch", "roll", "rotation", "scale"}."""
    points = np.asarray(landmarks_2d, dtype=np.float64)[:, :2].copy()
    points[:, 1] = -points[:, 1]  # image y down -> y up
    reference = np.asarray(reference_landmarks, dtype=np.float64)
    xs, xt = reference - reference.mean(0), points - points.mean(0)
    affine = np.linalg.lstsq(xs, xt, rcond=None)[0].T  # (2, 3): xt ~= xs @ affine.T
    u, singular, vt = np.linalg.svd(affine, full_matrices=False)
    rows = u @ vt  # the nearest matrix with orthonormal rows
    rotation = np.vstack([rows, np.cross(rows[0], rows[1])])
    yaw, pitch, roll = angles_from_rotation(rotation)
    return {"yaw": yaw, "pitch": pitch, "roll": roll, "rotation": rotation.tolist(), "scale": float(singular.mean())}
