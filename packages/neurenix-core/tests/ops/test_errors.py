"""Bad input gets an error that names the op, the shapes, the dims or the dtypes involved."""

import numpy as np
import pytest

import neurenix as nx
from neurenix.errors import DTypeError, ShapeError


@pytest.mark.parametrize("fn, error, pattern", [
    (lambda: nx.ones(3, 4) + nx.ones(5), ShapeError, r"add: shapes \(3, 4\) and \(5,\)"),
    (lambda: nx.ones(2, 3) * nx.ones(3, 2), ShapeError, r"mul: shapes \(2, 3\) and \(3, 2\)"),
    (lambda: nx.ones(2, 3) @ nx.ones(2, 3), ShapeError, r"matmul: shapes \(2, 3\) and \(2, 3\)"),
    (lambda: nx.ones(2, 2, 3) @ nx.ones(3, 3, 2), ShapeError, r"matmul \(batch dimensions\)"),
    (lambda: nx.ones(3) @ nx.tensor(2.0), ShapeError, "at least 1 dimension"),
    (lambda: nx.ones(6).reshape(4, -1), ShapeError, r"shape \(6,\).*\(4, -1\)"),
    (lambda: nx.ones(6).reshape(-1, -1), ShapeError, "invalid shape"),
    (lambda: nx.ones(2, 3).sum(2), IndexError, "dim 2 is out of range.*2 dimension"),
    (lambda: nx.ones(2, 3).permute(0, 0), ValueError, "not a permutation"),
    (lambda: nx.ones(2, 3).expand(4, 3), ShapeError, r"expand.*\(2, 3\)"),
    (lambda: nx.cat([nx.ones(2, 3), nx.ones(3, 2)], 0), ShapeError, "cat"),
    (lambda: nx.stack([nx.ones(2), nx.ones(3)]), ShapeError, "stack"),
    (lambda: nx.ones(3)[nx.tensor([0.5])], IndexError, "int64 or bool"),
    (lambda: nx.ones(2, 2)[nx.tensor([True, False, True])], IndexError, "mask"),
    (lambda: nx.where(nx.ones(2) > 0, nx.ones(3), nx.ones(2)), ShapeError, "where"),
    (lambda: nx.ones(2).amax(dim=0, keepdim=True).sum(5), IndexError, "out of range"),
    (lambda: nx.zeros(0).amax(), ValueError, "zero-size axis"),
    (lambda: -nx.tensor([True]), DTypeError, "neg.*bool"),
    (lambda: nx.tensor([True]) @ nx.tensor([True]), DTypeError, "matmul.*bool"),
    (lambda: nx.nn.functional.unfold(nx.ones(1, 1, 2, 2), 3), ShapeError, "larger than the input"),
    (lambda: nx.nn.functional.conv2d(nx.ones(1, 2, 4, 4), nx.ones(3, 3, 2, 2)), ShapeError, "channels"),
])
def test_bad_input_errors(fn, error, pattern):
    with pytest.raises(error, match=pattern):
        fn()


@pytest.mark.parametrize("a, b", [((3, 1), (1, 4)), ((2, 1, 4), (3, 1)), ((), (2, 3)), ((5, 1), (5,))])
def test_broadcasting_follows_numpy_exactly(a, b):
    assert (nx.ones(*a) + nx.ones(*b)).shape == np.broadcast_shapes(a, b)


@pytest.mark.parametrize("a, b", [((3,), (4,)), ((2, 3), (3, 2)), ((4, 1, 2), (3, 3))])
def test_shapes_numpy_refuses_are_refused(a, b):
    with pytest.raises(ShapeError):
        nx.ones(*a) + nx.ones(*b)
