"""Atomic file writes and friendly readers shared by every stage.

Everything a user keeps (checkpoints, datasets, exports, reports) is written to a temporary file in the
same directory and moved into place with os.replace, so an interrupted run never leaves a half-written
file under the final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


class PrnetInputError(ValueError):
    """Bad user input (missing/corrupt file, wrong shape...). The message names the file and the fix."""


def existing_file(path: str | os.PathLike, what: str = "file", hint: str = "") -> Path:
    """`path` as a Path; PrnetInputError "<path>: <what> not found[; <hint>]" when it is not a file."""
    return _existing(Path(path), Path.is_file, what, hint)


def existing_dir(path: str | os.PathLike, what: str = "directory", hint: str = "") -> Path:
    """`path` as a Path; PrnetInputError "<path>: <what> not found[; <hint>]" when it is not a directory."""
    return _existing(Path(path), Path.is_dir, what, hint)


def _existing(path: Path, is_kind, what: str, hint: str) -> Path:
    if not is_kind(path):
        raise PrnetInputError(f"{path}: {what} not found" + (f"; {hint}" if hint else ""))
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success move it to `path`, on failure delete it.

    `suffix` keeps the file extension for writers that infer the format from it (cv2, torch.onnx).
    Works for files and directories (e.g. a CoreML .mlpackage or an OpenVINO folder).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.name}.", suffix=suffix if suffix is not None else final.suffix, dir=final.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # the writer creates it (file or directory)
    try:
        yield tmp
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def size_on_disk(path: str | os.PathLike | None) -> int | None:
    """Bytes of a file, or of every file under a folder (CoreML .mlpackage, OpenVINO xml+bin folders)."""
    if path is None:
        return None
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return None


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def write_npz_atomic(path: str | os.PathLike, compressed: bool = True, **arrays: np.ndarray) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        (np.savez_compressed if compressed else np.savez)(tmp, **arrays)


def write_image_atomic(path: str | os.PathLike, image_rgb: np.ndarray, jpeg_quality: int = 95) -> None:
    """Write an RGB (or single-channel) uint8/uint16 image; the format follows the extension."""
    import cv2

    path = Path(path)
    image = image_rgb[..., ::-1] if image_rgb.ndim == 3 and image_rgb.shape[2] == 3 else image_rgb
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(path.suffix, np.ascontiguousarray(image), params)
    if not ok:
        raise OSError(f"could not encode image for {path}")
    write_bytes_atomic(path, buf.tobytes())


def read_json(path: str | os.PathLike) -> Any:
    path = existing_file(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PrnetInputError(f"{path}: not valid JSON ({err}); delete or regenerate it") from err


def read_image_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read any image file as HxWx3 uint8 RGB. Grayscale is expanded, alpha dropped, 16-bit scaled.

    Raises PrnetInputError naming the file when it is missing, truncated or not an image.
    """
    import cv2

    path = existing_file(path)
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise PrnetInputError(f"{path}: not a readable image (corrupt, truncated or unsupported format)")
    if image.dtype == np.uint16:
        image = (image / 257.0).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    elif image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    else:
        raise PrnetInputError(f"{path}: unsupported image with {image.shape[2]} channels")
    return image
