"""300W-LP -> position-map dataset, as PRNet's training data was made (face3d's generate_posmap_300WLP).

300W-LP (Zhu et al., 3DDFA) ships `<subset>/<name>.jpg` + `<subset>/<name>.mat` pairs (AFW, HELEN, IBUG,
LFPW and their _Flip versions); each .mat holds the 3DDFA fit: Pose_Para (1 x 7: pitch, yaw, roll, tx, ty,
tz, scale), Shape_Para (199 x 1), Exp_Para (29 x 1), pt2d. Per sample (see `convert_sample`):
1. vertices = mean + shapePC @ Shape_Para + expPC @ Exp_Para (prnet.data.bfm.BFMModel.vertices);
2. to the image frame with 3DDFA's pose and y' = h - y - 1 (prnet.data.bfm.pose_to_image);
3. PRNet's training crop: square box centred on the 68 landmarks' bounding box, side 1.5 x the mean of its
   width and height; with perturbation (face3d's numbers) the centre moves by U(-0.1, 0.1) x that mean size
   in x and y and the side is scaled by U(0.9, 1.1); the random numbers come from
   numpy.random.default_rng([seed, index]) so a sample does not depend on workers or resume order;
4. vertices into the crop frame (z scaled with the crop like x and y), z shifted so its minimum is 0;
5. rasterized into the UV layout (prnet.geometry.posmap.UVSampler); landmarks are the 68 kpt_ind vertices.
Differences from face3d, deliberately: the box uses the exact (not int-truncated) landmark coordinates, and
the crop is this project's `prnet.geometry.crop.crop_matrix` (box -> [-0.5, S-0.5) pixel edges) so the training crops
match `prnet predict`/`prnet eval` exactly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from prnet.data.bfm import BFMModel, parse_pose, pose_to_image
from prnet.data.matfile import load_mat, require
from prnet.geometry.crop import LANDMARK_BOX_SCALE, box_from_landmarks, crop_matrix, transform_points, warp_image
from prnet.io import PrnetInputError, existing_dir

if TYPE_CHECKING:
    from prnet.geometry.posmap import UVSampler

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class CropConfig:
    size: int = 256  # crop and position-map resolution
    box_scale: float = LANDMARK_BOX_SCALE  # side = box_scale x mean(landmark box width, height)
    perturb: bool = True  # random shift/scale of the box (face3d's training augmentation)
    max_shift: float = 0.1  # x the mean landmark box size, uniform in [-max_shift, max_shift]
    max_scale: float = 0.1  # side x U(1 - max_scale, 1 + max_scale)


@dataclass(frozen=True)
class Fit3DDFA:
    """The 3DDFA fit stored in a 300W-LP / AFLW2000-3D .mat file."""

    pose: np.ndarray  # (7,) pitch, yaw, roll (rad), tx, ty, tz, scale
    shape_para: np.ndarray  # (k,)
    exp_para: np.ndarray  # (m,)


def read_fit(mat_path: str | Path) -> Fit3DDFA:
    """Pose_Para, Shape_Para and Exp_Para of a 300W-LP/AFLW2000-3D .mat (PrnetInputError naming the file)."""
    variables = load_mat(mat_path)
    pose = parse_pose(require(variables, "Pose_Para", mat_path), source=mat_path)
    shape_para = require(variables, "Shape_Para", mat_path).astype(np.float64).reshape(-1)
    exp_para = require(variables, "Exp_Para", mat_path).astype(np.float64).reshape(-1)
    for name, value in (("Shape_Para", shape_para), ("Exp_Para", exp_para)):
        if not np.isfinite(value).all():
            raise PrnetInputError(f"{mat_path}: {name} holds NaN or infinite values")
    if pose[6] <= 0:
        raise PrnetInputError(f"{mat_path}: Pose_Para scale (7th value) must be positive, got {pose[6]}")
    return Fit3DDFA(pose=pose, shape_para=shape_para, exp_para=exp_para)


def list_images(root: str | Path, what: str, how: str = "") -> list[Path]:
    """Sorted image files (IMAGE_EXTENSIONS) under `root`, recursively; a missing folder or one without images
    is a PrnetInputError naming `what` folder it should be (`how`: how to pass it, appended to the hint)."""
    root = existing_dir(root, hint=f"pass the {what} folder{how}")
    images = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not images:
        raise PrnetInputError(f"{root}: no images (.jpg/.png) found; is this the {what} folder?")
    return images


def find_pairs(root: str | Path) -> list[tuple[Path, Path]]:
    """Sorted (image, .mat) pairs under `root` (recursively). Images without a .mat are an error naming
    them; .mat files without an image (e.g. 300W-LP's landmarks/*_pts.mat) are ignored."""
    images = list_images(root, "300W_LP", " with --root")
    pairs, orphans = [], []
    for image in images:
        mat = image.with_suffix(".mat")
        (pairs.append((image, mat)) if mat.is_file() else orphans.append(image))
    if orphans:
        shown = ", ".join(str(p) for p in orphans[:5])
        raise PrnetInputError(
            f"{len(orphans)} image(s) have no .mat file next to them (first: {shown}); "
            "every image needs its 3DDFA fit <name>.mat: restore them or move the images out of --root"
        )
    return pairs


def pairs_fingerprint(root: Path, pairs: list[tuple[Path, Path]]) -> str:
    """Hash of the relative file list: sample i is pairs[i], so resuming needs the same list."""
    h = hashlib.sha256()
    for image, _ in pairs:
        h.update(image.relative_to(root).as_posix().encode() + b"\n")
    return h.hexdigest()[:16]


@dataclass
class ConvertedSample:
    image: np.ndarray  # (S, S, 3) uint8 crop
    posmap: np.ndarray  # (S, S, 3) float32 crop pixels
    landmarks: np.ndarray  # (68, 3) float32 crop pixels
    params: dict[str, Any] = field(default_factory=dict)


def crop_box(landmarks_2d: np.ndarray, config: CropConfig, rng: np.random.Generator | None) -> tuple[np.ndarray, float]:
    """PRNet's training box (center, side) around image-frame landmarks, perturbed when config.perturb."""
    center, side = box_from_landmarks(landmarks_2d, config.box_scale)
    if config.perturb:
        if rng is None:
            raise ValueError("perturbed crops need a random generator")
        mean_size = side / config.box_scale
        shift = rng.uniform(-config.max_shift, config.max_shift, size=2) * mean_size
        center = center + shift
        side = side * rng.uniform(1.0 - config.max_scale, 1.0 + config.max_scale)
    return center, side


def convert_sample(
    image: np.ndarray,
    fit: Fit3DDFA,
    model: BFMModel,
    sampler: UVSampler,
    config: CropConfig = CropConfig(),
    rng: np.random.Generator | None = None,
    model_vertices: np.ndarray | None = None,
) -> ConvertedSample:
    """One 300W-LP image + fit -> crop, position map and landmarks in the crop frame.
    `model_vertices` (n, 3): the fit's vertices when already computed (batched) by the caller."""
    height = image.shape[0]
    if model_vertices is None:
        model_vertices = model.vertices(fit.shape_para, fit.exp_para)
    vertices_image = pose_to_image(model_vertices, fit.pose, height)  # (n, 3)
    center, side = crop_box(vertices_image[model.landmark_ids, :2], config, rng)
    matrix = crop_matrix(center, side, config.size)  # 2x3, image -> crop
    vertices_crop = transform_points(vertices_image, matrix)  # z scaled with the crop
    vertices_crop[:, 2] -= vertices_crop[:, 2].min()
    return ConvertedSample(
        image=warp_image(image, matrix, config.size),
        posmap=sampler.render(vertices_crop),
        landmarks=vertices_crop[model.landmark_ids].astype(np.float32),
        params={
            "pose": fit.pose.tolist(),
            "crop_matrix": matrix.tolist(),
            "box_center": [float(center[0]), float(center[1])],
            "box_side": float(side),
            "source_size": [int(image.shape[1]), int(image.shape[0])],
        },
    )


def sample_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(index)])


