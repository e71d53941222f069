"""DataLoader: batch sizes and contents, order with and without shuffle, drop_last, len(), collate_fn."""

import numpy as np
import pytest

import neurenix as nx
from neurenix.utils.data import DataLoader, TensorDataset


def dataset(n=10):
    return TensorDataset(nx.arange(n * 2, dtype=nx.float32).reshape(n, 2), nx.arange(n))


@pytest.mark.parametrize("n, batch_size, drop_last, sizes", [
    (10, 3, False, [3, 3, 3, 1]), (10, 3, True, [3, 3, 3]), (10, 5, True, [5, 5]), (10, 20, False, [10]),
    (10, 20, True, []), (0, 4, False, []),
])
def test_batch_sizes_and_len(n, batch_size, drop_last, sizes):
    loader = DataLoader(dataset(n), batch_size=batch_size, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(sizes) and [len(y) for _, y in batches] == sizes


def test_batches_in_order_without_shuffle():
    batches = list(DataLoader(dataset(), batch_size=4))
    x, _ = batches[0]
    assert isinstance(batches[0], list) and x.shape == (4, 2) and x.dtype == nx.float32
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_shuffle_visits_every_sample_once_in_a_new_order_each_pass():
    loader = DataLoader(dataset(50), batch_size=8, shuffle=True, generator=np.random.default_rng(0))
    first = [i for _, y in loader for i in y.tolist()]
    second = [i for _, y in loader for i in y.tolist()]
    assert sorted(first) == sorted(second) == list(range(50)) and first != second
    assert first[:8] == np.random.default_rng(0).permutation(50)[:8].tolist()


def test_shuffle_follows_manual_seed_without_a_generator():
    def one_pass():
        return [i for _, y in DataLoader(dataset(20), batch_size=6, shuffle=True) for i in y.tolist()]

    nx.manual_seed(7)
    first = one_pass()
    nx.manual_seed(7)
    assert one_pass() == first and sorted(first) == list(range(20))


def test_rows_stay_with_their_labels_when_shuffled():
    for x, y in DataLoader(dataset(), batch_size=3, shuffle=True):
        np.testing.assert_array_equal(x.numpy(), np.stack([2 * y.numpy(), 2 * y.numpy() + 1], 1))


def test_collate_fn_and_unbatched_mode():
    loader = DataLoader(dataset(5), batch_size=2, collate_fn=lambda samples: len(samples))
    assert list(loader) == [2, 2, 1]
    samples = list(DataLoader(dataset(3), batch_size=None))
    assert len(samples) == 3 and samples[1][1].item() == 1 and samples[1][0].shape == (2,)


def test_a_plain_list_is_a_dataset():
    batches = list(DataLoader([(1.0, 2), (3.0, 4), (5.0, 6)], batch_size=2))
    assert batches[0][0].dtype == nx.float64 and batches[0][1].tolist() == [2, 4]


@pytest.mark.parametrize("kwargs, error, message", [
    ({"batch_size": 0}, ValueError, "batch_size must be at least 1"),
    ({"shuffle": "yes"}, TypeError, "shuffle must be True or False"),
    ({"generator": 0}, TypeError, "generator must be a neurenix.Generator"),
    ({"collate_fn": 3}, TypeError, "collate_fn must be callable"),
    ({"num_workers": -1}, ValueError, "num_workers must be at least 0"),
])
def test_bad_arguments_are_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        DataLoader(dataset(), **kwargs)


def test_a_dataset_without_len_is_refused():
    with pytest.raises(TypeError, match="dataset must have __len__ and __getitem__"):
        DataLoader(iter([1, 2]))


def test_a_neurenix_generator_orders_shuffles_and_splits_reproducibly():
    data = nx.utils.data.TensorDataset(nx.arange(10.0))

    def order(seed):
        loader = nx.utils.data.DataLoader(data, batch_size=10, shuffle=True, generator=nx.Generator().manual_seed(seed))
        return next(iter(loader))[0].tolist()

    assert order(3) == order(3) and sorted(order(3)) == list(range(10)) and order(3) != order(4)
    split = [s.indices for s in nx.utils.data.random_split(data, [4, 6], generator=nx.Generator().manual_seed(1))]
    again = [s.indices for s in nx.utils.data.random_split(data, [4, 6], generator=nx.Generator().manual_seed(1))]
    assert split == again and sorted(split[0] + split[1]) == list(range(10))
    with pytest.raises(TypeError, match="random_split: generator must be a neurenix.Generator"):
        nx.utils.data.random_split(data, [4, 6], generator=7)
