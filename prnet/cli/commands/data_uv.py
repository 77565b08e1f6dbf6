"""`prnet data uv`: rebuild the project's UV layout from the face mesh and write pictures of it.

Thin Typer command: it calls prnet.geometry.uv_pictures.write_uv_pictures.
"""

from __future__ import annotations

from pathlib import Path

import typer

from prnet.cli.errors import exit_with_error


def uv_command(
    out: Path = typer.Option(..., "--out", help="Output directory for layout.npz, the pictures and summary.json."),
    size: int = typer.Option(256, "--size", min=16, help="Position-map resolution."),
    margin_mm: float = typer.Option(
        20.0, "--margin-mm", min=0.0, help="Geodesic margin kept around the face (the packaged layout uses 20)."
    ),
) -> None:
    """Rebuild the Tutte UV layout and draw it: wireframe, xyz colours, face / weight masks, 68 landmarks."""
    from rich.console import Console

    from prnet.io import PrnetInputError

    try:
        from prnet.geometry.uv_pictures import write_uv_pictures

        summary = write_uv_pictures(out, size=size, margin_mm=margin_mm)
    except PrnetInputError as err:
        exit_with_error(err)
    console = Console()
    for key, value in summary.items():
        console.print(f"{key:>30}: {value}", highlight=False)
    console.print(f"wrote layout.npz, 5 pictures and summary.json to {out}", highlight=False)
