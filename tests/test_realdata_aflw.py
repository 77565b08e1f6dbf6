"""AFLW2000-3D loader: landmarks, pose, PRNet's evaluation crop, dense ground truth, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from tests import realdata_fixtures as fx
from prnet.data.aflw2000 import AFLW_BOX_SCALE, ground_truth_posmap, iter_aflw2000, list_aflw2000, record_vertices
from prnet.data.bfm import load_bfm, load_bfm_uv
from prnet.data.bfm_layout import bfm_uv_layout
from prnet.geometry.crop import crop_matrix, inverse_similarity, transform_points
from prnet.io import PrnetInputError

POSE = [0.1, -0.4, 0.05, 70.0, 60.0, 40.0, 0.002]


def _write_record(root, name, pose=POSE, height=120, width=140, seed=0):
    image = fx.write_image(root / f"{name}.jpg", height, width, seed)
    pts = fx.expected_image_vertices(pose, height)[fx.landmark_ids()]  # (68, 3), image frame
    fx.write_fit(root / f"{name}.mat", pose, pt3d_68=pts.T, roi=np.zeros((1, 4)))
    return image, pts


def test_records_landmarks_crop_and_dense(tmp_path):
    _, pts_a = _write_record(tmp_path, "image00002")
    _, pts_b = _write_record(tmp_path, "image00004", pose=[0, 0.9, 0, 70, 60, 40, 0.002], seed=1)
    records = list(iter_aflw2000(tmp_path, size=64))
    assert [r.name for r in records] == ["image00002", "image00004"]
    first = records[0]
    np.testing.assert_allclose(first.landmarks_3d, pts_a)
    np.testing.assert_allclose(first.pose, POSE)
    assert first.yaw_degrees == pytest.approx(np.degrees(-0.4))
    assert records[1].yaw_degrees == pytest.approx(np.degrees(0.9))
    assert first.image.shape == (120, 140, 3) and first.image.dtype == np.uint8
    # PRNet's eval crop: centre of the landmark box, side 1.6 x mean(width, height)
    lo, hi = pts_a[:, :2].min(0), pts_a[:, :2].max(0)
    expected = crop_matrix((lo + hi) / 2, AFLW_BOX_SCALE * (hi - lo).mean(), 64)
    np.testing.assert_allclose(first.crop, expected)
    crop_points = first.landmarks_crop()
    np.testing.assert_allclose(transform_points(crop_points, inverse_similarity(first.crop)), pts_a, atol=1e-9)
    # the box spans 64 / 1.6 = 40 crop pixels on average, centred in the crop
    span = crop_points[:, :2].max(0) - crop_points[:, :2].min(0)
    assert span.mean() == pytest.approx(64 / AFLW_BOX_SCALE)
    assert first.crop_image().shape == (64, 64, 3)
    # dense ground truth from the 3DDFA fit
    model = load_bfm(fx.write_bfm(tmp_path / "BFM.mat"))
    np.testing.assert_allclose(record_vertices(first, model), fx.expected_image_vertices(POSE, 120), atol=1e-3)
    _, sampler = bfm_uv_layout(model, load_bfm_uv(fx.write_bfm_uv(tmp_path / "BFM_UV.mat")), 64)
    posmap = ground_truth_posmap(first, model, sampler)
    crop_vertices = transform_points(fx.expected_image_vertices(POSE, 120), first.crop)
    crop_vertices[:, 2] -= crop_vertices[:, 2].min()
    # the grid is affine in its UV pixels (u * 63 / 31 on a 64-pixel map): every face pixel is closed-form
    design = np.hstack([fx.uv_pixels() * 63 / 31, np.ones((fx.N, 1))])
    affine = np.linalg.lstsq(design, crop_vertices, rcond=None)[0]
    rows, cols = sampler.rows, sampler.cols
    assert len(rows) > 1500
    np.testing.assert_allclose(posmap[rows, cols], np.stack([cols, rows, np.ones_like(rows)], 1) @ affine, atol=2e-3)


def test_pt3d_68x3_is_accepted(tmp_path):
    fx.write_image(tmp_path / "a.jpg")
    pts = np.random.default_rng(0).uniform(20, 100, size=(68, 3))
    scipy.io.savemat(str(tmp_path / "a.mat"), {"pt3d_68": pts, "Pose_Para": np.zeros((1, 7))})
    (record,) = iter_aflw2000(tmp_path)
    np.testing.assert_allclose(record.landmarks_3d, pts)
    assert record.fit is None
    with pytest.raises(PrnetInputError, match="a.mat: no Shape_Para"):
        record_vertices(record, None)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(PrnetInputError, match="directory not found"):
        list_aflw2000(tmp_path / "missing")
    with pytest.raises(PrnetInputError, match="no images"):
        list_aflw2000(tmp_path)
    fx.write_image(tmp_path / "lonely.jpg")
    with pytest.raises(PrnetInputError, match="lonely.jpg"):
        list_aflw2000(tmp_path)
    scipy.io.savemat(str(tmp_path / "lonely.mat"), {"Pose_Para": np.zeros((1, 7))})
    with pytest.raises(PrnetInputError, match="lonely.mat: missing variable 'pt3d_68'"):
        list(iter_aflw2000(tmp_path))
    scipy.io.savemat(str(tmp_path / "lonely.mat"), {"Pose_Para": np.zeros((1, 7)), "pt3d_68": np.zeros((2, 68))})
    with pytest.raises(PrnetInputError, match=r"lonely.mat: pt3d_68 must be 3 x 68"):
        list(iter_aflw2000(tmp_path))
    (tmp_path / "lonely.mat").write_bytes(b"\x00garbage" * 50)
    with pytest.raises(PrnetInputError, match="lonely.mat"):
        list(iter_aflw2000(tmp_path))
