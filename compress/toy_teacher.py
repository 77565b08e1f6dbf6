"""A briefly trained PRNet on a toy task, for compression experiments while no real model exists.

A random PRNet is chaotic (0.1% noise on every conv input moves its output by pixels), so INT8/FP16/SVD
accuracy cannot be judged on it. This trains the FULL architecture for a few minutes (GPU) on a learnable
toy task -- a textured disk warped by a random similarity, its position map the same similarity of the UV grid
plus a depth bump (the tests' task, at full size) -- then factorizes its deployment form (SVD) and distils it.
It is NOT a face model: its NME says how compression behaves on a trained network, not on faces.

    python -m prnet.compress.toy_teacher --out DIR [--model prnet] [--size 256] [--train-seconds 150] [--svd macs:0.25]

Writes DIR/teacher.pt (a prnet checkpoint, FP16 weights split over two files when --split), DIR/student.pt (a
compressed checkpoint), DIR/toy.json (NME before/after, losses, steps per second).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch


def toy_layout(size: int):
    from prnet.layout import disk_layout

    return disk_layout(size, name=f"toy-disk-{size}")


def toy_sample(layout, rng: np.random.Generator):
    """(image uint8 (S,S,3), posmap (S,S,3) px, landmarks (68,3) px)."""
    s = layout.size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
    freq = rng.uniform(4, 9)
    texture = np.stack([xx, yy, 0.5 + 0.5 * np.sin(freq * xx) * np.cos(freq * yy)], -1)
    texture = (255 * np.clip(texture * rng.uniform(0.6, 1.0, 3), 0, 1)).astype(np.uint8)
    angle, scale, shift = rng.uniform(-0.6, 0.6), rng.uniform(0.7, 1.05), rng.uniform(-0.1, 0.1, 2) * s
    return warp_toy_sample(layout, texture, angle, scale, shift, tuple(int(v) for v in rng.integers(0, 90, 3)))


def warp_toy_sample(layout, texture: np.ndarray, angle: float, scale: float, shift: np.ndarray, border: tuple):
    """The toy task's (image, posmap, landmarks): `texture` (S,S,3 uint8, UV space) warped by the similarity
    (rotation `angle`, `scale`, about the centre, then `shift` px; `border` outside), the position map the same
    similarity of the UV grid plus a depth bump, the landmarks read from it at the layout's landmark pixels."""
    import cv2

    s = layout.size
    c = (s - 1) / 2
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    affine = np.hstack([rot, (np.array([c, c]) + shift - rot @ np.array([c, c]))[:, None]]).astype(np.float32)
    image = cv2.warpAffine(texture, affine, (s, s), flags=cv2.INTER_LINEAR, borderValue=border)
    vv, uu = np.mgrid[0:s, 0:s].astype(np.float32)
    xy = np.einsum("ij,hwj->hwi", affine[:, :2], np.stack([uu, vv], -1)) + affine[:, 2]
    z = scale * s * 0.3 * np.exp(-((uu - c) ** 2 + (vv - c) ** 2) / (2 * (0.35 * s) ** 2))
    posmap = np.concatenate([xy, z[..., None]], -1).astype(np.float32)
    lu, lv = layout.landmark_uv[:, 0].round().astype(int), layout.landmark_uv[:, 1].round().astype(int)
    return image, posmap, posmap[lv, lu]


class ToyData:
    """A fixed pool of toy samples as a map-style dataset of prnet Samples."""

    def __init__(self, layout, count: int, seed: int):
        from prnet.data.format import Sample

        rng = np.random.default_rng(seed)
        self.samples = [Sample(i, *toy_sample(layout, rng), params={}) for i in range(count)]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        return self.samples[i]


