"""Is the synthetic data (and the detector crop, and a model) mirror-symmetric in yaw? Renders N samples at yaw +Y
and the same N at yaw -Y (same seed and index, so the same identity, expression, appearance, background,
occluders; roll and the light directions' x mirrored too), then compares what should mirror:

    landmarks   mean |GT landmark at +Y, mirrored (x -> S-1-x, iBUG left/right ids swapped)  -  GT at -Y| per id
    visibility  landmarks whose surface normal faces away from the camera, per side
    silhouette  x-centroid of the rendered head (face + skull/neck/hair proxies) minus the crop centre, mirrored
    brightness  mean image intensity of the half of the crop the face turns towards vs away from
    detector    yuface on the crop padded by 128 px: found, shift_x = (GT crop centre - box centre) / s (sign
                should flip with yaw), shift_y, scale (prnet/predict/detect.py's calibration quantities)
    model       68-point 2D NME of --model (default: the shipped model) with the GT crop (the sample's own crop)

    python -m scripts.measure.yaw_symmetry --n 40 --yaw 70 [--seed 4242] [--model best.pt] [--no-model]

Writes nothing; prints one table. Keep N small (2 N renders).
"""

from __future__ import annotations

import argparse
import warnings

import cv2
import numpy as np

from prnet.data.synth.shape import MIRROR_68 as MIRROR  # iBUG-68 left/right partner of every landmark


