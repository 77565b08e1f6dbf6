"""Video tracking health (prnet.predict.track): each degradation rule on hand-made landmarks, detector matching,
and a video through predict_video_file where the track slips onto one cheek and the detector takes over."""

import json

import cv2
import numpy as np
import pytest

from prnet.geometry.crop import box_from_landmarks
from prnet.predict.detect import Face
from prnet.predict.io import PredictOptions, predict_video_file
from prnet.predict.track import (Track, TrackConfig, detection_reason, follow, merge_detections, square_iou,
                                 track_problem)
from tests.predict_fixtures import disk_layout

FRAME = (480, 640)  # height, width


def face_points(center, side, seed=0):
    """68 landmarks (68, 3) whose PRNet crop (box_from_landmarks) is exactly (center, side)."""
    half = side / 1.5 / 2
    rng = np.random.default_rng(seed)
    corners = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], np.float64)
    unit = np.vstack([corners, rng.uniform(-1, 1, (64, 2))])
    points = np.asarray(center, np.float64) + unit * half
    return np.hstack([points, np.zeros((68, 1))]).astype(np.float32)


def box(center, side):
    return np.asarray(center, np.float64), float(side)


def problem(points, previous, anchor, frame=FRAME):
    return follow([Track(previous, anchor)], [points], frame)[0].problem


def test_face_points_have_the_asked_crop():
    center, side = box_from_landmarks(face_points((300, 200), 120)[:, :2])
    assert np.allclose(center, (300, 200), atol=1e-4) and side == pytest.approx(120, rel=1e-5)


def test_healthy_track_stays_tracked_and_follows_the_landmarks():
    anchor = box((300, 200), 120)
    moved = face_points((310, 205), 124)  # 10 px and 3 % in one frame: an ordinary head movement
    [track] = follow([Track(anchor, anchor)], [moved], FRAME)
    assert track.problem is None and track.anchor is anchor
    assert np.allclose(track.box[0], (310, 205), atol=1e-3) and track.box[1] == pytest.approx(124, rel=1e-5)
    assert detection_reason([track], index=5, frames_since_detection=5, redetect_every=15) is None


@pytest.mark.parametrize("ratio, expected", [(0.75, "shrink"), (0.85, None), (1.2, None), (1.3, "grow")])
def test_crop_side_jumping_in_one_frame(ratio, expected):
    anchor = box((300, 200), 120)
    assert problem(face_points((300, 200), 120 * ratio), anchor, anchor) == expected


@pytest.mark.parametrize("step, failing_frame", [(0.9, 5), (1.15, 4)])
def test_slow_drift_in_size_is_caught_against_the_detection(step, failing_frame):
    """Each frame passes the one-frame test; the track is stopped once it is outside [0.6, 1.6] of the detection."""
    anchor = box((300, 200), 120)
    tracks = [Track(anchor, anchor)]
    for frame in range(1, 10):
        tracks = follow(tracks, [face_points((300, 200), 120 * step**frame, seed=frame)], FRAME)
        if tracks[0].problem:
            break
    assert tracks[0].problem == "scale" and frame == failing_frame


@pytest.mark.parametrize("shift, expected", [(0.3, None), (0.4, "drift")])
def test_landmarks_leaving_the_detection(shift, expected):
    """The landmark box centre moved `shift` x the detection's crop side away from it (the crop followed)."""
    anchor = box((300, 200), 120)
    center = (300 + shift * 120, 200)
    previous = box((300 + (shift - 0.05) * 120, 200), 120)
    assert problem(face_points(center, 120), previous, anchor) == expected


def test_landmarks_leaving_the_frame():
    anchor = box((600, 200), 120)
    assert problem(face_points((600, 200), 120), anchor, anchor) is None
    assert problem(face_points((660, 200), 120), anchor, anchor) == "outside"  # 3/4 of it past the right edge
    assert problem(face_points((600, 200), 120), anchor, anchor, frame=(480, 560)) == "outside"


