"""Input resolution as a compression lever (`prnet compress --input-size`, prnet.compress.resolution)."""

import json

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from prnet.checkpoint import load_model
from prnet.cli.commands.compress import compress_command
from prnet.compress.data import random_batches
from prnet.compress.distill import DistillConfig, finetune
from prnet.compress.report import render_markdown
from prnet.compress.resolution import Resolution, resize_maps
from prnet.data.dataset import PositionMapDataset
from prnet.export.deploy import to_deployment
from prnet.geometry.resample import resize_layout
from prnet.train.augment import resize_sample
from tests.compress_fixtures import awake_model, checkpoint_for
from tests.train_fixtures import make_dataset

app = typer.Typer()
app.command()(compress_command)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "ds64", n=12, size=64)


@pytest.fixture(scope="module")
def checkpoint(dataset, tmp_path_factory):
    return checkpoint_for(dataset, tmp_path_factory.mktemp("ckpt") / "model64.pt")


def test_resize_maps_matches_how_ground_truth_maps_are_resized(dataset):
    from prnet.geometry.resample import resize_posmap

    sample = PositionMapDataset(dataset)[0]
    small = resize_sample(sample, 32)
    maps = torch.from_numpy(sample.posmap).permute(2, 0, 1)[None].float()
    resized = resize_maps(maps, 32)[0].permute(1, 2, 0).numpy()
    assert resized.shape == (32, 32, 3)
    np.testing.assert_allclose(resized, small.posmap, atol=1e-3)  # UV grid, x/y pixel centres and z scale
    assert resize_maps(maps, 64) is maps
    # the numpy twin (bench scores a smaller model through it) agrees, and a point goes back where it was
    np.testing.assert_allclose(resize_posmap(sample.posmap, 32), small.posmap, atol=1e-3)
    point = np.array([[10.0, 20.0, 5.0]])
    back = resize_posmap(resize_posmap(np.tile(point, (64, 64, 1)).astype(np.float32), 32), 64)
    np.testing.assert_allclose(back[5, 5], point[0], atol=1e-4)


def test_the_student_starts_as_the_teacher_at_the_smaller_size():
    teacher = to_deployment(awake_model(64))
    resolution = Resolution(64, 32)
    student = resolution.student_init(teacher)
    assert student.output_scale == pytest.approx(32 * 1.1) and teacher.output_scale == pytest.approx(64 * 1.1)
    assert student.config.input_size == 32 and teacher.config.input_size == 64
    same = Resolution(64, 64)
    assert not same.changed and same.teacher_module(teacher) is teacher
    with torch.no_grad():  # fully convolutional: a 32 px image gives a 32 px map in 32 px crop pixels
        out = student(torch.rand(1, 3, 32, 32))
    assert out.shape == (1, 3, 32, 32) and 0 <= float(out.min()) and float(out.max()) <= 32 * 1.1 + 1e-4


def test_paired_batches_show_the_same_faces_at_both_sizes(dataset):
    data = PositionMapDataset(dataset)
    batch = next(Resolution(64, 32).batches(data, 3, seed=4))
    assert batch.images.shape == (3, 3, 32, 32) and batch.teacher_images.shape == (3, 3, 64, 64)
    down = torch.nn.functional.interpolate(batch.teacher_images, size=32, mode="area")
    assert (down - batch.images).abs().mean() < 0.05  # the same images, resampled (a random pair would differ)
    other = next(random_batches(data, 3, seed=5)).images
    assert (torch.nn.functional.interpolate(other, size=32, mode="area") - batch.images).abs().mean() > 0.05


def test_augmented_batches_jitter_the_same_crop_at_both_sizes(dataset):
    from prnet.geometry.resample import resize_posmap
    from prnet.train.augment import AugmentConfig

    data = PositionMapDataset(dataset)
    plain = next(Resolution(64, 32).batches(data, 3, seed=4))
    batch = next(Resolution(64, 32).batches(data, 3, seed=4, augment=AugmentConfig()))
    assert batch.images.shape == (3, 3, 32, 32) and batch.teacher_images.shape == (3, 3, 64, 64)
    down = torch.nn.functional.interpolate(batch.teacher_images, size=32, mode="area")
    assert (down - batch.images).abs().mean() < 0.05  # one jittered crop, seen at both sizes
    assert (batch.images - plain.images).abs().mean() > 0.02  # and jittered: not the stored crops
    # the ground truth moved with the crop alike at both sizes (x' = (x + 0.5) f - 0.5)
    big = next(Resolution(64, 64).batches(data, 3, seed=4, augment=AugmentConfig()))
    small_maps = batch.posmaps.permute(0, 2, 3, 1).numpy()
    for i in range(3):
        expected = resize_posmap(big.posmaps[i].permute(1, 2, 0).numpy(), 32)
        np.testing.assert_allclose(small_maps[i], expected, atol=0.1)
    # a second epoch draws new jitter for the same face
    again = Resolution(64, 64).batches(data, 12, seed=4, augment=AugmentConfig())
    first, second = next(again), next(again)
    assert not torch.equal(first.images, second.images)


