"""scripts.measure.learning_curve: which checkpoints it evaluates and how a later session's run extends the curve
(--stride, --offset for a run started with --init, --prior / --rows-out). The evaluation itself is prnet eval's
code, tested elsewhere; here it is replaced by a function of the step so the bookkeeping is checked exactly."""

from __future__ import annotations

import json
from pathlib import Path

from scripts.measure import learning_curve as lc


def _fake_run(tmp_path: Path, steps: list[int]) -> Path:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    for step in steps:
        (run / "checkpoints" / f"step_{step:07d}.pt").write_bytes(b"")
    return run


def _patch(monkeypatch) -> list[str]:
    evaluated = []

    def faces_seen(checkpoint: Path) -> tuple[int, int]:
        step = 12500 if checkpoint.name == "shipped.pt" else int(checkpoint.stem.split("_")[1])
        return step, step * 16

    def evaluate_checkpoint(checkpoint: Path, data: Path, limit):
        evaluated.append(checkpoint.name)
        step = faces_seen(checkpoint)[0]
        return {"nme_2d": 10.0 - step / 10000, "nme_2d_balanced": None, "nme_2d_inner": None, "faces": 3}

    monkeypatch.setattr(lc, "faces_seen", faces_seen)
    monkeypatch.setattr(lc, "evaluate_checkpoint", evaluate_checkpoint)
    return evaluated


def test_stride_offset_prior_and_rows_out(tmp_path, monkeypatch):
    evaluated = _patch(monkeypatch)
    run = _fake_run(tmp_path, [500, 1000, 1500, 2000, 2500])
    shipped = tmp_path / "shipped.pt"
    shipped.write_bytes(b"")
    prior = tmp_path / "prior.json"
    prior.write_text(json.dumps({"rows": [{"faces_seen": 96000, "step": 6000, "synth": {"nme_2d": 4.3}},
                                          {"faces_seen": 500000, "step": 99, "synth": {"nme_2d": 1.0}}]}))
    rows_out, png = tmp_path / "rows.json", tmp_path / "curve.png"
    lc.main([str(run), "--data", f"synth={tmp_path}", "--stride", "1000", "--offset", "200000",
             "--also", str(shipped), "--prior", str(prior), "--rows-out", str(rows_out), "--out", str(png)])
    assert sorted(evaluated) == ["shipped.pt", "step_0001000.pt", "step_0002000.pt", "step_0002500.pt"]
    # (stride skips 500 and 1500, keeps the run's last)
    rows = json.loads(rows_out.read_text())["rows"]
    # prior points before the first new one are kept; the run's steps shift by the offset, --also keeps its own
    assert [r["faces_seen"] for r in rows] == [96000, 200000, 216000, 232000, 240000]
    assert [r["step"] for r in rows] == [6000, 12500, 1000, 2000, 2500]
    assert rows[2]["synth"]["nme_2d"] == 9.9
    assert png.stat().st_size > 1000
    # a rerun evaluates nothing again: the cache holds every (checkpoint, data) pair
    evaluated.clear()
    lc.main([str(run), "--data", f"synth={tmp_path}", "--stride", "1000", "--out", str(png)])
    assert evaluated == []


def test_model_card_curve_table_from_rows(tmp_path, monkeypatch):
    from scripts.measure.model_card_tables import curve_table

    _patch(monkeypatch)
    run = _fake_run(tmp_path, [1000])
    rows_out = tmp_path / "rows.json"
    lc.main([str(run), "--data", f"photos={tmp_path}", "--offset", "200000", "--rows-out", str(rows_out),
             "--out", str(tmp_path / "c.png")])
    lines = curve_table(rows_out).splitlines()
    assert lines[0] == "| checkpoint | step | faces seen | photos 68-pt |"
    assert lines[2] == "| run/step_0001000.pt | 1000 | 216,000 | 9.90 % |"
