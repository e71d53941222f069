"""A custom op written once per library with autograd.Function gives the same values and gradients, first
and second order, in neurenix and in PyTorch (float64)."""

from __future__ import annotations

import numpy as np
import pytest


def _ops(lib):
    """Custom ops against ``lib``'s Function: a softplus saving its input and a two-output op."""

    class Softplus(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, beta):
            ctx.save_for_backward(x)
            ctx.beta = beta
            return (1 + (x * beta).exp()).log() / beta

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * (x * ctx.beta).sigmoid(), None

    class SinCos(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.sin(), x.cos()

        @staticmethod
        def backward(ctx, gs, gc):
            (x,) = ctx.saved_tensors
            return gs * x.cos() - gc * x.sin()

    return {"softplus": lambda x: Softplus.apply(x, 2.0),
            "sincos": lambda x: (lambda s, c: s * c + s ** 2)(*SinCos.apply(x))}


@pytest.mark.parametrize("op", ["softplus", "sincos"])
def test_values_and_gradients_to_second_order_match_torch(torch, op):
    import neurenix as nx

    x0 = np.random.default_rng(0).normal(size=(2, 3))
    results = []
    for lib in (nx, torch):
        x = lib.tensor(x0, dtype=lib.float64, requires_grad=True)
        y = _ops(lib)[op](x)
        (g,) = lib.autograd.grad(y.sum(), [x], create_graph=True)
        (gg,) = lib.autograd.grad((g ** 2).sum(), [x])
        results.append([t.detach().numpy() for t in (y, g, gg)])
    for a, e in zip(*results):
        np.testing.assert_allclose(a, e, rtol=1e-12)
