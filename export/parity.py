"""Inputs for parity checks and how far an exported model is from the FP32 PyTorch model, in pixels."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from prnet.io import PrnetInputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if image.shape[:2] == (size, size):
        return image
    interpolation = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def _evenly_spaced(items: list, count: int) -> list:
    if len(items) <= count:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, count).round().astype(int)]


def procedural_images(count: int, size: int, seed: int = 0) -> np.ndarray:
    """(count, S, S, 3) float32 in [0, 1]: smooth colour fields + an ellipse + noise, quantized to 8 bits.

    A stand-in when no data is given: natural-image statistics matter for INT8/FP16, not for FP32 parity."""
    import cv2

    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        low = rng.random((4, 4, 3)).astype(np.float32)
        image = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
        centre = (int(size * rng.uniform(0.4, 0.6)), int(size * rng.uniform(0.4, 0.6)))
        axes = (int(size * rng.uniform(0.2, 0.3)), int(size * rng.uniform(0.28, 0.4)))
        cv2.ellipse(image, centre, axes, 0, 0, 360, tuple(float(v) for v in rng.uniform(0.3, 0.9, 3)), -1)
        image += rng.normal(0, 0.03, image.shape).astype(np.float32)
        images.append(np.round(np.clip(image, 0, 1) * 255) / 255)
    return np.stack(images).astype(np.float32)


def parity_images(source: str | Path | None, count: int, size: int) -> tuple[np.ndarray, str]:
    """(count, S, S, 3) float32 RGB in [0, 1] and a description of where they came from.

    `source`: a prnet dataset directory (manifest.json), a directory of images, one image, or None
    (procedural images)."""
    from prnet.io import read_image_rgb

    if source is None:
        return procedural_images(count, size), f"{count} procedural images (pass --data for real face crops)"
    source = Path(source)
    if (source / "manifest.json").is_file():
        from prnet.data.dataset import PositionMapDataset

        dataset = PositionMapDataset(source)
        picked = _evenly_spaced(list(range(len(dataset))), count)
        images = [_resize(dataset[i].image, size) for i in picked]
        description = f"{len(images)} crops of dataset {source}"
    elif source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise PrnetInputError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) and no manifest.json")
        images = [_resize(read_image_rgb(p), size) for p in _evenly_spaced(files, count)]
        description = f"{len(images)} images of {source}"
    elif source.is_file():
        images, description = [_resize(read_image_rgb(source), size)], f"image {source}"
    else:
        raise PrnetInputError(f"{source}: parity data not found (give a dataset directory, image folder or image)")
    return np.stack(images).astype(np.float32) / 255.0, description


def deviation_px(output: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(max, mean) absolute difference of two position-map batches, in pixels."""
    if output.shape != reference.shape:
        raise ValueError(f"output shape {output.shape} != reference shape {reference.shape}")
    diff = np.abs(output.astype(np.float64) - reference.astype(np.float64))
    if not np.isfinite(diff).all():
        return float("inf"), float("inf")
    return float(diff.max()), float(diff.mean())


def median_latency_ms(runner: Any, image: np.ndarray, runs: int) -> float | None:
    """Median wall time of `runs` batch-1 calls after one warm-up (noisy on a shared CPU)."""
    if runs <= 0:
        return None
    runner(image[:1])
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner(image[:1])
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)
