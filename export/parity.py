"""Inputs for parity checks, how far an exported model is from the FP32 PyTorch model, in pixels, and how far
it may be: tolerances derived from the arithmetic (float rounding, quantization steps), not tuned on one CPU."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from prnet.io import PrnetInputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if image.shape[:2] == (size, size):
        return image
    interpolation = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def _evenly_spaced(items: list, count: int) -> list:
    if len(items) <= count:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, count).round().astype(int)]


def procedural_images(count: int, size: int, seed: int = 0) -> np.ndarray:
    """(count, S, S, 3) float32 in [0, 1]: smooth colour fields + an ellipse + noise, quantized to 8 bits.

    A stand-in when no data is given: natural-image statistics matter for INT8/FP16, not for FP32 parity."""
    import cv2

    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        low = rng.random((4, 4, 3)).astype(np.float32)
        image = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
        centre = (int(size * rng.uniform(0.4, 0.6)), int(size * rng.uniform(0.4, 0.6)))
        axes = (int(size * rng.uniform(0.2, 0.3)), int(size * rng.uniform(0.28, 0.4)))
        cv2.ellipse(image, centre, axes, 0, 0, 360, tuple(float(v) for v in rng.uniform(0.3, 0.9, 3)), -1)
        image += rng.normal(0, 0.03, image.shape).astype(np.float32)
        images.append(np.round(np.clip(image, 0, 1) * 255) / 255)
    return np.stack(images).astype(np.float32)


def parity_images(source: str | Path | None, count: int, size: int) -> tuple[np.ndarray, str]:
    """(count, S, S, 3) float32 RGB in [0, 1] and a description of where they came from.

    `source`: a prnet dataset directory (manifest.json), a directory of images, one image, or None
    (procedural images)."""
    from prnet.io import read_image_rgb

    if source is None:
        return procedural_images(count, size), f"{count} procedural images (pass --data for real face crops)"
    source = Path(source)
    if (source / "manifest.json").is_file():
        from prnet.data.dataset import PositionMapDataset

        dataset = PositionMapDataset(source)
        picked = _evenly_spaced(list(range(len(dataset))), count)
        images = [_resize(dataset[i].image, size) for i in picked]
        description = f"{len(images)} crops of dataset {source}"
    elif source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise PrnetInputError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) and no manifest.json")
        images = [_resize(read_image_rgb(p), size) for p in _evenly_spaced(files, count)]
        description = f"{len(images)} images of {source}"
    elif source.is_file():
        images, description = [_resize(read_image_rgb(source), size)], f"image {source}"
    else:
        raise PrnetInputError(f"{source}: parity data not found (give a dataset directory, image folder or image)")
    return np.stack(images).astype(np.float32) / 255.0, description


def deviation_px(output: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(max, mean) absolute difference of two position-map batches, in pixels."""
    if output.shape != reference.shape:
        raise ValueError(f"output shape {output.shape} != reference shape {reference.shape}")
    diff = np.abs(output.astype(np.float64) - reference.astype(np.float64))
    if not np.isfinite(diff).all():
        return float("inf"), float("inf")
    return float(diff.max()), float(diff.mean())


# --- tolerances derived from the arithmetic -----------------------------------------------------------------------
FLOAT64_EPS = float(np.finfo(np.float64).eps)  # 2**-52
FLOAT32_EPS = float(np.finfo(np.float32).eps)  # 2**-23 = 1.19e-7
FLOAT16_EPS = float(np.finfo(np.float16).eps)  # 2**-10 = 9.8e-4
IMPLEMENTATIONS = 2.0  # |a - b| <= |a - exact| + |b - exact|: two implementations, each off by up to one bound
OUTPUT_ULPS = 4.0  # elementwise ops after the last reduction (BN affine, activation, * output_scale) round once each


@dataclass(frozen=True)
class Tolerance:
    """How far two outputs may be apart (max and mean |difference|, in output units) and why."""

    max: float
    mean: float
    reason: str


