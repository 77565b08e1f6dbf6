"""Shipped model names (`--model default`, `--model default-fast`) resolve to the files next to the default model."""

from __future__ import annotations

import pytest

from prnet.default_model import MADE_BY, SHIPPED_MODELS, resolve_model
from prnet.io import PrnetInputError


def test_names_resolve_to_shipped_files(tmp_path, monkeypatch):
    monkeypatch.setattr("prnet.default_model.DEFAULT_MODEL_PATH", tmp_path / "default_model.pt")
    for filename in SHIPPED_MODELS.values():
        (tmp_path / filename).write_bytes(b"x")
    assert resolve_model(None) == tmp_path / "default_model.pt"
    assert resolve_model("default") == tmp_path / "default_model.pt"
    assert resolve_model("default-fast") == tmp_path / SHIPPED_MODELS["default-fast"]


def test_missing_shipped_file_says_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.setattr("prnet.default_model.DEFAULT_MODEL_PATH", tmp_path / "default_model.pt")
    with pytest.raises(PrnetInputError, match="prnet compress"):
        resolve_model("default-fast")
    with pytest.raises(PrnetInputError, match="full256_model.pt.*--input-size 256"):
        resolve_model("full256")
    assert set(MADE_BY) == set(SHIPPED_MODELS) - {"default"}  # every other shipped name says how it is made


def test_an_existing_file_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "default-fast").write_bytes(b"x")
    assert str(resolve_model("default-fast")) == "default-fast"
    assert str(resolve_model("runs/x.pt")) == "runs/x.pt"  # any other path is taken as given


def test_shipped_fast_model_agrees_with_the_default_on_a_face():
    """The shipped compressed model on a synthetic face no pool trained on: same input size and layout as the
    default, landmarks within a few pixels of the FP32 default's (its measured mean deviation is < 1 px)."""
    import numpy as np

    from prnet.data.synth.render import SynthConfig, render_sample
    from prnet.default_model import DEFAULT_MODEL_PATH
    from prnet.export.runners import load_runner
    from prnet.geometry.posmap import landmarks_from_posmap

    if not (DEFAULT_MODEL_PATH.parent / SHIPPED_MODELS["default-fast"]).is_file():
        pytest.skip("this install ships no default-fast model")
    fast, full = load_runner("default-fast"), load_runner(None)
    assert fast.input_size == full.input_size and fast.layout.layout_id == full.layout.layout_id
    size = fast.input_size
    image = render_sample(0, 777016, SynthConfig(image_size=size)).image[None].astype(np.float32) / 255.0
    points = [landmarks_from_posmap(runner(image)[0], runner.layout)[:, :2] for runner in (fast, full)]
    assert np.linalg.norm(points[0] - points[1], axis=-1).mean() < 3.0


def test_shipped_full256_model_runs_at_256_px_and_finds_the_landmarks():
    """The shipped 256 px model reads its input size from its checkpoint and places the 68 landmarks of a synthetic
    face no pool trained on (seed 777016) within a few percent (its measured mean on 200 such faces is in the card)."""
    import numpy as np

    from prnet.data.synth.render import SynthConfig, render_sample
    from prnet.default_model import DEFAULT_MODEL_PATH
    from prnet.export.runners import load_runner
    from prnet.geometry.posmap import landmarks_from_posmap
    from prnet.metrics import nme_68

    if not (DEFAULT_MODEL_PATH.parent / SHIPPED_MODELS["full256"]).is_file():
        pytest.skip("this install ships no full256 model")
    runner = load_runner("full256")
    assert runner.input_size == 256
    errors = []
    for index in range(2):
        sample = render_sample(index, 777016, SynthConfig(image_size=256))
        pred = landmarks_from_posmap(runner(sample.image[None].astype(np.float32) / 255.0)[0], runner.layout)
        errors.append(float(nme_68(pred[None], sample.landmarks[None])[0]))
    assert max(errors) < 0.10, errors
