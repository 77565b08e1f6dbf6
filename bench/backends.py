"""The registered backends (name -> BackendSpec): how a built variant becomes an artifact and a Runner.

Backend names are the runtime names of prnet.export.formats (the one registry: "onnxruntime" runs the "onnx"
format; `--backends onnx` is accepted for it). torch runs the variant's PyTorch module through prnet's
TorchRunner (the artifact is its state dict). The other runtimes export the variant with `export/`'s exporter
for their format (prnet.export.formats, one spec per format) and load the file with `prnet.export.runners.load_runner`, the path `prnet predict` takes, so the
benchmark measures the artifacts users deploy. INT8 rows use compress/'s QDQ model (ONNX Runtime, OpenVINO)
or PT2E with XNNPACK's quantizer (ExecuTorch), all calibrated on the same images.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from prnet.bench.specs import BackendSpec, BenchContext, BuiltVariant, PreparedRow, Unavailable


def _artifact_path(ctx: BenchContext, variant: BuiltVariant, backend: str, suffix: str) -> Path:
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    return ctx.workdir / f"{re.sub(r'[^A-Za-z0-9.-]+', '_', variant.name)}-{backend}{suffix}"


def prepare_torch(variant: BuiltVariant, ctx: BenchContext) -> PreparedRow:
    import torch

    from prnet.io import atomic_path
    from prnet.runner import TorchRunner

    if "artifact" in variant.files:
        raise Unavailable(f"{variant.files['artifact']} is an exported model: it runs on its own runtime's row")
    if variant.precision == "fp16" and ctx.device == "cpu":
        raise Unavailable("fp16 on the CPU torch backend: x86 CPUs have no fast float16 convolutions in PyTorch "
                          "eager (5.7 s per image measured); fp16 is for GPUs, TensorRT and Core ML (--device cuda)")
    if variant.precision == "int8":
        raise Unavailable("INT8 is built as a QDQ ONNX model (ONNX Runtime, OpenVINO, TensorRT); PyTorch eager on "
                          "CPU has no INT8 convolution path for it: see this variant's other rows")
    if variant.module is None:
        raise Unavailable(f"variant {variant.name} has no PyTorch form (only {', '.join(variant.files) or 'nothing'})")
    module = variant.module if ctx.device == "cpu" else copy.deepcopy(variant.module)  # the runner moves it
    if variant.precision == "fp16":
        from prnet.bench.variants import HalfPrecision

        module = HalfPrecision(copy.deepcopy(module).eval())
    path = _artifact_path(ctx, variant, "torch", ".pt")
    with atomic_path(path) as tmp:
        torch.save(module.state_dict(), tmp)

    def load():
        return TorchRunner.from_module(module, variant.layout or ctx.layout, variant.input_size or ctx.input_size,
                                       variant.output_scale,
                                       device=ctx.device, batch_size=ctx.batch, name=f"torch:{variant.name}")

    notes = ["memory: the weights were already in memory (built in this process), so it counts activations/workspace"]
    if ctx.device != "cpu":
        notes.append(f"device {ctx.device}: memory is host RSS only (GPU memory is not measured); outputs are "
                     "copied back to the host in every timed call")
    return PreparedRow(artifact=path, load=load, notes=notes)


# --- runtimes of export/ ---------------------------------------------------------------------------------
def _exporter_options(variant: BuiltVariant, ctx: BenchContext, format_name: str, path: Path) -> dict[str, Any]:
    """What export/'s exporter for `format_name` needs to make this variant (precision, QDQ file, quantizer)."""
    options: dict[str, Any] = {"precision": variant.precision, "dynamic_batch": True}
    if variant.precision != "int8":
        return options
    if format_name == "executorch":  # PyTorch-native INT8: PT2E with XNNPACK's quantizer, same calibration images
        # (export/'s hook quantizes every conv; prnet.compress.pt2e.executorch_hook keeps the thin convs in float, but its
        # lowering failed here: "Weight and Input should both be quantized")
        from prnet.export.executorch_export import xnnpack_int8_hook

        images, _ = ctx.calibration_images()
        return {"precision": "int8", "quantize": xnnpack_int8_hook(images)}
    if "onnx" not in variant.files:
        raise Unavailable(f"variant {variant.name} has no quantized ONNX model for {format_name}")
    return {**options, "onnx": str(variant.files["onnx"])}


def export_backend(format_name: str, description: str) -> BackendSpec:
    """A backend that exports the variant with export/'s `format_name` exporter and loads it with load_runner;
    it is named after the format's runtime."""
    from prnet.export.formats import get_format

    name = get_format(format_name).runtime_name

    def check() -> str | None:
        return get_format(format_name).can_run_here()

    def prepare(variant: BuiltVariant, ctx: BenchContext) -> PreparedRow:
        from prnet.export.formats import resolve
        from prnet.export.metadata import metadata_for
        from prnet.export.runners import load_runner
        from prnet.io import atomic_path

        spec = get_format(format_name)
        threads = {"threads": ctx.threads} if spec.takes_threads else {}
        if "artifact" in variant.files:  # an exported model the user gave: run as it is, on its own runtime
            from prnet.export.formats import format_for_path

            artifact = variant.files["artifact"]
            if format_for_path(artifact).name != format_name:
                raise Unavailable(f"{artifact.name} is a {format_for_path(artifact).name} model: it runs on the "
                                  f"{format_for_path(artifact).runtime_name} row only")
            return PreparedRow(artifact=artifact, load=lambda: load_runner(artifact, **threads))
        if variant.precision not in spec.precisions:
            raise Unavailable(f"export/ makes {format_name} models in {', '.join(spec.precisions)}, "
                              f"not {variant.precision}")
        path = _artifact_path(ctx, variant, name, spec.suffix)
        options = _exporter_options(variant, ctx, format_name, path)
        metadata = metadata_for(ctx.loaded, format_name, variant.precision,
                                {k: v for k, v in options.items() if isinstance(v, (str, int, float, bool))},
                                source=f"prnet bench variant {variant.name}")
        metadata.output_scale = variant.output_scale  # the fp32/fp16 rows export the original graph ([0, 1] out)
        if variant.input_size:  # a user's model of another input size
            metadata.input_size, metadata.layout = variant.input_size, variant.layout or metadata.layout
        with atomic_path(path, suffix=spec.suffix) as tmp:
            notes = resolve(spec.exporter)(variant.module, tmp, metadata, options) or []
        if not threads:
            notes = list(notes) + [f"{name} runner takes no thread count: it uses its runtime's default pool"]
        return PreparedRow(artifact=path, load=lambda: load_runner(path, **threads), notes=list(notes))

    return BackendSpec(name, description, prepare, requires=("prnet.export.formats", "prnet.export.runners"), check=check)


BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in [
        BackendSpec("torch", "PyTorch eager on CPU (prnet.runner.TorchRunner)", prepare_torch,
                    requires=("torch", "prnet.runner")),
        export_backend("onnx", "ONNX Runtime, CPU execution provider"),
        export_backend("openvino", "OpenVINO IR on the CPU plugin (latency hint)"),
        export_backend("executorch", "ExecuTorch with the XNNPACK delegate"),
        export_backend("tensorrt", "TensorRT engine on an NVIDIA GPU"),
        export_backend("coreml", "Core ML mlprogram (macOS)"),
    ]
}
