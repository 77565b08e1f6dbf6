"""predict core: crop/uncrop round trips to sub-pixel accuracy, the full pipeline through an oracle runner,
shapes and pose with a real (random) PRNet, mesh rendering."""

import numpy as np
import pytest

from prnet.geometry.crop import crop_matrix, similarity_scale, warp_image
from prnet.geometry.posmap import bilinear_sample
from prnet.io import PrnetInputError
from prnet.predict.detect import Face, detect_faces, parse_bbox
from prnet.predict.draw import draw_dense, draw_landmarks, render_mesh
from prnet.predict.pipeline import check_image, crop_image, mean_shape_landmarks, reconstruct_faces, uncrop_posmap
from tests.predict_fixtures import BlobOracle, tiny_runner

BOXES = [((320.0, 240.0), 120.0), ((300.5, 200.25), 37.0), ((350.0, 260.0), 400.0), ((200.0, 300.0), 64.0)]


@pytest.mark.parametrize("center,side", BOXES)
def test_crop_uncrop_round_trip_subpixel(center, side):
    """Crop an image whose pixels hold their own (x, y); the identity position map mapped back must give
    the coordinates the crop sampled, i.e. crop and uncrop agree to sub-pixel accuracy, with z scaled."""
    h, w, s = 480, 640, 64
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    coords = np.stack([xx, yy, np.zeros_like(xx)], -1)
    m = crop_matrix(np.array(center), side, s)
    crop = crop_image(coords, m, s)
    vv, uu = np.mgrid[0:s, 0:s].astype(np.float32)
    grid = np.stack([uu, vv, np.full_like(uu, 7.0)], -1)
    back = uncrop_posmap(grid, m)
    inner = (slice(3, s - 3), slice(3, s - 3))
    assert np.abs(back[inner][..., :2] - crop[inner][..., :2]).max() < 0.02
    np.testing.assert_allclose(back[..., 2], 7.0 / similarity_scale(m), rtol=1e-6)


@pytest.mark.parametrize("center,side", BOXES + [((5.0, 5.0), 90.0), ((5000.0, 5.0), 90.0)])
def test_crop_image_equals_warp_of_whole_image(center, side):
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    m = crop_matrix(np.array(center), side, 64)
    diff = np.abs(crop_image(image, m, 64).astype(int) - warp_image(image, m, 64).astype(int))
    assert diff.max() <= 1


@pytest.mark.parametrize("box", [(280, 200, 360, 280), (300, 215, 340, 265), (200, 120, 440, 360), (306, 215, 336, 252)])
def test_pipeline_maps_back_to_the_blob(box):
    """Image with a Gaussian blob; the oracle puts its map's centre on the blob in the crop; mapped back to
    the image it must land on the blob's true position (sub-pixel), whatever the crop size and offset."""

    h, w, x0, y0 = 480, 640, 321.3, 239.6
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = np.round(255 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 6.0**2)))
    face = Face(box=np.array(box, float), score=1.0)
    oracle = BlobOracle(64)
    (fit,) = reconstruct_faces(image, oracle, [face], refine=False)
    c = (64 - 1) / 2
    center_point = bilinear_sample(fit.posmap, np.array([[c, c]]))[0]
    assert abs(center_point[0] - x0) < 0.1 and abs(center_point[1] - y0) < 0.1, center_point
    assert center_point[2] == pytest.approx(10.0 * fit.side / 64, rel=1e-5)  # z scaled back


