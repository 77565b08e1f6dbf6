"""ONNX Runtime FP32 latency: the original PRNet graph vs the deployment form's variants, side by side.

    python -m scripts.measure.compare_deploy_latency [--model prnet] [--size 256] [--rounds 20] [--threads 2]

Every graph is exported (same weights: random, non-trivial BN statistics), simplified with onnxslim, loaded
into its own ORT session, and timed in interleaved rounds (one call each per round, batch 1), so machine
noise hits all of them alike. Prints the op mix, max deviation from the original (px), medians and ratios.
"""

from __future__ import annotations

import argparse
import collections

import numpy as np
import torch

from prnet.export.deploy import UPSAMPLE_MODES, to_deployment
from prnet.export.metadata import INPUT_NAME
from prnet.export.onnx_export import build_onnx
from prnet.export.runners import ort_session
from tests.export_fixtures import randomize_batchnorm
from prnet.model import create_model
from prnet.timing import time_interleaved


class Pixels(torch.nn.Module):
    """The original PRNet with its output in pixels, like the deployment form."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) * self.model.config.output_scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="prnet")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import onnxruntime as ort

    torch.manual_seed(0)
    model = randomize_batchnorm(create_model(args.model, input_size=args.size),
                                torch.rand(2, 3, args.size, args.size), damping=2.0)
    graphs = {"original": Pixels(model).eval()}
    graphs.update({f"deploy-{mode}": to_deployment(model, upsample=mode) for mode in UPSAMPLE_MODES})
    x = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)
    sessions, reference = {}, None
    for name, module in graphs.items():
        onnx_model = build_onnx(module, args.size)
        ops = collections.Counter(node.op_type for node in onnx_model.graph.node)
        sessions[name] = ort_session(onnx_model.SerializeToString(), args.threads)
        out = sessions[name].run(None, {INPUT_NAME: x})[0]
        reference = out if reference is None else reference
        print(f"{name:20s} max |diff| {np.abs(out - reference).max():.2e} px  ops {dict(ops)}", flush=True)
    calls = {name: (lambda s=session: s.run(None, {INPUT_NAME: x})) for name, session in sessions.items()}
    times = time_interleaved(calls, args.rounds, args.rounds, warmup=1)  # round-robin: one call each per round
    base = np.median(times["original"])
    print(f"ORT {ort.__version__}, {args.threads} threads, {args.rounds} interleaved rounds, batch 1, {args.model} "
          f"@{args.size}")
    for name, values in times.items():
        q1, q3 = np.percentile(values, [25, 75]) * 1e3
        print(f"{name:20s} median {np.median(values) * 1e3:7.1f} ms  (IQR {q1:.1f}-{q3:.1f})  "
              f"speed-up {base / np.median(values):.2f}x")


if __name__ == "__main__":
    main()
