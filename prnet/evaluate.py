"""`prnet eval`: accuracy of any Runner on a dataset in the project's format, on AFLW2000-3D, or on annotated
photos (68-point iBUG .pts / menpo .ljson next to each image: the 300-W / iBUG / menpo layout).

Protocol (AFLW2000-3D, as PRNet / 3DDFA report it): the crop comes from the ground-truth landmarks (the
dataset's own crops; AFLW2000-3D: PRNet's 1.6 x landmark box, prnet.data.aflw2000), the model predicts a
position map, 68 landmarks are read from it, and
    NME = mean point error / sqrt(w * h) of the GT 2D landmark box          (prnet.metrics)
in 2D (x, y) and 3D (x, y, z; z centred per face), per |yaw| bin [0,30), [30,60), [60,90] and their balanced
mean. NME is invariant to the crop similarity, so it is measured in the crop frame. Dense NME (all face
pixels of the position map vs the ground-truth map) needs ground-truth maps in the runner's UV layout, i.e.
the project's format with the same layout; otherwise it is reported as null with the reason.

Annotated photos (prnet.data.ibug; format "photos"): the annotations are 2D, so only 2D NMEs are reported (the
3D entries are null with `nme_3d_note`). Each face is cropped from the face detector (`crop="detector"`, the
default: yuface, the detection that overlaps the GT landmark box most, then, with `refine`, the crop from the
first pass's landmarks, exactly as `prnet predict` does) or from the GT landmarks (`crop="gt"`: PRNet's
evaluation crop, 1.6 x the landmark box). Faces the detector misses are listed in `not_detected` and left out
of the means (`faces_total` counts them). Yaw is estimated from the 2D GT (prnet.predict.pose.head_pose_2d).

The 51 inner points (iBUG 17..67, no jaw) are reported beside the 68 (`nme_2d_inner`), normalized by the same
68-point GT box (prnet.metrics.nme_inner_51).

Report JSON (all NMEs in percent):
    {"model", "data", "format", "samples", "input_size", "layout", "z_alignment", "seconds",
     "nme_2d": {"mean", "median", "bins": {"[0,30)": {"count", "mean"}, ...}, "balanced_mean"},
     "nme_2d_inner": {same, 51 points},
     "nme_3d": {same} | null, "nme_3d_note": str | null, "dense_nme_3d": {same} | null, "dense_note": str | null,
     "ced_auc_2d@7%", "ced_auc_3d@7%" (null without 3D GT), "per_landmark_2d": [68], "per_landmark_3d": [68] | null,
     "yaw_source": {"dataset": n, "estimated": n}, "worst": [{"name", "nme_2d", "yaw"}] (10 worst),
     photos only: "crop", "faces_total", "detected", "not_detected": [{"name", "image"}],
       "images_without_annotation", "faces": [{"name", "image", "nme_2d", "nme_2d_inner", "yaw", "crop",
       "detector_score"}] (one row per evaluated face, NMEs in percent),
     "files": {"json", "ced_png", "per_sample_csv"}}
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from prnet import metrics
from prnet.io import PrnetInputError, atomic_path, write_bytes_atomic, write_json_atomic
from prnet.runner import Runner

CED_MAX_ERROR = 0.07  # 7 %, the range CED plots of the AFLW2000-3D literature use
PHOTO_CROPS = ("detector", "gt")


@dataclass
class EvalItem:
    name: str
    image: np.ndarray  # (S, S, 3) uint8 crop at the runner's input size
    landmarks: np.ndarray  # (68, 3) GT in the crop frame; (68, 2) for 2D-only annotations (photos)
    dense: np.ndarray | None  # (M, 3) GT dense points in the runner layout's face-pixel order, crop frame
    yaw: float | None  # degrees, from the dataset; None -> estimated from the GT landmarks
    info: dict | None = None  # photos: image path, crop kind, detector score (per-face rows of the report)


def dataset_format(root: Path) -> str:
    """'prnet' (manifest.json), 'aflw2000' (images + .mat files) or 'photos' (images + .pts / .ljson files)."""
    from prnet.data.ibug import is_annotated_folder

    if (root / "manifest.json").is_file():
        return "prnet"
    if root.is_dir() and any(root.rglob("*.mat")):
        return "aflw2000"
    if is_annotated_folder(root):
        return "photos"
    raise PrnetInputError(
        f"{root}: not a dataset prnet can evaluate on: expected a prnet dataset (manifest.json; make one with "
        "`prnet data synth`, `prnet data 300wlp` or `prnet data folder`), the AFLW2000-3D folder (images + .mat "
        "files) or annotated photos (images + 68-point iBUG .pts or menpo .ljson files, e.g. 300-W)"
    )


def _resize_crop(image: np.ndarray, points: np.ndarray | None, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Resize an S0 crop to `size`; points follow (pixel centres at integers: x' = (x + 0.5) k - 0.5, z' = z k)."""
    import cv2

    s0 = image.shape[0]
    if s0 == size:
        return image, points
    k = size / s0
    resized = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    if points is None:
        return resized, None
    from prnet.geometry.resample import rescale_points

    return resized, rescale_points(np.asarray(points, dtype=np.float64), k)


