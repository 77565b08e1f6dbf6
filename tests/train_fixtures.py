"""Tiny layouts and datasets for the training tests (no geometry or synth module needed).

The samples are consistent: the image is a texture in UV space warped by a random similarity, and the
position map is the same similarity applied to the UV grid (plus a smooth depth bump), so a network can
actually learn the mapping.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prnet.compress.toy_teacher import warp_toy_sample
from prnet.data.format import Manifest, create_dataset, write_sample
from prnet.layout import UVLayout, disk_layout


def tiny_layout(size: int = 32, name: str = "test-disk") -> UVLayout:
    """A disk-shaped face in UV space with 68 landmarks on rings inside it."""
    return disk_layout(size, name)


def _texture(size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    tex = np.stack([xx, yy, 0.5 + 0.5 * np.sin(6 * xx) * np.cos(6 * yy)], -1)
    return (255 * np.clip(tex * rng.uniform(0.7, 1.0, 3), 0, 1)).astype(np.uint8)


def make_sample(layout: UVLayout, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = layout.size
    angle, scale = rng.uniform(-0.5, 0.5), rng.uniform(0.75, 1.05)
    shift = rng.uniform(-0.08, 0.08, 2) * s
    return warp_toy_sample(layout, _texture(s, rng), angle, scale, shift, (40, 40, 40))


def make_dataset(root: Path, n: int = 12, size: int = 32, seed: int = 0, layout: UVLayout | None = None) -> Path:
    layout = layout or tiny_layout(size)
    manifest = create_dataset(root, layout, Manifest(image_size=size, layout_id=layout.layout_id, image_ext=".png"))
    rng = np.random.default_rng(seed)
    for index in range(n):
        image, posmap, landmarks = make_sample(layout, rng)
        write_sample(root, manifest, index, image, posmap, landmarks, {"seed": seed, "index": index})
    return Path(root)
