"""Convolution as three ops closed under differentiation: ``conv2d``, its gradient with respect to the input
(``conv2d_input_grad``) and with respect to the weight (``conv2d_weight_grad``). Each is bilinear, and each
one's gradients are the other two, so a convolution is differentiable to any order while a backend runs
whole convolutions (Winograd, implicit GEMM) and none of their im2col columns is kept for the backward.

The arguments are checked by ``nn.functional.conv2d``: float operands of one dtype on one device, window
arguments as pairs, shapes that fit (see the ``conv2d`` kernel's contract in ``backend.kernels``).
"""

from __future__ import annotations

from ..autograd.grad_mode import state as grad_state
from ..autograd.graph import record
from ._operands import Tensor, _wrap


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple, padding: tuple, dilation: tuple,
           groups: int) -> Tensor:
    """Cross-correlation of ``x`` (N, C, H, W) with ``weight`` (O, C/groups, kh, kw), or (T, O, C/groups, kh, kw)
    with ``bias`` (T, O) for T tasks of N/T rows each."""
    geometry = (stride, padding, dilation, groups)
    dev = x._device
    out = _wrap(dev.kernels.conv2d(x._data, weight._data, None if bias is None else bias._data, *geometry), dev)
    if grad_state.enabled and (x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)):
        parents = (x, weight) if bias is None else (x, weight, bias)
        record(out, "Conv2d", parents, lambda g, o: _conv2d_vjp(g, x, weight, bias, geometry), saved=(x, weight))
    return out


def _conv2d_vjp(g: Tensor, x: Tensor, weight: Tensor, bias: Tensor | None, geometry: tuple) -> tuple:
    gx = conv2d_input_grad(g, weight, x.shape, *geometry) if x.requires_grad else None
    gw = conv2d_weight_grad(x, g, weight.shape, *geometry) if weight.requires_grad else None
    if bias is None:
        return gx, gw
    gb = None
    if bias.requires_grad:
        n, o = g.shape[:2]
        t = bias.shape[0] if bias.ndim == 2 else 1
        gb = g.reshape(t, n // t, o, -1).sum((1, 3)).reshape(bias.shape)
    return gx, gw, gb


def conv2d_input_grad(g: Tensor, weight: Tensor, input_shape: tuple, stride: tuple, padding: tuple, dilation: tuple,
                      groups: int) -> Tensor:
    """The gradient of ``sum(g * conv2d(x, weight))`` with respect to ``x`` of ``input_shape``."""
    geometry = (stride, padding, dilation, groups)
    dev = g._device
    out = _wrap(dev.kernels.conv2d_input_grad(g._data, weight._data, tuple(input_shape), *geometry), dev)
    if grad_state.enabled and (g.requires_grad or weight.requires_grad):
        record(out, "Conv2dInputGrad", (g, weight), lambda gx, o: (
            conv2d(gx, weight, None, *geometry) if g.requires_grad else None,
            conv2d_weight_grad(gx, g, weight.shape, *geometry) if weight.requires_grad else None))
    return out


def conv2d_weight_grad(x: Tensor, g: Tensor, weight_shape: tuple, stride: tuple, padding: tuple, dilation: tuple,
                       groups: int) -> Tensor:
    """The gradient of ``sum(g * conv2d(x, weight))`` with respect to ``weight`` of ``weight_shape``."""
    geometry = (stride, padding, dilation, groups)
    dev = x._device
    out = _wrap(dev.kernels.conv2d_weight_grad(x._data, g._data, tuple(weight_shape), *geometry), dev)
    if grad_state.enabled and (x.requires_grad or g.requires_grad):
        record(out, "Conv2dWeightGrad", (x, g), lambda gw, o: (
            conv2d_input_grad(g, gw, x.shape, *geometry) if x.requires_grad else None,
            conv2d(x, gw, None, *geometry) if g.requires_grad else None))
    return out
