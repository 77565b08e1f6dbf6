"""The on-the-fly stream yields exactly the samples the writer would write, split over DataLoader workers."""

from __future__ import annotations

import numpy as np
import torch

from prnet.data.synth.render import SynthConfig, render_sample
from prnet.data.synth.stream import SynthStream


def test_stream_matches_render_sample_in_one_process():
    stream = SynthStream(seed=2, start=10, limit=2)
    samples = list(stream)
    assert [s.index for s in samples] == [10, 11]
    np.testing.assert_array_equal(samples[1].image, render_sample(11, 2, SynthConfig()).image)


def test_workers_split_the_indices_without_overlap():
    stream = SynthStream(seed=2, limit=4, transform=lambda s: s.index)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2)
    assert sorted(loader) == [0, 1, 2, 3]
    assert list(stream.indices(1, 3)) == [1]
    assert list(SynthStream(limit=7).indices(1, 3)) == [1, 4]


def test_stream_is_endless_by_default():
    stream = SynthStream(seed=0)
    indices = stream.indices()
    assert [next(indices) for _ in range(1000)][-1] == 999
