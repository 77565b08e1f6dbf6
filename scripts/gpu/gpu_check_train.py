"""GPU check of `prnet train`: CUDA, AMP (bf16, fp16 + GradScaler), torch.compile, torchrun DDP (nccl, 1 process),
resume on CUDA; then training-step throughput of the full PRNet and (optionally) the `full` preset on --data synth.

    python -m scripts.gpu.gpu_check_train                      # checks + throughput (~4 min on an H100)
    python -m scripts.gpu.gpu_check_train --synth-seconds 180  # + the full preset on synthetic faces for 3 min

Prints one `PASS name` / `FAIL name: why` line per check and exits 1 if any failed. Runs from the repository
root without installing prnet (PYTHONPATH is set for the children). Writes under --out (default /tmp/prnet_gpu).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}  # prnet is installed (pip install -e .)
TINY = dict(max_steps=12, eval_every=6, save_every=6, log_every=2, batch_size=8, num_workers=2, progress=False,
            val_fraction=0.2, device="cuda")
failures: list[str] = []


def check(name: str, fn) -> None:
    start = time.perf_counter()
    try:
        detail = fn()
        print(f"PASS {name} ({time.perf_counter() - start:.1f} s){': ' + detail if detail else ''}", flush=True)
    except Exception as err:  # report every failure, keep checking
        failures.append(name)
        print(f"FAIL {name}: {type(err).__name__}: {err}", flush=True)
        traceback.print_exc(limit=4)


def run_train(out: Path, **overrides) -> dict:
    from prnet.checkpoint import load_model
    from prnet.train.config import make_config
    from prnet.train.loop import train
    from prnet.train.rundir import read_metrics

    result = train(make_config("cpu-tiny", out_dir=str(out), **{**TINY, **overrides}))
    metrics = read_metrics(out)
    losses = [r["loss"] for r in metrics if "loss" in r]
    assert losses and all(map(lambda x: x == x and abs(x) < 1e3, losses)), f"bad losses {losses}"
    resolved = json.loads((out / "config.json").read_text())["resolved"]
    loaded = load_model(result.last_checkpoint)
    assert loaded.config.input_size == 64
    return {"losses": losses, "resolved": resolved, "evals": [r for r in metrics if "val_nme" in r]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="/tmp/prnet_gpu")
    parser.add_argument("--synth-seconds", type=float, default=0.0)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    args = parser.parse_args()
    out = Path(args.out)
    import torch

    print(f"torch {torch.__version__}, cuda available {torch.cuda.is_available()}", flush=True)
    if not torch.cuda.is_available():
        print("FAIL cuda: no CUDA device visible to PyTorch; run this on a GPU machine")
        sys.exit(1)
    print(f"device {torch.cuda.get_device_name()}, bf16 supported {torch.cuda.is_bf16_supported()}", flush=True)
    from tests.train_fixtures import make_dataset

    data = make_dataset(out / "data", n=64, size=64)

    def fp32():
        r = run_train(out / "fp32", data=str(data), precision="fp32")
        assert r["resolved"]["device"].startswith("cuda") and r["resolved"]["channels_last"], r["resolved"]
        return f"loss {r['losses'][0]:.4f} -> {r['losses'][-1]:.4f}, channels_last on"

    def amp(precision):
        def inner():
            r = run_train(out / precision, data=str(data), precision=precision)
            assert r["resolved"]["precision"] == precision
            return f"loss {r['losses'][0]:.4f} -> {r['losses'][-1]:.4f}"
        return inner

    def compiled():
        r = run_train(out / "compile", data=str(data), precision="bf16", compile=True)
        return f"loss {r['losses'][0]:.4f} -> {r['losses'][-1]:.4f}"

    def auto_precision():
        r = run_train(out / "auto", data=str(data), precision="auto")
        expected = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        assert r["resolved"]["precision"] == expected, r["resolved"]
        return f"auto -> {expected}"

    def torchrun_nccl():
        settings = {**TINY, "data": str(data), "out_dir": str(out / "ddp"), "precision": "bf16"}
        code = ("import json, sys; from prnet.train.loop import train; from prnet.train.config import make_config; "
                "train(make_config('cpu-tiny', **json.loads(sys.argv[1])))")
        script = out / "ddp_train.py"
        script.write_text(code.replace("; ", "\n"))
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
                               str(script), json.dumps(settings)], env=ENV, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        from prnet.checkpoint import load_checkpoint

        meta = load_checkpoint(out / "ddp" / "checkpoints" / "step_0000012.pt")["meta"]
        assert meta["world_size"] == 1 and len(meta["rank_checksums"]) == 1
        return "nccl process group + DistributedDataParallel, 12 steps"

    def resume_cuda():
        from prnet.train.loop import resume_config, train

        run_train(out / "resume", data=str(data), max_steps=6, precision="bf16")
        config, ckpt = resume_config("auto", None, {"out_dir": str(out / "resume"), "max_steps": 12})
        result = train(config, resume=ckpt)
        assert result.step == 12
        return "resumed 6 -> 12 on CUDA"

    for name, fn in [("cuda-fp32", fp32), ("amp-bf16", amp("bf16")), ("amp-fp16-gradscaler", amp("fp16")),
                     ("amp-auto", auto_precision), ("torch-compile-bf16", compiled),
                     ("torchrun-ddp-nccl-1proc", torchrun_nccl), ("resume-cuda", resume_cuda)]:
        check(name, fn)

    check("full-model-train-step-throughput", lambda: throughput())
    if args.synth_seconds > 0:
        check("full-preset-on-synth", lambda: full_on_synth(out / "full_synth", args.synth_seconds, args.workers))
    print(f"{'ALL PASSED' if not failures else 'FAILED: ' + ', '.join(failures)}", flush=True)
    sys.exit(1 if failures else 0)


def throughput() -> str:
    """Images/s of full-PRNet (256 px) training steps on device-resident random data: the model's own speed."""
    import torch

    from prnet.model import create_model
    from prnet.train.losses import weighted_mse

    results = []
    for precision, use_compile in (("fp32", False), ("bf16", False), ("bf16", True)):
        torch.manual_seed(0)
        model = create_model("prnet").cuda().to(memory_format=torch.channels_last)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        step_model = torch.compile(model) if use_compile else model
        x = torch.rand(20, 3, 256, 256, device="cuda").contiguous(memory_format=torch.channels_last)
        y, w = torch.rand(20, 3, 256, 256, device="cuda"), torch.rand(256, 256, device="cuda")
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if precision == "bf16" else torch.autocast("cuda", enabled=False)

        def step():
            with ctx:
                loss = weighted_mse(step_model(x), y, w)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        for _ in range(5):
            step()
        torch.cuda.synchronize()
        times = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(10):
                step()
            torch.cuda.synchronize()
            times.append((time.perf_counter() - start) / 10)
        median = sorted(times)[2]
        results.append(f"{precision}{'+compile' if use_compile else ''} {20 / median:.0f} img/s")
    return "batch 20: " + ", ".join(results)


def full_on_synth(out: Path, seconds: float, workers: int) -> str:
    """The `full` preset on on-the-fly synthetic faces for `seconds`: data-loader-bound img/s and val NME."""
    settings = dict(data="synth", out_dir=str(out), num_workers=workers, eval_every=250, save_every=250,
                    log_every=25, synth_val_samples=64, progress=False)
    code = ("import json, sys; from prnet.train.loop import train; from prnet.train.config import make_config; "
            "train(make_config('full', **json.loads(sys.argv[1])))")
    try:
        subprocess.run([sys.executable, "-c", code, json.dumps(settings)], env=ENV, timeout=seconds,
                       capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        pass  # the time budget is the point: read what was logged
    from prnet.train.rundir import read_metrics

    metrics = read_metrics(out)
    speeds = [r["images_per_s"] for r in metrics if "images_per_s" in r][1:]
    evals = [(r["step"], round(100 * r["val_nme"], 2)) for r in metrics if "val_nme" in r]
    assert speeds, "no training step logged within the time budget"
    return f"{sorted(speeds)[len(speeds) // 2]:.0f} img/s (median, {workers} workers), val NME % by step {evals}"


if __name__ == "__main__":
    main()
