"""The distillation loop's teacher cache: the same maps as the teacher, one forward per face."""

from __future__ import annotations

import pytest
import torch
import typer
from typer.testing import CliRunner

from prnet.cli.commands.compress import compress_command
from prnet.compress.distill import DistillConfig, TeacherCache, finetune
from prnet.compress.pipeline import CompressConfig, distill_config
from prnet.compress.resolution import Resolution
from prnet.data.dataset import PositionMapDataset
from prnet.export.deploy import to_deployment
from prnet.geometry.resample import resize_layout
from prnet.train.augment import AugmentConfig
from tests.compress_fixtures import awake_model
from tests.train_fixtures import make_dataset


class Counting(torch.nn.Module):
    """A teacher that counts the faces it is run on."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model, self.faces = model, 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.faces += len(images)
        return self.model(images)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "ds32", n=6, size=32)


def test_cache_returns_the_teachers_maps_and_runs_each_face_once():
    torch.manual_seed(0)
    teacher = Counting(to_deployment(awake_model(32)).eval())
    cache = TeacherCache(teacher, limit_mb=64)
    a, b = torch.rand(3, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        first = cache(torch.cat([a, a[:1]]))  # a repeat inside one batch runs once
        assert teacher.faces == 3
        second = cache(torch.cat([b, a]))
        assert teacher.faces == 5  # only b was new
        expected = teacher.model(torch.cat([b, a]))
    # oneDNN picks its conv kernels by batch size: the same face differs by ~0.01 px between batch sizes
    torch.testing.assert_close(second, expected, rtol=0, atol=0.05)
    torch.testing.assert_close(first[3], first[0])
    assert (cache.hits, cache.misses) == (4, 5)
    assert cache.hit_rate() == pytest.approx(4 / 9)


def test_a_full_cache_still_gives_the_teachers_maps():
    torch.manual_seed(1)
    teacher = Counting(to_deployment(awake_model(32)).eval())
    cache = TeacherCache(teacher, limit_mb=0.01)  # 10 KB: less than one 3x32x32 float map (12 KB)
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        cache(images)
        again = cache(images)
        expected = teacher.model(images)
    assert cache.maps == {} and teacher.faces == 4
    torch.testing.assert_close(again, expected, rtol=0, atol=0.05)


def test_distillation_with_the_cache_matches_it_without(dataset):
    data = PositionMapDataset(dataset)
    mask = resize_layout(data.layout, 32).weight_mask
    runs = {}
    for cache_mb in (0, 64):
        torch.manual_seed(2)
        teacher = Counting(to_deployment(awake_model(32, seed=3)))
        student = Resolution(32, 32).student_init(to_deployment(awake_model(32, seed=4)))  # not the teacher: a real loss
        config = DistillConfig(steps=6, batch_size=4, lr=1e-3, warmup_steps=1, log_every=2, teacher_cache_mb=cache_mb)
        history = finetune(student, teacher, Resolution(32, 32).batches(data, 4, seed=0), mask,
                           student.output_scale, config)
        runs[cache_mb] = (history, teacher.faces)
    plain, cached = runs[0][0], runs[64][0]
    # equal up to the teacher's batch-size rounding (~0.01 px), which Adam's normalized steps carry on
    assert [h["loss"] for h in cached] == pytest.approx([h["loss"] for h in plain], rel=2e-2)
    assert runs[0][1] == 24 and runs[64][1] <= 6  # 6 faces in the data: at most 6 teacher forwards
    assert "teacher_cached" not in plain[-1] and cached[-1]["teacher_cached"] >= 0.75


def test_the_cache_is_off_for_augmented_crops():
    assert distill_config(CompressConfig()).teacher_cache_mb > 0
    assert distill_config(CompressConfig(augment=AugmentConfig())).teacher_cache_mb == 0


def test_a_negative_cache_size_is_a_clear_error(dataset, tmp_path):
    app = typer.Typer()
    app.command()(compress_command)
    result = CliRunner().invoke(app, ["--data", str(dataset), "--out", str(tmp_path / "c"), "--teacher-cache-mb", "-1"])
    assert result.exit_code == 2
    assert "--teacher-cache-mb" in result.output
