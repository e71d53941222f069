"""2-D convolution and its two gradients as implicit-GEMM kernels (``conv2d_*``, ``conv2d_dx_*``,
``conv2d_dw_*`` of nx_kernels.cu): the tiled product reads its tiles from the image, the filters and the
output gradient directly, so no im2col matrix is ever allocated.

Core does not ask a backend for these yet: its ``conv2d`` is ``unfold``/``unfold_batch`` + ``matmul``, and its
kernel contract has no convolution-level kernel. They are in the GPU kernel table under the names and
signatures of :data:`SIGNATURES` (core ignores names it does not know), ready for the optional kernels core
would add (docs/cuda-rocm.md, "Convolution without im2col").

All sizes are pairs (as core's ``pair`` gives them); weights are (O, C/groups, kh, kw) (one filter bank: core's
per-task 5-D weights would call these once per task); float32 and float64.
"""

from __future__ import annotations

from neurenix.backend.kernels import out_size

from ..runtime import GpuBuffer
from ..source import TILE, ffi
from .elementwise import SUFFIX

SIGNATURES = {
    "conv2d": "(x, weight, bias, stride, padding, dilation, groups): x (N, C, H, W), weight (O, C/groups, kh, kw), "
              "bias (O,) or None -> (N, O, oh, ow); cross-correlation, zero padding",
    "conv2d_input_grad": "(grad, weight, input_size, stride, padding, dilation, groups): grad (N, O, oh, ow) -> "
                         "(N, C, H, W) with (H, W) = input_size: the gradient of conv2d with respect to x",
    "conv2d_weight_grad": "(x, grad, kernel_size, stride, padding, dilation, groups): x (N, C, H, W), grad "
                          "(N, O, oh, ow) -> (O, C/groups, kh, kw): the gradient of conv2d with respect to weight",
}

def _params(n, c, h, w, o, kernel_size, stride, padding, dilation, groups):
    """The ``nx_conv`` struct, and the output size (oh, ow)."""
    if c % groups or o % groups:
        raise ValueError(f"conv2d: {c} input and {o} output channels do not split into {groups} groups")
    oh, ow = (out_size(size, *a) for size, *a in zip((h, w), kernel_size, stride, padding, dilation))
    p = ffi.new("nx_conv*")
    (p.kh, p.kw), (p.sh, p.sw), (p.ph, p.pw), (p.dh, p.dw) = kernel_size, stride, padding, dilation
    p.n, p.c, p.h, p.w, p.o, p.oh, p.ow, p.groups = n, c, h, w, o, oh, ow, groups
    return p, (oh, ow)


def _launch(kernel: str, out: GpuBuffer, rows: int, cols: int, p, *operands) -> GpuBuffer:
    """One block of TILE x TILE threads per TILE x TILE tile of each group's (rows, cols) product (a sum over
    nothing, as the weight gradient of an empty batch, writes zeros). ``None`` operands are null pointers."""
    if out.size:
        dev = out.device
        grid = (-(-cols // TILE), -(-rows // TILE), min(p.groups, dev.limits.max_grid[2]))
        dev.launch(kernel, grid, (TILE, TILE, 1), p, out, *operands)
    return out


def conv2d(x, weight, bias, stride, padding, dilation, groups):
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    p, (oh, ow) = _params(n, c, h, w, o, (kh, kw), stride, padding, dilation, groups)
    out = GpuBuffer(x.device, (n, o, oh, ow), x.dtype)
    return _launch(f"conv2d_{SUFFIX[x.dtype]}", out, o // groups, n * oh * ow, p, x, weight, bias)


def conv2d_input_grad(grad, weight, input_size, stride, padding, dilation, groups):
    n, o = grad.shape[:2]
    _, cg, kh, kw = weight.shape
    (h, w), c = input_size, cg * groups
    p, (oh, ow) = _params(n, c, h, w, o, (kh, kw), stride, padding, dilation, groups)
    if (oh, ow) != tuple(grad.shape[2:]):
        raise ValueError(f"conv2d_input_grad: grad {grad.shape} is not the output of an input of size {input_size}")
    out = GpuBuffer(grad.device, (n, c, h, w), grad.dtype)
    return _launch(f"conv2d_dx_{SUFFIX[grad.dtype]}", out, cg, n * h * w, p, grad, weight)


def conv2d_weight_grad(x, grad, kernel_size, stride, padding, dilation, groups):
    n, c, h, w = x.shape
    o = grad.shape[1]
    p, (oh, ow) = _params(n, c, h, w, o, kernel_size, stride, padding, dilation, groups)
    if (oh, ow) != tuple(grad.shape[2:]):
        raise ValueError(f"conv2d_weight_grad: grad {grad.shape} is not the output of x {x.shape}")
    cg = c // groups
    out = GpuBuffer(x.device, (o, cg, *kernel_size), x.dtype)
    return _launch(f"conv2d_dw_{SUFFIX[x.dtype]}", out, o // groups, cg * kernel_size[0] * kernel_size[1], p, grad,
                   x)


KERNELS = {"conv2d": conv2d, "conv2d_input_grad": conv2d_input_grad, "conv2d_weight_grad": conv2d_weight_grad}