def test_nonfinite_landmarks_keep_the_old_crop():
    anchor = box((300, 200), 120)
    points = face_points((300, 200), 120)
    points[7, 1] = np.nan
    [track] = follow([Track(anchor, anchor)], [points], FRAME)
    assert track.problem == "nonfinite" and track.box is anchor
    assert track_problem(face_points((300, 200), 120), None, anchor, anchor, FRAME) == "nonfinite"


def test_collapsed_landmarks():
    anchor = box((300, 200), 120)
    points = face_points((270, 210), 6)  # all 68 points within 4 px: the spread is gone
    assert problem(points, anchor, anchor) == "collapse"
    lower_floor = TrackConfig(min_side_px=4)  # below the floor it is still a 20x shrink
    assert track_problem(points, box((270, 210), 6), anchor, anchor, FRAME, lower_floor) == "shrink"


def test_detection_reasons():
    healthy = Track(box((300, 200), 120), box((300, 200), 120))
    degraded = [Track(healthy.box, healthy.anchor, p) for p in ("shrink", "drift", "shrink")]
    assert detection_reason([], 0, 0, 15) == "first"
    assert detection_reason([], 3, 3, 15) == "lost"
    assert detection_reason([healthy] + degraded, 4, 4, 15) == "degraded:shrink,drift"
    assert detection_reason([healthy], 15, 15, 15) == "periodic"
    assert detection_reason([healthy], 14, 14, 15) is None
    assert detection_reason([healthy], 40, 40, None) is None  # user boxes: never periodic


def test_square_iou():
    a = box((0, 0), 10)
    assert square_iou(a, a) == pytest.approx(1.0)
    assert square_iou(a, box((5, 0), 10)) == pytest.approx(50 / 150)
    assert square_iou(a, box((20, 0), 10)) == 0.0


def test_merge_keeps_face_order_and_drops_stale_tracks():
    left, right, far = box((150, 200), 100), box((450, 200), 140), box((300, 400), 60)
    tracks = [Track(left, left), Track(right, right)]
    # the detector lists the larger face first; each detection goes back to its own face, the new one at the end
    merged = merge_detections(tracks, [box((455, 205), 140), box((148, 198), 100), far])
    assert [t.box[0].tolist() for t in merged] == [[148, 198], [455, 205], [300, 400]]
    assert all(t.box is t.anchor and t.problem is None for t in merged)
    assert len(merge_detections(tracks, [far, right, left], max_faces=2)) == 2
    # nothing found: the healthy track is kept as it was, the degraded one is dropped
    kept = merge_detections([Track(left, left), Track(right, right, "drift")], [])
    assert len(kept) == 1 and kept[0].box is left


def test_merge_matches_a_collapsed_track_by_its_last_detection():
    """A track shrunk onto one cheek barely overlaps the new detection; its last detection does."""
    left, right = box((150, 200), 100), box((450, 200), 140)
    cheek = box((120, 215), 20)
    tracks = [Track(cheek, left, "shrink"), Track(right, right)]
    merged = merge_detections(tracks, [box((452, 200), 140), box((160, 200), 100)])
    assert [t.box[0].tolist() for t in merged] == [[160, 200], [452, 200]]


# A video through predict_video_file: a white square "face" that jumps right on frame 4 (a quick head turn), a
# detector that boxes it and a "model" that frames the square it sees, or, when the square is cut by its crop's
# border, collapses onto its visible left cheek: the feedback loop of issue 16 (crop -> worse landmarks -> tighter
# crop), which without a fallback never leaves the cheek.
SIZE, BLOB, JUMP_FRAME, FRAMES = 64, 40, 4, 10


def blob_center(frame):
    return (44, 48) if frame < JUMP_FRAME else (70, 48)


def write_blob_video(path):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (128, 96))
    for frame in range(FRAMES):
        image = np.zeros((96, 128, 3), np.uint8)
        (cx, cy), half = blob_center(frame), BLOB // 2
        image[cy - half: cy + half, cx - half: cx + half] = 255
        writer.write(image)
    writer.release()
    return path


def bright_box(image, threshold):
    rows, cols = np.nonzero(image[..., 0] > threshold)
    return np.array([cols.min(), rows.min(), cols.max(), rows.max()], np.float64) if rows.size else None


