"""Runners: anything that turns face crops into position maps. predict, eval and bench take any Runner.

The contract (every backend implements it; `prnet.export.runners` adds ONNX Runtime, OpenVINO, ExecuTorch...):

    runner.name        str, e.g. "torch:prnet-quarter@cpu"
    runner.input_size  int S, crops are S x S
    runner.layout      UVLayout, how to read the position maps
    runner(images)     (B, S, S, 3) float32 RGB in [0, 1]  ->  (B, S, S, 3) float32 position maps in crop pixels

`TorchRunner` runs a PyTorch PRNet from a checkpoint path or a `prnet.checkpoint.LoadedModel`, batched,
under `torch.inference_mode`, on CUDA when available (or the device you name).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from prnet.io import PrnetInputError
from prnet.layout import UVLayout


@runtime_checkable
class Runner(Protocol):
    name: str
    input_size: int
    layout: UVLayout

    def __call__(self, images: np.ndarray) -> np.ndarray: ...


def check_runner_input(images: np.ndarray, input_size: int) -> np.ndarray:
    """Validate a runner's input batch and return it as contiguous float32 (B, S, S, 3)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != (input_size, input_size, 3):
        raise ValueError(f"runner input must be (B, {input_size}, {input_size}, 3) RGB, got {images.shape}")
    return np.ascontiguousarray(images, dtype=np.float32)


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'. Any torch device string passes through."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PrnetInputError(f"device {device!r} requested but no CUDA GPU is visible; use --device cpu")
    return device


class TorchRunner:
    """A PyTorch PRNet (or any module with the same input/output) behind the Runner interface.

    `source`: a checkpoint path or a LoadedModel (anything with .model, .config, .layout). The module outputs
    maps in [0, 1]; they are multiplied by `output_scale` (config.output_scale by default; pass 1.0 for a
    deployment-form module that already outputs pixels).
    """

    def __init__(
        self,
        source: str | os.PathLike | Any,
        device: str = "auto",
        batch_size: int = 16,
        output_scale: float | None = None,
        name: str | None = None,
    ):
        if isinstance(source, (str, os.PathLike)):
            from prnet.checkpoint import load_model

            loaded = load_model(Path(source), map_location="cpu")
            default_name = f"torch:{Path(source).name}"
            if loaded.compression is not None:
                default_name += f" ({loaded.describe()}; its INT8 runs in the exported ONNX/OpenVINO models)" \
                    if loaded.int8_onnx is not None else f" ({loaded.describe()})"
        else:
            loaded = source
            default_name = f"torch:{getattr(loaded.config, 'name', 'model')}"
        self._setup(loaded.model, loaded.layout, int(loaded.config.input_size),
                    float(getattr(loaded, "output_scale", loaded.config.output_scale) if output_scale is None
                          else output_scale),
                    device, batch_size, name or default_name)

    @classmethod
    def from_module(
        cls,
        module: Any,
        layout: UVLayout,
        input_size: int,
        output_scale: float,
        device: str = "auto",
        batch_size: int = 16,
        name: str = "torch:module",
    ) -> "TorchRunner":
        """Wrap a bare nn.Module (e.g. a compressed or deployment-form model) without a checkpoint."""
        runner = cls.__new__(cls)
        runner._setup(module, layout, int(input_size), float(output_scale), device, batch_size, name)
        return runner

    def _setup(self, module, layout, input_size, output_scale, device, batch_size, name) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = resolve_device(device)
        self.module = module.to(self.device).eval()
        self.layout = layout
        self.input_size = input_size
        self.output_scale = output_scale
        self.batch_size = batch_size
        self.name = f"{name}@{self.device}"

    def __call__(self, images: np.ndarray) -> np.ndarray:
        import torch

        images = check_runner_input(images, self.input_size)
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = torch.from_numpy(images[start : start + self.batch_size]).to(self.device)
                maps = self.module(batch.permute(0, 3, 1, 2).contiguous())  # (b, 3, S, S)
                maps = maps.float().permute(0, 2, 3, 1) * self.output_scale  # (b, S, S, 3) crop pixels
                outputs.append(maps.cpu().numpy())
        if not outputs:
            return np.zeros((0, self.input_size, self.input_size, 3), np.float32)
        return np.concatenate(outputs).astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"TorchRunner(name={self.name!r}, input_size={self.input_size}, layout={self.layout.name!r})"


class FlipRunner:
    """Test-time flip averaging around any Runner: each crop also runs mirrored left-right, that map is carried
    back to the unflipped crop through the layout's dense mirror correspondence (`flip_posmap`: pixel p takes
    the mirrored position of its partner's point, so the UV labels stay right; a plain flip of the UV grid
    would swap the face's halves) and the two maps are averaged. Twice the network time per crop.

    Why: the model's errors are partly odd under a mirror (a pose or shape bias one way), and those cancel in
    the mean. Needs the project's own UV layout (its mirror map comes from the packaged mesh).
    """

    def __init__(self, inner: Runner):
        from prnet.geometry.mirror import layout_mirror

        self.inner = inner
        self.input_size = inner.input_size
        self.layout = inner.layout
        self.name = f"{inner.name} +flip"
        self.mirror = layout_mirror(inner.layout, use="--tta flip", fix="run this model with --tta none").mirror
        if self.mirror.shape[0] != self.input_size:
            raise PrnetInputError(f"--tta flip: the model's position maps ({self.mirror.shape[0]} px) must be as "
                                  f"large as its input ({self.input_size} px); run it with --tta none")

    def __call__(self, images: np.ndarray) -> np.ndarray:
        from prnet.geometry.mirror import flip_posmap

        images = check_runner_input(images, self.input_size)
        count = len(images)
        if not count:
            return np.zeros((0, self.input_size, self.input_size, 3), np.float32)
        maps = self.inner(np.concatenate([images, images[:, :, ::-1]]))  # (2B, S, S, 3): crops, then mirrored
        back = np.stack([flip_posmap(mirrored, self.mirror, self.input_size) for mirrored in maps[count:]])
        return ((maps[:count] + back) / 2).astype(np.float32)

    def __repr__(self) -> str:
        return f"FlipRunner({self.inner!r})"


TTA_MODES = ("none", "flip")


def check_tta(tta: str) -> str:
    """`tta` if it is one of TTA_MODES, else an input error (callers check before loading a model)."""
    if tta not in TTA_MODES:
        raise PrnetInputError(f"--tta must be one of {', '.join(TTA_MODES)}, got {tta!r}")
    return tta


def with_tta(runner: Runner, tta: str = "none") -> Runner:
    """`runner` as is ('none') or inside a FlipRunner ('flip'); anything else is an input error."""
    return FlipRunner(runner) if check_tta(tta) == "flip" else runner
