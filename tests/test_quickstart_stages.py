"""prnet quickstart: orchestration (failures reported and the rest continuing, blocked and skipped stages, exit
codes, the report), fine-tuning through the trainer's resume path, resampled data. Stages are faked where the
test is about the orchestration; the fine-tuning test trains a tiny model for real."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console
from tests.train_fixtures import make_dataset, tiny_layout
from typer.testing import CliRunner

from prnet.cli import app
from prnet.cli.quickstart import run as quickstart
from prnet.cli.quickstart import stages as quickstart_stages
from prnet.io import PrnetInputError

torch.set_num_threads(1)


def quiet_display():
    from prnet.cli.quickstart.display import Display

    return Display(Console(file=io.StringIO(), width=120))


def fake_stage(name: str, fail: bool = False, seen: dict | None = None):
    """A stage that writes one file (and hands on what the real one would), or raises."""

    def stage(run, result, display):
        if seen is not None:
            seen[name] = {"model": run.model, "dataset": run.dataset}
        if fail:
            raise RuntimeError(f"{name} broke")
        path = run.path(f"{name}.txt")
        path.write_text(name)
        result.add(path, f"{name} output")
        result.numbers["samples" if name == "data" else "value"] = 1
        if name == "data":
            run.dataset = run.path()
        if name == "train":
            run.model = path

    return stage


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    """Install fake stages; returns install(fail=set of stage names) -> dict of what each stage saw."""
    monkeypatch.setattr("prnet.default_model.DEFAULT_MODEL_PATH", tmp_path / "no_default_model.pt")

    def install(fail=(), seen=None):
        for name in quickstart.SKIPPABLE:
            monkeypatch.setattr(quickstart_stages, f"stage_{name}", fake_stage(name, name in fail, seen))

    return install


def read_report(out):
    return json.loads((out / "report.json").read_text()), (out / "report.md").read_text()


def test_all_stages_ok_report_lists_every_stage_and_artifact(fakes, tmp_path):
    fakes()
    out = tmp_path / "qs"
    report = quickstart.run_quickstart(quickstart.make_config(out=out, threads=1), Console(file=io.StringIO()))
    saved, markdown = read_report(out)
    assert saved["ok"] and saved["exit_code"] == 0 and report["exit_code"] == 0
    assert [s["name"] for s in saved["stages"]] == list(quickstart.STAGES)
    assert all(s["status"] == "ok" for s in saved["stages"])
    kinds = {a["kind"] for a in saved["artifacts"]}
    assert {"data output", "train output", "compress output", "export output", "bench output", "markdown", "json"} <= kinds
    assert all(Path(a["path"]).exists() for a in saved["artifacts"])
    for name in quickstart.STAGES:
        assert f"| {name} | ok |" in markdown
    assert saved["machine"]["threads"] == 1 and not list(out.glob("*.tmp*"))  # atomic writes leave no temporaries


def test_a_failed_stage_is_reported_and_the_rest_continue(fakes, tmp_path):
    seen = {}
    fakes(fail={"compress"}, seen=seen)
    out = tmp_path / "qs"
    result = CliRunner().invoke(app, ["quickstart", "--out", str(out), "--threads", "1"])
    assert result.exit_code == 1, result.output
    saved, markdown = read_report(out)
    stages = {s["name"]: s for s in saved["stages"]}
    assert stages["compress"]["status"] == "failed" and "RuntimeError: compress broke" in stages["compress"]["error"]
    assert "compress broke" in (out / "logs" / "compress.log").read_text()  # the traceback is kept
    assert stages["export"]["status"] == stages["bench"]["status"] == "ok" and "export" in seen and "bench" in seen
    assert saved["failed_stages"] == ["compress"] and not saved["ok"]
    assert "compress broke" in markdown and "failed stages: compress" in result.output


def test_without_data_or_model_later_stages_are_blocked_not_faked(fakes, tmp_path):
    fakes(fail={"data"})
    out = tmp_path / "qs"
    report = quickstart.run_quickstart(quickstart.make_config(out=out, threads=1), Console(file=io.StringIO()))
    status = {s["name"]: s["status"] for s in report["stages"]}
    assert status == {"data": "failed", "train": "blocked", "compress": "blocked", "export": "blocked",
                      "bench": "blocked", "report": "ok"}
    assert report["exit_code"] == 1 and set(report["failed_stages"]) == {"data", "train", "compress", "export", "bench"}
    blocked = next(s for s in report["stages"] if s["name"] == "export")
    assert "no model" in blocked["error"] and "no model" in blocked["headline"]


def test_failed_training_hands_the_start_model_on(fakes, tmp_path):
    seen = {}
    fakes(fail={"train"}, seen=seen)
    start = tmp_path / "start.pt"
    start.write_bytes(b"checkpoint")  # the fakes never load it
    report = quickstart.run_quickstart(quickstart.make_config(out=tmp_path / "qs", model=start, threads=1),
                                       Console(file=io.StringIO()))
    assert seen["export"]["model"] == seen["bench"]["model"] == start
    train = next(s for s in report["stages"] if s["name"] == "train")
    assert train["status"] == "failed" and any("start model" in n for n in train["notes"])
    assert report["exit_code"] == 1


def test_skip_reuses_existing_data_and_the_start_model(fakes, tmp_path):
    seen = {}
    fakes(seen=seen)
    out = tmp_path / "qs"
    make_dataset(out / "data", n=4, size=32)
    start = tmp_path / "start.pt"
    start.write_bytes(b"checkpoint")
    result = CliRunner().invoke(app, ["quickstart", "--out", str(out), "--skip", "data", "--skip", "train,bench",
                                      "--model", str(start), "--threads", "1"])
    assert result.exit_code == 0, result.output
    saved, _ = read_report(out)
    status = {s["name"]: s["status"] for s in saved["stages"]}
    assert status["data"] == status["train"] == status["bench"] == "skipped" and status["compress"] == "ok"
    assert seen["compress"]["dataset"] == out / "data" and seen["compress"]["model"] == start
    assert "bench" not in seen


@pytest.mark.parametrize("args, message", [
    (["--skip", "report"], "choose from data, train, compress, export, bench"),
    (["--skip", "everything"], "--skip everything"),
    (["--model", "/nonexistent/model.pt"], "checkpoint not found"),
])
def test_bad_options_exit_2(tmp_path, args, message):
    result = CliRunner().invoke(app, ["quickstart", "--out", str(tmp_path / "qs"), *args])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "qs").exists()


def test_threads_pinned_or_measured():
    assert quickstart.choose_threads(1) == (1, {})
    threads, timings = quickstart.choose_threads(0)
    assert threads in timings and timings[threads] == min(timings.values()) and torch.get_num_threads() == threads


def test_training_steps_fit_the_budget():
    config = quickstart.make_config(threads=1)
    assert quickstart_stages.steps_for(240, 2.0, config, 16, 2) == int((240 - 10 - 2 * 16 / 8 * 2 / 3) / 2.3)
    assert quickstart_stages.steps_for(5, 2.0, config, 16, 2) == config.min_steps  # never fewer than min_steps
    assert quickstart_stages.steps_for(1e6, 0.01, config, 16, 2) == config.max_steps


def test_budgets_shrink_when_earlier_stages_overran():
    config = quickstart.make_config(threads=1)
    assert quickstart.stage_budget(config, "data", 0) == config.budgets["data"]
    on_time = sum(config.budgets[s] for s in ("data",))
    assert quickstart.stage_budget(config, "train", on_time) == config.budgets["train"]
    late = quickstart.stage_budget(config, "train", on_time + 100)
    assert late == config.budgets["train"] - 100 + (config.total_budget_s - sum(config.budgets.values()))
    assert quickstart.stage_budget(config, "train", 10_000) == config.budgets["train"] / 3
    skipping = quickstart.make_config(threads=1, skip=("bench",))  # a skipped stage's time is not reserved
    assert quickstart.stage_budget(skipping, "train", on_time + 100) == config.budgets["train"]


def test_resized_samples_keep_maps_and_landmarks_consistent(tmp_path):
    from prnet.data.dataset import PositionMapDataset
    from prnet.geometry.posmap import landmarks_from_posmap
    from prnet.geometry.resample import resize_layout
    from prnet.train.augment import ResizedSamples  # what the quickstart stages resample with

    layout = tiny_layout(32)
    source = PositionMapDataset(make_dataset(tmp_path / "data", n=2, size=32, layout=layout))
    resized = ResizedSamples(source, 64)
    sample, original = resized[1], source[1]
    assert sample.image.shape == (64, 64, 3) and sample.posmap.shape == (64, 64, 3)
    np.testing.assert_allclose(sample.landmarks[:, :2], (original.landmarks[:, :2] + 0.5) * 2 - 0.5, atol=1e-3)
    np.testing.assert_allclose(sample.landmarks[:, 2], original.landmarks[:, 2] * 2, rtol=1e-5)
    from_map = landmarks_from_posmap(sample.posmap, resize_layout(layout, 64))
    assert np.abs(from_map - sample.landmarks).max() < 1.5  # the map, read at the new layout, agrees
    assert ResizedSamples(source, 32)[0].image.shape == (32, 32, 3)


def test_finetuning_continues_from_the_start_model(tmp_path):
    """The start checkpoint seeds a step-0 run of prnet.train.loop: it trains the given number of steps from those
    weights (not from a fresh init), in two resumed segments, reports validation NME before and after and
    leaves best.pt only."""
    from prnet.checkpoint import load_model, save_checkpoint
    from prnet.model import create_model

    layout = tiny_layout(32)
    data = make_dataset(tmp_path / "data", n=12, size=32, layout=layout)
    torch.manual_seed(123)
    start = create_model("prnet-quarter", input_size=32, bn_momentum=0.1)
    save_checkpoint(tmp_path / "start.pt", start, layout)
    config = quickstart.make_config(fast=True, out=tmp_path / "qs", model=tmp_path / "start.pt", min_steps=2,
                                    max_steps=6, batch_size=4, threads=1)
    run = quickstart.QuickstartRun(config, tmp_path / "start.pt", threads=1)
    run.dataset = data
    result = quickstart.StageResult("train", 60)
    quickstart_stages.stage_train(run, result, quiet_display())
    numbers = result.numbers
    # two segments (the second resumes the first: steps 1-3 sized by the probe, 4-6 by the measured speed)
    assert numbers["mode"] == "fine-tune" and numbers["steps"] == numbers["final_step"] == 6
    metrics = [json.loads(line) for line in (tmp_path / "qs" / "train" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if "val_nme" in m] == [3, 6]
    assert 0 < numbers["val_nme_before"] < 10 and 0 < numbers["val_nme_after"] < 10
    trained = load_model(run.model)
    assert trained.layout.layout_id == layout.layout_id and trained.config.bn_momentum == 0.1
    moved = [(a - b).abs().max().item() for a, b in zip(start.parameters(), trained.model.parameters())]
    assert 0 < max(moved) < 0.05  # trained a little, from the start weights (a fresh init differs by ~1)
    assert not list((tmp_path / "qs" / "train" / "checkpoints").glob("step_*.pt"))
    assert [a.kind for a in result.artifacts] == ["checkpoint", "training log"]


def test_finetuning_rejects_a_model_in_another_layout(tmp_path):
    from prnet.checkpoint import save_checkpoint
    from prnet.model import create_model

    data = make_dataset(tmp_path / "data", n=4, size=32, layout=tiny_layout(32))
    save_checkpoint(tmp_path / "start.pt", create_model("prnet-quarter", input_size=32), tiny_layout(32, "other"))
    run = quickstart.QuickstartRun(quickstart.make_config(fast=True, out=tmp_path / "qs", model=tmp_path / "start.pt"),
                                   tmp_path / "start.pt")
    run.dataset = data
    with pytest.raises(PrnetInputError, match="cannot be fine-tuned"):
        quickstart_stages.stage_train(run, quickstart.StageResult("train", 60), quiet_display())


def test_keep_best_checkpoint_survives_a_segment_that_did_not_improve(tmp_path):
    # A resumed second segment that does not beat the first leaves best.pt from the first segment and
    # last_checkpoint = its own final step: best.pt must be kept and chosen, never a deleted step file.
    from prnet.cli.quickstart.stages import keep_best_checkpoint

    for name in ("best.pt", "step_0000050.pt", "step_0000107.pt"):
        (tmp_path / name).write_bytes(b"x")
    chosen = keep_best_checkpoint(tmp_path, tmp_path / "step_0000107.pt")
    assert chosen == tmp_path / "best.pt" and chosen.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]

    (tmp_path / "best.pt").unlink()
    (tmp_path / "step_0000200.pt").write_bytes(b"x")
    assert keep_best_checkpoint(tmp_path, tmp_path / "step_0000200.pt") == tmp_path / "step_0000200.pt"
    with pytest.raises(RuntimeError, match="no checkpoint"):
        keep_best_checkpoint(tmp_path / "empty", None)
