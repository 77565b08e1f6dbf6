"""Speed experiments on the full architecture with random weights (no trained model needed for speed).

    python -m prnet.compress.measure speed [--model prnet] [--svd macs:0.25] [--repeats 20]
    python -m prnet.compress.measure int8-settings [--model prnet] [--repeats 15] [--toy DIR]
    python -m prnet.compress.measure toy-report --toy DIR [--student] [--out OUT]
    python -m prnet.compress.measure svd-fit --data DIR [--checkpoint PT] [--svd params:0.45] [--val 200]

`speed`: the original graph (FP32), the deployment form (FP32, INT8), SVD (FP32, INT8) in ONNX Runtime and
OpenVINO, all timed in one process, interleaved, with ratios to the original graph in ONNX Runtime.
`svd-fit` (a TRAINED model: the built-in default unless --checkpoint): weight SVD against response PCA
(`SvdConfig.fit`) at each --svd setting, no fine-tuning, on the validation split `prnet compress --data DIR`
uses (its first --val faces; calibration on the first --calibration training faces): NME and face-pixel
deviation from the FP32 deployment form.
`int8-settings`: the AVX2-without-VNNI question: u8s8 (ORT's default kernel, can saturate), u8s8 with
reduce_range (7-bit weights), u8u8 (no saturation) and s8s8 (TensorRT's symmetric format): speed and the
output deviation from FP32 in pixels. Random weights say nothing about accuracy, only about speed and
relative quantization error; BN statistics are first set from a few images so activations have
realistic ranges (`wake_batchnorm`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch


def wake_batchnorm(model: torch.nn.Module, images: torch.Tensor) -> torch.nn.Module:
    """Set BN running statistics from `images` (cumulative average), so a random network has sane activations."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for image in images.split(2):
            model(image)
    return model.eval()


