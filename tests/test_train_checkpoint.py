import numpy as np
import pytest
import torch

from prnet.checkpoint import load_checkpoint, load_model, save_checkpoint
from prnet.io import PrnetInputError
from prnet.model import create_model
from tests.train_fixtures import tiny_layout


@pytest.fixture()
def small():
    torch.manual_seed(0)
    return create_model("prnet-quarter", input_size=32), tiny_layout(32)


def test_round_trip_restores_weights_config_layout_and_meta(tmp_path, small):
    model, layout = small
    model.eval()
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, model, layout, step=7, train_config={"lr": 1e-3}, tensor=torch.arange(3))
    loaded = load_model(path)
    assert not loaded.model.training
    assert loaded.config == model.config
    assert loaded.layout.layout_id == layout.layout_id
    assert loaded.meta["step"] == 7 and loaded.meta["train_config"] == {"lr": 1e-3}
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
    # weights_only loading: no pickled code in the file
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "prnet-checkpoint" and raw["layout_id"] == layout.layout_id
    assert list(tmp_path.iterdir()) == [path]  # atomic write leaves no temp files


def test_save_unwraps_compiled_and_wrapped_models(tmp_path, small):
    model, layout = small
    wrapper = torch.nn.Module()
    wrapper._orig_mod = model  # what torch.compile's OptimizedModule holds
    save_checkpoint(tmp_path / "c.pt", wrapper, layout)
    assert all(not k.startswith("_orig_mod") for k in load_checkpoint(tmp_path / "c.pt")["state_dict"])


def test_missing_corrupt_foreign_and_incompatible_files_raise_clear_errors(tmp_path, small):
    model, layout = small
    with pytest.raises(PrnetInputError, match="not found"):
        load_model(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip at all")
    with pytest.raises(PrnetInputError, match="not a readable prnet checkpoint"):
        load_model(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(PrnetInputError, match="not a prnet checkpoint"):
        load_model(tmp_path / "foreign.pt")
    save_checkpoint(tmp_path / "good.pt", model, layout)
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(PrnetInputError, match="truncated"):
        load_model(tmp_path / "truncated.pt")
    raw = torch.load(tmp_path / "good.pt", weights_only=True)
    raw["model_config"]["width"] = 0.5
    torch.save(raw, tmp_path / "mismatch.pt")
    with pytest.raises(PrnetInputError, match="do not fit"):
        load_model(tmp_path / "mismatch.pt")
    raw["version"] = 99
    torch.save(raw, tmp_path / "future.pt")
    with pytest.raises(PrnetInputError, match="version 99"):
        load_model(tmp_path / "future.pt")


def test_layout_arrays_survive_exactly(tmp_path, small):
    model, layout = small
    save_checkpoint(tmp_path / "c.pt", model, layout)
    back = load_model(tmp_path / "c.pt").layout
    for name in ("landmark_uv", "face_mask", "weight_mask", "face_triangles"):
        np.testing.assert_array_equal(getattr(back, name), getattr(layout, name))