# ---------------------------------------------------------------- the conversion driver


@dataclass
class ConversionReport:
    out: Path
    total: int  # samples the source holds (after --limit)
    written: int  # written by this run
    already_done: int  # complete before this run (resume)
    failed: list[str] = field(default_factory=list)  # "file: reason" for samples skipped with skip_bad


CHUNK = 16  # samples per task: their vertices come from one pass over the BFM bases
_WORKER: dict[str, Any] = {}


def _init_worker(bfm: "str | BFMModel", sampler_arrays: dict, out: str, manifest_json: dict, config: CropConfig,
                 seed: int, skip_bad: bool) -> None:
    from prnet.data.bfm import load_bfm
    from prnet.data.format import Manifest
    from prnet.geometry.posmap import UVSampler

    _WORKER.update(
        model=load_bfm(bfm) if isinstance(bfm, str) else bfm,
        sampler=UVSampler(**sampler_arrays),
        out=Path(out),
        manifest=Manifest(**manifest_json),
        config=config,
        seed=seed,
        skip_bad=skip_bad,
    )


def _convert_chunk(chunk: list[tuple[int, str, str, str]]) -> list[tuple[int, str | None]]:
    """Convert and write a chunk of (index, image path, .mat path, relative name) tasks; returns
    (index, error or None) per task (errors only with skip_bad, else PrnetInputError propagates)."""
    from prnet.data.format import write_sample
    from prnet.io import read_image_rgb

    w = _WORKER
    model: BFMModel = w["model"]
    results, loaded = [], []
    for index, image_path, mat_path, relative in chunk:
        try:
            loaded.append((index, relative, read_image_rgb(image_path), read_fit(mat_path)))
        except PrnetInputError as err:
            if not w["skip_bad"]:
                raise
            results.append((index, str(err)))
    if not loaded:
        return results
    width_s, width_e = model.shape_basis.shape[1], model.exp_basis.shape[1]
    shape = np.stack([_pad(fit.shape_para, width_s, "Shape_Para", model) for *_, fit in loaded])
    exp = np.stack([_pad(fit.exp_para, width_e, "Exp_Para", model) for *_, fit in loaded])
    vertices = model.vertices_batch(shape, exp)  # (B, n, 3)
    for (index, relative, image, fit), model_vertices in zip(loaded, vertices):
        sample = convert_sample(image, fit, model, w["sampler"], w["config"], sample_rng(w["seed"], index),
                                model_vertices=model_vertices)
        sample.params["source"] = relative
        write_sample(w["out"], w["manifest"], index, sample.image, sample.posmap, sample.landmarks, sample.params)
        results.append((index, None))
    return results


