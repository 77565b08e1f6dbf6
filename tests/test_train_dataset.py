import numpy as np
import pytest

from prnet.data.dataset import PositionMapDataset, split_indices, train_val_datasets
from prnet.io import PrnetInputError
from tests.train_fixtures import make_dataset


def test_dataset_reads_samples_and_layout(tmp_path):
    root = make_dataset(tmp_path / "d", n=5, size=32)
    ds = PositionMapDataset(root)
    assert len(ds) == 5 and ds.layout.size == 32
    sample = ds[3]
    assert sample.index == 3 and sample.image.shape == (32, 32, 3) and sample.posmap.shape == (32, 32, 3)
    assert sample.image.dtype == np.uint8 and sample.posmap.dtype == np.float32


def test_split_is_deterministic_disjoint_and_five_percent():
    train, val = split_indices(range(100))
    assert (train, val) == split_indices(list(reversed(range(100))))
    assert len(val) == 5 and not set(train) & set(val) and sorted(train + val) == list(range(100))
    assert split_indices(range(100), seed=1)[1] != val
    assert len(split_indices(range(3))[1]) == 1  # tiny datasets still validate on something
    assert split_indices(range(10), val_fraction=0.0)[1] == []


def test_train_val_datasets_and_errors(tmp_path):
    root = make_dataset(tmp_path / "d", n=6, size=32)
    train, val = train_val_datasets(root, val_fraction=0.2)
    assert len(train) + len(val) == 6 and not set(train.indices) & set(val.indices)
    with pytest.raises(PrnetInputError, match="not a prnet dataset"):
        PositionMapDataset(tmp_path)
    with pytest.raises(PrnetInputError, match="not found"):
        PositionMapDataset(tmp_path / "missing")
    with pytest.raises(PrnetInputError, match="not present"):
        PositionMapDataset(root, indices=[0, 99])
