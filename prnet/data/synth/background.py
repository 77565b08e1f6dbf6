"""Backgrounds for synthetic crops: gradients, fractal noise, textures, clutter and real-photo crops.

Real photos come only from packages that are already installed, read at run time (nothing downloaded):
- scikit-learn `sklearn/datasets/images/china.jpg` and `flower.jpg`: CC BY 2.0 (Flickr users danielbuechele
  and vultilion, see that folder's README.txt); used if scikit-learn is installed.
- matplotlib `mpl-data/sample_data/grace_hopper.jpg`: a US Navy photograph (public domain); only the flag
  strip and the uniform are used, never her face (an unlabelled face in the background would teach the
  model to ignore faces).
- matplotlib `mpl-data/sample_data/jacksboro_fault_dem.npz` and `topobathy.npz`: elevation grids, rendered
  as coloured, hill-shaded terrain textures.
All images are float32 RGB in [0, 1] (display-referred), size x size.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any, Callable

import numpy as np


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)  # does not import the package
    return Path(spec.origin).parent if spec and spec.origin else None


@functools.lru_cache(maxsize=1)
def photo_library() -> tuple[np.ndarray, ...]:
    """Real photo textures found in installed packages (float32 RGB); may be empty."""
    import cv2

    photos = []
    sklearn_dir = _package_dir("sklearn")
    if sklearn_dir is not None:
        for name in ("china.jpg", "flower.jpg"):
            image = cv2.imread(str(sklearn_dir / "datasets" / "images" / name))
            if image is not None:
                photos.append(image[..., ::-1])
    mpl_dir = _package_dir("matplotlib")
    if mpl_dir is not None:
        sample = mpl_dir / "mpl-data" / "sample_data"
        hopper = cv2.imread(str(sample / "grace_hopper.jpg"))
        if hopper is not None:  # 600 x 512: flag strip on the left, uniform at the bottom; no face
            photos += [hopper[:, :150, ::-1], hopper[420:, :, ::-1]]
        for name, key in (("jacksboro_fault_dem.npz", "elevation"), ("topobathy.npz", "topo")):
            try:
                with np.load(sample / name) as data:
                    photos.append(_terrain(np.asarray(data[key], dtype=np.float32)))
            except (OSError, KeyError, ValueError):
                continue
    return tuple(np.ascontiguousarray(p, dtype=np.float32) / (255.0 if p.dtype == np.uint8 else 1.0) for p in photos)


def _terrain(elevation: np.ndarray) -> np.ndarray:
    """Hill-shaded, colour-mapped elevation -> uint8 RGB texture."""
    import matplotlib

    norm = (elevation - elevation.min()) / max(float(np.ptp(elevation)), 1e-6)
    gy, gx = np.gradient(elevation)
    shade = np.clip(0.6 + 0.4 * (gx - gy) / (np.abs(gx).max() + np.abs(gy).max() + 1e-6) * 4, 0, 1)
    rgb = matplotlib.colormaps["gist_earth"](norm)[..., :3] * shade[..., None]
    return (rgb * 255).astype(np.uint8)


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 1, 3).astype(np.float32) ** rng.uniform(0.6, 1.6)


def _upsampled_noise(rng: np.random.Generator, size: int, cells: int, channels: int = 3) -> np.ndarray:
    import cv2

    grid = rng.random((cells, cells, channels)).astype(np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC).reshape(size, size, channels)


def gradient(rng: np.random.Generator, size: int) -> np.ndarray:
    a, b = _random_colour(rng), _random_colour(rng)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if rng.random() < 0.5:
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * xx + np.sin(angle) * yy)
    else:
        cx, cy = rng.uniform(0, 1, 2)
        t = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    return a + t[..., None] * (b - a)


def fractal_noise(rng: np.random.Generator, size: int) -> np.ndarray:
    out = np.zeros((size, size, 3), np.float32)
    amplitude, total = 1.0, 0.0
    for cells in (3, 6, 12, 24, 48):
        out += amplitude * _upsampled_noise(rng, size, cells)
        total += amplitude
        amplitude *= rng.uniform(0.4, 0.7)
    out /= total
    tint_a, tint_b = _random_colour(rng), _random_colour(rng)
    mono = out.mean(axis=2, keepdims=True)
    mixed = tint_a + (mono - mono.min()) / max(float(np.ptp(mono)), 1e-6) * (tint_b - tint_a)
    return mixed * 0.8 + 0.2 * out


def pattern(rng: np.random.Generator, size: int) -> np.ndarray:
    """Stripes, checkers or a tiled grid, warped by low-frequency noise (fabric, tiles, blinds, shelves)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(6, 60)
    warp = (_upsampled_noise(rng, size, 4, 2) - 0.5) * rng.uniform(0, 40)
    u = (np.cos(angle) * xx + np.sin(angle) * yy + warp[..., 0]) / period
    v = (-np.sin(angle) * xx + np.cos(angle) * yy + warp[..., 1]) / period
    kind = rng.integers(3)
    if kind == 0:
        t = 0.5 + 0.5 * np.sin(2 * np.pi * u)
    elif kind == 1:
        t = ((np.floor(u) + np.floor(v)) % 2).astype(np.float32)
    else:
        t = np.minimum(np.abs(u - np.round(u)), np.abs(v - np.round(v))) > 0.08
    a, b = _random_colour(rng), _random_colour(rng)
    return a + t.astype(np.float32)[..., None] * (b - a)


