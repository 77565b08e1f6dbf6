"""The shipped default model: its path, the clear error without it, and predict/eval/bench using it when
--model is omitted (a tiny stand-in checkpoint is patched in; the real file is 27 MB)."""

from __future__ import annotations

import json

import pytest
import torch
from tests.predict_fixtures import make_eval_dataset, tiny_checkpoint
from typer.testing import CliRunner

from prnet.cli import app
from prnet.io import PrnetInputError

torch.set_num_threads(1)


@pytest.fixture
def default_model(tmp_path, monkeypatch):
    path = tiny_checkpoint(tmp_path / "default_model.pt")
    monkeypatch.setattr("prnet.default_model.DEFAULT_MODEL_PATH", path)
    return path


def test_missing_default_model_says_how_to_get_one(tmp_path, monkeypatch):
    from prnet import default_model

    monkeypatch.setattr(default_model, "DEFAULT_MODEL_PATH", tmp_path / "default_model.pt")
    assert not default_model.has_default_model()
    with pytest.raises(PrnetInputError) as err:
        default_model.default_model_path()
    assert "default_model.pt" in str(err.value) and "prnet train" in str(err.value) and "--model" in str(err.value)


def test_default_model_path_loads(default_model):
    from prnet.checkpoint import load_model
    from prnet.default_model import default_model_path

    assert default_model_path() == default_model and load_model(default_model_path()).config.input_size == 64


def test_eval_without_model_uses_the_default(default_model, tmp_path):
    root, _ = make_eval_dataset(tmp_path / "data", n=3)
    result = CliRunner().invoke(app, ["eval", "--data", str(root), "--out", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "eval" / "eval.json").read_text())["samples"] == 3


def test_predict_without_model_uses_the_default(default_model, tmp_path):
    import cv2
    import numpy as np

    image = np.full((80, 80, 3), 120, np.uint8)
    cv2.imwrite(str(tmp_path / "face.png"), image)
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "face.png"), "--bbox", "10,10,70,70",
                                      "--out", str(tmp_path / "pred"), "--no-refine"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pred" / "face.json").is_file()


def test_bench_without_model_uses_the_default(default_model, tmp_path, monkeypatch):
    seen = {}

    def fake_benchmark(model, *args, **kwargs):  # the CLI's wiring is under test, not the benchmark
        seen["model"] = model
        return {"rows": [{"status": "ok"}]}, {}

    monkeypatch.setattr("prnet.bench.api.benchmark", fake_benchmark)
    result = CliRunner().invoke(app, ["bench", "--out", str(tmp_path / "bench")])
    assert result.exit_code == 0, result.output
    assert seen["model"] == default_model
