"""`prnet data 300wlp`, `prnet data folder`, `prnet data bfm-layout`: real datasets into the project format.

Thin Typer commands: they parse options and call prnet.data.w300lp / prnet.data.folder / prnet.data.bfm_layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from prnet.cli.errors import exit_with_error


def _print_report(report, what: str) -> None:
    from rich.console import Console

    console = Console()
    console.print(
        f"{what}: {report.written} written, {report.already_done} already done, "
        f"{len(report.failed)} skipped, {report.total} in total -> {report.out}",
        highlight=False,
    )
    for line in report.failed[:10]:
        console.print(f"  [yellow]skipped[/yellow] {line}", highlight=False)
    if len(report.failed) > 10:
        console.print(f"  ... {len(report.failed) - 10} more in {report.out / 'skipped.txt'}", highlight=False)


def w300lp_command(
    root: Path = typer.Option(..., "--root", help="The 300W_LP folder (<subset>/<name>.jpg + <name>.mat)."),
    bfm: Path = typer.Option(..., "--bfm", help="BFM.mat in face3d's format (struct `model`)."),
    out: Path = typer.Option(..., "--out", help="Output dataset directory (reopened to resume)."),
    bfm_uv: Optional[Path] = typer.Option(None, "--bfm-uv", help="BFM_UV.mat (needed for --layout bfm-uv)."),
    layout: str = typer.Option("bfm-uv", "--layout", help="UV layout: bfm-uv (PRNet's) or tutte (this project's)."),
    size: int = typer.Option(256, "--size", min=16, help="Crop and position-map resolution."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random crop perturbation (per-sample streams)."),
    perturb: bool = typer.Option(True, "--perturb/--no-perturb", help="Random box shift (+-10%) and scale (0.9-1.1)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes."),
    limit: Optional[int] = typer.Option(None, "--limit", min=0, help="Convert only the first N pairs (sorted)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="List unreadable samples in skipped.txt and go on."),
    float_maps: bool = typer.Option(False, "--float-maps", help="Store maps as float32 instead of uint16 fixed point."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Convert 300W-LP (3DDFA fits + the Basel Face Model) into position maps, as PRNet's training data."""
    from prnet.data.w300lp import CropConfig, convert_300wlp
    from prnet.io import PrnetInputError

    try:
        report = convert_300wlp(
            root, bfm, out, bfm_uv_path=bfm_uv, layout=layout, config=CropConfig(size=size, perturb=perturb),
            seed=seed, workers=workers, limit=limit, skip_bad=skip_bad,
            map_encoding="float32" if float_maps else "uint16-fixed", progress=progress,
        )
    except PrnetInputError as err:
        exit_with_error(err)
    _print_report(report, "300W-LP")


def folder_command(
    root: Path = typer.Option(..., "--root", help="Folder of <name>.jpg|png crops + <name>.npy position maps."),
    out: Path = typer.Option(..., "--out", help="Output dataset directory (reopened to resume)."),
    layout_file: Optional[Path] = typer.Option(None, "--layout-file", help="The maps' UV layout (.npz)."),
    bfm: Optional[Path] = typer.Option(None, "--bfm", help="BFM.mat, to build the bfm-uv layout (PRNet's maps)."),
    bfm_uv: Optional[Path] = typer.Option(None, "--bfm-uv", help="BFM_UV.mat, with --bfm."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="List unreadable pairs in skipped.txt and go on."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Load image + position-map .npy pairs (e.g. made with PRNet's code) into the project dataset format."""
    from prnet.data.folder import convert_folder, list_folder_pairs
    from prnet.io import PrnetInputError

    try:
        pairs = list_folder_pairs(root)  # fail on a bad folder before building a layout
        uv_layout = _layout_for_folder(layout_file, bfm, bfm_uv, pairs[0][1])
        report = convert_folder(root, out, uv_layout, skip_bad=skip_bad, progress=progress)
    except PrnetInputError as err:
        exit_with_error(err)
    _print_report(report, "folder")


def _layout_for_folder(layout_file, bfm, bfm_uv, first_map: Path):
    import numpy as np

    from prnet.io import PrnetInputError
    from prnet.layout import UVLayout

    if layout_file is not None:
        return UVLayout.load(layout_file)
    if bfm is None or bfm_uv is None:
        raise PrnetInputError("give the maps' UV layout: --layout-file layout.npz, or --bfm BFM.mat --bfm-uv BFM_UV.mat")
    from prnet.data.bfm import load_bfm
    from prnet.data.bfm_layout import make_layout

    try:
        size = int(np.load(first_map, mmap_mode="r", allow_pickle=False).shape[0])
    except (OSError, ValueError, IndexError) as err:
        raise PrnetInputError(f"{first_map}: not a readable position map .npy ({err})") from err
    return make_layout("bfm-uv", load_bfm(bfm), str(bfm_uv), size)[0]


def bfm_layout_command(
    bfm: Path = typer.Option(..., "--bfm", help="BFM.mat in face3d's format."),
    out: Path = typer.Option(..., "--out", help="Where to write the layout (.npz)."),
    bfm_uv: Optional[Path] = typer.Option(None, "--bfm-uv", help="BFM_UV.mat (needed for --layout bfm-uv)."),
    layout: str = typer.Option("bfm-uv", "--layout", help="bfm-uv or tutte."),
    size: int = typer.Option(256, "--size", min=16, help="Position-map resolution."),
) -> None:
    """Build and save the UV layout of the Basel Face Model (face mask, landmarks, loss weights)."""
    from prnet.data.bfm import load_bfm
    from prnet.data.bfm_layout import make_layout
    from prnet.io import PrnetInputError

    try:
        uv_layout, _ = make_layout(layout, load_bfm(bfm), bfm_uv, size)
        uv_layout.save(out)
    except PrnetInputError as err:
        exit_with_error(err)
    typer.echo(f"{uv_layout.layout_id}: {int(uv_layout.face_mask.sum())} face pixels -> {out}")
