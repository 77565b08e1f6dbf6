"""`prnet export ...` through Typer's CliRunner: tables, exit codes, clear errors."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from prnet.export.formats import module_available
from tests.export_fixtures import make_checkpoint
from prnet.cli import app

cli = CliRunner()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("cli") / "quarter.pt", input_size=64)


def test_export_onnx_command_reports_size_parity_and_path(checkpoint, tmp_path):
    out = tmp_path / "model.onnx"
    result = cli.invoke(app, ["export", "onnx", "--model", str(checkpoint), "--out", str(out), "--dynamic-batch",
                              "--parity-images", "2", "--latency-runs", "1"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and f"wrote {out}" in result.output.replace("\n", "")
    for text in ("onnx", "fp32", "ok", "max px", "procedural"):
        assert text in result.output


def test_export_parity_failure_exits_1(checkpoint, tmp_path):
    out = tmp_path / "strict.onnx"
    result = cli.invoke(app, ["export", "onnx", "-m", str(checkpoint), "-o", str(out), "--tolerance", "1e-12",
                              "--parity-images", "1", "--latency-runs", "0"])
    assert result.exit_code == 1 and "parity check failed" in result.output and "nothing written" in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []  # no temporary file left either


def test_export_bad_checkpoint_exits_2(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"garbage")
    for model in (bad, tmp_path / "missing.pt"):
        result = cli.invoke(app, ["export", "onnx", "--model", str(model)])
        assert result.exit_code == 2 and str(model.name) in result.output


@pytest.mark.skipif(module_available("tensorrt"), reason="tensorrt is installed here")
def test_export_tensorrt_without_tensorrt_exits_3_saying_what_is_needed(checkpoint):
    result = cli.invoke(app, ["export", "tensorrt", "--model", str(checkpoint)])
    assert result.exit_code == 3
    text = " ".join(result.output.split())
    assert "TensorRT is not installed" in text and "NVIDIA GPU" in text and "tensorrt-cu12" in text


def test_export_all_reports_every_row(checkpoint, tmp_path):
    result = cli.invoke(app, ["export", "all", "-m", str(checkpoint), "--out-dir", str(tmp_path), "-f", "onnx",
                              "-f", "tensorrt", "--parity-images", "1", "--latency-runs", "0"])
    expected_tensorrt = "ok" if module_available("tensorrt") else "unavailable"
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 3}
    assert " ok " in rows["onnx"] and f" {expected_tensorrt} " in rows["tensorrt"]
    assert (tmp_path / "quarter.onnx").is_file()
    bad = cli.invoke(app, ["export", "all", "-m", str(checkpoint), "-f", "torchscript"])
    assert bad.exit_code == 2 and "unknown format" in bad.output