def photo_crop(rng: np.random.Generator, size: int) -> np.ndarray:
    import cv2

    photos = photo_library()
    if not photos:
        return fractal_noise(rng, size)
    photo = photos[rng.integers(len(photos))]
    h, w = photo.shape[:2]
    side = rng.uniform(0.25, 1.0) * min(h, w)
    x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
    angle = rng.uniform(-20, 20)
    scale = size / side
    matrix = cv2.getRotationMatrix2D((x0 + side / 2, y0 + side / 2), angle, scale)
    matrix[:, 2] += size / 2 - np.array([x0 + side / 2, y0 + side / 2])
    crop = cv2.warpAffine(photo, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop)


def clutter(rng: np.random.Generator, image: np.ndarray, count: int) -> np.ndarray:
    """Draw rectangles, discs, polygons and lines (shelves, frames, lamps, furniture edges) over `image`."""
    import cv2

    size = image.shape[0]
    out = np.ascontiguousarray(image)
    for _ in range(count):
        colour = tuple(float(c) for c in _random_colour(rng))
        kind = rng.integers(4)
        p = rng.uniform(-0.2, 1.2, 2) * size
        if kind == 0:
            q = p + rng.uniform(-0.6, 0.6, 2) * size
            cv2.rectangle(out, tuple(int(v) for v in p), tuple(int(v) for v in q), colour, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.circle(out, tuple(int(v) for v in p), int(rng.uniform(0.03, 0.35) * size), colour, -1, cv2.LINE_AA)
        elif kind == 2:
            points = (p + rng.normal(0, 0.2 * size, (int(rng.integers(3, 7)), 2))).astype(np.int32)
            cv2.fillPoly(out, [points], colour, cv2.LINE_AA)
        else:
            q = p + rng.uniform(-1, 1, 2) * size
            cv2.line(out, tuple(int(v) for v in p), tuple(int(v) for v in q), colour, int(rng.integers(1, 12)),
                     cv2.LINE_AA)
    return out


BACKGROUNDS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "gradient": gradient,
    "noise": fractal_noise,
    "pattern": pattern,
    "photo": photo_crop,
}
BACKGROUND_WEIGHTS = {"gradient": 0.15, "noise": 0.2, "pattern": 0.15, "photo": 0.5}


def sample_background(rng: np.random.Generator) -> dict[str, Any]:
    names = list(BACKGROUND_WEIGHTS)
    probs = np.array([BACKGROUND_WEIGHTS[n] for n in names])
    return {
        "kind": names[rng.choice(len(names), p=probs / probs.sum())],
        "clutter": int(rng.integers(0, 9)) if rng.random() < 0.6 else 0,
        "blur": float(rng.uniform(0, 2.5)) if rng.random() < 0.4 else 0.0,  # depth of field
        "seed": int(rng.integers(2**31)),
    }


def render_background(spec: dict[str, Any], size: int) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(spec["seed"])
    image = BACKGROUNDS[spec["kind"]](rng, size).astype(np.float32)
    if spec["clutter"]:
        image = clutter(rng, image, spec["clutter"])
    if spec["blur"]:
        image = cv2.GaussianBlur(image, (0, 0), spec["blur"])
    return np.clip(image, 0.0, 1.0)
