"""Ops PyTorch scripts use: values against NumPy, gradients (first and second order) in float64."""

import math
import warnings

import numpy as np
import pytest

import neurenix as nx
from neurenix.errors import ShapeError
from neurenix.testing import gradcheck, gradgradcheck


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _t(a, requires_grad=False):
    return nx.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def _grads(fn, *arrays):
    inputs = [_t(a, True) for a in arrays]
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


# -- sorting --------------------------------------------------------------------------------------

@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_matches_numpy_and_is_stable(dim, descending):
    a = np.array([[3, 1, 2, 1], [0, 5, 5, -1], [2, 2, 2, 2]])
    values, indices = nx.tensor(a).sort(dim, descending=descending)
    ref = np.argsort(-a if descending else a, axis=dim, kind="stable")
    np.testing.assert_array_equal(indices.numpy(), ref)
    np.testing.assert_array_equal(values.numpy(), np.take_along_axis(a, ref, dim))
    np.testing.assert_array_equal(nx.argsort(nx.tensor(a), dim, descending).numpy(), ref)


def test_sort_puts_nan_last_ascending_and_first_descending():
    x = nx.tensor([1.0, math.nan, -2.0, math.inf])
    np.testing.assert_array_equal(x.sort().indices.numpy(), [2, 0, 3, 1])
    np.testing.assert_array_equal(x.sort(descending=True).indices.numpy(), [1, 3, 0, 2])


@pytest.mark.parametrize("largest", [True, False])
def test_topk(largest):
    a = _rand(3, 5)
    values, indices = nx.tensor(a).topk(2, dim=1, largest=largest)
    ref = np.sort(a, 1)[:, ::-1][:, :2] if largest else np.sort(a, 1)[:, :2]
    np.testing.assert_allclose(values.numpy(), ref)
    np.testing.assert_allclose(np.take_along_axis(a, indices.numpy(), 1), ref)
    with pytest.raises(ValueError, match="topk: k"):
        nx.tensor(a).topk(6)


@pytest.mark.parametrize("fn", [lambda x: x.sort(1).values, lambda x: x.sort(0, descending=True).values,
                                lambda x: x.topk(2).values * x.topk(2).values])
def test_sort_values_are_differentiable(fn):
    _grads(fn, _rand(3, 4))


def test_unique():
    x = nx.tensor([[3, 1], [3, 2]])
    values, inverse, counts = nx.unique(x, return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(values.numpy(), [1, 2, 3])
    np.testing.assert_array_equal(inverse.numpy(), [[2, 0], [2, 1]])
    np.testing.assert_array_equal(counts.numpy(), [1, 1, 2])
    assert x.unique().shape == (3,)


# -- scans and norms ------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 5, 8])
@pytest.mark.parametrize("dim", [0, -1])
def test_cumsum_cumprod_match_numpy(n, dim):
    a = _rand(n, n + 1)
    np.testing.assert_allclose(nx.cumsum(_t(a), dim).numpy(), np.cumsum(a, dim))
    np.testing.assert_allclose(_t(a).cumprod(dim).numpy(), np.cumprod(a, dim))


def test_cumsum_of_ints_and_bools_is_int64():
    assert nx.tensor([True, False, True]).cumsum(0).tolist() == [1, 1, 2]
    assert nx.tensor([1, 2, 3]).cumprod(0).dtype == nx.int64


@pytest.mark.parametrize("fn", [lambda x: x.cumsum(1), lambda x: x.cumprod(0), lambda x: (x * 0).cumprod(1)])
def test_scans_are_differentiable(fn):
    a = _rand(3, 5)
    a[1, 2] = 0.0  # cumprod through a zero
    _grads(fn, a)


def _np_norm(a, p, axis, keepdim):
    if p == math.inf:
        return np.abs(a).max(axis=axis, keepdims=keepdim)
    if p == -math.inf:
        return np.abs(a).min(axis=axis, keepdims=keepdim)
    p = 2 if p == "fro" else p
    return (np.abs(a) ** p).sum(axis=axis, keepdims=keepdim) ** (1 / p)


@pytest.mark.parametrize("p", [2, 1, 3, math.inf, -math.inf, "fro"])
@pytest.mark.parametrize("dim, keepdim", [(None, False), (1, False), ((0, 1), True), (-1, True)])
def test_norm_matches_numpy(p, dim, keepdim):
    a = _rand(3, 4)
    np.testing.assert_allclose(_t(a).norm(p, dim, keepdim).numpy(), _np_norm(a, p, dim, keepdim))


@pytest.mark.parametrize("p", [2, 1, 3])
def test_norm_gradients_and_zero_subgradient(p):
    _grads(lambda x: x.norm(p, dim=1), _rand(3, 4))
    x = _t(np.zeros(3), True)
    x.norm(p).backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0)