class CheekRunner:
    """Position maps (crop pixels) affine in (u, v), so the 68 landmarks span exactly the box it chooses."""

    name, input_size = "cheek", SIZE

    def __init__(self):
        self.layout = disk_layout(SIZE)

    def target_box(self, crop):
        found = bright_box(crop, 0.5)
        if found is None:
            return np.array([30.0, 30.0, 31.0, 31.0])
        left, top, right, bottom = found
        if min(left, top) > 0 and max(right, bottom) < SIZE - 1:
            return found
        width, height = right - left, bottom - top  # a cut face: the landmarks gather on its left cheek
        return np.array([left, top + 0.4 * height, left + 0.25 * width, top + 0.7 * height])

    def __call__(self, crops):
        uv = self.layout.landmark_uv
        lo, hi = uv.min(0), uv.max(0)
        vv, uu = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
        maps = []
        for crop in crops:
            x0, y0, x1, y1 = self.target_box(crop)
            x = x0 + (uu - lo[0]) * (x1 - x0) / (hi[0] - lo[0])
            y = y0 + (vv - lo[1]) * (y1 - y0) / (hi[1] - lo[1])
            maps.append(np.stack([x, y, 10 + 0.1 * uu], -1))
        return np.stack(maps).astype(np.float32)


def run_blob_video(tmp_path, monkeypatch, finds_after_first=True):
    calls = []

    def fake_detect(image, min_score=0.5):
        calls.append(len(calls))
        found = bright_box(image, 128)
        if found is None or (len(calls) > 1 and not finds_after_first):
            return []
        return [Face(box=found, score=0.99, box_scale=1.5, box_shift=0.0)]  # crop = PRNet's rule on the square

    monkeypatch.setattr("prnet.predict.io.detect_faces", fake_detect)
    options = PredictOptions(redetect_every=100, write_pictures=False)
    summary = predict_video_file(write_blob_video(tmp_path / "turn.mp4"), CheekRunner(), tmp_path, options, "turn")
    frames = json.loads((tmp_path / "turn_landmarks.json").read_text())["frames"]
    return summary, frames, len(calls)


def landmark_box(face):
    points = np.array(face["landmarks_2d"])
    return points.min(0), points.max(0)


def test_video_track_collapsing_onto_a_cheek_falls_back_to_the_detector(tmp_path, monkeypatch):
    summary, frames, detector_calls = run_blob_video(tmp_path, monkeypatch)
    reasons = [f["reason"] for f in frames]
    assert reasons == ["first", None, None, None, None, "degraded:shrink", None, None, None, None]
    assert [f["detected"] for f in frames] == [r is not None for r in reasons]
    assert detector_calls == 2 and summary["redetections"] == 1
    assert summary["redetect_reasons"] == {"degraded:shrink": 1}
    lo, hi = landmark_box(frames[JUMP_FRAME]["faces"][0])
    assert (hi - lo).max() < 0.5 * BLOB  # the jump frame itself is on the cheek (found one frame late)
    for frame in frames[JUMP_FRAME + 1:]:  # back on the whole face, and it stays there
        lo, hi = landmark_box(frame["faces"][0])
        assert np.allclose((lo + hi) / 2, blob_center(frame["frame"]), atol=1.5)
        assert np.allclose(hi - lo, BLOB - 1, atol=2)


def test_video_degraded_face_the_detector_misses_is_dropped(tmp_path, monkeypatch):
    summary, frames, detector_calls = run_blob_video(tmp_path, monkeypatch, finds_after_first=False)
    assert [len(f["faces"]) for f in frames] == [1] * (JUMP_FRAME + 1) + [0] * (FRAMES - JUMP_FRAME - 1)
    lost = ["lost"] * (FRAMES - JUMP_FRAME - 2)  # nothing tracked: the detector runs on every frame, as before
    assert [f["reason"] for f in frames[JUMP_FRAME:]] == [None, "degraded:shrink"] + lost
    assert detector_calls == 1 + FRAMES - JUMP_FRAME - 1 and summary["redetections"] == FRAMES - JUMP_FRAME - 1
