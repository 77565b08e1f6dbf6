"""The face mesh asset, its validation, the Tutte flattening and the default UV layout."""

import zipfile

import numpy as np
import pytest

from prnet.geometry import mesh as M
from prnet.geometry.layout import default_layout
from prnet.geometry.tutte import count_flips, flatten_face, mean_value_weights
from prnet.io import PrnetInputError, write_npz_atomic


def _grid(n: int = 12):
    """An (n x n)-vertex grid bent into a dome, each quad split in 4 around its centre (mirror-symmetric
    triangulation): a topological disk, counter-clockwise from the front."""
    u, v = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n))
    centres = np.stack([(u[:-1, :-1] + u[1:, 1:]).ravel() / 2, (v[:-1, :-1] + v[1:, 1:]).ravel() / 2], axis=1)
    xy = np.vstack([np.stack([u.ravel(), v.ravel()], axis=1), centres])
    vertices = np.column_stack([xy, 1.5 - 0.5 * (xy**2).sum(axis=1)]) * 40
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    m = n * n + np.arange(len(centres))
    tris = [np.stack([a, b, m], 1), np.stack([b, d, m], 1), np.stack([d, c, m], 1), np.stack([c, a, m], 1)]
    return vertices, np.concatenate(tris)


def test_asset_contents():
    mesh = M.load_face_mesh()
    n = mesh.num_vertices
    assert mesh.vertices.shape == (n, 3) and mesh.vertices.dtype == np.float32
    assert len(M.check_disk(mesh.triangles)) > 100  # one outer boundary loop, mouth closed
    assert len(set(mesh.landmark_ids.tolist())) == 68
    assert (mesh.regions[mesh.landmark_ids] == M.REGION_LANDMARK).all()
    assert mesh.mouth_fill_vertex == n - 1 and mesh.regions[mesh.mouth_fill_vertex] > M.REGION_OUTSIDE
    # millimetres: ~180 mm wide head, nose tip (landmark 30) the front-most landmark, chin below the eyes
    width = np.ptp(mesh.vertices[:, 0])
    assert 150 < width < 220
    lm = mesh.vertices[mesh.landmark_ids]
    assert lm[:, 2].argmax() == 30 and lm[8, 1] < lm[36, 1] and lm[36, 0] < lm[45, 0]
    counts = np.bincount(mesh.regions, minlength=4)
    assert counts[M.REGION_FACE] > 20000 and counts[M.REGION_EYES_NOSE_MOUTH] > 3000 and counts[0] > 10000
    assert mesh.face_vertex_mask.sum() == counts[1:].sum()
    mapped = mesh.uv[np.unique(mesh.triangles[mesh.layout_triangles])]
    assert np.isfinite(mapped).all() and mapped.min() >= 0 and mapped.max() <= 1
    with pytest.raises(ValueError):
        mesh.vertices[0, 0] = 1.0  # the cached asset is read-only


def test_asset_uv_has_no_flipped_triangles():
    mesh = M.load_face_mesh()
    flips = count_flips(mesh.uv.astype(np.float64), mesh.triangles[mesh.layout_triangles])
    assert flips == 0


def test_default_layout_face_coverage_and_masks():
    layout = default_layout()
    face_pixels = int(layout.face_mask.sum())
    print(f"face pixels: {face_pixels} of {layout.size ** 2}")
    assert layout.name == "prnet-tutte-v1" and layout.size == 256
    assert face_pixels >= 40000
    assert set(np.unique(layout.weight_mask).tolist()) == {0.0, 3.0, 4.0, 16.0}
    assert ((layout.weight_mask > 0) <= (layout.face_mask | (layout.weight_mask == 16))).all()
    assert (layout.landmark_uv > 5).all() and (layout.landmark_uv < 250).all()
    # eye corners mirror each other across the map's centre line (the template itself is ~0.5 mm off)
    for i, j in ((36, 45), (39, 42)):
        assert abs(layout.landmark_uv[i, 0] + layout.landmark_uv[j, 0] - 255) < 1.5
        assert abs(layout.landmark_uv[i, 1] - layout.landmark_uv[j, 1]) < 1.5
    tri = layout.face_triangles
    assert tri.min() >= 0 and tri.max() < face_pixels and len(tri) > 1.9 * face_pixels
    assert len(np.unique(tri)) > 0.99 * face_pixels
    assert default_layout() is layout


