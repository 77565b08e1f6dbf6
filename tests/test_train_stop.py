"""Stopping a run cleanly: SIGINT / SIGTERM finish the step, write its checkpoint, exit 128 + the signal's number,
and `--resume` continues with exactly the curve of a run that was never stopped (prnet/train/stop.py)."""

import itertools
import os
import signal

import pytest
from typer.testing import CliRunner

from prnet.cli import app
from prnet.train import loop
from prnet.train.loop import TIMING_KEYS
from prnet.train.rundir import read_metrics
from prnet.train.stop import StopSignals, ignore_stop_signals
from tests.train_fixtures import make_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("stop") / "data", n=24, size=64)


@pytest.fixture
def restore_handlers():
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_a_signal_sets_the_flag_and_the_handlers_come_back(restore_handlers):
    before = signal.getsignal(signal.SIGTERM)
    with StopSignals() as stop:
        assert stop.requested is None
        os.kill(os.getpid(), signal.SIGTERM)  # delivered to this (main) thread before the next line runs
        assert stop.requested == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_second_signal_interrupts_at_once(restore_handlers):
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with pytest.raises(KeyboardInterrupt), StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested == "SIGINT"
        os.kill(os.getpid(), signal.SIGINT)


def test_ignored_signals_stay_ignored(restore_handlers):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what `cmd &` without job control leaves a background job
    with StopSignals():
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN
    ignore_stop_signals()  # the DataLoader workers' init: the main process alone decides when to stop
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN


def losses(out_dir):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in read_metrics(out_dir)]


def test_sigterm_mid_run_saves_that_step_and_resume_continues_exactly(tmp_path, data, monkeypatch, restore_handlers):
    def train_args(out):
        return ["train", "--data", str(data), "--preset", "cpu-tiny", "--out", str(out), "--steps", "8", "--threads",
                "1", "--workers", "0", "--no-progress", "--set", "tensorboard=false", "--set", "log_every=1",
                "--set", "save_every=100", "--set", "eval_every=4", "--set", "val_fraction=0.2"]

    cli = CliRunner()
    straight = cli.invoke(app, train_args(tmp_path / "straight"))
    assert straight.exit_code == 0, straight.output

    calls, weighted_mse = itertools.count(1), loop.weighted_mse

    def loss_then_sigterm(*args, **kwargs):  # `kill PID` arriving during step 3's forward pass
        if next(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return weighted_mse(*args, **kwargs)

    monkeypatch.setattr(loop, "weighted_mse", loss_then_sigterm)
    stopped = cli.invoke(app, train_args(tmp_path / "stopped"))
    checkpoint = tmp_path / "stopped" / "checkpoints" / "step_0000003.pt"
    assert stopped.exit_code == 128 + signal.SIGTERM, stopped.output
    assert "SIGTERM: stopped at step 3 of 8" in stopped.output and f"--resume {checkpoint}" in stopped.output
    assert sorted(p.name for p in checkpoint.parent.glob("step_*.pt")) == [checkpoint.name]  # save_every is 100
    assert max(r["step"] for r in read_metrics(tmp_path / "stopped")) == 3

    monkeypatch.setattr(loop, "weighted_mse", weighted_mse)
    resumed = cli.invoke(app, ["train", "--resume", str(checkpoint), "--out", str(tmp_path / "stopped")])
    assert resumed.exit_code == 0, resumed.output
    assert losses(tmp_path / "stopped") == losses(tmp_path / "straight")
