import math

import numpy as np
import pytest
import torch

from prnet.train.augment import AugmentConfig, augment_sample, crop_similarity, resize_layout, transform_points
from prnet.train.losses import landmarks_from_maps, weighted_mse
from tests.train_fixtures import make_sample, tiny_layout


def marked_sample(size=64, seed=0):
    """A sample whose image has one bright pixel exactly at landmark 0 (integer position)."""
    layout = tiny_layout(size)
    image, posmap, landmarks = make_sample(layout, np.random.default_rng(seed))
    image = np.zeros_like(image)
    landmarks[0, :2] = np.round(landmarks[0, :2])
    x, y = landmarks[0, :2].astype(int)
    image[y - 1 : y + 2, x - 1 : x + 2] = 255  # a 3x3 blob: its centroid is landmark 0
    return layout, image, posmap, landmarks


def blob_centroid(image):
    weight = image[..., 0].astype(np.float64)
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    return np.array([(xx * weight).sum(), (yy * weight).sum()]) / weight.sum()


@pytest.mark.parametrize("out_size", [64, 32])
@pytest.mark.parametrize("seed", range(4))
def test_image_landmarks_and_map_move_together(out_size, seed):
    layout, image, posmap, landmarks = marked_sample(seed=seed)
    config = AugmentConfig(rotation_deg=40, translation=0.05, scale_min=0.9, scale_max=1.1, occlusion_prob=0.0)
    rng = np.random.default_rng(100 + seed)
    aug_image, aug_map, aug_landmarks = augment_sample(image, posmap, landmarks, out_size, config, rng)
    assert aug_image.shape == (out_size, out_size, 3) and aug_map.shape == (out_size, out_size, 3)
    # the image content moved where the landmarks say (bilinear resampling keeps the centroid)
    np.testing.assert_allclose(blob_centroid(aug_image), aug_landmarks[0, :2], atol=0.35)
    # the position map read at the (resized) layout's landmark UVs gives the moved landmarks
    small = resize_layout(layout, out_size)
    maps = torch.from_numpy(aug_map.transpose(2, 0, 1))[None]
    read = landmarks_from_maps(maps, torch.from_numpy(small.landmark_uv))[0].numpy()
    reference = landmarks_from_maps(torch.from_numpy(posmap.transpose(2, 0, 1))[None], torch.from_numpy(layout.landmark_uv))[0].numpy()
    moved_reference = transform_points(reference, _matrix_from(landmarks, aug_landmarks))
    tolerance = 0.05 if out_size == 64 else 0.6  # downsampled UV grid: bilinear averaging of a smooth map
    np.testing.assert_allclose(read, moved_reference, atol=tolerance * (1 + np.abs(moved_reference).max() / 100))


def _matrix_from(before, after):
    """Recover the 2x3 similarity from landmark correspondences (least squares)."""
    a = np.hstack([before[:, :2], np.ones((len(before), 1))])
    solution, *_ = np.linalg.lstsq(a, after[:, :2], rcond=None)
    return solution.T


def test_no_augmentation_is_an_exact_resize_and_identity_at_same_size():
    np.testing.assert_allclose(crop_similarity(64, 64), [[1, 0, 0], [0, 1, 0]], atol=1e-12)
    np.testing.assert_allclose(crop_similarity(256, 128), [[0.5, 0, -0.25], [0, 0.5, -0.25]], atol=1e-12)
    layout, image, posmap, landmarks = marked_sample()
    same = augment_sample(image, posmap, landmarks, 64, AugmentConfig(), rng=None)
    np.testing.assert_array_equal(same[0], image)
    np.testing.assert_allclose(same[1], posmap, atol=1e-4)


def test_positive_rotation_turns_counter_clockwise_on_screen():
    m = crop_similarity(65, 65, angle_rad=math.pi / 2)
    right_of_centre = np.array([[42.0, 32.0, 5.0]])
    np.testing.assert_allclose(transform_points(right_of_centre, m), [[32.0, 22.0, 5.0]], atol=1e-5)  # now above


def test_colour_and_occlusion_change_the_image_only():
    layout, image, posmap, landmarks = marked_sample()
    image = np.full_like(image, 200)
    base = dict(rotation_deg=0, translation=0, scale_min=1, scale_max=1, color_min=0.5, color_max=0.6)
    coloured, map_a, _ = augment_sample(image, posmap, landmarks, 64, AugmentConfig(**base, occlusion_prob=0.0),
                                        np.random.default_rng(1))
    assert 100 <= coloured.min() and coloured.max() <= 121
    occluded, map_b, _ = augment_sample(image, posmap, landmarks, 64, AugmentConfig(**base, occlusion_prob=1.0),
                                        np.random.default_rng(1))
    changed = (occluded != coloured).any(2)
    assert 0.005 < changed.mean() < 0.5  # one rectangle, not the whole image
    np.testing.assert_allclose(map_a, posmap, atol=1e-4)
    np.testing.assert_array_equal(map_a, map_b)


def test_resized_layout_keeps_landmark_weights_and_valid_triangles():
    layout = tiny_layout(64)
    small = resize_layout(layout, 32)
    assert small.size == 32 and small.weight_mask.max() == 16.0
    np.testing.assert_allclose(small.landmark_uv, (layout.landmark_uv + 0.5) / 2 - 0.5)
    assert small.face_triangles.max() < small.face_mask.sum()


def test_weighted_mse_ignores_zero_weight_pixels_and_normalizes():
    weight = torch.zeros(4, 4)
    weight[1:3, 1:3] = 3.0
    pred, target = torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)
    target[:, :, 0, 0] = 100.0  # outside the face: no loss
    assert weighted_mse(pred, target, weight).item() == 0.0
    target[:, :, 1:3, 1:3] = 0.1
    assert weighted_mse(pred, target, weight).item() == pytest.approx(0.01)
