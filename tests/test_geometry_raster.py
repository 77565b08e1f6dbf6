"""The compiled rasterizer against its numpy oracle, z-buffer order, exact interpolation, no gaps."""

import numpy as np
import pytest

from prnet.geometry.raster import interpolate, rasterize, rasterize_reference, render


def _random_mesh(seed: int, n: int = 50, t: int = 120, size: int = 48):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-6, size + 6, (n, 2))
    xy[:10] = np.round(xy[:10])  # some vertices exactly on pixel centres (edge ties)
    return xy, rng.normal(size=n), rng.integers(0, n, (t, 3))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("use_depth", [False, True])
def test_rasterizer_matches_numpy_reference(seed, use_depth):
    xy, z, tris = _random_mesh(seed)
    depth = z if use_depth else None
    fast = rasterize(xy, tris, 40, 48, depth)
    slow = rasterize_reference(xy, tris, 40, 48, depth)
    assert fast.mask.sum() > 500
    np.testing.assert_array_equal(fast.triangle_id, slow.triangle_id)
    np.testing.assert_allclose(fast.barycentric, slow.barycentric, atol=1e-6)
    np.testing.assert_allclose(fast.depth[fast.mask], slow.depth[slow.mask], atol=1e-6)


def test_zbuffer_keeps_the_closest_triangle_in_either_order():
    xy = np.array([[0, 0], [20, 0], [0, 20], [0, 0], [20, 0], [0, 20]], float)
    depth = np.array([1, 1, 1, 5, 5, 5], float)  # second triangle is closer (larger z)
    for tris in (np.array([[0, 1, 2], [3, 4, 5]]), np.array([[3, 4, 5], [0, 1, 2]])):
        raster = rasterize(xy, tris, 24, 24, depth)
        closer = int(np.flatnonzero((tris == 3).any(axis=1))[0])
        assert (raster.triangle_id[raster.mask] == closer).all()
        np.testing.assert_allclose(raster.depth[raster.mask], 5.0)


def test_interpolation_is_exact_for_affine_attributes_and_square_has_no_gaps():
    size = 32
    xy = np.array([[0, 0], [size - 1, 0], [size - 1, size - 1], [0, size - 1]], float)
    tris = np.array([[0, 1, 2], [0, 2, 3]])
    attributes = np.stack([2 * xy[:, 0] - xy[:, 1] + 3, 0.5 * xy[:, 1]], axis=1)
    image, mask = render(xy, tris, attributes, size, size)
    assert mask.all(), "pixel centres on the shared diagonal must be covered"
    rows, cols = np.mgrid[0:size, 0:size]
    np.testing.assert_allclose(image[..., 0], 2 * cols - rows + 3, atol=1e-4)
    np.testing.assert_allclose(image[..., 1], 0.5 * rows, atol=1e-4)


def test_degenerate_and_non_finite_triangles_are_skipped():
    xy = np.array([[1, 1], [5, 5], [9, 9], [np.nan, 2], [2, 8], [8, 2]], float)
    raster = rasterize(xy, np.array([[0, 1, 2], [3, 4, 5]]), 12, 12)
    assert not raster.mask.any()
    assert interpolate(raster, np.array([[0, 1, 2]]), np.ones((6, 2))).sum() == 0


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="triangle vertex ids"):
        rasterize(np.zeros((3, 2)), np.array([[0, 1, 3]]), 4, 4)
    with pytest.raises(ValueError, match="screen_xy"):
        rasterize(np.zeros((3, 3)), np.array([[0, 1, 2]]), 4, 4)
