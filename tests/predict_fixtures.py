"""Tiny layouts, runners and checkpoints for the predict/eval tests (fast: 64 px prnet-quarter)."""

from __future__ import annotations

import numpy as np

from prnet.layout import UVLayout


def disk_layout(size: int = 64, name: str = "test-predict-disk") -> UVLayout:
    """A disk-shaped face in UV space, 68 landmarks on two rings, triangles over the face pixels."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c, r = (size - 1) / 2, size * 0.42
    face = (xx - c) ** 2 + (yy - c) ** 2 <= r**2
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    radii = np.where(np.arange(68) % 2 == 0, r * 0.75, r * 0.4)
    landmark_uv = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles)], 1).astype(np.float32)
    weight = np.where(face, 3.0, 0.0).astype(np.float32)
    ids = -np.ones((size, size), np.int64)
    ids[face] = np.arange(face.sum())
    quads = np.concatenate(
        [
            np.stack([ids[:-1, :-1], ids[:-1, 1:], ids[1:, :-1]], -1).reshape(-1, 3),
            np.stack([ids[:-1, 1:], ids[1:, 1:], ids[1:, :-1]], -1).reshape(-1, 3),
        ]
    )
    triangles = quads[(quads >= 0).all(1)].astype(np.int32)
    return UVLayout(name, size, landmark_uv, face, weight, triangles)