def model_landmarks(runner, image: np.ndarray) -> np.ndarray:
    """The model's 68 landmarks (68, 3) on a render, in the render's pixels: the render (S0 px) is resized to the
    model's input size (a 128 px model on 256 px renders) and the points mapped back (pixel centres at integers)."""
    from prnet.predict.pipeline import read_posmap

    k = runner.input_size / image.shape[0]
    if k != 1:
        image = cv2.resize(image, (runner.input_size,) * 2, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    landmarks = read_posmap(runner(image[None].astype(np.float32) / 255.0)[0], runner.layout)[0].astype(np.float64)
    landmarks[:, :2] = (landmarks[:, :2] + 0.5) / k - 0.5
    landmarks[:, 2] /= k
    return landmarks


def render_pair(index: int, seed: int, yaw: float, config, assets):
    """(sample at +yaw, sample at -yaw, silhouette masks) with everything else identical or mirrored."""
    import prnet.data.synth.render as render

    original_pose, original_light, original_composite = render.sample_pose, render.sample_lighting, render._composite
    out, masks = [], []
    try:
        for sign in (1.0, -1.0):
            def pose(rng, sign=sign):
                p = original_pose(rng)
                p["yaw"], p["roll"] = sign * yaw, sign * p["roll"]
                return p

            def light(rng, sign=sign):
                values = original_light(rng)
                for key in ("key_dir", "fill_dir"):
                    values[key] = [sign * values[key][0]] + list(values[key][1:])
                return values

            def composite(foreground, mask, background):
                masks.append(mask.copy())
                return original_composite(foreground, mask, background)

            render.sample_pose, render.sample_lighting, render._composite = pose, light, composite
            out.append(render.render_sample(index, seed, config, assets))
    finally:
        render.sample_pose, render.sample_lighting, render._composite = original_pose, original_light, original_composite
    return out[0], out[1], masks


def mirror_points(points: np.ndarray, size: int) -> np.ndarray:
    from prnet.geometry.mirror import flip_points

    return flip_points(np.asarray(points, dtype=np.float64)[MIRROR], size)


def back_facing(sample, assets) -> np.ndarray:
    """(68,) bool: the landmark vertex's normal points away from the camera (self-occluded at this pose)."""
    from prnet.data.synth.kernels import vertex_normals_fast

    verts = assets.model.deform(sample.params["shape"])[: assets.model.n_mesh]
    normals = vertex_normals_fast(verts.astype(np.float32), assets.mesh.triangles)[assets.mesh.landmark_ids]
    rotation = np.asarray(sample.params["camera"]["rotation"])
    return (normals @ rotation.T)[:, 2] < 0


def detector_row(image: np.ndarray, landmarks: np.ndarray, pad: int = 128) -> dict:
    from prnet.evaluate import matching_detection
    from prnet.geometry.crop import box_from_landmarks
    from prnet.predict.detect import detect_faces

    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    points = landmarks[:, :2] + pad
    face = matching_detection(detect_faces(padded), points)
    if face is None:
        return {"found": False}
    box = face.box
    s = (box[2] - box[0] + box[3] - box[1]) / 2
    centre, side = box_from_landmarks(points)
    return {"found": True, "scale": side / s, "shift_x": (centre[0] - (box[0] + box[2]) / 2) / s,
            "shift_y": (centre[1] - (box[1] + box[3]) / 2) / s, "face": face}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--yaw", type=float, default=70.0)
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--model", default=None)
    parser.add_argument("--no-model", action="store_true")
    parser.add_argument("--clean", action="store_true", help="no occluders, no degradation")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    from prnet.data.synth.render import SynthConfig, load_assets
    from prnet.metrics import nme_68, nme_inner_51

    config = SynthConfig(occlusion_rate=0.0, degrade=False) if args.clean else SynthConfig()
    assets = load_assets()
    size = config.image_size
    runner = None
    if not args.no_model:
        from pathlib import Path

        from prnet.cli.commands.predict import open_runner

        runner = open_runner(Path(args.model) if args.model else None, "cpu")
    rows = {1: [], -1: []}
    label_diff = []
    for index in range(args.n):
        plus, minus, masks = render_pair(index, args.seed, args.yaw, config, assets)
        label_diff.append(np.linalg.norm(mirror_points(plus.landmarks[:, :2], size) - minus.landmarks[:, :2], axis=1)
                          / float(np.sqrt(np.prod(np.ptp(minus.landmarks[:, :2], axis=0)))))
        for sign, sample, mask in ((1, plus, masks[0]), (-1, minus, masks[1])):
            lm = sample.landmarks[:, :2].astype(np.float64)
            xs = np.nonzero(mask)[1]
            gray = sample.image.astype(np.float64).mean(-1)
            towards = gray[:, size // 2:] if sign > 0 else gray[:, : size // 2]  # yaw > 0 faces the image right
            away = gray[:, : size // 2] if sign > 0 else gray[:, size // 2:]
            row = {"back_facing": int(back_facing(sample, assets).sum()),
                   "silhouette_dx": sign * (xs.mean() - (size - 1) / 2) / size,  # + = towards the facing side
                   "bright_towards_minus_away": towards.mean() - away.mean(), **detector_row(sample.image, lm)}
            if runner is not None:
                landmarks = model_landmarks(runner, sample.image)
                row["nme"] = 100 * float(nme_68(landmarks[None, :, :2], lm[None])[0])
                row["nme_inner"] = 100 * float(nme_inner_51(landmarks[None, :, :2], lm[None])[0])
                # the model on the mirrored image, mirrored back: a mirror-equivariant model gives the same points
                back = mirror_points(model_landmarks(runner, np.ascontiguousarray(sample.image[:, ::-1]))[:, :2], size)
                row["nme_of_flipped_input"] = 100 * float(nme_68(back[None], lm[None])[0])
                row["flip_inconsistency"] = 100 * float(nme_68(back[None], landmarks[None, :, :2])[0])
                if row["found"]:  # the `prnet predict` pipeline: detector crop + refine on the padded image
                    from prnet.predict.pipeline import reconstruct_faces

                    pad = 128
                    padded = cv2.copyMakeBorder(sample.image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
                    fit = reconstruct_faces(padded, runner, faces=[row.pop("face")], refine=True)[0]
                    row["nme_detector_refine"] = 100 * float(nme_68(fit.landmarks[None, :, :2], lm[None] + pad)[0])
            row.pop("face", None)
            rows[sign].append(row)
    label_diff = 100 * np.array(label_diff)  # (n, 68) % of the GT box
    print(f"{args.n} pairs, yaw +-{args.yaw:g}, seed {args.seed}, {'clean' if args.clean else 'full'} renders")
    print(f"GT landmarks, +yaw mirrored vs -yaw: mean {label_diff.mean():.2f} % of the box, worst ids "
          + ", ".join(f"{i}: {label_diff[:, i].mean():.2f}" for i in np.argsort(-label_diff.mean(0))[:8]))
    keys = ["back_facing", "silhouette_dx", "bright_towards_minus_away", "scale", "shift_x", "shift_y", "nme", "nme_inner",
            "nme_of_flipped_input", "flip_inconsistency", "nme_detector_refine"]
    print(f"{'quantity':28s} {'yaw +' + format(args.yaw, 'g'):>14s} {'yaw -' + format(args.yaw, 'g'):>14s}")
    for sign in (1, -1):
        found = sum(r["found"] for r in rows[sign])
        rows[sign + 10] = found  # type: ignore[index]
    print(f"{'detected':28s} {rows[11]:>14d} {rows[9]:>14d}")
    for key in keys:
        cells = []
        for sign in (1, -1):
            values = np.array([r[key] for r in rows[sign] if key in r], float)
            cells.append(f"{values.mean():8.3f}+-{values.std():.3f}" if values.size else "-")
        print(f"{key:28s} {cells[0]:>14s} {cells[1]:>14s}")


if __name__ == "__main__":
    main()
