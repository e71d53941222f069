"""Batched matmul and the fused linear layer in C against NumPy's kernels and core's compositions: transposed
and broadcast operands, register-tile shapes, every subset of the gradients, and the shapes that go to BLAS."""

import numpy as np
import pytest
from neurenix_backend_cpu import linalg

from .conftest import DTYPES, check, rand

pytestmark = pytest.mark.usefixtures("everything_in_c")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("sa", "sb", "ta", "tb"), [
    ((5, 3, 4), (5, 4, 6), False, False), ((5, 3, 4), (5, 6, 4), False, True), ((5, 4, 3), (5, 4, 6), True, False),
    ((5, 4, 3), (5, 6, 4), True, True), ((3, 4), (5, 4, 9), False, False), ((5, 10, 4), (4, 1), False, False),
    ((7, 9, 1), (7, 1, 17), False, False), ((2, 5, 3), (2, 3, 0), False, False)], ids=str)
def test_batched_matmul(sa, sb, ta, tb, dtype):
    a, b = rand(*sa, dtype=dtype), rand(*sb, dtype=dtype, seed=1)
    a = a.swapaxes(-1, -2).copy().swapaxes(-1, -2) if ta else a  # a transposed view of the same values
    b = b.swapaxes(-1, -2).copy().swapaxes(-1, -2) if tb else b
    if ta:
        a = a.swapaxes(-1, -2)
    if tb:
        b = b.swapaxes(-1, -2)
    check("matmul", a, b, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("sa", "sb", "ta"), [
    ((25, 10, 40), (25, 40, 40), False), ((25, 40, 10), (25, 40, 40), True), ((3, 7, 37), (3, 37, 37), False),
    ((2, 9, 50), (2, 50, 70), False), ((4, 1, 16), (4, 16, 16), False), ((4, 16, 5), (4, 16, 24), True),
    ((64, 32, 32), (64, 32, 32), False),  # on OpenMP threads
    ((64, 9), (20, 9, 784), False), ((9, 13), (6, 9, 50), True)], ids=str)  # one weight times per-image columns
def test_batched_matmul_register_tiles(sa, sb, ta, dtype, monkeypatch):
    """Stacks of distinct products with 16 columns or more take C's register tiles (4 x 4 vectors, 4 x 1
    vector, single rows, scalar column tails); counted, so a routing change cannot hide them."""
    calls = []
    bmm = linalg._bmm[np.dtype(dtype)]
    monkeypatch.setitem(linalg._bmm, np.dtype(dtype), lambda *args: calls.append(1) or bmm(*args))
    a, b = rand(*sa, dtype=dtype), rand(*sb, dtype=dtype, seed=1)
    if ta:
        a = a.swapaxes(-1, -2)
    check("matmul", a, b, dtype=dtype)
    assert calls == [1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("sa", "sb"), [((20, 64, 784), (20, 9, 784)), ((3, 5, 515), (3, 7, 515)),
                                        ((2, 1, 512), (2, 1, 512)), ((4, 6, 600), (4, 2, 600))], ids=str)
def test_products_along_k(sa, sb, dtype, monkeypatch):
    """A stack times transposed views with few columns and long rows (a conv's weight gradient over per-image
    columns) takes C's products along k: row and column tails of its 4 x 3 tiles and of the vector width."""
    calls = []
    nt = linalg._bmm_nt[np.dtype(dtype)]
    monkeypatch.setitem(linalg._bmm_nt, np.dtype(dtype), lambda *args: calls.append(1) or nt(*args))
    a, b = rand(*sa, dtype=dtype), rand(*sb, dtype=dtype, seed=1)
    got = linalg.matmul(a, b.swapaxes(-1, -2))
    assert calls == [1] and got.shape == (sa[0], sa[1], sb[1]) and got.dtype == a.dtype
    # sums of 512-784 terms in another order than BLAS's: against the exact products, no less accurate than
    # NumPy's (float32 rounding differs by more than the other tests' 1e-5 from BLAS's own)
    if np.dtype(dtype) == np.float64:
        check("matmul", a, b.swapaxes(-1, -2), dtype=dtype)
        return
    exact = np.matmul(a.astype(np.float64), b.astype(np.float64).swapaxes(-1, -2))
    numpy_error = np.abs(np.matmul(a, b.swapaxes(-1, -2)) - exact).max()
    assert np.abs(got - exact).max() <= 2 * numpy_error + np.finfo(dtype).eps


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("sa", "sb", "tb"), [
    ((1, 1, 1, 64, 9), (1, 6, 1, 9, 50), False), ((1, 6, 1, 16, 520), (1, 6, 1, 3, 520), True),
    ((2, 3, 5, 4), (2, 3, 4, 7), False), ((2, 3, 5, 4), (2, 3, 7, 4), True), ((1, 1, 5, 4), (1, 1, 4, 7), False),
    ((2, 1, 5, 4), (1, 1, 4, 7), False), ((2, 3, 5, 4), (2, 1, 4, 7), False), ((3, 1, 1, 2, 4), (1, 2, 1, 4, 3), False),
    ((2, 3, 0, 4), (2, 3, 4, 7), False), ((2, 3, 5, 0), (2, 3, 0, 7), False)],
    ids=str)
