"""`prnet train --init`: a new run from another checkpoint's weights (released models, progressive resizing)."""

import json

import pytest
import torch

from prnet.checkpoint import load_model
from prnet.io import PrnetInputError
from prnet.model import create_model
from prnet.train.config import make_config
from prnet.train.loop import init_weights, train
from prnet.train.rundir import read_metrics
from tests.train_fixtures import make_dataset, tiny_layout

TINY = dict(num_threads=1, num_workers=0, progress=False, tensorboard=False, log_every=1)


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    """A 64 px run trained for 30 steps on 40 tiny samples: (data dir, its last checkpoint)."""
    root = tmp_path_factory.mktemp("init")
    data = make_dataset(root / "data", n=40, size=64)
    result = train(make_config("cpu-tiny", data=str(data), out_dir=str(root / "run"), max_steps=30, save_every=30,
                               eval_every=30, **TINY))
    return data, result.last_checkpoint


def test_init_loads_the_weights_at_the_stored_and_at_a_larger_input_size(source_run):
    data, checkpoint = source_run
    from prnet.data.format import read_layout

    layout = read_layout(data)
    reference = load_model(checkpoint).model.state_dict()
    for size in (64, 96):  # same size, and progressive resizing (fully convolutional: same weight shapes)
        model = create_model("prnet-quarter", input_size=size)
        init_weights(model, checkpoint, layout)
        loaded = model.state_dict()
        assert all(torch.equal(loaded[k].float(), reference[k].float()) for k in reference), size


def test_a_run_started_with_init_begins_where_the_source_ended(tmp_path, source_run):
    data, checkpoint = source_run
    fresh = train(make_config("cpu-tiny", data=str(data), out_dir=str(tmp_path / "fresh"), max_steps=2, **TINY))
    started = train(make_config("cpu-tiny", data=str(data), out_dir=str(tmp_path / "init"), max_steps=2,
                                init_from=str(checkpoint), **TINY))
    first = [next(r["loss"] for r in read_metrics(run.out_dir) if "loss" in r) for run in (fresh, started)]
    assert first[1] < 0.7 * first[0]  # a trained start (30 steps): the first loss is well below a random start's (0.58x)
    assert json.loads((tmp_path / "init" / "config.json").read_text())["init_from"] == str(checkpoint)
    assert started.step == 2  # a new schedule from step 0, not the source's step 30


def test_init_refuses_another_architecture_layout_or_a_compressed_checkpoint(tmp_path, source_run):
    data, checkpoint = source_run
    from prnet.data.format import read_layout

    with pytest.raises(PrnetInputError, match="same architecture"):
        init_weights(create_model("prnet-half", input_size=64), checkpoint, read_layout(data))
    with pytest.raises(PrnetInputError, match="UV layout"):
        init_weights(create_model("prnet-quarter", input_size=64), checkpoint, tiny_layout(64, name="other-layout"))
    payload = torch.load(checkpoint, weights_only=True)
    payload["compression"] = {"svd": {}}
    torch.save(payload, tmp_path / "compressed.pt")
    with pytest.raises(PrnetInputError, match="compressed checkpoint"):
        init_weights(create_model("prnet-quarter", input_size=64), tmp_path / "compressed.pt", read_layout(data))
