"""Convolutions: Winograd F(2x2, 3x3) for 3x3 stride-1 layers with enough channels (C side: csrc/conv.h), core's
composition (unfold and matrix products on this backend's kernels) for every other geometry. The forward is one C
pass over blocks of tiles (transforms and the 16 products over channels in cache); the input's gradient is the
same kernel on the output gradient with the flipped, channel-transposed filters; the weight's gradient takes
Winograd's transforms of the input and of the output gradient, 16 products in NumPy's BLAS, and G^T . G back."""

from __future__ import annotations

import os

import numpy as np

from .linalg import matmul
from .native import SUFFIX, fns, ndarray, optional_ptr, ptr

_input, _conv, _grad = fns("winograd_input"), fns("winograd_conv"), fns("winograd_grad")
_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
#: G w G^T for every 3x3 filter w at once: (filters, 9) @ _KRON = (filters, 16), one matrix product
_KRON = {dt: np.einsum("ai,bj->ijab", _G, _G).reshape(9, 16).astype(dt) for dt in SUFFIX}

#: Winograd from this many input and output channels: below them the 16 products are too thin for BLAS, and
#: the first layer of an image network (1 or 3 channels) runs faster on its columns
MIN_CHANNELS = 16

#: Winograd from this many output pixels (images times pixels) for one weight, and per task for per-task weights:
#: below them the 16 products (per task) are too small to run fast. Measured, 64 channels, fwd + both gradients,
#: against the columns' time: 100 images of 3x3 (900 pixels) 0.74-0.86, of 7x7 0.87-0.91, of 14x14 0.75-0.79;
#: 32 tasks of five 14x14 images (980 pixels each) 1.14-1.27 (one and two threads)
MIN_PIXELS, MIN_TASK_PIXELS = 512, 2048

#: NEURENIX_CPU_WINOGRAD=0 sends every convolution to the columns (core's composition)
ENABLED = os.environ.get("NEURENIX_CPU_WINOGRAD", "1") != "0"

#: core's compositions on this backend's other kernels (set by plugin.py): every geometry Winograd does not take
COMPOSED = None


def fits(a, b, weight_shape, stride, padding, dilation, groups, pixels: int) -> bool:
    """Whether Winograd F(2x2, 3x3) takes a convolution of a weight of ``weight_shape`` with ``pixels`` output
    pixels per image, whose kernel's operands are ``a`` (the images) and ``b`` (NumPy float arrays of one dtype,
    ``a`` not empty)."""
    tasks = weight_shape[0] if len(weight_shape) == 5 else 1
    return (ENABLED and groups == 1 and stride == (1, 1) and dilation == (1, 1) and tuple(weight_shape[-2:]) == (3, 3)
            and padding[0] <= 2 and padding[1] <= 2 and min(weight_shape[-4:-2]) >= MIN_CHANNELS
            and len(a.shape) == 4 and a.shape[0] // tasks * pixels >= (MIN_PIXELS if tasks == 1 else MIN_TASK_PIXELS)
            and type(a) is ndarray and type(b) is ndarray and a.dtype in SUFFIX and a.dtype is b.dtype and a.size > 0)


def _filters(weight) -> np.ndarray:
    """(..., O, C, 3, 3) filters -> (T, 16, O, C): G w G^T for each (o, c)."""
    t, (o, c) = (weight.shape[0] if weight.ndim == 5 else 1), weight.shape[-4:-2]
    u = np.ascontiguousarray(weight).reshape(-1, 9) @ _KRON[weight.dtype]  # (T*O*C, 16)
    return np.ascontiguousarray(u.reshape(t, o, c, 16).transpose(0, 3, 1, 2))


def _tiles(x, padding, out_hw, tasks: int) -> np.ndarray:
    """x (N, C, H, W) -> its transformed input tiles (T, 16, C, P) for an output of ``out_hw``."""
    xc = np.ascontiguousarray(x)
    n, c, h, w = xc.shape
    th, tw = (out_hw[0] + 1) // 2, (out_hw[1] + 1) // 2
    v = np.empty((tasks, 16, c, n // tasks * th * tw), xc.dtype)
    _input[xc.dtype](ptr(xc), ptr(v), n, c, h, w, padding[0], padding[1], th, tw, tasks)
    return v


def _convolve(x, u, bias, padding, out_hw) -> np.ndarray:
    """x (N, C, H, W) convolved with transformed filters u (T, 16, O, C), plus bias: (N, O, *out_hw)."""
    xc, tasks, o = np.ascontiguousarray(x), u.shape[0], u.shape[2]
    n, c, h, w = xc.shape
    y = np.empty((n, o, *out_hw), x.dtype)
    b = None if bias is None else np.ascontiguousarray(bias, x.dtype)
    if _conv[x.dtype](ptr(xc), ptr(u), optional_ptr(b), ptr(y), n, c, h, w, o, padding[0], padding[1], *out_hw, tasks,
                      int(b is not None and b.ndim == 2)):
        raise MemoryError(f"conv2d: no memory for the Winograd buffers of an input of {x.shape}")
    return y


def conv2d(x, weight, bias, stride, padding, dilation, groups):
    out_hw = (x.shape[2] + 2 * padding[0] - 2, x.shape[3] + 2 * padding[1] - 2)
    if not fits(x, weight, weight.shape, stride, padding, dilation, groups, out_hw[0] * out_hw[1]):
        return COMPOSED.conv2d(x, weight, bias, stride, padding, dilation, groups)
    return _convolve(x, _filters(weight), bias, padding, out_hw)


def conv2d_input_grad(g, weight, input_shape, stride, padding, dilation, groups):
    if not fits(g, weight, weight.shape, stride, padding, dilation, groups, g.shape[2] * g.shape[3]):
        return COMPOSED.conv2d_input_grad(g, weight, input_shape, stride, padding, dilation, groups)
    # the transposed convolution: g convolved with the filters flipped and their channel axes swapped, the
    # padding 2 - p giving back the input's size
    flipped = np.swapaxes(weight[..., ::-1, ::-1], -4, -3)
    return _convolve(g, _filters(flipped), None, (2 - padding[0], 2 - padding[1]), tuple(input_shape[2:]))


def conv2d_weight_grad(x, g, weight_shape, stride, padding, dilation, groups):
    if not fits(x, g, weight_shape, stride, padding, dilation, groups, g.shape[2] * g.shape[3]):
        return COMPOSED.conv2d_weight_grad(x, g, weight_shape, stride, padding, dilation, groups)
    tasks = weight_shape[0] if len(weight_shape) == 5 else 1
    gc = np.ascontiguousarray(g)
    n, o, oh, ow = gc.shape
    th, tw = (oh + 1) // 2, (ow + 1) // 2
    gm = np.empty((tasks, 16, o, n // tasks * th * tw), gc.dtype)
    _grad[gc.dtype](ptr(gc), ptr(gm), n, o, oh, ow, th, tw, tasks)
    du = matmul(gm, _tiles(x, padding, (oh, ow), tasks).swapaxes(-1, -2))  # (T, 16, O, C)
    dw = np.ascontiguousarray(du.transpose(0, 2, 3, 1)).reshape(-1, 16) @ _KRON[x.dtype].T  # G^T du G: (T*O*C, 9)
    return dw.reshape(weight_shape)
