"""`prnet train`: the PRNet training loop, top to bottom (nanoGPT style).

    python -m prnet train --data DIR --preset cpu-small                 # one process (CPU or GPU)
    torchrun --nproc_per_node 8 -m prnet train --data DIR --preset full  # DDP, one process per GPU

Every choice is a field of TrainConfig (prnet/train/config.py). A run directory holds config.json,
metrics.jsonl (one JSON line per log/eval), tb/ (TensorBoard) and checkpoints/ (last N step_*.pt + best.pt by
validation 68-point NME). `--resume` restores model, optimizer, AMP scaler, step and RNG states; the data order
follows from the step (prnet/train/data.py), so an interrupted run continues with exactly the same batches.
"""

from __future__ import annotations

import os
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from prnet.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint, unwrap_model
from prnet.geometry.resample import resize_layout
from prnet.hardware import StealMeter, cpu_has_native_bf16, cpu_summary
from prnet.io import PrnetInputError, write_json_atomic
from prnet.layout import UVLayout
from prnet.model import create_model
from prnet.train.augment import AugmentConfig
from prnet.train.config import TrainConfig, lr_at
from prnet.train.data import TrainingItems, make_batch_stream
from prnet.train.losses import landmarks_from_maps, weighted_mse
from prnet.train.progress import RunProgress
from prnet.train.rundir import (append_metrics, latest_checkpoint, set_aside_later_checkpoints,
                                step_checkpoints, truncate_metrics)
from prnet.train.stop import StopSignals


TIMING_KEYS = ("images_per_s", "cpu_steal")  # the machine's fields of a log record; the rest resumes exactly


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


@dataclass
class TrainResult:
    out_dir: Path
    step: int
    best_nme: float | None
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    history: list[dict[str, Any]] = field(default_factory=list)  # the eval records of this process's run
    stopped_by: str | None = None  # "SIGINT" / "SIGTERM": stopped early, last_checkpoint is where it stopped


