"""Batch normalisation in training mode as one fused op (one kernel forward, one backward), alone or followed by
ReLU and a 2x2 max-pool."""

from __future__ import annotations

from ..autograd.grad_mode import state as grad_state
from ..autograd.graph import record
from ._operands import Tensor, _wrap, sum_to
from .elementwise import relu_backward, rsqrt
from .reduce import mean, sum
from .window import _max_pool2d_backward


def batch_norm_train(x: Tensor, weight: Tensor | None, bias: Tensor | None, groups: int,
                     eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(y, mean, var)``: ``x`` (N, C, ...) normalised per channel with its own statistics over the rows
    and spatial axes, separately for each of ``groups`` consecutive blocks of N / groups rows (one per
    task), then scaled by ``weight`` and shifted by ``bias`` ((C,) or (groups, C), or None). ``mean`` and
    the biased ``var`` are (groups, C) constants (for running statistics). Operands share x's device and
    float dtype (the caller checks)."""
    return _fused(x, weight, bias, groups, eps, pool=False)


def _fused(x: Tensor, weight: Tensor | None, bias: Tensor | None, groups: int, eps: float,
           pool: bool) -> tuple[Tensor, Tensor, Tensor]:
    """batch_norm (or with ``pool`` batch_norm_relu_pool) on the kernels, recorded with its vjp. The pooled
    op's gradient recomputes z, so it keeps the bias too; batch norm's needs x and the weight only."""
    kernel = x._device.kernels.batch_norm_relu_pool if pool else x._device.kernels.batch_norm
    y, mu, var = kernel(x._data, None if weight is None else weight._data, None if bias is None else bias._data,
                        groups, eps)
    out = _wrap(y, x._device)
    parents = tuple(t for t in (x, weight, bias) if t is not None)
    if grad_state.enabled and any(t.requires_grad for t in parents):
        vjp = _pool_vjp if pool else _vjp
        record(out, "BatchNormReluPool" if pool else "BatchNorm", parents,
               lambda g, o: vjp(g, x, weight, bias, groups, eps, mu, var),
               saved=parents if pool else parents[:2] if weight is not None else parents[:1])
    return out, _wrap(mu, x._device), _wrap(var, x._device)


def _vjp(g: Tensor, x: Tensor, weight: Tensor | None, bias: Tensor | None, groups: int, eps: float, mu, var):
    needs = _needs(x, weight, bias)
    if grad_state.enabled:  # building a graph (second-order MAML): the same gradient from differentiable ops
        gx, gw, gb = _differentiable_vjp(g, x, weight, groups, eps)
    else:
        grads = x._device.kernels.batch_norm_backward(g._data, x._data, mu, var,
                                                      None if weight is None else weight._data, groups, eps, needs)
        gx, gw, gb = (None if d is None else _wrap(d, x._device) for d in grads)
    return _per_parent(needs, weight, bias, gx, gw, gb)


def _needs(x: Tensor, weight: Tensor | None, bias: Tensor | None) -> tuple[bool, bool, bool]:
    """Which of x, weight and bias (None: not an operand) a gradient is wanted for."""
    return x.requires_grad, weight is not None and weight.requires_grad, bias is not None and bias.requires_grad


def _per_parent(needs: tuple, weight: Tensor | None, bias: Tensor | None, gx, gw, gb) -> tuple:
    """The gradients in the order of the recorded parents (x, then weight and bias where given)."""
    out = [gx if needs[0] else None]
    for t, gt in ((weight, gw), (bias, gb)):
        if t is not None:
            out.append(sum_to(gt, t.shape) if t.requires_grad else None)
    return tuple(out)


def _differentiable_vjp(g: Tensor, x: Tensor, weight: Tensor | None, groups: int, eps: float) -> tuple:
    """The analytic batch-norm gradient, written with ops that record a graph: statistics are recomputed
    from ``x``, so that the result is differentiable again in ``x``."""
    shape = x.shape
    xr, gr = x.reshape(groups, shape[0] // groups, shape[1], -1), g.reshape(groups, shape[0] // groups, shape[1], -1)
    m = xr.shape[1] * xr.shape[3]
    mu = mean(xr, (1, 3), keepdim=True)
    d = xr - mu
    inv = rsqrt(mean(d * d, (1, 3), keepdim=True) + eps)
    xhat = d * inv
    gb, gw = sum(gr, (1, 3), keepdim=True), sum(gr * xhat, (1, 3), keepdim=True)
    w = inv if weight is None else inv * weight.reshape(-1 if weight.ndim == 2 else 1, 1, shape[1], 1)
    gx = (w * (1.0 / m)) * (gr * float(m) - gb - xhat * gw)
    return gx.reshape(shape), gw.reshape(groups, shape[1]), gb.reshape(groups, shape[1])


#: batch_norm_relu_pool's window (kernel, stride, padding, dilation): Conv-4's and ResNet-12's 2x2 max-pool
POOL = ((2, 2), (2, 2), (0, 0), (1, 1))


def batch_norm_relu_pool_train(x: Tensor, weight: Tensor | None, bias: Tensor | None, groups: int,
                               eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(y, mean, var)``: ``max_pool2d(relu(batch_norm_train(x, ...)), 2)`` for an (N, C, H, W) ``x`` with H
    and W at least 2, as one op (one kernel forward, one backward: nothing but ``x`` is kept for the
    gradient). Operands as for :func:`batch_norm_train`."""
    return _fused(x, weight, bias, groups, eps, pool=True)


def _pool_vjp(g: Tensor, x: Tensor, weight: Tensor | None, bias: Tensor | None, groups: int, eps: float, mu, var):
    dev = x._device
    if grad_state.enabled:  # building a graph: the composition's gradient, from differentiable pieces
        w, b = (None if t is None else t._data for t in (weight, bias))
        z, _, _ = dev.kernels.batch_norm(x._data, w, b, groups, eps)
        _, indices = dev.kernels.max_pool2d(dev.kernels.relu(z), *POOL)
        gz = relu_backward(_max_pool2d_backward(g, _wrap(indices, dev), x.shape[2:], *POOL), _wrap(z, dev))
        return _vjp(gz, x, weight, bias, groups, eps, mu, var)
    needs = _needs(x, weight, bias)
    grads = dev.kernels.batch_norm_relu_pool_backward(g._data, x._data, mu, var,
                                                      *(None if t is None else t._data for t in (weight, bias)),
                                                      groups, eps, needs)
    gx, gw, gb = (None if d is None else _wrap(d, dev) for d in grads)
    return _per_parent(needs, weight, bias, gx, gw, gb)
