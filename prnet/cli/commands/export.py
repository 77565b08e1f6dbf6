"""`prnet export <format>`: a checkpoint to ONNX, OpenVINO, Core ML, ExecuTorch, TFLite or TensorRT, verified.

Thin commands: they parse options and call `prnet.export.api.export_model`, which writes the deployment form
(BN folded, transposed convs as plain convs, output in pixels) atomically, checks it against the FP32
PyTorch model on real inputs and reports size, deviation in pixels, latency and path.
Exit codes: 0 ok, 1 parity above tolerance or the export failed, 2 bad input, 3 runtime/GPU/OS missing.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator, List, Optional

import typer

from prnet.cli.errors import exit_with_error

export_app = typer.Typer(
    help="Export a checkpoint to deployment runtimes, verified against the FP32 PyTorch model.",
    no_args_is_help=True,
)

MODEL = typer.Option(None, "--model", "-m", help="PRNet checkpoint (.pt) from `prnet train` or `prnet compress` "
                     "(its SVD ranks and INT8 are kept); default: the built-in model.")
OUT = typer.Option(None, "--out", "-o", help="Output path (default: next to the checkpoint).")
DATA = typer.Option(None, "--data", help="Real inputs for the parity check (and INT8 calibration): a prnet "
                    "dataset directory, an image folder or an image. Default: procedural images.")
PARITY_IMAGES = typer.Option(8, "--parity-images", help="How many images the parity check uses.")
TOLERANCE = typer.Option(None, "--tolerance", help="Max |diff| in pixels allowed (default per precision: fp32 "
                         "0.05, fp16 4, int8 16; mean 1/10 of it).")
NO_PARITY = typer.Option(False, "--no-parity", help="Skip the parity check (not recommended).")
KEEP = typer.Option(False, "--keep-on-mismatch", help="Keep the artifact even when parity fails (exit code 1).")
LATENCY_RUNS = typer.Option(10, "--latency-runs", help="Batch-1 runs for the latency median (0: skip).")
UPSAMPLE = typer.Option("phases", "--upsample", help="Stride-2 transposed-conv rewrite: phases (Reshape/Transpose "
                        "interleave, default), phases_d2s or conv3x3 (one conv + DepthToSpace).")


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Known failures -> a red message and a distinct exit code; anything else is a bug and keeps its traceback."""
    from prnet.export.formats import ExportUnavailable, ParityError
    from prnet.io import PrnetInputError

    try:
        yield
    except PrnetInputError as err:
        exit_with_error(err)
    except ExportUnavailable as err:
        exit_with_error(err, code=3, label="unavailable")
    except ParityError as err:
        exit_with_error(err, code=1, label="parity check failed")


def quiet_library_warnings() -> None:
    """torch/executorch/coremltools deprecation chatter says nothing about the user's export."""
    import warnings

    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)


def print_results(results: list[Any]) -> None:
    from rich.console import Console

    from prnet.report import fmt, mb, rich_table

    table = rich_table("prnet export", ("format", "precision", "status", "MB", "max px", "mean px", "ms"),
                       right=("MB", "max px", "mean px", "ms"))
    for r in results:
        colour = {"ok": "green", "unavailable": "yellow"}.get(r.status, "red")
        table.add_row(r.format, r.precision, f"[{colour}]{r.status}[/{colour}]", mb(r.size_bytes),
                      fmt(r.max_deviation_px, ".2g"), fmt(r.mean_deviation_px, ".2g"), fmt(r.latency_ms, ".1f"))
    console = Console()
    console.print(table)
    console.print("max/mean px: |output - FP32 PyTorch| in crop pixels over the face pixels; ms: median batch-1 latency on this machine")
    for r in results:
        lines = [f"wrote {r.path}"] if r.path is not None and r.status in ("ok", "parity-failed") else []
        lines += ([f"parity inputs: {r.parity_inputs}"] if r.parity_inputs else []) + r.notes
        for line in lines:
            console.print(f"  {r.format}: {line}", highlight=False, soft_wrap=True)


