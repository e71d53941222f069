"""default_collate: how samples of each kind become a batch."""

import collections

import numpy as np
import pytest

import neurenix as nx
from neurenix.utils.data import default_collate

Point = collections.namedtuple("Point", "x y")


def test_tensors_are_stacked():
    out = default_collate([nx.tensor([1.0, 2.0]), nx.tensor([3.0, 4.0])])
    assert out.shape == (2, 2) and out.tolist() == [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize("samples, dtype", [([1.5, 2.5], nx.float64), ([1, 2], nx.int64), ([True, False], nx.bool_),
                                            ([np.float32(1), np.float32(2)], nx.float32)])
def test_numbers_become_a_tensor(samples, dtype):
    out = default_collate(samples)
    assert out.dtype == dtype and out.shape == (2,)


def test_numpy_arrays_are_stacked_keeping_their_dtype():
    out = default_collate([np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32)])
    assert out.shape == (2, 2, 3) and out.dtype == nx.float32


def test_structures_are_collated_field_by_field():
    batch = [{"x": nx.ones(2), "label": "a", "pair": (1, 2.0)}, {"x": nx.zeros(2), "label": "b", "pair": (3, 4.0)}]
    out = default_collate(batch)
    assert out["x"].shape == (2, 2) and out["label"] == ["a", "b"]
    assert isinstance(out["pair"], list) and out["pair"][0].tolist() == [1, 3] and out["pair"][1].dtype == nx.float64
    point = default_collate([Point(1, nx.ones(3)), Point(2, nx.ones(3))])
    assert isinstance(point, Point) and point.x.tolist() == [1, 2] and point.y.shape == (2, 3)


@pytest.mark.parametrize("batch, error, message", [
    ([[1, 2], [1]], RuntimeError, "should be of equal size"),
    ([object(), object()], TypeError, "found object"),
])
def test_bad_batches_are_refused(batch, error, message):
    with pytest.raises(error, match=message):
        default_collate(batch)
