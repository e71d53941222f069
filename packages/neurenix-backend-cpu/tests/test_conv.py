"""Convolutions in the C backend: Winograd F(2x2, 3x3) (forced onto small inputs: thresholds at zero) against
core's reference for the three kernels, over paddings, image sizes odd and even, image counts that leave a
partial vector of images (8 float32 or 4 float64 lanes), per-task weights and biases, rows of tiles in
chunks and output channels that fill no whole register tile; what Winograd does not
take goes to core's composition unchanged; and gradients through F.conv2d to second order."""

import numpy as np
import pytest
from neurenix_backend_cpu import KERNELS, conv

import neurenix as nx
from neurenix.nn import functional as F
from neurenix.testing import gradcheck, gradgradcheck

from .conftest import DTYPES, REF, TOL, rand

pytestmark = pytest.mark.usefixtures("everything_in_c")

# images, channels in, out, (h, w), padding, tasks (0: one 4-D weight), bias
WINOGRAD = [(1, 2, 3, (4, 4), 1, 0, True), (9, 3, 2, (5, 8), 1, 0, False), (7, 2, 2, (6, 5), 0, 0, True),
            (5, 1, 4, (3, 3), 2, 0, True), (6, 2, 3, (7, 7), (2, 0), 3, True), (17, 3, 2, (4, 6), (0, 1), 1, False),
            (10, 2, 2, (1, 2), 2, 2, True),
            # rows of tiles split into chunks (its buffers near 512 KB), output channels a partial register tile
            (3, 40, 13, (40, 37), 1, 0, True), (6, 40, 7, (20, 46), (1, 2), 2, True)]


def _args(case, dtype):
    n, c, o, size, padding, tasks, bias = case
    lead = (tasks,) if tasks else ()
    x, w = rand(n * max(tasks, 1), c, *size, dtype=dtype), rand(*lead, o, c, 3, 3, dtype=dtype, seed=1)
    b = rand(*lead, o, dtype=dtype, seed=2) if bias else None
    pd = padding if isinstance(padding, tuple) else (padding, padding)
    return x, w, b, ((1, 1), pd, (1, 1), 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", WINOGRAD, ids=str)
def test_winograd_against_the_reference(case, dtype):
    x, w, b, geometry = _args(case, dtype)
    assert conv.fits(x, w, w.shape, *geometry, 1)
    y = REF["conv2d"](x, w, b, *geometry)
    g = rand(*y.shape, dtype=dtype, seed=3)
    for name, args in (("conv2d", (x, w, b)), ("conv2d_input_grad", (g, w, x.shape)),
                       ("conv2d_weight_grad", (x, g, w.shape))):
        got, want = KERNELS[name](*args, *geometry), REF[name](*args, *geometry)
        assert got.shape == want.shape and got.dtype == want.dtype
        # Winograd rounds differently from the columns' sums: errors relative to the output's scale (a weight
        # gradient sums hundreds of products)
        tol = TOL[dtype]["atol"] * max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, rtol=TOL[dtype]["rtol"], atol=tol, err_msg=name)


# geometries Winograd does not take: stride, dilation, groups, other kernels, padding past 2, int64
OTHERS = [((2, 4, 5, 5), (4, 4, 3, 3), (2, 1), (1, 1), (1, 1), 1),
          ((2, 4, 7, 7), (4, 4, 3, 3), (1, 1), (2, 2), (2, 2), 1),
          ((2, 4, 5, 5), (4, 2, 3, 3), (1, 1), (1, 1), (1, 1), 2),
          ((2, 4, 6, 6), (4, 4, 5, 5), (1, 1), (2, 2), (1, 1), 1),
          ((2, 4, 6, 6), (4, 4, 3, 3), (1, 1), (3, 3), (1, 1), 1),
          ((2, 4, 6, 6), (4, 4, 2, 2), (1, 1), (0, 0), (1, 1), 1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", OTHERS, ids=str)
def test_other_geometries_go_to_the_composition(shapes, dtype):
    xs, ws, *geometry = shapes
    x, w = rand(*xs, dtype=dtype), rand(*ws, dtype=dtype, seed=1)
    assert not conv.fits(x, w, w.shape, *geometry, 1)
    np.testing.assert_array_equal(KERNELS["conv2d"](x, w, None, *geometry), REF["conv2d"](x, w, None, *geometry))


def test_thresholds_keep_small_problems_on_the_columns(monkeypatch):
    monkeypatch.setattr(conv, "MIN_CHANNELS", 16)
    monkeypatch.setattr(conv, "MIN_PIXELS", 512)
    monkeypatch.setattr(conv, "MIN_TASK_PIXELS", 2048)
    geometry = ((1, 1), (1, 1), (1, 1), 1)
    x, w = rand(10, 16, 14, 14, dtype="float32"), rand(16, 16, 3, 3, dtype="float32")
    assert conv.fits(x, w, w.shape, *geometry, 14 * 14)
    assert not conv.fits(x[:, :8], w[:, :8], (16, 8, 3, 3), *geometry, 14 * 14)  # too few channels
    assert not conv.fits(x[:2], w, w.shape, *geometry, 14 * 14)  # 392 pixels
    assert not conv.fits(x, w, (5, 16, 16, 3, 3), *geometry, 14 * 14)  # 2 images a task
    assert not conv.fits(x.astype(np.int64), w.astype(np.int64), w.shape, *geometry, 14 * 14)


def test_nan_stays_in_its_tiles():
    """A NaN reaches the outputs whose windows hold it, and (Winograd's tiles mixing a 4x4 patch) no others: the
    2x2 output tile around it and its neighbours' overlapping windows, as direct convolution gives."""
    x, w = rand(1, 2, 8, 8), rand(2, 2, 3, 3, seed=1)
    x[0, 1, 3, 4] = np.nan
    got, want = KERNELS["conv2d"](x, w, None, (1, 1), (1, 1), (1, 1), 1), REF["conv2d"](x, w, None, (1, 1), (1, 1),
                                                                                            (1, 1), 1)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


@pytest.mark.parametrize("tasks", [0, 2])
def test_gradients_through_winograd_first_and_second_order(tasks):
    lead = (tasks,) if tasks else ()
    x = nx.tensor(rand(max(tasks, 1) * 3, 2, 4, 5), requires_grad=True)
    w = nx.tensor(rand(*lead, 3, 2, 3, 3, seed=1), requires_grad=True)
    b = nx.tensor(rand(*lead, 3, seed=2), requires_grad=True)

    def conv2d(*a):
        return F.conv2d(*a, padding=1)

    assert conv.fits(x._data, w._data, w.shape, (1, 1), (1, 1), (1, 1), 1, 20)
    assert gradcheck(conv2d, [x, w, b]) and gradgradcheck(conv2d, [x, w, b])