def test_cdist():
    a, b = _rand(2, 3, 4), _rand(2, 5, 4, seed=1)
    ref = np.linalg.norm(a[:, :, None] - b[:, None], axis=-1)
    np.testing.assert_allclose(nx.cdist(_t(a), _t(b)).numpy(), ref)
    _grads(lambda x, y: nx.cdist(x, y, p=1.5), a[0], b[0])


# -- einsum ---------------------------------------------------------------------------------------

EINSUMS = [("ij,jk->ik", ((2, 3), (3, 4))), ("bij,bjk->bik", ((2, 2, 3), (2, 3, 4))), ("i,i->", ((3,), (3,))),
           ("ij->ji", ((2, 3),)), ("bi,bi->b", ((2, 3), (2, 3))), ("nd,md->nm", ((2, 3), (4, 3))), ("ij->", ((2, 3),)),
           ("ij,jk,kl->il", ((2, 3), (3, 2), (2, 2))), ("i,j->ij", ((2,), (3,))), ("bij,jk", ((2, 3, 4), (4, 2))),
           ("ijk,ik->j", ((2, 3, 4), (2, 4)))]


@pytest.mark.parametrize("eq, shapes", EINSUMS)
def test_einsum_matches_numpy(eq, shapes):
    arrays = [_rand(*s, seed=k) for k, s in enumerate(shapes)]
    np.testing.assert_allclose(nx.einsum(eq, *[_t(a) for a in arrays]).numpy(), np.einsum(eq, *arrays), atol=1e-12)


@pytest.mark.parametrize("eq, shapes", EINSUMS[:3] + EINSUMS[5:6])
def test_einsum_is_differentiable(eq, shapes):
    _grads(lambda *ts: nx.einsum(eq, *ts), *[_rand(*s, seed=k) for k, s in enumerate(shapes)])


@pytest.mark.parametrize("eq, shapes, error", [("ij,jk->ik", ((2, 3), (4, 4)), ShapeError),
                                               ("ii->i", ((2, 2),), ValueError), ("ij->k", ((2, 2),), ValueError),
                                               ("...i->i", ((2, 2),), ValueError), ("ij", ((2,),), ShapeError)])
def test_einsum_errors(eq, shapes, error):
    with pytest.raises(error, match="einsum"):
        nx.einsum(eq, *[nx.zeros(s) for s in shapes])


# -- indexing-like ops ----------------------------------------------------------------------------

def test_scatter_and_scatter_add_match_torch_semantics():
    x, src = np.zeros((3, 4)), _rand(2, 4)
    index = np.array([[0, 1, 2, 0], [2, 0, 0, 1]])
    ref = x.copy()
    for i in range(2):
        for j in range(4):
            ref[index[i, j], j] += src[i, j]
    out = _t(x).scatter_add(0, nx.tensor(index), _t(src))
    np.testing.assert_allclose(out.numpy(), ref)
    unique = np.array([[0, 1, 2, 0]])
    ref = x.copy()
    ref[unique[0], np.arange(4)] = src[0]
    np.testing.assert_allclose(_t(x).scatter(0, nx.tensor(unique), _t(src)).numpy(), ref)
    np.testing.assert_allclose(_t(x).scatter(1, nx.tensor([[3], [0], [1]]), 7.0).numpy()[:, [3, 0, 1]].diagonal(), 7)


def test_scatter_gradients():
    index = nx.tensor([[0, 1, 2, 0], [2, 0, 0, 1]])
    _grads(lambda x, s: x.scatter_add(0, index, s), _rand(3, 4), _rand(2, 4, seed=1))
    _grads(lambda x, s: x.scatter(0, index[:1], s), _rand(3, 4), _rand(2, 4, seed=1))


