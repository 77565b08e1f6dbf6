"""`prnet eval`: accuracy of any Runner on a dataset in the project's format or on AFLW2000-3D.

Protocol (AFLW2000-3D, as PRNet / 3DDFA report it): the crop comes from the ground-truth landmarks (the
dataset's own crops; AFLW2000-3D: PRNet's 1.6 x landmark box, prnet.data.aflw2000), the model predicts a
position map, 68 landmarks are read from it, and
    NME = mean point error / sqrt(w * h) of the GT 2D landmark box          (prnet.metrics)
in 2D (x, y) and 3D (x, y, z; z centred per face), per |yaw| bin [0,30), [30,60), [60,90] and their balanced
mean. NME is invariant to the crop similarity, so it is measured in the crop frame. Dense NME (all face
pixels of the position map vs the ground-truth map) needs ground-truth maps in the runner's UV layout, i.e.
the project's format with the same layout; otherwise it is reported as null with the reason.

Report JSON (all NMEs in percent):
    {"model", "data", "format", "samples", "input_size", "layout", "z_alignment", "seconds",
     "nme_2d": {"mean", "median", "bins": {"[0,30)": {"count", "mean"}, ...}, "balanced_mean"},
     "nme_3d": {same}, "dense_nme_3d": {same} | null, "dense_note": str | null,
     "ced_auc_2d@7%", "ced_auc_3d@7%", "per_landmark_2d": [68], "per_landmark_3d": [68],
     "yaw_source": {"dataset": n, "estimated": n}, "worst": [{"name", "nme_2d", "yaw"}] (10 worst),
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


@dataclass
class EvalItem:
    name: str
    image: np.ndarray  # (S, S, 3) uint8 crop at the runner's input size
    landmarks: np.ndarray  # (68, 3) GT in the crop frame
    dense: np.ndarray | None  # (M, 3) GT dense points in the runner layout's face-pixel order, crop frame
    yaw: float | None  # degrees, from the dataset; None -> estimated from the GT landmarks


def dataset_format(root: Path) -> str:
    """'prnet' (manifest.json) or 'aflw2000' (images + .mat files)."""
    if (root / "manifest.json").is_file():
        return "prnet"
    if root.is_dir() and any(root.rglob("*.mat")):
        return "aflw2000"
    raise PrnetInputError(
        f"{root}: not a dataset prnet can evaluate on: expected a prnet dataset (manifest.json; make one with "
        "`prnet data synth`, `prnet data 300wlp` or `prnet data folder`) or the AFLW2000-3D folder (images + .mat files)"
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
    moved = np.asarray(points, dtype=np.float64).copy()
    moved[..., :2] = (moved[..., :2] + 0.5) * k - 0.5
    moved[..., 2] *= k
    return resized, moved


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
) -> tuple[dict, dict]:
    """Run `runner` over the dataset at `data`; returns (report, per-sample arrays)."""
    from prnet.predict import mean_shape_landmarks, read_posmap
    from prnet.pose import head_pose

    data = Path(data)
    fmt = dataset_format(data)
    items = (iter_prnet_dataset if fmt == "prnet" else iter_aflw2000_dataset)(data, runner, limit)
    names, gts, preds, yaws, yaw_from_data, dense_pred, dense_gt = [], [], [], [], [], [], []
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
            yaws.append(item.yaw if item.yaw is not None else head_pose(item.landmarks, reference)["yaw"])
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
        raise PrnetInputError(f"{data}: the dataset holds no samples")
    seconds = time.perf_counter() - start
    gt, pred, yaw = np.stack(gts), np.stack(preds), np.asarray(yaws)
    per_sample = {
        "name": np.array(names),
        "yaw": yaw,
        "nme_2d": metrics.nme_68(pred, gt, dims=2),
        "nme_3d": metrics.nme_68(pred, gt, dims=3, z_alignment=z_alignment),
    }
    report = {
        "model": runner.name, "data": str(data), "format": fmt, "samples": len(names),
        "input_size": runner.input_size, "layout": runner.layout.layout_id, "z_alignment": z_alignment,
        "seconds": round(seconds, 3),
        "nme_2d": _summary(per_sample["nme_2d"], yaw),
        "nme_3d": _summary(per_sample["nme_3d"], yaw),
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
        f"ced_auc_3d@{CED_MAX_ERROR:.0%}": metrics.ced_auc(per_sample["nme_3d"], CED_MAX_ERROR),
        "per_landmark_2d": (100 * metrics.per_landmark_nme(pred, gt, dims=2)).round(4).tolist(),
        "per_landmark_3d": (100 * metrics.per_landmark_nme(pred, gt, dims=3, z_alignment=z_alignment)).round(4).tolist(),
        "yaw_source": {"dataset": int(np.sum(yaw_from_data)), "estimated": int(len(names) - np.sum(yaw_from_data))},
        "worst": [{"name": names[i], "nme_2d": round(100 * float(per_sample["nme_2d"][i]), 4), "yaw": round(float(yaw[i]), 2)}
                  for i in np.argsort(-per_sample["nme_2d"])[:10]],
    })
    return report, per_sample


def plot_ced(per_sample: dict, path: Path, title: str) -> None:
    """CED curves (fraction of faces vs NME %) of every NME in per_sample, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ("nme_2d", "nme_3d", "dense_nme_3d") if k in per_sample]
    # the literature's 7 % range, widened when most faces are beyond it (e.g. an early checkpoint)
    upper = max(CED_MAX_ERROR, min(1.0, 1.1 * max(float(np.quantile(per_sample[k], 0.9)) for k in keys)))
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for key, label in (("nme_2d", "68 landmarks, 2D"), ("nme_3d", "68 landmarks, 3D"), ("dense_nme_3d", "dense, 3D")):
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
    columns = [k for k in ("yaw", "nme_2d", "nme_3d", "dense_nme_3d") if k in per_sample]
    lines = ["name," + ",".join(columns)]
    for i, name in enumerate(per_sample["name"]):
        lines.append(f"{name}," + ",".join(f"{float(per_sample[c][i]) * (1 if c == 'yaw' else 100):.5f}" for c in columns))
    write_bytes_atomic(files["per_sample_csv"], ("\n".join(lines) + "\n").encode())
    report["files"] = {k: str(v) for k, v in files.items()}
    write_json_atomic(files["json"], report)
    return files
