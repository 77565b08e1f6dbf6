"""`prnet compress` end to end: deployment form -> [SVD + distillation] -> [QAT] -> ONNX FP32 / INT8 / FP16,
then validation NME and side-by-side latency of every variant, written as a report next to the models.

    OUT/model.pt             the compressed model: a prnet checkpoint with a compression section (prnet.checkpoint;
                             outputs pixels; holds the QDQ INT8 model too): every --model takes it
    OUT/original.fp32.onnx   the original graph (transposed convs), FP32: the latency/accuracy baseline
    OUT/deploy.fp32.onnx     the deployment form before SVD (only when --svd)
    OUT/model.fp32.onnx      the compressed model in FP32
    OUT/model.int8.onnx      QDQ INT8 (ONNX Runtime, OpenVINO; --int8-target tensorrt: symmetric for TensorRT)
    OUT/model.fp16.onnx      FP16 weights and compute, float32 I/O (GPU/TensorRT/CoreML)
    OUT/layout.npz           the UV layout the maps are in (the student's size with --input-size)
    OUT/report.json, report.md
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from torch import nn

from prnet.compress import fp16 as fp16_method
from prnet.compress import int8 as int8_method
from prnet.compress import qat as qat_method
from prnet.compress import svd as svd_method
from prnet.compress.data import calibration_loop, first_batches
from prnet.compress.distill import DistillConfig, Pixels, finetune
from prnet.compress.evaluate import Prediction, predict, torch_maps, validation_metrics
from prnet.compress.fp16 import Fp16Config
from prnet.compress.int8 import Int8Config
from prnet.compress.latency import RUNTIMES, compare_onnx, runtime_callable
from prnet.compress.macs import layer_costs, total_params
from prnet.compress.onnx_util import export_onnx
from prnet.compress.qat import QatConfig
from prnet.compress.resolution import Resolution
from prnet.compress.svd import SvdConfig, SvdResult
from prnet.geometry.resample import resize_layout


@dataclass
class CompressConfig:
    input_size: int | None = None  # the student's input size (None: the model's own); a distilled smaller student
    svd: SvdConfig | None = None
    finetune: DistillConfig = field(default_factory=lambda: DistillConfig(steps=500))  # recovery after SVD
    qat: QatConfig | None = None
    int8: Int8Config | None = None
    fp16: Fp16Config | None = None
    upsample: str = "phases"  # the deployment rewrite of stride-2 transposed convs (prnet.export.deploy)
    val_count: int = 64  # validation images for NME
    latency_repeats: int = 20  # interleaved timed runs per (variant, runtime)
    runtimes: tuple[str, ...] = RUNTIMES
    threads: int = 2
    seed: int = 0
    sensitivity: bool = False  # with int8: per-block INT8 sensitivity table (prnet.compress.sensitivity) in the report
    augment: Any = None  # a prnet.train.augment.AugmentConfig: distil on jittered crops (None: the stored crops)


@dataclass
class Student:
    """The compressed PyTorch model before export, with how it was made."""

    model: nn.Module
    svd: SvdResult | None = None
    history: list[dict] = field(default_factory=list)
    qat_history: list[dict] = field(default_factory=list)


def resolution_of(teacher: nn.Module, config: CompressConfig) -> Resolution:
    size = teacher.config.input_size
    return Resolution(size, config.input_size or size)


def distill_config(config: CompressConfig) -> DistillConfig:
    """The fine-tune settings; jittered crops never repeat, so the teacher cache is off with --augment."""
    return config.finetune if config.augment is None else replace(config.finetune, teacher_cache_mb=0)


def build_student(teacher: nn.Module, train: Any, layout, output_scale: float, config: CompressConfig,
                  log: Callable[[str], None]) -> Student:
    """[A smaller input size,] SVD + distillation fine-tune (when asked), then QAT (when asked), on a copy of the
    deployment form. `layout` and `output_scale` are the teacher's; `train` is resampled to each model's size."""
    resolution = resolution_of(teacher, config)
    student = Student(resolution.student_init(teacher))
    weight_mask = resize_layout(layout, resolution.student_size).weight_mask
    scale = student.model.output_scale  # the loss in units of the student's output scale, as training's
    target = resolution.teacher_module(teacher)
    steps = config.finetune.steps if config.svd is not None or resolution.changed else 0
    if resolution.changed:
        log(f"input size {resolution.teacher_size} -> {resolution.student_size} px: the teacher's weights, "
            f"distilled from it at {resolution.teacher_size} px")
    if config.svd is not None:
        loop = None
        if config.svd.fit == "responses":  # the student's own responses on the first training images
            loop = calibration_loop(resolution.first_batches(train, config.svd.calibration_count,
                                                             config.finetune.batch_size))
        svd_config = replace(config.svd, input_size=resolution.student_size)
        student.svd = svd_method.apply(student.model, svd_config, loop)
        student.model = student.svd.model
        log(f"SVD ({svd_config.describe()}): {len(student.svd.plan)} layers factorized")
    if steps > 0:
        log(f"fine-tuning {steps} steps (distillation from the FP32 teacher)")
        batches = resolution.batches(train, config.finetune.batch_size, seed=config.seed, augment=config.augment)
        student.history = finetune(student.model, target, batches, weight_mask, scale, distill_config(config), log)
    if config.qat is not None and config.qat.steps > 0:
        calibration = resolution.first_batches(train, config.qat.int8.calibration_count, config.finetune.batch_size)
        qat_method.apply(student.model, config.qat, calibration_loop(calibration))
        qat_train = replace(distill_config(config), steps=config.qat.steps, lr=config.qat.lr)
        log(f"QAT: {config.qat.steps} steps")
        batches = resolution.batches(train, qat_train.batch_size, seed=config.seed + 1, augment=config.augment)
        student.qat_history = finetune(student.model, target, batches, weight_mask, scale, qat_train, log)
        qat_method.strip(student.model)
    student.model.eval().requires_grad_(False)
    return student


def stamp_metadata(path: Path, loaded, precision: str, settings: dict) -> None:
    """The export area's metadata (input size, pixel output, UV layout...), so `prnet.export.runners.load_runner(path)`
    and `prnet bench/predict/eval` take a compressed ONNX file on its own."""
    import onnx

    from prnet.export.metadata import metadata_for
    from prnet.export.onnx_export import attach_metadata
    from prnet.io import atomic_path

    model = attach_metadata(onnx.load(str(path)), metadata_for(loaded, "onnx", precision, {"compress": settings}))
    with atomic_path(path, suffix=".onnx") as tmp:
        onnx.save_model(model, str(tmp))


def export_variants(loaded, teacher: nn.Module, student: Student, config: CompressConfig, out: Path,
                    calibration: list | None, log: Callable[[str], None]) -> dict[str, dict]:
    """Write every ONNX variant; returns name -> {"file", "dtype", "torch" (module for MACs), "size" (input px)...}.
    The original and deploy forms run at the teacher's input size, the compressed ones at the student's."""
    resolution = resolution_of(teacher, config)
    size, small = resolution.teacher_size, resolution.student_size
    target = resolution.student_loaded(loaded)
    variants: dict[str, dict] = {}
    original = export_onnx(Pixels(loaded.model.eval(), loaded.config.output_scale), out / "original.fp32.onnx", size)
    variants["original-fp32"] = {"file": original, "dtype": "float32", "torch": loaded.model, "size": size}
    if config.svd is not None:
        variants["deploy-fp32"] = {"file": export_onnx(teacher, out / "deploy.fp32.onnx", size), "dtype": "float32",
                                   "torch": teacher, "size": size}
    fp32 = export_onnx(student.model, out / "model.fp32.onnx", small)
    compressed = config.svd is not None or config.qat is not None or resolution.changed
    variants["compressed-fp32" if compressed else "deploy-fp32"] = {
        "file": fp32, "dtype": "float32", "torch": student.model, "size": small}
    if config.int8 is not None:
        batches = [np.ascontiguousarray(b.images.numpy()) for b in calibration]
        log(f"INT8: calibrating ({config.int8.calibration}) on {sum(len(b) for b in batches)} images")
        result = int8_method.quantize_onnx(fp32, out / "model.int8.onnx", config.int8, batches)
        if result.float_path != fp32:  # quant_pre_process's intermediate file: not a deliverable
            result.float_path.unlink(missing_ok=True)
        variants["compressed-int8"] = {"file": result.path, "dtype": "int8", "torch": student.model, "int8": result,
                                       "size": small}
    if config.fp16 is not None:
        variants["compressed-fp16"] = {"file": fp16_method.convert_onnx(fp32, out / "model.fp16.onnx", config.fp16),
                                       "dtype": "float16", "torch": student.model, "size": small}
    precisions = {"float32": "fp32", "int8": "int8", "float16": "fp16"}
    for entry in variants.values():
        view = target if entry["size"] == small else loaded
        stamp_metadata(entry["file"], view, precisions[entry["dtype"]], settings_dict(config))
    return variants


@dataclass
class ValidationSet:
    """The validation faces at one input size, the layout to read maps of that size, and the FP32 teacher's
    prediction in that size's pixels (the reference every variant's deviation is measured from)."""

    batches: list
    layout: Any
    reference: Prediction


def validation_sets(teacher: nn.Module, val: Any, layout, config: CompressConfig) -> tuple[dict, dict[int, ValidationSet]]:
    """(the FP32 teacher's metrics at its own size, {input size: ValidationSet}) for the teacher's and the student's
    sizes; at the student's size the reference is the teacher's maps resampled to it (`prnet.compress.resolution`)."""
    resolution = resolution_of(teacher, config)
    batches = first_batches(val, config.val_count, 8)
    metrics, reference = validation_metrics(torch_maps(teacher), batches, layout)
    sets = {resolution.teacher_size: ValidationSet(batches, layout, reference)}
    if resolution.changed:
        small = resize_layout(layout, resolution.student_size)
        resampled = predict(torch_maps(resolution.teacher_module(teacher)), batches, small)
        sets[resolution.student_size] = ValidationSet(resolution.first_batches(val, config.val_count, 8), small,
                                                      resampled)
    return metrics, sets


def evaluate_variants(variants: dict[str, dict], reference_metrics: dict, sets: dict[int, ValidationSet],
                      config: CompressConfig, log: Callable[[str], None]) -> dict[str, dict]:
    """NME per variant and runtime (ORT and OpenVINO run INT8 differently), plus deviation from the FP32 teacher.
    Every dNME is against the teacher at its own input size (NME is scale-free: a 96 px student is compared with
    its 128 px teacher on the same faces)."""
    accuracy = {"fp32-torch": reference_metrics}
    for name, entry in variants.items():
        chosen = sets[entry["size"]]
        for runtime in config.runtimes:
            key = f"{name}@{runtime}"
            try:
                run = runtime_callable(runtime, entry["file"], config.threads)
                accuracy[key], _ = validation_metrics(run, chosen.batches, chosen.layout, chosen.reference)
            except Exception as err:  # reported, not swallowed
                accuracy[key] = {"error": f"{type(err).__name__}: {str(err).strip().splitlines()[0][:300]}"}
            if "nme68_2d" in accuracy[key]:
                accuracy[key]["delta_nme68_2d"] = accuracy[key]["nme68_2d"] - reference_metrics["nme68_2d"]
                log(f"{key}: NME {accuracy[key]['nme68_2d']:.3f} (delta {accuracy[key]['delta_nme68_2d']:+.3f})")
    return accuracy


def compress_model(loaded, train: Any, val: Any, config: CompressConfig, out_dir: str | Path,
                   log: Callable[[str], None] = print, student: Student | None = None,
                   extra_report: dict | None = None, source: str | Path | None = None) -> dict:
    """Run the whole pipeline on a `prnet.checkpoint.LoadedModel` (read from `source`); returns the report (also
    written to OUT). OUT/model.pt is a prnet checkpoint with a compression section (and the INT8 model)."""
    from prnet.checkpoint import save_compressed
    from prnet.compress.report import build_report, write_report
    from prnet.export.deploy import to_deployment

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    teacher = to_deployment(loaded.model.eval(), upsample=config.upsample)
    resolution = resolution_of(teacher, config)
    target = resolution.student_loaded(loaded)  # config and layout the student is saved and exported with
    if student is None:
        student = build_student(teacher, train, loaded.layout, loaded.config.output_scale, config, log)
    target.layout.save(out / "layout.npz")
    needs_calibration = config.int8 is not None
    calibration = resolution.first_batches(train, config.int8.calibration_count, 8) if needs_calibration else None
    variants = export_variants(loaded, teacher, student, config, out, calibration, log)
    int8 = variants.get("compressed-int8")  # the checkpoint carries its QDQ model: export/predict/bench take one file
    save_compressed(out / "model.pt", student.model, target.config, target.layout,
                    student.svd.plan if student.svd else [], half=config.fp16 is not None and config.int8 is None,
                    int8_onnx=Path(int8["file"]).read_bytes() if int8 else None, settings=settings_dict(config),
                    source=str(source) if source is not None else "")
    accuracy, sets = {}, {}
    if val is not None:
        reference_metrics, sets = validation_sets(teacher, val, loaded.layout, config)
        accuracy = evaluate_variants(variants, reference_metrics, sets, config, log)
    log(f"latency: {len(variants)} variants x {len(config.runtimes)} runtimes, {config.latency_repeats} interleaved runs")
    timings, failures = compare_onnx({k: v["file"] for k, v in variants.items()}, config.runtimes,
                                     {k: v["size"] for k, v in variants.items()}, config.latency_repeats,
                                     config.threads, baseline="original-fp32@onnxruntime")
    extra = dict(extra_report or {})
    if config.int8 is not None and config.sensitivity and sets:
        from prnet.compress.sensitivity import int8_sensitivity

        log("INT8 sensitivity: one block fake-quantized at a time")
        chosen = sets[resolution.student_size]
        extra["int8_sensitivity"] = int8_sensitivity(student.model, calibration_loop(calibration), chosen.batches[:1],
                                                     chosen.layout, config.int8, log)
    report = build_report(loaded, teacher, student, variants, accuracy, timings, failures, settings_dict(config),
                          out, extra)
    write_report(report, out)
    return report


def settings_dict(config: CompressConfig) -> dict:
    return {k: (asdict(v) if hasattr(v, "__dataclass_fields__") else v) for k, v in vars(config).items()}


def model_summary(module: nn.Module, input_size: int) -> dict:
    costs = layer_costs(module, input_size)
    return {"params": total_params(module), "macs": sum(c.macs for c in costs), "convs": len(costs)}
