"""The stages of `prnet quickstart` (prnet/cli/quickstart/run.py runs them): each `stage_<name>(run, result, display)`
does its work within `result.budget_s` where it can, records artifacts and numbers on `result`, hands what later
stages need on through `run`, and raises on failure (the runner records it and carries on).

This module sits above every area, like the CLI: compress/, export/ and bench/ are imported lazily inside the
stage functions (prnet's core never imports them).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Any

from prnet.cli.quickstart.run import QuickstartConfig, QuickstartRun, StageResult
from prnet.io import PrnetInputError


# --- stage 1: data --------------------------------------------------------------------------------------
def stage_data(run: QuickstartRun, result: StageResult, display) -> None:
    """Render `samples` synthetic faces in chunks until done or the budget is spent (never under min_samples)."""
    from prnet.data.synth.generate import generate_dataset

    config, root = run.config, run.path("data")
    deadline = time.perf_counter() + result.budget_s * 0.9
    chunk, n, rendered = max(8, config.workers * 8), 0, 0
    with display.bar("synth", config.samples) as update:
        while n < config.samples:
            before, n = n, min(config.samples, n + chunk)
            report = generate_dataset(root, n, seed=config.seed, workers=config.workers,
                                      on_progress=lambda done, total, before=before: update(before + done))
            update(n)
            rendered += report.written
            if time.perf_counter() > deadline and config.min_samples <= n < config.samples:
                result.notes.append(f"data budget spent: {n} of {config.samples} samples")
                break
    run.dataset = root
    result.numbers.update(samples=n, rendered=rendered, seed=config.seed)
    result.add(root, "dataset", note=f"{n} synthetic samples (seed {config.seed}), prnet format")


# --- stage 2: train -------------------------------------------------------------------------------------
def steps_for(budget_s: float, step_s: float, config: QuickstartConfig, val_count: int, evals: int) -> int:
    """Steps that fit `budget_s`: 15% margin for data loading, `evals` validation passes (forward ~1/3 step)."""
    overhead = 10.0 + evals * val_count / config.batch_size * step_s / 3
    steps = int((budget_s - overhead) / (step_s * 1.15))
    return max(config.min_steps, min(config.max_steps, steps))


def train_config_for(run: QuickstartRun, start) -> Any:
    """The TrainConfig: fine-tuning `start` (a LoadedModel) at a low constant lr, or the scratch preset.

    Data loads in this process (num_workers=0): a forked DataLoader worker calling cv2.setNumThreads(1) (as
    prnet.train.data's workers do) hangs forever once this process has used OpenCV's thread pool, which the
    data stage and the validation pass before fine-tuning do."""
    from prnet.train.config import make_config as make_train_config

    config = run.config
    common = dict(data=str(run.dataset), out_dir=str(run.path("train")), val_fraction=config.val_fraction,
                  num_threads=run.threads, num_workers=0,  # loading is ~3% of a step; no fork (docstring)
                  seed=config.seed, batch_size=config.batch_size, keep_last=1, tensorboard=False,
                  progress=True, log_every=5, val_max_samples=64, image_log_count=0)
    if start is None:
        return make_train_config(config.scratch_preset, **common)
    return make_train_config("full", model=start.config.name, input_size=start.config.input_size,
                             bn_momentum=start.config.bn_momentum, lr=config.finetune_lr, lr_schedule="constant",
                             warmup_steps=0, **common)


def finetune_seed_checkpoint(path: Path, start, train_config, layout) -> Path:
    """A step-0 checkpoint of the start model that `prnet.train.loop.train(resume=...)` continues from: fine-tuning
    through the trainer's own resume path (fresh optimizer, step 0), so the loop, logs and checkpoints are its."""
    import torch

    from prnet.checkpoint import save_checkpoint
    from prnet.train.loop import rng_states

    model = start.model.float().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=train_config.lr)
    state = {"step": 0, "optimizer": optimizer.state_dict(), "scaler": torch.amp.GradScaler("cpu", enabled=False).state_dict(),
             "rng": rng_states()}
    save_checkpoint(path, model, layout, train_config=train_config.to_dict(), step=0, best_nme=None, train_state=state)
    return path


