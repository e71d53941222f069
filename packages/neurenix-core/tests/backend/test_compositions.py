"""Core's compositions of the kernels contract v1 required are exact: bit for bit the NumPy kernel's result on
special values (NaN, infinities, signed zeros, int64's extremes, bools), broadcasting and scalars included."""

import numpy as np
import pytest

from neurenix.backend import REQUIRED, compose, numpy_backend
from neurenix.backend.compositions import DEFAULTS

K = compose({name: numpy_backend.KERNELS[name] for name in REQUIRED})  # every optional kernel composed
NP = numpy_backend.KERNELS

I64 = np.iinfo(np.int64)
VALUES = {
    "float32": np.array([np.nan, -np.inf, -2.5, -1.0, -0.0, 0.0, 0.5, 3.0, np.inf, -np.nan], np.float32),
    "float64": np.array([np.nan, -np.inf, -1e300, -1.0, -0.0, 0.0, 1e-300, 2.0, np.inf, 7.0], np.float64),
    "int64": np.array([I64.min, I64.min + 1, -7, -1, 0, 0, 1, 5, I64.max - 1, I64.max], np.int64),
    "bool": np.array([True, False, True, True, False, False, True, False, False, True]),
}


def same(a, b) -> bool:
    """Bit for bit up to NaN payloads (NaN equal to NaN whatever its sign bit, which no op promises; -0.0 apart
    from +0.0), and of one dtype and shape."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind == "f":
        nan = np.isnan(a)
        return np.array_equal(nan, np.isnan(b)) and np.array_equal(np.signbit(a)[~nan], np.signbit(b)[~nan]) and \
            np.array_equal(a[~nan], b[~nan])
    return np.array_equal(a, b)


def test_every_former_required_kernel_is_composed():
    v1_required = {"neg", "abs", "sign", "relu", "sigmoid", "sub", "minimum", "ne", "le", "gt", "ge", "min", "argmin"}
    assert v1_required <= set(DEFAULTS) and not v1_required & set(REQUIRED)
    assert len(REQUIRED) <= 35


@pytest.mark.parametrize("name", ["neg", "abs", "sign", "relu"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_unary(name, dtype):
    x = VALUES[dtype]
    with np.errstate(all="ignore"):
        assert same(getattr(K, name)(x), NP[name](x)), (name, getattr(K, name)(x), NP[name](x))


def test_sigmoid_close_and_without_overflow():
    x = np.array([-1000.0, -50.0, -1.0, 0.0, 1.0, 50.0, 1000.0, np.nan], np.float64)
    with np.errstate(over="ignore"):
        got = K.sigmoid(x)
    np.testing.assert_allclose(got, NP["sigmoid"](x), rtol=1e-15, atol=1e-16)  # (NumPy's tanh form underflows)
    assert np.isfinite(got[:-1]).all() and got[0] == 0.0 and got[-2] == 1.0


@pytest.mark.parametrize("name", ["sub", "minimum", "ne", "le", "gt", "ge"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
@pytest.mark.parametrize("form", ["buffers", "broadcast", "scalar_right", "scalar_left"])
def test_binary(name, dtype, form):
    if name == "sub" and dtype == "bool":
        pytest.skip("NumPy has no bool subtraction (core never asks for it)")
    x = VALUES[dtype]
    a, b = {"buffers": (x, x[::-1].copy()), "broadcast": (x.reshape(10, 1), x.reshape(1, 10)),
            "scalar_right": (x, x[3].item()), "scalar_left": (x[7].item(), x)}[form]
    with np.errstate(all="ignore"):
        assert same(getattr(K, name)(a, b), NP[name](a, b))


@pytest.mark.parametrize("name", ["min", "argmin"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_reductions(name, dtype):
    x = np.stack([VALUES[dtype], VALUES[dtype][::-1], np.sort(VALUES[dtype])])  # rows with and without NaN
    for axes in ((1,), (0,), (0, 1)):
        if name == "min":
            assert same(K.min(x, axes, True), NP["min"](x, axes, True))
        elif len(axes) == 1:
            assert same(K.argmin(x, axes[0], False), NP["argmin"](x, axes[0], False))


# -- linear algebra: close to LAPACK (other arithmetic order), the same failures reported ------------------------


def _spd(b, n, seed=0):
    a = np.random.default_rng(seed).standard_normal((b, n, n))
    return a @ a.transpose(0, 2, 1) + n * np.eye(n)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cholesky_and_its_failures(dtype):
    a = _spd(4, 6).astype(dtype)
    a[1, 3, 3] = -10.0  # leading minor of order 4
    a[2, 0, 0] = 0.0  # order 1
    a[3, 4, 1] = np.nan  # a NaN reaches the pivot of order 5
    with np.errstate(invalid="ignore"):
        got, info = K.cholesky(a)
    want, want_info = NP["cholesky"](a)
    assert info.dtype == np.int64 and info.tolist() == want_info.tolist() == [0, 4, 1, 5]
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5 if dtype == "float32" else 1e-12)
    unread = _spd(1, 5)
    unread[0, 1, 3] = np.nan  # the upper triangle is never read
    np.testing.assert_allclose(K.cholesky(unread)[0], np.linalg.cholesky(np.tril(unread) + np.tril(unread, -1).mT),
                               rtol=1e-12)


def test_solve_pivots_and_reports_singular_matrices():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 5, 5))
    a[0, 0, 0] = 0.0  # partial pivoting needed at the first step
    a[2, :, 2] = a[2, :, 4]  # singular: two equal columns give an exact zero pivot
    a[2, :, 2] = a[2, :, 4] = 0.0
    b = rng.standard_normal((3, 5, 2))
    with np.errstate(all="ignore"):
        x, info = K.solve(a, b)
    want, want_info = NP["solve"](a, b)
    assert (info != 0).tolist() == (want_info != 0).tolist() == [False, False, True]
    np.testing.assert_allclose(x[:2], want[:2], rtol=1e-10)


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("unit", [False, True])
def test_solve_triangular_reads_one_triangle(upper, unit):
    a = np.random.default_rng(2).standard_normal((2, 5, 5)) + 5 * np.eye(5)
    other = np.tril(np.full((5, 5), np.nan), -1) if upper else np.triu(np.full((5, 5), np.nan), 1)
    if unit:
        other[range(5), range(5)] = np.nan
    b = np.random.default_rng(3).standard_normal((2, 5, 3))
    want = NP["solve_triangular"](a, b, upper, unit)
    got = K.solve_triangular(np.where(np.isnan(other), other, a), b, upper, unit)
    assert not np.isnan(got).any()
    np.testing.assert_allclose(got, want, rtol=1e-12)