def params_yaw(params: dict) -> float | None:
    """Yaw in degrees recorded by a data source: synthetic {'yaw'} or {'pose': {'yaw'}} (degrees), 300W-LP
    {'pose': [pitch, yaw, roll, ...]} (3DDFA Pose_Para, radians)."""
    pose = params.get("pose")
    if isinstance(pose, dict) and "yaw" in pose:
        return float(pose["yaw"])
    if isinstance(pose, (list, tuple)) and len(pose) == 7:
        return float(np.degrees(pose[1]))
    if "yaw" in params:
        return float(params["yaw"])
    return None


def iter_prnet_dataset(root: Path, runner: Runner, limit: int | None) -> Iterator[EvalItem]:
    from prnet.data.format import list_samples, read_layout, read_manifest, read_sample

    manifest = read_manifest(root)
    same_layout = read_layout(root).layout_id == runner.layout.layout_id
    mask = runner.layout.face_mask
    for index in list_samples(root, manifest)[:limit]:
        sample = read_sample(root, index, manifest)
        dense = sample.posmap[mask] if same_layout and sample.posmap.shape[:2] == mask.shape else None
        image, landmarks = _resize_crop(sample.image, sample.landmarks, runner.input_size)
        if dense is not None:
            dense = _resize_crop(sample.image, dense, runner.input_size)[1]
        yield EvalItem(f"{index:06d}", image, landmarks, dense, params_yaw(sample.params))


def iter_aflw2000_dataset(root: Path, runner: Runner, limit: int | None) -> Iterator[EvalItem]:
    from prnet.data.aflw2000 import iter_aflw2000

    for record in iter_aflw2000(root, size=runner.input_size, limit=limit):
        yield EvalItem(record.name, record.crop_image(), record.landmarks_crop(), None, record.yaw_degrees)


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def matching_detection(faces: list, landmarks_2d: np.ndarray):
    """The detection of the annotated face: its box centre inside the GT landmark box, the largest overlap with
    that box; None when no detection qualifies (a face found elsewhere in the photo is another face)."""
    lo, hi = landmarks_2d[:, :2].min(0), landmarks_2d[:, :2].max(0)
    gt_box = np.concatenate([lo, hi])
    inside = [f for f in faces if lo[0] <= (f.box[0] + f.box[2]) / 2 <= hi[0] and lo[1] <= (f.box[1] + f.box[3]) / 2 <= hi[1]]
    return max(inside, key=lambda f: _box_iou(f.box, gt_box)) if inside else None


def iter_photo_dataset(root: Path, runner: Runner, limit: int | None, crop: str = "detector", refine: bool = True,
                       not_detected: list | None = None, unannotated: list | None = None) -> Iterator[EvalItem]:
    """Annotated photos (prnet.data.ibug): per face the crop (module docstring) at the runner's input size and
    the GT in that crop's frame. Faces the detector misses go to `not_detected` ({"name", "image"})."""
    from prnet.data.aflw2000 import AFLW_BOX_SCALE
    from prnet.data.ibug import list_annotated_faces
    from prnet.geometry.crop import box_from_landmarks, crop_matrix, transform_points
    from prnet.io import read_image_rgb
    from prnet.predict.detect import detect_faces
    from prnet.predict.pipeline import check_image, crop_image, reconstruct_faces, refined_box

    if crop not in PHOTO_CROPS:
        raise PrnetInputError(f"crop {crop!r}: choose one of {', '.join(PHOTO_CROPS)}")
    faces, n_unannotated = list_annotated_faces(root)
    if unannotated is not None:
        unannotated.append(n_unannotated)
    size = runner.input_size
    for face in faces[:limit]:
        image = check_image(read_image_rgb(face.image_path), str(face.image_path))
        gt = face.landmarks
        info = {"image": str(face.image_path), "crop": crop, "detector_score": None}
        if crop == "gt":
            box = box_from_landmarks(gt, AFLW_BOX_SCALE)
        else:
            found = matching_detection(detect_faces(image), gt)
            if found is None:
                if not_detected is not None:
                    not_detected.append({"name": face.name, "image": str(face.image_path)})
                continue
            box = found.crop_box()
            info["detector_score"] = round(float(found.score), 4)
            if refine:  # the second pass of `prnet predict`: PRNet's GT crop rule on the first pass's landmarks
                first = reconstruct_faces(image, runner, crop_boxes=[box], refine=False)[0]
                box = refined_box(first.landmarks, box)
                info["crop"] = "detector+refine"
        matrix = crop_matrix(box[0], box[1], size)
        yield EvalItem(face.name, crop_image(image, matrix, size), transform_points(gt, matrix), None, None, info)


