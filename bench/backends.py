"""The registered backends (name -> BackendSpec): how a built variant becomes an artifact and a Runner.

torch runs the variant's PyTorch module through prnet's TorchRunner (the artifact is its state dict).
The other runtimes export the variant with `export/` and load the file with `export.runners.load_runner`,
the same path `prnet predict` takes, so the benchmark measures what users deploy.
"""

from __future__ import annotations

import platform
from pathlib import Path

from bench.specs import BackendSpec, BenchContext, BuiltVariant, PreparedRow, Unavailable


def _artifact_path(ctx: BenchContext, variant: BuiltVariant, backend: str, suffix: str) -> Path:
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    return ctx.workdir / f"{variant.name.replace('+', '_')}-{backend}{suffix}"


def prepare_torch(variant: BuiltVariant, ctx: BenchContext) -> PreparedRow:
    import torch

    from prnet.io import atomic_path
    from prnet.runner import TorchRunner

    if variant.precision == "int8":
        raise Unavailable("INT8 is built as a QDQ ONNX model (ONNX Runtime, OpenVINO, TensorRT); PyTorch eager on "
                          "CPU has no INT8 convolution path for it: see this variant's other rows")
    if variant.module is None:
        raise Unavailable(f"variant {variant.name} has no PyTorch form (only {', '.join(variant.files) or 'nothing'})")
    path = _artifact_path(ctx, variant, "torch", ".pt")
    with atomic_path(path) as tmp:
        torch.save(variant.module.state_dict(), tmp)

    def load():
        return TorchRunner.from_module(variant.module, ctx.layout, ctx.input_size, variant.output_scale,
                                       device="cpu", batch_size=ctx.batch, name=f"torch:{variant.name}")

    return PreparedRow(artifact=path, load=load)


def _needs_macos() -> str | None:
    return None if platform.system() == "Darwin" else "CoreML models run only on macOS (Core ML framework); " \
        "export them here with `prnet export coreml` and benchmark on a Mac"


def _needs_cuda() -> str | None:
    try:
        import torch

        if torch.cuda.is_available():
            return None
    except ImportError:
        pass
    return "TensorRT needs an NVIDIA GPU with CUDA (none visible here) and the `tensorrt` package"


BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in [
        BackendSpec("torch", "PyTorch eager on CPU (prnet.runner.TorchRunner)", prepare_torch,
                    requires=("torch", "prnet.runner")),
    ]
}
DEFAULT_BACKENDS = ["torch", "onnxruntime", "openvino", "executorch", "tensorrt", "coreml"]
