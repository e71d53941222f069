"""2-D convolution and its two gradients as implicit-GEMM kernels (``conv2d_*``, ``conv2d_dx_*``,
``conv2d_dw_*`` of nx_kernels.cu): the tiled product reads its tiles from the image, the filters and the
output gradient directly, so no im2col matrix is ever allocated. They are core's optional kernels ``conv2d``,
``conv2d_input_grad`` and ``conv2d_weight_grad`` (see ``neurenix.backend.kernels``), which core differentiates
through each other to any order.

All sizes are pairs (as core's ``pair`` gives them); float32 and float64. A per-task weight (T, O, C/groups,
kh, kw) runs one launch per task on that task's block of rows.
"""

from __future__ import annotations

from neurenix.backend.kernels import out_size

from ..runtime import GpuBuffer
from ..source import TILE, ffi
from . import movement
from .elementwise import SUFFIX


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


def _tasks(rows, weight_shape) -> list:
    """(block of rows, task index or None) for each task: one block of all rows for a 4-D weight."""
    if len(weight_shape) == 4:
        return [(None, None)]
    t, n = weight_shape[0], rows
    return [((slice(i * (n // t), (i + 1) * (n // t)),), (i,)) for i in range(t)]


def _per_task(fn, rows: int, weight_shape, operands, stacked: bool = False):
    """``fn`` on each task's rows of ``operands`` ((buffer, by rows or by task) pairs), joined: the blocks of
    rows one after another, or (``stacked``) the per-task results along a new first axis."""
    blocks = _tasks(rows, weight_shape)
    if len(blocks) == 1:
        return fn(*(b for b, _ in operands))
    outs = []
    for by_rows, by_task in blocks:
        args = [None if b is None else movement.getitem(b, by_rows if kind == "rows" else by_task)
                for b, kind in operands]
        outs.append(fn(*args))
    if stacked:
        return movement.cat([movement.reshape(o, (1, *o.shape)) for o in outs], 0)
    return movement.cat(outs, 0)


def _conv2d(x, weight, bias, stride, padding, dilation, groups):
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    p, (oh, ow) = _params(n, c, h, w, o, (kh, kw), stride, padding, dilation, groups)
    out = GpuBuffer(x.device, (n, o, oh, ow), x.dtype)
    return _launch(f"conv2d_{SUFFIX[x.dtype]}", out, o // groups, n * oh * ow, p, x, weight, bias)


def _input_grad(grad, weight, input_size, stride, padding, dilation, groups):
    n, o = grad.shape[:2]
    _, cg, kh, kw = weight.shape
    (h, w), c = input_size, cg * groups
    p, (oh, ow) = _params(n, c, h, w, o, (kh, kw), stride, padding, dilation, groups)
    if (oh, ow) != tuple(grad.shape[2:]):
        raise ValueError(f"conv2d_input_grad: grad {grad.shape} is not the output of an input of size {input_size}")
    out = GpuBuffer(grad.device, (n, c, h, w), grad.dtype)
    return _launch(f"conv2d_dx_{SUFFIX[grad.dtype]}", out, cg, n * h * w, p, grad, weight)


def _weight_grad(x, grad, kernel_size, stride, padding, dilation, groups):
    n, c, h, w = x.shape
    o = grad.shape[1]
    p, (oh, ow) = _params(n, c, h, w, o, kernel_size, stride, padding, dilation, groups)
    if (oh, ow) != tuple(grad.shape[2:]):
        raise ValueError(f"conv2d_weight_grad: grad {grad.shape} is not the output of x {x.shape}")
    cg = c // groups
    out = GpuBuffer(x.device, (o, cg, *kernel_size), x.dtype)
    return _launch(f"conv2d_dw_{SUFFIX[x.dtype]}", out, o // groups, cg * kernel_size[0] * kernel_size[1], p, grad,
                   x)


def conv2d(x, weight, bias, stride, padding, dilation, groups):
    return _per_task(lambda xi, wi, bi: _conv2d(xi, wi, bi, stride, padding, dilation, groups), x.shape[0],
                     weight.shape, ((x, "rows"), (weight, "task"), (bias, "task")))


def conv2d_input_grad(grad, weight, input_shape, stride, padding, dilation, groups):
    return _per_task(lambda gi, wi: _input_grad(gi, wi, tuple(input_shape[2:]), stride, padding, dilation, groups),
                     grad.shape[0], weight.shape, ((grad, "rows"), (weight, "task")))


def conv2d_weight_grad(x, grad, weight_shape, stride, padding, dilation, groups):
    kernel_size = tuple(weight_shape[-2:])
    return _per_task(lambda xi, gi: _weight_grad(xi, gi, kernel_size, stride, padding, dilation, groups),
                     x.shape[0], weight_shape, ((x, "rows"), (grad, "rows")), stacked=True)


KERNELS = {"conv2d": conv2d, "conv2d_input_grad": conv2d_input_grad, "conv2d_weight_grad": conv2d_weight_grad}
