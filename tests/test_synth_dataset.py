"""Synthetic datasets on disk: determinism across workers, stored landmarks, resumption, damaged files, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from prnet.cli import app
from prnet.data.format import list_samples, read_layout, read_manifest, read_sample, sample_paths
from prnet.data.synth.generate import generate_dataset
from prnet.data.synth.render import SynthConfig
from prnet.geometry.posmap import landmarks_from_posmap
from prnet.io import PrnetInputError

N = 4


def _arrays(root: Path) -> dict[int, tuple]:
    manifest = read_manifest(root)
    out = {}
    for i in list_samples(root, manifest):
        s = read_sample(root, i, manifest)
        out[i] = (s.image, s.posmap, s.landmarks, json.dumps(s.params, sort_keys=True))
    return out


def _assert_same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for i in a:
        for x, y in zip(a[i], b[i]):
            if isinstance(x, str):
                assert x == y
            else:
                np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "one_worker"
    report = generate_dataset(root, N, seed=5, workers=1)
    assert report.written == N and report.skipped == 0 and report.bytes_per_sample > 0
    return root


def test_same_files_for_any_worker_count(reference, tmp_path):
    report = generate_dataset(tmp_path / "two", N, seed=5, workers=2)
    assert report.written == N
    _assert_same(_arrays(reference), _arrays(tmp_path / "two"))


def test_written_landmarks_equal_those_read_from_the_map(reference):
    manifest, layout = read_manifest(reference), read_layout(reference)
    assert manifest.map_encoding == "uint16-delta" and manifest.generator["seed"] == 5
    for i in range(N):
        sample = read_sample(reference, i, manifest)
        np.testing.assert_array_equal(sample.landmarks, landmarks_from_posmap(sample.posmap, layout))
        assert sample.params["generator"] == {"name": "prnet-synth", "version": 2, "seed": 5, "index": i}


def test_resume_after_an_interrupted_run(reference, tmp_path):
    root = tmp_path / "resumed"
    generate_dataset(root, 2, seed=5)
    manifest = read_manifest(root)
    image, arrays = sample_paths(root, 1, manifest)
    arrays.unlink()  # killed between the image and the .npz of sample 1
    (root / "samples" / ".000002.npz.abc123.npz").write_bytes(b"half a file")  # killed mid-write
    report = generate_dataset(root, N, seed=5)
    assert (report.written, report.skipped, report.removed_temporaries) == (N - 1, 1, 1)
    assert not list((root / "samples").glob(".*"))
    _assert_same(_arrays(reference), _arrays(root))
    again = generate_dataset(root, N, seed=5)
    assert (again.written, again.skipped) == (0, N)


def test_resume_refuses_other_settings(reference):
    with pytest.raises(PrnetInputError, match="other settings"):
        generate_dataset(reference, N, seed=6)
    with pytest.raises(PrnetInputError, match="other settings"):
        generate_dataset(reference, N, seed=5, config=SynthConfig(occlusion_rate=0.0))


def test_damaged_samples_are_reported_then_repaired(reference, tmp_path):
    import shutil

    root = tmp_path / "damaged"
    shutil.copytree(reference, root)
    manifest = read_manifest(root)
    image, arrays = sample_paths(root, 2, manifest)
    arrays.write_bytes(arrays.read_bytes()[:500])  # truncated .npz
    with pytest.raises(PrnetInputError, match="000002.npz"):
        read_sample(root, 2, manifest)
    with pytest.raises(PrnetInputError, match=r"000002\.npz.*\n.*--repair"):
        generate_dataset(root, N, seed=5)
    image3, _ = sample_paths(root, 3, manifest)
    image3.write_bytes(image3.read_bytes()[:1000])  # truncated JPEG
    with pytest.raises(PrnetInputError, match="000003.jpg"):
        generate_dataset(root, N, seed=5)
    report = generate_dataset(root, N, seed=5, repair=True)
    assert report.repaired == 2 and report.written == 2
    _assert_same(_arrays(reference), _arrays(root))


def test_cli_synth_and_show(reference, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["data", "synth", "--out", str(tmp_path / "cli"), "--n", "2", "--seed", "5",
                                 "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "2 written" in result.output and "KiB per sample" in result.output
    _assert_same({i: v for i, v in _arrays(reference).items() if i < 2}, _arrays(tmp_path / "cli"))
    sheet = tmp_path / "sheet.jpg"
    result = runner.invoke(app, ["data", "show", str(reference), "--out", str(sheet), "--count", "3", "--tile", "64"])
    assert result.exit_code == 0, result.output
    from prnet.io import read_image_rgb

    assert read_image_rgb(sheet).shape == (64, 64 * 3 * 4, 3)


def test_cli_synth_generator_version(tmp_path):
    """--generator 1 reproduces pools and evaluation sets made before version 2; an unknown version is exit 2."""
    runner = CliRunner()
    result = runner.invoke(app, ["data", "synth", "--out", str(tmp_path / "v1"), "--n", "1", "--seed", "5",
                                 "--workers", "1", "--generator", "1"])
    assert result.exit_code == 0, result.output
    manifest = read_manifest(tmp_path / "v1")
    assert manifest.generator["version"] == 1
    assert read_sample(tmp_path / "v1", 0, manifest).params["generator"]["version"] == 1
    result = runner.invoke(app, ["data", "synth", "--out", str(tmp_path / "v9"), "--n", "1", "--generator", "9"])
    assert result.exit_code == 2 and "unknown synthetic generator version 9" in result.output
    assert not (tmp_path / "v9").exists()


def test_cli_show_reports_damage_and_missing_data(reference, tmp_path):
    import shutil

    runner = CliRunner()
    result = runner.invoke(app, ["data", "show", str(tmp_path / "nothing"), "--out", str(tmp_path / "s.jpg")])
    assert result.exit_code == 2 and "manifest.json" in result.output
    root = tmp_path / "broken"
    shutil.copytree(reference, root)
    image, _ = sample_paths(root, 0, read_manifest(root))
    image.unlink()  # an .npz without its image
    result = runner.invoke(app, ["data", "show", str(root), "--out", str(tmp_path / "s.jpg")])
    assert result.exit_code == 2 and "000000.jpg" in result.output