def test_stacks_with_more_axes(sa, sb, tb, dtype):
    """Products with more than one stack axis (conv2d's per-task products) as 3-D stacks where the leading
    axes match or one side's are all 1; NumPy broadcasting for the others."""
    a, b = rand(*sa, dtype=dtype), rand(*sb, dtype=dtype, seed=1)
    check("matmul", a, b.swapaxes(-1, -2) if tb else b, dtype=dtype)


# (tasks, rows, in, out): the sine MLP's layers, column and row tails of both vector widths, one row, the
# few-input and few-output paths, and a stack big enough for OpenMP's parallel path
LINEAR_SHAPES = [(25, 10, 1, 40), (25, 10, 40, 40), (25, 10, 40, 1), (3, 17, 9, 13), (2, 1, 5, 3), (4, 33, 3, 6),
                 (2, 16, 8, 4), (40, 40, 40, 40)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dims", LINEAR_SHAPES, ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_fused_linear_in_c(dims, bias, dtype, monkeypatch):
    """The fused layer and its gradient (every subset of gx, gw, gb) against core's composition; counted,
    so that a routing change cannot send them all to NumPy."""
    calls = []
    for table in (linalg._linear, linalg._linear_bw):
        fn = table[np.dtype(dtype)]
        monkeypatch.setitem(table, np.dtype(dtype), lambda *args, fn=fn: calls.append(1) or fn(*args))
    t, n, ni, no = dims
    x, w, b, g = (rand(*s, dtype=dtype, seed=i) for i, s in enumerate(((t, n, ni), (t, no, ni), (t, no), (t, n, no))))
    check("linear", x, w, b if bias else None, dtype=dtype)
    for needs in ((True, True, True), (False, True, bias), (True, False, False)):
        check("linear_backward", g, x, w, needs, dtype=dtype)
    assert len(calls) == 4


@pytest.mark.parametrize(("x", "w", "b"), [
    (rand(3, 4, 5).swapaxes(1, 2), rand(3, 6, 4), rand(3, 6)),  # a transposed view of x
    (rand(7, 5), rand(6, 5), rand(6)),  # one weight: BLAS
    (rand(3, 4, 5), rand(6, 5), None),  # rows with a task axis, one weight
    (rand(4, 5), rand(3, 6, 5), rand(3, 6)),  # one input, a weight per task
    (rand(2, 3, 4, 5), rand(2, 3, 6, 5), rand(2, 3, 6)),  # two batch axes
    (rand(2, 200, 300).astype("float32"), rand(2, 40, 300).astype("float32"), None),  # past LINEAR_MAX_WORK
    (rand(2, 4, 5).astype("float32"), rand(2, 6, 5), rand(2, 6)),  # mixed dtypes
], ids=["transposed", "2d", "shared-weight", "shared-input", "4d", "large", "mixed-dtype"])
def test_fused_linear_falls_back(x, w, b):
    check("linear", x, w, b, dtype="float64" if x.dtype == w.dtype == np.float64 else "float32")
    g = rand(*np.broadcast_shapes(x.shape[:-2], w.shape[:-2]), x.shape[-2], w.shape[-2], dtype=x.dtype)
    check("linear_backward", g, x, w, (True, True, b is not None), dtype="float64" if x.dtype == w.dtype ==
          np.float64 else "float32")

