"""Synthetic data engine: shape model, rendering conventions and determinism (prnet.data.synth)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from prnet.data.synth.render import SynthConfig, load_assets, render_sample
from prnet.data.synth.shape import MIRROR_68, sample_shape_params
from prnet.geometry.crop import box_from_landmarks
from prnet.geometry.posmap import landmarks_from_posmap


@pytest.fixture(scope="module")
def assets():
    from prnet.data.synth.generate import limit_blas_threads

    limit_blas_threads()
    return load_assets()


def test_mirror_table_is_an_involution():
    assert sorted(MIRROR_68.tolist()) == list(range(68))
    assert (MIRROR_68[MIRROR_68] == np.arange(68)).all()


def test_zero_params_give_the_mean_shape(assets):
    model = assets.model
    np.testing.assert_allclose(model.deform({}), model.mean, atol=1e-5)


def test_identity_handles_are_local_symmetric_and_plausible(assets):
    model = assets.model
    lm_ids = assets.mesh.landmark_ids
    for name in model.identity_names:
        moved = model.deform({name: 2.5})[: model.n_mesh] - model.mean[: model.n_mesh]
        size = np.linalg.norm(moved, axis=1)
        assert 1.0 < size.max() < 15.0, f"{name}: max displacement {size.max():.1f} mm at 2.5 sigma"
        assert (size > 0.05).mean() < 0.6, f"{name} is not local"
    # a symmetric handle moves mirrored landmarks by mirrored vectors
    lm = model.deform({"jaw_width": 2.0})[lm_ids] - model.mean[lm_ids]
    np.testing.assert_allclose(lm[MIRROR_68] * [-1, 1, 1], lm, atol=0.35)


def test_expressions_move_what_they_should(assets):
    model, lm_ids = assets.model, assets.mesh.landmark_ids
    rest = model.mean[lm_ids]
    opened = model.deform({"jaw_open": 1.0})[lm_ids]
    assert opened[8, 1] < rest[8, 1] - 20  # chin drops
    assert abs(opened[27, 1] - rest[27, 1]) < 0.1  # nose bridge stays
    assert opened[66, 1] - opened[62, 1] < -10  # inner lips part
    smile = model.deform({"smile_r": 1.0})[lm_ids] - rest
    assert smile[48, 1] > 2 and abs(smile[54, 1]) < 0.5  # one-sided: right corner up, left corner still
    blink = model.deform({"blink_l": 1.0})[lm_ids]
    gap = lambda p: np.linalg.norm(p[44, :2] - p[46, :2])  # noqa: E731  (upper lid onto lower lid, in 2D)
    assert gap(blink) < 0.2 * gap(rest)


def test_sampled_params_cover_asymmetry_and_neutral_faces(assets):
    rng = np.random.default_rng(0)
    draws = [sample_shape_params(rng, assets.model) for _ in range(300)]
    neutral = sum(all(not d.get(n) for n in assets.model.expression_names) for d in draws)
    lopsided = sum(abs(d.get("smile_r", 0) - d.get("smile_l", 0)) > 0.3 for d in draws)
    assert 30 < neutral < 150 and lopsided > 5


def test_render_is_deterministic_and_consistent(assets):
    config = SynthConfig()
    a, b = render_sample(7, 3, config, assets), render_sample(7, 3, config, assets)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.posmap, b.posmap)
    assert json.dumps(a.params) == json.dumps(b.params)
    other = render_sample(8, 3, config, assets)
    assert not np.array_equal(a.image, other.image)
    # landmarks are read from the map; the map follows the project's conventions
    np.testing.assert_array_equal(a.landmarks, landmarks_from_posmap(a.posmap, assets.layout))
    face = a.posmap[assets.layout.face_mask]
    assert face[:, 2].min() >= -1e-3 and np.isfinite(face).all()
    assert a.image.shape == (256, 256, 3) and a.image.dtype == np.uint8


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_crop_is_prnets_landmark_box(assets, index):
    """The crop is box_from_landmarks (1.5x) of the 68 landmarks: they span 256/1.5 px around the centre."""
    sample = render_sample(index, 11, SynthConfig(degrade=False), assets)
    centre, side = box_from_landmarks(sample.landmarks[:, :2])
    np.testing.assert_allclose(centre, [127.5, 127.5], atol=1.0)
    assert abs(side - 256.0) < 3.0
    assert abs(sample.params["pose"]["yaw"]) <= 90 and abs(sample.params["pose"]["roll"]) <= 30


def test_pose_moves_the_landmarks_as_documented(assets):
    """Positive yaw turns the face to the image right: the nose tip moves right of the face centre."""
    from prnet.data.synth import render as render_module

    original = render_module.sample_pose
    try:
        for yaw in (-60.0, 60.0):
            render_module.sample_pose = lambda rng, yaw=yaw: {"yaw": yaw, "pitch": 0.0, "roll": 0.0,
                                                             "source_face_px": 256.0}
            lm = render_sample(0, 0, SynthConfig(degrade=False, occlusion_rate=0.0), assets).landmarks
            nose_offset = lm[30, 0] - (lm[0, 0] + lm[16, 0]) / 2
            assert np.sign(nose_offset) == np.sign(yaw)
            near, far = (0, 16) if yaw > 0 else (16, 0)  # the subject's right jaw end (0) turns towards us
            assert lm[near, 2] > lm[far, 2] + 20 and lm[30, 2] > lm[far, 2]  # larger z = closer
    finally:
        render_module.sample_pose = original


def test_compiled_kernels_match_their_numpy_oracles(assets):
    from prnet.data.synth.appearance import vertex_normals
    from prnet.data.synth.kernels import interpolate_fast, vertex_normals_fast
    from prnet.geometry.raster import interpolate, rasterize

    mesh = assets.mesh
    verts = assets.model.deform({"jaw_open": 0.5, "smile_l": 1.0})[: assets.model.n_mesh]
    np.testing.assert_allclose(vertex_normals_fast(verts, mesh.triangles), vertex_normals(verts, mesh.triangles),
                               atol=2e-4)
    xy = verts[:, :2] * [1.0, -1.0] + 128.0
    raster = rasterize(xy, mesh.triangles, 256, 256, depth=verts[:, 2])
    colours = np.random.default_rng(0).random((len(verts), 3)).astype(np.float32)
    np.testing.assert_allclose(interpolate_fast(raster, mesh.triangles, colours),
                               interpolate(raster, mesh.triangles, colours), atol=1e-5)


def test_recorded_camera_reproduces_the_landmarks(assets):
    """params record enough to rebuild the geometry: shape -> camera -> crop frame lands on the map's landmarks."""
    from prnet.geometry.crop import transform_points

    model, ids = assets.model, assets.mesh.landmark_ids
    for index in (0, 5):
        sample = render_sample(index, 21, SynthConfig(), assets)
        cam = sample.params["camera"]
        verts = model.deform(sample.params["shape"])[: model.n_mesh]
        rotated = (verts - model.centre) @ np.asarray(cam["rotation"]).T
        crop = transform_points(rotated * [1.0, -1.0, 1.0], np.asarray(cam["crop_matrix_mm"]))
        crop[:, 2] += cam["z_shift"]
        assert abs(crop[:, 2].min()) < 1e-3  # min z over the mesh is 0
        error = np.linalg.norm(crop[ids, :2] - sample.landmarks[:, :2], axis=1)
        assert error.mean() < 0.25 and error.max() < 1.0  # worst at the inner lips of an open mouth (stretched fill)
