"""Images (and position maps) for calibration, recovery fine-tuning and validation.

Anything that yields `prnet.data.format.Sample` works: a `prnet.data.dataset.PositionMapDataset` (map-style,
sampled at random) or an iterable stream such as the synthetic generator (read in order).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from prnet.io import PrnetInputError


@dataclass
class Batch:
    images: torch.Tensor  # (B, 3, S, S) float32 RGB in [0, 1]
    posmaps: torch.Tensor  # (B, 3, S, S) float32 ground-truth position maps in crop pixels
    landmarks: np.ndarray  # (B, 68, 3) float32 ground-truth landmarks in crop pixels
    teacher_images: torch.Tensor | None = None  # (B, 3, T, T) the same faces at the teacher's size (a smaller student)


def collate(samples: list) -> Batch:
    images = np.stack([s.image for s in samples]).astype(np.float32) / 255.0  # (B, S, S, 3)
    posmaps = np.stack([s.posmap for s in samples]).astype(np.float32)  # (B, S, S, 3)
    return Batch(
        images=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
        posmaps=torch.from_numpy(posmaps).permute(0, 3, 1, 2).contiguous(),
        landmarks=np.stack([s.landmarks for s in samples]).astype(np.float32),
    )


def _is_map_style(source: Any) -> bool:
    return hasattr(source, "__len__") and hasattr(source, "__getitem__")


def random_batches(source: Any, batch_size: int, seed: int = 0) -> Iterator[Batch]:
    """Endless batches: random samples of a map-style dataset, or consecutive samples of a stream."""
    if _is_map_style(source):
        if len(source) == 0:
            raise PrnetInputError("the training data holds no samples")
        rng = np.random.default_rng(seed)
        while True:
            yield collate([source[int(i)] for i in rng.integers(0, len(source), batch_size)])
    stream = iter(source)
    while True:
        chunk = [next(stream) for _ in range(batch_size)]
        yield collate(chunk)


def first_batches(source: Any, count: int, batch_size: int) -> list[Batch]:
    """The first `count` samples (a fixed, reproducible set: calibration and validation)."""
    if _is_map_style(source):
        count = min(count, len(source))
        samples = [source[i] for i in range(count)]
    else:
        stream = iter(source)
        samples = [next(stream) for _ in range(count)]
    if not samples:
        raise PrnetInputError("no samples to calibrate or validate on")
    return [collate(samples[i : i + batch_size]) for i in range(0, len(samples), batch_size)]


def calibration_loop(batches: list[Batch]):
    """A modelopt-style `forward_loop(model)`: runs `model` on every calibration batch."""

    def forward_loop(model) -> None:
        with torch.no_grad():
            for batch in batches:
                model(batch.images)

    return forward_loop


class AugmentedSamples:
    """A map-style sample source seen at `size` through `prnet train`'s augmentation (`AugmentConfig`: rotation,
    shift, scale, colour), so a distilled student also sees the jittered crops a tracker or a detector gives it.

    The k-th draw of index i uses the generator (seed, i, k): two views with one seed -- the teacher's size and
    the student's -- show the same jittered crop at both sizes. Occlusion and flips are off: the noise patch would
    differ between the sizes, and the teacher's output, not a flipped ground truth, is the target."""

    def __init__(self, source: Any, size: int, config: Any, seed: int):
        if not _is_map_style(source):
            raise PrnetInputError("augmented distillation samples a dataset at random: pass a dataset directory")
        self.source, self.size, self.seed = source, int(size), seed
        self.config = dataclasses.replace(config, occlusion_prob=0.0, flip_prob=0.0)
        self._draws: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> Any:
        from prnet.train.augment import augment_sample

        draw = self._draws.get(index, 0)
        self._draws[index] = draw + 1
        sample = self.source[index]
        rng = np.random.default_rng((self.seed, index, draw))
        image, posmap, landmarks = augment_sample(sample.image, sample.posmap, sample.landmarks, self.size,
                                                  self.config, rng)
        return dataclasses.replace(sample, image=image, posmap=posmap, landmarks=landmarks)
