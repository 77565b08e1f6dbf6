"""`export_model(format, checkpoint)`: deployment form -> artifact -> parity against FP32 PyTorch -> result.

The artifact is written to a temporary name beside the target, checked (validator, parity on real inputs,
latency), and only then moved into place, so a failed or out-of-tolerance export never leaves a file under
the final name (unless `keep_on_mismatch`).
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from prnet.export.formats import TOLERANCES_PX, ExportResult, ParityError, get_format, resolve
from prnet.export.metadata import metadata_for
from prnet.export.parity import deviation_px, parity_images
from prnet.io import PrnetInputError, atomic_path, size_on_disk
from prnet.timing import median_ms


def load_source(model: Any) -> tuple[Any, str]:
    """A LoadedModel (model, config, layout) from a checkpoint path, or one given directly, and its name.
    The reference runs on the CPU in FP32: a model elsewhere is copied there, never moved."""
    import torch

    if isinstance(model, (str, os.PathLike)):
        from prnet.checkpoint import load_model

        return load_model(Path(model), map_location="cpu"), str(model)
    if not all(hasattr(model, a) for a in ("model", "config", "layout")):
        raise TypeError("model must be a checkpoint path or a LoadedModel (with .model, .config, .layout)")
    param = next(model.model.parameters())
    if param.device.type != "cpu" or param.dtype != torch.float32:  # leave the caller's (GPU/half) model alone
        model = copy.copy(model)
        model.model = copy.deepcopy(model.model).float().cpu()
    return model, f"<in-memory {model.config.name}>"


def default_output(source: str, config_name: str, suffix: str, precision: str) -> Path:
    tag = "" if precision == "fp32" else f"-{precision}"
    base = Path(source) if not source.startswith("<") else Path.cwd() / config_name
    return base.parent / f"{base.stem}{tag}{suffix}"


@contextlib.contextmanager
def eval_mode(module: Any) -> Iterator[Any]:
    """The reference runs in eval mode; the caller's module gets its mode back."""
    was_training = module.training
    try:
        yield module.eval()
    finally:
        module.train(was_training)


def check_tolerance(result: ExportResult) -> None:
    max_tol, mean_tol = result.tolerance_px
    if result.max_deviation_px > max_tol or result.mean_deviation_px > mean_tol:
        raise ParityError(
            f"{result.format} ({result.precision}) output differs from FP32 PyTorch by max "
            f"{result.max_deviation_px:.4g} px / mean {result.mean_deviation_px:.4g} px on {result.parity_inputs}; "
            f"tolerance is max {max_tol:g} / mean {mean_tol:g} px"
        )


