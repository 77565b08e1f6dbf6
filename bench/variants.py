"""The registered model variants (name -> VariantSpec). Each builds from the FP32 model in the context.

fp32 is the trained PRNet as it is (the reference). The compressed variants come from `compress/`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from prnet.bench.specs import BenchContext, BuiltVariant, Unavailable, VariantSpec


def _cost(module, input_size: int) -> tuple[int, int | None, list[str]]:
    """(parameters, MACs per image, notes) of a float module; MACs come from prnet.compress.macs (hooks on a forward)."""
    params = sum(p.numel() for p in module.parameters())
    try:
        from prnet.compress.macs import total_macs
    except ImportError as err:
        return params, None, [f"MACs not counted: prnet.compress.macs is not importable ({err})"]
    return params, int(total_macs(module, input_size)), []


def build_fp32(ctx: BenchContext) -> BuiltVariant:
    model = ctx.loaded.model.eval()
    params, macs, notes = _cost(model, ctx.input_size)
    return BuiltVariant("fp32", "fp32", module=model, output_scale=float(ctx.loaded.config.output_scale),
                        params=params, macs=macs, notes=notes)


class HalfPrecision(nn.Module):
    """A module converted to float16 behind a float32 interface: casts the input to half, the output back."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner.half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.half()).float()


def build_fp16(ctx: BenchContext) -> BuiltVariant:
    """Float16 weights and compute. The module stays float32 here: each backend converts it its own way (torch:
    `HalfPrecision`; ONNX/OpenVINO/CoreML/TensorRT: their exporters' FP16 paths). x86 CPUs have no fast FP16
    math: this row shows the accuracy and size that GPUs, CoreML and TensorRT trade for their FP16 speed."""
    params, macs, notes = _cost(ctx.loaded.model, ctx.input_size)
    return BuiltVariant("fp16", "fp16", module=ctx.loaded.model.eval(),
                        output_scale=float(ctx.loaded.config.output_scale), params=params, macs=macs, notes=notes)


# --- compressed variants (compress/), all on the deployment form (prnet.export.deploy: BN folded, plain convs) --
SVD_NAME = "svd-no-finetune"  # the row name says it: `prnet compress --svd` distills, this row does not
SVD_SPEC = "macs:0.25"  # keep 25% of the MACs: the setting the compress issue measured 4x+ with INT8 at
DEPLOY_UPSAMPLE = "phases"  # prnet.export.deploy's default; safe for OpenVINO after INT8


def deployment_form(ctx: BenchContext) -> nn.Module:
    """The FP32 model as plain convs with a pixel output (built once per run)."""
    if "deploy" not in ctx.cache:
        from prnet.export.deploy import to_deployment

        ctx.cache["deploy"] = to_deployment(ctx.loaded.model.eval(), upsample=DEPLOY_UPSAMPLE).eval()
    return ctx.cache["deploy"]


def svd_form(ctx: BenchContext) -> tuple[nn.Module, list[str]]:
    """Data-free SVD of the deployment form (built once per run), and what to tell the reader about it."""
    if "svd" not in ctx.cache:
        from prnet.compress.svd import apply, parse_svd_spec

        result = apply(deployment_form(ctx), parse_svd_spec(SVD_SPEC, input_size=ctx.input_size))
        notes = [f"SVD {SVD_SPEC} ({len(result.plan)} layers factorized) WITHOUT distillation fine-tuning: "
                 "its NME is a lower bound; `prnet compress --svd` fine-tunes"] + result.notes
        ctx.cache["svd"] = (result.model.eval(), notes)
    return ctx.cache["svd"]


def _int8_onnx(ctx: BenchContext, module: nn.Module, name: str) -> tuple[Path, list[str]]:
    """Static QDQ INT8 ONNX of `module` (pixel output) calibrated on the context's calibration images."""
    from prnet.compress.int8 import Int8Config, apply

    images, source = ctx.calibration_images()  # (N, S, S, 3) float32 in [0, 1] and where they come from
    config = Int8Config(calibration_count=len(images))

    def forward_loop(model) -> None:
        for start in range(0, len(images), 8):
            model(torch.from_numpy(np.ascontiguousarray(images[start : start + 8].transpose(0, 3, 1, 2))))

    ctx.workdir.mkdir(parents=True, exist_ok=True)
    result = apply(module, config, forward_loop, ctx.workdir / f"{name.replace('+', '_')}.int8.onnx")
    for leftover in (result.float_path, result.path.with_name(result.path.stem + ".fp32.onnx")):
        if leftover is not None and leftover != result.path:
            Path(leftover).unlink(missing_ok=True)
    notes = [f"INT8 QDQ ({config.calibration}, {config.activations} activations / {config.weights} per-channel "
             f"weights) calibrated on {result.calibration_images} images ({source}); {len(result.float_convs)} convs kept float"]
    return result.path, notes


def build_deploy(ctx: BenchContext) -> BuiltVariant:
    module = deployment_form(ctx)
    params, macs, notes = _cost(module, ctx.input_size)
    return BuiltVariant("deploy", "fp32", module=module, output_scale=1.0, params=params, macs=macs, notes=notes)


def build_int8(ctx: BenchContext) -> BuiltVariant:
    module = deployment_form(ctx)
    params, macs, notes = _cost(module, ctx.input_size)
    path, int8_notes = _int8_onnx(ctx, module, "int8")
    return BuiltVariant("int8", "int8", module=module, output_scale=1.0, files={"onnx": path}, params=params,
                        macs=macs, notes=notes + int8_notes)


