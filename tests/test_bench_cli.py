"""`prnet bench` end to end on a tiny random checkpoint (32 px prnet-quarter), and its input errors."""

from __future__ import annotations

import json
import sys

import pytest
import typer
from typer.testing import CliRunner

from tests.bench_fixtures import tiny_checkpoint, validation, write_dataset
from prnet.export.parity import Tolerance, check_deviation, rounding_tolerance
from prnet.cli.commands.bench import bench_command

FAST = ["--threads", "1", "--batch", "2", "--iters", "2", "--rounds", "1", "--warmup", "0"]


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    app.command()(bench_command)
    return app


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_cli")
    data = validation(count=3, size=32)
    return tiny_checkpoint(root / "tiny.pt", data.layout), write_dataset(root / "data", data)


def test_bench_writes_a_run_dir(app, assets, tmp_path):
    model, data = assets
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["--model", str(model), "--data", str(data), "--variants", "fp32,fp16",
                                      "--backends", "torch", "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    rows = {row["name"]: row for row in report["rows"]}
    assert set(rows) == {"fp32/torch", "fp16/torch"}
    assert rows["fp32/torch"]["status"] == "ok", rows
    assert rows["fp32/torch"]["accuracy"]["nme68_2d"] > 0 and rows["fp32/torch"]["deviation_px"]["max"] == 0
    # fp16 on the CPU torch backend: listed as skipped with the reason, not timed
    assert rows["fp16/torch"]["status"] == "unavailable" and "fp16" in rows["fp16/torch"]["reason"]
    assert rows["fp16/torch"]["latency_ms"] is None
    from prnet.checkpoint import load_model

    assert rows["fp32/torch"]["params"] == sum(p.numel() for p in load_model(model).model.parameters())
    assert report["settings"]["threads"] == 1 and report["data"]["num_samples"] == 3
    assert (out / "report.md").is_file() and (out / "latency_vs_nme.png").is_file()
    assert "fp32/torch" in result.output


def test_bench_without_model_or_default_says_pass_model(app, monkeypatch, tmp_path):
    monkeypatch.setattr("prnet.default_model.DEFAULT_MODEL_PATH", tmp_path / "no_default_model.pt")
    result = CliRunner().invoke(app, ["--out", str(tmp_path / "run"), *FAST])
    assert result.exit_code == 2
    assert "--model" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--variants", "fp32,fp99"], "unknown variant fp99"),
        (["--backends", "torch,abacus"], "unknown backend abacus"),
        (["--data", "/nonexistent/prnet-bench-data"], "dataset directory not found"),
        (["--batch", "0"], "--batch must be at least 1"),
    ],
)
def test_bench_input_errors_exit_2(app, assets, tmp_path, args, message):
    model, data = assets
    base = ["--model", str(model), "--data", str(data), "--out", str(tmp_path / "run"), *FAST]
    result = CliRunner().invoke(app, base + args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_bench_real_backends_and_compressed_variants(app, assets, tmp_path):
    """fp32/deploy/int8 through torch and ONNX Runtime (export/ + compress/): rows by name, honest statuses."""
    pytest.importorskip("onnxruntime")
    model, data = assets
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["--model", str(model), "--data", str(data), "--variants", "fp32,deploy,int8",
                                      "--backends", "torch,onnxruntime,coreml", "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads((out / "report.json").read_text())["rows"]}
    for name in ("fp32/torch", "fp32/onnxruntime", "deploy/torch", "deploy/onnxruntime", "int8/onnxruntime"):
        assert rows[name]["status"] == "ok", (name, rows[name]["reason"])
        assert rows[name]["size_bytes"] > 0 and rows[name]["latency_ms"]["n"] == 2
    # the deployment rewrite and the ONNX export are exact to float rounding; INT8 is not (but it ran)
    from prnet.checkpoint import load_model

    loaded = load_model(model)
    per_axis = rounding_tolerance(loaded.model, validation(count=3, size=32).images, channels_last=True,
                                  output_scale=loaded.config.output_scale)  # the 3 images of the data set
    euclidean = Tolerance(max=3**0.5 * per_axis.max, mean=3**0.5 * per_axis.mean,  # |(dx, dy, dz)|
                          reason=per_axis.reason + ", x sqrt(3) for the (x, y, z) distance")
    for name in ("fp32/onnxruntime", "deploy/torch", "deploy/onnxruntime"):
        check_deviation(rows[name]["deviation_px"]["max"], None, euclidean, name)
    assert rows["int8/onnxruntime"]["size_bytes"] < rows["fp32/onnxruntime"]["size_bytes"]
    assert rows["int8/torch"]["status"] == "unavailable" and "QDQ" in rows["int8/torch"]["reason"]
    if sys.platform != "darwin":
        assert all(rows[f"{v}/coreml"]["status"] == "unavailable" for v in ("fp32", "deploy", "int8"))


def test_registries_are_consistent():
    """Every registered variant/backend is found by its own name and says plainly whether it runs here."""
    from prnet.bench.backends import BACKENDS
    from prnet.bench.specs import unavailable_reason
    from prnet.bench.variants import VARIANTS

    for registry in (VARIANTS, BACKENDS):
        for name, spec in registry.items():
            assert spec.name == name and spec.description
            reason = unavailable_reason(spec)
            assert reason is None or (isinstance(reason, str) and reason)
    assert "fp32" in VARIANTS and "torch" in BACKENDS
    assert unavailable_reason(VARIANTS["fp32"]) is None and unavailable_reason(BACKENDS["torch"]) is None


def test_bench_compressed_output_rows(app, assets, tmp_path):
    """--compressed DIR (what `prnet compress` writes: model.pt holding its INT8 model) adds two rows beside fp32."""
    pytest.importorskip("onnxruntime")
    import numpy as np
    import torch

    from prnet.checkpoint import save_compressed
    from prnet.compress.int8 import Int8Config
    from prnet.compress.int8 import apply as int8_apply
    from prnet.compress.svd import SvdConfig
    from prnet.compress.svd import apply as svd_apply
    from prnet.export.deploy import to_deployment
    from prnet.checkpoint import load_model

    model, data = assets
    loaded = load_model(model)
    result = svd_apply(to_deployment(loaded.model), SvdConfig(energy=0.9, input_size=loaded.config.input_size))
    out_dir = tmp_path / "compressed"
    images = torch.from_numpy(np.random.default_rng(0).random((4, 3, 32, 32), dtype=np.float32))
    int8_apply(result.model, Int8Config(calibration_count=4), lambda m: m(images), out_dir / "model.int8.onnx")
    save_compressed(out_dir / "model.pt", result.model, loaded.config, loaded.layout, result.plan,
                    int8_onnx=(out_dir / "model.int8.onnx").read_bytes())  # one file: the checkpoint holds its INT8

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["--model", str(model), "--data", str(data), "--compressed", str(out_dir),
                                      "--variants", "fp32", "--backends", "torch,onnxruntime", "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads((out / "report.json").read_text())["rows"]}
    assert set(rows) == {f"{v}/{b}" for v in ("fp32", "compressed", "compressed+int8") for b in ("torch", "onnxruntime")}
    for name in ("compressed/torch", "compressed/onnxruntime", "compressed+int8/onnxruntime"):
        assert rows[name]["status"] == "ok", (name, rows[name]["reason"])
        assert rows[name]["deviation_px"] is not None and rows[name]["accuracy"]["delta_nme68_2d"] is not None
    assert rows["compressed/torch"]["macs"] < rows["fp32/torch"]["macs"]
    assert rows["compressed+int8/torch"]["status"] == "unavailable"


def test_bench_takes_shipped_model_names(app, assets, tmp_path, monkeypatch):
    """--model default-fast is the shipped file, as in predict/eval/export (was: 'default-fast: model file not found')."""
    from prnet import default_model

    model, data = assets
    monkeypatch.setattr(default_model, "DEFAULT_MODEL_PATH", tmp_path / "assets" / "default_model.pt")
    args = ["--model", str(model), "--model", "default-fast", "--data", str(data), "--out", str(tmp_path / "r"), *FAST]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "--model default-fast: this install has no default_model_fast.onnx" in " ".join(result.output.split())
