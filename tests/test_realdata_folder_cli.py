"""The plain folder format (image + .npy position map pairs) and the `prnet data` real-data commands."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from tests import realdata_fixtures as fx
from tests.realdata_fixtures import bfm_files  # noqa: F401 (a pytest fixture, shared)
from prnet.cli import app
from prnet.data.bfm import load_bfm, load_bfm_uv
from prnet.data.bfm_layout import bfm_uv_layout
from prnet.data.folder import FolderSamples, convert_folder, list_folder_pairs
from prnet.data.format import read_layout, read_manifest, read_sample
from prnet.io import PrnetInputError
from prnet.layout import UVLayout


@pytest.fixture(scope="module")
def layout(bfm_files):
    model = load_bfm(bfm_files[0])
    return bfm_uv_layout(model, load_bfm_uv(bfm_files[1]), fx.S)[0]


def _affine_map(seed: int) -> np.ndarray:
    """A position map that is affine in (column, row): bilinear landmark reads are exact."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(3, 3))
    rows, cols = np.mgrid[0 : fx.S, 0 : fx.S]
    return (np.stack([cols, rows, np.ones_like(cols)], -1) @ a.T + [10, 12, 5]).astype(np.float32), a


def _write_pairs(root, n=3):
    root.mkdir(parents=True, exist_ok=True)
    coefficients = []
    for k in range(n):
        fx.write_image(root / f"face_{k}.png", fx.S, fx.S, seed=k)
        posmap, a = _affine_map(k)
        np.save(root / f"face_{k}.npy", posmap)
        coefficients.append(a)
    return coefficients


def test_folder_samples_and_conversion(tmp_path, layout):
    coefficients = _write_pairs(tmp_path / "maps")
    samples = FolderSamples(tmp_path / "maps", layout)
    assert len(samples) == 3
    sample = samples[1]
    uv = np.hstack([layout.landmark_uv.astype(np.float64), np.ones((68, 1))])
    np.testing.assert_allclose(sample.landmarks, uv @ coefficients[1].T + [10, 12, 5], rtol=1e-5, atol=1e-3)
    report = convert_folder(tmp_path / "maps", tmp_path / "out", layout, progress=False)
    assert (report.written, report.already_done) == (3, 0)
    again = convert_folder(tmp_path / "maps", tmp_path / "out", layout, progress=False)
    assert (again.written, again.already_done) == (0, 3)
    manifest = read_manifest(tmp_path / "out")
    assert read_layout(tmp_path / "out").layout_id == layout.layout_id
    stored = read_sample(tmp_path / "out", 1, manifest)
    np.testing.assert_array_equal(stored.image, sample.image)  # PNG: lossless
    np.testing.assert_allclose(stored.posmap, sample.posmap, atol=1 / 64)  # uint16 fixed point
    assert stored.params["source"] == "face_1.png"


def test_folder_errors(tmp_path, layout):
    with pytest.raises(PrnetInputError, match="directory not found"):
        list_folder_pairs(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PrnetInputError, match="empty"):
        list_folder_pairs(tmp_path / "empty")
    _write_pairs(tmp_path / "maps", n=2)
    fx.write_image(tmp_path / "maps" / "lonely.jpg", fx.S, fx.S)
    with pytest.raises(PrnetInputError, match="lonely.jpg"):
        list_folder_pairs(tmp_path / "maps")
    (tmp_path / "maps" / "lonely.jpg").unlink()
    np.save(tmp_path / "maps" / "nopic.npy", np.zeros((fx.S, fx.S, 3)))
    with pytest.raises(PrnetInputError, match="nopic.npy"):
        list_folder_pairs(tmp_path / "maps")
    (tmp_path / "maps" / "nopic.npy").unlink()
    np.save(tmp_path / "maps" / "face_0.npy", np.zeros((fx.S, fx.S)))
    with pytest.raises(PrnetInputError, match=r"face_0.npy: position map must be \(32, 32, 3\)"):
        FolderSamples(tmp_path / "maps", layout)[0]
    (tmp_path / "maps" / "face_0.npy").write_bytes(b"garbage")
    with pytest.raises(PrnetInputError, match="face_0.npy: not a readable"):
        FolderSamples(tmp_path / "maps", layout)[0]
    fx.write_image(tmp_path / "maps" / "face_1.png", 40, 40)
    with pytest.raises(PrnetInputError, match="face_1.png: image is 40x40"):
        FolderSamples(tmp_path / "maps", layout)[1]
    report = convert_folder(tmp_path / "maps", tmp_path / "out", layout, skip_bad=True, progress=False)
    assert (report.written, len(report.failed)) == (0, 2)


def test_cli_300wlp_folder_and_layout(tmp_path, bfm_files):
    bfm, bfm_uv = bfm_files
    root = tmp_path / "300W_LP" / "HELEN"
    root.mkdir(parents=True)
    for k in range(2):
        fx.write_image(root / f"HELEN_{k}.jpg", 120, 140, seed=k)
        fx.write_fit(root / f"HELEN_{k}.mat", [0.1, 0.2 * k, 0, 70, 55, 30, 0.0035])
    runner = CliRunner()
    result = runner.invoke(app, ["data", "300wlp", "--root", str(tmp_path / "300W_LP"), "--bfm", str(bfm),
                                 "--bfm-uv", str(bfm_uv), "--out", str(tmp_path / "ds"), "--size", "32",
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "2 written" in result.output
    manifest = read_manifest(tmp_path / "ds")
    assert manifest.generator["source"] == "300w-lp" and manifest.image_size == 32
    result = runner.invoke(app, ["data", "bfm-layout", "--bfm", str(bfm), "--bfm-uv", str(bfm_uv),
                                 "--size", "32", "--out", str(tmp_path / "layout.npz")])
    assert result.exit_code == 0, result.output
    assert UVLayout.load(tmp_path / "layout.npz").layout_id == manifest.layout_id
    _write_pairs(tmp_path / "maps", n=2)
    for extra in (["--layout-file", str(tmp_path / "layout.npz")], ["--bfm", str(bfm), "--bfm-uv", str(bfm_uv)]):
        out = tmp_path / f"folder{len(extra)}"
        result = runner.invoke(app, ["data", "folder", "--root", str(tmp_path / "maps"), "--out", str(out),
                                     "--no-progress", *extra])
        assert result.exit_code == 0, result.output
        assert read_manifest(out).layout_id == manifest.layout_id
    # errors: exit code 2 and a message naming the file
    result = runner.invoke(app, ["data", "300wlp", "--root", str(tmp_path / "300W_LP"), "--bfm",
                                 str(tmp_path / "missing.mat"), "--bfm-uv", str(bfm_uv), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "missing.mat" in result.output
    result = runner.invoke(app, ["data", "folder", "--root", str(tmp_path / "maps"), "--out", str(tmp_path / "y")])
    assert result.exit_code == 2 and "--layout-file" in result.output