def reduction_depth(layer: Any) -> int:
    """Products summed per output value of a Conv2d / ConvTranspose2d / Linear (0 for other modules)."""
    from torch import nn

    if isinstance(layer, nn.ConvTranspose2d):  # each output phase sees 1/stride^2 of the kernel taps
        taps = layer.kernel_size[0] * layer.kernel_size[1] // (layer.stride[0] * layer.stride[1])
        return layer.in_channels // layer.groups * max(1, taps)
    if isinstance(layer, nn.Conv2d):
        return layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
    if isinstance(layer, nn.Linear):
        return layer.in_features
    return 0


def _root_sum_of_squared_terms(layer: Any, x: Any) -> Any:
    """sqrt(sum_i (w_i x_i)^2) for every output value of `layer` (the size of the terms a dot product sums)."""
    import torch.nn.functional as F
    from torch import nn

    w2, x2 = layer.weight.square(), x.square()
    if isinstance(layer, nn.ConvTranspose2d):
        s = F.conv_transpose2d(x2, w2, None, layer.stride, layer.padding, layer.output_padding, layer.groups,
                               layer.dilation)
    elif isinstance(layer, nn.Conv2d):
        s = layer._conv_forward(x2, w2, None)
    else:
        s = F.linear(x2, w2)
    return s.sqrt()


def _as_nchw_float64(images: Any, channels_last: bool) -> Any:
    import torch

    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images).double()
    return x.permute(0, 3, 1, 2).contiguous() if channels_last else x


def _probe(module: Any, images: Any, channels_last: bool, setup) -> tuple[np.ndarray, float]:
    """(|probe(x) - exact(x)|, max |exact(x)|) with a float64 copy of `module`; `setup(exact, probe, x)` installs
    the modelled errors on `probe`. The caller's module is not touched."""
    import torch

    exact = copy.deepcopy(module).double().eval()
    probe = copy.deepcopy(exact)
    x = _as_nchw_float64(images, channels_last)
    with torch.no_grad():
        setup(exact, probe, x)
        reference = exact(x)
        deviation = (probe(x) - reference).abs()
    return deviation.numpy(), float(reference.abs().max())


def rounding_tolerance(module: Any, images: Any, *, eps: float = FLOAT32_EPS, output_scale: float = 1.0,
                       channels_last: bool = False, seed: int = 0) -> Tolerance:
    """How far two implementations of `module` computing in floating point with machine epsilon `eps` (float32
    by default) may disagree on `images`, derived from the arithmetic, not measured on one CPU.

    Float rounding: a dot product of K terms t_i = w_i x_i summed in some order is off by about
    eps * sqrt(K) * sqrt(sum_i t_i^2) (a random walk of K roundings of partial sums; the order -- sequential,
    blocked, pairwise, FMA or not, AVX2 / AVX-512 / AMX / NEON -- only changes the constant, and sequential
    summation, the worst usual order, has this size). That is the textbook k * eps * sqrt(depth) * range,
    per layer, with the layer's own term sizes for "range". The network then amplifies or damps each layer's
    error (a random deep BN network is chaotic, a trained or damped one is contractive), so a fixed constant
    over the output range is either too loose for one network or too tight for another. Instead the error is
    propagated through the network itself: a float64 copy adds, after every Conv/ConvTranspose/Linear, an
    independent Gaussian error of that size to each output value, and the deviation from the exact float64 run
    is what one float implementation may be off by. Two implementations (PyTorch vs ONNX Runtime, OpenVINO,
    ExecuTorch, ...; or two CPUs) may each be off by that: the tolerance is IMPLEMENTATIONS (2) x (that
    deviation + OUTPUT_ULPS ulps of the largest output, for the elementwise ops after the last reduction).

    Measured on the test networks (Intel Xeon; ONNX Runtime, OpenVINO, ExecuTorch vs PyTorch; batch sizes):
    the real disagreement is 0.02-0.2 of this tolerance (libraries sum in blocks, which rounds less than a
    sequential sum); the AMD Zen 5 disagreement that failed a fixed 1e-3 px (1.09e-3 px, SVD+QAT model at 32 px)
    is 1/50 of it for that model (0.054 px: a barely trained, strongly amplifying network). A real bug -- a wrong
    pad or tap, swapped channels, a wrong rank, a 1 % scale, a one-pixel shift -- is an O(1e-3..1) relative
    error, hundreds to tens of thousands of times this tolerance on a damped PRNet (tests/test_export_parity.py).

    `images`: NCHW (or NHWC with channels_last=True); `output_scale` multiplies the module's output (PRNet's
    sigmoid output -> pixels). `eps`: FLOAT32_EPS, FLOAT16_EPS for fp16 compute, FLOAT64_EPS for float64."""
    import torch

    generator = torch.Generator().manual_seed(seed)

    def add_rounding(layer, inputs, output):
        noise = torch.randn(output.shape, generator=generator, dtype=output.dtype)
        return output + noise * (eps * math.sqrt(reduction_depth(layer))) * _root_sum_of_squared_terms(layer, inputs[0])

    def setup(exact, probe, x):
        for layer in probe.modules():
            if reduction_depth(layer):
                layer.register_forward_hook(add_rounding)

    deviation, largest = _probe(module, images, channels_last, setup)
    floor = OUTPUT_ULPS * eps * largest
    return Tolerance(max=IMPLEMENTATIONS * (float(deviation.max()) + floor) * output_scale,
                     mean=IMPLEMENTATIONS * (float(deviation.mean()) + floor) * output_scale,
                     reason=f"float rounding (eps {eps:.3g}) propagated through the network, x{IMPLEMENTATIONS:g}")