# --- setup ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    distributed: bool = False  # started by torchrun: DDP even with one process (exercises the backend)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_kind: str) -> Dist:
    """Join the process group when started by torchrun (RANK/WORLD_SIZE set): nccl on CUDA, gloo on CPU."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) < 1:
        return Dist()
    if not dist.is_initialized():
        if device_kind == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))  # before NCCL picks a device
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), distributed=True)


def pick_device(config: TrainConfig) -> torch.device:
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PrnetInputError(f"--device {config.device}: no CUDA GPU is available here; use --device cpu")
    return device


def pick_precision(config: TrainConfig, device: torch.device) -> str:
    """fp32 | bf16 | fp16 for this run. auto: bf16 on CUDA (fp16 without bf16); on CPU bf16 autocast where the CPU
    has native bf16 (AVX512-BF16/AMX: 1.28x fp32 at 128 px, 1.68x at 256 px on an AMX Xeon, docs/train_speed.md;
    loss within 4.3 % of fp32 on the same batches, docs/MODEL_CARD.md), else fp32."""
    if config.precision == "fp16" and device.type != "cuda":
        raise PrnetInputError("--precision fp16 needs a CUDA device; on CPU use bf16 (native bf16 CPUs) or fp32")
    if config.precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        raise PrnetInputError("--precision bf16: this CPU has no native bf16 (AVX512-BF16/AMX), where it is emulated "
                              "and slower than fp32; use --precision fp32 (or auto)")
    if config.precision != "auto":
        return config.precision
    if device.type != "cuda":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def open_sources(config: TrainConfig):
    """(train source, val source or None, layout of the maps) for --data DIR or --data synth."""
    if config.data == "synth":
        from prnet.train.data import synth_sources

        return synth_sources(config.seed, config.max_steps * config.batch_size, config.synth_val_samples)
    from prnet.data.dataset import train_val_datasets

    if not config.data:
        raise PrnetInputError("no training data: pass --data DIR (a prnet dataset) or --data synth")
    train, val = train_val_datasets(config.data, config.val_fraction, config.split_seed)
    if val is not None and len(val) > config.val_max_samples:
        val = val.subset(val.indices[: config.val_max_samples])
    return train, val, train.layout


def rng_states() -> dict[str, Any]:
    numpy_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].copy()), *numpy_state[2:]],
        "python": random.getstate(),
    }


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    name, key, *rest = states["numpy"]
    np.random.set_state((name, key.numpy(), *rest))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))


ARCHITECTURE = ("width", "kernel_size", "in_channels", "out_channels")  # what the weights' shapes depend on


def check_resume_compatible(payload: dict, model: torch.nn.Module, layout: UVLayout, path: Path) -> None:
    stored, built = payload["model_config"], unwrap_model(model).config.to_dict()
    differing = [k for k in ("input_size", *ARCHITECTURE) if stored.get(k) != built.get(k)]
    if differing:
        raise PrnetInputError(
            f"{path}: cannot resume, the checkpoint's model differs from this run's in {differing} "
            f"(checkpoint: {[stored.get(k) for k in differing]}, run: {[built.get(k) for k in differing]}); "
            "resume with the checkpoint's own settings (omit --preset/--model/--input-size) or start a new --out"
        )
    if payload.get("layout_id") != layout.layout_id:
        raise PrnetInputError(
            f"{path}: cannot resume, the checkpoint's UV layout {payload.get('layout_id')} is not the data's "
            f"{layout.layout_id}; resume on the same dataset or start a new --out"
        )
    if "train_state" not in payload["meta"]:
        raise PrnetInputError(f"{path}: holds no training state (optimizer, step), so it cannot be resumed")


def init_weights(model: torch.nn.Module, path: str | Path, data_layout: UVLayout) -> None:
    """Load another checkpoint's weights into `model` (a new run: fresh optimizer, schedule and step 0).

    For fine-tuning, for continuing from a released model (which holds no optimizer state, so --resume cannot
    take it) and for progressive resizing: the network is fully convolutional, so weights trained at 128 px
    load into a 256 px model unchanged. Architecture and UV layout must match (compared at the stored size).
    """
    payload = load_checkpoint(path, map_location="cpu")
    if payload.get("compression") is not None:
        raise PrnetInputError(f"{path}: a compressed checkpoint cannot start a training run; pass the FP32 "
                              "checkpoint it was made from")
    stored, built = payload["model_config"], unwrap_model(model).config.to_dict()
    differing = [k for k in ARCHITECTURE if stored.get(k) != built.get(k)]
    if differing:
        raise PrnetInputError(f"{path}: --init needs the same architecture; it differs in {differing} "
                              f"(checkpoint: {[stored.get(k) for k in differing]}, run: "
                              f"{[built.get(k) for k in differing]}); pass the checkpoint's --model")
    expected = resize_layout(data_layout, int(stored["input_size"])).layout_id
    if payload.get("layout_id") != expected:
        raise PrnetInputError(f"{path}: its UV layout {payload.get('layout_id')} is not the data's ({expected} at "
                              f"{stored['input_size']} px): its weights predict another map; train on data of its layout")
    source, _ = model_from_checkpoint(payload, source=str(path))
    unwrap_model(model).load_state_dict(source.state_dict())  # float32: model_from_checkpoint casts fp16 releases


def rank_checksums(model: torch.nn.Module, ddp: Dist) -> list[float]:
    """One parameter checksum per rank (all equal when DDP keeps the replicas in sync)."""
    with torch.no_grad():
        params = list(unwrap_model(model).parameters())
        local = sum((p.double() * (i + 1)).sum() for i, p in enumerate(params)).reshape(1)
    if not ddp.distributed:
        return [local.item()]
    gathered = [torch.zeros_like(local) for _ in range(ddp.world_size)]
    dist.all_gather(gathered, local)
    return [g.item() for g in gathered]


def resume_config(resume: str | Path, preset: str | None, overrides: dict[str, Any]) -> tuple[TrainConfig, Path]:
    """The config to continue a run with: the checkpoint's own (or `preset`'s) plus explicit `overrides`.

    resume: a checkpoint path, or 'auto' for the latest step checkpoint under overrides['out_dir'].
    The run directory defaults to the one holding the checkpoint.
    """
    from prnet.train.config import make_config

    if str(resume) == "auto":
        path = latest_checkpoint(overrides.get("out_dir") or TrainConfig.out_dir)
    else:
        path = Path(resume)
    payload = load_checkpoint(path)
    stored = payload["meta"].get("train_config")
    if stored is None or "train_state" not in payload["meta"]:
        raise PrnetInputError(f"{path}: not a resumable training checkpoint (no training state); use a step_*.pt")
    if preset is not None:
        config = make_config(preset, **overrides)
    else:
        values = {**TrainConfig.from_dict(stored).to_dict(), **{k: v for k, v in overrides.items() if v is not None}}
        if path.parent.name == "checkpoints" and not overrides.get("out_dir"):
            values["out_dir"] = str(path.parent.parent)
        config = TrainConfig.from_dict(values).validate()
    return config, path


# --- evaluation -----------------------------------------------------------------------------------------
def posmap_picture(maps: torch.Tensor, face_mask: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) normalized maps -> (B, 3, S, S) in [0, 1]: x, y, z as colours, background black."""
    return maps.float().clamp(0, 1) * face_mask