def build_svd(ctx: BenchContext) -> BuiltVariant:
    module, svd_notes = svd_form(ctx)
    params, macs, notes = _cost(module, ctx.input_size)
    return BuiltVariant(SVD_NAME, "fp32", module=module, output_scale=1.0, params=params, macs=macs,
                        notes=notes + svd_notes)


def build_svd_int8(ctx: BenchContext) -> BuiltVariant:
    module, svd_notes = svd_form(ctx)
    params, macs, notes = _cost(module, ctx.input_size)
    path, int8_notes = _int8_onnx(ctx, module, f"{SVD_NAME}+int8")
    return BuiltVariant(f"{SVD_NAME}+int8", "int8", module=module, output_scale=1.0, files={"onnx": path}, params=params,
                        macs=macs, notes=notes + svd_notes + int8_notes)


_COMPRESS = ("prnet.compress.svd", "prnet.compress.int8", "prnet.export.deploy")
VARIANTS: dict[str, VariantSpec] = {
    spec.name: spec
    for spec in [
        VariantSpec("fp32", "the trained model as it is (the reference row)", build_fp32, requires=("torch",)),
        VariantSpec("deploy", "FP32 deployment form: BN folded, transposed convs as plain convs, pixel output",
                    build_deploy, requires=("prnet.export.deploy",)),
        VariantSpec("fp16", "float16 weights and activations", build_fp16, requires=("torch",)),
        VariantSpec("int8", "static INT8 (QDQ ONNX) of the deployment form", build_int8,
                    requires=_COMPRESS + ("onnxruntime",)),
        VariantSpec(SVD_NAME, f"data-free low-rank SVD of the deployment form ({SVD_SPEC}), without the "
                    "distillation `prnet compress --svd` does", build_svd, requires=_COMPRESS),
        VariantSpec(f"{SVD_NAME}+int8", "that SVD then static INT8 (QDQ ONNX)", build_svd_int8,
                    requires=_COMPRESS + ("onnxruntime",)),
    ]
}
ALIASES = {"svd": SVD_NAME, "svd+int8": f"{SVD_NAME}+int8"}  # the names these rows had before


# --- the user's models (`prnet bench --model A --model B`): checkpoints, compressed checkpoints, exported files ---
def model_label(path: Path) -> str:
    """A row name for a model file: its stem, or its folder's name for `prnet compress`'s OUT/model.pt."""
    stem = path.stem if not path.is_dir() else path.name.removesuffix("_openvino")
    return path.parent.name if stem == "model" and path.parent.name else stem


def user_variants(path: str | Path) -> list[VariantSpec]:
    """The variants of one model the user gives: a checkpoint (its PyTorch form, exported by every backend), a
    compressed checkpoint (its PyTorch form, plus "+int8": its QDQ INT8 model, when it has one) or an exported
    artifact (run as it is, on its own runtime only)."""
    from prnet.export.formats import format_for_path
    from prnet.io import PrnetInputError

    path = Path(path)
    if path.is_dir() and (path / "model.pt").is_file():  # a `prnet compress` output directory
        path = path / "model.pt"
    if not path.exists():
        raise PrnetInputError(f"{path}: model file not found")
    name, spec = model_label(path), format_for_path(path)
    if spec.name != "torch":
        def build_artifact(ctx: BenchContext) -> BuiltVariant:
            return BuiltVariant(name, "artifact", files={"artifact": path},
                                notes=[f"exported {spec.name} model {path}, run as it is"])

        return [VariantSpec(name, f"exported {spec.name} model {path}", build_artifact)]

    def load(ctx: BenchContext):
        from prnet.checkpoint import load_model

        key = f"user:{path}"
        if key not in ctx.cache:
            loaded = load_model(path)
            if loaded.layout.layout_id != ctx.layout.layout_id and loaded.config.input_size == ctx.input_size:
                raise PrnetInputError(f"{path}: UV layout {loaded.layout.layout_id} is not the reference model's "
                                      f"{ctx.layout.layout_id}")
            ctx.cache[key] = loaded
        return ctx.cache[key]

    def build(ctx: BenchContext) -> BuiltVariant:
        loaded = load(ctx)
        params, macs, notes = _cost(loaded.model, loaded.config.input_size)
        return BuiltVariant(name, "fp32", module=loaded.model, output_scale=loaded.output_scale, params=params,
                            macs=macs, input_size=int(loaded.config.input_size), layout=loaded.layout,
                            notes=notes + [f"from {path} ({loaded.describe()})"])

    def build_int8(ctx: BenchContext) -> BuiltVariant:
        loaded, built = load(ctx), build(ctx)
        if loaded.int8_onnx is None:
            raise Unavailable(f"{path} holds no INT8 model (compress it with --int8)")
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        qdq = ctx.workdir / f"{name}.int8.onnx"
        qdq.write_bytes(loaded.int8_onnx)
        built.name, built.precision, built.files = f"{name}+int8", "int8", {"onnx": qdq}
        built.notes.append("the QDQ INT8 model stored in the checkpoint by `prnet compress --int8`")
        return built

    from prnet.checkpoint import load_checkpoint

    specs = [VariantSpec(name, f"model {path}", build)]
    if (load_checkpoint(path).get("compression") or {}).get("int8_onnx") is not None:
        specs.append(VariantSpec(f"{name}+int8", f"INT8 model stored in {path}", build_int8, requires=("onnxruntime",)))
    return specs
