"""prnet.bench.core with fake numpy runners: report structure, metric plumbing, failure isolation (never timing values)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.bench_fixtures import Loaded, Unavailable, backend, validation, variant
from prnet.bench.core import BenchSettings, run_benchmark
from prnet.bench.report import REPORT_FILES, find_row, to_markdown, write_run_dir
from prnet.bench.specs import BackendSpec, unavailable_reason
from prnet.metrics import landmark_box_size

FAST = dict(threads=1, batch=3, iters=4, warmup=1, rounds=2, sgemm_n=64)


@pytest.fixture(autouse=True)
def exact_landmark_reader(monkeypatch):
    """Until prnet.geometry.posmap lands, read landmarks at the (integer) landmark UVs exactly."""
    try:
        import prnet.geometry.posmap  # noqa: F401
    except ImportError:
        def read(maps, layout):
            u, v = layout.landmark_uv[:, 0].astype(int), layout.landmark_uv[:, 1].astype(int)
            return maps[:, v, u].astype(np.float64)

        monkeypatch.setattr("prnet.bench.accuracy.landmarks_from_maps", read)


def _run(tmp_path: Path, variants, backends, data, **settings):
    return run_benchmark(Loaded(data.layout), data, variants, backends, BenchSettings(**{**FAST, **settings}),
                         tmp_path / "artifacts")


def test_report_structure_and_files(tmp_path):
    data = validation()
    report = _run(tmp_path, [variant("fp32"), variant("int8", offset=(1, 0, 0))],
                  [backend("torch", data, tmp_path), backend("ort", data, tmp_path)], data,
                  reference="fp32/torch")
    assert report["schema"] == "prnet-bench" and report["version"] == 1
    assert [r["name"] for r in report["rows"]] == ["fp32/torch", "fp32/ort", "int8/torch", "int8/ort"]
    assert report["reference_row"] == "fp32/torch" and report["speed_baseline"] == "fp32/torch"  # no fp32/onnxruntime
    assert find_row(report["rows"], "fp32/torch")["speedup"] == pytest.approx(1.0)
    assert set(report) >= {"schema", "version", "created", "model", "data", "settings", "machine", "memory_method",
                           "roofline", "reference_row", "speed_baseline", "pareto_front", "rows"}
    assert report["settings"]["threads"] == 1 and report["settings"]["batch"] == 3
    for row in report["rows"]:
        assert row["status"] == "ok", row
        assert row["size_bytes"] == 123 and row["params"] == 10 and row["macs"] == 1000
        assert set(row["latency_ms"]) == {"p50", "p90", "p99", "mean", "min", "n"} and row["latency_ms"]["n"] == 4
        assert row["latency_ms"]["p50"] <= row["latency_ms"]["p90"] <= row["latency_ms"]["p99"]
        assert row["throughput"]["batch"] == 3 and row["throughput"]["images_per_s"] > 0
        assert "peak_rss_delta_bytes" in row["memory"]
        assert row["roofline_ms"] > 0
    assert report["roofline"]["macs"] == 1000 and report["roofline"]["peak_gmacs"] > 0
    json.dumps(report)  # plain JSON all the way down

    written = write_run_dir(report, tmp_path / "run")
    assert {p.name for p in written.values()} == set(REPORT_FILES.values())
    assert json.loads(written["json"].read_text()) == json.loads(json.dumps(report))
    markdown = written["markdown"].read_text()
    assert all(r["name"] in markdown for r in report["rows"]) and "roofline" in markdown
    assert written["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]  # no temp files left


def test_metric_plumbing_known_offsets(tmp_path):
    data = validation(count=5)
    report = _run(tmp_path, [variant("fp32"), variant("shift", offset=(3, 4, 0)), variant("deep", offset=(0, 0, 2))],
                  [backend("np", data, tmp_path)], data, reference="fp32/np")
    fp32, shift, deep = (find_row(report["rows"], n) for n in ("fp32/np", "shift/np", "deep/np"))
    assert fp32["accuracy"]["nme68_2d"] == pytest.approx(0, abs=1e-9)
    assert fp32["deviation_px"] == pytest.approx({"max": 0.0, "p99": 0.0, "mean": 0.0})
    expected = 100 * np.mean(5.0 / landmark_box_size(data.landmarks))  # a (3, 4) shift is 5 px everywhere
    assert shift["accuracy"]["nme68_2d"] == pytest.approx(expected)
    assert shift["accuracy"]["nme68_3d"] == pytest.approx(expected)
    assert shift["accuracy"]["dense_nme"] == pytest.approx(expected)
    assert shift["accuracy"]["delta_nme68_2d"] == pytest.approx(expected)
    assert shift["deviation_px"] == pytest.approx({"max": 5.0, "p99": 5.0, "mean": 5.0})
    # a constant depth offset is invisible to 2D NME and removed by the 3D protocol's mean-depth alignment,
    # but it IS a deviation of the output from FP32
    assert deep["accuracy"]["nme68_2d"] == pytest.approx(0, abs=1e-9)
    assert deep["accuracy"]["nme68_3d"] == pytest.approx(0, abs=1e-4)  # float32 rounding of z + 2
    assert deep["deviation_px"] == pytest.approx({"max": 2.0, "p99": 2.0, "mean": 2.0})
    assert report["pareto_front"], "some ok row must be on the front"


def test_failure_isolation(tmp_path):
    data = validation()
    backends = [
        backend("good", data, tmp_path),
        backend("broken", data, tmp_path, fail_prepare=RuntimeError("exporter exploded")),
        backend("absent", data, tmp_path, requires=("no_such_runtime_xyz",)),
        backend("nogpu", data, tmp_path, fail_prepare=Unavailable("needs an NVIDIA GPU")),
        backend("crashy", data, tmp_path, fail_after=7),  # survives loading + scoring, dies while timed
        backend("nan", data, tmp_path, output_nan=True),
    ]
    variants = [variant("fp32"), variant("bad", error=ValueError("calibration diverged"))]
    report = _run(tmp_path, variants, backends, data)
    row = lambda name: find_row(report["rows"], name)  # noqa: E731
    assert row("fp32/good")["status"] == "ok" and row("fp32/good")["latency_ms"] is not None
    assert row("fp32/broken")["status"] == "failed" and "exporter exploded" in row("fp32/broken")["reason"]
    assert row("fp32/absent")["status"] == "unavailable" and "no_such_runtime_xyz" in row("fp32/absent")["reason"]
    assert row("fp32/nogpu")["status"] == "unavailable" and "NVIDIA GPU" in row("fp32/nogpu")["reason"]
    assert row("fp32/crashy")["status"] == "failed" and "timing" in row("fp32/crashy")["reason"]
    assert row("fp32/crashy")["latency_ms"] is None
    assert row("fp32/nan")["status"] == "failed" and "NaN" in row("fp32/nan")["reason"]
    for b in ("good", "broken", "absent", "nogpu", "crashy", "nan"):
        bad = row(f"bad/{b}")  # a variant that fails to build fails on every backend, with the build error
        assert bad["status"] == "failed" and "calibration diverged" in bad["reason"]
    assert report["pareto_front"] == ["fp32/good"]
    markdown = to_markdown(report)
    assert "Rows that did not run" in markdown and "exporter exploded" in markdown


def test_reference_falls_back_to_first_ok_fp32_row(tmp_path):
    data = validation()
    report = _run(tmp_path, [variant("fp32"), variant("int8", offset=(1, 0, 0))],
                  [backend("b1", data, tmp_path, fail_prepare=RuntimeError("x")), backend("b2", data, tmp_path)],
                  data, reference="fp32/b1")
    assert report["reference_row"] == "fp32/b2"
    assert find_row(report["rows"], "int8/b2")["deviation_px"]["max"] == pytest.approx(1.0)


def test_layout_mismatch_is_a_clear_error(tmp_path):
    from tests.bench_fixtures import grid_layout
    from prnet.io import PrnetInputError

    data = validation()
    with pytest.raises(PrnetInputError, match="UV layout"):
        run_benchmark(Loaded(grid_layout(name="other")), data, [variant("fp32")], [backend("b", data, tmp_path)],
                      BenchSettings(**FAST), tmp_path)


def test_unavailable_reason_names_the_missing_module():
    spec = BackendSpec("x", "x", prepare=lambda v, c: None, requires=("numpy", "no_such_mod_abc.sub"))
    assert re.search("no_such_mod_abc.sub", unavailable_reason(spec))
    assert unavailable_reason(BackendSpec("y", "y", prepare=lambda v, c: None, check=lambda: "macOS only")) == "macOS only"


def test_built_in_synthetic_set_is_in_the_layout_of_a_smaller_model():
    """A 128 px model (the shipped default) must be benchmarkable on the built-in faces: they are rendered at the
    mesh layout's size and resampled, so their maps are in the layout the model was trained on (same id)."""
    from prnet.bench.data import synthetic_set
    from prnet.data.synth.render import load_assets
    from prnet.geometry.resample import resize_layout

    native = load_assets().layout
    small = synthetic_set(2, seed=7, size=128)
    assert small.images.shape == (2, 128, 128, 3) and small.posmaps.shape == (2, 128, 128, 3)
    assert small.layout.layout_id == resize_layout(native, 128).layout_id != native.layout_id
    full = synthetic_set(2, seed=7, size=native.size)
    assert full.layout.layout_id == native.layout_id
    # the same faces: resampled landmarks are the full-size ones scaled by 128/256 (pixel-centre convention)
    scale = 128 / native.size
    np.testing.assert_allclose(small.landmarks[..., :2], (full.landmarks[..., :2] + 0.5) * scale - 0.5, atol=1e-3)


