"""int8 quantize / dequantize and the quantized linear and conv2d ops: values against NumPy's integer arithmetic,
the rounding rule, and clear errors for what has no int8 answer."""

from __future__ import annotations

import numpy as np
import pytest

import neurenix as nx
from neurenix import quantization as Q
from neurenix.errors import DTypeError, ShapeError


def _np_quantize(x, scale, zero_point):
    return np.clip(np.rint(x / np.float32(scale)) + zero_point, -128, 127)


@pytest.mark.parametrize(("lo", "hi"), [(-1.0, 3.0), (0.5, 2.0), (-4.0, -1.0), (-1e-3, 1e-3), (-7.25, 0.0)])
def test_affine_qparams_follow_onnx_dynamic_quantize_linear(lo, hi):
    """ONNX DynamicQuantizeLinear's scale and (uint8) zero point, here minus 128; zero stays exact."""
    scale, zero_point = Q.affine_qparams(lo, hi)
    lo32, hi32 = np.float32(min(lo, 0)), np.float32(max(hi, 0))
    want = (hi32 - lo32) / np.float32(255)
    assert scale == float(want)
    assert zero_point == int(np.rint(np.clip(-lo32 / want, 0, 255))) - 128
    assert _np_quantize(np.float32(0), scale, zero_point) == zero_point  # real zero is a step


def test_affine_qparams_of_zeros_and_of_infinities():
    assert Q.affine_qparams(0.0, 0.0) == (1.0, 0)
    with pytest.raises(ValueError, match="not finite"):
        Q.affine_qparams(-np.inf, 1.0)


def test_quantize_per_tensor_rounds_half_to_even_and_saturates():
    x = nx.tensor([0.5, 1.5, 2.5, -0.5, -2.5, 1e9, -1e9, np.inf, -np.inf, 0.49])
    q = Q.quantize_per_tensor(x, 1.0, 0)
    assert q.dtype is nx.int8
    assert q.tolist() == [0, 2, 2, 0, -2, 127, -128, 127, -128, 0]
    np.testing.assert_array_equal(Q.quantize_per_tensor(x, 0.5, 3).numpy(), _np_quantize(x.numpy(), 0.5, 3))


def test_dequantize_inverts_within_half_a_step():
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, 100).astype(np.float32)
    scale, zero_point = Q.affine_qparams(x.min(), x.max())
    back = Q.dequantize(Q.quantize_per_tensor(nx.tensor(x), scale, zero_point), scale, zero_point)
    assert np.abs(back.numpy() - x).max() <= scale / 2 * (1 + 1e-6)


def test_per_channel_weights_are_symmetric_and_invert_within_half_a_step():
    rng = np.random.default_rng(1)
    w = nx.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    w[2] = 0.0  # a channel of zeros: scale 1, all zero
    scales = Q.symmetric_scales(w)
    q = Q.quantize_per_channel(w, scales)
    assert q.dtype is nx.int8 and int(q.abs().max().item()) == 127 and int(q.min().item()) >= -127
    assert scales[2].item() == 1.0 and not q[2].any().item()
    back = Q.dequantize(q, scales, axis=0).numpy()
    assert (np.abs(back - w.numpy()) <= scales.numpy()[:, None, None, None] / 2 * (1 + 1e-6)).all()


@pytest.mark.parametrize("fn", [lambda x: Q.quantize_per_tensor(x, 0.1, 0),
                                lambda x: Q.quantize_per_channel(x, nx.ones(2)),
                                lambda x: Q.quantized_linear(x, nx.zeros(3, 2, dtype=nx.int8), nx.ones(3), None)],
                         ids=["per_tensor", "per_channel", "linear_dynamic"])
def test_nan_has_no_int8_value(fn):
    x = nx.tensor([[1.0, float("nan")], [0.0, 2.0]])
    with pytest.raises(ValueError, match="NaN"):
        fn(x)


