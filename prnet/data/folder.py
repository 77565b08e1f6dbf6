"""The plain folder format: image + position-map .npy pairs, e.g. training data made with PRNet's/face3d's code.

    DIR/<name>.jpg   (or .jpeg/.png) the S x S face crop, any colour format `prnet.io.read_image_rgb` reads
    DIR/<name>.npy   (S, S, 3) float position map of that crop: x right, y down (pixels of the crop, pixel
                     centres at integers), z depth in the same pixel units (larger = closer, minimum 0)
(sub-folders are searched too; sample i is the i-th pair in sorted path order). The maps must be in a known
UV layout: maps made by face3d's generate_posmap_300WLP / PRNet's code are in the "bfm-uv" layout
(build it from BFM.mat + BFM_UV.mat); a layout .npz (`UVLayout.save`) works for any other.
Landmarks are read from the maps at the layout's landmark_uv (bilinear). `FolderSamples` reads the pairs as
`prnet.data.format.Sample`s; `convert_folder` writes them into the project dataset format for training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from prnet.data.format import Sample
from prnet.data.w300lp import IMAGE_EXTENSIONS
from prnet.io import PrnetInputError, existing_dir, read_image_rgb
from prnet.layout import UVLayout


def list_folder_pairs(root: str | Path) -> list[tuple[Path, Path]]:
    """Sorted (image, .npy) pairs; an image without its .npy (or a .npy without its image) is an error."""
    root = existing_dir(root)
    maps = sorted(p for p in root.rglob("*.npy") if p.is_file())
    images = {p.with_suffix(""): p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()}
    if not maps and not images:
        raise PrnetInputError(f"{root}: empty, no image + .npy position-map pairs found (see the folder format)")
    lonely_images = sorted(set(images) - {p.with_suffix("") for p in maps})
    if lonely_images:
        raise PrnetInputError(
            f"{len(lonely_images)} image(s) have no position map .npy next to them "
            f"(first: {images[lonely_images[0]]}); add <name>.npy or move the image out of {root}"
        )
    lonely_maps = [p for p in maps if p.with_suffix("") not in images]
    if lonely_maps:
        raise PrnetInputError(
            f"{len(lonely_maps)} position map(s) have no image next to them (first: {lonely_maps[0]}); "
            "add <name>.jpg/.png or remove the .npy"
        )
    return [(images[p.with_suffix("")], p) for p in maps]


def read_posmap_npy(path: str | Path, size: int) -> np.ndarray:
    path = Path(path)
    try:
        posmap = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise PrnetInputError(f"{path}: not a readable .npy array ({err})") from err
    if posmap.shape != (size, size, 3):
        raise PrnetInputError(f"{path}: position map must be ({size}, {size}, 3), got {posmap.shape}")
    if posmap.dtype.kind not in "iuf" or not np.isfinite(posmap).all():
        raise PrnetInputError(f"{path}: position map must hold finite numbers")
    return posmap.astype(np.float32)


def read_folder_sample(index: int, image_path: Path, npy_path: Path, layout: UVLayout, relative: str) -> Sample:
    from prnet.geometry.posmap import landmarks_from_posmap

    image = read_image_rgb(image_path)
    if image.shape[:2] != (layout.size, layout.size):
        raise PrnetInputError(
            f"{image_path}: image is {image.shape[1]}x{image.shape[0]} but the layout's maps are "
            f"{layout.size}x{layout.size}; the folder format holds the crops the maps belong to"
        )
    posmap = read_posmap_npy(npy_path, layout.size)
    landmarks = np.asarray(landmarks_from_posmap(posmap, layout), dtype=np.float32)
    return Sample(index=index, image=image, posmap=posmap, landmarks=landmarks, params={"source": relative})


class FolderSamples:
    """The folder's pairs as Samples (map-style: len + getitem), read lazily."""

    def __init__(self, root: str | Path, layout: UVLayout):
        self.root = Path(root)
        self.layout = layout
        self.pairs = list_folder_pairs(self.root)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Sample:
        image_path, npy_path = self.pairs[index]
        return read_folder_sample(index, image_path, npy_path, self.layout, image_path.relative_to(self.root).as_posix())


@dataclass
class FolderReport:
    out: Path
    total: int
    written: int
    already_done: int
    failed: list[str] = field(default_factory=list)


def convert_folder(
    root: str | Path,
    out: str | Path,
    layout: UVLayout,
    map_encoding: str = "uint16-fixed",
    skip_bad: bool = False,
    progress: bool = True,
) -> FolderReport:
    """Write the folder's pairs into the project dataset format at `out` (resumable)."""
    from prnet.data.format import Manifest, create_dataset, is_complete, write_sample
    from prnet.data.w300lp import progress_bar, pairs_fingerprint
    from prnet.io import write_bytes_atomic

    samples = FolderSamples(root, layout)
    manifest = create_dataset(
        out,
        layout,
        Manifest(
            image_size=layout.size,
            layout_id=layout.layout_id,
            map_encoding=map_encoding,
            image_ext=".png",  # lossless: the crops were compressed once already
            generator={
                "source": "folder",
                "files": len(samples),
                "file_list_sha": pairs_fingerprint(samples.root, samples.pairs),
            },
        ),
    )
    todo = [i for i in range(len(samples)) if not is_complete(out, manifest, i)]
    report = FolderReport(out=Path(out), total=len(samples), written=0, already_done=len(samples) - len(todo))
    with progress_bar(progress, len(samples), report.already_done, "folder") as advance:
        for i in todo:
            try:
                sample = samples[i]
            except PrnetInputError as err:
                if not skip_bad:
                    raise
                report.failed.append(str(err))
            else:
                write_sample(out, manifest, i, sample.image, sample.posmap, sample.landmarks, sample.params)
                report.written += 1
            advance()
    if report.failed:
        write_bytes_atomic(Path(out) / "skipped.txt", ("\n".join(report.failed) + "\n").encode())
    return report