def test_inplace_variants_record_through_assign():
    x = _t(_rand(3, 4))
    w = _t(_rand(3, 4), True)
    y = w * 1
    y.masked_fill_(y > 0, 0.0)
    y.scatter_add_(1, nx.tensor([[0], [1], [2]]), nx.ones(3, 1, dtype=nx.float64))
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), (w.numpy() <= 0).astype(float))
    x.scatter_(0, nx.tensor([[1, 1, 1, 1]]), 5.0)
    assert (x.numpy()[1] == 5).all()
    with pytest.raises(RuntimeError, match="masked_fill_"):
        w.masked_fill_(w > 0, 1.0)


def test_index_select_masked_fill_repeat():
    a = _rand(3, 4)
    idx = nx.tensor([2, 0, 2])
    np.testing.assert_allclose(_t(a).index_select(1, idx).numpy(), a[:, [2, 0, 2]])
    np.testing.assert_allclose(_t(a).masked_fill(_t(a) > 0, -1.0).numpy(), np.where(a > 0, -1, a))
    np.testing.assert_array_equal(nx.tensor([1, 2]).masked_fill(nx.tensor([True, False]), 2.7).tolist(), [2, 2])
    np.testing.assert_allclose(_t(a).repeat(2, 1, 3).numpy(), np.tile(a, (2, 1, 3)))
    _grads(lambda x: x.repeat(2, 3) * x.index_select(0, idx).repeat(1, 3)[:1], a)
    with pytest.raises(ShapeError, match="masked_fill"):
        _t(a[0]).masked_fill(_t(a) > 0, 0.0)


@pytest.mark.parametrize("n, size", [(7, 3), (6, 2), (2, 5), (0, 2)])
def test_split_and_chunk_like_torch(n, size):
    a = np.arange(n * 2.0).reshape(n, 2)
    pieces = _t(a).split(size)
    assert [p.shape[0] for p in pieces] == [min(size, n - i) for i in range(0, n, size)] or n == 0
    if n:
        np.testing.assert_array_equal(np.concatenate([p.numpy() for p in pieces]), a)
    chunks = _t(a).chunk(3)
    assert sum(c.shape[0] for c in chunks) == n and len(chunks) <= 3
    sections = _t(a).split([1, n - 1]) if n else ()
    assert [p.shape[0] for p in sections] == ([1, n - 1] if n else [])


def test_t_mm_bmm():
    a, b = _rand(2, 3), _rand(3, 4)
    np.testing.assert_allclose(_t(a).t().numpy(), a.T)
    np.testing.assert_allclose(_t(a).mm(_t(b)).numpy(), a @ b)
    np.testing.assert_allclose(nx.bmm(_t(a[None]), _t(b[None])).numpy(), (a @ b)[None])
    for bad in (lambda: _t(a).mm(_t(b[0])), lambda: nx.bmm(_t(a), _t(b)), lambda: nx.zeros(2, 2, 2).t()):
        with pytest.raises(ShapeError):
            bad()


# -- numeric --------------------------------------------------------------------------------------

@pytest.mark.parametrize("a, b", [([-7, 7, -7, 7, 0], [2, -2, -2, 2, 3]),
                                  ([-3.5, 2.5, 0.5, -1.0], [2.0, -0.7, 1.0, 3])])