def run_export(format_name: str, model: Optional[Path], out: Optional[Path], precision: Optional[str], options: dict[str, Any],
               data: Optional[Path], parity_images: int, tolerance: Optional[float], no_parity: bool, keep: bool,
               latency_runs: int, upsample: str) -> None:
    from prnet.default_model import resolve_model
    from prnet.export.api import export_model

    quiet_library_warnings()
    with cli_errors():
        model = resolve_model(model)
        result = export_model(
            format_name, model, out, precision=precision, options=options, data=data, parity_count=parity_images,
            tolerance_px=None if tolerance is None else (tolerance, tolerance / 10), check_parity=not no_parity,
            keep_on_mismatch=keep, latency_runs=latency_runs, upsample=upsample,
            log=lambda message: typer.echo(message, err=True),
        )
        print_results([result])
    if result.status != "ok":
        raise typer.Exit(1)


@export_app.command("onnx")
def onnx_command(
    model: Optional[Path] = MODEL, out: Optional[Path] = OUT,
    opset: int = typer.Option(17, "--opset", help="ONNX opset."),
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="Any batch size (default: fixed)."),
    batch_size: int = typer.Option(1, "--batch-size", help="The fixed batch size (without --dynamic-batch)."),
    fp16: bool = typer.Option(False, "--fp16", help="FP16 weights and compute (inputs/outputs stay float32)."),
    simplify: bool = typer.Option(True, "--simplify/--no-simplify", help="Simplify the graph with onnxslim."),
    dynamo: bool = typer.Option(False, "--dynamo", help="Use the torch.export-based ONNX exporter."),
    data: Optional[Path] = DATA, parity_images: int = PARITY_IMAGES, tolerance: Optional[float] = TOLERANCE,
    no_parity: bool = NO_PARITY, keep_on_mismatch: bool = KEEP, latency_runs: int = LATENCY_RUNS,
    upsample: str = UPSAMPLE,
) -> None:
    """ONNX (one file, metadata embedded, checker run), verified with ONNX Runtime."""
    options = dict(opset=opset, dynamic_batch=dynamic_batch, batch_size=batch_size, simplify=simplify, dynamo=dynamo)
    run_export("onnx", model, out, "fp16" if fp16 else None, options, data, parity_images, tolerance, no_parity,
               keep_on_mismatch, latency_runs, upsample)


@export_app.command("openvino")
def openvino_command(
    model: Optional[Path] = MODEL, out: Optional[Path] = OUT,
    precision: Optional[str] = typer.Option(None, "--precision", "-p", help="fp32 (default), fp16 (weights) or "
                                            "int8 (a `prnet compress --int8` checkpoint: its default; or --onnx)."),
    onnx: Optional[Path] = typer.Option(None, "--onnx", help="Convert this ONNX (e.g. a QDQ INT8 model from "
                                        "`prnet compress`) instead of the checkpoint; --model is the reference."),
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="Any batch size (default: fixed)."),
    data: Optional[Path] = DATA, parity_images: int = PARITY_IMAGES, tolerance: Optional[float] = TOLERANCE,
    no_parity: bool = NO_PARITY, keep_on_mismatch: bool = KEEP, latency_runs: int = LATENCY_RUNS,
    upsample: str = UPSAMPLE,
) -> None:
    """OpenVINO IR directory (model.xml + model.bin), verified with the OpenVINO CPU runtime."""
    options = dict(onnx=str(onnx) if onnx else None, dynamic_batch=dynamic_batch)
    run_export("openvino", model, out, precision, options, data, parity_images, tolerance, no_parity,
               keep_on_mismatch, latency_runs, upsample)


