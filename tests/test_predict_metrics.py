"""Known-answer tests for prnet.metrics (hand-computed cases)."""

import numpy as np
import pytest

from prnet import metrics


def box_landmarks(width=100.0, height=25.0, z=None):
    """68 points on a (width x height) box: corners present so the GT box is exactly width x height."""
    rng = np.random.default_rng(0)
    pts = np.zeros((68, 3))
    pts[:, 0] = rng.uniform(0, width, 68)
    pts[:, 1] = rng.uniform(0, height, 68)
    pts[:4, :2] = [[0, 0], [width, 0], [0, height], [width, height]]
    pts[:, 2] = rng.uniform(0, 30, 68) if z is None else z
    return pts + [10.0, 20.0, 0.0]  # offset must not matter


def test_box_size_is_sqrt_w_h():
    gt = box_landmarks(100, 25)
    assert metrics.landmark_box_size(gt) == pytest.approx(50.0)
    assert metrics.landmark_box_size(np.stack([gt, gt * 2])) == pytest.approx([50.0, 100.0])


def test_nme_2d_constant_shift():
    gt = box_landmarks(100, 25)[None]
    pred = gt + [3.0, 4.0, 0.0]  # every point off by 5 px; box 50 px -> 0.1
    assert metrics.nme_68(pred, gt, dims=2) == pytest.approx([0.1])


def test_nme_3d_z_alignment():
    gt = box_landmarks(100, 25)[None]
    pred = gt + [3.0, 4.0, 12.0]
    # constant z offset is a convention: removed by mean alignment, counted without it
    assert metrics.nme_68(pred, gt, dims=3) == pytest.approx([0.1])
    assert metrics.nme_68(pred, gt, dims=3, z_alignment="none") == pytest.approx([13.0 / 50.0])
    # non-constant z error: one landmark 68 px deeper -> mean-centred z errors 67 (once) and -1 (67 times)
    pred = gt.copy()
    pred[0, 5, 2] += 68.0
    expected = (67.0 + 67 * 1.0) / 68 / 50.0
    assert metrics.nme_68(pred, gt, dims=3) == pytest.approx([expected])
    assert metrics.nme_68(pred, gt, dims=2) == pytest.approx([0.0])


def test_nme_normalizer_uses_gt_not_pred():
    gt = box_landmarks(100, 25)[None]
    pred = gt * 3.0
    err = np.linalg.norm(pred[..., :2] - gt[..., :2], axis=-1).mean()
    assert metrics.nme_68(pred, gt) == pytest.approx([err / 50.0])


def test_nme_rejects_bad_input():
    gt = box_landmarks()[None]
    with pytest.raises(ValueError):
        metrics.nme_68(gt[:, :10], gt[:, :10])
    with pytest.raises(ValueError):
        metrics.nme_68(gt, gt[:, :, :2], dims=3)
    flat = gt.copy()
    flat[..., 1] = 5.0  # zero height box
    with pytest.raises(ValueError, match="positive"):
        metrics.nme_68(flat, flat)


def test_per_landmark_nme_single_outlier():
    gt = np.stack([box_landmarks(100, 25), box_landmarks(100, 25) * 2])  # boxes 50 and 100
    pred = gt.copy()
    pred[0, 7, 0] += 10.0  # face 0: 10 / 50 = 0.2 at landmark 7
    pred[1, 7, 1] += 10.0  # face 1: 10 / 100 = 0.1
    per = metrics.per_landmark_nme(pred, gt)
    assert per.shape == (68,)
    assert per[7] == pytest.approx(0.15)
    assert np.delete(per, 7) == pytest.approx(np.zeros(67))


def test_dense_nme_normalized_by_landmark_box():
    gt_lm = box_landmarks(100, 25)[None]
    rng = np.random.default_rng(1)
    gt_dense = rng.uniform(0, 300, (1, 500, 3))  # dense points span a larger box: must not be used
    pred_dense = gt_dense + [0.0, 0.0, 0.0]
    pred_dense[0, :, 0] += 2.0
    assert metrics.dense_nme(pred_dense, gt_dense, gt_lm) == pytest.approx([2.0 / 50.0])


def test_yaw_bins_and_balanced_mean():
    yaw = np.array([10.0, -45.0, 75.0, -20.0, 90.0, 29.999, 30.0, 120.0])
    assert metrics.yaw_bin_index(yaw).tolist() == [0, 1, 2, 0, 2, 0, 1, 2]
    values = np.array([1.0, 4.0, 6.0, 3.0, 8.0, 2.0, 2.0, 10.0])
    out = metrics.yaw_binned(values, yaw)
    assert out["bins"]["[0,30)"] == {"count": 3, "mean": pytest.approx(2.0)}
    assert out["bins"]["[30,60)"] == {"count": 2, "mean": pytest.approx(3.0)}
    assert out["bins"]["[60,90]"] == {"count": 3, "mean": pytest.approx(8.0)}
    assert out["balanced_mean"] == pytest.approx((2.0 + 3.0 + 8.0) / 3)


def test_yaw_binned_empty_bin():
    out = metrics.yaw_binned(np.array([1.0, 3.0]), np.array([5.0, 70.0]))
    assert out["bins"]["[30,60)"] == {"count": 0, "mean": None}
    assert out["balanced_mean"] == pytest.approx(2.0)


def test_ced_curve_and_auc():
    errors = np.array([0.01, 0.02, 0.03, 0.04])
    thresholds, fractions = metrics.ced_curve(errors, max_error=0.05, num=6)  # 0, .01, ..., .05
    assert thresholds == pytest.approx([0, 0.01, 0.02, 0.03, 0.04, 0.05])
    assert fractions == pytest.approx([0, 0.25, 0.5, 0.75, 1.0, 1.0])
    # all-zero errors -> AUC 1; every face beyond the range -> AUC 0
    assert metrics.ced_auc(np.zeros(5), 0.1) == pytest.approx(1.0)
    assert metrics.ced_auc(np.full(5, 0.2), 0.1) == pytest.approx(0.0)
    # uniform errors on [0, max] -> CED is the identity -> AUC 1/2
    assert metrics.ced_auc(np.linspace(0, 0.1, 10001), 0.1) == pytest.approx(0.5, abs=1e-3)
