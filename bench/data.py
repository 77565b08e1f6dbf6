"""The images every row runs on, and the ground truth their accuracy is measured against.

Either a dataset directory in the project's format (`--data DIR`: the first N samples in index order) or,
with no `--data`, a built-in validation set rendered on the fly by the synthetic engine with a fixed seed
(the same faces on every machine, nothing downloaded). Calibration images for INT8 come from a different
seed, so quantizers are never calibrated on the faces they are scored on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prnet.io import PrnetInputError, existing_dir

VALIDATION_SEED = 20180908  # fixed: the built-in validation set is the same faces everywhere
CALIBRATION_SEED = VALIDATION_SEED + 1


@dataclass
class ValidationSet:
    images: np.ndarray  # (N, S, S, 3) float32 RGB in [0, 1]
    posmaps: np.ndarray  # (N, S, S, 3) float32 GT position maps, crop pixels
    landmarks: np.ndarray  # (N, 68, 3) float32 GT landmarks, crop pixels
    layout: object  # prnet.layout.UVLayout the GT maps are in
    source: str  # human-readable: a path, or "synthetic(seed=..., n=...)"

    def __len__(self) -> int:
        return len(self.images)

    @property
    def input_size(self) -> int:
        return int(self.images.shape[1])

    def batch(self, size: int) -> np.ndarray:
        """The first `size` images (repeated when the set is smaller): the fixed input of every timed call."""
        reps = -(-size // len(self.images))
        return np.ascontiguousarray(np.concatenate([self.images] * reps)[:size])


def from_samples(samples, layout, source: str) -> ValidationSet:
    if not samples:
        raise PrnetInputError(f"{source}: no samples to benchmark on")
    return ValidationSet(
        images=np.stack([s.image for s in samples]).astype(np.float32) / 255.0,
        posmaps=np.stack([s.posmap for s in samples]).astype(np.float32),
        landmarks=np.stack([s.landmarks for s in samples]).astype(np.float32),
        layout=layout,
        source=source,
    )


def load_dataset(root: str | Path, limit: int, size: int | None = None) -> ValidationSet:
    """The first `limit` complete samples of a dataset directory (any source that writes prnet's format),
    resampled to `size` when the model takes another input size than the data's."""
    from prnet.data.format import list_samples, read_layout, read_manifest, read_sample

    root = existing_dir(root, "dataset directory", f"make one with `prnet data synth --out {Path(root)}`")
    manifest = read_manifest(root)
    indices = list_samples(root, manifest)[:limit]
    if not indices:
        raise PrnetInputError(f"{root}: holds no complete samples; generate some with `prnet data synth`")
    samples = [read_sample(root, i, manifest) for i in indices]
    if size is not None and samples[0].image.shape[0] != size:
        return from_samples(*resampled(samples, read_layout(root), size), source=f"{root} (resampled to {size} px)")
    return from_samples(samples, read_layout(root), source=str(root))


def resampled(samples: list, layout, size: int) -> tuple[list, object]:
    """Samples and their layout resampled to a model's input size (maps in the layout the model was trained on)."""
    from prnet.geometry.resample import resize_layout
    from prnet.train.augment import resize_sample

    return [resize_sample(s, size) for s in samples], resize_layout(layout, size)


def synthetic_set(count: int, seed: int, size: int = 256) -> ValidationSet:
    """`count` faces rendered by prnet's synthetic engine with `seed` (deterministic, nothing on disk)."""
    try:
        from prnet.data.synth.render import SynthConfig, load_assets, render_sample
    except ImportError as err:
        raise PrnetInputError(
            f"the built-in validation set needs prnet's synthetic engine, which is not importable here ({err}); "
            "pass --data DIR with a dataset made by `prnet data synth` or `prnet data 300wlp`"
        ) from err
    assets = load_assets()
    native = assets.layout.size  # render as `prnet data synth` does, then resample like a dataset on disk, so
    # the maps are in the model's (resized) layout: a 128 px model reads the 256 px layout resampled to 128
    samples = [render_sample(index, seed, SynthConfig(image_size=native), assets) for index in range(count)]
    source = f"synthetic(seed={seed}, n={count})"
    if size != native:
        return from_samples(*resampled(samples, assets.layout, size), source=source[:-1] + f", resampled to {size} px)")
    return from_samples(samples, assets.layout, source=source)


def validation_set(data: str | Path | None, count: int, size: int = 256) -> ValidationSet:
    return load_dataset(data, count, size) if data is not None else synthetic_set(count, VALIDATION_SEED, size)


def calibration_images(data: str | Path | None, count: int, validation: ValidationSet
                       ) -> tuple[np.ndarray, str]:
    """INT8 calibration images and where they come from: synthetic faces of another seed; with --data, the
    samples after the evaluated ones. Only when nothing else exists, the evaluated images themselves."""
    if data is None:
        try:
            images = synthetic_set(count, CALIBRATION_SEED, validation.input_size).images
            return images, f"synthetic faces, seed {CALIBRATION_SEED}"
        except PrnetInputError:
            return validation.images, "the evaluation images themselves (no synthetic engine here)"
    from prnet.data.format import list_samples, read_manifest, read_sample

    manifest = read_manifest(data)
    rest = list_samples(data, manifest)[len(validation):][:count]
    if not rest:
        return validation.images, f"the evaluation images themselves: {data} has no samples beyond --samples"
    images = np.stack([read_sample(data, i, manifest).image for i in rest]).astype(np.float32) / 255.0
    return images, f"{len(rest)} samples of {data} after the evaluated ones"
