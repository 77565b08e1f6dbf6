"""`prnet eval`: NME of any model on a prnet dataset or AFLW2000-3D, with yaw bins, CED plot and JSON report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def eval_command(
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="Checkpoint (.pt) or exported model (default: the built-in model)."),
    data: Path = typer.Option(..., "--data", "-d", help="Dataset folder: prnet format (manifest.json) or AFLW2000-3D."),
    out: Path = typer.Option(Path("eval"), "--out", "-o", help="Folder for eval.json, ced.png, per_sample.csv."),
    limit: int = typer.Option(0, "--limit", help="Evaluate only the first N samples (0 = all)."),
    batch: int = typer.Option(16, "--batch", help="Batch size."),
    device: str = typer.Option("auto", "--device", help="PyTorch device: auto, cpu, cuda..."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for PyTorch and the face detector (0 = default)."),
    z_alignment: str = typer.Option("mean", "--z-alignment", help="3D NME: 'mean' centres z per face, 'none' keeps raw z."),
) -> None:
    """68-point NME (2D, 3D) normalized by the GT landmark box, per yaw bin and balanced; dense NME; per-landmark
    errors; cumulative error distribution (PNG); everything in eval.json."""
    from rich.console import Console

    from prnet.io import PrnetInputError

    console = Console(stderr=True)
    try:
        from prnet.commands.predict import open_runner, set_threads
        from prnet.evaluate import evaluate, write_report
        from prnet.metrics import Z_ALIGNMENTS

        if batch < 1 or limit < 0:
            raise PrnetInputError(f"--batch must be >= 1 and --limit >= 0 (got {batch}, {limit})")
        if z_alignment not in Z_ALIGNMENTS:
            raise PrnetInputError(f"--z-alignment {z_alignment!r}: choose one of {', '.join(Z_ALIGNMENTS)}")
        set_threads(threads)
        runner = open_runner(model, device)
        report, per_sample = evaluate(runner, data, limit=limit or None, batch_size=batch, z_alignment=z_alignment,
                                      progress=(lambda n: console.print(f"{n} samples", style="dim", end="\r"))
                                      if console.is_terminal else None)
        files = write_report(report, per_sample, out)
    except PrnetInputError as err:
        console.print(f"[red]error:[/red] {err}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    lines = [f"{report['model']} on {report['data']} ({report['format']}, {report['samples']} faces)"]
    for key in ("nme_2d", "nme_3d", "dense_nme_3d"):
        if report.get(key):
            s = report[key]
            bins = "  ".join(f"{name} {b['mean']:.2f}% (n={b['count']})" if b["mean"] is not None else f"{name} -"
                             for name, b in s["bins"].items())
            lines.append(f"{key}: mean {s['mean']:.2f}%  balanced {s['balanced_mean']:.2f}%  {bins}")
    typer.echo("\n".join(lines))
    for kind, path in files.items():
        console.print(f"{kind}: {path}", highlight=False, soft_wrap=True)
