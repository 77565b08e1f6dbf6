"""The yuface detector and its calibrated crop on synthetic faces (the generator's own renders, no files needed):
the crop from the detector box must be close to PRNet's ground-truth crop from the 68 landmarks."""

import numpy as np
import pytest

from prnet.geometry.crop import box_from_landmarks
from prnet.predict.detect import detect_faces


@pytest.fixture(scope="module")
def synthetic_faces():
    from prnet.data.synth.render import SynthConfig, load_assets, render_sample

    config = SynthConfig(occlusion_rate=0.0, degrade=False)
    assets = load_assets()
    return [render_sample(index, 0, config, assets) for index in range(1, 6)]  # |yaw| <= 30 for seed 0


def test_detector_crop_matches_ground_truth_crop(synthetic_faces):
    import cv2

    pad = 128
    for sample in synthetic_faces:
        assert abs(sample.params["pose"]["yaw"]) < 45
        image = cv2.copyMakeBorder(sample.image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        faces = detect_faces(image)
        assert len(faces) >= 1 and 0.5 <= faces[0].score <= 1.0
        assert faces[0].points5.shape == (5, 2)
        center, side = faces[0].crop_box()
        gt_center, gt_side = box_from_landmarks(sample.landmarks[:, :2] + pad)
        assert 0.8 < side / gt_side < 1.25
        assert np.linalg.norm(center - gt_center) < 0.12 * gt_side


def test_detector_on_a_big_and_a_tiny_image(synthetic_faces):
    import cv2

    face = synthetic_faces[0].image
    big = cv2.resize(cv2.copyMakeBorder(face, 256, 256, 512, 512, cv2.BORDER_REPLICATE), None, fx=2.5, fy=2.5)
    found = detect_faces(big)  # 3200 x 1920: detected on a 640 px copy, boxes in original pixels
    assert len(found) >= 1
    x0, y0, x1, y1 = found[0].box
    assert 1280 < (x0 + x1) / 2 < 1920 and 640 < (y0 + y1) / 2 < 1280
    small = cv2.resize(face, (96, 96), interpolation=cv2.INTER_AREA)
    small = cv2.copyMakeBorder(small, 32, 32, 32, 32, cv2.BORDER_REPLICATE)  # 160 px
    found = detect_faces(small)
    assert len(found) >= 1 and found[0].box[2] - found[0].box[0] > 40


def test_predict_folder_with_the_detector(synthetic_faces, tmp_path):
    import json

    import cv2

    from prnet.predict.io import PredictOptions, predict_paths
    from tests.predict_fixtures import tiny_runner

    folder = tmp_path / "in"
    folder.mkdir()
    image = cv2.copyMakeBorder(synthetic_faces[1].image, 100, 100, 150, 150, cv2.BORDER_REPLICATE)
    cv2.imwrite(str(folder / "face.png"), image[..., ::-1])
    summary = predict_paths(folder, tiny_runner(64), tmp_path / "out", PredictOptions(write_pictures=False))
    assert not summary.failures
    record = json.loads((tmp_path / "out" / "face.json").read_text())
    assert len(record["faces"]) >= 1 and record["faces"][0]["score"] < 1.0  # a detector box, not a user box
    x0, y0, x1, y1 = record["faces"][0]["box"]
    assert 150 < (x0 + x1) / 2 < 406 and 100 < (y0 + y1) / 2 < 356
