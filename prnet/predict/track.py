"""Face tracking for `prnet predict VIDEO`: when to trust a face's landmarks for the next frame's crop, and when
to fall back to the detector.

Between detections each face is cropped from its previous frame's landmarks (PRNet's ground-truth crop rule). That
loop feeds the model's errors back into its own input: a crop that slips off the face gives worse landmarks, a
tighter crop, and so on, until the track sits on one cheek (issue 16). Every frame, each face's new landmarks are
checked against its previous crop and against its last detection (`track_problem`); a face that fails any test
makes the next frame run the detector, whose boxes re-seed the tracks (`merge_detections`). The tests are a few
numpy operations on 68 points: a healthy track costs no extra detector or network pass.

Detector runs and their reasons (`detection_reason`): "first" (frame 0), "lost" (no face tracked), "degraded:RULE"
(a face failed RULE on the previous frame; several faces: the distinct rules joined by commas) and "periodic"
(`redetect_every` frames since the last run). Rules: "nonfinite", "collapse", "outside", "shrink", "grow",
"scale", "drift" (see TrackConfig).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prnet.geometry.crop import box_from_landmarks

Box = tuple[np.ndarray, float]  # square crop: (centre (2,), side), image pixels


@dataclass(frozen=True)
class TrackConfig:
    min_side_px: float = 8.0  # "collapse": a landmark crop this small holds no face (refined_box's own floor)
    min_inside: float = 0.5  # "outside": fewer landmarks than this fraction inside the frame: the face is leaving
    min_step: float = 0.8  # "shrink": crop side vs the previous frame's; a real face changes a few % a frame
    max_step: float = 1.25  # "grow": the same, growing
    min_scale: float = 0.6  # "scale": side vs the last detection's crop; a head turned to profile is ~0.8 of frontal
    max_scale: float = 1.6  # "scale": growing; past this the landmarks have spread beyond the detected face
    max_drift: float = 0.35  # "drift": landmark box centre off the detection's crop centre, fraction of its side
    min_match_iou: float = 0.3  # a detection re-seeds a track whose crop or last detection it overlaps this much


@dataclass(frozen=True)
class Track:
    """One tracked face: the crop for the next frame and what it is checked against."""

    box: Box  # crop for the next frame
    anchor: Box  # crop of the last detection matched to this face
    problem: str | None = None  # the rule its last landmarks failed (None: healthy, the box can be used)


def track_problem(landmarks: np.ndarray, box: Box | None, previous: Box, anchor: Box,
                  frame_size: tuple[int, int], config: TrackConfig = TrackConfig()) -> str | None:
    """The first rule a face's new landmarks (68, >=2) fail, or None. `box` is their crop (box_from_landmarks;
    None when they are not finite), `previous` the crop they came from, `anchor` the last detection's crop and
    `frame_size` (height, width)."""
    points = np.asarray(landmarks, dtype=np.float64)
    if box is None or not np.all(np.isfinite(points)):
        return "nonfinite"
    center, side = box
    if side < config.min_side_px:
        return "collapse"
    height, width = frame_size
    x, y = points[:, 0], points[:, 1]
    if np.mean((x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)) < config.min_inside:
        return "outside"
    step = side / previous[1]
    if step < config.min_step:
        return "shrink"
    if step > config.max_step:
        return "grow"
    if not config.min_scale <= side / anchor[1] <= config.max_scale:
        return "scale"
    if np.linalg.norm(np.asarray(center) - anchor[0]) > config.max_drift * anchor[1]:
        return "drift"
    return None


def follow(tracks: list[Track], landmarks: list[np.ndarray], frame_size: tuple[int, int],
           config: TrackConfig = TrackConfig()) -> list[Track]:
    """The tracks after a frame, from each face's landmarks (same order as `tracks`): the next crop is the
    landmark crop (what refined_box returns for landmarks that pass the rules; computed here directly because
    refined_box falls back to the old crop, hiding the collapse), with the rule it failed, if any."""
    updated = []
    for track, points in zip(tracks, landmarks):
        box = box_from_landmarks(points[:, :2]) if np.all(np.isfinite(points)) else None
        problem = track_problem(points, box, track.box, track.anchor, frame_size, config)
        updated.append(Track(box if box is not None else track.box, track.anchor, problem))
    return updated


def detection_reason(tracks: list[Track], index: int, frames_since_detection: int,
                     redetect_every: int | None) -> str | None:
    """Why frame `index` runs the detector, or None to crop every face from its track
    (`redetect_every` None: never periodically, e.g. user boxes)."""
    if index == 0:
        return "first"
    if not tracks:
        return "lost"
    problems = list(dict.fromkeys(t.problem for t in tracks if t.problem))  # distinct, in face order
    if problems:
        return "degraded:" + ",".join(problems)
    if redetect_every and frames_since_detection >= redetect_every:
        return "periodic"
    return None


def square_iou(a: Box, b: Box) -> float:
    """Intersection over union of two square crops."""
    (ca, sa), (cb, sb) = a, b
    overlap = np.clip(np.minimum(ca + sa / 2, cb + sb / 2) - np.maximum(ca - sa / 2, cb - sb / 2), 0, None)
    intersection = float(overlap.prod())
    union = sa * sa + sb * sb - intersection
    return intersection / union if union > 0 else 0.0


def merge_detections(tracks: list[Track], detections: list[Box], max_faces: int | None = None,
                     config: TrackConfig = TrackConfig()) -> list[Track]:
    """The tracks after a detector run. Each detection re-seeds the track it overlaps most (IoU with the track's
    crop or its last detection, best pair first), so faces keep their order; an unmatched track is kept only if
    healthy (no stale boxes); unmatched detections (largest first, as detected) become new faces at the end."""
    scores = np.array([[max(square_iou(t.box, d), square_iou(t.anchor, d)) for d in detections] for t in tracks])
    scores = scores.reshape(len(tracks), len(detections))
    matched: dict[int, int] = {}  # track -> detection
    while scores.size and scores.max() >= config.min_match_iou:
        i, j = np.unravel_index(np.argmax(scores), scores.shape)
        matched[int(i)] = int(j)
        scores[i, :], scores[:, j] = -1.0, -1.0
    kept = [Track(detections[matched[i]], detections[matched[i]]) if i in matched else track
            for i, track in enumerate(tracks) if i in matched or track.problem is None]
    new = [Track(d, d) for j, d in enumerate(detections) if j not in matched.values()]
    return (kept + new)[: max_faces or None]
