"""Tiny layouts, runners and checkpoints for the predict/eval tests (fast: 64 px prnet-quarter)."""

from __future__ import annotations

import numpy as np
import torch

from prnet.layout import UVLayout
from prnet.layout import disk_layout as toy_disk_layout

torch.set_num_threads(1)  # the test machine's 2 cores are shared; tiny models gain nothing from threads


def disk_layout(size: int = 64, name: str = "test-predict-disk") -> UVLayout:
    """A disk-shaped face in UV space, 68 landmarks on two rings, weight 3 on the face, triangles covering the
    face pixels (prnet.layout.disk_layout without the weight accents, with the full mesh)."""
    return toy_disk_layout(size, name, accents=False, full_mesh=True)


def tiny_runner(size: int = 64, seed: int = 0):
    """A random prnet-quarter TorchRunner at `size` px with the disk layout (CPU)."""
    from prnet.checkpoint import LoadedModel
    from prnet.model import create_model
    from prnet.runner import TorchRunner

    torch.manual_seed(seed)
    model = create_model("prnet-quarter", input_size=size).eval()
    return TorchRunner(LoadedModel(model=model, config=model.config, layout=disk_layout(size)), device="cpu")


def tiny_checkpoint(path, size: int = 64, seed: int = 0):
    """Save a random prnet-quarter checkpoint (disk layout) to `path` and return the path."""
    from prnet.checkpoint import save_checkpoint
    from prnet.model import create_model

    torch.manual_seed(seed)
    save_checkpoint(path, create_model("prnet-quarter", input_size=size), disk_layout(size))
    return path


class BlobOracle:
    """A 'model' that finds the bright blob in its crop (intensity centroid, crop pixels) and returns a
    position map whose centre pixel sits exactly on it: tests crop -> runner -> uncrop through real pixels."""

    def __init__(self, size: int = 64):
        self.name, self.input_size, self.layout = "blob-oracle", size, disk_layout(size)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        s = self.input_size
        c = (s - 1) / 2
        vv, uu = np.mgrid[0:s, 0:s].astype(np.float64)
        maps = []
        for image in images:
            weight = image[..., 0].astype(np.float64)
            cx, cy = (weight * uu).sum() / weight.sum(), (weight * vv).sum() / weight.sum()
            maps.append(np.stack([cx + (uu - c) * 0.5, cy + (vv - c) * 0.5, np.full_like(uu, 10.0)], -1))
        return np.stack(maps).astype(np.float32)


def make_eval_dataset(root, n: int = 6, size: int = 64, seed: int = 0):
    """A prnet-format dataset whose posmaps are smooth random faces; landmarks read from the maps at the
    layout's landmark UVs (so a runner returning the GT map scores exactly 0). Returns (root, {image bytes: map})."""
    from prnet.data.format import Manifest, create_dataset, write_sample
    from prnet.geometry.posmap import bilinear_sample

    layout = disk_layout(size)
    manifest = create_dataset(root, layout, Manifest(image_size=size, layout_id=layout.layout_id, image_ext=".png",
                                                     map_encoding="float32"))
    rng = np.random.default_rng(seed)
    vv, uu = np.mgrid[0:size, 0:size].astype(np.float32)
    truth = {}
    for index in range(n):
        scale, shift = rng.uniform(0.5, 0.9), rng.uniform(-5, 5, 2)
        posmap = np.stack([(uu - size / 2) * scale + size / 2 + shift[0], (vv - size / 2) * scale * 1.1 + size / 2 + shift[1],
                           10 + 5 * np.sin(uu / 9) * np.cos(vv / 7)], -1).astype(np.float32)
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        landmarks = bilinear_sample(posmap, layout.landmark_uv)
        params = {"pose": {"yaw": float([10, 45, 80][index % 3])}}
        write_sample(root, manifest, index, image, posmap, landmarks, params)
        truth[image.tobytes()] = posmap
    return root, truth


class TruthRunner:
    """Returns the ground-truth map of each (known) input crop, plus an optional constant offset (pixels)."""

    def __init__(self, truth: dict, size: int = 64, offset=(0.0, 0.0, 0.0)):
        self.name, self.input_size, self.layout = "truth", size, disk_layout(size)
        self.truth, self.offset = truth, np.asarray(offset, np.float32)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        keys = [np.round(image * 255).astype(np.uint8).tobytes() for image in images]
        return np.stack([self.truth[k] + self.offset for k in keys]).astype(np.float32)