def test_landmark_sampling_convention():
    """Landmarks are read with pixel centres at integer UVs (u = column, v = row)."""
    posmap = np.zeros((4, 4, 3), np.float32)
    posmap[..., 0] = np.arange(4)[None, :]  # x = column
    posmap[..., 1] = 10 * np.arange(4)[:, None]  # y = 10 * row
    out = bilinear_sample(posmap, np.array([[1.25, 2.5], [3.0, 3.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out[:, :2], [[1.25, 25.0], [3.0, 30.0], [0.0, 0.0]], atol=1e-6)


def test_reconstruct_with_random_prnet_shapes_and_pose():
    runner = tiny_runner(64)
    image = np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    faces = [parse_bbox("100,60,180,160"), parse_bbox("10,10,60,70")]
    fits = reconstruct_faces(image, runner, faces, refine=True, reference_landmarks=mean_shape_landmarks())
    assert len(fits) == 2
    for fit in fits:
        assert fit.landmarks.shape == (68, 3) and np.isfinite(fit.landmarks).all()
        assert fit.vertices.shape == (int(runner.layout.face_mask.sum()), 3)
        assert set(fit.pose) >= {"yaw", "pitch", "roll"} and all(np.isfinite([fit.pose[k] for k in ("yaw", "pitch", "roll")]))
    assert reconstruct_faces(image, runner, faces=[], refine=False) == []


def test_check_image_rejects_bad_arrays():
    with pytest.raises(PrnetInputError, match="too small"):
        check_image(np.zeros((20, 300, 3), np.uint8), "x.png")
    with pytest.raises(PrnetInputError, match="resize it first"):
        check_image(np.zeros((40, 33000, 3), np.uint8), "wide.png")
    with pytest.raises(PrnetInputError, match="HxWx3"):
        check_image(np.zeros((100, 100), np.uint8), "x.png")


def test_parse_bbox_and_detector_on_blank():
    face = parse_bbox("10, 20, 110, 140")
    assert face.box.tolist() == [10, 20, 110, 140] and face.score == 1.0
    for bad in ("1,2,3", "a,b,c,d", "10,10,5,20"):
        with pytest.raises(PrnetInputError, match="--bbox"):
            parse_bbox(bad)
    assert detect_faces(np.full((240, 320, 3), 128, np.uint8)) == []


def test_render_mesh_zbuffer_and_drawings():
    image = np.zeros((100, 100, 3), np.uint8)
    # far square (z=0) tilted -> darker, near triangle (z=50) facing the viewer -> brightest
    far = np.array([[10, 10, 0], [90, 10, 40], [10, 90, 0], [90, 90, 40]], float)
    near = np.array([[30, 30, 50], [70, 30, 50], [30, 70, 50]], float)
    vertices = np.vstack([far, near])
    triangles = np.array([[0, 1, 2], [1, 3, 2], [4, 5, 6]])
    out = render_mesh(image, vertices, triangles, alpha=1.0)
    assert out[5, 5].sum() == 0  # outside the mesh: untouched
    assert out[40, 40, 0] == 255  # the near triangle wins the z-buffer and faces the light
    assert 0 < out[80, 80, 0] < 255  # the tilted far square
    swapped = render_mesh(image, vertices, triangles[::-1], alpha=1.0)
    assert np.array_equal(out, swapped)  # drawing order does not matter with a z-buffer
    lm = np.random.default_rng(0).uniform(20, 80, (68, 3))
    assert draw_landmarks(image, lm).any() and draw_dense(image, lm).any() and not image.any()


def test_vertex_colors_bilinear_and_many_points():
    from prnet.predict.pipeline import vertex_colors

    image = np.zeros((50, 60, 3), np.uint8)
    image[..., 0] = np.arange(60)[None, :] * 4  # red grows with x
    image[..., 1] = np.arange(50)[:, None] * 5  # green grows with y
    points = np.random.default_rng(0).uniform([0, 0, 0], [59, 49, 10], (40000, 3))  # > 32767 (cv2.remap limit)
    colors = vertex_colors(image, points)
    assert colors.shape == (40000, 3)
    np.testing.assert_allclose(colors[:, 0] * 255, points[:, 0] * 4, atol=0.6)
    np.testing.assert_allclose(colors[:, 1] * 255, points[:, 1] * 5, atol=0.6)


def test_obj_text_known_output():
    from prnet.predict.io import obj_text

    vertices = np.array([[1.0, 2.0, 3.5], [0.0, -1.0, 0.25], [4.0, 5.0, 6.0]])
    colors = np.array([[0.1, 0.2, 0.3], [1.0, 0.0, 0.5], [0.0, 0.0, 0.0]])
    text = obj_text(vertices, np.array([[0, 1, 2]]), colors)
    assert text.splitlines() == [
        "v 1.0000 2.0000 3.5000 0.1000 0.2000 0.3000",
        "v 0.0000 -1.0000 0.2500 1.0000 0.0000 0.5000",
        "v 4.0000 5.0000 6.0000 0.0000 0.0000 0.0000",
        "f 1 2 3",
    ]
    assert obj_text(vertices, np.array([[2, 1, 0]])).splitlines()[-1] == "f 3 2 1"
