"""Pareto front, interleaved timing order, percentiles and the documented schema (no timing values checked)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from prnet.io import size_on_disk
from prnet.timing import percentiles_ms, round_orders, time_interleaved
from prnet.bench.report import COLUMNS, Row, find_row, mark_pareto, pareto_front


def test_pareto_front_minimizes_both():
    points = {"a": (10, 5.0), "b": (5, 6.0), "c": (20, 4.0), "d": (12, 5.5), "e": (5, 7.0), "f": (30, 4.0)}
    assert pareto_front(points) == ["b", "a", "c"]  # d dominated by a, e by b, f by c
    assert pareto_front({}) == []
    assert pareto_front({"x": (1, 1), "y": (1, 1)}) == ["x", "y"]  # equal points do not dominate each other


def test_mark_pareto_ignores_rows_without_numbers():
    fast = Row("int8", "ov", latency_ms={"p50": 5.0}, accuracy={"nme68_2d": 3.1})
    slow = Row("fp32", "torch", latency_ms={"p50": 50.0}, accuracy={"nme68_2d": 3.0})
    worse = Row("fp16", "torch", latency_ms={"p50": 60.0}, accuracy={"nme68_2d": 3.0})
    failed = Row("svd", "ov", status="failed", reason="x", latency_ms={"p50": 1.0}, accuracy={"nme68_2d": 1.0})
    no_acc = Row("svd", "torch", latency_ms={"p50": 0.5})
    rows = [fast, slow, worse, failed, no_acc]
    assert mark_pareto(rows) == ["int8/ov", "fp32/torch"]
    assert [r.pareto for r in rows] == [True, True, False, False, False]
    assert find_row(rows, "fp16/torch") is worse
    with pytest.raises(KeyError):
        find_row(rows, "nope/none")


def test_round_orders_rotate_so_no_row_is_always_first():
    orders = round_orders(["a", "b", "c"], 3)
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    assert {o[0] for o in orders} == {"a", "b", "c"}


def test_time_interleaved_counts_order_and_isolation():
    clock = itertools.count().__next__  # 1 tick per clock read
    log, errors = [], {}

    def call(name, fail_at=None):
        def run():
            log.append(name)
            if fail_at is not None and log.count(name) >= fail_at:
                raise RuntimeError("boom")
        return run

    times = time_interleaved({"a": call("a"), "b": call("b"), "c": call("c", fail_at=4)}, iters=6, rounds=3, warmup=1,
                             on_error=lambda n, e: errors.setdefault(n, str(e)), clock=clock)
    assert set(times) == {"a", "b"} and errors == {"c": "boom"}
    assert len(times["a"]) == len(times["b"]) == 6
    assert all(t == 1 for t in times["a"])  # each call timed by exactly its own two clock reads
    # warm-up a b c; round 0 starts at a, round 1 at b (c fails on its 4th call and is dropped), round 2 at c
    assert log == ["a", "b", "c"] + ["a", "a", "b", "b", "c", "c"] + ["b", "b", "c", "a", "a"] + ["a", "a", "b", "b"]


def test_time_interleaved_settles_each_turn_untimed():
    """settle=1: one untimed call each time a row takes its turn (the previous runtime's threads still spin)."""
    ticks = iter(range(10_000))
    log = []
    slow_first = {"a": 0, "b": 0}

    def call(name):
        def run():
            log.append(name)
            slow_first[name] += 1
        return run

    times = time_interleaved({"a": call("a"), "b": call("b")}, iters=4, rounds=2, warmup=0,
                             clock=lambda: next(ticks), settle=1)
    assert [len(times["a"]), len(times["b"])] == [4, 4]
    # per round: a settles then 2 timed, b settles then 2 timed; round 1 starts at b
    assert log == ["a"] * 3 + ["b"] * 3 + ["b"] * 3 + ["a"] * 3
    assert slow_first == {"a": 6, "b": 6}  # 4 timed + 2 settling calls each


def test_percentiles_ms():
    stats = percentiles_ms([0.001] * 98 + [0.002, 0.010])
    assert stats["p50"] == pytest.approx(1.0) and stats["n"] == 100
    assert stats["p90"] == pytest.approx(1.0) and stats["p99"] > 1.0 and stats["min"] == pytest.approx(1.0)


def test_size_on_disk_files_and_folders(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.bin").write_bytes(b"1" * 10)
    (tmp_path / "m" / "b.bin").write_bytes(b"1" * 5)
    assert size_on_disk(tmp_path / "m") == 15
    assert size_on_disk(tmp_path / "m" / "a.bin") == 10
    assert size_on_disk(tmp_path / "missing") is None and size_on_disk(None) is None


def test_schema_documents_every_report_and_row_key():
    from dataclasses import fields

    schema = (Path(__file__).parent.parent / "bench" / "SCHEMA.md").read_text()
    report_keys = ["schema", "version", "created", "model", "data", "settings", "machine", "memory_method",
                   "roofline", "reference_row", "speed_baseline", "pareto_front", "rows"]
    row_keys = ["name"] + [f.name for f in fields(Row)]
    missing = [k for k in report_keys + row_keys if f"`{k}`" not in schema]
    assert not missing, f"bench/SCHEMA.md does not document {missing}"
    assert len(COLUMNS) >= 12


def test_pareto_tolerance_turns_float_noise_into_ties():
    points = {"fast": (2.0, 3.00001), "slow": (5.0, 3.0), "worse": (1.0, 3.5)}
    assert pareto_front(points) == ["worse", "fast", "slow"]
    assert pareto_front(points, y_tolerance=1e-3) == ["worse", "fast"]  # slow is only better by noise
