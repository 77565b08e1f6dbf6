"""FlipRunner (--tta flip): the mirrored crop's map comes back with the right UV labels, and errors that are odd
under a mirror cancel; other layouts and unknown modes are input errors."""

import numpy as np
import pytest
from typer.testing import CliRunner

from prnet.io import PrnetInputError
from prnet.runner import FlipRunner, Runner, with_tta
from tests.train_fixtures import tiny_layout

SIZE = 128


@pytest.fixture(scope="module")
def face():
    """A 128 px layout resized from the project's 256 px one (as the shipped 128 px model's) and the template
    face's map in it, with a textured image (content does not matter to the runner)."""
    from prnet.geometry.layout import default_layout
    from prnet.geometry.mesh import load_face_mesh
    from prnet.geometry.posmap import position_map, weak_perspective
    from prnet.geometry.resample import resize_layout, resize_uv_map

    full = default_layout(256)
    posmap = position_map(weak_perspective(load_face_mesh().vertices, np.eye(3), 256 / 250, (128, 128)), None, full)
    layout = resize_layout(full, SIZE)
    small = (resize_uv_map(posmap, SIZE) + 0.5) * SIZE / 256 - 0.5  # crop pixels of the 128 px crop
    image = np.random.default_rng(0).uniform(0, 1, (SIZE, SIZE, 3)).astype(np.float32)
    return layout, small.astype(np.float32), image


class Lookup:
    """A 'model' that knows one crop: it answers the crop with `truth + bias` and the mirrored crop with the
    mirrored truth + the same bias (a model whose error does not flip with the face)."""

    def __init__(self, layout, truth, image, bias, mirror):
        from prnet.geometry.mirror import flip_posmap

        self.name, self.input_size, self.layout = "lookup", SIZE, layout
        self.answers = [(image, truth + bias), (image[:, ::-1], flip_posmap(truth, mirror, SIZE) + bias)]

    def __call__(self, images):
        return np.stack([next(a for i, a in self.answers if np.array_equal(i, x)) for x in images]).astype(np.float32)


def face_errors(maps, truth, layout):
    rows, cols = np.nonzero(layout.face_mask)
    return np.linalg.norm(maps[:, rows, cols] - truth[None, rows, cols], axis=-1)


def test_flip_cancels_an_error_that_is_odd_under_the_mirror(face):
    from prnet.geometry.mirror import layout_mirror

    layout, truth, image = face
    mirror = layout_mirror(layout).mirror
    inner = Lookup(layout, truth, image, np.array([2.0, 0.0, 0.0], np.float32), mirror)
    runner = FlipRunner(inner)
    assert isinstance(runner, Runner) and runner.input_size == SIZE and runner.layout is layout
    assert runner.name == "lookup +flip"
    plain = face_errors(inner(image[None]), truth, layout)
    flipped = face_errors(runner(image[None]), truth, layout)
    np.testing.assert_allclose(plain, 2.0, atol=1e-4)  # the inner model is 2 px off in x everywhere
    # its x error changes sign in the mirrored crop and cancels; what is left is the mirror map's own error
    assert np.median(flipped) < 0.02 and np.percentile(flipped, 99) < 0.3


def test_flip_keeps_an_error_that_is_even_under_the_mirror(face):
    from prnet.geometry.mirror import layout_mirror

    layout, truth, image = face
    bias = np.array([0.0, 1.5, -1.0], np.float32)  # y and depth do not change sign in a left-right mirror
    runner = FlipRunner(Lookup(layout, truth, image, bias, layout_mirror(layout).mirror))
    out = runner(np.stack([image, image]))
    assert out.shape == (2, SIZE, SIZE, 3) and out.dtype == np.float32
    rows, cols = np.nonzero(layout.face_mask)
    np.testing.assert_allclose(np.median(out[:, rows, cols] - truth[rows, cols], axis=1), [bias, bias], atol=0.02)
    assert runner(image[None][:0]).shape == (0, SIZE, SIZE, 3)


def test_tta_modes_and_foreign_layouts(face):
    layout, truth, image = face
    inner = Lookup(layout, truth, image, np.zeros(3, np.float32), np.zeros((SIZE, SIZE, 2), np.float32))
    assert with_tta(inner, "none") is inner
    assert isinstance(with_tta(inner, "flip"), FlipRunner)
    with pytest.raises(PrnetInputError, match="--tta must be one of none, flip"):
        with_tta(inner, "mirror")
    inner.layout = tiny_layout(SIZE, name="bfm-uv")
    with pytest.raises(PrnetInputError, match="--tta flip need the project's UV layout.*--tta none"):
        FlipRunner(inner)


def test_eval_cli_refuses_an_unknown_tta_before_loading(tmp_path):
    from prnet.cli.app import app

    result = CliRunner().invoke(app, ["eval", "--data", str(tmp_path), "--tta", "both", "--model",
                                      str(tmp_path / "missing.pt")])
    assert result.exit_code == 2 and "--tta must be one of none, flip" in result.output
