"""UVLayout: everything needed to read a position map (where the landmarks and the face are in UV space).

A dataset, a checkpoint and an exported model all carry their layout (as arrays), so a model trained on
the project's own Tutte layout and one trained on 300W-LP's BFM_UV layout are both read correctly.
Builders live in `prnet.geometry` (the project's layout) and `prnet.data` (BFM_UV).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from prnet.io import PrnetInputError, existing_file, write_npz_atomic

# Loss weights of the PRNet paper per region.
WEIGHT_LANDMARK, WEIGHT_EYES_NOSE_MOUTH, WEIGHT_FACE, WEIGHT_OTHER = 16.0, 4.0, 3.0, 0.0


@dataclass(frozen=True, eq=False)
class UVLayout:
    name: str  # e.g. "prnet-tutte-v1", "bfm-uv"
    size: int  # position maps are size x size x 3
    landmark_uv: np.ndarray  # (68, 2) float32, continuous pixel coords (u = column, v = row), iBUG order
    face_mask: np.ndarray  # (size, size) bool, pixels that belong to the output face mesh
    weight_mask: np.ndarray  # (size, size) float32, loss weights 16/4/3/0
    face_triangles: np.ndarray  # (M, 3) int32, indices into the face pixels in row-major order

    def __post_init__(self) -> None:
        s = self.size
        checks = [
            (self.landmark_uv.shape == (68, 2), f"landmark_uv shape {self.landmark_uv.shape} != (68, 2)"),
            (self.face_mask.shape == (s, s), f"face_mask shape {self.face_mask.shape} != ({s}, {s})"),
            (self.weight_mask.shape == (s, s), f"weight_mask shape {self.weight_mask.shape} != ({s}, {s})"),
            (self.face_triangles.ndim == 2 and self.face_triangles.shape[1] == 3, "face_triangles must be (M, 3)"),
        ]
        for ok, message in checks:
            if not ok:
                raise PrnetInputError(f"invalid UV layout '{self.name}': {message}")

    @property
    def layout_id(self) -> str:
        """Content hash: two layouts with the same id read position maps identically."""
        h = hashlib.sha256(self.name.encode())
        for array in (self.landmark_uv, self.face_mask, self.weight_mask, self.face_triangles):
            h.update(np.ascontiguousarray(array).tobytes())
        return f"{self.name}-{h.hexdigest()[:12]}"

    @property
    def face_pixels(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of the face pixels in row-major order: the dense vertices of the output mesh."""
        return np.nonzero(self.face_mask)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "name": np.array(self.name),
            "size": np.array(self.size),
            "landmark_uv": self.landmark_uv.astype(np.float32),
            "face_mask": self.face_mask.astype(bool),
            "weight_mask": self.weight_mask.astype(np.float32),
            "face_triangles": self.face_triangles.astype(np.int32),
        }

    @classmethod
    def from_arrays(cls, arrays, source: str = "layout") -> "UVLayout":
        missing = [f.name for f in fields(cls) if f.name not in arrays]
        if missing:
            raise PrnetInputError(f"{source}: UV layout is missing {missing}; rebuild it with `prnet data uv`")
        return cls(
            name=str(np.asarray(arrays["name"])),
            size=int(np.asarray(arrays["size"])),
            landmark_uv=np.asarray(arrays["landmark_uv"], dtype=np.float32),
            face_mask=np.asarray(arrays["face_mask"], dtype=bool),
            weight_mask=np.asarray(arrays["weight_mask"], dtype=np.float32),
            face_triangles=np.asarray(arrays["face_triangles"], dtype=np.int32),
        )

    def save(self, path: str | Path) -> None:
        write_npz_atomic(path, **self.to_arrays())

    @classmethod
    def load(cls, path: str | Path) -> "UVLayout":
        path = existing_file(path, "UV layout file")
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls.from_arrays({k: data[k] for k in data.files}, source=str(path))
        except (OSError, ValueError) as err:
            if isinstance(err, PrnetInputError):
                raise
            raise PrnetInputError(f"{path}: corrupt UV layout file ({err}); rebuild it with `prnet data uv`") from err


def disk_layout(size: int = 32, name: str = "toy-disk", *, accents: bool = True, full_mesh: bool = False) -> UVLayout:
    """A synthetic layout for tests and toy tasks: a disk-shaped face, 68 landmarks on two rings inside it,
    loss weights 3 on the face, 4 in a central square, 16 at the landmark pixels (`accents=False`: 3 on the
    whole face), triangles over face pixels: one per 2x2 pixel quad (`full_mesh`: both, covering the face)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c, r = (size - 1) / 2, size * 0.42
    face = (xx - c) ** 2 + (yy - c) ** 2 <= r**2
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    radii = np.where(np.arange(68) % 2 == 0, r * 0.75, r * 0.4)
    landmark_uv = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles)], 1).astype(np.float32)
    weight = np.where(face, WEIGHT_FACE, WEIGHT_OTHER).astype(np.float32)
    if accents:
        weight[(np.abs(xx - c) < r * 0.3) & (np.abs(yy - c) < r * 0.3)] = WEIGHT_EYES_NOSE_MOUTH
        for u, v in landmark_uv:
            weight[int(round(v)), int(round(u))] = WEIGHT_LANDMARK
    ids = -np.ones((size, size), np.int64)
    ids[face] = np.arange(face.sum())
    corners = [np.stack([ids[:-1, :-1], ids[:-1, 1:], ids[1:, :-1]], -1).reshape(-1, 3)]
    if full_mesh:
        corners.append(np.stack([ids[:-1, 1:], ids[1:, 1:], ids[1:, :-1]], -1).reshape(-1, 3))
    corners = np.concatenate(corners)
    return UVLayout(name, size, landmark_uv, face, weight, corners[(corners >= 0).all(1)].astype(np.int32))