@torch.no_grad()
def evaluate(model: torch.nn.Module, items: TrainingItems, layout: UVLayout, device: torch.device,
             autocast, batch_size: int, image_count: int) -> dict[str, Any]:
    """Validation loss and 68-point NME (prnet.metrics.nme_68, GT landmark box), + image triples."""
    from prnet.metrics import nme_68

    was_training = model.training
    model.eval()
    weight = torch.from_numpy(layout.weight_mask).to(device)
    landmark_uv = torch.from_numpy(layout.landmark_uv).to(device)
    losses, nmes, triples = [], [], []
    loader = torch.utils.data.DataLoader(items, batch_size=batch_size, shuffle=False)
    for images, targets, gt_landmarks in loader:
        images, targets = images.to(device).float().div_(255), targets.to(device)
        with autocast:
            pred = model(images)
        losses.append(weighted_mse(pred, targets, weight).item() * len(images))
        pred_landmarks = landmarks_from_maps(pred.float() * items.output_scale, landmark_uv)
        nmes.append(nme_68(pred_landmarks.cpu().numpy(), gt_landmarks.numpy()))
        if len(triples) < image_count:
            mask = torch.from_numpy(layout.face_mask).to(device).float()
            for i in range(min(image_count - len(triples), len(images))):
                triples.append(torch.cat([images[i], posmap_picture(targets[i], mask), posmap_picture(pred[i], mask)], 2))
    model.train(was_training)
    count = len(items)
    return {"val_loss": sum(losses) / count, "val_nme": float(np.concatenate(nmes).mean()),
            "triples": torch.stack(triples).cpu() if triples else None}