def test_floor_divide_and_remainder_match_python(a, b):
    x, y = nx.tensor(a), nx.tensor(b)
    np.testing.assert_allclose((x // y).numpy(), np.floor_divide(a, b))
    np.testing.assert_allclose((x % y).numpy(), np.remainder(a, b), atol=1e-6)
    np.testing.assert_allclose((x // 2).numpy(), np.floor_divide(a, 2))
    np.testing.assert_allclose((5 // y).numpy(), np.floor_divide(5, b))
    assert (x // y).dtype == x.dtype


@pytest.mark.parametrize("dtype", [nx.float32, nx.float64])
def test_floor_is_exact_for_every_float(dtype):
    # beyond 2**63 a cast to int64 is undefined (floor(1e19) was -9.2e18); such floats are integers already
    big = 2.0 ** 23 if dtype is nx.float32 else 2.0 ** 52
    values = [1e19, -1e19, 2.0 ** 63, -(2.0 ** 64), 3e38, big + 2, -big - 2, big - 0.5, -big + 0.5, 2.5, -2.5,
              -0.0, -0.25, math.inf, -math.inf, math.nan]
    want = np.floor(np.array(values, dtype=dtype.np))
    got = nx.tensor(values, dtype=dtype).floor().numpy()
    np.testing.assert_array_equal(got, want)
    assert np.signbit(got).tolist() == np.signbit(want).tolist()  # floor(-0.0) is -0.0
    big = np.array([1e19, -3e19], dtype=dtype.np)
    np.testing.assert_array_equal((nx.tensor(big) // 1.0).numpy(), big)


@pytest.mark.parametrize("divisor", [0, nx.tensor([2, 0])], ids=["scalar", "tensor"])
def test_integer_division_by_zero_raises(divisor):
    for op in (lambda: nx.tensor([7, 1]) // divisor, lambda: nx.tensor([7, 1]) % divisor):
        with pytest.raises(RuntimeError, match="division by zero"):
            op()


def test_remainder_is_differentiable():
    _grads(lambda x: x % 0.7, np.array([0.1, 1.3, -0.4, 2.2]))


def test_erf_accuracy_and_gradients():
    xs = np.linspace(-6, 6, 241)
    np.testing.assert_allclose(nx.erf(_t(xs)).numpy(), [math.erf(v) for v in xs], rtol=1e-15, atol=0)
    _grads(nx.erf, np.array([-2.0, -1.0, -0.3, 0.0, 0.05, 1.0, 1.7, 7.0]))  # both fits, their seam at 1, the tail
    x = _t([0.3, -1.2], True)
    (g,) = nx.autograd.grad(nx.erf(x).sum(), x)
    np.testing.assert_allclose(g.numpy(), 2 / math.sqrt(math.pi) * np.exp(-np.array([0.3, -1.2]) ** 2), rtol=1e-15)


@pytest.mark.parametrize("fn, ref", [(nx.log1p, math.log1p), (nx.expm1, math.expm1)], ids=["log1p", "expm1"])
@pytest.mark.parametrize("dtype", [nx.float32, nx.float64])
def test_log1p_expm1_keep_relative_precision(fn, ref, dtype):
    xs = np.concatenate([np.geomspace(1e-30, 0.5, 30), -np.geomspace(1e-30, 0.5, 30), [0.0, -0.0, 3.0, 40.0]])
    xs = xs.astype(dtype.np)
    got = fn(nx.tensor(xs)).numpy()
    want = np.array([ref(v) for v in xs.astype(np.float64)])
    np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype.np).eps, atol=0)
    assert np.signbit(got[-3]), "-0.0 keeps its sign"


def test_log1p_expm1_edges_and_gradients():
    assert nx.expm1(nx.tensor([-50.0, -math.inf, math.inf, math.nan])).tolist()[:3] == [-1.0, -1.0, math.inf]
    assert nx.log1p(nx.tensor([math.inf])).tolist() == [math.inf]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log(0), as NumPy's log1p(-1) warns
        assert nx.log1p(nx.tensor([-1.0])).tolist() == [-math.inf]
    _grads(nx.log1p, np.array([-0.5, 1e-12, 0.3, 4.0]))
    _grads(nx.expm1, np.array([-3.0, -1e-12, 0.2, 2.0]))
    assert nx.log1p(nx.tensor([3])).dtype == nx.float32 and nx.expm1(nx.tensor([True])).dtype == nx.float32


@pytest.mark.parametrize("dtype", [nx.float32, nx.float64])
def test_round_ties_to_even_and_keeps_signs(dtype):
    values = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, -0.4, 1e17, 2.0 ** 52 + 1, math.inf, -math.inf, math.nan]
    a = np.array(values, dtype=dtype.np)
    got = nx.tensor(a).round().numpy()
    np.testing.assert_array_equal(got, np.round(a))
    np.testing.assert_array_equal(np.signbit(got), np.signbit(np.round(a)))  # round(-0.4) is -0.0
    for fn, ref in [(nx.ceil, np.ceil), (nx.trunc, np.trunc)]:
        np.testing.assert_array_equal(fn(nx.tensor(a)).numpy(), ref(a))
        np.testing.assert_array_equal(np.signbit(fn(nx.tensor(a)).numpy()), np.signbit(ref(a)))
    np.testing.assert_allclose(nx.round(nx.tensor(a[:6] * 0.37), decimals=1).numpy(), np.round(a[:6] * 0.37, 1))
    np.testing.assert_allclose(nx.tensor([1234.5], dtype=dtype).round(decimals=-2).numpy(), [1200.0])


@pytest.mark.parametrize("dtype", [nx.float32, nx.float64])
def test_round_decimals_far_out_neither_overflows_nor_warns(dtype):
    x = nx.tensor([1.5, -2.25, 3e30, -0.0, math.inf, -math.inf, math.nan], dtype=dtype)
    big = np.array(x.numpy())
    for decimals in (10, 40, 400):  # beyond a value's own precision: the value itself
        got = nx.round(x, decimals=decimals).numpy()
        np.testing.assert_array_equal(got[2:], big[2:])
    np.testing.assert_allclose(nx.round(x, decimals=10).numpy()[:2], [1.5, -2.25])
    for decimals in (-40, -400):  # a unit beyond the dtype: every finite value rounds to a zero of its sign
        got = nx.round(x, decimals=decimals).numpy()
        np.testing.assert_array_equal(got, [0.0, -0.0, 0.0, -0.0, math.inf, -math.inf, math.nan])
        assert np.signbit(got[:4]).tolist() == [False, True, False, True]
    np.testing.assert_array_equal(nx.round(nx.tensor([1234.5, -1250.0], dtype=dtype), decimals=-2).numpy(),
                                  np.round(np.array([1234.5, -1250.0], dtype=dtype.np), -2))


def test_rounding_integers_and_bad_arguments():
    x = nx.tensor([3, -2])
    for fn in (nx.round, nx.ceil, nx.trunc, nx.floor):
        y = fn(x)
        assert y.dtype == nx.int64 and y.tolist() == [3, -2]
    with pytest.raises(nx.errors.DTypeError, match="decimals=1 needs a float tensor"):
        nx.round(x, decimals=1)
    with pytest.raises(TypeError, match="decimals must be an int, got 0.5"):
        nx.round(nx.tensor([1.0]), decimals=0.5)
    for fn in (nx.round, nx.ceil, nx.trunc):
        with pytest.raises(nx.errors.DTypeError, match="not defined for bool"):
            fn(nx.tensor([True]))


def test_float_classification_and_allclose():
    x = nx.tensor([1.0, math.nan, math.inf, -math.inf])
    assert nx.isnan(x).tolist() == [False, True, False, False]
    assert nx.isinf(x).tolist() == [False, False, True, True]
    assert x.isfinite().tolist() == [True, False, False, False]
    assert nx.isnan(nx.tensor([1, 2])).tolist() == [False, False]
    assert nx.allclose(nx.tensor([1.0, 2.0]), nx.tensor([1.0, 2.0 + 1e-7]))
    assert not nx.allclose(nx.tensor([1.0]), 1.1)
    assert nx.allclose(x, x, equal_nan=True) and not nx.allclose(x, x)


@pytest.mark.parametrize("start, end, steps, base", [(0, 2, 3, 10.0), (-1, 3, 5, 2.0), (1, 1, 1, 10.0),
                                                     (2, 0, 4, 0.5), (0, 1, 0, 10.0), (0, 400, 3, 10.0)])
def test_logspace_matches_numpy(start, end, steps, base):
    got = nx.logspace(start, end, steps, base=base, dtype=nx.float64)
    with np.errstate(over="ignore"):
        want = np.logspace(start, end, steps, base=base)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-15)
        np.testing.assert_allclose(nx.logspace(start, end, steps, base=base).numpy(), want.astype(np.float32))
    with pytest.raises(ValueError, match="logspace: steps must be at least 0"):
        nx.logspace(0, 1, -1)
