"""Every C kernel of neurenix-backend-cpu against NumPy's kernel (or core's composition), with the size
thresholds at zero so C runs even on these small inputs: broadcast patterns, empty tensors,
non-contiguous inputs, window geometries, transposed and broadcast matmul operands, optimizer steps."""

import numpy as np
import pytest
from neurenix_backend_cpu import plugin

import neurenix as nx

REF = vars(plugin._NP)
DTYPES = ["float32", "float64"]
TOL = {"float32": dict(rtol=1e-5, atol=1e-5), "float64": dict(rtol=1e-12, atol=1e-12)}


@pytest.fixture(autouse=True)
def everything_in_c(monkeypatch):
    for name in ("MIN_ELEMENTWISE", "MIN_BROADCAST", "MIN_REDUCE", "MIN_EXP"):
        monkeypatch.setattr(plugin, name, 0)
    monkeypatch.setattr(plugin, "_threads", [2])


def rand(*shape, dtype="float64", seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def check(name, *args, dtype):
    got, want = plugin.ALL_KERNELS[name](*args), REF[name](*args)
    for g, w in zip(got, want) if isinstance(want, tuple) else ((got, want),):
        if w is None:  # an output not asked for
            assert g is None
            continue
        assert np.asarray(g).shape == np.asarray(w).shape and np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, **TOL[dtype])


SHAPES = [((4, 5), (4, 5)), ((4, 5), (5,)), ((4, 5), (4, 1)), ((1, 5), (4, 1)), ((2, 3, 4, 5), (1, 3, 1, 1)),
          ((3, 4), ()), ((2, 3, 4, 5), (2, 1, 4, 1)), ((0, 5), (5,)), ((2, 1, 3, 1, 4), (5, 1, 6, 1))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("sa", "sb"), SHAPES, ids=str)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum"])
def test_binary_broadcast_patterns(op, sa, sb, dtype):
    a, b = rand(*sa, dtype=dtype), rand(*sb, dtype=dtype, seed=1)
    check(op, a, b, dtype=dtype)
    check(op, b, a, dtype=dtype)
    check(op, a, 2.5, dtype=dtype)
    check(op, -3, a, dtype=dtype)


def test_binary_non_contiguous_and_nan():
    a = rand(6, 4).T  # a transposed view: never reaches C
    check("add", a, rand(4, 6), dtype="float64")
    x, y = np.array([np.nan, 1.0, 2.0]), np.array([0.0, np.nan, 1.0])
    for op in ("maximum", "minimum"):
        np.testing.assert_array_equal(plugin.ALL_KERNELS[op](x, y), REF[op](x, y))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 7), (0,), (2, 3, 4, 5)], ids=str)
def test_relu_and_backward(shape, dtype):
    x, g = rand(*shape, dtype=dtype), rand(*shape, dtype=dtype, seed=2)
    check("relu", x, dtype=dtype)
    check("relu_backward", g, x, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "axes"), [((3, 4, 5), (0, 2)), ((3, 4, 5), (1,)), ((3, 4, 5), (0,)),
                                             ((3, 4, 5), (2,)), ((3, 4, 5), (0, 1, 2)), ((2, 3, 4, 5), (0, 2, 3)),
                                             ((2, 1, 4), (1,)), ((3, 0, 2), (1,)), ((2, 3, 4, 5), (1, 3))], ids=str)
@pytest.mark.parametrize("kernel", ["sum", "mean", "max", "min"])
def test_reductions_over_axes(kernel, shape, axes, dtype):
    if kernel != "sum" and 0 in shape:
        pytest.skip("max/min of empty tensors are refused by core; their mean is NaN with a warning")
    for keepdim in (False, True):
        check(kernel, rand(*shape, dtype=dtype), axes, keepdim, dtype=dtype)


SOFTMAX_SHAPES = [((5, 7), 1), ((5, 7), 0), ((2, 3, 4), 1), ((0, 3), 1), ((3, 1), 1), ((4, 37), 1), ((2, 3, 20), 2)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "axis"), SOFTMAX_SHAPES, ids=str)
@pytest.mark.parametrize("kernel", ["softmax", "log_softmax"])
def test_softmax_family(kernel, shape, axis, dtype):
    """Forward and first-order backward; rows along the last axis go to C (vector tails of every length)."""
    x, g = rand(*shape, dtype=dtype) * 10, rand(*shape, dtype=dtype, seed=3)
    check(kernel, x, axis, dtype=dtype)
    check(f"{kernel}_backward", g, REF[kernel](x, axis), axis, dtype=dtype)


