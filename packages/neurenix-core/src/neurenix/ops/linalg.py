"""Matrix products: ``matmul`` (NumPy semantics, batched) and the fused ``linear`` layer op."""

from __future__ import annotations

from ..autograd.grad_mode import state as grad_state
from ..autograd.graph import record
from ..errors import DTypeError, ShapeError
from ._operands import Tensor, _wrap, broadcast_shapes, device_mismatch, promote_pair, sum_to
from .movement import mT, squeeze, unsqueeze


def _check_pair(a, b, op: str):
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"{op}: both operands must be tensors, got {type(a).__name__} and {type(b).__name__}")
    if a._device is not b._device:
        raise device_mismatch(op, a, b)
    if a._data.dtype is not b._data.dtype:
        a, b = promote_pair(a, b, op, False)
    if a._data.dtype.kind == "b":
        raise DTypeError(f"{op}: not defined for bool tensors")
    return a, b


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with NumPy's rules: 1-D operands are vectors, leading axes broadcast."""
    a, b = _check_pair(a, b, "matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: operands must have at least 1 dimension, got shapes {a.shape} and {b.shape}; "
                         "use * to multiply by a scalar")
    if a.ndim == 1:
        return squeeze(matmul(unsqueeze(a, 0), b), -2)
    if b.ndim == 1:
        return squeeze(matmul(a, unsqueeze(b, -1)), -1)
    sa, sb = a._data.shape, b._data.shape
    if sa[-1] != sb[-2]:
        raise ShapeError(f"matmul: shapes {sa} and {sb} do not match ({sa[-1]} != {sb[-2]} in the inner dimension)")
    if len(sa) > 2 or len(sb) > 2:
        broadcast_shapes(sa[:-2], sb[:-2], "matmul (batch dimensions)")
    out = _wrap(a._device.kernels.matmul(a._data, b._data), a._device)
    if (a.requires_grad or b.requires_grad) and grad_state.enabled:
        record(out, "Matmul", (a, b), lambda g, o: (
            sum_to(matmul(g, mT(b)), sa) if a.requires_grad else None,
            sum_to(matmul(mT(a), g), sb) if b.requires_grad else None))
    return out


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.mT + bias`` as one op. ``weight`` is (out, in), or (..., out, in) with ``bias``
    (..., out) for a batch of weights (one per task, say) applied to ``x`` of shape (..., n, in)."""
    x, weight = _check_pair(x, weight, "linear")
    if bias is not None:
        weight, bias = _check_pair(weight, bias, "linear")
        x, weight = _check_pair(x, weight, "linear")
    if weight.ndim < 2 or x.ndim < 1 or x.shape[-1] != weight.shape[-1]:
        raise ShapeError(f"linear: input of shape {x.shape} does not fit weight of shape {weight.shape} "
                         f"(expected input (..., {weight.shape[-1] if weight.ndim else '?'}))")
    if bias is not None and bias.shape != weight.shape[:-1]:
        raise ShapeError(f"linear: bias of shape {bias.shape} does not fit weight of shape {weight.shape}")
    k = x._device.kernels
    wt = k.permute(weight._data, tuple(range(weight.ndim - 2)) + (weight.ndim - 1, weight.ndim - 2))
    batched = weight.ndim > 2
    if batched:
        broadcast_shapes(x.shape[:-2], weight.shape[:-2], "linear (batch dimensions)")
    y = k.matmul(x._data, wt)
    if bias is not None:
        bd = bias._data
        y = k.add(y, k.reshape(bd, bd.shape[:-1] + (1, bd.shape[-1])) if batched else bd)
    out = _wrap(y, x._device)
    if grad_state.enabled and (x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)):
        parents = (x, weight) if bias is None else (x, weight, bias)

        def vjp(g, o):
            gx = sum_to(matmul(g, weight), x.shape) if x.requires_grad else None
            gw = None
            if weight.requires_grad:
                gw = matmul(mT(g), x) if g.ndim == 2 or batched else matmul(mT(g.flatten(0, -2)), x.flatten(0, -2))
                gw = sum_to(gw, weight.shape)
            if bias is None:
                return gx, gw
            gb = None
            if bias.requires_grad:
                gb = sum_to(g, bias.shape[:-1] + (1, bias.shape[-1])).reshape(bias.shape) if batched \
                    else sum_to(g, bias.shape)
            return gx, gw, gb
        record(out, "Linear", parents, vjp)
    return out