def export_model(
    format_name: str,
    model: Any,
    out: str | os.PathLike | None = None,
    *,
    precision: str | None = None,
    options: dict[str, Any] | None = None,
    data: str | os.PathLike | None = None,
    parity_count: int = 8,
    tolerance_px: tuple[float, float] | None = None,
    check_parity: bool = True,
    keep_on_mismatch: bool = False,
    latency_runs: int = 10,
    upsample: str = "phases",
    runner_options: dict[str, Any] | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> ExportResult:
    """Export `model` (checkpoint path or LoadedModel) to `format_name`; raise ParityError above tolerance,
    ExportUnavailable when the format's packages/hardware/OS are missing."""
    from prnet.export.deploy import to_deployment

    spec = get_format(format_name)
    if spec.exporter is None:
        raise PrnetInputError(f"{spec.name} is a source format, nothing to export")
    spec.check_exportable()
    start = time.perf_counter()
    loaded, source = load_source(model)
    compressed = getattr(loaded, "compression", None) is not None
    precision = precision or compressed_precision(loaded, spec) or spec.precisions[0]
    if precision not in spec.precisions:
        raise PrnetInputError(f"{spec.name} supports precisions {', '.join(spec.precisions)}, not {precision!r}")
    options = {**(options or {}), "precision": precision, "upsample": upsample}
    out = Path(out) if out is not None else default_output(source, loaded.config.name, spec.suffix, precision)
    result = ExportResult(format=spec.name, path=out, precision=precision,
                          tolerance_px=tolerance_px or TOLERANCES_PX[precision])
    # a compressed checkpoint is already the deployment form (with its SVD pairs): exported as it is
    deployed = loaded.model if compressed else to_deployment(loaded.model, upsample=upsample)
    with contextlib.ExitStack() as stack:
        if compressed:
            result.notes += keep_compression(loaded, spec.name, precision, options, data, stack)
        metadata = metadata_for(loaded, spec.name, precision, {k: v for k, v in options.items() if _plain(v)}, source)
        log(f"exporting {source} to {spec.name} ({precision})")
        with eval_mode(loaded.model), atomic_path(out, suffix=spec.suffix) as tmp:
            _export_and_check(spec, deployed, tmp, metadata, options, loaded, result, data, parity_count,
                              check_parity, keep_on_mismatch, latency_runs, runner_options, out)
    result.size_bytes = size_on_disk(out)
    result.seconds = time.perf_counter() - start
    return result


def compressed_precision(loaded: Any, spec: Any) -> str | None:
    """The precision that keeps a compressed checkpoint's INT8 in `spec`'s format (None: the format's default)."""
    if getattr(loaded, "int8_onnx", None) is None:
        return None
    return "int8" if "int8" in spec.precisions else None


def keep_compression(loaded: Any, format_name: str, precision: str, options: dict[str, Any], data: Any,
                     stack: contextlib.ExitStack) -> list[str]:
    """Options that carry a compressed checkpoint's INT8 into `format_name`: its QDQ model (ONNX, OpenVINO,
    TensorRT), int8 weights (Core ML), XNNPACK INT8 calibrated on the parity inputs (ExecuTorch).
    The SVD ranks need nothing: the module exported is the factorized one."""
    import tempfile

    notes = [f"compressed checkpoint: {loaded.describe()}"]
    qdq = loaded.int8_onnx
    if qdq is None:
        return notes
    if precision == "int8" and format_name in ("onnx", "openvino", "tensorrt") and not options.get("onnx"):
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="prnet-int8-")))
        (folder / "model.int8.onnx").write_bytes(qdq)
        options["onnx"] = str(folder / "model.int8.onnx")
        if format_name == "tensorrt" and (loaded.compression.get("settings", {}).get("int8") or {}).get(
                "activations") == "u8":
            notes.append("the INT8 model has u8 activations (made for CPUs); for TensorRT compress with "
                         "--int8-target tensorrt")
    elif precision == "int8" and format_name == "executorch" and options.get("quantize") is None:
        from prnet.export.executorch_export import xnnpack_int8_hook

        images, where = parity_images(data, 32, loaded.config.input_size)
        options["quantize"] = xnnpack_int8_hook(images)
        notes.append(f"XNNPACK INT8 (PT2E) calibrated on {where}")
    elif format_name == "coreml" and options.get("weights", "none") == "none":
        options["weights"] = "int8"
        notes.append("int8 weights (linear_quantize_weights); 8-bit activations need calibration by running "
                     "the model, which coremltools does only on macOS: not applied")
    elif precision != "int8":
        notes.append(f"{format_name} has no INT8 path here: exported in {precision}")
    return notes


def _export_and_check(spec, deployed, tmp, metadata, options, loaded, result, data, parity_count, check_parity,
                      keep_on_mismatch, latency_runs, runner_options, out) -> None:
    """Write the artifact to `tmp`, validate it, and compare it with the PyTorch model (raises ParityError)."""
    from prnet.runner import TorchRunner

    result.notes += resolve(spec.exporter)(deployed, tmp, metadata, options) or []
    if spec.validator:
        result.notes.append(f"validated: {resolve(spec.validator)(tmp)}")
    cannot_run = spec.can_run_here()
    if cannot_run or not check_parity:
        result.notes.append(f"parity not checked: {cannot_run or 'disabled'}")
    else:
        runner = resolve(spec.runner)(tmp, **(runner_options or {}))
        images, result.parity_inputs = parity_images(data, parity_count, loaded.config.input_size)
        reference = TorchRunner.from_module(loaded.model, loaded.layout, loaded.config.input_size,
                                            getattr(loaded, "output_scale", loaded.config.output_scale),
                                            device="cpu", name="torch:fp32")
        # face pixels only, as prnet bench and prnet compress measure: the map outside the face mask is never
        # trained (loss weight 0) nor read (landmarks, mesh), and INT8 moves it by tens of pixels (docs/compress.md)
        face = loaded.layout.face_mask
        result.max_deviation_px, result.mean_deviation_px = deviation_px(runner(images)[:, face], reference(images)[:, face])
        result.latency_ms = median_ms(lambda: runner(images[:1]), latency_runs)  # batch 1, after one warm-up
        del runner  # release files (Windows) and runtime memory before the move
        try:
            check_tolerance(result)
        except ParityError as err:
            if not keep_on_mismatch:
                raise ParityError(f"{err}; nothing written to {out}") from None
            result.status = "parity-failed"
            result.notes.append(str(err))


def _plain(value: Any) -> bool:
    """Options that go into the metadata JSON (callables such as quantizer hooks do not)."""
    return isinstance(value, (str, int, float, bool, type(None), list, tuple))
