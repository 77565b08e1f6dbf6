"""`prnet compress`: thin CLI over prnet.compress.pipeline / prnet.compress.budget (heavy imports inside the function)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from prnet.cli.errors import exit_with_error


def compress_command(
    model: Optional[Path] = typer.Option(None, "--model", help="Checkpoint written by `prnet train` (.pt); default: the built-in model."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset directory in prnet's format: calibration, fine-tuning and validation images (resampled to the model's input size). Default: built-in synthetic faces rendered on the fly."),
    out: Path = typer.Option(Path("runs/compress"), "--out", help="Output directory (models + report.json/report.md)."),
    input_size: Optional[int] = typer.Option(None, "--input-size", help="A student at a smaller input size (a multiple of 32, e.g. 96 for a 128 px model): the model's own weights, distilled from it at its size for --finetune-steps; MACs fall with the square of the size."),
    svd: Optional[str] = typer.Option(None, "--svd", help="Low-rank factorization: ENERGY (0.9 = keep 90% of each layer's singular-value energy), macs:R or params:R (global share, e.g. macs:0.25)."),
    svd_fit: str = typer.Option("weights", "--svd-fit", help="What --svd approximates: weights (data-free SVD) or responses (each layer's output on --calibration-count training images: PCA, usually far less lossy)."),
    svd_skip: List[str] = typer.Option([], "--svd-skip", help="Layer-name pattern (fnmatch, repeatable) that --svd leaves whole, e.g. 'decoder.1[0-6].*' to factorize only the low-resolution layers, where the parameters are."),
    finetune_steps: int = typer.Option(500, "--finetune-steps", help="Distillation steps after --svd (FP32 teacher, mask-weighted position-map loss)."),
    augment: bool = typer.Option(False, "--augment/--no-augment", help="Distil on crops jittered as `prnet train` jitters them (rotation, shift, scale, colour; the same crop for teacher and student), so a student also fits the shifted crops a tracker gives it. Off: the stored crops only."),
    int8: bool = typer.Option(False, "--int8", help="Static INT8 QDQ (ONNX Runtime / OpenVINO; --int8-target tensorrt for TensorRT)."),
    int8_target: str = typer.Option("cpu", "--int8-target", help="cpu: u8 activations (fastest on CPUs); tensorrt: symmetric s8 activations."),
    calibration: str = typer.Option("minmax", "--calibration", help="Calibration method: minmax, percentile, entropy."),
    calibration_count: int = typer.Option(64, "--calibration-count", help="Calibration images from the training split."),
    keep_float: List[str] = typer.Option([], "--keep-float", help="Module-name pattern kept in float (repeatable), e.g. 'decoder.13.*'. The input conv and 3-channel convs always are."),
    reduce_range: bool = typer.Option(False, "--reduce-range", help="7-bit weights (avoids u8s8 saturation on AVX2 without VNNI)."),
    sensitivity: bool = typer.Option(False, "--sensitivity", help="With --int8: per-block INT8 sensitivity table in the report (which blocks to --keep-float)."),
    qat: int = typer.Option(0, "--qat", help="Quantization-aware fine-tuning steps before INT8 (0: off)."),
    fp16: bool = typer.Option(False, "--fp16", help="FP16 ONNX (GPU/TensorRT/CoreML; x86 CPUs gain nothing from it)."),
    budget_nme: Optional[float] = typer.Option(None, "--budget-nme", help="Search SVD energy / float layers for the fastest model within D NME points of FP32."),
    budget_sizes: Optional[str] = typer.Option(None, "--budget-sizes", help="With --budget-nme: student input sizes to search too, smallest first, e.g. 96,128 (a smaller size is distilled from the model at its own)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Fine-tuning batch size."),
    lr: float = typer.Option(1e-4, "--lr", help="Fine-tuning learning rate (QAT uses lr/5)."),
    teacher_cache_mb: int = typer.Option(4096, "--teacher-cache-mb", help="Memory (MB) for the teacher's maps of faces already seen in distillation, so a face's teacher forward runs once (0: off; off with --augment)."),
    val_fraction: float = typer.Option(0.05, "--val-fraction", help="Share of --data held out for validation (the training split's seed)."),
    val_count: int = typer.Option(64, "--val-count", help="Validation images for NME."),
    repeats: int = typer.Option(20, "--repeats", help="Interleaved timed runs per variant and runtime."),
    runtimes: str = typer.Option("onnxruntime,openvino", "--runtimes", help="Comma-separated runtimes to time and score: onnxruntime (or its format name, onnx), openvino (f32 pinned), openvino-bf16 (OpenVINO's default on AVX512-BF16 CPUs)."),
    upsample: str = typer.Option("phases", "--upsample", help="Deployment rewrite of stride-2 transposed convs: phases, phases_d2s, conv3x3."),
    device: str = typer.Option("cpu", "--device", help="Fine-tuning device (cpu, cuda)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fine-tuning batches and validation split."),
) -> None:
    """Compress a trained PRNet: SVD + distillation, QAT, INT8, FP16, or a search within an NME budget."""
    from rich.console import Console

    from prnet.io import PrnetInputError

    console = Console(stderr=True)
    try:
        config = build_config(svd, finetune_steps, int8, int8_target, calibration, calibration_count, keep_float,
                              reduce_range, qat, fp16, batch_size, lr, val_count, repeats, runtimes, upsample, device,
                              seed, budget_nme, sensitivity, svd_fit, svd_skip, input_size, augment,
                              teacher_cache_mb)
        sizes = parse_sizes(budget_sizes) if budget_sizes else ()
        report = run(model, data, out, config, val_fraction, seed, budget_nme, log=console.print, budget_sizes=sizes)
    except PrnetInputError as err:
        exit_with_error(err)
    console.print((out / "report.md").read_text())
    console.print(f"done: {out} ({len(report['variants'])} variants)")


def parse_sizes(text: str) -> tuple[int, ...]:
    from prnet.io import PrnetInputError

    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        sizes = ()
    if not sizes or any(s < 32 or s % 32 for s in sizes):
        raise PrnetInputError(f"--budget-sizes {text!r}: comma-separated multiples of 32, e.g. 96,128")
    return sizes


def build_config(svd, finetune_steps, int8, int8_target, calibration, calibration_count, keep_float, reduce_range,
                 qat, fp16, batch_size, lr, val_count, repeats, runtimes, upsample, device, seed, budget_nme,
                 sensitivity=False, svd_fit="weights", svd_skip=(), input_size=None, augment=False,
                 teacher_cache_mb=4096):
    from prnet.compress.distill import DistillConfig
    from prnet.compress.fp16 import Fp16Config
    from prnet.compress.int8 import DEFAULT_KEEP_FLOAT, Int8Config
    from prnet.compress.latency import runtime_names
    from prnet.compress.pipeline import CompressConfig
    from prnet.compress.qat import QatConfig
    from prnet.compress.svd import parse_svd_spec
    from prnet.io import PrnetInputError
    from prnet.train.augment import AugmentConfig

    if teacher_cache_mb < 0:
        raise PrnetInputError(f"--teacher-cache-mb {teacher_cache_mb}: use 0 (off) or a size in MB, e.g. 4096")
    if int8_target not in ("cpu", "tensorrt"):
        raise PrnetInputError(f"--int8-target {int8_target!r}: use cpu or tensorrt")
    chosen = runtime_names(runtimes)
    if qat and not int8:
        raise PrnetInputError("--qat trains for INT8: add --int8")
    if input_size is not None and (input_size < 32 or input_size % 32):
        raise PrnetInputError(f"--input-size {input_size}: use a multiple of 32 (the encoder downsamples 32x), e.g. 96")
    if budget_nme is not None and budget_nme < 0:
        raise PrnetInputError("--budget-nme must be >= 0 (NME points, e.g. 0.1)")
    int8_config = Int8Config(calibration=calibration, calibration_count=calibration_count,
                             activations="s8" if int8_target == "tensorrt" else "u8",
                             keep_float=DEFAULT_KEEP_FLOAT + tuple(keep_float), reduce_range=reduce_range)
    return CompressConfig(
        input_size=input_size, svd=parse_svd_spec(svd, fit=svd_fit, calibration_count=calibration_count,
                           skip=tuple(svd_skip)) if svd else None,
        finetune=DistillConfig(steps=finetune_steps, batch_size=batch_size, lr=lr, device=device,
                               teacher_cache_mb=teacher_cache_mb),
        qat=QatConfig(steps=qat, lr=lr / 5, int8=int8_config) if qat else None,
        int8=int8_config if int8 else None, fp16=Fp16Config() if fp16 else None, upsample=upsample,
        val_count=val_count, latency_repeats=repeats, runtimes=chosen, seed=seed, sensitivity=sensitivity,
        augment=AugmentConfig() if augment else None)


def run(model: Path, data: Path, out: Path, config, val_fraction: float, seed: int, budget_nme, log=print,
        budget_sizes: tuple[int, ...] = ()) -> dict:
    """Load the checkpoint and the data, fit the SVD config to the model's input size, run the pipeline."""
    from dataclasses import replace

    from prnet.checkpoint import load_model
    from prnet.compress.budget import search
    from prnet.compress.pipeline import compress_model
    from prnet.default_model import resolve_model
    from prnet.io import PrnetInputError
    from prnet.train.augment import ResizedSamples

    model = resolve_model(model)
    loaded = load_model(model)
    if loaded.compression is not None:
        raise PrnetInputError(f"{model}: already compressed by `prnet compress`; pass the checkpoint it came from "
                              f"({loaded.meta.get('source') or 'see its report.json'})")
    if data is None:  # built-in synthetic faces, rendered on the fly (training seed != validation seed)
        from prnet.train.data import synth_sources

        log("no --data: calibration, fine-tuning and validation on built-in synthetic faces (rendered on the fly)")
        train, val, _ = synth_sources(seed, 100_000, config.val_count)
    else:
        from prnet.data.dataset import train_val_datasets

        train, val = train_val_datasets(data, val_fraction=val_fraction, seed=seed)
    size = loaded.config.input_size
    if train[0].image.shape[0] != size:  # e.g. a 128 px model on 256 px data: resampled, as training does
        train, val = ResizedSamples(train, size), (ResizedSamples(val, size) if val is not None else None)
    if train.layout.layout_id != loaded.layout.layout_id:
        raise PrnetInputError(f"{data or 'synthetic data'}: UV layout {train.layout.layout_id} differs from the "
                              f"model's {loaded.layout.layout_id}; the NME would compare different maps")
    if config.svd is not None:
        config = replace(config, svd=replace(config.svd, input_size=loaded.config.input_size))
    if budget_nme is not None:  # the SVD setting (if any) is the template whose energy is searched
        return search(loaded, train, val, config, budget_nme, out, log=log, sizes=budget_sizes)
    if budget_sizes:
        raise PrnetInputError("--budget-sizes is a lever of the budget search: add --budget-nme D")
    return compress_model(loaded, train, val, config, out, log=log, source=model)
