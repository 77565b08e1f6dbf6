"""AFLW2000-3D for evaluation: `<name>.jpg` + `<name>.mat` pairs (2,000 images, 450x450).

Each .mat holds pt3d_68 (3 x 68: x, y image pixels, used as stored like PRNet's and 3DDFA's evaluations do;
z depth, larger = closer, with the fit's own offset, NOT shifted to a minimum of 0 like position maps, so
3D comparisons must align the z offsets; iBUG order),
Pose_Para (1 x 7, 3DDFA: pitch, yaw, roll in radians, tx, ty, tz, scale) and the 3DDFA fit (Shape_Para,
Exp_Para) from which the dense ground-truth mesh follows with the BFM (`record_vertices`).

The crop is PRNet's evaluation crop from the ground-truth landmarks (its api.process with keypoints): a square
centred on the bounding box of pt3d_68's x, y with side AFLW_BOX_SCALE (1.6) x the mean of the box width and
height, mapped onto the SxS input with `prnet.geometry.crop.crop_matrix`. Typical use (prnet eval):

    for record in iter_aflw2000(root):
        crop = record.crop_image(256)                        # (256, 256, 3) uint8 network input
        gt = record.landmarks_crop()                         # (68, 3) ground truth in the crop frame
        pred_image = transform_points(pred_crop, inverse_similarity(record.crop))  # back to the image
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from prnet.data.bfm import BFMModel, parse_pose, pose_to_image
from prnet.data.matfile import load_mat, require
from prnet.data.w300lp import Fit3DDFA, list_images, read_fit
from prnet.geometry.crop import box_from_landmarks, crop_matrix, transform_points, warp_image
from prnet.io import PrnetInputError, read_image_rgb

if TYPE_CHECKING:
    from prnet.geometry.posmap import UVSampler

AFLW_BOX_SCALE = 1.6  # PRNet's api.process(image, pt3d_68): size = old_size * 1.6


@dataclass(eq=False)
class AFLWRecord:
    name: str  # file stem, e.g. "image00002"
    image_path: Path
    image: np.ndarray  # (H, W, 3) uint8 RGB, the original image
    landmarks_3d: np.ndarray  # (68, 3) float64, image frame (pt3d_68 transposed)
    pose: np.ndarray  # (7,) float64 pitch, yaw, roll (radians), tx, ty, tz, scale
    crop: np.ndarray  # (2, 3) float64, image -> crop frame (prnet.geometry.crop convention)
    crop_size: int  # the S the crop matrix maps onto
    fit: Fit3DDFA | None  # Shape_Para/Exp_Para/Pose_Para when the .mat has them (for dense ground truth)

    @property
    def yaw_degrees(self) -> float:
        return float(np.degrees(self.pose[1]))

    def crop_image(self, size: int | None = None) -> np.ndarray:
        """(S, S, 3) uint8 network input."""
        return warp_image(self.image, self.crop, size or self.crop_size)

    def landmarks_crop(self) -> np.ndarray:
        """(68, 3) float64 ground-truth landmarks in the crop frame (z scaled like x and y)."""
        return transform_points(self.landmarks_3d, self.crop)


def list_aflw2000(root: str | Path) -> list[tuple[Path, Path]]:
    """Sorted (image, .mat) pairs in `root` (flat or nested); images without a .mat are an error."""
    images = list_images(root, "AFLW2000", " (images + .mat files)")
    missing = [p for p in images if not p.with_suffix(".mat").is_file()]
    if missing:
        raise PrnetInputError(
            f"{len(missing)} image(s) have no .mat next to them (first: {missing[0]}); "
            "AFLW2000-3D needs <name>.mat with pt3d_68 for every image"
        )
    return [(p, p.with_suffix(".mat")) for p in images]


def read_aflw2000_mat(mat_path: str | Path) -> tuple[np.ndarray, np.ndarray, Fit3DDFA | None]:
    """(landmarks (68, 3) image frame, pose (7,), fit or None) from an AFLW2000-3D .mat."""
    variables = load_mat(mat_path)
    pt3d = require(variables, "pt3d_68", mat_path).astype(np.float64)
    if pt3d.shape == (68, 3):
        pt3d = pt3d.T
    if pt3d.shape != (3, 68):
        raise PrnetInputError(f"{mat_path}: pt3d_68 must be 3 x 68, got shape {pt3d.shape}")
    if not np.isfinite(pt3d).all():
        raise PrnetInputError(f"{mat_path}: pt3d_68 holds NaN or infinite values")
    pose = parse_pose(require(variables, "Pose_Para", mat_path), source=mat_path)
    fit = read_fit(mat_path) if "Shape_Para" in variables and "Exp_Para" in variables else None
    return pt3d.T.copy(), pose, fit


def load_aflw2000_record(
    image_path: str | Path, mat_path: str | Path | None = None, box_scale: float = AFLW_BOX_SCALE, size: int = 256
) -> AFLWRecord:
    image_path = Path(image_path)
    mat_path = Path(mat_path) if mat_path is not None else image_path.with_suffix(".mat")
    landmarks, pose, fit = read_aflw2000_mat(mat_path)
    center, side = box_from_landmarks(landmarks[:, :2], box_scale)
    if not side > 0:
        raise PrnetInputError(f"{mat_path}: pt3d_68 landmarks are degenerate (zero-size box)")
    return AFLWRecord(
        name=image_path.stem,
        image_path=image_path,
        image=read_image_rgb(image_path),
        landmarks_3d=landmarks,
        pose=pose,
        crop=crop_matrix(center, side, size),
        crop_size=size,
        fit=fit,
    )


def iter_aflw2000(
    root: str | Path, box_scale: float = AFLW_BOX_SCALE, size: int = 256, limit: int | None = None
) -> Iterator[AFLWRecord]:
    """AFLWRecords in sorted file order (the folder is listed and checked before the first record)."""
    pairs = list_aflw2000(root)
    for image_path, mat_path in pairs[:limit] if limit is not None else pairs:
        yield load_aflw2000_record(image_path, mat_path, box_scale, size)


def record_vertices(record: AFLWRecord, model: BFMModel) -> np.ndarray:
    """(n, 3) dense ground-truth BFM vertices in the image frame, from the record's 3DDFA fit."""
    if record.fit is None:
        raise PrnetInputError(f"{record.image_path.with_suffix('.mat')}: no Shape_Para/Exp_Para for a dense ground truth")
    vertices = model.vertices(record.fit.shape_para, record.fit.exp_para)
    return pose_to_image(vertices, record.fit.pose, record.image.shape[0])


def ground_truth_posmap(record: AFLWRecord, model: BFMModel, sampler: UVSampler) -> np.ndarray:
    """(S, S, 3) ground-truth position map in the record's crop frame, made exactly like the 300W-LP training
    maps (crop-frame vertices, z shifted so the mesh minimum is 0) in the sampler's BFM layout (bfm-uv or
    bfm-tutte, from prnet.data.bfm_layout.make_layout): the dense ground truth for a model trained on them."""
    vertices = transform_points(record_vertices(record, model), record.crop)
    vertices[:, 2] -= vertices[:, 2].min()
    return sampler.render(vertices)
