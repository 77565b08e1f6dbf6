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

from export.formats import TOLERANCES_PX, ExportResult, ParityError, get_format, resolve
from export.metadata import metadata_for
from export.parity import deviation_px, median_latency_ms, parity_images
from prnet.io import PrnetInputError, atomic_path


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


def artifact_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


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
    from export.deploy import to_deployment
    from prnet.runner import TorchRunner

    spec = get_format(format_name)
    if spec.exporter is None:
        raise PrnetInputError(f"{spec.name} is a source format, nothing to export")
    spec.check_exportable()
    precision = precision or spec.precisions[0]
    if precision not in spec.precisions:
        raise PrnetInputError(f"{spec.name} supports precisions {', '.join(spec.precisions)}, not {precision!r}")
    start = time.perf_counter()
    loaded, source = load_source(model)
    options = {**(options or {}), "precision": precision, "upsample": upsample}
    out = Path(out) if out is not None else default_output(source, loaded.config.name, spec.suffix, precision)
    result = ExportResult(format=spec.name, path=out, precision=precision,
                          tolerance_px=tolerance_px or TOLERANCES_PX[precision])
    deployed = to_deployment(loaded.model, upsample=upsample)
    metadata = metadata_for(loaded, spec.name, precision, {k: v for k, v in options.items() if _plain(v)}, source)
    log(f"exporting {source} to {spec.name} ({precision})")
    with eval_mode(loaded.model), atomic_path(out, suffix=spec.suffix) as tmp:
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
                                                loaded.config.output_scale, device="cpu", name="torch:fp32")
            result.max_deviation_px, result.mean_deviation_px = deviation_px(runner(images), reference(images))
            result.latency_ms = median_latency_ms(runner, images, latency_runs)
            del runner  # release files (Windows) and runtime memory before the move
            try:
                check_tolerance(result)
            except ParityError as err:
                if not keep_on_mismatch:
                    raise ParityError(f"{err}; nothing written to {out}") from None
                result.status = "parity-failed"
                result.notes.append(str(err))
    result.size_bytes = artifact_size(out)
    result.seconds = time.perf_counter() - start
    return result


def _plain(value: Any) -> bool:
    """Options that go into the metadata JSON (callables such as quantizer hooks do not)."""
    return isinstance(value, (str, int, float, bool, type(None), list, tuple))
