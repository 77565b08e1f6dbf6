"""Recovery fine-tuning: a compressed student learns to reproduce the FP32 teacher's position maps.

Loss: the training loss (`prnet.train.losses.weighted_mse`: squared error weighted per UV pixel by the layout's
`weight_mask`, 16 landmarks / 4 eyes-nose-mouth / 3 face / 0 elsewhere, in units of the output scale) against
the teacher's maps instead of -- or besides -- the ground truth. `gt_weight > 0` adds the same loss against the ground-truth maps.

Both models take (B, 3, S, S) images in [0, 1] and return position maps in PIXELS (the deployment form does;
wrap a plain PRNet in `pixels(model)`). A student at a smaller input size gets batches whose `teacher_images` hold
the same faces at the teacher's size, and a teacher that resamples its maps to the student's
(`prnet.compress.resolution`). The loop reads top to bottom: batch, teacher, student, loss, step.

The teacher is frozen, so without augmentation a face it has seen gives the same maps every time it comes back
(every len(data) / batch_size steps): `TeacherCache` memoizes them by input content, up to `teacher_cache_mb`.
"""

from __future__ import annotations

import hashlib
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from prnet.compress.data import Batch
from prnet.compress.resolution import teacher_inputs
from prnet.io import PrnetInputError
from prnet.train.losses import weighted_mse


@dataclass
class DistillConfig:
    steps: int = 500
    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 0.0
    gt_weight: float = 0.0  # weight of the ground-truth loss next to the teacher's (0: pure distillation)
    warmup_steps: int = 20  # linear warm-up, then cosine decay to 10% of lr
    log_every: int = 50
    device: str = "cpu"
    teacher_cache_mb: int = 4096  # memoize the teacher's maps of faces seen before (0: run it on every batch)

    def to_dict(self) -> dict:
        return asdict(self)


class Pixels(nn.Module):
    """A PRNet (output in [0, 1]) seen as a model that outputs pixels."""

    def __init__(self, model: nn.Module, output_scale: float):
        super().__init__()
        self.model, self.output_scale = model, float(output_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) * self.output_scale


def weighted_map_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, scale: float) -> torch.Tensor:
    """The training loss (prnet.train.losses.weighted_mse) on maps in pixels / `scale`; (B, 3, S, S), weight (S, S)."""
    return weighted_mse(pred / scale, target / scale, weight)


class TeacherCache:
    """`teacher(images)` memoized per face by the bytes of its image: a hit costs a hash instead of a forward
    (at 96 px from a 128 px teacher, the teacher is about a third of a distillation step). Maps are stored
    on the CPU in float32 until `limit_mb` is full; past it, new faces run through the teacher uncached."""

    def __init__(self, teacher: nn.Module, limit_mb: float):
        self.teacher, self.limit = teacher, int(limit_mb * 2**20)
        self.maps: dict[bytes, torch.Tensor] = {}
        self.stored, self.hits, self.misses = 0, 0, 0

    @staticmethod
    def key(image: torch.Tensor) -> bytes:
        return hashlib.blake2b(image.detach().cpu().contiguous().numpy().tobytes(), digest_size=16).digest()

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, T) -> the teacher's maps (B, 3, S, S), run only on the faces not seen before."""
        keys = [self.key(image) for image in images]
        fresh: dict[bytes, torch.Tensor] = {}
        todo = [i for i, k in enumerate(keys) if k not in self.maps and keys.index(k) == i]
        if todo:
            for i, out in zip(todo, self.teacher(images[todo])):
                fresh[keys[i]] = out
                if self.stored + out.numel() * 4 <= self.limit:
                    self.maps[keys[i]] = out.detach().to("cpu", torch.float32).clone()
                    self.stored += out.numel() * 4
        self.misses += len(todo)
        self.hits += len(keys) - len(todo)
        return torch.stack([fresh[k] if k in fresh else self.maps[k].to(images.device) for k in keys])

    def hit_rate(self) -> float:
        return self.hits / max(1, self.hits + self.misses)


def learning_rate(step: int, config: DistillConfig) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def finetune(
    student: nn.Module,
    teacher: nn.Module,
    batches: Iterator[Batch],
    weight_mask: np.ndarray,
    output_scale: float,
    config: DistillConfig,
    log: Callable[[str], None] = lambda line: None,
    evaluate: Callable[[nn.Module], dict] | None = None,
) -> list[dict]:
    """Train `student` in place for `config.steps` steps; returns the loss history (one entry per log).
    `evaluate(student)` (e.g. validation NME), when given, runs at every log step and joins the history."""
    device = torch.device(config.device)
    student.to(device).train().requires_grad_(True)
    teacher.to(device).eval().requires_grad_(False)
    weight = torch.as_tensor(weight_mask, dtype=torch.float32, device=device)
    params = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    autocast = nullcontext()  # FP32 on purpose: the student must match the FP32 teacher closely
    teacher_maps = TeacherCache(teacher, config.teacher_cache_mb) if config.teacher_cache_mb > 0 else teacher
    history, running, started = [], 0.0, time.perf_counter()
    for step in range(config.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config)
        batch = next(batches)
        images = batch.images.to(device)
        with torch.no_grad():  # (the teacher may see the faces at its own, larger input size)
            target = teacher_maps(teacher_inputs(batch).to(device))
        with autocast:
            pred = student(images)
            loss = weighted_map_loss(pred, target, weight, output_scale)
            if config.gt_weight > 0:
                loss = loss + config.gt_weight * weighted_map_loss(pred, batch.posmaps.to(device), weight, output_scale)
        if not torch.isfinite(loss):
            raise PrnetInputError(
                f"fine-tuning diverged at step {step} (loss {loss.item()}); lower the learning rate (--lr) "
                "or check the training data for broken samples"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        running += loss.item()
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            count = (step % config.log_every) + 1
            entry = {"step": step + 1, "loss": running / count, "lr": learning_rate(step, config),
                     "seconds": time.perf_counter() - started}
            if isinstance(teacher_maps, TeacherCache):
                entry["teacher_cached"] = teacher_maps.hit_rate()
            if evaluate is not None:
                entry.update(evaluate(student))
                student.train()
            history.append(entry)
            log(f"step {entry['step']}/{config.steps} loss {entry['loss']:.3e} lr {entry['lr']:.1e}"
                + "".join(f" {k} {v:.4g}" for k, v in entry.items() if k not in ("step", "loss", "lr", "seconds")))
            running = 0.0
    student.eval().requires_grad_(False)
    return history
