"""End-to-end training: learning, exact resume after SIGKILL, DDP on CPU (gloo), NaN and bad-resume errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from prnet.checkpoint import load_checkpoint, load_model
from prnet.data.format import Manifest, create_dataset, write_sample
from prnet.io import PrnetInputError
from prnet.train.config import make_config
from prnet.train.loop import TIMING_KEYS, TrainingDiverged, resume_config, train
from prnet.train.rundir import read_metrics
from tests.train_fixtures import make_dataset, make_sample, tiny_layout

REPO = Path(__file__).resolve().parents[1]
TINY = dict(num_threads=1, num_workers=0, progress=False, tensorboard=False, log_every=1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("train") / "data", n=40, size=64)


def losses(out_dir):
    """Every logged record without timings (the exact-resume comparison)."""
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in read_metrics(out_dir)]


def run_subprocess(code: str, env_extra=None, **popen):
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'tests'}", **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=REPO, **popen)


def test_training_reduces_validation_loss_and_writes_the_run(tmp_path, data):
    config = make_config("cpu-tiny", data=str(data), out_dir=str(tmp_path / "run"), max_steps=60, eval_every=30,
                         save_every=30, val_fraction=0.2, **{**TINY, "tensorboard": True, "precision": "fp32"})
    result = train(config)
    evals = [r for r in read_metrics(tmp_path / "run") if "val_nme" in r]
    assert [r["step"] for r in evals] == [30, 60]
    first_loss = next(r["loss"] for r in read_metrics(tmp_path / "run") if "loss" in r)
    assert evals[-1]["val_loss"] < 0.5 * first_loss
    assert result.best_checkpoint.is_file() and (tmp_path / "run" / "config.json").is_file()
    assert list((tmp_path / "run" / "tb").iterdir())
    loaded = load_model(result.last_checkpoint)
    assert loaded.config.input_size == 64 and loaded.layout.size == 64
    assert loaded.meta["train_config"]["max_steps"] == 60


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_same_curve(tmp_path, data):
    settings = dict(data=str(data), max_steps=30, save_every=5, eval_every=10, keep_last=2, val_fraction=0.2, **TINY)
    train(make_config("cpu-tiny", out_dir=str(tmp_path / "straight"), **settings))

    killed = tmp_path / "killed"
    code = ("import json, sys; from prnet.train.loop import train; from prnet.train.config import make_config; "
            "train(make_config('cpu-tiny', **json.loads(sys.argv[1])))")
    proc = subprocess.Popen(
        [sys.executable, "-c", code, json.dumps({**settings, "out_dir": str(killed)})], cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not list((killed / "checkpoints").glob("step_*.pt")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    logged = [r["step"] for r in read_metrics(killed)]
    assert max(logged) < 30, "the run finished before it was killed: the test did not interrupt it"

    config, checkpoint = resume_config("auto", None, {"out_dir": str(killed)})
    result = train(config, resume=checkpoint)
    assert result.step == 30
    assert losses(killed) == losses(tmp_path / "straight")


@pytest.mark.slow
def test_ddp_two_cpu_processes_agree(tmp_path, data):
    script = tmp_path / "ddp_train.py"
    script.write_text(
        "import json, sys\nfrom prnet.train.loop import train\nfrom prnet.train.config import make_config\n"
        "train(make_config('cpu-tiny', **json.loads(sys.argv[1])))\n")
    settings = dict(data=str(data), out_dir=str(tmp_path / "ddp"), max_steps=6, save_every=3, eval_every=3,
                    batch_size=8, val_fraction=0.2, **TINY)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
         json.dumps(settings)], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for step in (3, 6):
        meta = load_checkpoint(tmp_path / "ddp" / "checkpoints" / f"step_{step:07d}.pt")["meta"]
        assert meta["world_size"] == 2
        assert len(meta["rank_checksums"]) == 2 and meta["rank_checksums"][0] == meta["rank_checksums"][1]
    assert json.loads((tmp_path / "ddp" / "config.json").read_text())["resolved"]["world_size"] == 2


def nan_dataset(root: Path, size=64, n=12):
    layout = tiny_layout(size)
    manifest = create_dataset(root, layout, Manifest(size, layout.layout_id, map_encoding="float32", image_ext=".png"))
    rng = np.random.default_rng(0)
    for i in range(n):
        image, posmap, landmarks = make_sample(layout, rng)
        posmap[5, 5:20] = np.nan
        write_sample(root, manifest, i, image, posmap, landmarks, {})
    return root


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, data):
    run = tmp_path / "run"
    train(make_config("cpu-tiny", data=str(data), out_dir=str(run), max_steps=4, save_every=4, eval_every=4, **TINY))
    good = run / "checkpoints" / "step_0000004.pt"
    before = good.read_bytes()
    bad = nan_dataset(tmp_path / "nan")
    config, checkpoint = resume_config("auto", None, {"out_dir": str(run), "data": str(bad), "max_steps": 8})
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 5.*step_0000004\.pt"):
        train(config, resume=checkpoint)
    assert good.read_bytes() == before and sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "best.pt", "step_0000004.pt"]
    load_model(good)


def test_incompatible_or_foreign_checkpoint_on_resume_is_a_clear_error(tmp_path, data):
    run = tmp_path / "run"
    train(make_config("cpu-tiny", data=str(data), out_dir=str(run), max_steps=2, save_every=2, eval_every=2, **TINY))
    config, checkpoint = resume_config("auto", None, {"out_dir": str(run), "input_size": 96, "max_steps": 4})
    with pytest.raises(PrnetInputError, match=r"model differs from this run's in \['input_size'\]"):
        train(config, resume=checkpoint)
    other = make_dataset(tmp_path / "other", n=12, size=64, layout=tiny_layout(64, name="other-layout"))
    config, checkpoint = resume_config("auto", None, {"out_dir": str(run), "data": str(other), "max_steps": 4})
    with pytest.raises(PrnetInputError, match="UV layout"):
        train(config, resume=checkpoint)
    with pytest.raises(PrnetInputError, match="not a resumable training checkpoint"):
        resume_config(run / "checkpoints" / "best.pt", None, {})
    torch.save({"hello": 1}, tmp_path / "foreign.pt")
    with pytest.raises(PrnetInputError, match="not a prnet checkpoint"):
        resume_config(tmp_path / "foreign.pt", None, {})
    with pytest.raises(PrnetInputError, match="no checkpoints"):
        resume_config("auto", None, {"out_dir": str(tmp_path / "empty")})


def test_resume_from_an_older_checkpoint_sets_the_later_ones_aside(tmp_path, data):
    settings = dict(data=str(data), max_steps=6, save_every=2, eval_every=3, keep_last=5, val_fraction=0.2, **TINY)
    train(make_config("cpu-tiny", out_dir=str(tmp_path / "straight"), **settings))
    run = tmp_path / "run"
    train(make_config("cpu-tiny", out_dir=str(run), **settings))
    best_before = load_checkpoint(run / "checkpoints" / "best.pt")["meta"]["step"]

    config, checkpoint = resume_config(str(run / "checkpoints" / "step_0000002.pt"), None, {})
    train(config, resume=checkpoint)
    superseded = run / "checkpoints" / "superseded"
    assert {p.name for p in superseded.iterdir()} == {"step_0000004.pt", "step_0000006.pt", "best.pt"}
    assert load_checkpoint(superseded / "best.pt")["meta"]["step"] == best_before > 2  # kept, not deleted
    assert [p.name for p in sorted((run / "checkpoints").glob("step_*.pt"))] == [
        "step_0000002.pt", "step_0000004.pt", "step_0000006.pt"]  # the new run's, which `--resume auto` finds
    assert losses(run) == losses(tmp_path / "straight")
