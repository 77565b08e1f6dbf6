"""Camera and compression degradations of the final crop: resolution, blur, colour, noise, JPEG.

Applied last, on the float32 RGB crop in [0, 1]; the position map is unaffected (a degraded image still
shows the same face geometry). The source resolution comes from the pose's `source_face_px`: a face that
was small in its photo is downsampled to that size and back up, as PRNet's crops of small faces are.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def sample_degradation(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "blur_sigma": float(rng.uniform(0.3, 1.6)) if rng.random() < 0.3 else 0.0,
        "motion_px": float(rng.uniform(2, 9)) if rng.random() < 0.12 else 0.0,
        "motion_angle": float(rng.uniform(0, 180)),
        "brightness": float(rng.normal(0, 0.06)),
        "contrast": float(np.exp(rng.normal(0, 0.15))),
        "saturation": float(np.clip(rng.normal(1.0, 0.25), 0.2, 1.6)),
        "channel_gain": np.exp(rng.normal(0, 0.05, 3)).tolist(),  # white balance
        "gamma": float(np.exp(rng.normal(0, 0.12))),
        "grayscale": bool(rng.random() < 0.05),
        "noise_sigma": float(rng.uniform(0.0, 0.04)) if rng.random() < 0.6 else 0.0,
        "jpeg_quality": int(rng.integers(25, 92)) if rng.random() < 0.5 else 0,
        "seed": int(rng.integers(2**31)),
    }


def degrade(image: np.ndarray, spec: dict[str, Any], source_face_px: float) -> np.ndarray:
    """float32 RGB [0, 1] (S, S, 3) -> uint8 RGB."""
    import cv2

    rng = np.random.default_rng(spec["seed"])
    size = image.shape[0]
    if source_face_px < size * 0.9:  # the face was small in its photo: lose the detail it never had
        small = max(int(round(source_face_px)), 16)
        image = cv2.resize(image, (small, small), interpolation=cv2.INTER_AREA)
        method = cv2.INTER_LINEAR if rng.random() < 0.5 else cv2.INTER_CUBIC
        image = cv2.resize(image, (size, size), interpolation=method)
    if spec["blur_sigma"]:
        image = cv2.GaussianBlur(image, (0, 0), spec["blur_sigma"])
    if spec["motion_px"]:
        length = int(np.ceil(spec["motion_px"])) | 1
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2] = 1.0
        rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), spec["motion_angle"], 1.0)
        kernel = cv2.warpAffine(kernel, rotation, (length, length))
        image = cv2.filter2D(image, -1, kernel / max(float(kernel.sum()), 1e-6))
    image = image * np.asarray(spec["channel_gain"], dtype=np.float32)
    grey = image.mean(axis=2, keepdims=True)
    saturation = 0.0 if spec["grayscale"] else spec["saturation"]
    image = grey + (image - grey) * saturation
    image = (image - 0.5) * spec["contrast"] + 0.5 + spec["brightness"]
    image = np.clip(image, 0.0, 1.0) ** spec["gamma"]
    if spec["noise_sigma"]:
        shot = np.sqrt(np.clip(image, 0, 1) + 0.02)  # signal-dependent, like a real sensor
        image = image + rng.standard_normal(image.shape, dtype=np.float32) * np.float32(spec["noise_sigma"]) * shot
    out = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if spec["jpeg_quality"]:
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, spec["jpeg_quality"]])
        if ok:
            out = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
    return out
