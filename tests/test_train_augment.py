import dataclasses
import math

import numpy as np
import pytest
import torch

from prnet.geometry.resample import resize_layout
from prnet.train.augment import AugmentConfig, augment_sample, crop_similarity, transform_points
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


# --- horizontal flips -----------------------------------------------------------------------------------
def template_sample(size=128):
    """The project's layout at `size` and a sample of the template face: its position map (a frontal weak
    perspective view) and a textured image (content does not matter to the flip)."""
    from prnet.geometry.layout import default_layout
    from prnet.geometry.mesh import load_face_mesh
    from prnet.geometry.posmap import landmarks_from_posmap, position_map, weak_perspective

    layout = default_layout(size)
    mesh = load_face_mesh()
    posmap = position_map(weak_perspective(mesh.vertices, np.eye(3), size / 250, (size / 2, size / 2)), None, layout)
    image, _, _ = make_sample(tiny_layout(size), np.random.default_rng(0))
    return layout, image, posmap, landmarks_from_posmap(posmap, layout)


def test_flip_prob_one_mirrors_the_sample_and_rereads_its_landmarks():
    from prnet.geometry.mirror import flip_posmap
    from prnet.geometry.posmap import landmarks_from_posmap
    from prnet.geometry.mirror import layout_mirror

    layout, image, posmap, landmarks = template_sample()
    mirror = layout_mirror(layout)
    plain = augment_sample(image, posmap, landmarks, 128, AugmentConfig.none(), np.random.default_rng(3), mirror)
    flip = dataclasses.replace(AugmentConfig.none(), flip_prob=1.0)
    image_f, map_f, landmarks_f = augment_sample(image, posmap, landmarks, 128, flip, np.random.default_rng(3), mirror)
    np.testing.assert_array_equal(image_f, plain[0][:, ::-1])
    np.testing.assert_allclose(map_f, flip_posmap(plain[1], mirror.mirror, 128), atol=1e-3)
    np.testing.assert_allclose(landmarks_f, landmarks_from_posmap(map_f, layout), atol=1e-3)
    assert not np.allclose(landmarks_f, landmarks, atol=0.5)  # the template's landmarks are not symmetric
    # validation (rng None) never flips
    np.testing.assert_array_equal(augment_sample(image, posmap, landmarks, 128, flip, None, mirror)[0], plain[0])


def test_flipped_and_warped_landmarks_stay_on_the_map():
    from prnet.geometry.mirror import layout_mirror

    layout, image, posmap, landmarks = template_sample()
    config = AugmentConfig(rotation_deg=30, occlusion_prob=0.0, flip_prob=1.0)
    _, aug_map, aug_landmarks = augment_sample(image, posmap, landmarks, 64, config, np.random.default_rng(5),
                                               layout_mirror(layout))
    small = resize_layout(layout, 64)
    read = landmarks_from_maps(torch.from_numpy(aug_map.transpose(2, 0, 1))[None], torch.from_numpy(small.landmark_uv))
    assert np.abs(read[0].numpy() - aug_landmarks).max() < 0.6  # the 2x UV downsampling's bilinear error


def test_flips_refuse_a_layout_without_a_mirror_map():
    from prnet.io import PrnetInputError
    from prnet.geometry.mirror import layout_mirror
    from prnet.train.data import TrainingItems

    other = tiny_layout(64, name="bfm-uv")
    with pytest.raises(PrnetInputError, match="bfm-uv.*flip_prob=0"):
        layout_mirror(other)
    with pytest.raises(PrnetInputError, match="project's UV layout 'prnet-tutte-v1'"):
        TrainingItems([], 64, 1.0, AugmentConfig(flip_prob=0.5), other)
    layout, image, posmap, landmarks = template_sample()
    with pytest.raises(PrnetInputError, match="mirror map"):
        augment_sample(image, posmap, landmarks, 128, AugmentConfig(flip_prob=1.0), np.random.default_rng(0))
    TrainingItems([], 64, 1.0, AugmentConfig(), other)  # no flips: any layout


def test_train_command_sets_flip_prob_and_refuses_it_on_another_layout(tmp_path):
    from typer.testing import CliRunner

    from prnet.cli import app
    from prnet.train.config import make_config, parse_assignments
    from tests.train_fixtures import make_dataset

    assert make_config("cpu-tiny", **parse_assignments(["augment.flip_prob=0.5"])).augment.flip_prob == 0.5
    data = make_dataset(tmp_path / "data", n=12, size=32)  # a disk layout: no mirror map
    for extra in ([], ["--augment", "paper"]):  # --augment keeps a --set augment.* field
        result = CliRunner().invoke(app, ["train", "--data", str(data), "--preset", "cpu-tiny", "--out",
                                          str(tmp_path / "run"), "--set", "augment.flip_prob=0.5", *extra,
                                          "--threads", "1", "--workers", "0", "--no-progress"])
        assert result.exit_code == 2, result.output
        assert "flips need the project's UV layout" in " ".join(result.output.split())
