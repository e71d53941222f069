"""The implicit-GEMM convolution kernels (conv2d_*, conv2d_dx_*, conv2d_dw_*) on the emulator, against NumPy
(neurenix_gpu.testing.conv) and against core's conv2d (unfold + matmul) and its autograd on the CPU."""

import numpy as np
import pytest
from neurenix_gpu.testing.conv import CASES, check, data

import neurenix as nx
import neurenix.nn.functional as F


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}x{c[1]}s{c[2]}p{c[3]}d{c[4]}g{c[5]}")
def test_conv2d_and_its_gradients_match_numpy(kernels, case, dtype):
    check(kernels, 0, case, dtype)


@pytest.mark.parametrize("case", [CASES[0], CASES[3]])
def test_the_kernels_agree_with_cores_conv2d_and_its_autograd(kernels, case):
    """What core computes on the CPU (its conv2d and autograd): the kernels keep core's contract."""
    _, _, stride, padding, dilation, groups = case
    x, wt, b, dy = data(case, np.float64, seed=1)
    tx, tw, tb = (nx.Tensor(a, requires_grad=True) for a in (x, wt, b))
    out = F.conv2d(tx, tw, tb, stride=stride, padding=padding, dilation=dilation, groups=groups)
    (out * nx.Tensor(dy)).sum().backward()
    up, get = (lambda a: kernels["from_numpy"](a, 0)), kernels["to_numpy"]
    np.testing.assert_allclose(get(kernels["conv2d"](up(x), up(wt), up(b), stride, padding, dilation, groups)),
                               out.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(get(kernels["conv2d_input_grad"](up(dy), up(wt), x.shape, stride, padding,
                                                                dilation, groups)), tx.grad.numpy(), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(get(kernels["conv2d_weight_grad"](up(x), up(dy), wt.shape, stride, padding,
                                                                 dilation, groups)), tw.grad.numpy(), rtol=1e-12,
                               atol=1e-12)


def test_each_is_one_launch_and_allocates_only_its_output(backend, kernels, monkeypatch):
    """No im2col matrix: one kernel launch per product, and the only new device memory is the result's."""
    x, wt, b, dy = data(CASES[0], np.float32)
    gx, gw, gb, gdy = (kernels["from_numpy"](a, 0) for a in (x, wt, b, dy))
    emu, sizes = backend.driver.emu, []
    alloc = emu.alloc
    monkeypatch.setattr(emu, "alloc", lambda size, device=None: sizes.append(size) or alloc(size, device))
    for name, args, shape in (("conv2d", (gx, gw, gb), dy.shape),
                              ("conv2d_input_grad", (gdy, gw, x.shape), x.shape),
                              ("conv2d_weight_grad", (gx, gdy, wt.shape), wt.shape)):
        launches, sizes[:] = emu.launches, []
        out = kernels[name](*args, (1, 1), (1, 1), (1, 1), 1)
        assert out.shape == shape and emu.launches == launches + 1, name
        assert all(s <= max(out.size * 4, 512) for s in sizes), (name, sizes)  # the output's block, if new


def test_empty_batches(kernels):
    up, get = (lambda a: kernels["from_numpy"](a, 0)), kernels["to_numpy"]
    x, wt = np.ones((0, 2, 4, 4)), np.ones((3, 2, 3, 3))
    assert get(kernels["conv2d"](up(x), up(wt), None, (1, 1), (0, 0), (1, 1), 1)).shape == (0, 3, 2, 2)
    dw = get(kernels["conv2d_weight_grad"](up(x), up(np.ones((0, 3, 2, 2))), (3, 2, 3, 3), (1, 1), (0, 0), (1, 1), 1))
    np.testing.assert_array_equal(dw, np.zeros((3, 2, 3, 3)))  # a sum over no windows


def test_channels_that_do_not_split_into_the_groups_are_refused(kernels):
    x, wt = kernels["from_numpy"](np.ones((1, 3, 4, 4)), 0), kernels["from_numpy"](np.ones((4, 1, 3, 3)), 0)
    with pytest.raises(ValueError, match="do not split into 2 groups"):
        kernels["conv2d"](x, wt, None, (1, 1), (0, 0), (1, 1), 2)


def test_more_groups_than_the_grid_has_z_blocks(make_backend):
    """The blocks along z loop over the groups (here 3 groups on a device of 2 z blocks)."""
    from neurenix_gpu.testing.emulator import Emulator

    check(make_backend(Emulator(max_grid=(2**31 - 1, 65535, 2))).kernels(), 0, CASES[4], np.float64)


@pytest.mark.parametrize("bias", [True, False])
def test_per_task_weights_run_each_task_on_its_rows(kernels, bias):
    """A (T, O, C, kh, kw) weight: task t's rows convolved with weight[t], as core's conv2d on the CPU."""
    rng = np.random.default_rng(3)
    x, wt, b = rng.standard_normal((6, 2, 5, 4)), rng.standard_normal((3, 4, 2, 3, 3)), rng.standard_normal((3, 4))
    b = b if bias else None
    tx, tw = nx.Tensor(x, requires_grad=True), nx.Tensor(wt, requires_grad=True)
    out = F.conv2d(tx, tw, None if b is None else nx.Tensor(b), padding=1)
    dy = rng.standard_normal(out.shape)
    (out * nx.Tensor(dy)).sum().backward()
    up, get = (lambda a: kernels["from_numpy"](a, 0)), kernels["to_numpy"]
    geometry = ((1, 1), (1, 1), (1, 1), 1)
    np.testing.assert_allclose(get(kernels["conv2d"](up(x), up(wt), None if b is None else up(b), *geometry)),
                               out.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(get(kernels["conv2d_input_grad"](up(dy), up(wt), x.shape, *geometry)),
                               tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(get(kernels["conv2d_weight_grad"](up(x), up(dy), wt.shape, *geometry)),
                               tw.grad.numpy(), rtol=1e-12, atol=1e-12)