def test_distillation_brings_the_small_student_towards_the_resampled_teacher(dataset):
    torch.manual_seed(0)
    teacher = to_deployment(awake_model(64))
    resolution = Resolution(64, 32)
    student = resolution.student_init(teacher)
    data = PositionMapDataset(dataset)
    val = next(resolution.batches(data, 4, seed=9))
    target = resolution.teacher_module(teacher)
    with torch.no_grad():
        before = (student(val.images) - target(val.teacher_images)).abs().mean().item()
    finetune(student, target, resolution.batches(data, 4, seed=0), resize_layout(data.layout, 32).weight_mask,
             student.output_scale, DistillConfig(steps=25, batch_size=4, lr=2e-3, warmup_steps=2))
    with torch.no_grad():
        after = (student(val.images) - target(val.teacher_images)).abs().mean().item()
    assert after < 0.8 * before


def test_compress_input_size_end_to_end(dataset, checkpoint, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [str(a) for a in (
        "--model", checkpoint, "--data", dataset, "--out", out, "--input-size", 32, "--finetune-steps", 3,
        "--batch-size", 2, "--int8", "--calibration-count", 4, "--val-fraction", 0.25, "--val-count", 3,
        "--repeats", 2, "--runtimes", "onnxruntime", "--augment")])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["input_size"] == 32 and report["teacher_input_size"] == 64
    assert report["settings"]["augment"]["rotation_deg"] == 20.0  # prnet train's jitter, recorded
    rows = {row["variant"]: row for row in report["variants"]}
    assert set(rows) == {"original-fp32", "compressed-fp32", "compressed-int8"}
    assert rows["original-fp32"]["input_size"] == 64 and rows["compressed-int8"]["input_size"] == 32
    assert 0.2 < rows["compressed-fp32"]["macs"] / rows["original-fp32"]["macs"] < 0.3  # (32/64)^2
    for name, row in rows.items():
        cell = row["runtimes"]["onnxruntime"]
        assert cell["median_ms"] > 0 and np.isfinite(cell["accuracy"]["delta_nme68_2d"]), name
        assert cell["accuracy"]["map_deviation_px"]["max"] > 0 or name == "original-fp32"
    assert len(report["finetune_history"]) >= 1
    assert "runs at 32 px, distilled from the FP32 model at 64 px on jittered crops" in (out / "report.md").read_text()
    untuned = render_markdown({**report, "finetune_history": []})  # a zero-step run must not claim distillation
    assert "runs at 32 px, the 64 px model's weights, not fine-tuned" in untuned and "distilled" not in untuned
    loaded = load_model(out / "model.pt")  # the student is saved at its own size, with the resampled layout
    assert loaded.config.input_size == 32 and loaded.layout.size == 32
    assert loaded.model.output_scale == pytest.approx(32 * 1.1)
    from prnet.export.runners import load_runner

    runner = load_runner(out / "model.int8.onnx")
    assert runner.input_size == 32 and runner.layout.layout_id == loaded.layout.layout_id
    assert load_runner(out / "original.fp32.onnx").input_size == 64


def test_input_size_must_be_a_multiple_of_32(dataset, checkpoint, tmp_path):
    result = CliRunner().invoke(app, ["--model", str(checkpoint), "--data", str(dataset), "--out", str(tmp_path),
                                      "--input-size", "80"])
    assert result.exit_code == 2 and "multiple of 32" in result.output


@pytest.mark.slow  # a budget search plus the full pipeline (~15 s)
def test_budget_search_tries_the_smaller_input_size_first(dataset, checkpoint, tmp_path):
    out = tmp_path / "budget"
    result = CliRunner().invoke(app, [str(a) for a in (
        "--model", checkpoint, "--data", dataset, "--out", out, "--budget-nme", 1000, "--budget-sizes", "64,32",
        "--finetune-steps", 1, "--batch-size", 2, "--val-fraction", 0.25, "--val-count", 3, "--repeats", 1,
        "--runtimes", "onnxruntime")])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    first = report["search"]["candidates"][0]
    assert report["search"]["sizes"] == [32, 64] and first["input_size"] == 32
    assert report["search"]["chosen"] == first["name"] == "32 px, svd 0.8" and report["input_size"] == 32


def test_budget_sizes_need_the_budget_search(dataset, checkpoint, tmp_path):
    result = CliRunner().invoke(app, ["--model", str(checkpoint), "--data", str(dataset), "--out", str(tmp_path),
                                      "--budget-sizes", "32"])
    assert result.exit_code == 2 and "--budget-nme" in result.output
    result = CliRunner().invoke(app, ["--model", str(checkpoint), "--data", str(dataset), "--out", str(tmp_path),
                                      "--budget-nme", "1", "--budget-sizes", "32,x"])
    assert result.exit_code == 2 and "multiples of 32" in result.output