def test_arguments_are_checked():
    w, s = nx.zeros(3, 4, dtype=nx.int8), nx.ones(3)
    with pytest.raises(ShapeError, match="in_features = 4"):
        Q.quantized_linear(nx.ones(2, 5), w, s, None)
    with pytest.raises(DTypeError, match="float32"):
        Q.quantized_linear(nx.ones(2, 4, dtype=nx.float64), w, s, None)
    with pytest.raises(DTypeError, match="int8"):
        Q.quantized_linear(nx.ones(2, 4), nx.zeros(3, 4), s, None)
    with pytest.raises(ShapeError, match="weight_scale"):
        Q.quantized_linear(nx.ones(2, 4), w, nx.ones(4), None)
    with pytest.raises(ValueError, match="zero_point"):
        Q.quantized_linear(nx.ones(2, 4), w, s, None, 0.1, 128)
    with pytest.raises(ValueError, match="scale"):
        Q.quantized_linear(nx.ones(2, 4), w, s, None, -0.1, 0)
    with pytest.raises(ShapeError, match="C = 4"):
        Q.quantized_conv2d(nx.ones(1, 3, 5, 5), nx.zeros(2, 4, 3, 3, dtype=nx.int8), nx.ones(2), None, 0.1, 0)
    with pytest.raises(ShapeError, match="larger than the input"):
        Q.quantized_conv2d(nx.ones(1, 4, 2, 2), nx.zeros(2, 4, 3, 3, dtype=nx.int8), nx.ones(2), None, 0.1, 0)


def test_dynamic_linear_quantizes_each_call_from_its_range():
    rng = np.random.default_rng(2)
    wq = nx.tensor(rng.integers(-127, 128, (3, 5)).astype(np.int8))
    s = nx.tensor(rng.uniform(0.01, 0.02, 3).astype(np.float32))
    for spread in (0.1, 10.0):
        x = (rng.standard_normal((4, 5)) * spread).astype(np.float32)
        scale, zp = Q.affine_qparams(x.min(), x.max())
        acc = (_np_quantize(x, scale, zp) - zp) @ wq.numpy().T.astype(np.float64)
        want = acc.astype(np.float32) * (np.float32(scale) * s.numpy())
        np.testing.assert_allclose(Q.quantized_linear(nx.tensor(x), wq, s, None).numpy(), want, rtol=1e-6)


def test_a_compiled_dynamic_layer_takes_each_inputs_range():
    """The range is computed again at every replay (a host step), never frozen at the trace."""
    rng = np.random.default_rng(3)
    wq, s = nx.tensor(rng.integers(-127, 128, (3, 5)).astype(np.int8)), nx.full((3,), 0.01)
    f = nx.compile(lambda x, wq, s: Q.quantized_linear(x, wq, s, None) * 2)
    for spread in (0.1, 1.0, 10.0, 100.0):
        x = nx.tensor((rng.standard_normal((4, 5)) * spread).astype(np.float32))
        np.testing.assert_array_equal(f(x, wq, s).numpy(), Q.quantized_linear(x, wq, s, None).numpy() * 2)
    assert f.stats["replays"] == 3


def test_layers_of_zero_features_quantize():
    from neurenix import nn

    for a, b in ((0, 3), (3, 0)):
        q = Q.quantize_dynamic(nn.Sequential(nn.Linear(a, b)))
        assert q(nx.randn(2, a)).shape == (2, b)


def test_empty_inputs_give_empty_outputs():
    w, s = nx.zeros(3, 4, dtype=nx.int8), nx.ones(3)
    assert Q.quantized_linear(nx.ones(0, 4), w, s, nx.zeros(3)).shape == (0, 3)
    y = Q.quantized_conv2d(nx.ones(0, 4, 5, 5), nx.zeros(2, 4, 3, 3, dtype=nx.int8), nx.ones(2), None, 0.1, 0)
    assert y.shape == (0, 2, 3, 3)


def test_a_backward_pass_through_int8_raises():
    """Inference may run with gradients on (the output carries the graph); a backward pass through the int8 op
    raises rather than leaving the layers before it without gradients, as PyTorch silently does."""
    x = nx.ones(2, 4, requires_grad=True)
    y = Q.quantized_linear(x * 2, nx.ones(3, 4, dtype=nx.int8), nx.ones(3), None)
    np.testing.assert_array_equal(y.detach().numpy(), Q.quantized_linear(x.detach() * 2, nx.ones(3, 4, dtype=nx.int8),
                                                                          nx.ones(3), None).numpy())
    with pytest.raises(RuntimeError, match="no gradient"):
        y.sum().backward()
