"""The PRNet loss and on-device landmark readout (torch).

Loss: weighted MSE over the position map with the UV weight mask (16 landmarks / 4 eyes-nose-mouth / 3 rest of
the face / 0 outside). Maps are compared in the network's normalized units (pixels / output_scale), and the
weighted sum is divided by the sum of the weights, so the value is a mean squared error per face pixel and
channel whatever the layout: loss 1e-4 = 1 % of the output scale RMS (2.8 px at 256).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def weighted_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """pred, target (B, 3, S, S); weight (S, S). Returns a scalar (float32 even under autocast)."""
    squared = (pred.float() - target.float()).square()  # (B, 3, S, S)
    return (squared * weight).sum() / (weight.sum() * pred.shape[0] * pred.shape[1])


def landmarks_from_maps(maps: torch.Tensor, landmark_uv: torch.Tensor) -> torch.Tensor:
    """Bilinear readout of (B, 3, S, S) position maps at landmark_uv (K, 2) pixel coords (u col, v row) -> (B, K, 3).

    align_corners=True puts pixel centres at integer coordinates, the layouts' convention.
    """
    size = maps.shape[-1]
    grid = (landmark_uv.to(maps) / (size - 1) * 2 - 1).view(1, 1, -1, 2).expand(maps.shape[0], 1, -1, 2)
    sampled = F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=True)  # (B, 3, 1, K)
    return sampled[:, :, 0, :].transpose(1, 2)
