"""The reduced end-to-end quickstart path CI runs (`prnet quickstart --fast`) on a fresh directory: every stage
for real (synthetic data, a tiny model trained from scratch, INT8 and SVD+INT8, every export format, bench),
and a report listing every stage with its status and files that exist. About 1 minute on an idle 2-core CPU
(3-4 minutes while other heavy jobs share it).

ExecuTorch and Core ML are reported unavailable here (the XNNPACK lowering is ~20 s, the Core ML conversion ~15 s
on a slow 2-core VM: together half of this test): the export stage calls the same export_model for every format;
tests/test_export_runtimes.py::test_executorch_xnnpack_fp32 lowers the same prnet-quarter through it with stricter
checks (float32 rounding tolerance, no op left on the portable kernels) and tests/test_chain.py converts a
compressed checkpoint to Core ML through the CLI, so this test proves the stage's loop, its report rows and its
handling of unavailable formats instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prnet.cli import app
from prnet.cli.quickstart.run import EXPORT_FORMATS, STAGES
from prnet.export.formats import TOLERANCES_PX
from prnet.export.parity import check_deviation, pixel_budget


@pytest.mark.slow
def test_quickstart_fast_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setattr("prnet.default_model.DEFAULT_MODEL_PATH", tmp_path / "no_default_model.pt")  # --fast ignores it anyway
    from prnet.export.formats import ExportFormat, ExportUnavailable

    check_exportable = ExportFormat.check_exportable

    covered_elsewhere = {"executorch": "lowered by test_export_runtimes.py", "coreml": "converted by test_chain.py"}

    def unavailable_here(spec):
        if spec.name in covered_elsewhere:
            raise ExportUnavailable(f"{spec.name}: {covered_elsewhere[spec.name]}, not again here")
        check_exportable(spec)

    monkeypatch.setattr(ExportFormat, "check_exportable", unavailable_here)
    out = tmp_path / "quickstart"
    result = CliRunner().invoke(app, ["quickstart", "--fast", "--out", str(out)])
    report = json.loads((out / "report.json").read_text())
    assert result.exit_code == 0, result.output + json.dumps([(s["name"], s["error"]) for s in report["stages"]])
    assert report["ok"] and report["exit_code"] == 0
    stages = {s["name"]: s for s in report["stages"]}
    assert list(stages) == list(STAGES) and all(s["status"] == "ok" for s in stages.values())
    for artifact in report["artifacts"]:  # every listed file exists, except formats that cannot be made here
        assert artifact["status"] in ("ok", "unavailable"), artifact
        assert Path(artifact["path"]).exists() == (artifact["status"] == "ok"), artifact
    assert {a["stage"] for a in report["artifacts"]} == set(STAGES)

    train = stages["train"]["numbers"]
    assert train["mode"].startswith("scratch") and train["final_step"] == train["steps"] >= 4
    assert train["val_nme_after"] is not None
    for plan in ("int8", "svd_int8"):
        int8 = stages["compress"]["numbers"][plan]["variants"]["compressed-int8"]["runtimes"]["onnxruntime"]
        assert int8["median_ms"] > 0 and int8["nme68_2d"] > 0
    formats = stages["export"]["numbers"]["formats"]
    assert list(formats) == list(EXPORT_FORMATS) and formats["onnx"]["status"] == "ok"
    check_deviation(formats["onnx"]["max_deviation_px"], formats["onnx"]["mean_deviation_px"],  # status ok: within
                    pixel_budget(*TOLERANCES_PX["fp32"], reason="the export's own fp32 acceptance budget"), "ONNX")
    for name, row in formats.items():
        assert row["status"] in ("ok", "unavailable") and (row["status"] == "ok" or name in row["reason"].lower())
    assert formats["executorch"]["status"] == formats["coreml"]["status"] == "unavailable"  # the patch took effect
    rows = stages["bench"]["numbers"]["rows"]
    assert rows["fp32/onnxruntime"]["status"] == "ok" and rows["int8/onnxruntime"]["p50_ms"] > 0

    markdown = (out / "report.md").read_text()
    assert all(f"| {name} | ok |" in markdown for name in STAGES) and "## Artifacts" in markdown
    assert "tensorrt" in markdown
