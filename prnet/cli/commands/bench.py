"""`prnet bench`: latency, size, memory and accuracy of every model variant on every runtime, in one table."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer

from prnet.cli.errors import exit_with_error


def bench_command(
    model: Optional[List[Path]] = typer.Option(
        None, "--model", help="A model to benchmark (repeat for several): a checkpoint from `prnet train`, one from "
        "`prnet compress` (its float and INT8 forms) or an exported artifact; each becomes rows beside the FP32 "
        "reference. Default: the built-in model and its built-in variants."),
    reference_model: Optional[Path] = typer.Option(
        None, "--reference-model", help="The FP32 checkpoint the --model rows are compared with (default: the "
        "first plain checkpoint given, else the one a compressed model was made from, else the built-in model)."),
    variants: Optional[str] = typer.Option(
        None, "--variants", help="Comma-separated built-in variants, e.g. fp32,fp16,int8,svd-no-finetune,svd-no-finetune+int8 (default: all; only fp32 beside other --model files)."),
    backends: Optional[str] = typer.Option(
        None, "--backends",
        help="Comma-separated runtimes, e.g. torch,onnxruntime,openvino,executorch,tensorrt,coreml (default: all; a format name such as onnx is taken for its runtime)."),
    compressed: Optional[Path] = typer.Option(
        None, "--compressed",
        help="A `prnet compress` output (DIR or its model.pt): adds rows compressed and compressed+int8."),
    data: Optional[Path] = typer.Option(
        None, "--data", help="Dataset directory in prnet's format; default: built-in synthetic validation set."),
    samples: int = typer.Option(32, "--samples", help="How many samples accuracy is measured on."),
    threads: int = typer.Option(
        os.cpu_count() or 1, "--threads", help="Threads every runtime is pinned to (reported)."),
    batch: int = typer.Option(8, "--batch", help="Batch size B of the throughput measurement."),
    iters: int = typer.Option(30, "--iters", help="Timed batch-1 calls per row (after warm-up)."),
    warmup: int = typer.Option(3, "--warmup", help="Untimed calls per row before timing."),
    rounds: int = typer.Option(5, "--rounds", help="Interleaved rounds the timed calls are spread over."),
    device: str = typer.Option(
        "cpu", "--device", help="Device of the torch rows: cpu, cuda or auto (the other runtimes use their CPU path)."),
    reference: str = typer.Option("fp32/torch", "--reference", help="Row that deltas and deviations compare to."),
    speed_baseline: str = typer.Option(
        "fp32/onnxruntime", "--speed-baseline", help="Row that speedups are relative to (else the reference row)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory (default: runs/bench/<timestamp>)."),
) -> None:
    """Benchmark model variants x backends: status, size, params, MACs, latency p50/p90/p99, throughput,
    memory, NME (68-point 2D/3D, dense) and deviation from FP32; writes JSON, Markdown and a latency-vs-NME plot."""
    from rich.console import Console

    from prnet.io import PrnetInputError

    console = Console(stderr=True)
    _quiet_third_party_warnings()
    for name, value in (("--threads", threads), ("--batch", batch), ("--iters", iters), ("--rounds", rounds)):
        if value < 1:
            console.print(f"[red]{name} must be at least 1, got {value}[/red]")
            raise typer.Exit(2)
    try:
        from prnet.bench.api import benchmark
        from prnet.bench.core import BenchSettings
        settings = BenchSettings(threads=threads, batch=batch, iters=iters, warmup=max(0, warmup), rounds=rounds,
                                 reference=reference, speed_baseline=speed_baseline, device=device)
        from prnet.default_model import default_model_path

        models = list(model) if model else default_model_path()  # bare `prnet bench`: the default model's variants
        report, written = benchmark(models, variants, backends, data, samples, settings, out,
                                    compressed=compressed, reference=reference_model,
                                    log=lambda message: console.print(message, style="dim", highlight=False, markup=False))
    except PrnetInputError as err:
        exit_with_error(err)
    for kind, path in written.items():
        console.print(f"{kind}: {path}", highlight=False)
    if not any(row["status"] == "ok" for row in report["rows"]):
        console.print("[red]no row ran: see the reasons above[/red]")
        raise typer.Exit(1)


def _quiet_third_party_warnings() -> None:
    """The exporters' libraries print pages of deprecation and missing-GPU-kernel warnings that say nothing
    about the benchmark (torch.onnx constant folding, torchao's CUDA kernels, pytree deprecations)."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*Constant folding.*")
    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
