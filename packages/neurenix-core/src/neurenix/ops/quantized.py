"""int8 quantization: per-tensor and per-channel quantize / dequantize, and the int8 linear and conv2d ops of
quantized models (inference only).

Activations are quantized per tensor, affine: q = clamp(rint(x / scale) + zero_point, -128, 127), ONNX's
QuantizeLinear (float32 division, round half to even). Weights are int8 with one float32 scale per output
channel, symmetric (zero point 0). Unlike PyTorch's quantized tensors (``torch.qint8``), a quantized tensor here
is a plain int8 tensor beside its scale and zero point.
"""

from __future__ import annotations

import numpy as np

from .. import creation
from .. import dtypes as _dt
from ..arguments import integer
from ..autograd.grad_mode import no_grad
from ..autograd.grad_mode import state as grad_state
from ..autograd.graph import record
from ..capture import recording
from ..errors import DTypeError, ShapeError
from ._operands import Tensor, _wrap, device_mismatch, expect_tensor
from .window import check_output, pair

_F32 = np.float32


def affine_qparams(lo: float, hi: float) -> tuple[float, int]:
    """``(scale, zero_point)`` mapping ``[min(lo, 0), max(hi, 0)]`` onto int8's 256 steps, zero exactly
    representable: ONNX DynamicQuantizeLinear's rule (there on uint8; here its zero point minus 128). A range of
    zero width (all zeros) gets scale 1."""
    lo, hi = _F32(min(lo, 0.0)), _F32(max(hi, 0.0))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"cannot quantize the range [{lo}, {hi}]: it is not finite")
    scale = (hi - lo) / _F32(255)
    if scale == 0:
        return 1.0, 0
    zero_point = int(np.rint(np.clip(-lo / scale, 0, 255))) - 128
    return float(scale), zero_point


def symmetric_scales(w: Tensor, axis: int = 0) -> Tensor:
    """One float32 scale per channel of ``w`` along ``axis``: its largest magnitude over 127 (1 for a channel of
    zeros), with which :func:`quantize_per_channel` maps the channel onto [-127, 127]."""
    w = _float32(w, "w", "symmetric_scales")
    axis = integer(axis, "axis", "symmetric_scales") % max(w.ndim, 1)
    others = tuple(i for i in range(w.ndim) if i != axis)
    if w.numel() == 0:  # channels of nothing (a Linear of in_features 0): zeros, scale 1
        return creation.ones(w.shape[axis] if w.ndim else 1, device=w.device)
    with no_grad():
        amax = w.abs().amax(others) if others else w.abs()
        return (amax / 127.0).masked_fill(amax == 0, 1.0)


def quantize_per_tensor(x: Tensor, scale: float, zero_point: int) -> Tensor:
    """``x`` (float32) as int8: ``clamp(rint(x / scale) + zero_point, -128, 127)``. NaN raises (it has no int8)."""
    scale, zero_point = _checked_qparams(scale, zero_point, "quantize_per_tensor")
    x = _float32(x, "x", "quantize_per_tensor")
    _check_no_nan(x, "quantize_per_tensor")
    k = x._device.kernels
    q = k.add(_rounded(k, k.div(x._data, scale)), float(zero_point))
    return _wrap(k.cast(k.maximum(k.minimum(q, 127.0), -128.0), _dt._I8), x._device)