def test_softmax_rows_of_extreme_logits():
    x = np.array([[0.0, -np.inf, 1.0], [1e30, 0.0, -1e30], [np.nan, 0.0, 1.0], [-np.inf, -np.inf, 0.0]])
    for kernel in ("softmax", "log_softmax"):
        with np.errstate(all="ignore"):
            np.testing.assert_allclose(plugin.ALL_KERNELS[kernel](x, 1), REF[kernel](x, 1), rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_against_numpy_over_its_range(dtype):
    """The vectorised exp: within a few ulp everywhere it is finite, exact at 0, inf and -inf, NaN kept; the
    float denormal range (below 2e-38) and double's below 1e-307 come out as 0."""
    lo, hi = (-86.6, 88.7) if dtype == "float32" else (-707.0, 709.7)
    x = np.concatenate([np.linspace(lo, hi, 100003), [0.0, -np.inf, np.inf, np.nan, hi + 1, lo - 50]]).astype(dtype)
    with np.errstate(over="ignore"):
        got, want = plugin.exp(x), np.exp(x)
    finite = np.isfinite(want) & (x >= lo)
    np.testing.assert_allclose(got[finite], want[finite], rtol=4 * np.finfo(dtype).eps)
    assert got[-6] == 1 and got[-5] == 0 and got[-4] == np.inf and np.isnan(got[-3]) and got[-2] == np.inf
    assert got[-1] == 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7, 5), (3, 1), (2, 19), (1, 64)], ids=str)
def test_cross_entropy_and_backward(shape, dtype):
    x, g = rand(*shape, dtype=dtype) * 4, rand(shape[0], dtype=dtype, seed=2)
    labels = np.random.default_rng(1).integers(0, shape[1], shape[0])
    for probs in (np.eye(shape[1], dtype=dtype)[labels], np.abs(rand(*shape, dtype=dtype, seed=5))):
        check("cross_entropy", x, probs, dtype=dtype)
        check("cross_entropy_backward", g, REF["softmax"](x, 1), probs, dtype=dtype)


GEOMETRIES = [((3, 3), (1, 1), (1, 1), (1, 1)), ((2, 2), (2, 2), (0, 0), (1, 1)), ((3, 2), (2, 1), (1, 0), (1, 2)),
              ((2, 3), (1, 2), (1, 1), (2, 1))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
def test_windows(geometry, dtype):
    ks, _, pd, _ = geometry
    x = rand(2, 3, 7, 6, dtype=dtype)
    check("unfold", x, *geometry, dtype=dtype)
    check("unfold", x.transpose(0, 1, 3, 2), *geometry, dtype=dtype)  # non-contiguous: copied first
    cols = REF["unfold"](x, *geometry)
    check("fold", rand(*cols.shape, dtype=dtype), (7, 6), *geometry, dtype=dtype)
    check("unfold_batch", x, *geometry, dtype=dtype)
    check("unfold_batch", x.transpose(0, 1, 3, 2), *geometry, dtype=dtype)
    side_by_side = rand(cols.shape[1], cols.shape[0] * cols.shape[2], dtype=dtype)
    check("fold_batch", side_by_side, (7, 6), *geometry, dtype=dtype)
    check("fold_batch", np.asfortranarray(side_by_side), (7, 6), *geometry, dtype=dtype)  # copied first
    if pd[0] <= ks[0] // 2 and pd[1] <= ks[1] // 2:
        check("max_pool2d", x, *geometry, dtype=dtype)
        out, idx = REF["max_pool2d"](x, *geometry)
        check("max_pool2d_backward", rand(*out.shape, dtype=dtype), idx, (7, 6), *geometry, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_2x2_fast_path_nan_and_ties(dtype):
    x = rand(3, 2, 6, 8, dtype=dtype)
    x[0, 0, 0, 1] = x[1, 1, 3, 2] = np.nan  # NaN wins its window, as NumPy's max and argmax
    x[2, 0, 2:4, 4:6] = 1.5  # a tie: the first maximum
    check("max_pool2d", x, (2, 2), (2, 2), (0, 0), (1, 1), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [(7, 7), (3, 3), (5, 9), (28, 28), (4, 2050), (2, 4100)], ids=str)
def test_max_pool_2x2_many_ties_odd_and_wide_images(size, dtype):
    """Few distinct values (ties in every order) and NaNs, on odd sizes (the last row and column are left out)
    and on rows wider than the kernel's vertical block (its scalar path)."""
    x = np.random.default_rng(0).integers(0, 3, (2, 3, *size)).astype(dtype)
    x[np.random.default_rng(1).random(x.shape) < 0.05] = np.nan
    check("max_pool2d", x, (2, 2), (2, 2), (0, 0), (1, 1), dtype=dtype)


def test_max_pool_ties_pick_the_first_maximum():
    x = np.zeros((1, 1, 2, 2))
    _, idx = plugin.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1))
    assert idx.tolist() == [[[[0]]]]