def quantization_tolerance(module: Any, images: Any, calibration: Any, quantized: Iterable[str], *,
                           activations: str = "u8", output_scale: float = 1.0, channels_last: bool = False,
                           seed: int = 0) -> Tolerance:
    """How far an INT8 model (8-bit activations per tensor, s8 weights per output channel, min/max calibrated on
    `calibration`) may be from the float `module` on `images`, derived from the quantization steps.

    Rounding to a grid of step q is an error uniform in [-q/2, q/2]. For every quantized layer (names in
    `quantized`) the input and the output activation have step (max(hi, 0) - min(lo, 0)) / 255 ("u8" or any
    asymmetric 8-bit grid: it holds 0) or max(|lo|, |hi|) / 127 ("s8", symmetric) over their calibration range
    [lo, hi], and every weight of output channel c has step max|w_c| / 127. A float64 copy of `module` adds
    independent uniform errors of those sizes to the inputs, weights and outputs of the quantized layers; its
    deviation from the exact run is the quantization error propagated through the network. The real rounding is one deterministic draw of errors of that size (plus a
    calibration that may clip a little differently): the tolerance is IMPLEMENTATIONS (2) x that deviation
    (max and mean), plus the float32 rounding tolerance of the float layers."""
    import torch

    quantized = set(quantized)
    generator = torch.Generator().manual_seed(seed)
    steps: dict[str, float] = {}

    def setup(exact, probe, x):
        ranges: dict[str, list[float]] = {}

        def widen(key, tensor):
            lo, hi = ranges.setdefault(key, [math.inf, -math.inf])
            ranges[key] = [min(lo, float(tensor.min())), max(hi, float(tensor.max()))]

        def record(name):
            def hook(layer, inputs):
                widen(name, inputs[0])
            return hook

        def record_output(name):
            def hook(layer, inputs, output):
                widen(name + ":out", output)
            return hook

        layers = {name: layer for name, layer in exact.named_modules() if name in quantized}
        missing = quantized - set(layers)
        if missing:
            raise KeyError(f"not modules of the model: {sorted(missing)}")
        handles = [layer.register_forward_pre_hook(record(name)) for name, layer in layers.items()]
        handles += [layer.register_forward_hook(record_output(name)) for name, layer in layers.items()]
        exact(_as_nchw_float64(calibration, channels_last))
        for handle in handles:
            handle.remove()
        for name, (lo, hi) in ranges.items():
            steps[name] = (max(hi, 0.0) - min(lo, 0.0)) / 255 if activations == "u8" else max(-lo, hi) / 127

        def rounded(key, tensor):
            return tensor + (torch.rand(tensor.shape, generator=generator, dtype=tensor.dtype) - 0.5) * steps[key]

        def add_input_rounding(name):
            def hook(layer, inputs):
                return (rounded(name, inputs[0]),) + tuple(inputs[1:])
            return hook

        def add_output_rounding(name):
            def hook(layer, inputs, output):
                return rounded(name + ":out", output)
            return hook

        for name, layer in probe.named_modules():
            if name in quantized:
                w = layer.weight
                channel_dim = 1 if isinstance(layer, torch.nn.ConvTranspose2d) else 0
                step = w.abs().amax(dim=[d for d in range(w.dim()) if d != channel_dim], keepdim=True) / 127
                w.add_((torch.rand(w.shape, generator=generator, dtype=w.dtype) - 0.5) * step)
                layer.register_forward_pre_hook(add_input_rounding(name))
                layer.register_forward_hook(add_output_rounding(name))

    deviation, _ = _probe(module, images, channels_last, setup)
    float_part = rounding_tolerance(module, images, output_scale=output_scale, channels_last=channels_last, seed=seed)
    return Tolerance(max=IMPLEMENTATIONS * float(deviation.max()) * output_scale + float_part.max,
                     mean=IMPLEMENTATIONS * float(deviation.mean()) * output_scale + float_part.mean,
                     reason=f"INT8 steps of {len(quantized)} quantized layers propagated through the network, "
                            f"x{IMPLEMENTATIONS:g}")