def _summary(values: np.ndarray, yaws: np.ndarray) -> dict:
    percent = 100.0 * values
    binned = metrics.yaw_binned(percent, yaws)
    return {"mean": float(percent.mean()), "median": float(np.median(percent)), **binned}


def evaluate(
    runner: Runner,
    data: Path,
    limit: int | None = None,
    batch_size: int = 16,
    z_alignment: str = "mean",
    progress: Callable[[int], None] | None = None,
    crop: str = "detector",
    refine: bool = True,
) -> tuple[dict, dict]:
    """Run `runner` over the dataset at `data`; returns (report, per-sample arrays). `crop` and `refine` apply
    to annotated photos only (module docstring)."""
    from prnet.predict.pipeline import mean_shape_landmarks, read_posmap
    from prnet.predict.pose import head_pose, head_pose_2d

    data = Path(data)
    fmt = dataset_format(data)
    not_detected: list[dict] = []
    unannotated: list[int] = []
    if fmt == "photos":
        items = iter_photo_dataset(data, runner, limit, crop, refine, not_detected, unannotated)
    else:
        items = (iter_prnet_dataset if fmt == "prnet" else iter_aflw2000_dataset)(data, runner, limit)
    names, gts, preds, yaws, yaw_from_data, dense_pred, dense_gt, infos = [], [], [], [], [], [], [], []
    reference = mean_shape_landmarks()
    start = time.perf_counter()
    batch: list[EvalItem] = []

    def flush() -> None:
        maps = runner(np.stack([item.image for item in batch]).astype(np.float32) / 255.0)
        for item, posmap in zip(batch, maps):
            landmarks, vertices = read_posmap(posmap, runner.layout)
            names.append(item.name)
            gts.append(item.landmarks)
            preds.append(landmarks)
            yaw_from_data.append(item.yaw is not None)
            if item.yaw is not None:
                yaws.append(item.yaw)
            else:
                yaws.append((head_pose if item.landmarks.shape[-1] >= 3 else head_pose_2d)(item.landmarks, reference)["yaw"])
            infos.append(item.info)
            if item.dense is not None:
                dense_pred.append(vertices)
                dense_gt.append(item.dense)
        if progress is not None:
            progress(len(names))
        batch.clear()

    for item in items:
        batch.append(item)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    if not names:
        if not_detected:
            raise PrnetInputError(f"{data}: the face detector found none of the {len(not_detected)} annotated faces "
                                  f"(first: {not_detected[0]['image']}); try --crop gt")
        raise PrnetInputError(f"{data}: the dataset holds no samples")
    seconds = time.perf_counter() - start
    gt, pred, yaw = np.stack(gts), np.stack(preds), np.asarray(yaws)
    has_3d = gt.shape[-1] >= 3
    per_sample = {
        "name": np.array(names),
        "yaw": yaw,
        "nme_2d": metrics.nme_68(pred, gt, dims=2),
        "nme_2d_inner": metrics.nme_inner_51(pred, gt, dims=2),
    }
    if has_3d:
        per_sample["nme_3d"] = metrics.nme_68(pred, gt, dims=3, z_alignment=z_alignment)
    report = {
        "model": runner.name, "data": str(data), "format": fmt, "samples": len(names),
        "input_size": runner.input_size, "layout": runner.layout.layout_id, "z_alignment": z_alignment,
        "seconds": round(seconds, 3),
        "nme_2d": _summary(per_sample["nme_2d"], yaw),
        "nme_2d_inner": _summary(per_sample["nme_2d_inner"], yaw),
        "nme_3d": _summary(per_sample["nme_3d"], yaw) if has_3d else None,
        "nme_3d_note": None if has_3d else "the ground truth is 2D (x, y) only",
        "dense_nme_3d": None, "dense_note": None,
    }
    if len(dense_gt) == len(names):
        per_sample["dense_nme_3d"] = metrics.dense_nme(np.stack(dense_pred), np.stack(dense_gt), gt, z_alignment=z_alignment)
        report["dense_nme_3d"] = _summary(per_sample["dense_nme_3d"], yaw)
    else:
        report["dense_note"] = ("no ground-truth position maps in this dataset" if fmt != "prnet" else
                                "the dataset's UV layout differs from the model's, so dense points do not correspond")
    report.update({
        f"ced_auc_2d@{CED_MAX_ERROR:.0%}": metrics.ced_auc(per_sample["nme_2d"], CED_MAX_ERROR),
        f"ced_auc_3d@{CED_MAX_ERROR:.0%}": metrics.ced_auc(per_sample["nme_3d"], CED_MAX_ERROR) if has_3d else None,
        "per_landmark_2d": (100 * metrics.per_landmark_nme(pred, gt, dims=2)).round(4).tolist(),
        "per_landmark_3d": (100 * metrics.per_landmark_nme(pred, gt, dims=3, z_alignment=z_alignment)).round(4).tolist()
                           if has_3d else None,
        "yaw_source": {"dataset": int(np.sum(yaw_from_data)), "estimated": int(len(names) - np.sum(yaw_from_data))},
        "worst": [{"name": names[i], "nme_2d": round(100 * float(per_sample["nme_2d"][i]), 4), "yaw": round(float(yaw[i]), 2)}
                  for i in np.argsort(-per_sample["nme_2d"])[:10]],
    })
    if fmt == "photos":
        report.update({
            "crop": crop if crop == "gt" else ("detector+refine" if refine else "detector"),
            "faces_total": len(names) + len(not_detected), "detected": len(names) if crop != "gt" else None,
            "not_detected": not_detected, "images_without_annotation": unannotated[0] if unannotated else 0,
            "faces": [{"name": names[i], "image": infos[i]["image"],
                       "nme_2d": round(100 * float(per_sample["nme_2d"][i]), 4),
                       "nme_2d_inner": round(100 * float(per_sample["nme_2d_inner"][i]), 4),
                       "yaw": round(float(yaw[i]), 2), "crop": infos[i]["crop"],
                       "detector_score": infos[i]["detector_score"]} for i in range(len(names))],
        })
    return report, per_sample