def test_empty_windows():
    check("unfold", np.zeros((0, 2, 4, 4)), *GEOMETRIES[0], dtype="float64")
    check("unfold_batch", np.zeros((0, 2, 4, 4)), *GEOMETRIES[0], dtype="float64")
    check("fold_batch", np.zeros((18, 0)), (4, 4), *GEOMETRIES[0], dtype="float64")


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
    ((64, 32, 32), (64, 32, 32), False)], ids=str)  # the last on OpenMP threads
def test_batched_matmul_register_tiles(sa, sb, ta, dtype, monkeypatch):
    """Stacks of distinct products with 16 columns or more take C's register tiles (4 x 4 vectors, 4 x 1
    vector, single rows, scalar column tails); counted, so a routing change cannot hide them."""
    calls = []
    bmm = plugin._bmm[np.dtype(dtype)]
    monkeypatch.setitem(plugin._bmm, np.dtype(dtype), lambda *args: calls.append(1) or bmm(*args))
    a, b = rand(*sa, dtype=dtype), rand(*sb, dtype=dtype, seed=1)
    if ta:
        a = a.swapaxes(-1, -2)
    check("matmul", a, b, dtype=dtype)
    assert calls == [1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "groups", "per_group"), [((4, 3, 2, 2), 1, False), ((6, 3, 5), 2, True),
                                                            ((6, 3, 5), 3, False), ((5, 4), 1, False),
                                                            ((8, 2, 3, 7), 4, True)], ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_and_backward(shape, groups, per_group, affine, dtype, monkeypatch):
    """Per-channel (and per-group: per-task) statistics and every subset of the gradients, against core's
    composition; counted, so a routing change cannot send them to NumPy."""
    calls = []
    for table in (plugin._bn, plugin._bn_bw):
        fn = table[np.dtype(dtype)]
        monkeypatch.setitem(table, np.dtype(dtype), lambda *args, fn=fn: calls.append(1) or fn(*args))
    c = shape[1]
    pshape = (groups, c) if per_group else (c,)
    x, g = rand(*shape, dtype=dtype) * 3 + 1, rand(*shape, dtype=dtype, seed=1)
    w, b = (rand(*pshape, dtype=dtype, seed=2), rand(*pshape, dtype=dtype, seed=3)) if affine else (None, None)
    check("batch_norm", x, w, b, groups, 1e-5, dtype=dtype)
    _, mean, var = REF["batch_norm"](x, w, b, groups, 1e-5)
    for needs in ((True, affine, affine), (False, affine, False), (True, False, False)):
        check("batch_norm_backward", g, x, mean, var, w, groups, 1e-5, needs, dtype=dtype)
    assert len(calls) == 4


def test_batch_norm_falls_back_on_mixed_parameters():
    x = rand(4, 3, 5)
    check("batch_norm", x, rand(3), rand(2, 3), 2, 1e-5, dtype="float64")  # one per channel, one per group
    check("batch_norm", x.swapaxes(1, 2), None, None, 1, 1e-5, dtype="float64")  # not contiguous


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
    for table in (plugin._linear, plugin._linear_bw):
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


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", [dict(), dict(weight_decay=0.1), dict(weight_decay=0.1, decoupled=True),
                                     dict(maximize=True)], ids=str)