class HalfSizeRunner:
    """A model at half the reference's input size that is exact in its own crop: the GT map of the half-size
    crop (how a ground-truth map follows a resized crop). Records the input shapes it is called with."""

    def __init__(self, data):
        from prnet.bench.core import ResampledRunner
        from prnet.geometry.resample import resize_posmap

        self.name, self.input_size, self.shapes = "half", data.input_size // 2, []
        small = ResampledRunner(self, data.input_size).resize_in(data.images)
        self._maps = {img.tobytes(): resize_posmap(m, self.input_size) for img, m in zip(small, data.posmaps)}

    def __call__(self, images):
        self.shapes.append(images.shape)
        return np.stack([self._maps[np.ascontiguousarray(img, np.float32).tobytes()] for img in images])


def test_a_model_of_another_input_size_is_scored_resampled_and_timed_at_its_own(tmp_path, monkeypatch):
    from prnet.bench.core import ResampledRunner
    from prnet.bench.specs import PreparedRow

    wrapped_calls = []
    scored = ResampledRunner.__call__
    monkeypatch.setattr(ResampledRunner, "__call__", lambda self, x: wrapped_calls.append(len(x)) or scored(self, x))

    data = validation(count=4, size=32)  # a 16 px model beside 32 px data
    runners = []

    def prepare(built, ctx):
        path = tmp_path / "half.bin"
        path.write_bytes(b"x")
        return PreparedRow(path, lambda: runners.append(HalfSizeRunner(data)) or runners[-1])

    half = BackendSpec("half", "half-size fake", prepare)
    report = _run(tmp_path, [variant("fp32")], [backend("np", data, tmp_path), half], data, reference="fp32/np")
    row = find_row(report["rows"], "fp32/half")
    assert row["status"] == "ok", row
    assert any("takes 16 px" in note for note in row["notes"])
    # resampled back in the pixel-centre convention, the exact half-size map scores like the GT itself
    assert row["accuracy"]["nme68_2d"] == pytest.approx(0, abs=1e-3)
    assert row["deviation_px"]["max"] < 1e-3
    shapes = runners[-1].shapes
    assert {s[1:] for s in shapes} == {(16, 16, 3)}  # the model only ever sees its own size
    # timed calls go to the model directly: the resampling is scoring, not the model's latency
    assert len(shapes) - len(wrapped_calls) >= FAST["iters"] + FAST["warmup"]