def smooth_images(count: int, size: int, seed: int = 0) -> torch.Tensor:
    """Low-frequency random images in [0, 1]: closer to photos than white noise for calibration ranges."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, size // 16, size // 16, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def _setup(model_name: str, size: int, calib_count: int, toy: str | None = None):
    """(model, deployment form, calibration batches, test images): random weights, or the toy teacher."""
    from prnet.export.deploy import to_deployment
    from prnet.model import create_model

    if toy:
        from prnet.compress.data import first_batches
        from prnet.compress.toy_teacher import ToyData, load_parts, toy_layout

        layout = toy_layout(size)
        model = load_parts(toy, model_name, size)
        calibration = [b.images.numpy() for b in first_batches(ToyData(layout, calib_count, seed=1), calib_count, 8)]
        test = first_batches(ToyData(layout, 4, seed=2), 4, 4)[0].images.numpy()
        return model, to_deployment(model), calibration, test
    torch.manual_seed(0)
    model = wake_batchnorm(create_model(model_name, input_size=size), smooth_images(8, size, seed=1))
    calibration = [smooth_images(calib_count, size, seed=2).numpy()]
    return model, to_deployment(model), calibration, smooth_images(4, size, seed=3).numpy()


def speed(args) -> dict:
    from prnet.compress import int8, svd
    from prnet.compress.distill import Pixels
    from prnet.compress.int8 import Int8Config
    from prnet.compress.latency import compare_onnx, runtime_names
    from prnet.compress.macs import total_macs
    from prnet.compress.onnx_util import export_onnx

    model, deployed, calibration, _ = _setup(args.model, args.size, args.calibration, args.toy)
    out = Path(args.out or tempfile.mkdtemp(prefix="prnet-speed-"))
    low_rank = svd.apply(deployed, replace(svd.parse_svd_spec(args.svd), input_size=args.size))
    files = {
        "original-fp32": export_onnx(Pixels(model, model.config.output_scale), out / "original.onnx", args.size),
        "deploy-fp32": export_onnx(deployed, out / "deploy.onnx", args.size),
        f"svd({args.svd})-fp32": export_onnx(low_rank.model, out / "svd.onnx", args.size),
    }
    files["deploy-int8"] = int8.quantize_onnx(files["deploy-fp32"], out / "deploy.int8.onnx", Int8Config(), calibration).path
    files[f"svd({args.svd})-int8"] = int8.quantize_onnx(files[f"svd({args.svd})-fp32"], out / "svd.int8.onnx",
                                                         Int8Config(), calibration).path
    timings, failures = compare_onnx(files, runtimes=runtime_names(args.runtimes), input_size=args.size,
                                     repeats=args.repeats, baseline="original-fp32@onnxruntime")
    macs = {"original": total_macs(model, args.size), "deploy": total_macs(deployed, args.size),
            "svd": total_macs(low_rank.model, args.size)}
    return {"macs": macs, "timings": {k: v.to_dict() for k, v in timings.items()}, "failures": failures,
            "sizes": {k: Path(v).stat().st_size for k, v in files.items()}, "svd_notes": low_rank.notes}


def int8_settings(args) -> dict:
    from prnet.compress import int8
    from prnet.compress.int8 import Int8Config
    from prnet.compress.latency import compare_onnx, runtime_callable, runtime_names
    from prnet.compress.onnx_util import export_onnx

    _, deployed, calibration, test = _setup(args.model, args.size, args.calibration, args.toy)
    out = Path(args.out or tempfile.mkdtemp(prefix="prnet-int8-"))
    fp32 = export_onnx(deployed, out / "deploy.onnx", args.size)
    settings = {
        "u8s8": Int8Config(),
        "u8s8-reduce-range": Int8Config(reduce_range=True),
        "u8u8": Int8Config(weights="u8"),
        "s8s8 (TensorRT)": Int8Config(activations="s8"),
    }
    files = {"fp32": fp32}
    for name, config in settings.items():
        files[name] = int8.quantize_onnx(fp32, out / f"{name.split()[0]}.onnx", config, calibration).path
    with torch.no_grad():
        reference = deployed(torch.from_numpy(test)).numpy()
    deviation = {}
    for name, path in files.items():
        for runtime in runtime_names(args.runtimes):
            try:
                pred = runtime_callable(runtime, path)(test)
                deviation[f"{name}@{runtime}"] = {"mean_px": float(np.abs(pred - reference).mean()),
                                                   "max_px": float(np.abs(pred - reference).max())}
            except Exception as err:
                deviation[f"{name}@{runtime}"] = {"error": f"{type(err).__name__}: {str(err)[:200]}"}
    timings, failures = compare_onnx(files, runtimes=runtime_names(args.runtimes), input_size=args.size,
                                     repeats=args.repeats, baseline="fp32@onnxruntime")
    return {"deviation": deviation, "timings": {k: v.to_dict() for k, v in timings.items()}, "failures": failures}


def toy_report(args) -> dict:
    """The full `prnet compress` pipeline on the toy teacher/student made by prnet.compress.toy_teacher (GPU)."""
    from prnet.compress import svd
    from prnet.checkpoint import load_model as load_compressed
    from prnet.compress.fp16 import Fp16Config
    from prnet.compress.int8 import Int8Config
    from prnet.compress.latency import runtime_names
    from prnet.compress.pipeline import CompressConfig, Student, compress_model
    from prnet.compress.toy_teacher import ToyData, load_parts, toy_layout
    from prnet.export.deploy import to_deployment
    from prnet.checkpoint import LoadedModel

    layout = toy_layout(args.size)
    model = load_parts(args.toy, args.model, args.size)
    loaded = LoadedModel(model=model, config=model.config, layout=layout, meta={"toy": True})
    train, val = ToyData(layout, args.calibration, seed=1), ToyData(layout, args.val, seed=2)
    int8_config = Int8Config(calibration_count=args.calibration, reduce_range=args.reduce_range)
    config = CompressConfig(int8=int8_config, fp16=Fp16Config() if args.fp16 else None, val_count=args.val,
                            latency_repeats=args.repeats, runtimes=runtime_names(args.runtimes))
    student = None
    if args.student:
        compressed = load_compressed(Path(args.toy) / "student.pt")
        spec = compressed.meta.get("svd", args.svd)
        svd_config = replace(svd.parse_svd_spec(spec), input_size=args.size)
        config = replace(config, svd=svd_config)
        plan = svd.apply(to_deployment(model), svd_config)  # deterministic: the same plan, for the layer table
        plan.model = compressed.model
        student = Student(model=compressed.model, svd=plan)
    report = compress_model(loaded, train, val, config, args.out or tempfile.mkdtemp(prefix="prnet-toy-"),
                            student=student, extra_report={"toy": True})
    timings = {f"{row['variant']}@{rt}": {"median_ms": cell.get("median_ms", float("nan")),
                                          "ratio_to_baseline": cell.get("speedup_vs_original_ort", float("nan")),
                                          "nme": cell.get("accuracy", {}).get("nme68_2d")}
               for row in report["variants"] for rt, cell in row["runtimes"].items()}
    return {"timings": timings, "failures": {}, "reference": report["reference_fp32_torch"]}


def svd_fit(args) -> dict:
    """Weights vs responses at each --svd spec on a trained model (see the module docstring)."""
    from prnet.checkpoint import load_model
    from prnet.compress import svd
    from prnet.compress.data import calibration_loop, first_batches
    from prnet.compress.evaluate import torch_maps, validation_metrics
    from prnet.data.dataset import train_val_datasets
    from prnet.default_model import resolve_model
    from prnet.export.deploy import to_deployment
    from prnet.hardware import cpu_summary
    from prnet.train.augment import ResizedSamples

    loaded = load_model(resolve_model(args.checkpoint))
    size = loaded.config.input_size
    train, val = train_val_datasets(args.data, val_fraction=0.05, seed=0)  # `prnet compress`'s default split
    train, val = ResizedSamples(train, size), ResizedSamples(val, size)
    teacher = to_deployment(loaded.model.eval())
    loop = calibration_loop(first_batches(train, args.calibration, 8))
    val_batches = first_batches(val, args.val, 8)
    base, reference = validation_metrics(torch_maps(teacher), val_batches, loaded.layout)
    count = lambda model: sum(p.numel() for p in model.parameters())  # noqa: E731
    rows = {"fp32": {"nme68_2d": base["nme68_2d"], "params": count(teacher)}}
    print(f"{resolve_model(args.checkpoint)} at {size} px, {len(reference.landmarks)} faces: "
          f"FP32 NME {base['nme68_2d']:.3f} %")
    skip = tuple(p for p in args.skip.split(",") if p)
    for spec in args.svd.split(","):
        for fit in args.fits.split(","):
            result = svd.apply(teacher, svd.parse_svd_spec(spec, input_size=size, fit=fit, skip=skip), loop)
            metrics, _ = validation_metrics(torch_maps(result.model), val_batches, loaded.layout, reference)
            row = rows[f"{spec} {fit}"] = {"energy": result.energy_used, "params": count(result.model),
                                           "nme68_2d": metrics["nme68_2d"], "deviation_px": metrics["map_deviation_px"]}
            print(f"{spec:12s} {fit:9s} energy {row['energy']:.3f}  params {row['params'] / 1e6:.2f} M  "
                  f"NME {row['nme68_2d']:.3f} % (d {row['nme68_2d'] - base['nme68_2d']:+.3f})  face-pixel dev. "
                  + " / ".join(f"{row['deviation_px'][k]:.2f}" for k in ("mean", "p99", "max")) + " px", flush=True)
    return {"timings": {}, "failures": {}, "svd_fit": rows, "cpu": cpu_summary()}


def print_table(result: dict) -> None:
    for name, timing in result["timings"].items():
        extra = result.get("deviation", {}).get(name, {})
        dev = f"  dev mean {extra['mean_px']:.3f} px max {extra['max_px']:.2f} px" if "mean_px" in extra else ""
        nme = f"  NME {timing['nme']:.3f}" if timing.get("nme") is not None else ""
        print(f"{name:40s} {timing['median_ms']:8.1f} ms  x{timing['ratio_to_baseline']:.2f}{dev}{nme}")
    for name, reason in result["failures"].items():
        print(f"{name:40s} FAILED {reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", choices=("speed", "int8-settings", "toy-report", "svd-fit"))
    parser.add_argument("--toy", default=None, help="toy-report: folder from prnet.compress.toy_teacher (teacher.part*.pt)")
    parser.add_argument("--student", action="store_true", help="toy-report: use its SVD student.pt")
    parser.add_argument("--val", type=int, default=32)
    parser.add_argument("--fp16", action="store_true")
    parser.add_argument("--reduce-range", action="store_true")
    parser.add_argument("--model", default="prnet")
    parser.add_argument("--checkpoint", default=None, help="svd-fit: trained checkpoint (default: the built-in model)")
    parser.add_argument("--data", default=None, help="svd-fit: dataset directory (prnet compress --data)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--svd", default="macs:0.25")
    parser.add_argument("--skip", default="", help="svd-fit: comma-separated layer-name patterns kept whole")
    parser.add_argument("--fits", default="weights,responses", help="svd-fit: which fits to compare")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--calibration", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runtimes", default="onnxruntime,openvino,openvino-bf16")
    parser.add_argument("--out", default=None, help="keep the ONNX files here (default: a temporary folder)")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    experiments = {"speed": speed, "int8-settings": int8_settings, "toy-report": toy_report, "svd-fit": svd_fit}
    result = experiments[args.experiment](args)
    result["seconds"] = time.perf_counter() - started
    print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