def test_adam_step(options, dtype):
    shapes = [(3, 4), (5,), (0,), (2, 2, 2)]
    ps, gs, ms, vs = ([rand(*s, dtype=dtype, seed=i + j) ** (2 if j == 3 else 1) for i, s in enumerate(shapes)]
                      for j in range(4))
    args = (ps, gs, ms, vs, 3, 0.01, 0.9, 0.99, 1e-8, options.get("weight_decay", 0.0),
            options.get("decoupled", False), options.get("maximize", False))
    for got, want in zip(plugin.adam_step(*args), REF["adam_step"](*args)):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", [(0.0, 0.0, False), (0.9, 0.1, False), (0.9, 0.0, True)], ids=str)
def test_sgd_step(options, dtype):
    momentum, dampening, nesterov = options
    ps, gs = [rand(3, 4, dtype=dtype), rand(5, dtype=dtype)], [rand(3, 4, dtype=dtype, seed=1), rand(5, dtype=dtype)]
    for bufs in ([None, None], [rand(3, 4, dtype=dtype, seed=2), rand(5, dtype=dtype, seed=3)]):
        args = (ps, gs, bufs, 0.1, momentum, dampening, nesterov, 0.01, False)
        for got, want in zip(plugin.sgd_step(*args), REF["sgd_step"](*args)):
            for g, w in zip(got, want):
                assert (g is None) == (w is None)
                if g is not None:
                    np.testing.assert_allclose(g, w, **TOL[dtype])


def test_other_dtypes_fall_through_to_numpy():
    i = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(plugin.ALL_KERNELS["add"](i, i), i + i)
    np.testing.assert_array_equal(plugin.ALL_KERNELS["sum"](i, (1,), False), i.sum(1))
    mixed = plugin.adam_step([np.ones(2, np.float32)], [np.ones(2)], [np.zeros(2)], [np.zeros(2)], 1, 0.1, 0.9, 0.99,
                             1e-8, 0.0, False, False)
    assert mixed[0][0].shape == (2,)


def test_set_num_threads_reaches_openmp():
    before = nx.get_num_threads()
    try:
        nx.set_num_threads(1)
        assert plugin.lib.nx_get_num_threads() == 1 and plugin._threads == [1]
        nx.set_num_threads(2)
        assert plugin.lib.nx_get_num_threads() == 2
    finally:
        nx.set_num_threads(before)


@pytest.mark.parametrize("n", [1, 2])
def test_set_num_threads_holds_in_other_threads(n):
    """OpenMP keeps omp_set_num_threads per calling thread: the setting must reach kernels that another
    Python thread (a data loader, a second learner) calls too."""
    import threading

    before = nx.get_num_threads()
    seen = []
    try:
        nx.set_num_threads(n)
        worker = threading.Thread(target=lambda: seen.append(plugin.lib.nx_get_num_threads()))
        worker.start()
        worker.join()
    finally:
        nx.set_num_threads(before)
    assert seen == [n]


def test_plan_caches_survive_clearing_by_another_thread(monkeypatch):
    """A plan cache cleared between the lookup and the read must not raise (one lookup, not two)."""
    class Clearing(dict):
        def __contains__(self, key):  # the old code's membership test, then another thread clears
            found = dict.__contains__(self, key)
            self.clear()
            return found

        def get(self, key, default=None):
            value = dict.get(self, key, default)
            self.clear()
            return value
    plans = Clearing()
    monkeypatch.setattr(plugin, "_plans", plans)
    assert plugin._broadcast_plan((3, 4), (4,)) == plugin._broadcast_plan((3, 4), (4,))


def test_registered_kernels_are_a_subset_and_the_backend_wins():
    assert set(plugin.KERNELS) <= set(plugin.ALL_KERNELS)
    providers = nx.Device("cpu").kernels.providers
    assert all(providers[k] == "cpu-c" for k in plugin.KERNELS)


def test_freed_memory_is_kept_unless_the_user_tunes_malloc(monkeypatch):
    calls = []
    monkeypatch.setattr(plugin, "lib", type("Lib", (), {"nx_keep_freed_memory": staticmethod(calls.append)}))
    for env in ({"NEURENIX_CPU_KEEP_FREED": "0"}, {"MALLOC_TRIM_THRESHOLD_": "1"},
                {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1"}):
        with monkeypatch.context() as m:
            for k, v in env.items():
                m.setenv(k, v)
            assert not plugin._keep_freed_memory()
    assert calls == []
    for k in ("NEURENIX_CPU_KEEP_FREED", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"):
        monkeypatch.delenv(k, raising=False)
    plugin._keep_freed_memory()
    assert calls == [plugin.KEEP_FREED_BYTES]
