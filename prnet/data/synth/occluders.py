"""Occluders drawn over the rendered face in the crop frame: hands, bars, objects, glasses, masks, hair strands.

They only change the image: the position map keeps the whole face (the model must infer what is hidden,
as PRNet's occlusion augmentation teaches it). Each is placed from the 2D landmarks of the sample, drawn with
anti-aliased OpenCV primitives and shaded with a linear gradient so it does not look flat.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

OCCLUDER_WEIGHTS = {"hand": 0.3, "bar": 0.15, "object": 0.2, "glasses": 0.15, "mask": 0.08, "strands": 0.12}


def sample_occluders(rng: np.random.Generator, rate: float = 0.45) -> list[dict[str, Any]]:
    if rng.random() >= rate:
        return []
    names = list(OCCLUDER_WEIGHTS)
    probs = np.array([OCCLUDER_WEIGHTS[n] for n in names])
    count = 1 if rng.random() < 0.75 else 2
    return [{"kind": names[rng.choice(len(names), p=probs / probs.sum())], "seed": int(rng.integers(2**31))}
            for _ in range(count)]


def _shaded_fill(rng: np.random.Generator, size: int, colour: np.ndarray) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, 2 * np.pi)
    ramp = 0.65 + 0.5 * ((np.cos(angle) * xx + np.sin(angle) * yy) % 1.0)
    return np.clip(colour[None, None] * ramp[..., None], 0, 1).astype(np.float32)


def _blend(image: np.ndarray, mask: np.ndarray, fill: np.ndarray, opacity: float = 1.0) -> np.ndarray:
    alpha = (mask.astype(np.float32) / 255.0 * opacity)[..., None]
    return image * (1 - alpha) + fill * alpha


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]) * 16)), int(round(float(p[1]) * 16))  # 4 fractional bits (shift=4)


def hand(rng, image, lm2d, face_size):
    import cv2

    size = image.shape[0]
    target = lm2d[rng.choice([8, 57, 30, 33, 2, 14, 36, 45, 5, 11])] + rng.normal(0, 0.08 * face_size, 2)
    scale = face_size * rng.uniform(0.35, 0.6)
    angle = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    mask = np.zeros((size, size), np.uint8)
    palm_centre = target + rot @ np.array([0.0, 0.55]) * scale
    cv2.ellipse(mask, _pt(palm_centre), (int(scale * 0.42 * 16), int(scale * 0.5 * 16)),
                float(np.degrees(angle)), 0, 360, 255, -1, cv2.LINE_AA, 4)
    for k, (dx, length) in enumerate(((-0.3, 0.75), (-0.1, 0.85), (0.1, 0.8), (0.3, 0.65))):
        base = palm_centre + rot @ np.array([dx, -0.35]) * scale
        bend = rng.normal(0, 0.1)
        tip = base + rot @ np.array([dx * 0.4 + bend, -length]) * scale
        cv2.line(mask, _pt(base), _pt(tip), 255, max(int(scale * 0.17), 2), cv2.LINE_AA, 4)
    thumb_base = palm_centre + rot @ np.array([0.4 * rng.choice([-1, 1]), 0.0]) * scale
    cv2.line(mask, _pt(thumb_base), _pt(thumb_base + rot @ np.array([0.25, -0.5]) * scale), 255,
             max(int(scale * 0.2), 2), cv2.LINE_AA, 4)
    tone = np.array([0.8, 0.6, 0.5]) * rng.uniform(0.2, 1.0) * np.exp(rng.normal(0, 0.06, 3))
    if rng.random() < 0.5:  # the subject's own hand: the skin colour around the target landmark
        x, y = np.clip(np.round(target).astype(int), 0, size - 1)
        tone = image[y, x].astype(np.float64) * rng.uniform(0.85, 1.1)
    return _blend(image, cv2.GaussianBlur(mask, (3, 3), 0), _shaded_fill(rng, size, tone))


def bar(rng, image, lm2d, face_size):
    import cv2

    size = image.shape[0]
    centre = lm2d[rng.integers(68)] + rng.normal(0, 0.1 * face_size, 2)
    angle = rng.uniform(0, np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)]) * size
    mask = np.zeros((size, size), np.uint8)
    thickness = max(int(face_size * rng.uniform(0.05, 0.2)), 2)
    cv2.line(mask, _pt(centre - direction), _pt(centre + direction * rng.uniform(0.1, 1.0)), 255, thickness,
             cv2.LINE_AA, 4)
    colour = rng.uniform(0, 1, 3)
    return _blend(image, mask, _shaded_fill(rng, size, colour))


def obj(rng, image, lm2d, face_size):
    import cv2

    from prnet.data.synth.background import fractal_noise, photo_crop

    size = image.shape[0]
    centre = lm2d[rng.integers(68)] + rng.normal(0, 0.15 * face_size, 2)
    mask = np.zeros((size, size), np.uint8)
    if rng.random() < 0.5:
        axes = (rng.uniform(0.12, 0.4, 2) * face_size * 16).astype(int)
        cv2.ellipse(mask, _pt(centre), tuple(int(a) for a in axes), rng.uniform(0, 180), 0, 360, 255, -1,
                    cv2.LINE_AA, 4)
    else:
        points = centre + rng.normal(0, 0.22 * face_size, (int(rng.integers(3, 8)), 2))
        hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2)
        cv2.fillPoly(mask, [(hull * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    texture = photo_crop(rng, size) if rng.random() < 0.6 else fractal_noise(rng, size)
    return _blend(image, mask, texture)


def glasses(rng, image, lm2d, face_size):
    import cv2

    size = image.shape[0]
    mask_frame = np.zeros((size, size), np.uint8)
    mask_lens = np.zeros((size, size), np.uint8)
    thickness = max(int(face_size * rng.uniform(0.012, 0.04)), 1)
    centres = []
    for ids in (range(36, 42), range(42, 48)):
        eye = lm2d[list(ids)]
        centre = eye.mean(axis=0) + np.array([0, 0.02 * face_size])
        width = max(np.ptp(eye[:, 0]) * rng.uniform(0.8, 1.0), 2.0)
        axes = (int(max(width, face_size * 0.12) * 16), int(face_size * rng.uniform(0.08, 0.12) * 16))
        tilt = float(np.degrees(np.arctan2(*(lm2d[45] - lm2d[36])[::-1])))
        cv2.ellipse(mask_lens, _pt(centre), axes, tilt, 0, 360, 255, -1, cv2.LINE_AA, 4)
        cv2.ellipse(mask_frame, _pt(centre), axes, tilt, 0, 360, 255, thickness, cv2.LINE_AA, 4)
        centres.append(centre)
    cv2.line(mask_frame, _pt(centres[0]), _pt(centres[1]), 255, thickness, cv2.LINE_AA, 4)
    for centre, ear in ((centres[0], lm2d[0]), (centres[1], lm2d[16])):
        cv2.line(mask_frame, _pt(centre), _pt(ear), 255, thickness, cv2.LINE_AA, 4)
    frame_colour = rng.uniform(0, 0.5, 3) if rng.random() < 0.7 else rng.uniform(0, 1, 3)
    tint = rng.uniform(0, 0.3, 3)
    out = _blend(image, mask_lens, np.broadcast_to(tint, image.shape), rng.uniform(0.1, 0.9))
    return _blend(out, mask_frame, _shaded_fill(rng, size, frame_colour))


def face_mask(rng, image, lm2d, face_size):
    import cv2

    size = image.shape[0]
    nose = lm2d[29]
    points = np.vstack([lm2d[2:15], (lm2d[14] + nose) / 2, nose, (lm2d[2] + nose) / 2])  # nose bridge to chin
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [(points * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    colour = [np.array([0.75, 0.85, 0.95]), np.array([0.95, 0.95, 0.95]), np.array([0.1, 0.1, 0.12]),
              rng.uniform(0, 1, 3)][rng.integers(4)]
    return _blend(image, mask, _shaded_fill(rng, size, colour))


def strands(rng, image, lm2d, face_size):
    import cv2

    size = image.shape[0]
    mask = np.zeros((size, size), np.uint8)
    start = lm2d[rng.choice([19, 24, 27])] - np.array([0, 0.3 * face_size])
    for _ in range(int(rng.integers(3, 12))):
        p0 = start + rng.normal(0, 0.12 * face_size, 2)
        p1 = p0 + np.array([rng.normal(0, 0.2), rng.uniform(0.2, 0.6)]) * face_size
        p2 = p1 + np.array([rng.normal(0, 0.2), rng.uniform(0.0, 0.3)]) * face_size
        t = np.linspace(0, 1, 12)[:, None]
        curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
        cv2.polylines(mask, [(curve * 16).astype(np.int32)], False, 255, max(int(face_size * 0.02), 1),
                      cv2.LINE_AA, 4)
    colour = rng.uniform(0.0, 0.35, 3)
    return _blend(image, mask, _shaded_fill(rng, size, colour))


OCCLUDERS: dict[str, Callable] = {
    "hand": hand, "bar": bar, "object": obj, "glasses": glasses, "mask": face_mask, "strands": strands,
}


def draw_occluders(image: np.ndarray, specs: list[dict[str, Any]], landmarks_2d: np.ndarray, yaw: float = 0.0
                   ) -> np.ndarray:
    """Draw every occluder in `specs` over a float32 RGB image, placed relative to (68, 2) crop landmarks.
    Glasses need both eyes in view: beyond 55 degrees of yaw an object is drawn instead."""
    face_size = float(np.ptp(landmarks_2d, axis=0).mean())
    for spec in specs:
        kind = "object" if spec["kind"] == "glasses" and abs(yaw) > 55 else spec["kind"]
        image = OCCLUDERS[kind](np.random.default_rng(spec["seed"]), image, landmarks_2d, face_size)
    return image.astype(np.float32)
