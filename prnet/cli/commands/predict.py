"""`prnet predict`: landmarks, dense 3D faces, head pose and pictures for your photos, folders and videos."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from prnet.cli.errors import exit_with_error

TTA_HELP = "Test-time augmentation: none, or flip (each crop also runs mirrored, the two maps averaged: 2x the time)."


def open_runner(model: Optional[Path], device: str = "auto", tta: str = "none"):
    """prnet.export.runners.load_runner for --model (default: the default model) inside --tta's wrapper, with a
    runtime that cannot run here (e.g. a TensorRT engine without a GPU) as a clear input error."""
    from prnet.export.formats import ExportUnavailable
    from prnet.export.runners import load_runner
    from prnet.io import PrnetInputError
    from prnet.runner import check_tta, with_tta

    check_tta(tta)  # before loading the model: a typo should not cost a model load
    try:
        return with_tta(load_runner(model, device=device), tta)
    except ExportUnavailable as err:
        raise PrnetInputError(str(err)) from err


def set_threads(threads: int) -> None:
    """Pin PyTorch's CPU threads (the yuface detector shares its OpenMP pool); 0 keeps the default."""
    from prnet.io import PrnetInputError

    if threads < 0:
        raise PrnetInputError(f"--threads must be >= 0, got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)


def predict_command(
    sources: List[Path] = typer.Argument(..., help="Images, videos or folders of them (several in one call)."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="Checkpoint (.pt) or exported model (default: the built-in model)."),
    out: Path = typer.Option(Path("predictions"), "--out", "-o", help="Output folder."),
    bbox: Optional[List[str]] = typer.Option(
        None, "--bbox", help="Face box 'left,top,right,bottom' in pixels instead of the detector (repeat for several "
        "faces; applies to every input). Cropped with PRNet's dlib factors (1.58x, shifted down 0.14)."),
    device: str = typer.Option("auto", "--device", help="PyTorch device: auto, cpu, cuda, cuda:1..."),
    min_score: float = typer.Option(0.5, "--min-score", help="Face detector confidence threshold (0-1)."),
    max_faces: int = typer.Option(0, "--max-faces", help="Keep the N largest faces (0 = all)."),
    refine: bool = typer.Option(True, "--refine/--no-refine", help="Second pass cropped from the first pass's landmarks."),
    obj: bool = typer.Option(True, "--obj/--no-obj", help="Write a coloured .obj mesh per face."),
    pictures: bool = typer.Option(True, "--pictures/--no-pictures", help="Write landmark, dense and mesh pictures."),
    redetect_every: int = typer.Option(
        15, "--redetect-every", help="Videos: run the detector every N frames (and on the frame after a face's track degrades)."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for PyTorch and the face detector (0 = default)."),
    tta: str = typer.Option("none", "--tta", help=TTA_HELP),
) -> None:
    """Detect faces, reconstruct them with PRNet and write landmarks (2D/3D JSON), dense vertices, .obj meshes,
    head pose and pictures (videos: an annotated video and per-frame landmarks). Exit code 2 if any file failed."""
    from rich.console import Console

    from prnet.io import PrnetInputError

    console = Console(stderr=True)
    try:
        from prnet.predict.detect import parse_bbox
        from prnet.predict.io import PredictOptions, predict_paths

        if redetect_every < 1:
            raise PrnetInputError(f"--redetect-every must be at least 1, got {redetect_every}")
        options = PredictOptions(
            boxes=[parse_bbox(b) for b in bbox] if bbox else None, refine=refine, min_score=min_score,
            max_faces=max_faces or None, write_obj=obj, write_pictures=pictures, redetect_every=redetect_every,
        )
        set_threads(threads)
        runner = open_runner(model, device, tta)

        def report(path: Path, summary) -> None:
            if summary.failures and summary.failures[-1][0] == str(path):
                console.print(f"[red]failed[/red] {summary.failures[-1][1]}", highlight=False, soft_wrap=True)
                return
            record = summary.results[-1]
            if "frames_total" in record:
                console.print(f"ok {path}: {record['frames_total']} frames at {record['fps_processing']} frames/s", highlight=False, soft_wrap=True)
            else:
                console.print(f"ok {path}: {len(record['faces'])} face(s)", highlight=False, soft_wrap=True)

        summary = predict_paths(sources, runner, out, options, progress=report)
    except PrnetInputError as err:
        exit_with_error(err)
    console.print(f"{len(summary.results)} file(s) written to {out} with {runner.name}; {len(summary.failures)} failed",
                  highlight=False, soft_wrap=True)
    if summary.failures:
        raise typer.Exit(2)