def validation_nme(model, run: QuickstartRun, train_config, layout) -> float:
    """68-point NME of `model` on the run's validation split (the trainer's own evaluate)."""
    from contextlib import nullcontext

    import torch

    from prnet.data.dataset import train_val_datasets
    from prnet.train.augment import AugmentConfig
    from prnet.train.data import TrainingItems
    from prnet.train.loop import evaluate

    _, val = train_val_datasets(run.dataset, train_config.val_fraction, train_config.split_seed)
    if val is None:
        raise PrnetInputError(f"{run.dataset}: no validation split (too few samples)")
    items = TrainingItems(val, model.config.input_size, model.config.output_scale, AugmentConfig.none())
    return evaluate(model, items, layout, torch.device("cpu"), nullcontext(), train_config.batch_size, 0)["val_nme"]


def keep_best_checkpoint(checkpoints: Path, last: Path | None) -> Path:
    """best.pt when any evaluation wrote one (also from an earlier, resumed segment), else the last step
    checkpoint; the other step checkpoints (optimizer state, not needed downstream) are deleted."""
    best = checkpoints / "best.pt"
    chosen = best if best.is_file() else last
    if chosen is None or not chosen.is_file():
        raise RuntimeError(f"training wrote no checkpoint in {checkpoints}")
    for stale in checkpoints.glob("step_*.pt"):
        if stale != chosen:
            stale.unlink()
    return chosen


