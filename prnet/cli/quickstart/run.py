"""`prnet quickstart`: the whole mission on built-in defaults, in at most 15 minutes on a 2-core CPU.

    data      synthetic faces (seeded), OUT/data                           prnet.data.synth.generate
    train     fine-tune the shipped default model (else cpu-small from scratch), OUT/train     prnet.train.loop
    compress  INT8 and SVD + INT8 (distilled), OUT/compress/{int8,svd_int8}                  prnet.compress.pipeline
    export    ONNX, OpenVINO, Core ML, ExecuTorch (TensorRT: reported unavailable), OUT/export  prnet.export.api
    bench     every variant x runtime side by side, OUT/bench                                prnet.bench.api
    report    OUT/report.md + OUT/report.json: every artifact, its status and the numbers

Each stage is a plain function `stage_<name>(run, result, display)` (prnet/cli/quickstart/stages.py) with a time
budget (seconds). Training
and distillation steps are sized from a measured step time so they fit their budgets on the machine at hand;
other stages have fixed small settings and report when they overran. A failing stage is recorded (error and
traceback in OUT/logs/<stage>.log) and the next stages continue with what exists (e.g. the start model when
training failed); the exit code is then non-zero.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from prnet.io import PrnetInputError, size_on_disk

STAGES = ("data", "train", "compress", "export", "bench", "report")
SKIPPABLE = STAGES[:-1]
EXPORT_FORMATS = ("onnx", "openvino", "coreml", "executorch", "tensorrt")


@dataclass
class QuickstartConfig:
    out: Path = Path("runs/quickstart")
    fast: bool = False
    model: Path | None = None  # checkpoint to fine-tune; None: the default model if shipped (not with fast)
    skip: tuple[str, ...] = ()
    seed: int = 0
    threads: int = 0  # CPU threads for every runtime; 0: measured (1 beats 2 by 10x+ on a CPU shared with others)
    # data
    samples: int = 192  # synthetic faces rendered (fewer if the data budget runs out, never under min_samples)
    min_samples: int = 64
    val_fraction: float = 0.1
    workers: int = 2
    # train: steps = what fits the budget at the measured step time, within [min_steps, max_steps]
    scratch_preset: str = "cpu-small"
    batch_size: int = 8
    finetune_lr: float = 1e-4
    min_steps: int = 10
    max_steps: int = 600
    # compress
    svd: str = "macs:0.25"
    max_distill_steps: int = 300
    calibration_count: int = 32
    compress_val_count: int = 16
    compress_runtimes: tuple[str, ...] = ("onnxruntime", "openvino")
    latency_repeats: int = 10
    # export
    export_formats: tuple[str, ...] = EXPORT_FORMATS
    parity_count: int = 4
    export_latency_runs: int = 5
    # bench
    bench_variants: str = "fp32,int8,svd,svd+int8"
    bench_backends: str = "torch,onnxruntime,openvino"
    bench_samples: int = 16
    bench_iters: int = 10
    bench_rounds: int = 2
    bench_batch: int = 4
    # seconds per stage; a stage's budget shrinks (to a third at most) when earlier ones overran total_budget_s
    budgets: dict[str, float] = field(default_factory=lambda: dict(
        data=60, train=240, compress=220, export=140, bench=170, report=10))
    total_budget_s: float = 870.0  # 14.5 minutes: what the whole run aims to stay within

    def validate(self) -> "QuickstartConfig":
        unknown = [s for s in self.skip if s not in SKIPPABLE]
        if unknown:
            raise PrnetInputError(f"--skip {', '.join(unknown)}: choose from {', '.join(SKIPPABLE)}")
        if self.model is not None and not Path(self.model).is_file():
            raise PrnetInputError(f"--model {self.model}: checkpoint not found; pass a .pt file from `prnet train`")
        if self.samples < 2 or self.min_samples < 2:
            raise PrnetInputError(f"need at least 2 synthetic samples, got samples={self.samples}")
        return self


# --fast: the reduced path CI runs (tiny model at 64 px from scratch, a few steps, tiny settings)
FAST = dict(fast=True, samples=16, min_samples=16, val_fraction=0.25, scratch_preset="cpu-tiny", batch_size=4,
            min_steps=4, max_steps=40, max_distill_steps=20, calibration_count=4, compress_val_count=4,
            compress_runtimes=("onnxruntime",), latency_repeats=2, parity_count=1, export_latency_runs=1,
            bench_variants="fp32,int8", bench_samples=4, bench_iters=2, bench_rounds=1, bench_batch=2,
            budgets=dict(data=15, train=25, compress=30, export=90, bench=30, report=5), total_budget_s=195.0)


def make_config(fast: bool = False, **overrides: Any) -> QuickstartConfig:
    """The default (or --fast) config with `overrides` (None values ignored)."""
    values = {**(FAST if fast else {}), **{k: v for k, v in overrides.items() if v is not None}}
    return QuickstartConfig(**values).validate()


@dataclass
class Artifact:
    path: str
    kind: str  # what it is: dataset, checkpoint, onnx-int8, openvino, report...
    status: str = "ok"  # ok | failed | unavailable | parity-failed
    size_bytes: int | None = None
    note: str = ""


@dataclass
class StageResult:
    name: str
    budget_s: float
    status: str = "pending"  # ok | failed | skipped | blocked
    seconds: float = 0.0
    artifacts: list[Artifact] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def add(self, path: str | Path, kind: str, status: str = "ok", note: str = "") -> Artifact:
        path = Path(path)
        artifact = Artifact(str(path), kind, status, size_on_disk(path), note)
        self.artifacts.append(artifact)
        return artifact


@dataclass
class QuickstartRun:
    """What the stages share: the config, where things go, and what earlier stages produced."""

    config: QuickstartConfig
    start_model: Path | None  # the checkpoint training starts from (None: from scratch)
    threads: int = 1  # what every runtime is pinned to (torch, ONNX Runtime, OpenVINO)
    dataset: Path | None = None
    model: Path | None = None  # the model compress/export/bench use (trained, else the start model)
    compressed: dict[str, Path] = field(default_factory=dict)
    results: dict[str, StageResult] = field(default_factory=dict)

    step_times: dict[tuple, float] = field(default_factory=dict)

    def path(self, *parts: str) -> Path:
        return Path(self.config.out).joinpath(*parts)

    def step_seconds(self, model_name: str, input_size: int, batch_size: int) -> float:
        """Seconds per training step of this model on this machine now (measured once per run)."""
        key = (model_name, input_size, batch_size)
        if key not in self.step_times:
            self.step_times[key] = seconds_per_step(*key)
        return self.step_times[key]


def resolve_start_model(config: QuickstartConfig) -> tuple[Path | None, str]:
    """The checkpoint to fine-tune and why: --model, else the shipped default model (not in --fast), else None."""
    from prnet.default_model import DEFAULT_MODEL_PATH, has_default_model

    if config.model is not None:
        return Path(config.model), f"fine-tuning --model {config.model}"
    if config.fast:
        return None, f"--fast: {config.scratch_preset} from scratch (tiny model)"
    if has_default_model():
        return DEFAULT_MODEL_PATH, f"fine-tuning the default model {DEFAULT_MODEL_PATH}"
    return None, f"no default model in this install ({DEFAULT_MODEL_PATH}): {config.scratch_preset} from scratch"


# --- orchestration --------------------------------------------------------------------------------------
def run_quickstart(config: QuickstartConfig, console=None) -> dict[str, Any]:
    """Run every stage (skipped ones recorded), write OUT/report.{md,json}; returns the report dict."""
    from prnet.cli.quickstart import stages as quickstart_stages
    from prnet.cli.quickstart.display import Display
    from prnet.cli.quickstart.report import build_report, write_report

    config.validate()
    display = Display(console)
    started, load_before = time.perf_counter(), os.getloadavg()
    start_model, why = resolve_start_model(config)
    threads, thread_timings = choose_threads(config.threads)
    run = QuickstartRun(config, start_model, threads)
    Path(config.out).mkdir(parents=True, exist_ok=True)
    display.intro(config, why)
    display.note(f"{threads} CPU thread(s) for every runtime ({thread_choice(config.threads, thread_timings)})")
    functions: dict[str, Callable] = {name: getattr(quickstart_stages, f"stage_{name}") for name in SKIPPABLE}
    for index, name in enumerate(STAGES[:-1], start=1):
        result = StageResult(name, stage_budget(config, name, time.perf_counter() - started))
        run.results[name] = result
        blocked = blocked_reason(run, name)
        if name in config.skip:
            result.status = "skipped"
            prepare_after_skip(run, name, result)
        elif blocked:
            result.status, result.error = "blocked", blocked
        else:
            display.stage_start(index, name, result.budget_s)
            tick = time.perf_counter()
            try:
                functions[name](run, result, display)
                result.status = "failed" if result.error else "ok"
            except Exception as err:  # recorded, reported, never swallowed: the exit code says so
                result.status, result.error = "failed", f"{type(err).__name__}: {err}"
                log_path = run.path("logs", f"{name}.log")
                log_path.parent.mkdir(parents=True, exist_ok=True)
                log_path.write_text(traceback.format_exc())
                result.notes.append(f"traceback: {log_path}")
            result.seconds = time.perf_counter() - tick
            after_failure(run, name, result)
        display.stage_end(index, name, result)
    report_result = StageResult("report", config.budgets["report"])
    run.results["report"] = report_result
    tick = time.perf_counter()
    report = build_report(run, started, load_before, why, thread_timings)
    report_result.seconds = time.perf_counter() - tick
    report_result.status = "ok"
    written = write_report(report, Path(config.out))
    report_result.artifacts = [Artifact(str(p), kind, "ok", p.stat().st_size) for kind, p in written.items()]
    report = build_report(run, started, load_before, why, thread_timings)  # now with the report stage's own row
    write_report(report, Path(config.out))
    display.summary(report)
    return report


def stage_budget(config: QuickstartConfig, name: str, elapsed_s: float) -> float:
    """Stage `name`'s budget: its own, cut when earlier stages overran so that the stages still to come keep
    theirs within total_budget_s; never under a third of its own (sizes training and distillation steps)."""
    later = sum(config.budgets[s] for s in STAGES[STAGES.index(name) + 1:] if s not in config.skip)
    left = config.total_budget_s - elapsed_s - later
    return round(max(config.budgets[name] / 3, min(config.budgets[name], left)), 1)


def choose_threads(requested: int = 0) -> tuple[int, dict[int, float]]:
    """Pin torch to `requested` threads, or (0) to whichever of 1 or all cores runs a stack of small convs
    faster right now: on a CPU that other processes keep busy, OpenMP barriers make 2 threads 10-20x slower
    than 1 (measured: full PRNet forward 6.2 s vs 0.35 s at load 12 on 2 cores); on an idle one, all win."""
    import torch

    if requested > 0:
        torch.set_num_threads(requested)
        return requested, {}
    images, weight = torch.rand(1, 16, 64, 64), torch.rand(16, 16, 3, 3)
    timings = {}
    for threads in sorted({1, os.cpu_count() or 1}, reverse=True):
        torch.set_num_threads(threads)
        runs = []
        for _ in range(4):
            tick = time.perf_counter()
            for _ in range(10):
                torch.nn.functional.conv2d(images, weight, padding=1)
            runs.append(time.perf_counter() - tick)
        timings[threads] = sorted(runs)[1]  # the second fastest of 4 (the first run warms up)
    best = min(timings, key=timings.get)
    torch.set_num_threads(best)
    return best, timings


def thread_choice(requested: int, timings: dict[int, float]) -> str:
    if requested:
        return "--threads"
    return "measured: " + ", ".join(f"{t} thread(s) {1000 * s:.1f} ms" for t, s in sorted(timings.items()))


def blocked_reason(run: QuickstartRun, name: str) -> str | None:
    """Why stage `name` cannot run with what the earlier stages left (None: it can)."""
    if name == "train" and run.dataset is None:
        return "no training data: stage data did not produce any (and OUT/data holds none)"
    if name == "compress" and run.dataset is None:
        return "no calibration/validation data: stage data did not produce any"
    if name in ("compress", "export", "bench") and run.model is None:
        return "no model: stage train produced none and there is no start model (--model or the default model)"
    return None


def prepare_after_skip(run: QuickstartRun, name: str, result: StageResult) -> None:
    """A skipped stage still hands on what already exists: OUT/data from an earlier run, the start model."""
    if name == "data" and dataset_ready(run.path("data")):
        run.dataset = run.path("data")
        result.notes.append(f"using the existing {run.dataset}")
    if name == "train" and run.start_model is not None:
        run.model = run.start_model
        result.notes.append(f"later stages use the start model {run.start_model}")


def after_failure(run: QuickstartRun, name: str, result: StageResult) -> None:
    if name == "train" and run.model is None and run.start_model is not None:
        run.model = run.start_model
        result.notes.append(f"training failed: later stages use the start model {run.start_model}")


def dataset_ready(root: Path) -> bool:
    try:
        from prnet.data.dataset import PositionMapDataset

        return len(PositionMapDataset(root)) >= 2
    except PrnetInputError:
        return False


# --- machine probes ----------------------------------------------------------------------------------
def seconds_per_step(model_name: str, input_size: int, batch_size: int) -> float:
    """Measured seconds of one training step (forward, backward, Adam) on random inputs, after a warm-up."""
    import torch

    from prnet.model import create_model

    model = create_model(model_name, input_size=input_size).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    images = torch.rand(batch_size, 3, input_size, input_size)
    times = []
    for _ in range(2):
        tick = time.perf_counter()
        model(images).square().mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - tick)
    return times[-1]
