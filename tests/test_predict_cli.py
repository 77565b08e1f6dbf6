"""`prnet predict` / `prnet eval` through Typer's CliRunner: outputs, bad files in a folder, video, errors."""

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from prnet.cli import app
from tests.predict_fixtures import make_eval_dataset, tiny_checkpoint

cli = CliRunner()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def write_inputs(folder):
    """Good images in every flavour and the bad ones the CLI must report and skip."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    color = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    cv2.imwrite(str(folder / "color.jpg"), color)
    cv2.imwrite(str(folder / "gray.png"), color[..., 0])
    cv2.imwrite(str(folder / "rgba.png"), np.dstack([color, np.full(color.shape[:2], 200, np.uint8)]))
    cv2.imwrite(str(folder / "deep16.png"), color.astype(np.uint16) * 257)
    cv2.imwrite(str(folder / "tiny.png"), color[:10, :10])
    ok, buf = cv2.imencode(".jpg", color)
    (folder / "truncated.jpg").write_bytes(buf.tobytes()[: len(buf) // 3])
    (folder / "notes.jpg").write_text("not an image")
    return folder


def test_predict_folder_reports_bad_files_and_processes_the_rest(tmp_path, checkpoint):
    inputs = write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    result = cli.invoke(app, ["predict", str(inputs), "--model", str(checkpoint), "--out", str(out),
                              "--bbox", "40,20,120,110", "--device", "cpu", "--threads", "1"])
    assert result.exit_code == 2, result.output
    for bad, reason in (("tiny.png", "too small"), ("truncated.jpg", "not a readable image"), ("notes.jpg", "not a readable image")):
        assert bad in result.output and reason in result.output
    assert "4 file(s) written" in result.output and "3 failed" in result.output
    for stem in ("color", "gray", "rgba", "deep16"):
        record = json.loads((out / f"{stem}.json").read_text())
        face = record["faces"][0]
        assert np.array(face["landmarks_3d"]).shape == (68, 3) and np.array(face["landmarks_2d"]).shape == (68, 2)
        assert set(face["pose"]) == {"yaw", "pitch", "roll"}
        assert (out / face["files"]["obj"]).read_text().startswith("v ")
        with np.load(out / face["files"]["dense"]) as dense:
            assert dense["vertices"].shape == dense["colors"].shape
        for picture in record["pictures"].values():
            assert cv2.imread(str(out / picture)).shape == (120, 160, 3)


def test_predict_single_image_no_face(tmp_path, checkpoint):
    image = tmp_path / "wall.png"
    cv2.imwrite(str(image), np.full((200, 200, 3), 127, np.uint8))
    result = cli.invoke(app, ["predict", str(image), "--model", str(checkpoint), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "no face found" in result.output


def test_predict_video(tmp_path, checkpoint):
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 12.0, (160, 120))
    rng = np.random.default_rng(0)
    for _ in range(6):
        writer.write(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    writer.release()
    out = tmp_path / "out"
    result = cli.invoke(app, ["predict", str(video), "-m", str(checkpoint), "-o", str(out), "--bbox", "40,20,120,110"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "clip_landmarks.json").read_text())
    assert record["frames_total"] == 6 and record["fps_processing"] > 0 and record["fps_input"] == pytest.approx(12.0)
    assert all(len(frame["faces"]) == 1 for frame in record["frames"])
    capture = cv2.VideoCapture(str(out / "clip_annotated.mp4"))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 6
    capture.release()
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 100)
    result = cli.invoke(app, ["predict", str(tmp_path / "broken.mp4"), "-m", str(checkpoint), "-o", str(out)])
    assert result.exit_code == 2 and "not a readable video" in result.output


def test_predict_argument_errors(tmp_path, checkpoint, monkeypatch):
    monkeypatch.setattr("prnet.default_model.DEFAULT_MODEL_PATH", tmp_path / "no_default_model.pt")
    result = cli.invoke(app, ["predict", str(tmp_path)])
    assert result.exit_code == 2 and "no --model given" in result.output and "prnet train" in result.output
    result = cli.invoke(app, ["predict", str(tmp_path / "missing.jpg"), "-m", str(checkpoint)])
    assert result.exit_code == 2 and "no such file" in result.output
    result = cli.invoke(app, ["predict", str(tmp_path), "-m", str(checkpoint), "--bbox", "1,2,3"])
    assert result.exit_code == 2 and "--bbox" in result.output
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    result = cli.invoke(app, ["predict", str(tmp_path), "-m", str(bad)])
    assert result.exit_code == 2 and "bad.pt" in result.output


def test_eval_cli(tmp_path, checkpoint, monkeypatch):
    root, _ = make_eval_dataset(tmp_path / "data", n=4)
    out = tmp_path / "eval"
    result = cli.invoke(app, ["eval", "--model", str(checkpoint), "--data", str(root), "--out", str(out), "--batch", "3"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "eval.json").read_text())
    assert report["samples"] == 4 and report["dense_nme_3d"] is not None  # same layout as the checkpoint
    assert "nme_2d: mean" in result.output and (out / "ced.png").is_file()
    result = cli.invoke(app, ["eval", "--model", str(checkpoint), "--data", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "not a dataset" in result.output
    monkeypatch.setattr("prnet.default_model.DEFAULT_MODEL_PATH", tmp_path / "no_default_model.pt")
    result = cli.invoke(app, ["eval", "--data", str(root)])
    assert result.exit_code == 2 and "no --model given" in result.output


def test_eval_and_predict_with_an_exported_onnx_model(tmp_path, checkpoint):
    """Any Runner works: an ONNX export of the checkpoint scores like the checkpoint itself."""
    pytest.importorskip("onnxruntime")
    from prnet.export.api import export_model

    onnx_path = tmp_path / "tiny.onnx"
    export_model("onnx", checkpoint, onnx_path, check_parity=False, latency_runs=0)
    root, _ = make_eval_dataset(tmp_path / "data", n=3)
    reports = {}
    for name, model in (("pt", checkpoint), ("onnx", onnx_path)):
        result = cli.invoke(app, ["eval", "-m", str(model), "--data", str(root), "-o", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        reports[name] = json.loads((tmp_path / name / "eval.json").read_text())
    assert reports["onnx"]["model"] != reports["pt"]["model"]
    assert reports["onnx"]["nme_2d"]["mean"] == pytest.approx(reports["pt"]["nme_2d"]["mean"], abs=0.01)
    image = tmp_path / "img.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8))
    result = cli.invoke(app, ["predict", str(image), "-m", str(onnx_path), "-o", str(tmp_path / "p"), "--bbox", "40,20,120,110"])
    assert result.exit_code == 0, result.output
    unknown = tmp_path / "model.xyz"
    unknown.write_bytes(b"?")
    result = cli.invoke(app, ["predict", str(image), "-m", str(unknown)])
    assert result.exit_code == 2 and "model.xyz" in result.output
