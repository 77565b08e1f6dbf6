"""Which layers does INT8 hurt? Fake-quantize one group of convs at a time (the QAT simulation of ORT's QDQ
recipe, prnet.compress.qat) and measure how far the landmarks move from the FP32 model's, in pixels.

    rows = int8_sensitivity(deployed, forward_loop, val_batches, layout)   # worst first

Groups are the deployment form's blocks (stem, encoder.i, decoder.j). The worst ones are the candidates for
`--keep-float` (or for QAT); the budget search keeps decoder stages float from the output backwards.
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np
from torch import nn

from prnet.compress.evaluate import predict_landmarks, torch_maps
from prnet.compress.int8 import Int8Config
from prnet.compress.qat import quantizable_convs, wrap


def block_of(name: str) -> str:
    """'decoder.12.phases.3.1' -> 'decoder.12'; 'stem.1' -> 'stem'."""
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] in ("encoder", "decoder") and len(parts) > 1 else parts[0]


def int8_sensitivity(deployed: nn.Module, forward_loop: Callable, val_batches: list, layout,
                     config: Int8Config | None = None, log: Callable[[str], None] = lambda line: None) -> list[dict]:
    config = config or Int8Config()
    reference = predict_landmarks(torch_maps(deployed), val_batches, layout)
    groups: dict[str, list[str]] = {}
    for name in quantizable_convs(deployed, config):
        groups.setdefault(block_of(name), []).append(name)
    rows = []
    for group, names in groups.items():
        model = wrap(copy.deepcopy(deployed), names, config.activations, forward_loop)
        moved = predict_landmarks(torch_maps(model), val_batches, layout)
        deviation = float(np.linalg.norm(moved[..., :2] - reference[..., :2], axis=-1).mean())
        rows.append({"group": group, "convs": len(names), "landmark_deviation_px": deviation})
        log(f"{group}: {len(names)} convs, landmarks move {deviation:.3f} px")
    return sorted(rows, key=lambda row: -row["landmark_deviation_px"])
