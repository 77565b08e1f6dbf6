"""Pose, head/body proxies and the camera: mesh frame (mm) -> PRNet's 256x256 crop frame (pixels).

Pose follows 300W-LP's ranges: yaw up to +-90 degrees, pitch +-45, roll +-30. The camera is orthographic
(weak perspective, as 300W-LP's fitted model): image x = k * X, image y = -k * Y (y down), depth z = k * Z
(larger = closer). The crop is PRNet's: a square box centred on the bounding box of the 68 projected 3D
landmarks, side = 1.5 x the mean of its width and height (prnet.geometry.crop.box_from_landmarks), resampled to
256 x 256; z is scaled by the same factor and shifted so that the minimum z over the face mesh is 0 (PRNet's
generate_posmap_300WLP). Scale and translation of the face in the source photo therefore only change the
crop's *resolution*: `source_face_px` (the crop side in source pixels) drives the low-resolution degradation.

The mesh asset is the front half of a head; a rendered head also needs the back of the skull (hair or skin),
a neck, shoulders and sometimes long hair: they are ellipsoid proxies rendered into the image only (never into
the position map).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from prnet.geometry.crop import box_from_landmarks, crop_matrix, similarity_scale, transform_points


def sample_pose(rng: np.random.Generator) -> dict[str, float]:
    """Degrees. Yaw: half uniform over +-90 (profiles), half near-frontal N(0, 30); pitch, roll: normal, clipped."""
    yaw = rng.uniform(-90, 90) if rng.random() < 0.5 else np.clip(rng.normal(0, 30), -90, 90)
    return {
        "yaw": float(yaw),
        "pitch": float(np.clip(rng.normal(0, 15), -45, 45)),
        "roll": float(np.clip(rng.normal(0, 10), -30, 30)),
        "source_face_px": float(np.exp(rng.uniform(np.log(70), np.log(500)))),
    }


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = Rz(roll) Rx(pitch) Ry(yaw), degrees; yaw > 0 turns the face to the image right (subject's left),
    pitch > 0 bows the head (forehead towards the camera, chin down and back), roll > 0 tilts the head
    clockwise in the image (the top of the head moves right)."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), np.sin(r), 0], [-np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


@dataclass(frozen=True)
class Camera:
    """Mesh-frame (centred) -> crop-frame map: crop = M o flip_y o rotation; z scaled by M's scale, shifted."""

    rotation: np.ndarray  # (3, 3)
    centre: np.ndarray  # (3,) mesh-frame rotation centre
    matrix: np.ndarray  # (2, 3) crop matrix on (x, -y) in mm
    z_shift: float  # added to crop-frame z so that min z over the face mesh is 0

    def to_camera(self, points_mm: np.ndarray, rotation: np.ndarray | None = None) -> np.ndarray:
        """Mesh frame -> rotated camera frame (mm, y up)."""
        return (points_mm - self.centre) @ (self.rotation if rotation is None else rotation).T

    def to_crop(self, camera_mm: np.ndarray) -> np.ndarray:
        flipped = camera_mm * np.array([1.0, -1.0, 1.0])
        out = transform_points(flipped, self.matrix)
        out[:, 2] += self.z_shift
        return out.astype(np.float32)


def make_camera(mesh_vertices: np.ndarray, landmark_ids: np.ndarray, pose: dict[str, float], centre: np.ndarray,
                size: int) -> Camera:
    rotation = rotation_matrix(pose["yaw"], pose["pitch"], pose["roll"])
    cam = (mesh_vertices - centre) @ rotation.T
    centre_2d, side = box_from_landmarks(cam[landmark_ids, :2] * np.array([1.0, -1.0]))
    matrix = crop_matrix(centre_2d, side, size)
    z_min = float(cam[:, 2].min()) * similarity_scale(matrix)  # crop z = camera z * the crop's scale
    return Camera(rotation=rotation, centre=np.asarray(centre, dtype=np.float64), matrix=matrix, z_shift=-z_min)


def place_camera(camera: Camera, scale: float, offset: tuple[float, float]) -> Camera:
    """The same camera with its crop scaled by `scale` and moved by `offset` pixels: renders the face inside a
    larger frame (a video: the face moves and changes size) instead of filling PRNet's crop. Depth scales too,
    so min z over the face stays 0."""
    matrix = camera.matrix * float(scale)
    matrix[:, 2] += np.asarray(offset, dtype=np.float64)
    return Camera(rotation=camera.rotation, centre=camera.centre, matrix=matrix, z_shift=camera.z_shift * float(scale))


@functools.lru_cache(maxsize=4)
def unit_sphere(rings: int = 28, segments: int = 56) -> tuple[np.ndarray, np.ndarray]:
    """Lat-long unit sphere: vertices (V, 3), triangles (T, 3) counter-clockwise seen from outside."""
    theta = np.linspace(0, np.pi, rings + 1)  # from +y (top) to -y
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    verts = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], -1).reshape(-1, 3)
    ids = np.arange((rings + 1) * segments).reshape(rings + 1, segments)
    nxt = np.roll(ids, -1, axis=1)
    a, b, c, d = ids[:-1], nxt[:-1], ids[1:], nxt[1:]
    tris = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)])
    return verts, tris.astype(np.int32)


@dataclass
class Proxy:
    """An ellipsoid part: mesh-frame centre and radii, and which rotation it follows ('head' or 'body')."""

    name: str
    centre: np.ndarray
    radii: np.ndarray
    follows: str


def head_proxies(landmarks: np.ndarray, appearance: dict[str, Any], rng: np.random.Generator) -> list[Proxy]:
    """Skull (behind the face), neck, shoulders and optional long hair, sized from the mean-shape landmarks."""
    lm = landmarks
    half_width = (lm[16, 0] - lm[0, 0]) / 2.0
    z_ears = (lm[0, 2] + lm[16, 2]) / 2.0
    skull_grow = 1.0 + (0.08 if appearance["hair_style"] in ("long", "bangs", "covered") else 0.03)
    # narrower than the mesh at the ears (so it hides behind the sides of the face), longer to the back
    skull = Proxy("skull", np.array([0.0, lm[27, 1] - 22.0, z_ears - 28.0]),
                  np.array([half_width * 0.9, half_width * 1.36, half_width * 1.38]) * skull_grow, "head")
    neck = Proxy("neck", np.array([0.0, lm[8, 1] - 95.0, lm[8, 2] - 92.0]), np.array([56.0, 95.0, 46.0]), "head")
    shoulders = Proxy(
        "shoulders",
        np.array([0.0, lm[8, 1] - 185.0 - rng.uniform(0, 30), z_ears - 30.0]),
        np.array([half_width * rng.uniform(2.3, 2.9), 95.0, 80.0]),
        "body",
    )
    parts = [skull, neck, shoulders]
    if appearance["hair_style"] == "long":
        length = rng.uniform(80, 200)
        parts.append(Proxy("long_hair", np.array([0.0, lm[8, 1] + 40 - length / 2, z_ears - 45.0]),
                           np.array([half_width * 1.18, length / 2 + 70, 55.0]), "head"))
    return parts


def proxy_mesh(proxy: Proxy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mesh-frame vertices, triangles and unit normals of an ellipsoid proxy."""
    unit, tris = unit_sphere()
    verts = unit * proxy.radii + proxy.centre
    normals = unit / proxy.radii
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return verts, tris, normals


def body_rotation(pose: dict[str, float]) -> np.ndarray:
    """The torso turns only part of the way with the head."""
    return rotation_matrix(0.35 * pose["yaw"], 0.15 * pose["pitch"], 0.3 * pose["roll"])
