"""Input resolution as a compression lever: a student that runs at a smaller input size than its teacher.

PRNet is fully convolutional and its sigmoid output is a *fraction* of the crop (pixels = sigmoid * S * 1.1), so
the teacher's own weights run at 96 px as they are, with the output scale set to 96 * 1.1: that is the student's
starting point. It then learns from the teacher at the teacher's resolution: both see the same faces (the same
samples, resampled once from the data to each size), and the teacher's maps are resampled to the student's UV
grid and pixel scale -- exactly how `prnet.train.augment.resize_sample` resizes a ground-truth map -- before the
loss. MACs fall with the square of the size (96 px: 56 % of 128 px).

`Resolution(teacher_size, student_size)` with equal sizes is the identity (a no-op object): the pipeline runs the
same code with or without the lever.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from prnet.compress.data import AugmentedSamples, Batch, first_batches, random_batches
from prnet.geometry.resample import resize_layout
from prnet.train.augment import ResizedSamples


def stored(source: Any) -> Any:
    """The samples as stored: `source` itself, or what a ResizedSamples view resamples."""
    return source.source if isinstance(source, ResizedSamples) else source


def at_size(source: Any, size: int) -> Any:
    """`source` (a sample source, maybe already a ResizedSamples view) seen at `size`, resampled once from the data."""
    base = stored(source)
    native = base[0].image.shape[0]
    return base if native == size else ResizedSamples(base, size)


def resize_maps(maps: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 3, S, S) position maps in pixels of an S px crop -> (B, 3, size, size) in pixels of a size px crop.

    The UV grid is resampled bilinearly with pixel centres at half-integers (cv2.INTER_LINEAR, as
    `prnet.geometry.resample.resize_uv_map`); x and y follow x' = (x + 0.5) f - 0.5 and z scales by f, as
    `prnet.train.augment.crop_similarity` / `transform_points` map a ground-truth map."""
    source = maps.shape[-1]
    if source == size:
        return maps
    f = size / source
    grid = F.interpolate(maps, size=(size, size), mode="bilinear", align_corners=False)
    xy = (grid[:, :2] + 0.5) * f - 0.5
    return torch.cat([xy, grid[:, 2:] * f], dim=1)


class ResampledTeacher(nn.Module):
    """The teacher at its own input size, its maps resampled to the student's: (B, 3, T, T) -> (B, 3, S, S) px."""

    def __init__(self, teacher: nn.Module, size: int):
        super().__init__()
        self.teacher, self.size = teacher, int(size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return resize_maps(self.teacher(images), self.size)


@dataclass(frozen=True)
class Resolution:
    teacher_size: int
    student_size: int

    @property
    def changed(self) -> bool:
        return self.teacher_size != self.student_size

    def student_init(self, teacher: nn.Module) -> nn.Module:
        """A copy of the deployed teacher that outputs pixels of a student_size crop."""
        from prnet.export.deploy import PixelOutput

        student = copy.deepcopy(teacher)
        if self.changed:
            student.config = replace(teacher.config, input_size=self.student_size)
            student.output = PixelOutput(student.config.output_scale)
        return student

    def student_loaded(self, loaded):
        """The `prnet.checkpoint.LoadedModel` view the student is saved and exported as (config and layout)."""
        if not self.changed:
            return loaded
        return replace(loaded, config=replace(loaded.config, input_size=self.student_size),
                       layout=resize_layout(loaded.layout, self.student_size))

    def teacher_module(self, teacher: nn.Module) -> nn.Module:
        return ResampledTeacher(teacher, self.student_size) if self.changed else teacher

    def student_source(self, source: Any) -> Any:
        return at_size(source, self.student_size) if self.changed else source

    def batches(self, source: Any, batch_size: int, seed: int, augment: Any = None) -> Iterator[Batch]:
        """Endless training batches at the student's size; `teacher_images`: the same faces at the teacher's.
        `augment` (a `prnet.train.augment.AugmentConfig`): the same jittered crop at both sizes."""
        def view(size: int) -> Any:
            return at_size(source, size) if augment is None else AugmentedSamples(stored(source), size, augment, seed)

        student = random_batches(view(self.student_size), batch_size, seed=seed)
        if not self.changed:
            yield from student
            return
        teacher = random_batches(view(self.teacher_size), batch_size, seed=seed)  # same seed: same faces
        for small, large in zip(student, teacher):
            yield replace(small, teacher_images=large.images)

    def first_batches(self, source: Any, count: int, batch_size: int) -> list[Batch]:
        return first_batches(self.student_source(source), count, batch_size)


def teacher_inputs(batch: Batch) -> torch.Tensor:
    """What the teacher sees of a batch: its own-size images when the student runs at another size."""
    return batch.images if batch.teacher_images is None else batch.teacher_images
