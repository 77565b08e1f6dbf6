"""TrainConfig (every training choice, typed) and the named presets of `prnet train --preset`."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any

from prnet.io import PrnetInputError
from prnet.train.augment import AugmentConfig

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
OPTIMIZERS = ("adam", "adamw")
LR_SCHEDULES = ("step", "cosine", "constant")


@dataclass
class TrainConfig:
    # data
    data: str = ""  # dataset directory in the project format, or "synth" (generated on the fly)
    val_fraction: float = 0.05  # held-out share of a dataset directory (deterministic split)
    split_seed: int = 0
    val_max_samples: int = 500  # validate on at most this many held-out samples
    synth_val_samples: int = 200  # with --data synth: a fixed validation set of this many samples
    # model
    model: str = "prnet"  # a name in prnet.model.MODEL_CONFIGS
    input_size: int = 256  # maps and images are resampled to this size (the layout too)
    bn_momentum: float | None = None  # None: the model's (TF decay 0.999); short runs need faster BN statistics
    init_from: str = ""  # a checkpoint whose weights start this run (fresh optimizer and schedule, step 0)
    # optimization
    batch_size: int = 20  # global: split evenly over DDP processes
    max_steps: int = 300_000
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_schedule: str = "step"  # step: x lr_decay_factor every lr_decay_every steps; cosine: to min_lr
    lr_decay_every: int = 75_000
    lr_decay_factor: float = 0.5
    min_lr: float = 0.0
    warmup_steps: int = 0
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # system
    device: str = "auto"  # auto (cuda if available) | cpu | cuda | cuda:N
    precision: str = "auto"  # auto: bf16 on CUDA (fp16 if bf16 unsupported); on CPU bf16 where native, else fp32
    compile: bool = False  # torch.compile the training model
    channels_last: bool | None = None  # None: on for CUDA and CPU bf16, off for CPU fp32 (slower there, measured)
    cudnn_benchmark: bool = True
    sync_bn: bool = False  # SyncBatchNorm across DDP processes
    num_workers: int = 8  # DataLoader worker processes per training process (decode + augment)
    num_threads: int = 0  # torch CPU threads per process; 0 = torch's default. On a shared (oversubscribed) CPU
    # 1 thread was 10-20x faster per step than 2 (measured on the 2-core box with ~12 busy processes)
    seed: int = 0
    # output
    out_dir: str = "runs/prnet"
    log_every: int = 50
    eval_every: int = 2000
    save_every: int = 2000
    keep_last: int = 3  # step checkpoints kept (best.pt is kept apart)
    image_log_count: int = 4  # [input, ground truth, prediction] triples logged to TensorBoard per eval
    tensorboard: bool = True
    progress: bool = True

    def validate(self) -> "TrainConfig":
        problems = []
        if self.precision not in PRECISIONS:
            problems.append(f"precision {self.precision!r} is not one of {PRECISIONS}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer {self.optimizer!r} is not one of {OPTIMIZERS}")
        if self.lr_schedule not in LR_SCHEDULES:
            problems.append(f"lr_schedule {self.lr_schedule!r} is not one of {LR_SCHEDULES}")
        for name in ("batch_size", "max_steps", "log_every", "eval_every", "save_every", "keep_last", "input_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if self.input_size % 32:
            problems.append(f"input_size {self.input_size} must be a multiple of 32 (the encoder downsamples 32x)")
        if problems:
            raise PrnetInputError("invalid training config: " + "; ".join(problems))
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        if isinstance(values.get("augment"), dict):
            values["augment"] = AugmentConfig(**values["augment"])
        return cls(**values)


# Presets: overrides of the defaults (the defaults are the paper's recipe).
PRESETS: dict[str, dict[str, Any]] = {
    # The seed's recipe, for a GPU: batch 20, Adam 1e-3 halved every 75k steps, 300k steps.
    "full": {},
    # Learns real landmarks on 2 CPU cores in minutes: quarter-width PRNet at 64 px (~16 MMACs/image, ~0.3 s
    # per step of 16 on one idle core). Maps and the layout are resampled to 64 px
    # (prnet.geometry.resample.resize_layout).
    "cpu-small": dict(
        model="prnet-quarter", input_size=64, bn_momentum=0.05, batch_size=16, max_steps=800, lr=2e-3,
        lr_schedule="cosine", min_lr=1e-4, warmup_steps=50, log_every=20, eval_every=100, save_every=100,
        val_max_samples=100, synth_val_samples=100, num_workers=1, num_threads=1,
    ),
    # Smoke test of the whole pipeline in about a minute.
    "cpu-tiny": dict(
        model="prnet-quarter", input_size=64, bn_momentum=0.1, batch_size=8, max_steps=100, lr=2e-3,
        lr_schedule="cosine", min_lr=1e-4, warmup_steps=10, log_every=5, eval_every=50, save_every=50,
        val_max_samples=32, synth_val_samples=32, num_workers=0, num_threads=1,
    ),
}


def make_config(preset: str = "full", **overrides: Any) -> TrainConfig:
    """The preset's TrainConfig with `overrides` (None values ignored; `augment` may be a dict of fields)."""
    if preset not in PRESETS:
        raise PrnetInputError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    unknown = set(values) - {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown:
        raise PrnetInputError(f"unknown training options {sorted(unknown)}")
    if isinstance(values.get("augment"), dict):
        values["augment"] = dataclasses.replace(AugmentConfig(), **values["augment"])
    return TrainConfig(**values).validate()


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warmup, then the schedule."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.lr_schedule == "step":
        return config.lr * config.lr_decay_factor ** (step // config.lr_decay_every)
    if config.lr_schedule == "cosine":
        import math

        span = max(1, config.max_steps - config.warmup_steps)
        progress = min(1.0, (step - config.warmup_steps) / span)
        return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))
    return config.lr


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """`--set name=value` pairs -> overrides; values parsed as JSON when they can be (numbers, true, null...).

    `augment.rotation_deg=10` sets one augmentation field.
    """
    import json

    overrides: dict[str, Any] = {}
    for item in assignments:
        if "=" not in item:
            raise PrnetInputError(f"--set {item!r}: expected name=value, e.g. --set eval_every=500")
        name, text = item.split("=", 1)
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        if name.startswith("augment."):
            overrides.setdefault("augment", {})[name.split(".", 1)[1]] = value
        else:
            overrides[name] = value
    return overrides