# --- training -------------------------------------------------------------------------------------------
def train(config: TrainConfig, resume: str | Path | None = None) -> TrainResult:
    """Train PRNet as `config` says; `resume`: a checkpoint path (or 'auto': the latest in out_dir)."""
    config.validate()
    out_dir = Path(config.out_dir)
    device = pick_device(config)
    ddp = setup_distributed(device.type)
    if device.type == "cuda" and ddp.distributed:
        device = torch.device("cuda", ddp.local_rank)
        torch.cuda.set_device(device)
    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)  # the same initial weights on every rank
    np.random.seed(config.seed + ddp.rank)
    random.seed(config.seed + ddp.rank)
    precision = pick_precision(config, device)
    # channels_last: faster on CUDA and with CPU bf16 (oneDNN's blocked kernels), slower with CPU fp32 (bench/train_speed.py)
    channels_last = config.channels_last if config.channels_last is not None else (device.type == "cuda" or precision == "bf16")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = config.cudnn_benchmark
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True

    # data: sources of Samples -> augmented tensors at the model's input size; the layout follows the size
    train_source, val_source, data_layout = open_sources(config)
    layout = resize_layout(data_layout, config.input_size)
    overrides = {"input_size": config.input_size}
    if config.bn_momentum is not None:
        overrides["bn_momentum"] = config.bn_momentum
    model = create_model(config.model, **overrides)
    output_scale = model.config.output_scale
    train_items = TrainingItems(train_source, config.input_size, output_scale, config.augment, data_layout)
    val_items = TrainingItems(val_source, config.input_size, output_scale, AugmentConfig.none()) if val_source else None
    if config.batch_size % ddp.world_size:
        raise PrnetInputError(f"--batch-size {config.batch_size} must divide evenly over {ddp.world_size} processes")
    batch_size = config.batch_size // ddp.world_size
    stream = make_batch_stream(train_items, batch_size, ddp.world_size, ddp.rank, config.seed,
                               config.num_workers, pin_memory=device.type == "cuda")

    # model, optimizer, AMP: no-op objects where a feature is off (nullcontext, disabled GradScaler)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer_class = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    optimizer = optimizer_class(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext()
    weight = torch.from_numpy(layout.weight_mask).to(device)

    step, best_nme = 0, None
    if config.init_from and resume is None:
        init_weights(model, config.init_from, data_layout)
    if resume is not None:
        resume_path = latest_checkpoint(out_dir) if str(resume) == "auto" else Path(resume)
        payload = load_checkpoint(resume_path, map_location="cpu")
        check_resume_compatible(payload, model, layout, resume_path)
        stored_model, _ = model_from_checkpoint(payload, source=str(resume_path))
        model.load_state_dict(stored_model.state_dict())
        state = payload["meta"]["train_state"]
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        step, best_nme = state["step"], payload["meta"].get("best_nme")
        restore_rng_states(state["rng"])
    raw_model = model  # eval and checkpoints use the plain module
    if config.sync_bn and ddp.distributed:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        raw_model = model
    if config.compile:
        model = torch.compile(model)
    if ddp.distributed:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    # run directory: config, metrics (truncated to the resumed step), TensorBoard
    writer = None
    if ddp.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out_dir / "config.json", {
            **config.to_dict(), "resolved": {"device": str(device), "precision": precision, "world_size": ddp.world_size,
                                             "channels_last": channels_last, "layout_id": layout.layout_id,
                                             "unique_train_faces": len(train_items), "cpu": cpu_summary(),
                                             "model_config": raw_model.config.to_dict(), "torch": torch.__version__}})
        truncate_metrics(out_dir, step)
        for moved in set_aside_later_checkpoints(out_dir, step):
            print(f"resumed at step {step}: {moved.name} (from the run this one replaces) moved to {moved.parent}",
                  flush=True)
        if config.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(out_dir / "tb"), purge_step=step if step else None)

    def save(step: int, record: dict[str, Any]) -> Path | None:
        """All ranks check they agree; rank 0 writes step_N.pt atomically and keeps the last N."""
        checksums = rank_checksums(raw_model, ddp)
        if len(set(checksums)) != 1:
            raise RuntimeError(f"DDP replicas diverged at step {step}: parameter checksums {checksums}")
        if not ddp.is_main:
            return None
        path = out_dir / "checkpoints" / f"step_{step:07d}.pt"
        train_state = {"step": step, "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                       "rng": rng_states()}
        save_checkpoint(path, raw_model, layout, train_config=config.to_dict(), step=step, best_nme=best_nme,
                        data_layout_id=data_layout.layout_id, world_size=ddp.world_size, rank_checksums=checksums,
                        train_state=train_state, **record)
        for old in step_checkpoints(out_dir)[: -config.keep_last]:
            old.unlink()
        return path

    # the loop
    result = TrainResult(out_dir, step, best_nme, None, None)
    progress = make_progress(config, ddp, step)
    model.train()
    batches = stream.iterate(step)
    tick, images_seen, loss_sum, loss_count = time.perf_counter(), 0, 0.0, 0
    steal = StealMeter()  # images/s drops on a VM whose host is busy: each log record says how much was stolen
    with StopSignals() as stop:  # Ctrl-C / SIGTERM: finish the step, save it, return (prnet/train/stop.py)
        while step < config.max_steps:
            lr = lr_at(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            images, targets, _ = next(batches)
            images = images.to(device, non_blocking=True).float().div_(255)  # (B, 3, S, S) uint8 -> [0, 1]
            targets = targets.to(device, non_blocking=True)  # (B, 3, S, S) posmap / output_scale
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with autocast:
                pred = model(images)  # (B, 3, S, S) in [0, 1]
            loss = weighted_mse(pred, targets, weight)
            scaler.scale(loss).backward()
            loss_value, stop_now = loss.detach().float(), stop.requested is not None
            if ddp.distributed:  # one all-reduce (SUM: gloo has no AVG) for the mean loss and "any rank signalled"
                summed = torch.stack([loss_value, torch.tensor(float(stop_now), device=loss_value.device)])
                dist.all_reduce(summed)
                loss_value, stop_now = summed[0] / ddp.world_size, bool(summed[1] > 0)
            loss_value = loss_value.item()
            if not np.isfinite(loss_value):  # before the update: the weights in memory and on disk stay good
                last = step_checkpoints(out_dir)
                raise TrainingDiverged(
                    f"loss became {loss_value} at step {step + 1} (lr {lr:.3g}, precision {precision}); stopped without "
                    f"saving. Last good checkpoint: {last[-1] if last else 'none yet'}. Check the data for NaN/inf "
                    "values, lower --lr, or use --precision fp32, then --resume from that checkpoint."
                )
            if config.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            images_seen += len(images) * ddp.world_size
            loss_sum, loss_count = loss_sum + loss_value, loss_count + 1

            if step % config.log_every == 0 or step == config.max_steps:
                now = time.perf_counter()
                record = {"step": step, "loss": loss_sum / loss_count, "lr": lr, "images_per_s": images_seen / (now - tick),
                          "samples_seen": step * config.batch_size, "cpu_steal": steal.lap()}
                tick, images_seen, loss_sum, loss_count = now, 0, 0.0, 0
                if ddp.is_main:
                    append_metrics(out_dir, record)
                    if writer:
                        writer.add_scalar("train/loss", record["loss"], step)
                        writer.add_scalar("train/lr", lr, step)
                        writer.add_scalar("train/images_per_s", record["images_per_s"], step)
                    progress.update(step, record)

            eval_record: dict[str, Any] = {}
            if val_items is not None and (step % config.eval_every == 0 or step == config.max_steps):
                if ddp.is_main:
                    metrics = evaluate(raw_model, val_items, layout, device, autocast, batch_size, config.image_log_count)
                    eval_record = {"step": step, "val_loss": metrics["val_loss"], "val_nme": metrics["val_nme"]}
                    append_metrics(out_dir, eval_record)
                    result.history.append(eval_record)
                    progress.note(f"step {step}: val loss {metrics['val_loss']:.3g}, "
                                  f"val NME {100 * metrics['val_nme']:.2f} %")
                    if writer:
                        writer.add_scalar("val/loss", metrics["val_loss"], step)
                        writer.add_scalar("val/nme_68", metrics["val_nme"], step)
                        if metrics["triples"] is not None:  # [input | ground truth | prediction]
                            writer.add_images("val/input_gt_pred", metrics["triples"], step)
                    if best_nme is None or metrics["val_nme"] < best_nme:  # rank 0 alone: no collective here
                        best_nme = metrics["val_nme"]
                        result.best_checkpoint = out_dir / "checkpoints" / "best.pt"
                        save_checkpoint(result.best_checkpoint, raw_model, layout, train_config=config.to_dict(),
                                        step=step, best_nme=best_nme, val_nme=best_nme, val_loss=metrics["val_loss"])
            if step % config.save_every == 0 or step == config.max_steps or stop_now:  # every rank: they check they agree
                saved = save(step, {k: v for k, v in eval_record.items() if k != "step"})
                result.last_checkpoint = saved or result.last_checkpoint
            if stop_now:
                result.stopped_by = stop.requested or "a signal to another rank"
                progress.note(f"{result.stopped_by}: stopped after step {step} (checkpoint written)")
                break
    progress.close()
    if writer:
        writer.close()
    if ddp.distributed:
        dist.barrier()
        dist.destroy_process_group()
    result.step, result.best_nme = step, best_nme
    return result


def make_progress(config: TrainConfig, ddp: Dist, step: int) -> RunProgress:
    return RunProgress(config.max_steps, step, enabled=ddp.is_main, show_bar=config.progress)
