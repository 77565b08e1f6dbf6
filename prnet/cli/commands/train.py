"""`prnet train`: thin CLI over prnet.train.loop.train (heavy imports stay inside the function)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from prnet.cli.errors import exit_with_error


def train_command(
    data: Optional[str] = typer.Option(None, "--data", help="Dataset directory in prnet's format, or 'synth' for on-the-fly synthetic faces."),
    preset: Optional[str] = typer.Option(None, "--preset", help="full (GPU, the paper's recipe), cpu-small (minutes on 2 CPU cores), cpu-tiny (smoke test)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory (config, metrics, TensorBoard, checkpoints). Default runs/prnet."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Checkpoint to continue exactly from, or 'auto' for the latest in --out. Other options then default to the checkpoint's."),
    init: Optional[str] = typer.Option(None, "--init", help="Start from this checkpoint's weights (e.g. the released default model) with a fresh optimizer and schedule; any input size."),
    model: Optional[str] = typer.Option(None, "--model", help="Model name: prnet, prnet-half, prnet-quarter."),
    input_size: Optional[int] = typer.Option(None, "--input-size", help="Network input (and position map) size in pixels."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Global batch size (split over DDP processes)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Total optimizer steps."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N."),
    precision: Optional[str] = typer.Option(None, "--precision", help="auto (bf16 on CUDA and on CPUs with native bf16, else fp32), fp32, bf16, fp16 (CUDA only)."),
    compile: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="torch.compile the model."),
    workers: Optional[int] = typer.Option(None, "--workers", help="DataLoader worker processes per training process."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads per process (0: torch's default)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of weights, data order and augmentation."),
    augment: Optional[str] = typer.Option(None, "--augment", help="default (tame), paper (the paper's ranges) or none."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Show the progress bar."),
    assignments: List[str] = typer.Option([], "--set", help="Any other TrainConfig field: --set eval_every=500 --set augment.rotation_deg=10."),
) -> None:
    """Train PRNet: checkpoints (last N + best by validation 68-point NME), TensorBoard, exact --resume, DDP under torchrun."""
    import dataclasses

    from rich.console import Console

    from prnet.io import PrnetInputError

    console = Console(stderr=True)
    try:
        from prnet.train.augment import AugmentConfig
        from prnet.train.config import make_config, parse_assignments
        from prnet.train.loop import TrainingDiverged, resume_config, train

        overrides = dict(data=data, out_dir=str(out) if out else None, init_from=init, model=model, input_size=input_size,
                         batch_size=batch_size, max_steps=steps, lr=lr, device=device, precision=precision,
                         compile=compile, num_workers=workers, num_threads=threads, seed=seed, progress=progress)
        overrides.update(parse_assignments(assignments))
        if augment is not None:
            choices = {"default": AugmentConfig(), "paper": AugmentConfig.paper(), "none": AugmentConfig.none()}
            if augment not in choices:
                raise PrnetInputError(f"--augment {augment!r}: choose default, paper or none")
            # `--set augment.X=...` refines the chosen preset instead of being replaced by it
            overrides["augment"] = dataclasses.replace(choices[augment], **overrides.get("augment", {}))
        if resume is not None:
            config, checkpoint = resume_config(resume, preset, overrides)
        else:
            config, checkpoint = make_config(preset or "full", **overrides), None
        result = train(config, resume=checkpoint)
    except (PrnetInputError, TrainingDiverged) as err:
        exit_with_error(err)
    except KeyboardInterrupt:
        run_dir = config.out_dir if "config" in locals() else "the run directory"
        console.print(f"interrupted; continue with: prnet train --resume auto --out {escape(str(run_dir))}")
        raise typer.Exit(130)
    best = f"{100 * result.best_nme:.2f} %" if result.best_nme is not None else "n/a"
    if result.stopped_by:  # a clean stop: the checkpoint of the last finished step is on disk
        console.print(f"{result.stopped_by}: stopped at step {result.step} of {config.max_steps}, best val NME {best}; "
                      f"saved {escape(str(result.last_checkpoint))}; continue with: prnet train --resume "
                      f"{escape(str(result.last_checkpoint))}", soft_wrap=True)  # paths stay whole: copy and paste
        raise typer.Exit(stop_exit_code(result.stopped_by))
    console.print(f"done: step {result.step}, best val NME {best}, run {result.out_dir}")


def stop_exit_code(stopped_by: str) -> int:
    """128 + the signal's number, what a shell reports for a process that signal stopped (SIGINT 130, SIGTERM 143)."""
    import signal

    return 128 + int(signal.Signals[stopped_by]) if stopped_by in signal.Signals.__members__ else 143


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)
