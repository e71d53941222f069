"""The implicit-GEMM convolution kernels (conv2d_*, conv2d_dx_*, conv2d_dw_*) on the emulator, against NumPy
and against core's conv2d (unfold + matmul) and its autograd on the CPU."""

import numpy as np
import pytest

import neurenix as nx
import neurenix.nn.functional as F

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


def _data(case, dtype, seed=0):
    xs, ws, stride, padding, dilation, groups = case
    rng = np.random.default_rng(seed)
    x, wt, b = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype), \
        rng.standard_normal(ws[0]).astype(dtype)
    cols = _cols(x, ws[2], ws[3], stride, padding, dilation)
    dy = rng.standard_normal((xs[0], ws[0], *cols.shape[-2:])).astype(dtype)
    return x, wt, b, dy


def _tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}x{c[1]}s{c[2]}p{c[3]}d{c[4]}g{c[5]}")
def test_conv2d_and_its_gradients_match_numpy(kernels, case, dtype):
    _, _, stride, padding, dilation, groups = case
    x, wt, b, dy = _data(case, dtype)
    out, dx, dw = reference(x, wt, b, dy, stride, padding, dilation, groups)
    up, get = (lambda a: kernels["from_numpy"](a, 0)), kernels["to_numpy"]
    gx, gw, gb, gdy = up(x), up(wt), up(b), up(dy)
    got = get(kernels["conv2d"](gx, gw, gb, stride, padding, dilation, groups))
    assert got.dtype == dtype and got.shape == out.shape
    np.testing.assert_allclose(got, out, **_tol(dtype))
    no_bias = get(kernels["conv2d"](gx, gw, None, stride, padding, dilation, groups))
    np.testing.assert_allclose(no_bias, out - b.reshape(1, -1, 1, 1), **_tol(dtype))
    got_dx = get(kernels["conv2d_input_grad"](gdy, gw, x.shape[2:], stride, padding, dilation, groups))
    assert got_dx.shape == x.shape
    np.testing.assert_allclose(got_dx, dx, **_tol(dtype))
    got_dw = get(kernels["conv2d_weight_grad"](gx, gdy, wt.shape[2:], stride, padding, dilation, groups))
    assert got_dw.shape == wt.shape
    np.testing.assert_allclose(got_dw, dw, **_tol(dtype))


@pytest.mark.parametrize("case", [CASES[0], CASES[3]])
def test_the_kernels_agree_with_cores_conv2d_and_its_autograd(kernels, case):
    """What core computes on the CPU (unfold + matmul, and the backward of that): the kernels' semantics are
    the ones a core optional kernel would route to them."""
    _, _, stride, padding, dilation, groups = case
    x, wt, b, dy = _data(case, np.float64, seed=1)
    tx, tw, tb = (nx.Tensor(a, requires_grad=True) for a in (x, wt, b))
    out = F.conv2d(tx, tw, tb, stride=stride, padding=padding, dilation=dilation, groups=groups)
    (out * nx.Tensor(dy)).sum().backward()
    up, get = (lambda a: kernels["from_numpy"](a, 0)), kernels["to_numpy"]
    np.testing.assert_allclose(get(kernels["conv2d"](up(x), up(wt), up(b), stride, padding, dilation, groups)),
                               out.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(get(kernels["conv2d_input_grad"](up(dy), up(wt), x.shape[2:], stride, padding,
                                                                dilation, groups)), tx.grad.numpy(), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(get(kernels["conv2d_weight_grad"](up(x), up(dy), wt.shape[2:], stride, padding,
                                                                 dilation, groups)), tw.grad.numpy(), rtol=1e-12,
                               atol=1e-12)


def test_each_is_one_launch_and_allocates_only_its_output(backend, kernels, monkeypatch):
    """No im2col matrix: one kernel launch per product, and the only new device memory is the result's."""
    x, wt, b, dy = _data(CASES[0], np.float32)
    up = (lambda a: kernels["from_numpy"](a, 0))
    gx, gw, gb, gdy = up(x), up(wt), up(b), up(dy)
    emu, sizes = backend.driver.emu, []
    alloc = emu.alloc
    monkeypatch.setattr(emu, "alloc", lambda size, device=None: sizes.append(size) or alloc(size, device))
    for name, args, shape in (("conv2d", (gx, gw, gb), dy.shape), ("conv2d_input_grad", (gdy, gw, x.shape[2:]), x.shape),
                              ("conv2d_weight_grad", (gx, gdy, wt.shape[2:]), wt.shape)):
        launches, sizes[:] = emu.launches, []
        out = kernels[name](*args, (1, 1), (1, 1), (1, 1), 1)
        assert out.shape == shape and emu.launches == launches + 1, name
        assert all(s <= max(out.size * 4, 512) for s in sizes), (name, sizes)  # the output's block, if new


def test_empty_batches(kernels):
    up, get = (lambda a: kernels["from_numpy"](a, 0)), kernels["to_numpy"]
    x, wt = np.ones((0, 2, 4, 4)), np.ones((3, 2, 3, 3))
    assert get(kernels["conv2d"](up(x), up(wt), None, (1, 1), (0, 0), (1, 1), 1)).shape == (0, 3, 2, 2)
    dw = get(kernels["conv2d_weight_grad"](up(x), up(np.ones((0, 3, 2, 2))), (3, 3), (1, 1), (0, 0), (1, 1), 1))
    np.testing.assert_array_equal(dw, np.zeros((3, 2, 3, 3)))  # a sum over no windows


def test_channels_that_do_not_split_into_the_groups_are_refused(kernels):
    up = (lambda a: kernels["from_numpy"](a, 0))
    with pytest.raises(ValueError, match="do not split into 2 groups"):
        kernels["conv2d"](up(np.ones((1, 3, 4, 4))), up(np.ones((4, 1, 3, 3))), None, (1, 1), (0, 0), (1, 1), 2)