def plot_ced(per_sample: dict, path: Path, title: str) -> None:
    """CED curves (fraction of faces vs NME %) of every NME in per_sample, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ("nme_2d", "nme_2d_inner", "nme_3d", "dense_nme_3d") if k in per_sample]
    # the literature's 7 % range, widened when most faces are beyond it (e.g. an early checkpoint)
    upper = max(CED_MAX_ERROR, min(1.0, 1.1 * max(float(np.quantile(per_sample[k], 0.9)) for k in keys)))
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for key, label in (("nme_2d", "68 landmarks, 2D"), ("nme_2d_inner", "51 inner landmarks, 2D"),
                       ("nme_3d", "68 landmarks, 3D"), ("dense_nme_3d", "dense, 3D")):
        if key in per_sample:
            thresholds, fractions = metrics.ced_curve(per_sample[key], upper, 301)
            auc = metrics.ced_auc(per_sample[key], CED_MAX_ERROR)
            mean = 100 * float(np.mean(per_sample[key]))
            ax.plot(100 * thresholds, fractions, label=f"{label}: NME {mean:.2f}%, AUC@{CED_MAX_ERROR:.0%} {auc:.3f}")
    ax.set(xlabel="NME normalized by sqrt(w*h) of the GT landmark box (%)", ylabel="fraction of faces",
           xlim=(0, 100 * upper), ylim=(0, 1), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)


def write_report(report: dict, per_sample: dict, out_dir: Path) -> dict:
    """eval.json, ced.png and per_sample.csv in out_dir; returns their paths."""
    out_dir = Path(out_dir)
    files = {"json": out_dir / "eval.json", "ced_png": out_dir / "ced.png", "per_sample_csv": out_dir / "per_sample.csv"}
    plot_ced(per_sample, files["ced_png"], f"{report['model']} on {Path(report['data']).name} ({report['samples']} faces)")
    columns = [k for k in ("yaw", "nme_2d", "nme_2d_inner", "nme_3d", "dense_nme_3d") if k in per_sample]
    lines = ["name," + ",".join(columns)]
    for i, name in enumerate(per_sample["name"]):
        lines.append(f"{name}," + ",".join(f"{float(per_sample[c][i]) * (1 if c == 'yaw' else 100):.5f}" for c in columns))
    write_bytes_atomic(files["per_sample_csv"], ("\n".join(lines) + "\n").encode())
    report["files"] = {k: str(v) for k, v in files.items()}
    write_json_atomic(files["json"], report)
    return files
