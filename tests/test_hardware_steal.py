"""CPU steal (prnet.hardware): read from /proc/stat, recorded by bench, the training-speed bench and training logs."""

import copy

from prnet.bench.report import steal_note
from prnet.hardware import StealMeter, parse_proc_stat, steal_fraction

STAT = """cpu  100 5 40 800 10 1 2 42 0 0
cpu0 50 2 20 400 5 0 1 21 0 0
intr 12345
"""


def test_parse_proc_stat_reads_the_all_cpu_line():
    assert parse_proc_stat(STAT) == (42, 100 + 5 + 40 + 800 + 10 + 1 + 2 + 42)
    assert parse_proc_stat("cpu  1 2 3 4\n") is None  # a kernel without the steal column
    assert parse_proc_stat("") is None


def test_steal_fraction_between_two_readings():
    assert steal_fraction((10, 1000), (60, 1200)) == 0.25
    assert steal_fraction(None, (60, 1200)) is None and steal_fraction((10, 1000), (10, 1000)) is None


def test_meter_laps_are_shares_or_none(monkeypatch):
    readings = iter([(0, 0), (30, 100), (30, 300)])
    monkeypatch.setattr("prnet.hardware.cpu_steal_ticks", lambda: next(readings))
    meter = StealMeter()
    assert meter.lap() == 0.3 and meter.lap() == 0.0
    monkeypatch.setattr("prnet.hardware.cpu_steal_ticks", lambda: None)  # not Linux
    assert StealMeter().lap() is None


def test_bench_header_warns_when_the_host_steals():
    report = {"machine": {"cpu": "x", "cpu_steal": 0.48}}
    assert "CPU steal 48 %" in steal_note(report) and "slower than on a quiet machine" in steal_note(report)
    quiet = copy.deepcopy(report)
    quiet["machine"]["cpu_steal"] = 0.002
    assert steal_note(quiet) == "; CPU steal 0.2 % during the run"
    del quiet["machine"]["cpu_steal"]  # reports written before the field existed
    assert steal_note(quiet) == ""