def test_missing_and_garbled_assets_raise_clear_errors(tmp_path):
    with pytest.raises(PrnetInputError, match="not found"):
        M.read_face_mesh(tmp_path / "nope.npz")
    garbled = tmp_path / "garbled.npz"
    garbled.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(PrnetInputError, match="corrupt"):
        M.read_face_mesh(garbled)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(M.ASSET_PATH.read_bytes()[:5000])
    with pytest.raises(PrnetInputError, match="corrupt"):
        M.read_face_mesh(truncated)
    arrays = M.face_mesh_arrays(M.load_face_mesh())
    write_npz_atomic(tmp_path / "partial.npz", **{k: v for k, v in arrays.items() if k != "regions"})
    with pytest.raises(PrnetInputError, match="lacks array"):
        M.read_face_mesh(tmp_path / "partial.npz")
    write_npz_atomic(tmp_path / "other.npz", values=np.zeros(3))
    with pytest.raises(PrnetInputError, match="not a 'prnet-face-mesh-v1'"):
        M.read_face_mesh(tmp_path / "other.npz")


def test_asset_with_a_hole_is_rejected(tmp_path):
    arrays = M.face_mesh_arrays(M.load_face_mesh())
    fan = np.flatnonzero((arrays["triangles"] == arrays["mouth_fill_vertex"]).any(axis=1))
    arrays["triangles"] = np.delete(arrays["triangles"], fan, axis=0)  # reopen the mouth
    arrays["layout_triangles"] = np.delete(arrays["layout_triangles"], fan)
    write_npz_atomic(tmp_path / "holed.npz", **arrays)
    with pytest.raises(PrnetInputError, match="not a topological disk: 2 boundary loops"):
        M.read_face_mesh(tmp_path / "holed.npz")
    assert zipfile.is_zipfile(tmp_path / "holed.npz")


def test_non_disk_meshes_are_rejected():
    vertices, triangles = _grid()
    tetrahedron = np.array([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]])
    with pytest.raises(PrnetInputError, match="0 boundary loops"):
        M.check_disk(tetrahedron)
    holed = np.delete(triangles, [60, 60 + 121, 60 + 242, 60 + 363], axis=0)  # remove an interior quad
    with pytest.raises(PrnetInputError, match="not a topological disk"):
        flatten_face(vertices, holed, np.ones(len(vertices), bool), 0.0)
    with pytest.raises(PrnetInputError, match="same direction"):
        M.boundary_loops(np.vstack([triangles, triangles[:1]]))


def test_flattening_a_dome_is_valid_and_symmetric():
    vertices, triangles = _grid()
    face = np.linalg.norm(vertices[:, :2], axis=1) < 25
    uv, keep = flatten_face(vertices, triangles, face, center_x=0.0, margin_mm=10.0)
    assert count_flips(uv, triangles[keep]) == 0
    used = np.unique(triangles[keep])
    assert np.isfinite(uv[used]).all() and uv[used].min() >= 0 and uv[used].max() <= 1
    assert (mean_value_weights(vertices, triangles).data > 0).all()
    # a mirror-symmetric mesh gets a mirror-symmetric layout: u(-x, y) = 1 - u(x, y), v(-x, y) = v(x, y)
    key = {tuple(np.round(p[:2], 6)): i for i, p in enumerate(vertices)}
    mirror = np.array([key[(round(-x, 6) + 0.0, round(y, 6))] for x, y in vertices[used, :2]])
    np.testing.assert_allclose(uv[used, 0], 1 - uv[mirror, 0], atol=1e-9)
    np.testing.assert_allclose(uv[used, 1], uv[mirror, 1], atol=1e-9)
