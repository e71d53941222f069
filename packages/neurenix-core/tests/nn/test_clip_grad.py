"""nn.utils.clip_grad_norm_ and clip_grad_value_ against NumPy."""

import math

import numpy as np
import pytest

import neurenix as nx
from neurenix.nn.utils import clip_grad_norm_, clip_grad_value_

GRADS = [np.array([[3.0, -4.0], [1.0, 0.0]]), np.array([-2.0, 0.5, 0.0])]


def _params(grads=GRADS, dtype=nx.float64):
    out = []
    for g in grads:
        p = nx.zeros(*g.shape, dtype=dtype, requires_grad=True)
        p.grad = nx.tensor(g, dtype=dtype)
        out.append(p)
    return out


def _vector_norm(x, order):
    x = np.abs(np.ravel(x))
    if order == math.inf:
        return x.max()
    if order == 0:
        return float(np.count_nonzero(x))
    return (x ** order).sum() ** (1 / order)


def _norm(grads, order):
    """PyTorch's total: the norm of the per-gradient norms (for order 0, the count of non-zero gradients)."""
    return _vector_norm([_vector_norm(g, order) for g in grads], order)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, 0.5, math.inf, 0])
@pytest.mark.parametrize("max_norm", [1.0, 100.0])
def test_clip_grad_norm(norm_type, max_norm):
    params = _params()
    total = clip_grad_norm_(params, max_norm, norm_type=norm_type)
    want = _norm(GRADS, norm_type)
    assert isinstance(total, nx.Tensor) and total.shape == ()
    np.testing.assert_allclose(total.item(), want, rtol=1e-12)
    scale = min(1.0, max_norm / (want + 1e-6))
    for p, g in zip(params, GRADS):
        np.testing.assert_allclose(p.grad.numpy(), g * scale, rtol=1e-12)


def test_a_single_tensor_and_parameters_without_gradients():
    p, q = _params()[0], nx.zeros(2, requires_grad=True)
    assert clip_grad_norm_(p, 1.0).item() == pytest.approx(math.sqrt(26))
    assert clip_grad_norm_([q], 1.0).item() == 0.0


def test_nonfinite_norm():
    params = _params([np.array([np.inf, 1.0])])
    with pytest.raises(RuntimeError, match="error_if_nonfinite"):
        clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    with np.errstate(invalid="ignore"):  # inf * 0: the gradients become nan, as in PyTorch
        assert math.isinf(clip_grad_norm_(params, 1.0).item())


def test_clip_grad_value():
    params = _params()
    assert clip_grad_value_(params, 1.5) is None
    for p, g in zip(params, GRADS):
        np.testing.assert_array_equal(p.grad.numpy(), np.clip(g, -1.5, 1.5))


@pytest.mark.parametrize(("call", "match"), [
    (lambda ps: clip_grad_norm_(ps, "big"), "max_norm"),
    (lambda ps: clip_grad_norm_(ps, 1.0, norm_type=None), "norm_type"),
    (lambda ps: clip_grad_value_(ps, None), "clip_value"),
])
def test_bad_arguments(call, match):
    with pytest.raises(TypeError, match=match):
        call(_params())
