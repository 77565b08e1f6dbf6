"""Position maps: round trip of the 68 landmarks, batching, dense mesh, .obj output, `prnet data uv`."""

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from prnet.geometry import posmap as P
from prnet.geometry.layout import default_layout
from prnet.geometry.mesh import load_face_mesh
from prnet.io import PrnetInputError

POSES = [(0, 0, 0), (35, -10, 5), (-60, 15, -10), (80, 5, 20)]  # yaw, pitch, roll in degrees


def _posed(yaw: float, pitch: float, roll: float, scale: float = 0.85) -> np.ndarray:
    rotation = Rotation.from_euler("yxz", [yaw, pitch, roll], degrees=True).as_matrix()
    return P.weak_perspective(load_face_mesh().vertices, rotation, scale, (128.0, 120.0))


@pytest.mark.parametrize("pose", POSES)
def test_round_trip_landmarks_within_a_quarter_pixel(pose):
    mesh = load_face_mesh()
    vertices = _posed(*pose)
    posmap = P.position_map(vertices)
    assert posmap.shape == (256, 256, 3) and posmap.dtype == np.float32
    landmarks = P.landmarks_from_posmap(posmap)
    truth = vertices[mesh.landmark_ids]
    error_2d = np.linalg.norm(landmarks[:, :2] - truth[:, :2], axis=1)
    print(f"pose {pose}: mean 2D error {error_2d.mean():.3f} px, max {error_2d.max():.3f} px")
    assert error_2d.mean() < 0.25
    assert np.abs(landmarks[:, 2] - truth[:, 2]).mean() < 0.25
    # rounding to the nearest pixel instead of bilinear sampling is clearly worse
    rounded = posmap[np.round(default_layout().landmark_uv[:, 1]).astype(int),
                     np.round(default_layout().landmark_uv[:, 0]).astype(int)]
    assert np.linalg.norm(rounded[:, :2] - truth[:, :2], axis=1).mean() > 2 * error_2d.mean()


def test_batched_maps_and_landmarks_match_single_ones():
    batch = np.stack([_posed(*pose) for pose in POSES[:3]])
    maps = P.position_map(batch)
    assert maps.shape == (3, 256, 256, 3)
    landmarks = P.landmarks_from_posmap(maps)
    assert landmarks.shape == (3, 68, 3)
    for i in range(3):
        single = P.position_map(batch[i])
        np.testing.assert_allclose(maps[i], single, atol=1e-4)
        np.testing.assert_allclose(landmarks[i], P.landmarks_from_posmap(single), atol=1e-4)


def test_position_map_matches_the_numpy_oracle_rasterizer():
    from prnet.geometry.layout import uv_pixels
    from prnet.geometry.raster import interpolate, rasterize_reference

    mesh = load_face_mesh()
    vertices = _posed(20, 5, 0)
    tris = mesh.triangles[mesh.layout_triangles]
    tris = tris[(np.abs(mesh.uv[tris] - 0.5) < 0.15).all(axis=(1, 2))]  # the oracle is slow: the map's centre
    size = 128
    oracle = interpolate(rasterize_reference(uv_pixels(mesh.uv, size), tris, size, size), tris, vertices)
    fast = P.UVSampler.from_uv(uv_pixels(mesh.uv, size), tris, size).render(vertices)
    np.testing.assert_allclose(fast, oracle, atol=1e-3)


def test_dense_vertices_and_triangles_form_the_face_mesh():
    layout = default_layout()
    vertices = _posed(0, 0, 0)
    posmap = P.position_map(vertices)
    dense = P.dense_vertices(posmap)
    assert dense.shape == (int(layout.face_mask.sum()), 3)
    triangles = P.face_triangles()
    assert triangles.max() < len(dense)
    # a frontal face: the dense mesh spans the face between the jaw-line landmarks, not the neck
    lm = vertices[load_face_mesh().landmark_ids]
    assert dense[:, 0].min() > lm[:, 0].min() - 8 and dense[:, 0].max() < lm[:, 0].max() + 8
    assert dense[:, 1].max() < lm[8, 1] + 8
    edge = np.linalg.norm(dense[triangles[:, 0]] - dense[triangles[:, 1]], axis=1)
    assert np.median(edge) < 1.5  # neighbouring face pixels are neighbouring surface points


def test_write_obj_with_colours(tmp_path):
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
    path = tmp_path / "face.obj"
    P.write_obj(path, vertices, np.array([[0, 1, 2]]), colors=np.array([[255, 0, 0]] * 3, np.uint8))
    lines = path.read_text().splitlines()
    assert lines[0] == "v 0 0 0 1 0 0" and lines[-1] == "f 1 2 3" and len(lines) == 4
    P.write_obj(tmp_path / "plain.obj", vertices, np.array([[0, 1, 2]]))
    assert (tmp_path / "plain.obj").read_text().splitlines()[1] == "v 1 0 0"
    with pytest.raises(PrnetInputError, match="out of range"):
        P.write_obj(tmp_path / "bad.obj", vertices, np.array([[0, 1, 3]]))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(PrnetInputError, match="vertices must be"):
        P.position_map(np.zeros((100, 3)))
    with pytest.raises(PrnetInputError, match="does not match layout"):
        P.landmarks_from_posmap(np.zeros((128, 128, 3)))
    other = default_layout().__class__(**{**default_layout().__dict__, "name": "bfm-uv"})
    with pytest.raises(PrnetInputError, match="renders the 'prnet-tutte-v1' layout"):
        P.position_map(_posed(0, 0, 0), layout=other)


def test_data_uv_command_writes_layout_and_pictures(tmp_path):
    from prnet.cli import app
    from prnet.io import read_image_rgb
    from prnet.layout import UVLayout

    result = CliRunner().invoke(app, ["data", "uv", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["flipped_triangles"] == 0 and summary["face_pixels"] >= 40000
    assert summary["max_uv_difference_from_asset"] == 0.0  # the rebuild reproduces the packaged layout
    assert UVLayout.load(tmp_path / "layout.npz").layout_id == default_layout().layout_id
    for name in ("uv_wireframe", "uv_xyz", "face_mask", "weight_mask", "landmarks"):
        image = read_image_rgb(tmp_path / f"{name}.png")
        assert image.std() > 10, name  # not blank


def test_other_margin_is_another_layout(tmp_path):
    from prnet.geometry.uv_pictures import write_uv_pictures

    summary = write_uv_pictures(tmp_path, size=64, margin_mm=10.0)
    assert summary["layout"].startswith("prnet-tutte-v1-margin10mm-")
    assert summary["flipped_triangles"] == 0 and summary["covered_pixels"] == 64 * 64
    assert summary["max_uv_difference_from_asset"] is None  # a different cut: not comparable
