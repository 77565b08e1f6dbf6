"""Training precision on CPU: bf16 autocast only where the CPU has native bf16, fp32 head under autocast, and the
training-speed benchmark's rows."""

from __future__ import annotations

import pytest
import torch

from prnet.hardware import cpu_has_native_bf16, parse_cpuinfo
from prnet.io import PrnetInputError
from prnet.model import create_model
from prnet.train.config import make_config
from prnet.train.loop import pick_precision

ZEN3 = "vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu avx2 fma\n\n"
XEON = ("vendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 207\nmodel name\t: Intel(R) Xeon(R) Processor\n"
        "flags\t\t: avx2 fma avx512f avx512_vnni avx512_bf16 amx_bf16 amx_int8\n\nprocessor\t: 1\n")


def test_parse_cpuinfo_reads_the_first_processor():
    zen3, xeon = parse_cpuinfo(ZEN3), parse_cpuinfo(XEON)
    assert zen3["name"] == "AMD EPYC 7B13" and zen3["family"] == "25" and zen3["flags"] == ["avx2", "fma"]
    assert xeon["model"] == "207" and {"avx512_bf16", "amx_bf16", "avx512_vnni"} <= set(xeon["flags"])


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_on_cpu_follows_native_bf16(monkeypatch, native):
    monkeypatch.setattr("prnet.train.loop.cpu_has_native_bf16", lambda: native)
    cpu = torch.device("cpu")
    assert pick_precision(make_config("cpu-tiny"), cpu) == ("bf16" if native else "fp32")
    assert pick_precision(make_config("cpu-tiny", precision="fp32"), cpu) == "fp32"
    with pytest.raises(PrnetInputError, match="fp16 needs a CUDA"):
        pick_precision(make_config("cpu-tiny", precision="fp16"), cpu)
    if native:
        assert pick_precision(make_config("cpu-tiny", precision="bf16"), cpu) == "bf16"
    else:
        with pytest.raises(PrnetInputError, match="no native bf16"):
            pick_precision(make_config("cpu-tiny", precision="bf16"), cpu)


def test_head_stays_fp32_under_bf16_autocast():
    torch.manual_seed(0)
    model = create_model("prnet-quarter", input_size=64).train()  # batch statistics: outputs spread over (0, 1)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        reference = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(x)
    assert mixed.dtype == torch.float32
    # A bf16 output has at most 128 values in [0.5, 1) (8-bit mantissa: ~1 px steps at 256 px); the fp32 head's
    # output has thousands there. (An untrained net in batch-statistics mode is chaotic, so bf16 vs fp32 closeness
    # is measured on training curves instead: scripts/measure/precision_curves.py.)
    upper = mixed[(mixed >= 0.5) & (mixed < 1.0)]
    assert upper.numel() > 2000 and torch.unique(upper).numel() > 1000
    assert torch.unique(reference[(reference >= 0.5) & (reference < 1.0)]).numel() > 1000


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16")
def test_bf16_training_step_runs_and_learns():
    torch.manual_seed(0)
    model = create_model("prnet-quarter", input_size=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32) * 0.5 + 0.25
    losses = []
    for _ in range(15):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            pred = model(x)
        loss = ((pred - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_train_speed_benchmark_rows():
    from prnet.bench.train_speed import benchmark, markdown

    report = benchmark(["prnet-quarter"], [32], ["fp32", "bf16"], ["contiguous"], batch=2, steps=1, rounds=1,
                       threads=1, log=lambda *_: None)
    rows = {r["precision"]: r for r in report["rows"]}
    assert rows["fp32"]["status"] == "ok" and rows["fp32"]["images_per_s"] > 0 and rows["fp32"]["vs_fp32"] == 1.0
    assert rows["bf16"]["status"] == ("ok" if report["native_bf16"] else "skipped")
    table = markdown(report)
    assert report["cpu"] in table and "| prnet-quarter | 32 px | fp32 | contiguous |" in table
