"""Fakes for the bench tests: a tiny layout and validation set, and numpy runners implementing the Runner protocol.

The fake runners look an image up in the validation set and return its GT position map, optionally moved by a
fixed offset, so every accuracy number of a row is known in advance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prnet.bench.data import ValidationSet
from prnet.bench.specs import BackendSpec, BuiltVariant, PreparedRow, Unavailable, VariantSpec
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


def validation(count: int = 4, seed: int = 0, size: int = SIZE) -> ValidationSet:
    layout = grid_layout(size)
    rng = np.random.default_rng(seed)
    vv, uu = np.mgrid[0:size, 0:size].astype(np.float32)
    images, maps = [], []
    for _ in range(count):
        images.append(rng.integers(0, 256, (size, size, 3)).astype(np.float32) / 255.0)
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


def write_dataset(root: Path, data: ValidationSet) -> Path:
    """The validation set on disk in prnet's dataset format (PNG images: lossless, so the pixels round-trip)."""
    from prnet.data.format import Manifest, create_dataset, write_sample

    manifest = create_dataset(root, data.layout, Manifest(image_size=data.input_size, layout_id=data.layout.layout_id,
                                                          map_encoding="float32", image_ext=".png"))
    for i in range(len(data)):
        image = np.round(data.images[i] * 255).astype(np.uint8)
        write_sample(root, manifest, i, image, data.posmaps[i], data.landmarks[i], {"index": i})
    return Path(root)


def tiny_checkpoint(path: Path, layout: UVLayout, seed: int = 0) -> Path:
    """A random prnet-quarter at the layout's size (>= 32: the encoder downsamples 32x)."""
    import torch

    from prnet.checkpoint import save_checkpoint
    from prnet.model import create_model

    torch.manual_seed(seed)
    model = create_model("prnet-quarter", input_size=layout.size)
    # BN statistics from a few random batches, so the random net's sigmoid output is not saturated at 0/1
    # (a saturated output hides every deviation between variants)
    momenta = {m: m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    for bn in momenta:
        bn.momentum = None  # cumulative average
        bn.reset_running_stats()
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(4, 3, layout.size, layout.size))
    for bn, momentum in momenta.items():
        bn.momentum = momentum
    save_checkpoint(path, model.eval(), layout)
    return Path(path)


__all__ = ["Unavailable", "grid_layout", "validation", "write_dataset", "tiny_checkpoint", "FakeRunner", "Loaded", "variant", "backend"]
