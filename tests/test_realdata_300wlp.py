"""BFM UV layouts and the 300W-LP conversion, checked against closed-form position maps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests import realdata_fixtures as fx
from tests.realdata_fixtures import bfm_files  # noqa: F401 (a pytest fixture, shared)
from prnet.data.bfm import load_bfm, load_bfm_uv
from prnet.data.bfm_layout import bfm_tutte_layout, bfm_uv_layout, eyes_nose_mouth_distance, make_layout
from prnet.data.format import read_layout, read_manifest, read_sample
from prnet.data.w300lp import CropConfig, convert_300wlp, convert_sample, find_pairs, read_fit
from prnet.geometry.crop import crop_matrix, transform_points
from prnet.io import PrnetInputError
from prnet.layout import WEIGHT_EYES_NOSE_MOUTH, WEIGHT_FACE, WEIGHT_LANDMARK

POSE = [0.15, -0.35, 0.1, 70.0, 50.0, 30.0, 0.0035]  # radians, pixels, scale (grid ~40 px wide)
HEIGHT, WIDTH = 120, 140


@pytest.fixture(scope="module")
def model(bfm_files):
    return load_bfm(bfm_files[0])


@pytest.fixture(scope="module")
def uv_layout(model, bfm_files):
    return bfm_uv_layout(model, load_bfm_uv(bfm_files[1], model.n_vertices), fx.S)


def _expected_sample(pose, shape_para=None, exp_para=None):
    """Hand-computed crop-frame vertices: 3DDFA pose, y flip, PRNet box, crop, z shifted to min 0."""
    vertices = fx.expected_image_vertices(pose, HEIGHT, shape_para, exp_para)
    kpt = vertices[fx.landmark_ids(), :2]
    lo, hi = kpt.min(0), kpt.max(0)
    matrix = crop_matrix((lo + hi) / 2, 1.5 * (hi - lo).mean(), fx.S)
    crop = transform_points(vertices, matrix)
    crop[:, 2] -= crop[:, 2].min()
    return crop, matrix


def test_bfm_uv_layout(uv_layout, model):
    layout, _ = uv_layout
    assert layout.name == "bfm-uv" and layout.size == fx.S
    np.testing.assert_allclose(layout.landmark_uv, fx.uv_pixels()[fx.landmark_ids()], atol=1e-5)
    _, inside = fx.expected_posmap(np.zeros((fx.N, 3)))
    # the grid's rectangle (its edge pixels lie exactly on triangle edges: covered up to rounding)
    strictly_inside = inside & np.roll(inside, 1, 0) & np.roll(inside, -1, 0) & np.roll(inside, 1, 1) & np.roll(inside, -1, 1)
    assert np.all(layout.face_mask <= inside) and np.all(strictly_inside <= layout.face_mask)
    weights = layout.weight_mask
    from prnet.geometry.layout import landmark_support

    support = np.zeros_like(inside)
    support[landmark_support(layout.landmark_uv, fx.S)] = True  # the 2x2 pixels bilinear sampling reads
    assert np.all(weights[support] == WEIGHT_LANDMARK)
    assert set(np.unique(weights[~inside & ~support])) == {0.0}
    # 4 where the covering triangle's 3 corners are all within 0.12 eye-corner distances of an eye, nose or
    # mouth landmark (landmark vertices count as in the region), else 3
    _, sampler = uv_layout
    near = eyes_nose_mouth_distance(model) < 0.12
    near[fx.landmark_ids()] = True
    expected = np.where(near[sampler.corners].all(axis=1), WEIGHT_EYES_NOSE_MOUTH, WEIGHT_FACE)
    keep = ~support[sampler.rows, sampler.cols]
    np.testing.assert_array_equal(weights[sampler.rows, sampler.cols][keep], expected[keep])
    assert set(np.unique(expected[keep])) == {WEIGHT_FACE, WEIGHT_EYES_NOSE_MOUTH}
    # grid mesh over the face pixels: two triangles per 2x2 block of the (19 x 23)-pixel rectangle
    blocks = layout.face_mask[:-1, :-1] & layout.face_mask[1:, :-1] & layout.face_mask[:-1, 1:] & layout.face_mask[1:, 1:]
    assert layout.face_triangles.shape == (2 * int(blocks.sum()), 3) and blocks.sum() >= 17 * 21
    assert layout.face_triangles.max() == int(layout.face_mask.sum()) - 1


def test_position_map_is_exact(model, uv_layout):
    layout, sampler = uv_layout
    shape_para, exp_para = np.zeros(199), np.zeros(29)
    shape_para[0], exp_para[0] = 2.0, 5.0
    from prnet.data.w300lp import Fit3DDFA

    fit = Fit3DDFA(pose=np.array(POSE), shape_para=shape_para, exp_para=exp_para)
    image = np.random.default_rng(0).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    sample = convert_sample(image, fit, model, sampler, CropConfig(size=fx.S, perturb=False))
    crop_vertices, matrix = _expected_sample(POSE, shape_para, exp_para)
    np.testing.assert_allclose(sample.landmarks, crop_vertices[fx.landmark_ids()], atol=1e-3)
    expected, inside = fx.expected_posmap(crop_vertices)
    np.testing.assert_allclose(sample.posmap[layout.face_mask], expected[layout.face_mask], atol=2e-3)
    assert np.all(sample.posmap[~layout.face_mask] == 0)
    assert sample.posmap[inside][:, 2].min() == pytest.approx(0.0, abs=2e-3)
    np.testing.assert_allclose(sample.params["crop_matrix"], matrix)
    assert sample.image.shape == (fx.S, fx.S, 3)
    # the landmarks read back from the map (bilinear at landmark_uv) are the landmark vertices
    from prnet.geometry.posmap import landmarks_from_posmap

    np.testing.assert_allclose(landmarks_from_posmap(sample.posmap, layout), sample.landmarks, atol=2e-3)


def test_perturbed_box_stays_in_range(model, uv_layout):
    _, sampler = uv_layout
    from prnet.data.w300lp import Fit3DDFA, sample_rng

    fit = Fit3DDFA(pose=np.array(POSE), shape_para=np.zeros(199), exp_para=np.zeros(29))
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    crop_vertices, _ = _expected_sample(POSE)
    kpt = fx.expected_image_vertices(POSE, HEIGHT)[fx.landmark_ids(), :2]
    mean_size = (kpt.max(0) - kpt.min(0)).mean()
    centre = (kpt.max(0) + kpt.min(0)) / 2
    sides = []
    for index in range(20):
        sample = convert_sample(image, fit, model, sampler, CropConfig(size=fx.S), sample_rng(0, index))
        box_center, side = np.array(sample.params["box_center"]), sample.params["box_side"]
        assert np.all(np.abs(box_center - centre) <= 0.1 * mean_size + 1e-9)
        assert 0.9 * 1.5 * mean_size - 1e-9 <= side <= 1.1 * 1.5 * mean_size + 1e-9
        sides.append(side)
        again = convert_sample(image, fit, model, sampler, CropConfig(size=fx.S), sample_rng(0, index))
        np.testing.assert_array_equal(again.posmap, sample.posmap)  # deterministic per (seed, index)
    assert np.std(sides) > 0


def _write_300wlp(root, n=3):
    poses = []
    for k in range(n):
        subset = root / ("AFW" if k % 2 == 0 else "AFW_Flip")
        subset.mkdir(parents=True, exist_ok=True)
        pose = [0.1 * k, 0.3 - 0.2 * k, -0.05 * k, 65.0 + 3 * k, 55.0, 30.0, 0.0035]
        fx.write_image(subset / f"AFW_{k}_0.jpg", HEIGHT, WIDTH, seed=k)
        fx.write_fit(subset / f"AFW_{k}_0.mat", pose)
        poses.append(pose)
    (root / "landmarks" / "AFW").mkdir(parents=True)
    fx.write_fit(root / "landmarks" / "AFW" / "AFW_0_0_pts.mat", poses[0])  # no image: ignored
    return poses


def test_convert_300wlp_resume_and_exact_maps(tmp_path, bfm_files):
    bfm, bfm_uv = bfm_files
    poses = _write_300wlp(tmp_path / "300W_LP")
    out = tmp_path / "out"
    config = CropConfig(size=fx.S, perturb=False)
    first = convert_300wlp(tmp_path / "300W_LP", bfm, out, bfm_uv, config=config, limit=2, progress=False,
                           map_encoding="float32")
    assert (first.total, first.written, first.already_done) == (2, 2, 0)
    with pytest.raises(PrnetInputError, match="other settings"):  # a different file list is not a resume
        convert_300wlp(tmp_path / "300W_LP", bfm, out, bfm_uv, config=config, progress=False, map_encoding="float32")
    full = tmp_path / "full"
    convert_300wlp(tmp_path / "300W_LP", bfm, full, bfm_uv, config=config, limit=2, progress=False, map_encoding="float32")
    (full / "samples" / "000001.npz").unlink()  # an interrupted run
    again = convert_300wlp(tmp_path / "300W_LP", bfm, full, bfm_uv, config=config, limit=2, progress=False,
                           map_encoding="float32")
    assert (again.written, again.already_done) == (1, 1)
    manifest = read_manifest(full)
    assert read_layout(full).layout_id == manifest.layout_id
    pairs = find_pairs(tmp_path / "300W_LP")
    assert [p[0].name for p in pairs] == ["AFW_0_0.jpg", "AFW_2_0.jpg", "AFW_1_0.jpg"]  # AFW/ before AFW_Flip/
    for index, pose_index in ((0, 0), (1, 2)):
        sample = read_sample(full, index, manifest)
        crop_vertices, _ = _expected_sample(poses[pose_index])
        np.testing.assert_allclose(sample.landmarks, crop_vertices[fx.landmark_ids()], atol=1e-3)
        expected, _ = fx.expected_posmap(crop_vertices)
        mask = read_layout(full).face_mask
        np.testing.assert_allclose(sample.posmap[mask], expected[mask], atol=2e-3)
        assert sample.params["source"] == pairs[index][0].relative_to(tmp_path / "300W_LP").as_posix()


def test_workers_and_seed_determinism(tmp_path, bfm_files):
    bfm, bfm_uv = bfm_files
    _write_300wlp(tmp_path / "300W_LP", n=4)
    config = CropConfig(size=fx.S)
    convert_300wlp(tmp_path / "300W_LP", bfm, tmp_path / "a", bfm_uv, config=config, seed=3, progress=False)
    convert_300wlp(tmp_path / "300W_LP", bfm, tmp_path / "b", bfm_uv, config=config, seed=3, workers=2, progress=False)
    convert_300wlp(tmp_path / "300W_LP", bfm, tmp_path / "c", bfm_uv, config=config, seed=4, progress=False)
    for index in range(4):
        name = f"samples/{index:06d}.npz"
        a, b, c = (np.load(tmp_path / d / name) for d in "abc")
        np.testing.assert_array_equal(a["posmap"], b["posmap"])
        assert json.loads(str(a["params"])) == json.loads(str(b["params"]))
        assert not np.array_equal(a["posmap"], c["posmap"])


def test_conversion_errors(tmp_path, bfm_files):
    bfm, bfm_uv = bfm_files
    root = tmp_path / "300W_LP"
    with pytest.raises(PrnetInputError, match="directory not found"):
        find_pairs(root)
    root.mkdir()
    with pytest.raises(PrnetInputError, match="no images"):
        find_pairs(root)
    _write_300wlp(root, n=2)
    fx.write_image(root / "AFW" / "orphan.jpg")
    with pytest.raises(PrnetInputError, match="orphan.jpg"):
        find_pairs(root)
    (root / "AFW" / "orphan.jpg").unlink()
    (root / "AFW" / "AFW_0_0.mat").write_bytes(b"not a mat file at all" * 20)
    with pytest.raises(PrnetInputError, match="AFW_0_0.mat"):
        convert_300wlp(root, bfm, tmp_path / "o1", bfm_uv, config=CropConfig(size=fx.S), progress=False)
    report = convert_300wlp(root, bfm, tmp_path / "o2", bfm_uv, config=CropConfig(size=fx.S), progress=False,
                            skip_bad=True)
    assert (report.written, len(report.failed)) == (1, 1) and "AFW_0_0.mat" in report.failed[0]
    assert "AFW_0_0.mat" in (tmp_path / "o2" / "skipped.txt").read_text()
    fx.write_fit(root / "AFW" / "AFW_0_0.mat", [0, 0, 0, 0, 0, 0, 1.0], Pose_Para=np.zeros((1, 5)))
    with pytest.raises(PrnetInputError, match="AFW_0_0.mat: Pose_Para must hold 7"):
        read_fit(root / "AFW" / "AFW_0_0.mat")
    with pytest.raises(PrnetInputError, match="needs --bfm-uv"):
        make_layout("bfm-uv", load_bfm(bfm), None, fx.S)


def test_tutte_layout_of_the_bfm(model):
    layout, sampler = bfm_tutte_layout(model, fx.S)
    assert layout.name == "bfm-tutte"
    assert layout.face_mask.sum() > 0.5 * fx.S * fx.S  # the square is filled
    assert np.all((layout.landmark_uv >= 0) & (layout.landmark_uv <= fx.S - 1))
    # a planar grid flattens affinely-ish: rendering the mean shape's x gives a map increasing along u
    x_map = sampler.render(model.mean_vertices.astype(np.float64))[..., 0]
    row = x_map[fx.S // 2][layout.face_mask[fx.S // 2]]
    assert np.all(np.diff(row) > 0)