def ulps_tolerance(reference: Any, ulps: float, eps: float = FLOAT32_EPS, *, reason: str) -> Tolerance:
    """`ulps` roundings of the largest |reference| value: for elementwise arithmetic (no reductions), where each
    rounding moves a value by at most eps/2 relative. Say which roundings in `reason`."""
    largest = float(np.max(np.abs(np.asarray(reference, np.float64)))) if np.size(reference) else 0.0
    bound = ulps * eps / 2 * largest
    return Tolerance(max=bound, mean=bound, reason=f"{ulps:g} float roundings: {reason}")


def pixel_budget(max_px: float, mean_px: float = math.inf, *, reason: str) -> Tolerance:
    """A stated budget in pixels, for comparisons the arithmetic does not bound (say why in `reason`)."""
    if not reason:
        raise ValueError("a pixel budget needs its reason")
    return Tolerance(max=max_px, mean=mean_px, reason=reason)


def check_deviation(max_dev: float, mean_dev: float | None, tolerance: Tolerance, what: str = "output") -> None:
    """Raise AssertionError when a (max, mean) deviation is above `tolerance` (or not finite)."""
    problems = []
    if not (math.isfinite(max_dev) and max_dev <= tolerance.max):
        problems.append(f"max {max_dev:.4g} > {tolerance.max:.4g}")
    if mean_dev is not None and not (math.isfinite(mean_dev) and mean_dev <= tolerance.mean):
        problems.append(f"mean {mean_dev:.4g} > {tolerance.mean:.4g}")
    if problems:
        raise AssertionError(f"{what}: deviation {', '.join(problems)} (tolerance: {tolerance.reason})")


def check_parity(output: Any, reference: Any, tolerance: Tolerance, what: str = "output") -> tuple[float, float]:
    """Compare two outputs (numpy arrays or tensors of one shape) within `tolerance`; return (max, mean) |diff|."""
    as_numpy = [x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x) for x in (output, reference)]
    max_dev, mean_dev = deviation_px(*as_numpy)
    check_deviation(max_dev, mean_dev, tolerance, what)
    return max_dev, mean_dev
