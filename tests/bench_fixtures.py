"""Fakes for the bench tests: a tiny layout and validation set, and numpy runners implementing the Runner protocol.

The fake runners look an image up in the validation set and return its GT position map, optionally moved by a
fixed offset, so every accuracy number of a row is known in advance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.data import ValidationSet
from bench.specs import BackendSpec, BuiltVariant, PreparedRow, Unavailable, VariantSpec
from prnet.layout import UVLayout

SIZE = 16


def grid_layout(size: int = SIZE, name: str = "test-bench-grid") -> UVLayout:
    """A square face in UV space with 68 landmarks on INTEGER pixels (bilinear reads are exact there)."""
    face = np.zeros((size, size), bool)
    face[2:-2, 2:-2] = True
    coords = [(u, v) for v in range(3, size - 3) for u in range(3, size - 3)]
    landmark_uv = np.array([coords[i % len(coords)] for i in range(68)], np.float32)
    weight = np.where(face, 3.0, 0.0).astype(np.float32)
    ids = -np.ones((size, size), np.int64)
    ids[face] = np.arange(face.sum())
    quads = np.stack([ids[:-1, :-1], ids[:-1, 1:], ids[1:, :-1]], -1).reshape(-1, 3)
    return UVLayout(name, size, landmark_uv, face, weight, quads[(quads >= 0).all(1)].astype(np.int32))


def validation(count: int = 4, seed: int = 0) -> ValidationSet:
    layout = grid_layout()
    rng = np.random.default_rng(seed)
    vv, uu = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    images, maps = [], []
    for _ in range(count):
        images.append(rng.random((SIZE, SIZE, 3), dtype=np.float32))
        scale, shift = rng.uniform(0.8, 1.2), rng.uniform(-1, 1, 2)
        z = rng.uniform(0, 4) + 0.1 * uu
        maps.append(np.stack([uu * scale + shift[0], vv * scale + shift[1], z], -1).astype(np.float32))
    maps = np.stack(maps)
    u, v = layout.landmark_uv[:, 0].astype(int), layout.landmark_uv[:, 1].astype(int)
    return ValidationSet(np.stack(images), maps, maps[:, v, u], layout, source="fake")


class FakeRunner:
    """Runner protocol in numpy: the GT map of each input image + `offset` (x, y, z pixels)."""

    def __init__(self, data: ValidationSet, offset=(0.0, 0.0, 0.0), name="fake", fail_after: int | None = None,
                 output_nan: bool = False):
        self.name, self.input_size, self.layout = name, data.input_size, data.layout
        self._maps = {img.tobytes(): m for img, m in zip(data.images, data.posmaps)}
        self.offset = np.asarray(offset, np.float32)
        self.calls, self.fail_after, self.output_nan = 0, fail_after, output_nan

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("fake runtime crashed")
        out = np.stack([self._maps[np.ascontiguousarray(img, np.float32).tobytes()] for img in images]) + self.offset
        return np.full_like(out, np.nan) if self.output_nan else out


class Loaded:
    """Stands in for prnet.checkpoint.LoadedModel (only the layout is read when no backend needs a module)."""

    def __init__(self, layout: UVLayout):
        self.layout, self.model = layout, None

        class _Config:
            input_size, output_scale, name = SIZE, 1.0, "fake-model"

        self.config = _Config()


def variant(name: str, offset=(0.0, 0.0, 0.0), macs: int = 1000, error: Exception | None = None) -> VariantSpec:
    def build(ctx):
        if error is not None:
            raise error
        built = BuiltVariant(name, "fp32", params=10, macs=macs)
        built.offset = np.asarray(offset, np.float32)  # the fake backend reads it
        return built

    return VariantSpec(name, f"fake {name}", build)


def backend(name: str, data: ValidationSet, tmp: Path, fail_prepare: Exception | None = None,
            requires: tuple[str, ...] = (), **runner_kw) -> BackendSpec:
    def prepare(built: BuiltVariant, ctx) -> PreparedRow:
        if fail_prepare is not None:
            raise fail_prepare
        path = tmp / f"{built.name}-{name}.bin"
        path.write_bytes(b"x" * 123)
        return PreparedRow(path, lambda: FakeRunner(data, built.offset, name=f"{name}:{built.name}", **runner_kw))

    return BackendSpec(name, f"fake {name}", prepare, requires=requires)


__all__ = ["Unavailable", "grid_layout", "validation", "FakeRunner", "Loaded", "variant", "backend"]
