"""`prnet eval`: NME of any model on a prnet dataset, AFLW2000-3D or annotated photos (68-point .pts/.ljson),
with yaw bins, CED plot and JSON report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from prnet.cli.commands.predict import TTA_HELP
from prnet.cli.errors import exit_with_error


def eval_command(
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="Checkpoint (.pt) or exported model (default: the built-in model)."),
    data: Path = typer.Option(..., "--data", "-d", help="Dataset folder: prnet format (manifest.json), AFLW2000-3D, or "
                              "photos with 68-point iBUG .pts / menpo .ljson files (300-W, iBUG, menpo layout)."),
    out: Path = typer.Option(Path("eval"), "--out", "-o", help="Folder for eval.json, ced.png, per_sample.csv."),
    limit: int = typer.Option(0, "--limit", help="Evaluate only the first N samples (0 = all)."),
    batch: int = typer.Option(16, "--batch", help="Batch size."),
    device: str = typer.Option("auto", "--device", help="PyTorch device: auto, cpu, cuda..."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for PyTorch and the face detector (0 = default)."),
    z_alignment: str = typer.Option("mean", "--z-alignment", help="3D NME: 'mean' centres z per face, 'none' keeps raw z."),
    crop: str = typer.Option("detector", "--crop", help="Photos: 'detector' (yuface, as `prnet predict` crops) or 'gt' "
                             "(PRNet's evaluation crop, 1.6x the ground-truth landmark box)."),
    refine: bool = typer.Option(True, "--refine/--no-refine", help="Photos with --crop detector: second pass cropped "
                                "from the first pass's landmarks (as `prnet predict` does)."),
    tta: str = typer.Option("none", "--tta", help=TTA_HELP),
) -> None:
    """68-point NME (2D, 3D) normalized by the GT landmark box, per yaw bin and balanced; dense NME; per-landmark
    errors; cumulative error distribution (PNG); everything in eval.json. Also the 51 inner points (no jaw).
    On annotated photos (2D ground truth): 2D NMEs only, one row per face, faces the detector missed listed."""
    from rich.console import Console

    from prnet.io import PrnetInputError

    console = Console(stderr=True)
    try:
        from prnet.cli.commands.predict import open_runner, set_threads
        from prnet.evaluate import PHOTO_CROPS, evaluate, write_report
        from prnet.metrics import Z_ALIGNMENTS

        if batch < 1 or limit < 0:
            raise PrnetInputError(f"--batch must be >= 1 and --limit >= 0 (got {batch}, {limit})")
        if z_alignment not in Z_ALIGNMENTS:
            raise PrnetInputError(f"--z-alignment {z_alignment!r}: choose one of {', '.join(Z_ALIGNMENTS)}")
        if crop not in PHOTO_CROPS:
            raise PrnetInputError(f"--crop {crop!r}: choose one of {', '.join(PHOTO_CROPS)}")
        set_threads(threads)
        runner = open_runner(model, device, tta)
        report, per_sample = evaluate(runner, data, limit=limit or None, batch_size=batch, z_alignment=z_alignment,
                                      crop=crop, refine=refine,
                                      progress=(lambda n: console.print(f"{n} samples", style="dim", end="\r"))
                                      if console.is_terminal else None)
        files = write_report(report, per_sample, out)
    except PrnetInputError as err:
        exit_with_error(err)
    lines = [f"{report['model']} on {report['data']} ({report['format']}, {report['samples']} faces)"]
    for key in ("nme_2d", "nme_2d_inner", "nme_3d", "dense_nme_3d"):
        if report.get(key):
            s = report[key]
            bins = "  ".join(f"{name} {b['mean']:.2f}% (n={b['count']})" if b["mean"] is not None else f"{name} -"
                             for name, b in s["bins"].items())
            lines.append(f"{key}: mean {s['mean']:.2f}%  balanced {s['balanced_mean']:.2f}%  {bins}")
    if report["format"] == "photos":
        lines.append(f"crop: {report['crop']}; {report['samples']} of {report['faces_total']} faces evaluated")
        lines += [f"  {f['name']}: nme_2d {f['nme_2d']:.2f}%  inner-51 {f['nme_2d_inner']:.2f}%  yaw {f['yaw']:.0f}"
                  for f in report["faces"][:50]]
        if len(report["faces"]) > 50:
            lines.append(f"  ... {len(report['faces']) - 50} more in eval.json")
        lines += [f"  no face detected: {f['image']}" for f in report["not_detected"]]
    typer.echo("\n".join(lines))
    for kind, path in files.items():
        console.print(f"{kind}: {path}", highlight=False, soft_wrap=True)
