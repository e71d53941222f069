"""unfold_batch and fold_batch: the layout against a NumPy reference (through the device's kernels and core's
composition), adjointness, and conv2d's gradients of first and second order on both of its product paths."""

from types import SimpleNamespace

import numpy as np
import pytest

import neurenix as nx
from neurenix.backend import compositions, numpy_backend
from neurenix.backend.compositions import DEFAULTS
from neurenix.nn import functional as F
from neurenix.ops import fold_batch, unfold_batch
from neurenix.testing import gradcheck, gradgradcheck

# (input shape, kernel_size, stride, padding, dilation)
GEOMETRIES = [((2, 3, 7, 6), (3, 3), (1, 1), (1, 1), (1, 1)), ((3, 2, 6, 8), (2, 2), (2, 2), (0, 0), (1, 1)),
              ((1, 2, 7, 5), (3, 2), (2, 1), (1, 0), (1, 2)), ((4, 1, 5, 6), (2, 3), (1, 2), (1, 1), (2, 1))]
DTYPES = ["float32", "float64"]
COMPOSED = SimpleNamespace(**{name: DEFAULTS[name](SimpleNamespace(**numpy_backend.KERNELS))
                              for name in ("unfold_batch", "fold_batch")})


def _np_unfold(x, ks, st, pd, dl):
    """(N, C*kh*kw, L), window by window."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pd[0], pd[0]), (pd[1], pd[1])))
    oh, ow = ((s + 2 * p - d * (k - 1) - 1) // t + 1 for s, k, t, p, d in zip((h, w), ks, st, pd, dl))
    out = np.empty((n, c, *ks, oh, ow), x.dtype)
    for i in range(ks[0]):
        for j in range(ks[1]):
            out[:, :, i, j] = xp[:, :, i * dl[0]:i * dl[0] + st[0] * (oh - 1) + 1:st[0],
                                 j * dl[1]:j * dl[1] + st[1] * (ow - 1) + 1:st[1]]
    return out.reshape(n, c * ks[0] * ks[1], oh * ow)


def _side_by_side(cols):
    n, k, blocks = cols.shape
    return cols.transpose(1, 0, 2).reshape(k, n * blocks)


def _rand(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
def test_unfold_batch_is_unfold_side_by_side(geometry, dtype):
    shape, ks, st, pd, dl = geometry
    x = _rand(shape, dtype)
    want = _side_by_side(_np_unfold(x, ks, st, pd, dl))
    got = unfold_batch(nx.tensor(x), ks, dl, pd, st).numpy()
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(COMPOSED.unfold_batch(x, ks, st, pd, dl), want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
def test_fold_batch_is_the_adjoint(geometry, dtype):
    """<unfold_batch(x), c> == <x, fold_batch(c)>, and fold_batch equals fold of the per-image columns."""
    shape, ks, st, pd, dl = geometry
    x = _rand(shape, dtype)
    cols = _rand(_side_by_side(_np_unfold(x, ks, st, pd, dl)).shape, dtype, seed=1)
    n, blocks = shape[0], cols.shape[1] // shape[0]
    per_image = np.ascontiguousarray(cols.reshape(-1, n, blocks).transpose(1, 0, 2))
    want = F.fold(nx.tensor(per_image), shape[2:], ks, dl, pd, st).numpy()
    got = fold_batch(nx.tensor(cols), shape[2:], ks, dl, pd, st).numpy()
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got, want, **tol)
    np.testing.assert_allclose(COMPOSED.fold_batch(cols, shape[2:], ks, st, pd, dl), want, **tol)
    lhs = float((_side_by_side(_np_unfold(x, ks, st, pd, dl)).astype(np.float64) * cols).sum())
    rhs = float((x.astype(np.float64) * got).sum())
    assert abs(lhs - rhs) <= 1e-4 * max(1.0, abs(lhs))


@pytest.mark.parametrize("geometry", GEOMETRIES[:3], ids=str)
def test_unfold_batch_and_fold_batch_gradients(geometry):
    shape, ks, st, pd, dl = geometry
    x = nx.tensor(_rand(shape, "float64"), requires_grad=True)
    cols = nx.tensor(_rand(unfold_batch(x, ks, dl, pd, st).shape, "float64", seed=1), requires_grad=True)
    for fn, arg in ((lambda a: unfold_batch(a, ks, dl, pd, st), x),
                    (lambda c: fold_batch(c, shape[2:], ks, dl, pd, st), cols)):
        assert gradcheck(fn, [arg]) and gradgradcheck(fn, [arg])


def test_fold_batch_checks_its_input():
    with pytest.raises(nx.errors.ShapeError, match="fold_batch"):
        fold_batch(nx.zeros(9, 7), (4, 4), 3, padding=1)  # 7 columns are no whole number of 16-block images


# conv2d: (tasks, 0 for one 4-D weight), kernel, stride, padding, dilation, bias, groups
CONVS = [(0, 3, 1, 1, 1, True, 1), (0, (2, 3), (2, 1), (1, 0), (1, 2), False, 1), (1, 3, 1, 1, 1, True, 1),
         (2, 2, 2, 1, 1, True, 1), (0, 3, 1, 1, 1, True, 2), (2, (3, 2), 1, (0, 1), (2, 1), True, 2)]


@pytest.fixture(params=["batch product", "per-image products"])
def conv_path(request, monkeypatch):
    monkeypatch.setattr(compositions, "BATCH_PRODUCT_MAX_BLOCKS", 1 << 30 if request.param == "batch product" else 0)
    return request.param


def _conv_args(conv, n: int, c: int, o: int, size: tuple, requires_grad: bool = False):
    tasks, ks, _, _, _, bias, groups = conv
    kh, kw = (ks, ks) if isinstance(ks, int) else ks
    lead = (tasks,) if tasks else ()
    x = nx.tensor(_rand((max(tasks, 1) * n, c * groups, *size), "float64"), requires_grad=requires_grad)
    w = nx.tensor(_rand((*lead, o * groups, c, kh, kw), "float64", seed=1), requires_grad=requires_grad)
    b = nx.tensor(_rand((*lead, o * groups), "float64", seed=2), requires_grad=requires_grad) if bias else None
    return [x, w] + ([b] if bias else [])


@pytest.mark.parametrize("conv", CONVS, ids=str)
def test_conv2d_gradients_first_and_second_order(conv, conv_path):
    st, pd, dl, groups = conv[2:5] + conv[6:]

    def conv2d(*a):
        return F.conv2d(*a, stride=st, padding=pd, dilation=dl, groups=groups)

    args = _conv_args(conv, 2, 2, 3, (5, 6), requires_grad=True)
    assert gradcheck(conv2d, args) and gradgradcheck(conv2d, args)


@pytest.mark.parametrize("conv", CONVS, ids=str)
def test_conv2d_paths_agree(conv, monkeypatch):
    st, pd, dl, groups = conv[2:5] + conv[6:]
    args = _conv_args(conv, 3, 4, 5, (6, 7))
    outs = []
    for limit in (1 << 30, 0):
        monkeypatch.setattr(compositions, "BATCH_PRODUCT_MAX_BLOCKS", limit)
        outs.append(F.conv2d(*args, stride=st, padding=pd, dilation=dl, groups=groups))
    assert outs[0]._data.flags.c_contiguous
    np.testing.assert_allclose(outs[0].numpy(), outs[1].numpy(), rtol=1e-12, atol=1e-12)
