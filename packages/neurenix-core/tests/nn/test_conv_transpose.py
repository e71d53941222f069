"""ConvTranspose1d/2d and their functionals: PyTorch's shapes, parameters and output_size rule, unbatched inputs,
gradients to second order, errors that name the problem (values on every backend: the op cases)."""

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix.errors import ShapeError
from neurenix.nn import functional as F
from neurenix.testing import gradcheck, gradgradcheck


def _t(*shape, seed=0, requires_grad=False):
    a = np.random.default_rng(seed).standard_normal(shape)
    return nx.tensor(a, dtype=nx.float64, requires_grad=requires_grad)


@pytest.mark.parametrize("stride, padding, output_padding, groups, dilation",
                         [(1, 0, 0, 1, 1), (2, 1, 1, 1, 1), (3, 2, 2, 2, 1), (1, 1, 1, 1, 2), (2, 0, 1, 2, 2)])
def test_layer_shapes_and_parameters_are_pytorchs(stride, padding, output_padding, groups, dilation):
    m = nn.ConvTranspose2d(4, 6, 3, stride, padding, output_padding, groups, dilation=dilation)
    assert m.weight.shape == (4, 6 // groups, 3, 3) and m.bias.shape == (6,)
    h, w = 5, 4
    y = m(_t(2, 4, h, w).float())
    size = [(i - 1) * stride - 2 * padding + dilation * 2 + output_padding + 1 for i in (h, w)]
    assert y.shape == (2, 6, *size)
    bound = 1 / np.sqrt(6 // groups * 9)  # fan_in of the (in, out/groups, k, k) weight, as PyTorch
    assert np.abs(m.weight.numpy()).max() <= bound and np.abs(m.bias.numpy()).max() <= bound


def test_output_size_picks_the_output_padding():
    m = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    x = _t(1, 2, 4, 4).float()
    assert m(x).shape == (1, 3, 7, 7)
    assert m(x, output_size=(8, 7)).shape == (1, 3, 8, 7)
    assert m(x, output_size=[1, 3, 8, 8]).shape == (1, 3, 8, 8)  # N and C in front, as PyTorch allows
    with pytest.raises(ValueError, match=r"output_size \(9, 7\) is not reachable"):
        m(x, output_size=(9, 7))
    m1 = nn.ConvTranspose1d(2, 3, 3, stride=2)
    assert m1(_t(2, 5).float()).shape == (3, 11) and m1(_t(2, 5).float(), output_size=(12,)).shape == (3, 12)


def test_unbatched_input_is_one_image():
    m = nn.ConvTranspose2d(2, 3, 2, stride=2).double()
    x = _t(2, 3, 3)
    np.testing.assert_allclose(m(x).numpy(), m(x.unsqueeze(0)).squeeze(0).numpy())


def test_transposed_convolution_is_the_adjoint_of_convolution():
    x, w = _t(2, 4, 5, 6, seed=1), _t(4, 3, 3, 3, seed=2)  # conv2d weight (O=4, C=3): conv (3 -> 4)
    z = _t(2, 3, 9, 11, seed=3)
    conv = F.conv2d(z, w, stride=2, padding=1)
    assert conv.shape == x.shape
    lhs = (conv * x).sum().item()
    rhs = (z * F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=(0, 0))).sum().item()
    assert lhs == pytest.approx(rhs, rel=1e-12)


@pytest.mark.parametrize("groups, dilation", [(1, 1), (2, 2)])
def test_gradients_first_and_second_order(groups, dilation):
    x, w, b = _t(1, 2, 3, 3, requires_grad=True), _t(2, 2 // groups, 2, 2, seed=1, requires_grad=True), \
        _t(2, seed=2, requires_grad=True)

    def fn(x, w, b):
        return F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, groups=groups, dilation=dilation)

    assert gradcheck(fn, (x, w, b)) and gradgradcheck(fn, (x, w, b))


def test_repr_is_pytorchs():
    assert repr(nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1, bias=False)) == (
        "ConvTranspose2d(3, 4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1), bias=False)")
    assert repr(nn.ConvTranspose1d(3, 4, 2)) == "ConvTranspose1d(3, 4, kernel_size=(2,), stride=(1,))"


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.conv_transpose2d(_t(1, 3, 4, 4), _t(2, 3, 3, 3)), ShapeError, "3 channels does not fit weight"),
    (lambda: F.conv_transpose2d(_t(1, 4, 4, 4), _t(4, 3, 3, 3), groups=3), ShapeError, "groups=3"),
    (lambda: F.conv_transpose2d(_t(1, 3, 4, 4), _t(3, 2, 3, 3), stride=2, output_padding=2), ValueError,
     "output_padding .* must be smaller than stride"),
    (lambda: F.conv_transpose2d(_t(1, 3, 1, 1), _t(3, 2, 1, 1), padding=1), ShapeError, "gives no output"),
    (lambda: F.conv_transpose2d(_t(1, 3, 4, 4), _t(3, 2, 3, 3), _t(3)), ShapeError, "bias of shape"),
    (lambda: F.conv_transpose2d(_t(3, 4, 4), _t(3, 2, 3)), ShapeError, "expected input"),
    (lambda: F.conv_transpose2d(_t(1, 3, 4, 4), _t(3, 2, 3, 3), stride=0), ValueError, "stride"),
    (lambda: F.conv_transpose2d(nx.ones(1, 3, 4, 4, dtype=nx.int64), nx.ones(3, 2, 3, 3, dtype=nx.int64)),
     nx.errors.DTypeError, "float32 or float64"),
    (lambda: F.conv_transpose1d(_t(1, 3, 4), _t(3, 2, 3), output_padding=(1, 1)), ValueError, "one-element"),
])
def test_bad_arguments_name_the_problem(call, error, match):
    with pytest.raises(error, match=match):
        call()