def quantize_per_channel(x: Tensor, scales: Tensor, axis: int = 0) -> Tensor:
    """``x`` (float32) as int8, symmetric per channel along ``axis``: ``clamp(rint(x / scale_c), -127, 127)``, the
    weights' quantization (zero point 0, and -128 unused so that negation stays in range)."""
    x = _float32(x, "x", "quantize_per_channel")
    scales = _float32(scales, "scales", "quantize_per_channel")
    axis = integer(axis, "axis", "quantize_per_channel")
    axis = axis + x.ndim if axis < 0 else axis
    if not 0 <= axis < x.ndim:
        raise ValueError(f"quantize_per_channel: axis {axis} is out of range for x of shape {tuple(x.shape)}")
    if scales.shape != (x.shape[axis],):
        raise ShapeError(f"quantize_per_channel: scales must have shape ({x.shape[axis]},), one per channel along "
                         f"axis {axis} of x {tuple(x.shape)}, got {tuple(scales.shape)}")
    _check_no_nan(x, "quantize_per_channel")
    k = x._device.kernels
    view = tuple(-1 if i == axis else 1 for i in range(x.ndim))
    q = _rounded(k, k.div(x._data, k.reshape(scales._data, tuple(x.shape[axis] if v == -1 else 1 for v in view))))
    return _wrap(k.cast(k.maximum(k.minimum(q, 127.0), -127.0), _dt._I8), x._device)


def dequantize(q: Tensor, scale, zero_point: int = 0, axis: int | None = None) -> Tensor:
    """float32 ``(q - zero_point) * scale``: ``scale`` a float (per tensor), or a tensor of one scale per channel
    along ``axis`` (zero point 0)."""
    q = expect_tensor(q, "q", "dequantize")
    if q._data.dtype is not _dt._I8:
        raise DTypeError(f"dequantize: q must be an int8 tensor, got {q.dtype}")
    k = q._device.kernels
    v = k.cast(q._data, np.dtype(_F32))
    if isinstance(scale, Tensor):
        if axis is None or scale.ndim != 1 or scale.shape[0] != q.shape[axis]:
            raise ShapeError(f"dequantize: a tensor of scales needs axis= and one scale per channel along it, got "
                             f"scales {tuple(scale.shape)} for q {tuple(q.shape)} and axis={axis}")
        shape = tuple(scale.shape[0] if i == axis % q.ndim else 1 for i in range(q.ndim))
        return _wrap(k.mul(v, k.reshape(_float32(scale, "scale", "dequantize")._data, shape)), q._device)
    scale, zero_point = _checked_qparams(scale, zero_point, "dequantize")
    return _wrap(k.mul(k.sub(v, float(zero_point)), scale), q._device)


def quantized_linear(x: Tensor, weight: Tensor, weight_scale: Tensor, bias: Tensor | None,
                     input_scale: float | None = None, input_zero_point: int | None = None) -> Tensor:
    """``x @ dequantize(weight).T + bias`` computed in int8 with exact int32 sums: ``x`` float32 (..., in) is
    quantized per tensor, with ``input_scale``/``input_zero_point`` (static) or, when they are None, from its own
    range at every call (dynamic); ``weight`` int8 (out, in) with ``weight_scale`` float32 (out,)."""
    op = "quantized_linear"
    x = _float32(x, "input", op)
    _int8_weight(weight, weight_scale, bias, 2, op)
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"{op}: input {tuple(x.shape)} does not match weight {tuple(weight.shape)} (its last axis "
                         f"must be in_features = {weight.shape[1]})")
    return _run(op, x, (weight, weight_scale, bias), input_scale, input_zero_point, ())


