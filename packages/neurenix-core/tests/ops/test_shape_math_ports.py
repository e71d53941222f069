"""flip, roll, tril, triu, nonzero, masked_select, prod and median: argument errors that name the problem, return
types, and the PyTorch details the op-case table (values, gradients, zero sizes) does not pin down."""

import math

import numpy as np
import pytest

import neurenix as nx
from neurenix.errors import DTypeError, ShapeError

X = nx.tensor([[1.0, 4.0, 2.0], [3.0, 0.0, 5.0]])


@pytest.mark.parametrize("fn, error, pattern", [
    (lambda: X.flip(2), IndexError, "flip: dim 2 is out of range"),
    (lambda: X.flip((0, -2)), ValueError, r"flip: dim \(0, -2\) repeats an axis"),
    (lambda: nx.flip(X, None), TypeError, "flip: dims must be"),
    (lambda: X.flip(0.5), TypeError, "flip: dim must be an int"),
    (lambda: nx.flip([1.0, 2.0], 0), TypeError, "flip: expected a Tensor"),
    (lambda: X.roll((1, 2), 0), ValueError, r"roll: shifts \(1, 2\) and dims \(0,\) must have the same length"),
    (lambda: X.roll(1, (0, 1)), ValueError, r"roll: shifts \(1,\) and dims \(0, 1\)"),
    (lambda: X.roll((1, 2)), ValueError, r"roll: without dims, shifts must be one int, got \(1, 2\)"),
    (lambda: X.roll((), ()), ValueError, "roll: shifts must be an int or a non-empty sequence"),
    (lambda: X.roll(1, 2), IndexError, "roll: dim 2 is out of range"),
    (lambda: X.roll(1.5, 0), TypeError, "roll: shifts must be an int, got float 1.5"),
    (lambda: nx.tensor(1.0).roll(1, 0), IndexError, "roll: dims .* 0-d tensor"),
    (lambda: nx.ones(3).tril(), ShapeError, r"tril: expects a tensor of at least 2 dims.*\(3,\)"),
    (lambda: nx.tensor(1.0).triu(), ShapeError, r"triu: .*shape \(\)"),
    (lambda: X.triu(0.5), TypeError, "triu: diagonal must be an int"),
    (lambda: X.masked_select(nx.tensor([1, 0, 1])), DTypeError, "masked_select: mask must be a bool tensor, got "
                                                                 "neurenix.int64"),
    (lambda: X.masked_select(X), DTypeError, "masked_select: mask must be a bool tensor, got neurenix.float32"),
    (lambda: X.masked_select([True, False, True]), DTypeError, "masked_select: mask must be a bool tensor, got list"),
    (lambda: X.masked_select(nx.tensor([True, False])), ShapeError, r"masked_select: shapes \(2, 3\) and \(2,\)"),
    (lambda: X.nonzero(as_tuple=None), TypeError, "nonzero: as_tuple must be True or False"),
    (lambda: X.prod(2), IndexError, "prod: dim 2 is out of range"),
    (lambda: X.prod((0, 1)), TypeError, "prod: dim must be an int"),
    (lambda: X.prod(0, keepdim="yes"), TypeError, "prod: keepdim must be True or False"),
    (lambda: nx.prod(np.ones(2)), TypeError, "prod: expected a Tensor"),
    (lambda: X.median(-3), IndexError, "median: dim -3 is out of range"),
    (lambda: nx.zeros(2, 0).median(1), IndexError, r"median: dim 1 of a tensor of shape \(2, 0\) is empty"),
    (lambda: nx.tensor([True, False]).median(), DTypeError, "median: not defined for bool tensors"),
    (lambda: X.median(keepdim=True), ValueError, "median: keepdim=True needs a dim"),
    (lambda: nx.zeros(0, dtype=nx.int64).median(), ValueError, "median: an empty neurenix.int64 tensor has no median"),
    (lambda: nx.median("x"), TypeError, "median: expected a Tensor"),
])
def test_argument_errors_name_the_problem(fn, error, pattern):
    with pytest.raises(error, match=pattern):
        fn()


def test_median_with_dim_is_a_values_indices_named_tuple_like_max():
    out = X.median(1)
    assert type(out) is type(X.max(1)) and out._fields == ("values", "indices")
    values, indices = out
    np.testing.assert_array_equal(values.numpy(), [2.0, 3.0])
    np.testing.assert_array_equal(indices.numpy(), [2, 0])
    assert indices.dtype == nx.int64
    kept = nx.median(X, dim=0, keepdim=True)
    assert kept.values.shape == kept.indices.shape == (1, 3)
    whole = X.median()
    assert isinstance(whole, nx.Tensor) and whole.shape == () and whole.item() == 2.0


def test_median_is_the_lower_one_and_ties_take_the_stable_sort_index():
    assert nx.tensor([1.0, 4.0, 2.0, 3.0]).median().item() == 2.0  # not 2.5
    assert nx.tensor([4, 1, 3, 2]).median().dtype == nx.int64
    for row, index in (([1.0, 1.0, 2.0, 2.0], 1), ([2.0, 1.0, 1.0, 2.0, 2.0], 0)):  # PyTorch's picks too
        assert nx.tensor([row]).median(1).indices.item() == index


def test_median_propagates_nan_at_the_first_nan():
    x = nx.tensor([[5.0, math.nan, 1.0, math.nan], [1.0, 2.0, 3.0, 4.0]])
    values, indices = x.median(1)
    assert math.isnan(values[0].item()) and values[1].item() == 2.0
    np.testing.assert_array_equal(indices.numpy(), [1, 1])
    assert math.isnan(x.median().item()) and math.isnan(nx.zeros(0).median().item())