def _pad(para: np.ndarray, width: int, name: str, model: BFMModel) -> np.ndarray:
    if para.size > width:
        raise PrnetInputError(f"{name} has {para.size} coefficients but the BFM {model.source} has only {width}")
    return np.pad(para, (0, width - para.size))


def convert_300wlp(
    root: str | Path,
    bfm_path: str | Path,
    out: str | Path,
    bfm_uv_path: str | Path | None = None,
    layout: str = "bfm-uv",
    config: CropConfig = CropConfig(),
    seed: int = 0,
    workers: int = 1,
    limit: int | None = None,
    skip_bad: bool = False,
    map_encoding: str = "uint16-fixed",
    progress: bool = True,
) -> ConversionReport:
    """Convert a 300W-LP folder into the project dataset format at `out` (resumable: complete samples are
    kept). Sample i is the i-th (image, .mat) pair in sorted path order. With skip_bad, unreadable samples are
    listed in the report (and out/skipped.txt) instead of stopping the run."""
    from prnet.data.bfm import load_bfm
    from prnet.data.bfm_layout import make_layout
    from prnet.data.format import Manifest, create_dataset, is_complete
    from prnet.io import write_bytes_atomic

    root, out = Path(root), Path(out)
    if layout == "bfm-uv" and bfm_uv_path is None:  # fail before the slow BFM load
        raise PrnetInputError("--layout bfm-uv needs --bfm-uv BFM_UV.mat (or use --layout tutte)")
    pairs = find_pairs(root)
    if limit is not None:
        pairs = pairs[: max(0, int(limit))]
    model = load_bfm(bfm_path)
    uv_layout, sampler = make_layout(layout, model, bfm_uv_path, config.size)
    manifest = create_dataset(
        out,
        uv_layout,
        Manifest(
            image_size=config.size,
            layout_id=uv_layout.layout_id,
            map_encoding=map_encoding,
            generator={
                "source": "300w-lp",
                "files": len(pairs),
                "file_list_sha": pairs_fingerprint(root, pairs),
                "seed": int(seed),
                "crop": {k: getattr(config, k) for k in config.__dataclass_fields__},
                "layout": layout,
            },
        ),
    )
    tasks = [
        (i, str(image), str(mat), image.relative_to(root).as_posix())
        for i, (image, mat) in enumerate(pairs)
        if not is_complete(out, manifest, i)
    ]
    report = ConversionReport(out=out, total=len(pairs), written=0, already_done=len(pairs) - len(tasks))
    sampler_arrays = {name: getattr(sampler, name) for name in ("size", "rows", "cols", "corners", "weights")}
    init_args = (model, sampler_arrays, str(out), manifest.to_json(), config, int(seed), skip_bad)
    chunks = [tasks[start : start + CHUNK] for start in range(0, len(tasks), CHUNK)]
    with progress_bar(progress, len(pairs), report.already_done, "300W-LP") as advance:
        for results in _run_chunks(chunks, init_args, workers, str(bfm_path)):
            for _, error in results:
                if error is None:
                    report.written += 1
                else:
                    report.failed.append(error)
            advance(len(results))
    if report.failed:
        write_bytes_atomic(out / "skipped.txt", ("\n".join(report.failed) + "\n").encode())
    return report


