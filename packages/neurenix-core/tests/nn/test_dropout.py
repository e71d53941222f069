"""Dropout2d: whole channels kept (scaled by 1/(1-p)) or zeroed, in training only; its gradient is its mask."""

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn


@pytest.mark.parametrize("dtype", [nx.float32, nx.float64], ids=str)
def test_whole_channels_are_kept_or_zeroed(dtype):
    nx.manual_seed(0)
    x = nx.tensor(np.random.default_rng(0).uniform(1, 2, (40, 50, 3, 2)), dtype=dtype)
    y = nn.Dropout2d(0.3)(x).numpy()
    ratio = (y / x.numpy()).reshape(40, 50, -1)
    kept = ratio[..., 0] != 0
    np.testing.assert_allclose(ratio[kept], 1 / 0.7, rtol=1e-6)  # every element of a kept channel, scaled
    assert not ratio[~kept].any()  # every element of a dropped one, zero
    assert abs((~kept).mean() - 0.3) < 0.03


def test_identity_outside_training_and_at_p_zero():
    x = nx.randn(2, 3, 4, 4)
    assert nn.Dropout2d().eval()(x) is x and nn.Dropout2d(0.0)(x) is x
    assert not nn.Dropout2d(1.0)(x).numpy().any()


def test_gradient_is_the_mask():
    nx.manual_seed(1)
    x = nx.ones(4, 6, 2, 2, dtype=nx.float64, requires_grad=True)
    y = nn.Dropout2d(0.5)(x)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.detach().numpy())


def test_draws_differ_between_calls_and_follow_the_seed():
    x = nx.ones(8, 16, 1, 1)
    nx.manual_seed(2)
    a, b = nn.Dropout2d()(x).numpy(), nn.Dropout2d()(x).numpy()
    nx.manual_seed(2)
    assert (a != b).any() and (nn.Dropout2d()(x).numpy() == a).all()
