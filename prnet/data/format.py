"""The project's dataset format: every data source (synthetic, 300W-LP, folders) writes it, training reads it.

    DIR/manifest.json      {"format": "prnet-positionmaps", "version": 1, "image_size": 256,
                            "layout_id": ..., "map_encoding": "uint16-fixed", "map_scale": 64.0,
                            "map_offset": 256.0, "image_ext": ".jpg", "generator": {...}}
    DIR/layout.npz         the UV layout the maps are in (prnet.layout.UVLayout)
    DIR/samples/000123.jpg the 256x256 RGB crop
    DIR/samples/000123.npz posmap (256, 256, 3), landmarks (68, 3) float32 (x, y pixels, z depth, crop frame),
                           params (JSON string: whatever produced the sample)

Position maps are stored as fixed point: uint16 = round((value + offset) * scale), i.e. 1/64 px steps over
[-256, 768) px, so the quantization error is at most 0.008 px (lossless enough for 0.1 px landmark accuracy)
at half the size of float32; "float32" keeps maps exact; "uint16-delta" stores the same fixed-point values
as row differences (planar), which zlib packs ~2.7x smaller (lossless w.r.t. "uint16-fixed"). A sample is
complete when its .npz exists: the image is written first, the .npz last, both atomically, so a loader never
reads half a sample.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prnet.io import PrnetInputError, read_image_rgb, read_json, write_image_atomic, write_json_atomic, write_npz_atomic
from prnet.layout import UVLayout

FORMAT_NAME = "prnet-positionmaps"
FORMAT_VERSION = 1
MAP_ENCODINGS = ("uint16-fixed", "float32", "uint16-delta")
DEFAULT_MAP_SCALE = 64.0
DEFAULT_MAP_OFFSET = 256.0


@dataclass(frozen=True)
class Manifest:
    image_size: int
    layout_id: str
    map_encoding: str = "uint16-fixed"
    map_scale: float = DEFAULT_MAP_SCALE
    map_offset: float = DEFAULT_MAP_OFFSET
    image_ext: str = ".jpg"
    generator: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class Sample:
    index: int
    image: np.ndarray  # (S, S, 3) uint8 RGB
    posmap: np.ndarray  # (S, S, 3) float32, pixels
    landmarks: np.ndarray  # (68, 3) float32
    params: dict[str, Any]


def encode_posmap(posmap: np.ndarray, manifest: Manifest) -> np.ndarray:
    if manifest.map_encoding == "float32":
        return posmap.astype(np.float32)
    fixed = np.round((posmap.astype(np.float64) + manifest.map_offset) * manifest.map_scale)
    fixed = np.clip(fixed, 0, 65535).astype(np.uint16)
    if manifest.map_encoding == "uint16-delta":
        # same values as uint16-fixed, stored planar (3, S, S) as differences along each row (mod 2^16):
        # lossless and ~2.7x smaller after zlib (maps are smooth)
        planar = np.ascontiguousarray(fixed.transpose(2, 0, 1))
        planar[:, :, 1:] = planar[:, :, 1:] - planar[:, :, :-1]
        return planar
    return fixed


def decode_posmap(stored: np.ndarray, manifest: Manifest) -> np.ndarray:
    if manifest.map_encoding == "uint16-delta" and stored.dtype == np.uint16 and stored.ndim == 3:
        stored = np.cumsum(stored, axis=2, dtype=np.uint16).transpose(1, 2, 0)
    if stored.dtype == np.uint16:
        return (stored.astype(np.float32) / np.float32(manifest.map_scale)) - np.float32(manifest.map_offset)
    return stored.astype(np.float32)


def sample_paths(root: Path, index: int, manifest: Manifest) -> tuple[Path, Path]:
    stem = Path(root) / "samples" / f"{index:06d}"
    return stem.with_suffix(manifest.image_ext), stem.with_suffix(".npz")


def create_dataset(root: str | Path, layout: UVLayout, manifest: Manifest) -> Manifest:
    """Create DIR (or reopen it to resume). An existing DIR must hold the same layout and settings."""
    root = Path(root)
    if manifest.map_encoding not in MAP_ENCODINGS:
        raise PrnetInputError(f"unknown map encoding {manifest.map_encoding!r}; use one of {MAP_ENCODINGS}")
    if (root / "manifest.json").exists():
        existing = read_manifest(root)
        mismatched = [
            key
            for key in ("image_size", "layout_id", "map_encoding", "map_scale", "map_offset", "image_ext", "generator")
            if getattr(existing, key) != getattr(manifest, key)
        ]
        if mismatched:
            raise PrnetInputError(
                f"{root}: already holds a dataset made with other settings ({', '.join(mismatched)} differ); "
                "use another --out directory or the same settings to resume"
            )
        return existing
    (root / "samples").mkdir(parents=True, exist_ok=True)
    layout.save(root / "layout.npz")
    write_json_atomic(root / "manifest.json", manifest.to_json())
    return manifest


def read_manifest(root: str | Path) -> Manifest:
    root = Path(root)
    path = root / "manifest.json"
    if not path.is_file():
        raise PrnetInputError(
            f"{root}: no manifest.json, so this is not a prnet dataset; "
            "make one with `prnet data synth` or `prnet data 300wlp` (or see the folder format in the README)"
        )
    raw = read_json(path)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
        raise PrnetInputError(f"{path}: not a {FORMAT_NAME} manifest")
    if raw.get("version") != FORMAT_VERSION:
        raise PrnetInputError(f"{path}: format version {raw.get('version')} is not supported (need {FORMAT_VERSION})")
    try:
        return Manifest(**raw)
    except TypeError as err:
        raise PrnetInputError(f"{path}: malformed manifest ({err})") from err


def read_layout(root: str | Path) -> UVLayout:
    return UVLayout.load(Path(root) / "layout.npz")


def write_sample(
    root: str | Path,
    manifest: Manifest,
    index: int,
    image: np.ndarray,
    posmap: np.ndarray,
    landmarks: np.ndarray,
    params: dict[str, Any],
) -> None:
    size = manifest.image_size
    if image.shape != (size, size, 3) or image.dtype != np.uint8:
        raise ValueError(f"sample {index}: image must be ({size}, {size}, 3) uint8, got {image.shape} {image.dtype}")
    if posmap.shape[2] != 3 or landmarks.shape != (68, 3):
        raise ValueError(f"sample {index}: posmap (S, S, 3) and landmarks (68, 3) expected")
    image_path, arrays_path = sample_paths(Path(root), index, manifest)
    write_image_atomic(image_path, image)
    write_npz_atomic(
        arrays_path,
        posmap=encode_posmap(posmap, manifest),
        landmarks=landmarks.astype(np.float32),
        params=np.array(json.dumps(params, default=_json_default)),
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value)}")


def is_complete(root: str | Path, manifest: Manifest, index: int) -> bool:
    image_path, arrays_path = sample_paths(Path(root), index, manifest)
    return arrays_path.is_file() and image_path.is_file()


def list_samples(root: str | Path, manifest: Manifest | None = None) -> list[int]:
    """Indices of complete samples. An .npz without its image is an error naming the file."""
    root = Path(root)
    manifest = manifest or read_manifest(root)
    indices = []
    for arrays_path in sorted((root / "samples").glob("*.npz")):
        if not arrays_path.stem.isdigit():
            continue
        index = int(arrays_path.stem)
        image_path, _ = sample_paths(root, index, manifest)
        if not image_path.is_file():
            raise PrnetInputError(f"{image_path}: missing image for {arrays_path.name}; delete the .npz or regenerate")
        indices.append(index)
    return indices


def read_sample(root: str | Path, index: int, manifest: Manifest) -> Sample:
    root = Path(root)
    image_path, arrays_path = sample_paths(root, index, manifest)
    image = read_image_rgb(image_path)
    try:
        with np.load(arrays_path, allow_pickle=False) as data:
            posmap = decode_posmap(data["posmap"], manifest)
            landmarks = data["landmarks"].astype(np.float32)
            params = json.loads(str(data["params"]))
    except FileNotFoundError as err:
        raise PrnetInputError(f"{arrays_path}: file not found") from err
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise PrnetInputError(f"{arrays_path}: corrupt sample ({err}); delete it and rerun the generator") from err
    size = manifest.image_size
    if image.shape != (size, size, 3) or posmap.shape[:2] != (size, size) or landmarks.shape != (68, 3):
        raise PrnetInputError(
            f"{arrays_path}: shapes image {image.shape}, posmap {posmap.shape}, landmarks {landmarks.shape} "
            f"do not match the manifest's {size}x{size}"
        )
    return Sample(index=index, image=image, posmap=posmap, landmarks=landmarks, params=params)
