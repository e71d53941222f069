"""A NumPy reference for the implicit-GEMM convolution kernels (``conv2d``, ``conv2d_input_grad``,
``conv2d_weight_grad`` of the GPU kernel table), and :func:`check`, which runs them on a device against it: the
emulator's tests and the real-device tests (``pytest -m gpu``) share it."""

from __future__ import annotations

import numpy as np

# (x shape, weight shape, stride, padding, dilation, groups): the conformance suite's conv2d cases, its unfold
# case's stride/padding/dilation, groups (and depthwise), uneven pairs, and more channels than a tile
CASES = [
    ((2, 3, 5, 4), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((1, 2, 5, 5), (3, 2, 2, 2), (2, 2), (0, 0), (1, 1), 1),
    ((1, 2, 5, 5), (3, 2, 2, 2), (2, 2), (1, 1), (2, 2), 1),
    ((2, 4, 6, 5), (6, 2, 3, 2), (1, 2), (2, 0), (1, 2), 2),
    ((1, 3, 4, 4), (3, 1, 3, 3), (1, 1), (1, 1), (1, 1), 3),
    ((1, 18, 3, 3), (17, 18, 1, 1), (1, 1), (0, 0), (1, 1), 1),
    ((3, 1, 7, 3), (2, 1, 3, 1), (3, 1), (1, 2), (2, 1), 1),
]


def _cols(x, kh, kw, stride, padding, dilation):
    """(N, C, kh, kw, oh, ow): NumPy's im2col, the reference's only trick."""
    n, c, h, w = x.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh, ow = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((n, c, kh, kw, oh, ow), x.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i, j] = xp[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
    return out


def reference(x, wt, bias, dy, stride, padding, dilation, groups):
    """conv2d's output, and the gradients of sum(out * dy) with respect to x and weight, by NumPy."""
    o, cg, kh, kw = wt.shape
    cols = _cols(x, kh, kw, stride, padding, dilation)
    n, c, _, _, oh, ow = cols.shape
    gc = cols.reshape(n, groups, cg, kh, kw, oh, ow)
    gw = wt.reshape(groups, o // groups, cg, kh, kw)
    out = np.einsum("ngcijyx,gocij->ngoyx", gc, gw).reshape(n, o, oh, ow)
    if bias is not None:
        out = out + bias.reshape(1, o, 1, 1)
    gdy = dy.reshape(n, groups, o // groups, oh, ow)
    dw = np.einsum("ngoyx,ngcijyx->gocij", gdy, gc).reshape(wt.shape)
    dcols = np.einsum("ngoyx,gocij->ngcijyx", gdy, gw).reshape(cols.shape)
    (sh, sw), (ph, pw), (dh, dw_) = stride, padding, dilation
    h, w = x.shape[2:]
    dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), x.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw_:j * dw_ + sw * (ow - 1) + 1:sw] += dcols[:, :, i, j]
    return out, dxp[:, :, ph:ph + h, pw:pw + w], dw


def data(case, dtype, seed=0):
    xs, ws, stride, padding, dilation, _ = case
    rng = np.random.default_rng(seed)
    x, wt, b = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype), \
        rng.standard_normal(ws[0]).astype(dtype)
    cols = _cols(x, ws[2], ws[3], stride, padding, dilation)
    dy = rng.standard_normal((xs[0], ws[0], *cols.shape[-2:])).astype(dtype)
    return x, wt, b, dy


def tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}



def check(kernels, index: int, case, dtype) -> None:
    """The three kernels of a backend's table on device ``index`` against :func:`reference` for ``case``."""
    _, _, stride, padding, dilation, groups = case
    x, wt, b, dy = data(case, dtype)
    out, dx, dw = reference(x, wt, b, dy, stride, padding, dilation, groups)
    up, get = (lambda a: kernels["from_numpy"](a, index)), kernels["to_numpy"]
    gx, gw, gb, gdy = up(x), up(wt), up(b), up(dy)
    got = get(kernels["conv2d"](gx, gw, gb, stride, padding, dilation, groups))
    assert got.dtype == dtype and got.shape == out.shape
    np.testing.assert_allclose(got, out, **tol(dtype))
    no_bias = get(kernels["conv2d"](gx, gw, None, stride, padding, dilation, groups))
    np.testing.assert_allclose(no_bias, out - b.reshape(1, -1, 1, 1), **tol(dtype))
    got_dx = get(kernels["conv2d_input_grad"](gdy, gw, x.shape, stride, padding, dilation, groups))
    assert got_dx.shape == x.shape
    np.testing.assert_allclose(got_dx, dx, **tol(dtype))
    got_dw = get(kernels["conv2d_weight_grad"](gx, gdy, wt.shape, stride, padding, dilation, groups))
    assert got_dw.shape == wt.shape
    np.testing.assert_allclose(got_dw, dw, **tol(dtype))


def check_on_real_device(backend) -> None:
    """Every case, float32 and float64, on device 0 of ``backend`` (a GpuBackend of a real driver), for tests
    marked ``gpu``; skip where it has no device."""
    import pytest

    reason = backend.unavailable_reason()
    if reason:
        pytest.skip(reason)
    kernels = backend.kernels()
    for case in CASES:
        for dtype in (np.float32, np.float64):
            check(kernels, 0, case, dtype)
