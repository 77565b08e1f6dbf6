"""Every command reports bad input the same way: `error: <message>` with exit code 2, the path on one line."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from prnet.cli.app import app
from prnet.cli.errors import exit_with_error


def test_a_long_path_with_brackets_prints_whole_on_one_line():
    path = "/tmp/" + "a-very-long-folder-name/" * 8 + "[weights].pt"
    demo = typer.Typer()

    @demo.command()
    def fail() -> None:
        exit_with_error(ValueError(f"{path}: file not found"))

    result = CliRunner().invoke(demo, [])
    assert result.exit_code == 2
    assert f"error: {path}: file not found" in result.output.splitlines()


def test_commands_name_the_missing_file_on_one_line(tmp_path):
    missing = tmp_path / ("deep-" * 12) / "missing.pt"
    for command in (["export", "onnx", "--model", str(missing)],
                    ["eval", "--model", str(missing), "--data", str(tmp_path)],
                    ["compress", "--model", str(missing), "--data", str(tmp_path), "--int8"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        assert any(str(missing) in line for line in result.output.splitlines()), (command, result.output)
