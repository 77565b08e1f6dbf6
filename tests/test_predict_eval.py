"""prnet.evaluate: known answers through the whole eval pipeline (a runner returning the ground truth), report
schema, CED plot, AFLW2000-3D detection of the folder type, errors."""

import json

import numpy as np
import pytest

from prnet.evaluate import dataset_format, evaluate, params_yaw, write_report
from prnet.io import PrnetInputError
from tests.predict_fixtures import TruthRunner, make_eval_dataset, tiny_runner


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_eval_dataset(tmp_path_factory.mktemp("evalset"), n=6)


def test_eval_ground_truth_runner_scores_zero(dataset, tmp_path):
    root, truth = dataset
    report, per_sample = evaluate(TruthRunner(truth), root, batch_size=4)
    assert report["samples"] == 6 and report["format"] == "prnet"
    for key in ("nme_2d", "nme_3d", "dense_nme_3d"):
        assert report[key]["mean"] == pytest.approx(0.0, abs=1e-4)
    assert report["yaw_source"] == {"dataset": 6, "estimated": 0}
    assert [report["nme_2d"]["bins"][b]["count"] for b in ("[0,30)", "[30,60)", "[60,90]")] == [2, 2, 2]
    files = write_report(report, per_sample, tmp_path / "out")
    saved = json.loads(files["json"].read_text())
    assert saved["files"]["ced_png"].endswith("ced.png") and files["ced_png"].read_bytes()[:4] == b"\x89PNG"
    assert len(files["per_sample_csv"].read_text().splitlines()) == 7
    assert len(saved["per_landmark_2d"]) == 68 and len(saved["worst"]) == 6


def test_eval_known_offset(dataset):
    """Every point off by (3, 4, 12) px: 2D error 5 px per point, 3D the same after z centring, so each face's
    NME is 5 / its GT landmark box sqrt(w*h); dense NME too (same normalizer)."""
    from prnet.data.format import list_samples, read_manifest, read_sample
    from prnet.metrics import landmark_box_size

    root, truth = dataset
    report, per_sample = evaluate(TruthRunner(truth, offset=(3.0, 4.0, 12.0)), root, batch_size=5)
    manifest = read_manifest(root)
    boxes = np.array([landmark_box_size(read_sample(root, i, manifest).landmarks) for i in list_samples(root, manifest)])
    np.testing.assert_allclose(per_sample["nme_2d"], 5.0 / boxes, rtol=1e-4)
    np.testing.assert_allclose(per_sample["nme_3d"], 5.0 / boxes, rtol=1e-4)
    np.testing.assert_allclose(per_sample["dense_nme_3d"], 5.0 / boxes, rtol=1e-4)
    expected = 100 * 5.0 / boxes
    assert report["nme_2d"]["mean"] == pytest.approx(expected.mean(), rel=1e-4)
    bins = [expected[[0, 3]].mean(), expected[[1, 4]].mean(), expected[[2, 5]].mean()]
    assert report["nme_2d"]["balanced_mean"] == pytest.approx(np.mean(bins), rel=1e-4)
    assert np.allclose(report["per_landmark_2d"], expected.mean(), rtol=1e-3)


def test_eval_random_model_other_size_and_layout(dataset):
    root, _ = dataset
    runner = tiny_runner(32)  # 32 px input: crops and GT are resized; layout differs -> no dense NME
    report, _ = evaluate(runner, root, limit=3)
    assert report["samples"] == 3 and np.isfinite(report["nme_2d"]["mean"])
    assert report["dense_nme_3d"] is None and "layout" in report["dense_note"]


def test_params_yaw_sources():
    assert params_yaw({"pose": {"yaw": 30.0}}) == 30.0
    assert params_yaw({"pose": [0.1, np.radians(45), 0, 0, 0, 0, 1]}) == pytest.approx(45.0)
    assert params_yaw({"yaw": -20}) == -20.0
    assert params_yaw({"seed": 1}) is None


def test_dataset_format_errors(tmp_path):
    with pytest.raises(PrnetInputError, match="not a dataset"):
        dataset_format(tmp_path)
    (tmp_path / "image00002.mat").write_bytes(b"")
    assert dataset_format(tmp_path) == "aflw2000"


def test_eval_on_aflw2000_folder(tmp_path):
    """A 2-image AFLW2000-3D-style folder (image + .mat with pt3d_68 and Pose_Para) runs through eval; yaw comes
    from Pose_Para (radians -> degrees)."""
    import cv2
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    for name, yaw in (("image00002", 0.2), ("image00004", -1.2)):
        cv2.imwrite(str(tmp_path / f"{name}.jpg"), rng.integers(0, 256, (450, 450, 3), dtype=np.uint8))
        pt3d = np.stack([rng.uniform(150, 300, 68), rng.uniform(160, 320, 68), rng.uniform(0, 80, 68)])
        savemat(tmp_path / f"{name}.mat", {"pt3d_68": pt3d, "Pose_Para": np.array([[0.1, yaw, 0.0, 200, 200, 0, 0.001]])})
    report, per_sample = evaluate(tiny_runner(32), tmp_path)
    assert report["format"] == "aflw2000" and report["samples"] == 2
    np.testing.assert_allclose(sorted(per_sample["yaw"]), sorted(np.degrees([0.2, -1.2])))
    assert report["nme_2d"]["bins"]["[0,30)"]["count"] == 1 and report["nme_2d"]["bins"]["[60,90]"]["count"] == 1
    assert report["dense_nme_3d"] is None and "ground-truth position maps" in report["dense_note"]
