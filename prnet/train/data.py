"""Training data plumbing: sources of Samples -> augmented tensors, in an order that resumes exactly.

Determinism: every training item is addressed as (sample index, seed tuple). The sampler draws a fresh
permutation per epoch from (seed, epoch) and gives each position its own augmentation seed
(seed, epoch, rank, position), so the batches of step N are the same whether the run was interrupted or not,
whatever the number of DataLoader workers. Resuming at step N only needs N.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from prnet.data.format import Sample
from prnet.geometry.mirror import layout_mirror
from prnet.io import PrnetInputError
from prnet.layout import UVLayout
from prnet.train.augment import AugmentConfig, augment_sample
from prnet.train.stop import ignore_stop_signals


class TrainingItems(Dataset):
    """source[i] -> (image (3,S,S) uint8, target (3,S,S) float32 = posmap / output_scale, landmarks (68,3) px).

    Key (i, seed_tuple): augmented with rng(seed_tuple). Plain int i: only resized to input_size (validation).
    `layout`: the source's (stored-size) layout, needed for flips (augment.flip_prob > 0); its mirror map is
    built here, once, so DataLoader workers inherit it.
    """

    def __init__(self, source: Sequence[Sample], input_size: int, output_scale: float, augment: AugmentConfig,
                 layout: UVLayout | None = None):
        self.source, self.input_size, self.output_scale, self.augment = source, input_size, output_scale, augment
        self.mirror = layout_mirror(layout) if augment.flip_prob > 0 and layout is not None else None

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: int | tuple[int, tuple[int, ...]]):
        index, rng = (key[0], np.random.default_rng(key[1])) if isinstance(key, tuple) else (key, None)
        sample = self.source[index]
        image, posmap, landmarks = augment_sample(
            sample.image, sample.posmap, sample.landmarks, self.input_size, self.augment, rng, self.mirror
        )
        image_t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))  # (3, S, S) uint8
        target = torch.from_numpy(np.ascontiguousarray(posmap.transpose(2, 0, 1))) / self.output_scale
        return image_t, target, torch.from_numpy(landmarks)


class ResumableSampler(DistributedSampler):
    """torch's DistributedSampler (shuffled per epoch, sharded per rank) whose items carry their augmentation
    seed, and which can start mid-epoch (`set_position`) so a resumed run sees exactly the same batches."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, tuple[int, int, int, int]]]:
        indices = list(super().__iter__())
        for position in range(self.start, len(indices)):
            yield indices[position], (self.seed, self.epoch, self.rank, position)

    def __len__(self) -> int:
        return self.num_samples - self.start


@dataclass
class BatchStream:
    """Endless batches from step `start_step` on: epoch and in-epoch offset follow from the step alone."""

    loader: torch.utils.data.DataLoader
    sampler: ResumableSampler
    batch_size: int  # per rank

    @property
    def batches_per_epoch(self) -> int:
        return self.sampler.num_samples // self.batch_size

    def iterate(self, start_step: int) -> Iterator[Any]:
        per_epoch = self.batches_per_epoch
        epoch, offset = divmod(start_step, per_epoch)
        while True:
            self.sampler.set_position(epoch, offset * self.batch_size)
            yield from self.loader
            epoch, offset = epoch + 1, 0


def single_threaded_opencv() -> None:
    """DataLoader workers decode and warp one sample at a time: keep OpenCV from spawning its own thread pool.

    Set in the parent BEFORE the workers fork (they inherit it): a forked worker that reconfigures a thread pool
    its parent already started can hang forever (seen with cv2.setNumThreads in worker_init_fn).
    """
    import cv2

    cv2.setNumThreads(1)


def make_batch_stream(items: TrainingItems, batch_size: int, world_size: int, rank: int, seed: int,
                      num_workers: int, pin_memory: bool) -> BatchStream:
    sampler = ResumableSampler(items, num_replicas=world_size, rank=rank, seed=seed)
    if sampler.num_samples < batch_size:
        raise PrnetInputError(
            f"the training split has {len(items)} samples, fewer than one batch of {batch_size} per process "
            f"({world_size} process(es)); use a smaller --batch-size or more data"
        )
    if num_workers > 0:
        single_threaded_opencv()
    loader = torch.utils.data.DataLoader(
        items, batch_size=batch_size, sampler=sampler, drop_last=True, num_workers=num_workers,
        pin_memory=pin_memory, persistent_workers=num_workers > 0, prefetch_factor=4 if num_workers > 0 else None,
        worker_init_fn=ignore_stop_signals if num_workers > 0 else None,
    )
    return BatchStream(loader, sampler, batch_size)


SYNTH_VAL_SEED_OFFSET = 1_000_000_007  # the validation stream never overlaps a training stream of another seed


class SynthSource(Dataset):
    """Map-style view of the synthetic generator: item i is `render_sample(i, seed)`, the sample that
    `prnet data synth --seed seed` writes at index i. Map-style (not a stream) so the resumable, sharded
    sampler above gives exact resume and DDP for on-the-fly data too. `cache` keeps rendered samples
    (for the small fixed validation set)."""

    def __init__(self, seed: int, length: int, cache: bool = False):
        self.seed, self.length = int(seed), int(length)
        self._cache: dict[int, Sample] | None = {} if cache else None
        self._threads_limited = False

    @property
    def layout(self) -> UVLayout:
        from prnet.data.synth.render import load_assets

        return load_assets().layout

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Sample:
        from prnet.data.synth.generate import limit_blas_threads
        from prnet.data.synth.render import load_assets, render_sample

        if self._cache is not None and index in self._cache:
            return self._cache[index]
        if not self._threads_limited and torch.utils.data.get_worker_info() is not None:
            limit_blas_threads()  # one BLAS thread per DataLoader worker
            self._threads_limited = True
        sample = render_sample(int(index), self.seed, assets=load_assets())
        if self._cache is not None:
            self._cache[index] = sample
        return sample


def synth_sources(seed: int, train_length: int, val_length: int) -> tuple[SynthSource, SynthSource | None, UVLayout]:
    """(train, val, layout) for --data synth: train item i = sample (seed, i); val = a separate seeded stream."""
    try:
        train = SynthSource(seed, train_length)
        layout = train.layout
    except ImportError as err:
        raise PrnetInputError(f"--data synth needs prnet.data.synth and prnet.geometry ({err})") from err
    val = SynthSource(seed + SYNTH_VAL_SEED_OFFSET, val_length, cache=True) if val_length > 0 else None
    return train, val, layout
