"""Training speed on this CPU: images/s of one PRNet training step (forward, backward, Adam) per
model x input size x precision x memory layout, side by side in one run, the CPU named in the output.

    python -m prnet.bench.train_speed [--models prnet,prnet-half] [--sizes 128,256] [--precisions fp32,bf16]
                                [--layouts contiguous,channels_last] [--batch-size 16] [--steps 4] [--rounds 2]
                                [--threads 2] [--out docs/train_speed.md]

Each configuration runs in its own subprocess: one layout/precision crashed the whole process once on a
Zen 5 ("double free or corruption" in prnet-half channels_last), and a crash must cost one row, not the run.
The configurations are interleaved over `--rounds` rounds (this machine is shared and drifts); the table shows
the median step time of all rounds. bf16 is torch.autocast("cpu", bfloat16) with the fp32 head of
prnet.model (what `prnet train --precision bf16` runs); it is skipped with the reason on CPUs without native bf16.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from prnet.hardware import steal_clause
from prnet.report import markdown_table


def step_times(model_name: str, size: int, precision: str, layout: str, batch: int, steps: int, threads: int) -> list[float]:
    """Seconds of each timed training step (after 2 warm-up steps) in this process."""
    from contextlib import nullcontext

    import torch

    from prnet.model import create_model
    from prnet.train.losses import weighted_mse

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = create_model(model_name, input_size=size)
    channels_last = layout == "channels_last"
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    images = torch.rand(batch, 3, size, size)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    targets, weight = torch.rand(batch, 3, size, size), torch.rand(size, size)
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        with autocast:
            pred = model(images)
        loss = weighted_mse(pred, targets, weight)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return times


def run_one(config: dict, timeout: float) -> dict:
    """Run one configuration in a subprocess; {'times': [...]} or {'error': reason}."""
    code = ("import json, sys; from prnet.bench.train_speed import step_times; "
            f"print('RESULT', json.dumps(step_times(**{config!r})))")
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return {"times": json.loads(line[7:])}
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {done.returncode}: {tail[:160]}"}


def benchmark(models, sizes, precisions, layouts, batch: int, steps: int, rounds: int, threads: int,
              timeout: float = 900.0, log=print) -> dict:
    from prnet.hardware import StealMeter, cpu_has_native_bf16, cpu_summary

    native_bf16, steal = cpu_has_native_bf16(), StealMeter()
    configs = [dict(model_name=m, size=s, precision=p, layout=l, batch=batch, steps=steps, threads=threads)
               for m, s, p, l in itertools.product(models, sizes, precisions, layouts)]
    results = {i: {"times": [], "errors": []} for i in range(len(configs))}
    for round_index in range(rounds):
        for i, config in enumerate(configs):
            if config["precision"] == "bf16" and not native_bf16:
                results[i]["skipped"] = "no native bf16 on this CPU (emulated bf16 is slower than fp32)"
                continue
            if results[i]["errors"]:
                continue  # a crashing configuration is not retried
            out = run_one(config, timeout)
            results[i]["times" if "times" in out else "errors"].extend(out.get("times") or [out.get("error")])
            speed = out.get("error") or f"{batch / statistics.median(out['times']):.1f} img/s"
            log(f"round {round_index + 1}/{rounds} {config['model_name']} {config['size']} px {config['precision']} "
                f"{config['layout']}: {speed}")
    rows = []
    for i, config in enumerate(configs):
        r = results[i]
        row = {**config, "status": "ok" if r["times"] else ("skipped" if "skipped" in r else "failed")}
        if r["times"]:
            median = statistics.median(r["times"])
            row.update(step_s=median, images_per_s=batch / median, n_steps=len(r["times"]))
        row["reason"] = r.get("skipped") or (r["errors"][0] if r["errors"] else "")
        rows.append(row)
    for row in rows:  # ratio to the fp32 contiguous row of the same model and size
        base = next((b for b in rows if b["model_name"] == row["model_name"] and b["size"] == row["size"]
                     and b["precision"] == "fp32" and b["layout"] == "contiguous" and b["status"] == "ok"), None)
        if base and row["status"] == "ok":
            row["vs_fp32"] = row["images_per_s"] / base["images_per_s"]
    import torch

    return {"cpu": cpu_summary(), "native_bf16": native_bf16, "torch": torch.__version__, "threads": threads,
            "batch_size": batch, "rounds": rounds, "cpu_steal": steal.lap(), "rows": rows}


def markdown(report: dict) -> str:
    lines = [f"Training step (forward, backward, Adam), batch {report['batch_size']}, {report['threads']} threads, "
             f"torch {report['torch']}, median of {report['rounds']} interleaved rounds.",
             f"CPU: {report['cpu']}; native bf16: {'yes' if report['native_bf16'] else 'no'}"
             + steal_clause(report.get("cpu_steal")) + ".", ""]
    rows = [[r["model_name"], f"{r['size']} px", r["precision"], r["layout"],
             f"{r['images_per_s']:.1f}" if r["status"] == "ok" else "-",
             f"{r['vs_fp32']:.2f}x" if "vs_fp32" in r else "-",
             r["status"] + (f": {r['reason']}" if r["reason"] else "")] for r in report["rows"]]
    lines += markdown_table(["model", "input", "precision", "layout", "images/s", "vs fp32 contiguous", "status"], rows)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="prnet,prnet-half")
    parser.add_argument("--sizes", default="128,256")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--layouts", default="contiguous,channels_last")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown table here (and .json beside it)")
    a = parser.parse_args(argv)
    report = benchmark(a.models.split(","), [int(s) for s in a.sizes.split(",")], a.precisions.split(","),
                       a.layouts.split(","), a.batch_size, a.steps, a.rounds, a.threads)
    table = markdown(report)
    print(table)
    if a.out:
        from prnet.io import write_bytes_atomic, write_json_atomic

        write_bytes_atomic(a.out, table.encode())
        write_json_atomic(a.out.with_suffix(".json"), report)


if __name__ == "__main__":
    main()