def _run_chunks(chunks: list, init_args: tuple, workers: int, bfm_path: str):
    """Yield _convert_chunk results, in this process (workers <= 1) or a process pool. On Linux the pool
    forks, so the workers share the loaded BFM (copy-on-write) and no __main__ guard is needed; elsewhere
    it spawns and each worker loads the BFM from `bfm_path`."""
    if not chunks:
        return
    if workers <= 1:
        _init_worker(*init_args)
        try:
            yield from map(_convert_chunk, chunks)
        finally:
            _WORKER.clear()
        return
    import multiprocessing
    import sys

    method = "fork" if sys.platform.startswith("linux") else "spawn"
    if method == "spawn":
        init_args = (bfm_path, *init_args[1:])
    with multiprocessing.get_context(method).Pool(workers, initializer=_init_worker, initargs=init_args) as pool:
        yield from pool.imap_unordered(_convert_chunk, chunks)


class progress_bar:
    """Context manager yielding an advance() callable: a rich progress bar, or a no-op when disabled."""

    def __init__(self, enabled: bool, total: int, completed: int, label: str):
        self.enabled, self.total, self.completed, self.label = enabled, total, completed, label

    def __enter__(self):
        if not self.enabled:
            return lambda steps=1: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TimeRemainingColumn())
        self.bar.__enter__()
        task = self.bar.add_task(self.label, total=self.total, completed=self.completed)
        return lambda steps=1: self.bar.advance(task, steps)

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.__exit__(*exc)
        return False
