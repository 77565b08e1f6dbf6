"""`prnet data synth` (write a synthetic dataset) and `prnet data show` (contact sheet of any dataset).

Thin Typer commands over prnet.data.synth.generate.generate_dataset and prnet.data.synth.sheet.show_dataset.
"""

from __future__ import annotations

from pathlib import Path

import typer

from prnet.cli.errors import exit_with_error


def synth_command(
    out: Path = typer.Option(..., "--out", help="Dataset directory (created, or resumed if it exists)."),
    n: int = typer.Option(1000, "--n", min=0, help="Number of samples (indices 0..n-1)."),
    seed: int = typer.Option(0, "--seed", help="Seed: sample i depends only on (seed, i)."),
    workers: int = typer.Option(2, "--workers", min=1, help="Worker processes (the output is identical for any)."),
    occlusion_rate: float = typer.Option(0.45, "--occlusion-rate", min=0.0, max=1.0, help="Faces with occluders."),
    expression_rate: float = typer.Option(0.7, "--expression-rate", min=0.0, max=1.0, help="Non-neutral faces."),
    clean: bool = typer.Option(False, "--clean", help="No degradations (blur, noise, JPEG, colour jitter)."),
    repair: bool = typer.Option(False, "--repair", help="Regenerate damaged samples found while resuming."),
    generator: int | None = typer.Option(
        None, "--generator", min=1,
        help="Generator version (default: the newest for a new pool, the pool's own when resuming; 1 reproduces "
             "pools and evaluation sets made before version 2)."),
) -> None:
    """Render synthetic faces at 300W-LP-like poses with their position maps, landmarks and parameters."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.progress import TimeRemainingColumn

    from prnet.data.synth.generate import generate_dataset
    from prnet.data.synth.render import SynthConfig
    from prnet.io import PrnetInputError

    console = Console(soft_wrap=True)
    try:
        config = SynthConfig(expression_rate=expression_rate, occlusion_rate=occlusion_rate, degrade=not clean,
                             version=generator)
    except ValueError as err:
        exit_with_error(err)
    columns = (TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("synth", total=None, rate="")
            started = {}

            def on_progress(done: int, total: int) -> None:
                import time

                started.setdefault("t", time.perf_counter())
                elapsed = time.perf_counter() - started["t"]
                rate = f"{(done - 1) / elapsed:.1f} samples/s" if elapsed > 0 and done > 1 else ""
                progress.update(task, completed=done, total=total, rate=rate)

            report = generate_dataset(out, n, seed=seed, workers=workers, config=config, repair=repair,
                                      on_progress=on_progress)
    except PrnetInputError as err:
        exit_with_error(err)
    if report.removed_temporaries:
        console.print(f"removed {report.removed_temporaries} temporary file(s) of an interrupted run")
    line = f"{report.out}: {report.written} written, {report.skipped} already complete"
    if report.repaired:
        line += f", {report.repaired} repaired"
    if report.written:
        line += (f"; {report.samples_per_second:.1f} samples/s with {workers} worker(s), "
                 f"{report.bytes_per_sample / 1024:.0f} KiB per sample on disk")
    console.print(line, highlight=False)


def show_command(
    root: Path = typer.Argument(..., help="Dataset directory (the project format)."),
    out: Path = typer.Option(Path("sheet.jpg"), "--out", help="Contact sheet image (.jpg or .png)."),
    count: int = typer.Option(32, "--count", min=1, help="How many random samples."),
    seed: int = typer.Option(0, "--seed", help="Which random samples."),
    tile: int = typer.Option(192, "--tile", min=32, help="Tile size in pixels."),
    columns: int = typer.Option(4, "--columns", min=1, help="Samples per row."),
) -> None:
    """Contact sheet: each sample as stored, with landmarks + position-map wireframe, and the map as colour."""
    from prnet.data.synth.sheet import show_dataset
    from prnet.io import PrnetInputError

    try:
        path, shown = show_dataset(root, out, count=count, seed=seed, tile=tile, columns=columns)
    except PrnetInputError as err:
        exit_with_error(err)
    typer.echo(f"wrote {path} ({len(shown)} samples: {shown[:8]}{' ...' if len(shown) > 8 else ''})")


def video_command(
    out: Path = typer.Option(Path("head_turn.mp4"), "--out", help="Video file (.mp4); its ground truth goes to "
                             "STEM_gt.json beside it."),
    seed: int = typer.Option(777015, "--seed", help="The face (identity, skin, light, background); 777015: no "
                             "training pool uses it."),
    size: int = typer.Option(320, "--size", min=64, help="Frame side in pixels."),
    still: int = typer.Option(60, "--still", min=0, help="Frames of a still head first (for jitter)."),
    turn: int = typer.Option(180, "--turn", min=0, help="Frames of the head turning left and right while moving."),
    cycles: float = typer.Option(2.0, "--cycles", min=0.0, help="Left-right turns in the turning part."),
    yaw: float = typer.Option(70.0, "--yaw", min=0.0, max=90.0, help="Largest yaw of the turn, degrees."),
    fps: float = typer.Option(30.0, "--fps", min=1.0, help="Frame rate written into the file."),
) -> None:
    """A synthetic video with exact landmarks per frame: a still head, then a head turning left and right while
    it moves across the frame (the tracker test of `prnet predict VIDEO`)."""
    from prnet.data.synth.video import VideoConfig, ground_truth_path, write_video

    if still + turn < 1:
        exit_with_error(ValueError("--still + --turn must be at least 1 frame"))
    config = VideoConfig(seed=seed, size=size, fps=fps, still_frames=still, turn_frames=turn, cycles=cycles,
                         yaw_amplitude=yaw)
    try:
        write_video(out, config, log=lambda line: typer.echo(line))
    except RuntimeError as err:
        exit_with_error(err)
    typer.echo(f"{out}: {config.frames} frames, {size}x{size} px; ground truth: {ground_truth_path(out)}")