def stage_train(run: QuickstartRun, result: StageResult, display) -> None:
    from prnet.checkpoint import load_model
    from prnet.data.format import read_layout
    from prnet.geometry.resample import resize_layout
    from prnet.train.loop import train

    tick, config = time.perf_counter(), run.config
    start = load_model(run.start_model) if run.start_model is not None else None
    train_config = train_config_for(run, start)
    layout = resize_layout(read_layout(run.dataset), train_config.input_size)
    if start is not None and start.layout.layout_id != layout.layout_id:
        raise PrnetInputError(f"{run.start_model}: its UV layout {start.layout.layout_id} is not the synthetic data's "
                              f"{layout.layout_id} at {train_config.input_size} px, so it cannot be fine-tuned on it")
    result.numbers.update(mode="fine-tune" if start else f"scratch ({config.scratch_preset})", model=train_config.model,
                          input_size=train_config.input_size, batch_size=train_config.batch_size)
    shutil.rmtree(run.path("train"), ignore_errors=True)  # a fresh run directory (no stale checkpoints or logs)
    resume = None
    if start is not None:
        result.numbers["start_model"] = str(run.start_model)
        result.numbers["val_nme_before"] = validation_nme(start.model, run, train_config, layout)
        resume = finetune_seed_checkpoint(run.path("train", "checkpoints", "step_0000000.pt"), start, train_config,
                                          layout)
    display.note("measuring a training step to size the run to the budget")
    key = (train_config.model, train_config.input_size, train_config.batch_size)
    probe_s = run.step_seconds(*key)
    deadline = tick + result.budget_s
    # Fine-tuning (constant lr) runs in two segments, the second sized from the first's real speed: a shared
    # machine's load swings the probe 2-4x. A from-scratch run keeps its cosine schedule over one segment.
    segments = 2 if start is not None else 1
    steps = steps_for(deadline - time.perf_counter(), probe_s, config, 16, 2 if start else 1)
    steps = min(config.max_steps, max(config.min_steps, steps // segments))
    outcome, done, real_s = None, 0, probe_s
    for segment in range(segments):
        if segment and (steps - done < 2):
            break
        segment_config = dataclasses.replace(train_config, max_steps=steps, eval_every=steps, save_every=steps,
                                             progress=display.is_terminal)
        display.note(f"{result.numbers['mode']}: steps {done + 1}-{steps}, batch {train_config.batch_size}, at "
                     f"{train_config.input_size} px (~{real_s:.2f} s/step)")
        segment_tick = time.perf_counter()
        outcome = train(segment_config, resume=resume)
        real_s = (time.perf_counter() - segment_tick) / max(1, outcome.step - done)  # with eval and saving
        run.step_times[key] = real_s
        done, resume = outcome.step, outcome.last_checkpoint
        steps = done + min(config.max_steps - done, int((deadline - time.perf_counter()) / (real_s * 1.1)))
    best = keep_best_checkpoint(run.path("train", "checkpoints"), outcome.last_checkpoint)
    run.model = best
    result.numbers.update(steps=outcome.step, final_step=outcome.step, val_nme_after=outcome.best_nme,
                          probe_step_s=round(probe_s, 3), step_s=round(real_s, 3))
    result.add(best, "checkpoint", note=f"best validation NME {fmt_pct(outcome.best_nme)} after {outcome.step} steps")
    result.add(run.path("train", "metrics.jsonl"), "training log")


def fmt_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"


# --- stage 3: compress ----------------------------------------------------------------------------------
def stage_compress(run: QuickstartRun, result: StageResult, display) -> None:
    """INT8 (static QDQ) and SVD (distilled) + INT8 through prnet.compress.pipeline.compress_model, side by side."""
    from prnet.compress.distill import DistillConfig
    from prnet.compress.int8 import Int8Config
    from prnet.compress.pipeline import CompressConfig, compress_model
    from prnet.compress.svd import parse_svd_spec
    from prnet.checkpoint import load_model
    from prnet.data.dataset import train_val_datasets
    from prnet.train.augment import ResizedSamples

    tick, config = time.perf_counter(), run.config
    loaded = load_model(run.model)
    size = loaded.config.input_size
    train, val = train_val_datasets(run.dataset, config.val_fraction, config.seed)
    train, val = ResizedSamples(train, size), (ResizedSamples(val, size) if val is not None else None)
    common = dict(int8=Int8Config(calibration_count=config.calibration_count), val_count=config.compress_val_count,
                  latency_repeats=config.latency_repeats, seed=config.seed, threads=run.threads,
                  runtimes=tuple(config.compress_runtimes))
    with display.steps("compress", 2) as advance:
        report = compress_model(loaded, train, val, CompressConfig(**common), run.path("compress", "int8"),
                                log=display.note)
        record_compression(run, result, "int8", report)
        advance()
        # distillation gets what the budget leaves once the SVD run's other work is paid: measured on 2 cores,
        # that work took 1.4x the INT8 run and a distillation step (SVD student + teacher forward) 0.9x a
        # training step (33 steps: 4.5 s vs 5.1 s at 256 px)
        left = result.budget_s - (time.perf_counter() - tick) * 2.4
        step_s = run.step_seconds(loaded.config.name, size, 8) * 0.9
        steps = max(0, min(config.max_distill_steps, int(left / (step_s * 1.15))))
        result.numbers["distill_steps"] = steps
        display.note(f"SVD {config.svd} + {steps} distillation steps (~{step_s:.2f} s/step), then INT8")
        svd_config = CompressConfig(svd=parse_svd_spec(config.svd, input_size=size), **common,
                                    finetune=DistillConfig(steps=steps, batch_size=8, log_every=max(1, steps // 5)))
        report = compress_model(loaded, train, val, svd_config, run.path("compress", "svd_int8"), log=display.note)
        record_compression(run, result, "svd_int8", report)
        advance()


def record_compression(run: QuickstartRun, result: StageResult, name: str, report: dict) -> None:
    folder = run.path("compress", name)
    runtimes = report["settings"]["runtimes"]
    variants = {}
    for row in report["variants"]:
        cells = {}
        for runtime in runtimes:
            cell = row["runtimes"].get(runtime, {})
            cells[runtime] = {"median_ms": cell.get("median_ms"), "speedup": cell.get("speedup_vs_original_ort"),
                              "nme68_2d": (cell.get("accuracy") or {}).get("nme68_2d"), "error": cell.get("error")}
        variants[row["variant"]] = {"file": str(folder / row["file"]), "size_bytes": row["size_bytes"],
                                    "macs": row["macs"], "runtimes": cells}
        failed = [r for r, c in cells.items() if c["error"] and c["median_ms"] is None]
        if row["variant"] != "original-fp32":
            result.add(folder / row["file"], f"onnx {row['variant']}", "failed" if failed else "ok",
                       f"failed on {', '.join(failed)}" if failed else "")
        if failed:
            result.error = f"{name}/{row['variant']} failed on {', '.join(failed)}"
    if name == "svd_int8":
        run.compressed["svd+int8"] = folder / "model.int8.onnx"
    else:
        run.compressed["int8"] = folder / "model.int8.onnx"
    result.numbers[name] = {"reference_nme68_2d": (report.get("reference_fp32_torch") or {}).get("nme68_2d"),
                            "variants": variants, "svd": report.get("svd")}
    result.add(folder / "report.md", "compress report")


# --- stage 4: export ------------------------------------------------------------------------------------
def stage_export(run: QuickstartRun, result: StageResult, display) -> None:
    """Every format at its default precision, verified against FP32 PyTorch; a missing runtime is 'unavailable'."""
    from prnet.export.api import export_model
    from prnet.export.formats import ExportUnavailable, get_format

    config, folder = run.config, run.path("export")
    folder.mkdir(parents=True, exist_ok=True)
    rows = {}
    with display.steps("export", len(config.export_formats)) as advance:
        for name in config.export_formats:
            spec = get_format(name)
            out = folder / f"model{spec.suffix}"
            display.note(f"export {name}")
            try:
                exported = export_model(name, run.model, out, data=run.dataset, parity_count=config.parity_count,
                                        latency_runs=config.export_latency_runs, log=display.note,
                                        runner_options={"threads": run.threads})
                status, note = exported.status, "; ".join(exported.notes)
                rows[name] = {"status": status, "precision": exported.precision, "size_bytes": exported.size_bytes,
                              "max_deviation_px": exported.max_deviation_px, "mean_deviation_px": exported.mean_deviation_px,
                              "latency_ms": exported.latency_ms, "seconds": round(exported.seconds, 1), "notes": exported.notes}
            except ExportUnavailable as err:
                status, note = "unavailable", str(err)
                rows[name] = {"status": status, "reason": note}
            except Exception as err:  # one broken exporter must not hide the other formats
                status, note = "failed", f"{type(err).__name__}: {err}"
                rows[name] = {"status": status, "reason": note}
            result.add(out, name, status, note)
            advance()
    result.numbers["formats"] = rows
    failed = [n for n, r in rows.items() if r["status"] not in ("ok", "unavailable")]
    if failed:
        result.error = f"export failed for {', '.join(failed)}"


# --- stage 5: bench -------------------------------------------------------------------------------------
def bench_data(run: QuickstartRun, display) -> Path | None:
    """None (bench's built-in synthetic validation set: faces never trained on) for a model in the data's own
    layout; for a smaller model (64 px), the run's validation split then training samples, resampled to its
    size and layout and written as OUT/data_<size> (the built-in set only comes in the 256 px layout)."""
    from prnet.checkpoint import load_model
    from prnet.data.dataset import train_val_datasets
    from prnet.data.format import Manifest, create_dataset, read_layout, write_sample
    from prnet.train.augment import ResizedSamples

    loaded = load_model(run.model)
    if run.dataset is None or loaded.layout.layout_id == read_layout(run.dataset).layout_id:
        return None
    size = loaded.config.input_size
    train, val = train_val_datasets(run.dataset, run.config.val_fraction, run.config.seed)
    root = run.path(f"data_{size}")
    shutil.rmtree(root, ignore_errors=True)
    manifest = create_dataset(root, loaded.layout, Manifest(image_size=size, layout_id=loaded.layout.layout_id,
                                                              map_encoding="float32", image_ext=".png",
                                                              generator={"resampled_from": str(run.dataset)}))
    samples = [ResizedSamples(val, size)[i] for i in range(len(val))] if val is not None else []
    samples += [ResizedSamples(train, size)[i] for i in range(len(train))]
    for index, sample in enumerate(samples):
        write_sample(root, manifest, index, sample.image, sample.posmap, sample.landmarks, sample.params)
    display.note(f"bench data: {root} ({len(samples)} samples resampled to {size} px, validation split first)")
    return root


def stage_bench(run: QuickstartRun, result: StageResult, display) -> None:
    """`prnet bench` on the trained model: its variants x runtimes on the built-in synthetic validation set."""
    from prnet.bench.api import benchmark
    from prnet.bench.core import BenchSettings
    from prnet.bench.report import print_table

    config = run.config
    data = bench_data(run, display)
    settings = BenchSettings(threads=run.threads, batch=config.bench_batch, iters=config.bench_iters,
                             warmup=1, rounds=config.bench_rounds, throughput_iters=2)
    with display.spinner("bench"):
        report, written = benchmark(run.model, config.bench_variants, config.bench_backends, data, config.bench_samples,
                                    settings, run.path("bench"), log=display.note, print_table=False)
    display.show(lambda console: print_table(report, console))
    rows = {}
    for row in report["rows"]:
        rows[row["name"]] = {"status": row["status"], "reason": row.get("reason"),
                             "p50_ms": (row.get("latency_ms") or {}).get("p50"),
                             "nme68_2d": (row.get("accuracy") or {}).get("nme68_2d"),
                             "size_bytes": row.get("size_bytes"), "artifact": row.get("artifact")}
    result.numbers.update(rows=rows, reference_row=report.get("reference_row"), pareto_front=report.get("pareto_front"),
                          data=report["data"]["source"])
    for kind, path in written.items():
        result.add(path, f"bench {kind}")
    failed = [name for name, row in rows.items() if row["status"] == "failed"]
    if failed:
        result.error = f"bench rows failed: {', '.join(failed)}"
