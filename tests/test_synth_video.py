"""The synthetic head-turn video (prnet.data.synth.video, `prnet data video`) and its tracking score."""

from __future__ import annotations

import numpy as np
import pytest

from prnet.data.synth.render import SynthConfig, load_assets, render_params, sample_params
from prnet.data.synth.scene import place_camera, make_camera
from prnet.data.synth.video import VideoConfig, frame_pose, read_ground_truth, render_frames, write_video

SMALL = VideoConfig(seed=5, size=96, still_frames=2, turn_frames=3, cycles=0.5, yaw_amplitude=60.0)


def test_placement_moves_and_scales_the_face_exactly():
    assets, config = load_assets(), SynthConfig(image_size=96)
    params = sample_params(np.random.default_rng([3, 0]), assets, config)
    plain = render_params(params, 0, 3, config, assets)
    placed = render_params(params, 0, 3, config, assets, placement=(0.5, (20.0, 10.0)))
    np.testing.assert_allclose(placed.landmarks[:, :2], 0.5 * plain.landmarks[:, :2] + [20.0, 10.0], atol=1e-3)
    np.testing.assert_allclose(placed.landmarks[:, 2], 0.5 * plain.landmarks[:, 2], atol=1e-3)  # min z stays 0
    assert "camera" not in params  # the caller's params are reused frame after frame: never changed


def test_place_camera_identity():
    assets = load_assets()
    camera = make_camera(assets.mesh.vertices, assets.mesh.landmark_ids, {"yaw": 20, "pitch": 0, "roll": 0},
                         assets.model.centre, 64)
    same = place_camera(camera, 1.0, (0.0, 0.0))
    np.testing.assert_allclose(same.matrix, camera.matrix)
    assert same.z_shift == camera.z_shift


def test_frame_pose_still_then_turning():
    config = VideoConfig(still_frames=4, turn_frames=40, cycles=1.0, yaw_amplitude=70.0)
    still = [frame_pose(config, i) for i in range(4)]
    assert all(p == still[0] for p in still)  # a still head: same pose, place and size
    yaws = [frame_pose(config, i)[0]["yaw"] for i in range(4, 44)]
    assert max(yaws) == pytest.approx(70.0, abs=0.5) and min(yaws) == pytest.approx(-70.0, abs=0.5)


def test_frames_have_ground_truth_inside_the_frame():
    frames = list(render_frames(SMALL))
    assert len(frames) == SMALL.frames
    for sample in frames:
        assert sample.image.shape == (96, 96, 3) and sample.image.dtype == np.uint8
        xy = sample.landmarks[:, :2]
        assert (xy > 0).all() and (xy < 96).all()
    np.testing.assert_array_equal(frames[0].landmarks, frames[1].landmarks)  # still head: same landmarks ...
    assert not np.array_equal(frames[0].image, frames[1].image)  # ... fresh sensor noise
    assert not np.allclose(frames[2].landmarks, frames[4].landmarks, atol=1.0)  # the head turns


def test_write_video_and_read_ground_truth(tmp_path):
    import cv2

    out = tmp_path / "clip.mp4"
    write_video(out, SMALL)
    truth = read_ground_truth(out)
    assert truth["frames"] == SMALL.frames and truth["landmarks"].shape == (SMALL.frames, 68, 3)
    capture = cv2.VideoCapture(str(out))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == SMALL.frames
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "clip_gt.json"]  # no temporaries left


def test_bad_ground_truth_names_the_file_and_the_fix(tmp_path):
    from prnet.io import PrnetInputError

    video = tmp_path / "clip.mp4"
    with pytest.raises(PrnetInputError, match="clip_gt.json.*prnet data video"):
        read_ground_truth(video)
    (tmp_path / "clip_gt.json").write_text("{not json")
    with pytest.raises(PrnetInputError, match="unreadable"):
        read_ground_truth(video)
    (tmp_path / "clip_gt.json").write_text('{"schema": "something-else"}')
    with pytest.raises(PrnetInputError, match="not a prnet-synth-video"):
        read_ground_truth(video)


def test_cli_writes_video(tmp_path):
    from typer.testing import CliRunner

    from prnet.cli.app import app

    out = tmp_path / "v.mp4"
    result = CliRunner().invoke(app, ["data", "video", "--out", str(out), "--size", "80", "--still", "1", "--turn", "1"])
    assert result.exit_code == 0, result.output
    assert out.exists() and (tmp_path / "v_gt.json").exists()
    bad = CliRunner().invoke(app, ["data", "video", "--out", str(out), "--still", "0", "--turn", "0"])
    assert bad.exit_code == 2


def test_tracking_score_known_offsets():
    from scripts.measure.track_video import score

    rng = np.random.default_rng(0)
    truth = np.tile(rng.uniform(20, 80, (1, 68, 3)), (6, 1, 1))
    predicted = truth[..., :2] + [3.0, 4.0]  # 5 px off everywhere, no movement
    predicted[3:] += np.arange(3)[:, None, None] * np.array([0.0, 2.0])  # turn frames drift; still part steady
    predicted[5] = np.nan  # a frame without a face
    result = score(predicted, truth, still=3)
    from prnet.metrics import landmark_box_size

    box = landmark_box_size(truth[:1])[0]
    assert result["nme_still"] == pytest.approx(500 / box)
    assert result["jitter_px"] == pytest.approx(0.0)
    assert result["missed_frames"] == 1
    moving = predicted.copy()
    moving[1] += [1.0, 0.0]
    assert score(moving, truth, still=3)["jitter_px"] == pytest.approx(1.0)  # 0->1 moves 1 px, 1->2 moves back