def train_teacher(model, data, layout, device, seconds: float, batch_size: int, lr: float, log) -> dict:
    from prnet.compress.data import random_batches
    from prnet.train.losses import weighted_mse

    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    weight = torch.as_tensor(layout.weight_mask, device=device)
    batches, scale = random_batches(data, batch_size, seed=0), model.config.output_scale
    started, step, losses = time.perf_counter(), 0, []
    while time.perf_counter() - started < seconds:
        batch = next(batches)
        progress = (time.perf_counter() - started) / seconds
        for group in optimizer.param_groups:
            group["lr"] = lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(progress, 1.0))))
        loss = weighted_mse(model(batch.images.to(device)), batch.posmaps.to(device) / scale, weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        losses.append(loss.item())
        if step % 200 == 0:
            log(f"teacher step {step} loss {np.mean(losses[-200:]):.2e}")
    model.eval()
    return {"steps": step, "seconds": time.perf_counter() - started, "final_loss": float(np.mean(losses[-50:]))}


def save_parts(model, out: Path, part_mb: float) -> None:
    """The state dict in FP16, split into files of at most `part_mb` MB (teacher.partN.pt), to move it around."""
    parts, current, size = [], {}, 0
    for key, value in model.state_dict().items():
        value = value.half() if value.is_floating_point() else value
        nbytes = value.numel() * value.element_size()
        if current and size + nbytes > part_mb * 1e6:
            parts.append(current)
            current, size = {}, 0
        current[key] = value
        size += nbytes
    parts.append(current)
    for index, part in enumerate(parts):
        torch.save(part, out / f"teacher.part{index}.pt")


def load_parts(folder: str | Path, model_name: str = "prnet", size: int = 256):
    """Rebuild the toy teacher (a PRNet) from teacher.partN.pt files."""
    from prnet.model import create_model

    state = {}
    for path in sorted(Path(folder).glob("teacher.part*.pt")):
        state.update({k: (v.float() if v.is_floating_point() else v) for k, v in torch.load(path, weights_only=True).items()})
    model = create_model(model_name, input_size=size)
    model.load_state_dict(state)
    return model.eval()


def main() -> None:
    from prnet.compress import svd
    from prnet.checkpoint import save_compressed
    from prnet.compress.data import first_batches, random_batches
    from prnet.compress.distill import DistillConfig, finetune
    from prnet.compress.evaluate import torch_maps, validation_metrics
    from prnet.export.deploy import to_deployment
    from prnet.checkpoint import save_checkpoint
    from prnet.model import create_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", default="prnet")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--train-seconds", type=float, default=150)
    parser.add_argument("--distill-steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--pool", type=int, default=1024)
    parser.add_argument("--svd", default="macs:0.25")
    parser.add_argument("--teacher-parts", default=None, help="skip training: the teacher from teacher.part*.pt here")
    parser.add_argument("--eval-curve", action="store_true", help="validation NME at every distillation log step")
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--part-mb", type=float, default=12.0, help="teacher weights also as FP16 parts this small")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = lambda line: print(line, flush=True)
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    layout = toy_layout(args.size)
    started = time.perf_counter()
    train, val = ToyData(layout, args.pool, seed=1), ToyData(layout, 64, seed=2)
    log(f"toy data: {time.perf_counter() - started:.1f} s")
    if args.teacher_parts:  # a teacher trained before: only the SVD + distillation part runs
        model, result = load_parts(args.teacher_parts, args.model, args.size), {"teacher_parts": args.teacher_parts}
    else:
        model = create_model(args.model, input_size=args.size)
        result = {"teacher_training": train_teacher(model, train, layout, args.device, args.train_seconds,
                                                    args.batch_size, 1e-3, log)}
        model = model.cpu().eval()
        model = model.half().float()  # FP16-exact weights, so the parts below rebuild it exactly
        save_checkpoint(out / "teacher.pt", model, layout, toy=True)
        save_parts(model, out, args.part_mb)
    teacher = to_deployment(model)
    val_batches = first_batches(val, 64, 16)
    result["teacher_val"], reference = validation_metrics(torch_maps(teacher), val_batches, layout)
    low_rank = svd.apply(teacher, replace(svd.parse_svd_spec(args.svd), input_size=args.size))
    result["svd_before_finetune"], _ = validation_metrics(torch_maps(low_rank.model), val_batches, layout, reference)
    config = DistillConfig(steps=args.distill_steps, batch_size=args.batch_size, lr=args.lr, device=args.device,
                           log_every=args.log_every)
    started = time.perf_counter()
    evaluate = lambda student: {"val_nme68_2d": validation_metrics(torch_maps(student), val_batches, layout)[0]["nme68_2d"]}
    result["distill_history"] = finetune(low_rank.model, teacher.to(args.device), random_batches(train, args.batch_size, seed=5),
                                         layout.weight_mask, model.config.output_scale, config, log,
                                         evaluate=evaluate if args.eval_curve else None)
    result["distill_seconds"] = time.perf_counter() - started
    student, teacher = low_rank.model.cpu().eval(), teacher.cpu()
    result["svd_after_finetune"], _ = validation_metrics(torch_maps(student), val_batches, layout, reference)
    result["svd_plan_layers"] = len(low_rank.plan)
    save_compressed(out / "student.pt", student, model.config, layout, low_rank.plan, svd=args.svd, toy=True)
    (out / "toy.json").write_text(json.dumps(result, indent=2))
    log(json.dumps({k: v for k, v in result.items() if k != "distill_history"}, indent=1))


if __name__ == "__main__":
    main()