@export_app.command("coreml")
def coreml_command(
    model: Optional[Path] = MODEL, out: Optional[Path] = OUT,
    fp32: bool = typer.Option(False, "--fp32", help="FP32 compute (default FP16)."),
    weights: str = typer.Option("none", "--weights", help="Weight compression: none, int8, palettize4, "
                                "palettize6, palettize8."),
    tensor_input: bool = typer.Option(False, "--tensor-input", help="A float tensor input instead of an image."),
    target: str = typer.Option("iOS16", "--target", help="Minimum deployment target (coremltools ct.target name)."),
    data: Optional[Path] = DATA, parity_images: int = PARITY_IMAGES, tolerance: Optional[float] = TOLERANCE,
    no_parity: bool = NO_PARITY, keep_on_mismatch: bool = KEEP, latency_runs: int = LATENCY_RUNS,
    upsample: str = UPSAMPLE,
) -> None:
    """Core ML mlprogram (.mlpackage), image input scaled by 1/255. The saved package is validated everywhere;
    predictions are compared with PyTorch on macOS only (coremltools cannot predict elsewhere)."""
    options = dict(weights=weights, image_input=not tensor_input, deployment_target=target)
    run_export("coreml", model, out, "fp32" if fp32 else "fp16", options, data, parity_images, tolerance,
               no_parity, keep_on_mismatch, latency_runs, upsample)


@export_app.command("executorch")
def executorch_command(
    model: Optional[Path] = MODEL, out: Optional[Path] = OUT,
    int8: bool = typer.Option(False, "--int8", help="PT2E INT8 (XNNPACK quantizer), calibrated on --data."),
    quantizer: str = typer.Option("prnet.export.executorch_export:xnnpack_int8_hook", "--quantizer",
                                  help="With --int8: 'module:factory', factory(calibration_images) -> hook."),
    calibration_images: int = typer.Option(32, "--calibration-images", help="Images used for INT8 calibration."),
    data: Optional[Path] = DATA, parity_images: int = PARITY_IMAGES, tolerance: Optional[float] = TOLERANCE,
    no_parity: bool = NO_PARITY, keep_on_mismatch: bool = KEEP, latency_runs: int = LATENCY_RUNS,
    upsample: str = UPSAMPLE,
) -> None:
    """ExecuTorch .pte with the XNNPACK delegate (FP32, or INT8 through a PT2E quantizer hook)."""
    options: dict[str, Any] = {}
    if int8:
        with cli_errors():
            options["quantize"] = calibration_hook(quantizer, data, calibration_images, model)
    run_export("executorch", model, out, "int8" if int8 else None, options, data, parity_images, tolerance,
               no_parity, keep_on_mismatch, latency_runs, upsample)


def calibration_hook(factory: str, data: Optional[Path], count: int, model: Path) -> Any:
    from prnet.export.formats import resolve
    from prnet.export.parity import parity_images
    from prnet.checkpoint import load_model

    from prnet.default_model import resolve_model

    images, _ = parity_images(data, count, load_model(resolve_model(model)).config.input_size)
    return resolve(factory)(images)


@export_app.command("tensorrt")
def tensorrt_command(
    model: Optional[Path] = MODEL, out: Optional[Path] = OUT,
    precision: Optional[str] = typer.Option(None, "--precision", "-p", help="fp16 (default), fp32 or int8 (QDQ "
                                            "--onnx, a `prnet compress --int8` checkpoint's (its default), or "
                                            "calibration on --data)."),
    onnx: Optional[Path] = typer.Option(None, "--onnx", help="Build from this ONNX (e.g. a QDQ INT8 model)."),
    batch: str = typer.Option("1,1,1", "--batch", help="Optimization profile min,opt,max batch (max > 1: dynamic)."),
    workspace: float = typer.Option(4.0, "--workspace", help="Builder workspace in GiB."),
    calibration_images: int = typer.Option(64, "--calibration-images", help="INT8 calibration images."),
    data: Optional[Path] = DATA, parity_images: int = PARITY_IMAGES, tolerance: Optional[float] = TOLERANCE,
    no_parity: bool = NO_PARITY, keep_on_mismatch: bool = KEEP, latency_runs: int = LATENCY_RUNS,
    upsample: str = UPSAMPLE,
) -> None:
    """TensorRT engine (NVIDIA GPU + tensorrt package required; exits 3 saying what is missing otherwise)."""
    from prnet.io import PrnetInputError

    with cli_errors():
        try:
            profile = tuple(int(v) for v in batch.split(","))
        except ValueError:
            profile = ()
        if len(profile) != 3:
            raise PrnetInputError(f"--batch must be three integers min,opt,max, got {batch!r}")
        options: dict[str, Any] = dict(onnx=str(onnx) if onnx else None, batch=profile, workspace_gib=workspace)
        from prnet.export.tensorrt_export import require_tensorrt

        require_tensorrt()
        if precision == "int8" and onnx is None:
            from prnet.export.parity import parity_images as load_images
            from prnet.checkpoint import load_model

            from prnet.default_model import resolve_model

            options["calibration_images"], _ = load_images(data, calibration_images,
                                                           load_model(resolve_model(model)).config.input_size)
    run_export("tensorrt", model, out, precision, options, data, parity_images, tolerance, no_parity,
               keep_on_mismatch, latency_runs, upsample)