def test_median_gradient_goes_to_the_median_entry():
    x = nx.tensor([[3.0, 1.0, 2.0], [0.5, 0.25, 4.0]], requires_grad=True)
    x.median(1).values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0, 1], [1, 0, 0]])


def test_nonzero_gives_row_major_int64_indices_or_a_tuple():
    x = nx.tensor([[0.0, 2.0, 0.0], [math.nan, 0.0, -1.0]])
    idx = x.nonzero()
    assert idx.dtype == nx.int64 and idx.shape == (3, 2)
    np.testing.assert_array_equal(idx.numpy(), [[0, 1], [1, 0], [1, 2]])
    rows, cols = nx.nonzero(x, as_tuple=True)
    np.testing.assert_array_equal(rows.numpy(), [0, 1, 1])
    np.testing.assert_array_equal(cols.numpy(), [1, 0, 2])
    assert nx.zeros(0, 3).nonzero().shape == (0, 2)


@pytest.mark.parametrize("value, n", [(3.0, 1), (0.0, 0)])
def test_nonzero_of_a_0d_tensor_as_pytorch(value, n):
    assert nx.tensor(value).nonzero().shape == (n, 0)
    (only,) = nx.tensor(value).nonzero(as_tuple=True)
    assert only.shape == (n,) and only.dtype == nx.int64


def test_masked_select_broadcasts_mask_and_input():
    np.testing.assert_array_equal(X.masked_select(nx.tensor([True, False, True])).numpy(), [1, 2, 3, 5])
    v = nx.tensor([1.0, 2.0], requires_grad=True)
    out = v.masked_select(nx.tensor([[True, False], [True, True]]))
    np.testing.assert_array_equal(out.numpy(), [1, 1, 2])
    out.sum().backward()
    np.testing.assert_array_equal(v.grad.numpy(), [2, 1])  # v[0] selected twice
    assert nx.tensor(3.0).masked_select(nx.tensor(True)).shape == (1,)


def test_flip_and_roll_spellings():
    a = nx.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(a.flip(0, 1).numpy(), a.flip((0, 1)).numpy())
    np.testing.assert_array_equal(nx.flip(a, dims=[-1]).numpy(), [[2, 1, 0], [5, 4, 3]])
    np.testing.assert_array_equal(a.flip([]).numpy(), a.numpy())
    np.testing.assert_array_equal(a.roll(shifts=(1, 2), dims=(0, 1)).numpy(), [[4, 5, 3], [1, 2, 0]])
    np.testing.assert_array_equal(a.roll(-4, 1).numpy(), [[1, 2, 0], [4, 5, 3]])
    np.testing.assert_array_equal(a.roll(2 ** 70).numpy(), np.roll(np.arange(6).reshape(2, 3), 2 ** 70 % 6))
    assert nx.tensor(5.0).roll(3).item() == 5.0


def test_tril_triu_keep_bool_and_int_dtypes():
    b = nx.ones(2, 3, dtype=nx.bool)
    assert b.triu().dtype == nx.bool and b.triu().tolist() == [[True, True, True], [False, True, True]]
    assert nx.arange(6).reshape(2, 3).tril(-1).tolist() == [[0, 0, 0], [3, 0, 0]]


def test_prod_dtypes_follow_pytorch():
    assert nx.tensor([True, True]).prod().dtype == nx.int64
    assert nx.tensor([2, 3], dtype=nx.int8).prod().dtype == nx.int64
    assert nx.tensor([2, 3]).prod(dtype=nx.float32).dtype == nx.float32
    assert nx.tensor([[2.0, 3.0]]).prod(1, dtype=nx.float64).tolist() == [6.0]
    assert nx.zeros(0, 3).prod().item() == 1.0 and nx.zeros(0, 3).prod(0).tolist() == [1.0, 1.0, 1.0]
    assert nx.tensor(3.0).prod(0, keepdim=True).shape == ()


def _prod_grads(values):
    x = nx.tensor(values, dtype=nx.float64, requires_grad=True)
    (g,) = nx.autograd.grad(x.prod(), [x], create_graph=True)
    rows = [nx.autograd.grad(g[i], [x], retain_graph=True)[0].tolist() for i in range(len(values))]
    return g.tolist(), rows


def test_prod_gradients_at_zeros_are_exact():
    g, _ = _prod_grads([2.0, 0.0, 3.0])
    assert g == [0.0, 6.0, 0.0]  # one zero: only its own entry moves the product
    g, hessian = _prod_grads([0.0, 0.0, 5.0])
    assert g == [0.0, 0.0, 0.0]
    assert hessian == [[0.0, 5.0, 0.0], [5.0, 0.0, 0.0], [0.0, 0.0, 0.0]]  # two zeros: their mixed derivative


@pytest.mark.parametrize("fn", [
    lambda t: t.flip(0), lambda t: t.roll(1), lambda t: t.roll(1, 1), lambda t: t.tril(), lambda t: t.triu(1),
    lambda t: t.masked_select(t > 1), lambda t: t.nonzero(), lambda t: t.prod(1), lambda t: t.prod(),
    lambda t: t.median(), lambda t: t.median(1).values, lambda t: t.median(1).indices,
    lambda t: t.median(0, keepdim=True).values])
def test_results_are_new_tensors_that_change_in_place(fn):
    x = X.clone()
    before = x.numpy().copy()
    out = fn(x)
    out.add_(1)  # a view would refuse this (InPlaceError); PyTorch's results are new tensors too
    np.testing.assert_array_equal(x.numpy(), before)
