"""Annotated photos for evaluation: images with 68 iBUG landmarks, the 300-W / iBUG / menpo layout.

    DIR/[any/sub/folders/]NAME.jpg|png|ppm|...  + NAME.pts      (iBUG/300-W: x y per line, 1-based pixels)
                                                  or NAME.ljson (menpo: 0-based (y, x) points)

One annotation file is one face; its image is the file with the same stem in the same folder (300-W ships one
image copy per face, e.g. `image_003_1.jpg` + `image_003_1.pts`). Every annotation is read and checked before
any image: a .pts/.ljson that is unreadable or holds other than 68 points, or whose image is missing, is a
PrnetInputError naming the file (exit 2 in the CLI). Images without an annotation are counted, not used.
Points are returned 0-based (x, y) in image pixels with pixel centres at integers (the project's convention,
prnet.geometry.crop), i.e. a .pts coordinate minus 1, like menpo's own importer.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prnet.io import PrnetInputError, existing_dir, existing_file

N_POINTS = 68
ANNOTATION_SUFFIXES = (".pts", ".ljson")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jp2")
# preferred ljson groups when a file holds several (menpo names for the 68-point iBUG markup)
LJSON_GROUPS = ("LJSON", "face_ibug_68_trimesh", "face_ibug_68", "ibug_face_68", "PTS")


@dataclass(frozen=True)
class AnnotatedFace:
    name: str  # annotation path relative to the root, without suffix (unique per face)
    image_path: Path
    annotation_path: Path
    landmarks: np.ndarray  # (68, 2) float64 x, y, 0-based image pixels


def _check_points(points: np.ndarray, path: Path, n_points: int) -> np.ndarray:
    if points.ndim != 2 or points.shape[1] != 2:
        raise PrnetInputError(f"{path}: expected {n_points} points of 2 coordinates, got an array of shape {points.shape}")
    if len(points) != n_points:
        raise PrnetInputError(f"{path}: holds {len(points)} points, expected the {n_points}-point iBUG markup")
    if not np.isfinite(points).all():
        raise PrnetInputError(f"{path}: holds NaN, infinite or missing coordinates")
    extent = points.max(0) - points.min(0)
    if not (extent > 0).all():
        raise PrnetInputError(f"{path}: the {n_points} points have a zero-size bounding box")
    return points


def read_pts(path: str | Path, n_points: int = N_POINTS) -> np.ndarray:
    """(n_points, 2) float64 0-based x, y from an iBUG .pts file (header, `n_points: N`, `{`, N lines `x y`, `}`)."""
    path = existing_file(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise PrnetInputError(f"{path}: not a readable .pts text file ({err})") from err
    if "{" not in text or "}" not in text.split("{", 1)[1]:
        raise PrnetInputError(f"{path}: not an iBUG .pts file (expected the points between '{{' and '}}')")
    header, body = text.split("{", 1)
    body = body.split("}", 1)[0]
    try:
        values = np.array(body.split(), dtype=np.float64)
    except ValueError as err:
        raise PrnetInputError(f"{path}: a point coordinate is not a number ({err})") from err
    if values.size % 2:
        raise PrnetInputError(f"{path}: {values.size} numbers between the braces, expected x y pairs")
    points = values.reshape(-1, 2)
    for line in header.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "n_points":
            try:
                declared = int(value.strip())
            except ValueError as err:
                raise PrnetInputError(f"{path}: bad header line {line.strip()!r}") from err
            if declared != len(points):
                raise PrnetInputError(f"{path}: the header says n_points {declared} but the file holds {len(points)} points")
    return _check_points(points, path, n_points) - 1.0  # .pts are 1-based (Matlab), as menpo reads them


def read_ljson(path: str | Path, n_points: int = N_POINTS) -> np.ndarray:
    """(n_points, 2) float64 0-based x, y from a menpo .ljson (versions 1-3; points are stored as (y, x)).

    With several landmark groups, the first of LJSON_GROUPS present, else the only group with n_points points."""
    path = existing_file(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PrnetInputError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise PrnetInputError(f"{path}: not a menpo .ljson file (expected a JSON object)")
    if "groups" in data and isinstance(data["groups"], dict):  # version 3
        groups = data["groups"]
        name = next((g for g in LJSON_GROUPS if g in groups), None)
        if name is None:
            sized = [g for g, v in groups.items() if len(_ljson_points(v, path)) == n_points]
            if len(sized) != 1:
                raise PrnetInputError(f"{path}: cannot tell which landmark group is the {n_points}-point markup "
                                      f"(groups: {', '.join(groups) or 'none'})")
            name = sized[0]
        raw = _ljson_points(groups[name], path)
    else:  # versions 1 and 2: {"landmarks": {"points": ...}, "labels": ...}
        raw = _ljson_points(data, path)
    try:
        points = np.array([[math.nan if c is None else c for c in p] for p in raw], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise PrnetInputError(f"{path}: a point is not a pair of numbers ({err})") from err
    if points.ndim == 2 and points.shape[1] == 2:
        points = points[:, ::-1].copy()  # menpo stores (y, x)
    return _check_points(points, path, n_points)


def _ljson_points(group: object, path: Path) -> list:
    try:
        points = group["landmarks"]["points"]  # type: ignore[index]
    except (KeyError, TypeError) as err:
        raise PrnetInputError(f"{path}: not a menpo .ljson file (no landmarks.points)") from err
    if not isinstance(points, list):
        raise PrnetInputError(f"{path}: landmarks.points is not a list")
    return points


def read_annotation(path: str | Path, n_points: int = N_POINTS) -> np.ndarray:
    path = Path(path)
    if path.suffix.lower() == ".ljson":
        return read_ljson(path, n_points)
    return read_pts(path, n_points)


def is_annotated_folder(root: str | Path) -> bool:
    root = Path(root)
    return root.is_dir() and any(p.suffix.lower() in ANNOTATION_SUFFIXES for p in root.rglob("*") if p.is_file())


def list_annotated_faces(root: str | Path) -> tuple[list[AnnotatedFace], int]:
    """(faces sorted by name, number of images without an annotation). Reads and checks every annotation."""
    root = existing_dir(root)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    annotations = [p for p in files if p.suffix.lower() in ANNOTATION_SUFFIXES]
    if not annotations:
        raise PrnetInputError(f"{root}: no .pts or .ljson landmark files found")
    images: dict[Path, list[Path]] = {}
    for p in files:
        if p.suffix.lower() in IMAGE_SUFFIXES:
            images.setdefault(p.with_suffix(""), []).append(p)
    stems = {p.with_suffix("") for p in annotations}
    duplicated = sorted(s for s in stems if sum(p.with_suffix("") == s for p in annotations) > 1)
    if duplicated:
        raise PrnetInputError(f"{duplicated[0]}: has both a .pts and a .ljson annotation; keep one")
    faces = []
    for annotation in annotations:
        stem = annotation.with_suffix("")
        candidates = sorted(images.get(stem, []))
        if not candidates:
            raise PrnetInputError(f"{annotation}: no image next to it (expected {stem.name} with one of "
                                  f"{', '.join(IMAGE_SUFFIXES)})")
        faces.append(AnnotatedFace(name=str(stem.relative_to(root)), image_path=candidates[0],
                                   annotation_path=annotation, landmarks=read_annotation(annotation)))
    unannotated = sum(1 for stem in images if stem not in stems)
    return faces, unannotated


def write_pts(path: str | Path, points_xy: np.ndarray) -> None:
    """Write 0-based (K, 2) x, y points as an iBUG .pts file (1-based, as the format stores them)."""
    points = np.asarray(points_xy, dtype=np.float64)[:, :2] + 1.0
    lines = ["version: 1", f"n_points:  {len(points)}", "{", *(f"{x:.6f} {y:.6f}" for x, y in points), "}"]
    Path(path).write_text("\n".join(lines) + "\n")