def quantized_conv2d(x: Tensor, weight: Tensor, weight_scale: Tensor, bias: Tensor | None, input_scale: float | None,
                     input_zero_point: int | None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """``conv2d(x, dequantize(weight), bias, ...)`` computed in int8 with exact int32 sums; ``x`` float32
    (N, C, H, W) quantized as :func:`quantized_linear`'s, ``weight`` int8 (O, C/groups, kh, kw)."""
    op = "quantized_conv2d"
    x = _float32(x, "input", op)
    _int8_weight(weight, weight_scale, bias, 4, op)
    groups = integer(groups, "groups", op, minimum=1)
    window = tuple(pair(v, name, op) for v, name in ((stride, "stride"), (padding, "padding"), (dilation, "dilation")))
    if x.ndim != 4 or x.shape[1] != weight.shape[1] * groups or weight.shape[0] % groups:
        raise ShapeError(f"{op}: input {tuple(x.shape)} does not match weight {tuple(weight.shape)} with groups="
                         f"{groups} (input (N, C, H, W) with C = {weight.shape[1] * groups})")
    check_output(tuple(x.shape[2:]), tuple(weight.shape[2:]), *window, op)  # windows fit, as conv2d's
    return _run(op, x, (weight, weight_scale, bias), input_scale, input_zero_point, (*window, groups))


# -- checks and the one kernel call ------------------------------------------------------------------------------


def _run(op: str, x: Tensor, weights: tuple, scale, zero_point, extra: tuple) -> Tensor:
    for t in weights:
        if t is not None and t._device is not x._device:
            raise device_mismatch(op, x, t)
    static = scale is not None
    if static:
        scale, zero_point = _checked_qparams(scale, zero_point, op)
    bufs = tuple(None if t is None else t._data for t in weights)
    # one host step: a compiled function computes the range (dynamic) and checks for NaN again at every replay
    out = _wrap(recording.host(_kernel_call, op, x._device, x._data, bufs, scale, zero_point, static, extra),
                x._device)
    if x.requires_grad and grad_state.enabled:  # inference runs with gradients on too; a backward pass may not
        record(out, op, (x,), lambda g, o: _no_gradient(op), saved=())
    return out


def _no_gradient(op: str):
    raise RuntimeError(f"{op}: int8 layers have no gradient (quantized models are for inference): train the float "
                       "model, then quantize it")


def _kernel_call(op, device, x, bufs, scale, zero_point, static: bool, extra: tuple):
    k = device.kernels
    if 0 not in x.shape:  # the range (NaN wins it): a dynamic layer's quantization, and the NaN check of both
        axes = tuple(range(len(x.shape)))
        hi = float(k.to_numpy(k.max(x, axes, False)))
        lo = hi if static else float(k.to_numpy(k.min(x, axes, False)))
        if np.isnan(lo) or np.isnan(hi):
            raise ValueError(f"{op}: the input holds NaN, which has no int8 value")
        if not static:
            scale, zero_point = affine_qparams(lo, hi)
    elif not static:
        scale, zero_point = 1.0, 0
    return getattr(k, op)(x, *bufs, scale, zero_point, *extra)


def _rounded(k, v):
    """rint(v) half to even for float32 ``v``, as the quantized kernels round (magnitudes beyond 2**22 saturate
    afterwards anyway)."""
    v = k.maximum(k.minimum(v, 4194304.0), -4194304.0)
    return k.sub(k.add(v, 12582912.0), 12582912.0)


def _float32(t, name: str, op: str) -> Tensor:
    t = expect_tensor(t, name, op)
    if t._data.dtype is not _dt._F32:
        raise DTypeError(f"{op}: {name} must be float32 (quantized models take float32), got {t.dtype}")
    return t


def _check_no_nan(x: Tensor, op: str) -> None:
    if x.numel() and bool(x.isnan().any()):
        raise ValueError(f"{op}: x holds NaN, which has no int8 value")


def _checked_qparams(scale, zero_point, op: str) -> tuple[float, int]:
    scale = float(scale)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"{op}: scale must be a positive finite number, got {scale}")
    zero_point = integer(zero_point, "zero_point", op)
    if not -128 <= zero_point <= 127:
        raise ValueError(f"{op}: zero_point must be in [-128, 127] (int8), got {zero_point}")
    return float(_F32(scale)), zero_point


def _int8_weight(weight, weight_scale, bias, ndim: int, op: str) -> None:
    weight = expect_tensor(weight, "weight", op)
    if weight._data.dtype is not _dt._I8 or weight.ndim != ndim:
        raise DTypeError(f"{op}: weight must be an int8 tensor of {ndim} dimensions, got {weight.dtype} "
                         f"{tuple(weight.shape)}")
    for t, name in ((weight_scale, "weight_scale"), (bias, "bias")):
        if t is None and name == "bias":
            continue
        if _float32(t, name, op).shape != (weight.shape[0],):
            raise ShapeError(f"{op}: {name} must have shape ({weight.shape[0]},), one per output channel, got "
                             f"{tuple(t.shape)}")
