"""Contact sheets of any prnet dataset (the project format), for a human check: `prnet data show`.

Each sample gets three panels: the image as stored; the image with the 68 landmarks and a wireframe of the
position map's UV grid drawn over it (if the wireframe sits on the face, the map and the image agree); and
the position map coloured as RGB = (x / S, y / S, z / max z) over the layout's face mask.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from prnet.data.format import Sample, list_samples, read_layout, read_manifest, read_sample
from prnet.io import PrnetInputError, write_image_atomic
from prnet.layout import UVLayout

JAW, BROWS, NOSE, EYES, MOUTH = range(0, 17), range(17, 27), range(27, 36), range(36, 48), range(48, 68)


def posmap_colours(posmap: np.ndarray, layout: UVLayout) -> np.ndarray:
    """(S, S, 3) uint8: x, y, z of the map as red, green, blue, black outside the face mask."""
    size = posmap.shape[0]
    zmax = max(float(posmap[..., 2][layout.face_mask].max(initial=1.0)), 1.0)
    rgb = np.clip(posmap / np.array([size, size, zmax], dtype=np.float32), 0, 1)
    rgb[~layout.face_mask] = 0
    return (rgb * 255).astype(np.uint8)


def overlay(sample: Sample, layout: UVLayout, grid_step: int = 16) -> np.ndarray:
    """The sample's image with the UV-grid wireframe (from the position map) and the 68 landmarks."""
    import cv2

    image = np.ascontiguousarray(sample.image.copy())
    wires = image.copy()
    mask = layout.face_mask
    lines = []
    for r in range(0, layout.size, grid_step):  # iso-v lines, then iso-u lines, split where the mask breaks
        lines += _runs(sample.posmap[r, :, :2], mask[r, :])
        lines += _runs(sample.posmap[:, r, :2], mask[:, r])
    for line in lines:
        cv2.polylines(wires, [np.round(line * 4).astype(np.int32)], False, (80, 200, 255), 1, cv2.LINE_AA, 2)
    image = cv2.addWeighted(image, 0.4, wires, 0.6, 0.0)
    for group, colour in ((JAW, (255, 255, 0)), (BROWS, (255, 128, 0)), (NOSE, (0, 255, 0)), (EYES, (255, 0, 255)),
                          (MOUTH, (255, 40, 40))):
        for x, y in sample.landmarks[list(group), :2]:
            cv2.circle(image, (int(round(x * 4)), int(round(y * 4))), 7, colour, -1, cv2.LINE_AA, 2)
    return image


def _runs(points: np.ndarray, valid: np.ndarray) -> list[np.ndarray]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], valid.astype(np.int8), [0]])))
    return [points[a:b] for a, b in zip(edges[::2], edges[1::2]) if b - a >= 2]


def contact_sheet(samples: Sequence[Sample], layout: UVLayout, tile: int = 192, columns: int = 4) -> np.ndarray:
    """(rows * tile, columns * 3 * tile, 3) uint8 sheet: [image | overlay | position map] per sample."""
    import cv2

    if not samples:
        raise PrnetInputError("no samples to show")
    pairs = []
    for sample in samples:
        left = cv2.resize(overlay(sample, layout), (tile, tile), interpolation=cv2.INTER_AREA)
        right = cv2.resize(posmap_colours(sample.posmap, layout), (tile, tile), interpolation=cv2.INTER_AREA)
        clean = cv2.resize(sample.image, (tile, tile), interpolation=cv2.INTER_AREA)
        pairs.append(np.concatenate([clean, left, right], axis=1))
    rows = -(-len(pairs) // columns)
    blank = np.zeros_like(pairs[0])
    pairs += [blank] * (rows * columns - len(pairs))
    return np.concatenate([np.concatenate(pairs[r * columns:(r + 1) * columns], axis=1) for r in range(rows)])


def show_dataset(root: str | Path, out: str | Path, count: int = 32, seed: int = 0, tile: int = 192,
                 columns: int = 4) -> tuple[Path, list[int]]:
    """Write a contact sheet of `count` random complete samples of DIR; returns (path, indices shown).

    A corrupt sample raises PrnetInputError naming its file (nothing is silently skipped)."""
    root = Path(root)
    manifest = read_manifest(root)
    layout = read_layout(root)
    indices = list_samples(root, manifest)
    if not indices:
        raise PrnetInputError(f"{root}: holds no complete samples yet; run `prnet data synth --out {root}` first")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(indices, size=min(count, len(indices)), replace=False).tolist())
    sheet = contact_sheet([read_sample(root, i, manifest) for i in chosen], layout, tile, columns)
    out = Path(out)
    write_image_atomic(out, sheet, jpeg_quality=82)
    return out, chosen
