"""The UV mirror correspondence (prnet.geometry.mirror) and flipping real synthetic samples with it."""

import numpy as np
import pytest

from prnet.data.synth.shape import MIRROR_68
from prnet.geometry.layout import default_layout
from prnet.geometry.mesh import load_face_mesh
from prnet.geometry.mirror import flip_points, flip_posmap, mirror_map, reflect, symmetry_plane, template_map
from prnet.geometry.posmap import bilinear_sample, landmarks_from_posmap

# Landmarks where the template itself is nearly mirror-symmetric (<= 2.6 mm): nose, eye corners, mouth corners,
# lip midline and chin. The jaw sides and brows are asymmetric by up to ~9 mm, so their partners are not tested.
SYMMETRIC = [8, 27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45, 48, 51, 54, 57, 62, 66]


def face_pixels(size):
    rows, cols = np.nonzero(default_layout(size).face_mask)
    return rows, cols, np.stack([cols, rows], axis=1).astype(np.float64)


def test_mirror_map_is_a_read_only_involution_on_the_face():
    mirror = mirror_map(load_face_mesh(), 128)
    assert mirror.shape == (128, 128, 2) and mirror.dtype == np.float32 and not mirror.flags.writeable
    assert mirror.min() >= 0 and mirror.max() <= 127
    rows, cols, pixels = face_pixels(128)
    error = np.linalg.norm(bilinear_sample(mirror, mirror[rows, cols].astype(np.float64)) - pixels, axis=1)
    # measured: median 0.003 px, p90 0.012 px, 0.22 % over 0.5 px (the mouth's fill fan)
    assert np.median(error) < 0.05 and np.percentile(error, 90) < 0.1 and np.mean(error > 0.5) < 0.01


def test_mirror_map_labels_the_template_better_than_a_plain_u_flip():
    mesh = load_face_mesh()
    plane, (template, _) = symmetry_plane(mesh), template_map(mesh, 128)
    rows, cols, _ = face_pixels(128)

    def label_error(points):
        return np.linalg.norm(reflect(bilinear_sample(template, points), plane) - template[rows, cols], axis=1)

    ours = label_error(mirror_map(mesh, 128)[rows, cols].astype(np.float64))
    u_flip = label_error(np.stack([127 - cols, rows], axis=1).astype(np.float64))
    # measured (mm): mirror map median 0.24 / p90 0.52, plain u-flip 1.25 / 2.97
    assert np.median(ours) < 0.4 and np.percentile(ours, 90) < 0.8
    assert np.median(ours) < np.median(u_flip) / 3


def test_symmetry_plane_holds_the_midline_landmarks():
    mesh = load_face_mesh()
    plane = symmetry_plane(mesh)
    midline = mesh.vertices[mesh.landmark_ids[MIRROR_68 == np.arange(68)], 0]
    assert np.abs(midline - plane).max() < 1.0  # mm; the landmark least-squares plane is 0.5 mm to the side


def test_symmetric_landmarks_map_to_their_partners():
    layout = default_layout(128)
    partners = bilinear_sample(mirror_map(load_face_mesh(), 128), layout.landmark_uv.astype(np.float64))
    error = np.linalg.norm(partners - layout.landmark_uv[MIRROR_68], axis=1)
    assert error[SYMMETRIC].max() < 1.5  # px at 128; measured max 1.28 (mouth corner 54: 1.8 mm asymmetric)


def test_flip_points_mirrors_x_about_the_pixel_centres():
    points = np.array([[0.0, 3.0, 7.0], [9.0, 1.0, 2.0], [4.5, 0.0, 0.0]])
    np.testing.assert_array_equal(flip_points(points, 10), [[9.0, 3.0, 7.0], [0.0, 1.0, 2.0], [4.5, 0.0, 0.0]])
    np.testing.assert_array_equal(flip_points(flip_points(points, 10), 10), points)


@pytest.fixture(scope="module")
def synthetic():
    """One rendered synthetic face (128 px image, 256 px map) with some yaw, and the 256 px mirror map."""
    from prnet.data.synth.render import SynthConfig, render_sample

    sample = render_sample(3, 5, SynthConfig(image_size=128, occlusion_rate=0.0, degrade=False))
    return sample, mirror_map(load_face_mesh(), 256)


def test_flipping_a_sample_twice_gives_it_back(synthetic):
    sample, mirror = synthetic
    np.testing.assert_array_equal(sample.image[:, ::-1][:, ::-1], sample.image)
    twice = flip_posmap(flip_posmap(sample.posmap, mirror, 128), mirror, 128)
    rows, cols, _ = face_pixels(256)
    error = np.linalg.norm(twice[rows, cols] - sample.posmap[rows, cols], axis=1)
    assert np.median(error) < 0.02 and np.percentile(error, 99) < 0.2  # image px; measured 0.005 / 0.11


def test_flipped_map_landmarks_sit_on_the_mirrored_face(synthetic):
    sample, mirror = synthetic
    flipped = flip_posmap(sample.posmap, mirror, sample.image.shape[1])
    landmarks = landmarks_from_posmap(flipped, default_layout(256))
    # landmark k of the mirrored face is where the original face's partner landmark lands in the flipped image
    expected = flip_points(sample.landmarks[MIRROR_68], sample.image.shape[1])
    error = np.linalg.norm(landmarks - expected, axis=1)  # x, y and depth
    assert error[SYMMETRIC].max() < 2.0, error[SYMMETRIC]  # image px at 128; measured max 1.31 (mouth corner 48)
