from typer.testing import CliRunner

from prnet.cli import app
from prnet.checkpoint import load_model
from tests.train_fixtures import make_dataset

runner = CliRunner()
FAST = ["--threads", "1", "--workers", "0", "--no-progress", "--set", "tensorboard=false"]


def test_train_command_runs_and_resumes(tmp_path):
    data = make_dataset(tmp_path / "data", n=24, size=64)
    out = tmp_path / "run"
    args = ["train", "--data", str(data), "--preset", "cpu-tiny", "--out", str(out), "--steps", "4",
            "--set", "eval_every=2", "--set", "save_every=2", "--set", "val_fraction=0.2", *FAST]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert load_model(out / "checkpoints" / "step_0000004.pt").meta["step"] == 4
    result = runner.invoke(app, ["train", "--resume", "auto", "--out", str(out), "--steps", "6", *FAST])
    assert result.exit_code == 0, result.output
    assert load_model(out / "checkpoints" / "step_0000006.pt").meta["train_config"]["max_steps"] == 6


def test_train_command_bad_input_exits_2_with_a_message(tmp_path):
    cases = [
        (["--data", str(tmp_path / "nope"), "--preset", "cpu-tiny"], "not found"),
        (["--data", str(tmp_path), "--preset", "cpu-tiny", "--set", "bogus=1"], "unknown training options"),
        (["--resume", "auto", "--out", str(tmp_path / "empty")], "no checkpoints"),
        (["--data", str(tmp_path), "--preset", "nope"], "unknown preset"),
        (["--data", str(tmp_path), "--preset", "cpu-tiny", "--device", "cpu", "--precision", "fp16"], "needs a CUDA"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, ["train", *extra, "--out", str(tmp_path / "o"), *FAST] if "--out" not in extra
                               else ["train", *extra, *FAST])
        assert result.exit_code == 2, (extra, result.output)
        assert message in " ".join(result.output.split()), (extra, result.output)
