"""Checkpoints for the export tests: the small registered model with non-trivial BatchNorm statistics."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from prnet.checkpoint import load_model, save_checkpoint
from prnet.export.parity import FLOAT32_EPS, Tolerance, procedural_images, rounding_tolerance
from prnet.model import create_model
from tests.train_fixtures import tiny_layout


def randomize_batchnorm(model: nn.Module, images: torch.Tensor, seed: int = 0, damping: float = 1.0) -> nn.Module:
    """Non-trivial BN, like a trained model's: random (also negative) scales and shifts, running statistics
    measured on `images` (far from mean 0 / variance 1), variances multiplied by `damping`.

    A random deep BN network is chaotic (Yang et al. 2019): at damping 1 even the FP32 PRNet differs from its
    own FP64 run by ~0.02 px, and the float32 parity tolerance (prnet.export.parity.rounding_tolerance, which
    propagates rounding through the network) grows with it; FP32 checks use a damped (contractive) network,
    whose tolerance is ~5e-4 px at 128 px; exactness of the rewrite itself is checked in FP64."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        batchnorms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        for bn in batchnorms:
            n = bn.num_features
            sign = torch.where(torch.rand(n, generator=generator) < 0.2, -1.0, 1.0)
            bn.weight.copy_(torch.empty(n).uniform_(0.5, 1.5, generator=generator) * sign)
            bn.bias.copy_(torch.empty(n).uniform_(-0.3, 0.3, generator=generator))
            bn.momentum = None  # cumulative average: the running stats become the batch statistics
            bn.reset_running_stats()
        model.train()
        model(images)
        for bn in batchnorms:
            bn.running_var.mul_(damping)
            bn.momentum = model.config.bn_momentum if hasattr(model, "config") else 0.1
    return model.eval()


def make_checkpoint(path: Path, name: str = "prnet-quarter", input_size: int = 128, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = create_model(name, input_size=input_size)
    randomize_batchnorm(model, torch.rand(4, 3, input_size, input_size), seed=seed, damping=2.0)
    save_checkpoint(path, model, tiny_layout(input_size))
    return path


def export_tolerance(checkpoint: Path, images=None, eps: float = FLOAT32_EPS, parity_count: int = 8) -> Tolerance:
    """The parity tolerance of `checkpoint`'s model on NHWC `images` (default: the procedural images
    export_model checks parity on, `parity_count` of them), for arithmetic with machine epsilon `eps`, in pixels."""
    loaded = load_model(checkpoint)
    if images is None:
        images = procedural_images(parity_count, loaded.config.input_size)
    return rounding_tolerance(loaded.model, images, eps=eps, output_scale=loaded.config.output_scale,
                              channels_last=True)
