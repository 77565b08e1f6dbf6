"""BFM / BFM_UV / .mat reading and 3DDFA's pose convention, on tiny files with known geometry."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from tests import realdata_fixtures as fx
from prnet.data.bfm import load_bfm, load_bfm_uv, pose_to_image, rotation_3ddfa, uv_to_pixels
from prnet.data.matfile import load_mat
from prnet.io import PrnetInputError


def test_load_bfm_interleaved_one_based(tmp_path):
    model = load_bfm(fx.write_bfm(tmp_path / "BFM.mat"))
    assert model.n_vertices == fx.N
    np.testing.assert_allclose(model.mean_vertices, fx.mean_vertices(), atol=1e-3)  # shapeMU + expMU
    tris = fx.grid_triangles()
    np.testing.assert_array_equal(model.triangles, np.vstack([tris[2:], tris[:2]]))  # tri then tri_mouth
    assert model.n_face_triangles == len(tris) - 2
    np.testing.assert_array_equal(model.landmark_ids, fx.landmark_ids())


def test_vertices_from_coefficients(tmp_path):
    model = load_bfm(fx.write_bfm(tmp_path / "BFM.mat"))
    shape_para, exp_para = np.zeros(199), np.zeros(29)
    shape_para[0], exp_para[0] = 3.0, -2.0
    expected = fx.mean_vertices()
    expected[:, 0] *= 1.03
    expected[:, 2] -= 200.0
    np.testing.assert_allclose(model.vertices(shape_para, exp_para), expected, atol=1e-2)
    # a general combination is mean + PC @ para, de-interleaved per vertex
    rng = np.random.default_rng(0)
    sp, ep = rng.normal(size=199), rng.normal(size=29)
    flat = fx.mean_vertices().reshape(-1) + fx.shape_basis() @ sp + fx.exp_basis() @ ep
    np.testing.assert_allclose(model.vertices(sp, ep), flat.reshape(-1, 3), rtol=1e-5, atol=0.05)


def test_rotation_3ddfa_sign_convention():
    pitch, yaw, roll = 0.3, -0.7, 0.2
    np.testing.assert_allclose(rotation_3ddfa(pitch, yaw, roll), fx.rotation_reference(pitch, yaw, roll), atol=1e-12)
    # hand-checked: 3DDFA's Ry(90 deg) sends the model's x axis to +z (towards the viewer)
    np.testing.assert_allclose(rotation_3ddfa(0, np.pi / 2, 0) @ [1, 0, 0], [0, 0, 1], atol=1e-12)
    # and its Rz(90 deg) sends x to -y (up in the model frame is +y), Rx(90 deg) sends y to -z
    np.testing.assert_allclose(rotation_3ddfa(0, 0, np.pi / 2) @ [1, 0, 0], [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(rotation_3ddfa(np.pi / 2, 0, 0) @ [0, 1, 0], [0, 0, -1], atol=1e-12)


def test_pose_to_image_flips_y():
    vertices = np.array([[10.0, 20.0, 30.0], [0.0, 0.0, 0.0]])
    pose = [0, 0, 0, 5.0, 7.0, 9.0, 2.0]
    out = pose_to_image(vertices, pose, image_height=100)
    np.testing.assert_allclose(out, [[25.0, 100 - 47.0 - 1, 69.0], [5.0, 100 - 7.0 - 1, 9.0]])
    pose = [0.1, 0.5, -0.3, 100, 120, 50, 0.8]
    np.testing.assert_allclose(pose_to_image(fx.mean_vertices(), pose, 450), fx.expected_image_vertices(pose, 450))


def test_bfm_uv_and_process_uv_mapping(tmp_path):
    uv = load_bfm_uv(fx.write_bfm_uv(tmp_path / "BFM_UV.mat"), fx.N)
    np.testing.assert_allclose(uv_to_pixels(uv, fx.S), fx.uv_pixels(), atol=1e-9)
    with pytest.raises(PrnetInputError, match="rows but the BFM has"):
        load_bfm_uv(tmp_path / "BFM_UV.mat", fx.N + 1)
    scipy.io.savemat(str(tmp_path / "bad.mat"), {"UV": fx.uv_coords() * 3})
    with pytest.raises(PrnetInputError, match=r"bad\.mat.*\[0, 1\]"):
        load_bfm_uv(tmp_path / "bad.mat")


@pytest.mark.parametrize(
    "override, message",
    [
        ({"shapePC": None}, "missing BFM field 'shapePC'"),
        ({"kpt_ind": None}, "missing BFM field 'kpt_ind'"),
        ({"shapePC": np.zeros((10, 199))}, "shapePC must be 360 x k"),
        ({"expPC": np.zeros((3 * fx.N + 3, 29))}, "expPC must be 360 x k"),
        ({"tri": np.zeros((4, 5))}, "tri must be 3 x T"),
        ({"tri": np.array([[0.0], [1.0], [2.0]])}, "1-based"),
        ({"kpt_ind": np.arange(1, 10, dtype=float)}, "68 landmark"),
        ({"shapeMU": np.zeros((5, 2))}, "3n x 1"),
    ],
)
def test_bfm_errors_name_the_file(tmp_path, override, message):
    path = fx.write_bfm(tmp_path / "BFM_bad.mat", **override)
    with pytest.raises(PrnetInputError, match=message) as info:
        load_bfm(path)
    assert "BFM_bad.mat" in str(info.value)


def test_corrupt_and_missing_mat(tmp_path):
    corrupt = tmp_path / "corrupt.mat"
    corrupt.write_bytes(b"MATLAB 5.0 MAT-file" + bytes(range(256)) * 3)
    with pytest.raises(PrnetInputError, match="corrupt.mat"):
        load_mat(corrupt)
    truncated = tmp_path / "truncated.mat"
    fx.write_bfm(tmp_path / "full.mat")
    truncated.write_bytes((tmp_path / "full.mat").read_bytes()[:2000])
    with pytest.raises(PrnetInputError, match="truncated.mat"):
        load_bfm(truncated)
    with pytest.raises(PrnetInputError, match="nothere.mat: file not found"):
        load_bfm(tmp_path / "nothere.mat")


def test_top_level_variables_instead_of_struct(tmp_path):
    scipy.io.savemat(str(tmp_path / "flat.mat"), fx.bfm_struct())
    model = load_bfm(tmp_path / "flat.mat")
    np.testing.assert_allclose(model.mean_vertices, fx.mean_vertices(), atol=1e-3)


def test_matlab_v73_hdf5(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "BFM73.mat"
    with h5py.File(path, "w", userblock_size=512) as f:  # MATLAB v7.3: HDF5 after a 512-byte header
        group = f.create_group("model")
        for key, value in fx.bfm_struct().items():
            group.create_dataset(key, data=np.asarray(value).T)  # column-major on disk
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 .")
    model = load_bfm(path)
    np.testing.assert_allclose(model.mean_vertices, fx.mean_vertices(), atol=1e-3)
    np.testing.assert_array_equal(model.landmark_ids, fx.landmark_ids())
    assert model.shape_basis.shape == (3 * fx.N, 199)
