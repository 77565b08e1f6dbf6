"""Datasets for training: a directory in the project's format (prnet.data.format) as a map-style dataset.

Items are `prnet.data.format.Sample` (uint8 image, float32 posmap in pixels, landmarks, params);
augmentation and tensor conversion belong to the trainer (prnet.train.loop / prnet.train.augment).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from prnet.data.format import Manifest, Sample, list_samples, read_layout, read_manifest, read_sample
from prnet.io import PrnetInputError, existing_dir
from prnet.layout import UVLayout

DEFAULT_VAL_FRACTION = 0.05  # the seed's held-out share


class PositionMapDataset:
    """Samples of dataset directory `root`, optionally restricted to the sample `indices` given.

    Map-style (len + getitem), so torch's DataLoader and DistributedSampler work on it directly.
    """

    def __init__(self, root: str | Path, indices: Sequence[int] | None = None):
        self.root = existing_dir(root, "dataset directory")
        self.manifest: Manifest = read_manifest(self.root)
        self.layout: UVLayout = read_layout(self.root)
        if self.layout.layout_id != self.manifest.layout_id:
            raise PrnetInputError(
                f"{self.root}: layout.npz ({self.layout.layout_id}) is not the layout the manifest names "
                f"({self.manifest.layout_id}); the dataset was mixed up, regenerate it"
            )
        available = list_samples(self.root, self.manifest)
        if indices is None:
            self.indices = available
        else:
            missing = sorted(set(indices) - set(available))
            if missing:
                raise PrnetInputError(f"{self.root}: samples {missing[:5]} requested but not present")
            self.indices = list(indices)
        if not self.indices:
            raise PrnetInputError(f"{self.root}: the dataset holds no complete samples")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Sample:
        return read_sample(self.root, self.indices[i], self.manifest)

    def subset(self, indices: Sequence[int]) -> "PositionMapDataset":
        """A dataset over the given sample indices (values of `self.indices`, not positions)."""
        return PositionMapDataset(self.root, indices)


def split_indices(indices: Sequence[int], val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0) -> tuple[list[int], list[int]]:
    """Deterministic (train, val) split of sample indices: same inputs and seed, same split.

    At least one validation sample when there are two or more samples and val_fraction > 0.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    ordered = sorted(indices)
    n_val = int(round(len(ordered) * val_fraction))
    if val_fraction > 0 and len(ordered) >= 2:
        n_val = max(n_val, 1)
    order = np.random.default_rng(seed).permutation(len(ordered))
    val = sorted(ordered[i] for i in order[:n_val])
    val_set = set(val)
    return [i for i in ordered if i not in val_set], val


def train_val_datasets(
    root: str | Path, val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0
) -> tuple[PositionMapDataset, PositionMapDataset | None]:
    """The training and held-out validation datasets of `root` (validation is None when val_fraction is 0)."""
    full = PositionMapDataset(root)
    train, val = split_indices(full.indices, val_fraction, seed)
    if not train:
        raise PrnetInputError(f"{root}: only {len(full)} samples, nothing left to train on after the validation split")
    return full.subset(train), (full.subset(val) if val else None)
