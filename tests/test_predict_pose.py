"""Head pose: Umeyama fit and Euler angles recover known rotations; sign conventions on a toy face."""

import numpy as np
import pytest

from prnet.predict.pose import angles_from_rotation, fit_similarity, head_pose, rotation_from_angles


@pytest.mark.parametrize("angles", [(0, 0, 0), (30, 0, 0), (0, 20, 0), (0, 0, -15), (-70, 15, 10), (45, -30, 25)])
def test_angles_round_trip(angles):
    r = rotation_from_angles(*angles)
    assert np.allclose(r @ r.T, np.eye(3)) and np.linalg.det(r) == pytest.approx(1.0)
    assert angles_from_rotation(r) == pytest.approx(angles, abs=1e-9)


def test_fit_similarity_recovers_transform():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(68, 3)) * 40
    r = rotation_from_angles(25, -10, 5)
    dst = 2.5 * src @ r.T + [100, -50, 7]
    scale, rot, t = fit_similarity(src, dst)
    assert scale == pytest.approx(2.5) and np.allclose(rot, r) and np.allclose(t, [100, -50, 7])


def toy_face():
    """Mean-shape-like reference: x right, y up, z to the viewer; nose tip in front."""
    rng = np.random.default_rng(1)
    ref = rng.uniform(-60, 60, (68, 3)) * [1, 1.2, 0.3]
    ref[30] = [0, 0, 100]  # nose tip
    return ref


def image_points(ref, yaw, pitch, roll, scale=2.0):
    pts = scale * ref @ rotation_from_angles(yaw, pitch, roll).T
    pts[:, 1] = -pts[:, 1]  # to image frame: y down
    return pts + [320, 240, 500]


def test_head_pose_signs_and_values():
    ref = toy_face()
    pose = head_pose(image_points(ref, 40, -12, 8), ref)
    assert (pose["yaw"], pose["pitch"], pose["roll"]) == pytest.approx((40, -12, 8), abs=1e-6)
    assert pose["scale"] == pytest.approx(2.0)
    # yaw > 0: nose tip moves to the image's right of the face centre
    pts = image_points(ref, 30, 0, 0)
    assert pts[30, 0] > pts[:, 0].mean() + 10
    # pitch > 0: nose up = smaller image y
    pts = image_points(ref, 0, 30, 0)
    assert pts[30, 1] < pts[:, 1].mean() - 10


@pytest.mark.parametrize("angles", [(0, 0, 0), (50, 10, -5), (-80, -20, 15)])
def test_head_pose_on_the_mean_shape(angles):
    """The packaged mean face, rotated and put in the image frame, gives back its angles."""
    from prnet.predict.pipeline import mean_shape_landmarks

    ref = mean_shape_landmarks()
    pose = head_pose(image_points(ref, *angles, scale=1.7), ref)
    assert (pose["yaw"], pose["pitch"], pose["roll"]) == pytest.approx(angles, abs=1e-6)
