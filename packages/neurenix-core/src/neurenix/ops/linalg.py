"""Matrix products: ``matmul`` (NumPy semantics, batched) and the fused ``linear`` layer op."""

from __future__ import annotations

from ..autograd.grad_mode import state as grad_state
from ..autograd.graph import record
from ..errors import DTypeError, ShapeError
from ._operands import Tensor, _wrap, broadcast_shapes, device_mismatch, promote_pair, sum_to
from .shape import mT, squeeze, unsqueeze


def _same_kind(op: str, *ts):
    """Tensors on one device with one non-bool dtype (promoting if needed), or a clear error."""
    for t in ts:
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: operands must be tensors, got {type(t).__name__}")
    first = ts[0]
    for t in ts[1:]:
        if t._device is not first._device:
            raise device_mismatch(op, first, t)
    if any(t._data.dtype is not first._data.dtype for t in ts):
        common = first
        for t in ts[1:]:
            common, _ = promote_pair(common, t, op, False)
        ts = tuple(t.to(common.dtype) for t in ts)
    if ts[0]._data.dtype.kind == "b":
        raise DTypeError(f"{op}: not defined for bool tensors (it takes float32, float64 or int64: cast with .float() "
                         "or .long())")
    return ts


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with NumPy's rules: 1-D operands are vectors, leading axes broadcast."""
    if not (isinstance(a, Tensor) and isinstance(b, Tensor) and a._device is b._device
            and a._data.dtype is b._data.dtype and a._data.dtype.kind != "b"):
        a, b = _same_kind("matmul", a, b)
    sa, sb = a._data.shape, b._data.shape
    if len(sa) < 2 or len(sb) < 2:
        if not sa or not sb:
            raise ShapeError(f"matmul: operands must have at least 1 dimension, got shapes {sa} and {sb}; "
                             "use * to multiply by a scalar")
        if len(sa) == 1 and len(sb) == 1:  # the dot product, a 0-d tensor
            if sa != sb:
                raise ShapeError(f"matmul: vectors of shapes {sa} and {sb} have different lengths")
            return matmul(unsqueeze(a, 0), unsqueeze(b, -1)).reshape(())
        if len(sa) == 1:
            return squeeze(matmul(unsqueeze(a, 0), b), -2)
        return squeeze(matmul(a, unsqueeze(b, -1)), -1)
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
    ts = (x, weight) if bias is None else (x, weight, bias)
    if not all(isinstance(t, Tensor) and t._device is x._device and t._data.dtype is x._data.dtype for t in ts) \
            or x._data.dtype.kind == "b":
        ts = _same_kind("linear", *ts)
        x, weight = ts[0], ts[1]
        bias = ts[2] if len(ts) == 3 else None
    sx, sw = x._data.shape, weight._data.shape
    nw = len(sw)
    if nw < 2 or not sx or sx[-1] != sw[-1]:
        raise ShapeError(f"linear: input of shape {sx} does not fit weight of shape {sw} "
                         f"(expected input (..., {sw[-1] if sw else '?'}))")
    if bias is not None and bias._data.shape != sw[:-1]:
        raise ShapeError(f"linear: bias of shape {bias.shape} does not fit weight of shape {sw}")
    batched = nw > 2
    if batched:
        broadcast_shapes(sx[:-2], sw[:-2], "linear (batch dimensions)")
    out = _wrap(x._device.kernels.linear(x._data, weight._data, None if bias is None else bias._data), x._device)
    if grad_state.enabled and (x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)):
        record(out, "Linear", ts, lambda g, o: _linear_vjp(g, x, weight, bias, batched), saved=ts[:2])
    return out


def _linear_vjp(g: Tensor, x: Tensor, weight: Tensor, bias: Tensor | None, batched: bool) -> tuple:
    needs = (x.requires_grad, weight.requires_grad, bias is not None and bias.requires_grad)
    if not grad_state.enabled and len(g._data.shape) >= 2 and len(x._data.shape) >= 2:
        # a first-order backward: one fused kernel call (a graph-building one below stays differentiable)
        grads = g._device.kernels.linear_backward(g._data, x._data, weight._data, needs)
        shapes = (x.shape, weight.shape, None if bias is None else bias.shape)
        out = tuple(None if d is None else sum_to(_wrap(d, g._device), s) for d, s in zip(grads, shapes))
        return out if bias is not None else out[:2]
    gx = sum_to(matmul(g, weight), x.shape) if x.requires_grad else None
    gw = None
    if weight.requires_grad:
        if batched or len(g._data.shape) == 2:
            gw = sum_to(matmul(mT(g), x), weight.shape)
        else:  # (..., n, out) with one weight: fold the leading axes into the batch of rows
            gw = matmul(mT(g.flatten(0, -2)), x.flatten(0, -2))
    if bias is None:
        return gx, gw
    gb = None
    if bias.requires_grad:
        lead = len(bias.shape) - 1
        if batched and g.shape[:lead] == bias.shape[:-1]:  # g (tasks, rows.., out): the rows summed, one op
            gb = g.sum(tuple(range(lead, len(g.shape) - 1)))
        elif batched:
            gb = sum_to(g, bias.shape[:-1] + (1, bias.shape[-1])).reshape(bias.shape)
        else:
            gb = sum_to(g, bias.shape)
    return gx, gw, gb
