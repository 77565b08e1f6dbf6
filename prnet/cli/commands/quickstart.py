"""`prnet quickstart`: thin CLI over prnet.cli.quickstart.run.run_quickstart (heavy imports inside the function)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from prnet.cli.errors import exit_with_error


def quickstart_command(
    out: Path = typer.Option(Path("runs/quickstart"), "--out", help="Output directory: data, train, compress, export, bench, report.md/json."),
    fast: bool = typer.Option(False, "--fast", help="Reduced path for CI: a tiny 64 px model from scratch, a few steps, small settings (minutes)."),
    skip: List[str] = typer.Option([], "--skip", help="Skip a stage (repeatable): data, train, compress, export, bench. Later stages use what exists (OUT/data, the start model)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Checkpoint to fine-tune (default: the built-in model; without one, cpu-small from scratch)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the synthetic data, the split and training."),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads for every runtime (0: measure whether 1 or all cores is faster now; on a busy machine 1 often is)."),
) -> None:
    """Run the whole mission on built-in defaults in at most 15 minutes on 2 CPU cores: synthetic data, a short
    training run, compression (INT8, SVD+INT8), export (ONNX, OpenVINO, Core ML, ExecuTorch; TensorRT reported),
    benchmark, and a final report listing every artifact. Exit 1 if any stage failed."""
    from rich.console import Console

    from prnet.io import PrnetInputError

    console = Console(soft_wrap=True)
    try:
        from prnet.cli.quickstart.run import make_config, run_quickstart

        skipped = tuple(s.strip() for item in skip for s in item.split(",") if s.strip())
        config = make_config(fast, out=out, skip=skipped, model=model, seed=seed, threads=threads)
        report = run_quickstart(config, console)
    except PrnetInputError as err:
        exit_with_error(err)
    if not report["ok"]:
        console.print(f"[red]failed stages: {', '.join(report['failed_stages'])}[/red] (see {report['files']['markdown']})")
        raise typer.Exit(1)