@export_app.command("tflite")
def tflite_command(
    model: Optional[Path] = MODEL, out: Optional[Path] = OUT,
    data: Optional[Path] = DATA, parity_images: int = PARITY_IMAGES, tolerance: Optional[float] = TOLERANCE,
    no_parity: bool = NO_PARITY, keep_on_mismatch: bool = KEEP, latency_runs: int = LATENCY_RUNS,
    upsample: str = UPSAMPLE,
) -> None:
    """TFLite / LiteRT FP32 flatbuffer via litert-torch (install it in its own venv: see export/tflite_export.py)."""
    run_export("tflite", model, out, "fp32", {}, data, parity_images, tolerance, no_parity, keep_on_mismatch,
               latency_runs, upsample)


@export_app.command("all")
def all_command(
    model: Optional[Path] = MODEL,
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Directory for the artifacts (default: next "
                                           "to the checkpoint)."),
    formats: Optional[List[str]] = typer.Option(None, "--format", "-f", help="Only these formats (repeat)."),
    data: Optional[Path] = DATA, parity_images: int = PARITY_IMAGES, latency_runs: int = LATENCY_RUNS,
) -> None:
    """Every format at its default precision, one table row each: failures and missing runtimes are reported,
    not hidden. Exit 1 if any export failed (a missing runtime alone is not a failure)."""
    from prnet.export.api import export_model
    from prnet.export.formats import FORMATS, ExportResult, ExportUnavailable, ParityError, get_format
    from prnet.io import PrnetInputError

    from prnet.default_model import resolve_model

    quiet_library_warnings()
    with cli_errors():
        model = resolve_model(model)
    names = formats or [spec.name for spec in FORMATS if spec.exporter is not None]
    results = []
    for name in names:
        with cli_errors():
            spec = get_format(name) if name in {s.name for s in FORMATS} else None
            if spec is None:
                raise PrnetInputError(f"unknown format {name!r}; known: {', '.join(s.name for s in FORMATS)}")
        out = None if out_dir is None else out_dir / f"{model.stem}{spec.suffix}"
        try:
            results.append(export_model(name, model, out, data=data, parity_count=parity_images,
                                        latency_runs=latency_runs))
        except ExportUnavailable as err:
            results.append(ExportResult(format=name, precision=spec.precisions[0], status="unavailable",
                                        notes=[str(err)]))
        except (ParityError, PrnetInputError) as err:
            results.append(ExportResult(format=name, precision=spec.precisions[0], status="failed", notes=[str(err)]))
        except Exception as err:  # noqa: BLE001 - one broken exporter must not hide the other rows
            results.append(ExportResult(format=name, precision=spec.precisions[0], status="failed",
                                        notes=[f"{type(err).__name__}: {err}"]))
    print_results(results)
    if any(r.status not in ("ok", "unavailable") for r in results):
        raise typer.Exit(1)
