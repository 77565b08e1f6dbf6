"""Reading MATLAB .mat files (v5 as face3d/3DDFA write them, and v7.3/HDF5) into plain dicts of arrays.

Every failure is a PrnetInputError naming the file, so a corrupt file in a 120k-file dataset is easy to find.
Arrays come back in MATLAB's shape (e.g. `shapeMU` 3n x 1, `pt3d_68` 3 x 68) whichever version wrote them:
v7.3 files store column-major data, so h5py reads them transposed and we transpose back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from prnet.io import PrnetInputError, existing_file

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def load_mat(path: str | Path) -> dict[str, Any]:
    """All top-level variables of a .mat file; a 1x1 MATLAB struct becomes a dict of its fields."""
    path = existing_file(path)
    if _is_hdf5(path):
        return _load_mat_v73(path)
    import scipy.io

    try:
        raw = scipy.io.loadmat(str(path), squeeze_me=False, struct_as_record=True)
    except NotImplementedError as err:  # scipy's message for v7.3 files it cannot read
        raise PrnetInputError(f"{path}: unsupported MATLAB file version ({err})") from err
    except Exception as err:  # scipy raises ValueError/TypeError/OSError/MatReadError... on garbage
        raise PrnetInputError(
            f"{path}: not a readable MATLAB .mat file ({type(err).__name__}: {err}); re-copy or re-download it"
        ) from err
    return {key: _unwrap(value) for key, value in raw.items() if not key.startswith("__")}


def require(variables: dict[str, Any], name: str, path: str | Path, what: str = "variable") -> np.ndarray:
    """variables[name] as a numeric array, or a PrnetInputError naming the file and the missing field."""
    if name not in variables:
        have = ", ".join(sorted(variables)) or "nothing"
        raise PrnetInputError(f"{path}: missing {what} '{name}' (the file holds: {have})")
    value = variables[name]
    if isinstance(value, dict) or not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
        raise PrnetInputError(f"{path}: {what} '{name}' is not a numeric array")
    return value


def _is_hdf5(path: Path) -> bool:
    # MATLAB v7.3 files are HDF5 with a 512-byte user block holding the MATLAB header.
    with open(path, "rb") as f:
        head = f.read(512 + len(HDF5_SIGNATURE))
    return head[:8] == HDF5_SIGNATURE or head[512 : 512 + 8] == HDF5_SIGNATURE


def _unwrap(value: Any) -> Any:
    """A (1, 1) struct array -> dict of fields (recursively); anything else unchanged."""
    if isinstance(value, np.ndarray) and value.dtype.names is not None:
        if value.size != 1:
            raise ValueError("struct arrays with more than one element are not supported")
        record = value.reshape(-1)[0]
        return {name: _unwrap(record[name]) for name in value.dtype.names}
    return value


def _load_mat_v73(path: Path) -> dict[str, Any]:
    try:
        import h5py
    except ImportError as err:
        raise PrnetInputError(
            f"{path}: is a MATLAB v7.3 (HDF5) file and reading it needs h5py: `pip install h5py`, "
            "or re-save it in MATLAB with `save(name, '-v7')`"
        ) from err
    try:
        with h5py.File(path, "r") as f:
            return {key: _read_h5(f[key]) for key in f.keys() if not key.startswith("#")}
    except PrnetInputError:
        raise
    except Exception as err:
        raise PrnetInputError(f"{path}: not a readable MATLAB v7.3 (HDF5) file ({type(err).__name__}: {err})") from err


def _read_h5(node: Any) -> Any:
    import h5py

    if isinstance(node, h5py.Group):  # a MATLAB struct
        return {key: _read_h5(node[key]) for key in node.keys() if not key.startswith("#")}
    data = node[()]
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data.T)  # column-major on disk
    return np.asarray(data)
