"""Small models and checkpoints for the compression tests: prnet-quarter with BN statistics set from images,
so a random network produces varied (not saturated) position maps and compression errors are measurable."""

from __future__ import annotations

from pathlib import Path

import torch

from prnet.compress.measure import smooth_images, wake_batchnorm
from prnet.checkpoint import save_checkpoint
from prnet.data.format import read_layout
from prnet.model import create_model

torch.set_num_threads(1)  # the CPU is shared: one thread is faster than contended ones for these tiny models


def awake_model(size: int = 32, seed: int = 0, name: str = "prnet-quarter") -> torch.nn.Module:
    torch.manual_seed(seed)
    return wake_batchnorm(create_model(name, input_size=size), smooth_images(4, size, seed=seed))


def checkpoint_for(dataset: Path, path: Path, seed: int = 0) -> Path:
    layout = read_layout(dataset)
    save_checkpoint(path, awake_model(layout.size, seed), layout)
    return path
