"""Datasets: TensorDataset's samples, Subset and ConcatDataset indexing, random_split's sizes and partition."""

import numpy as np
import pytest

import neurenix as nx
from neurenix.utils.data import ConcatDataset, Dataset, Subset, TensorDataset, random_split


def pairs(n=10):
    return TensorDataset(nx.arange(n * 2).reshape(n, 2), nx.arange(n))


def test_tensor_dataset_samples_are_rows():
    ds = pairs()
    assert len(ds) == 10
    x, y = ds[3]
    assert x.tolist() == [6, 7] and y.item() == 3


def test_tensor_dataset_refuses_tensors_of_different_lengths():
    with pytest.raises(ValueError, match=r"tensor 1 has shape \(4,\), tensor 0 \(3, 2\)"):
        TensorDataset(nx.zeros(3, 2), nx.zeros(4))


def test_subset_and_concat():
    ds = pairs()
    sub = Subset(ds, [9, 0, 4])
    assert len(sub) == 3 and sub[0][1].item() == 9 and [s[1].item() for s in sub[[1, 2]]] == [0, 4]
    both = ds + sub
    assert isinstance(both, ConcatDataset) and len(both) == 13
    assert both[10][1].item() == 9 and both[-1][1].item() == 4 and both[2][1].item() == 2
    with pytest.raises(IndexError, match="index 13 is out of range for 13 samples"):
        both[13]


def test_a_dataset_without_getitem_says_so():
    with pytest.raises(NotImplementedError, match="Empty must define __getitem__"):
        type("Empty", (Dataset,), {})()[0]


@pytest.mark.parametrize("lengths, sizes", [([3, 7], [3, 7]), ([0.5, 0.5], [5, 5]), ([0.33, 0.33, 0.34], [4, 3, 3]),
                                            ([1.0], [10]), ([0.25, 0.75], [3, 7])])
def test_random_split_partitions_the_dataset(lengths, sizes):
    parts = random_split(pairs(), lengths, generator=np.random.default_rng(0))
    assert [len(p) for p in parts] == sizes
    seen = sorted(i for p in parts for i in p.indices)
    assert seen == list(range(10))


def test_random_split_is_seeded_by_its_generator_or_by_manual_seed():
    def split(gen=None):
        return [p.indices for p in random_split(pairs(), [4, 6], generator=gen)]

    assert split(np.random.default_rng(3)) == split(np.random.default_rng(3))
    nx.manual_seed(1)
    first = split()
    nx.manual_seed(1)
    assert split() == first


@pytest.mark.parametrize("lengths, message", [([3, 3], r"add up to 6, not to the dataset's size 10"),
                                              ([0.5, 0.6], "fractions must add up to 1"),
                                              ([-1, 11], "lengths must be at least 0")])
def test_random_split_refuses_bad_lengths(lengths, message):
    with pytest.raises(ValueError, match=message):
        random_split(pairs(), lengths)
