"""The primitive kernel set: what a backend implements, versioned.

A *buffer* is a backend's array: any object with ``.shape`` (a tuple of ints) and ``.dtype`` (a
``numpy.dtype``: float32, float64, int64 or bool). Kernels never modify their inputs; they return
new buffers (which may share memory with an input, as NumPy views do). Core has already checked
shapes, devices and dtypes before a kernel is called, so kernels need not check again.

``REQUIRED`` kernels must all be provided by a device type (by one or several backends of that
type). ``OPTIONAL`` kernels are fused or faster paths; where no backend provides one, core builds it
from required kernels (see ``DEFAULTS``), so results never depend on which are present.

Conventions:
  * ``a, b`` of binary kernels are buffers of one dtype, or one buffer and a Python scalar
    (``int``/``float``/``bool``) on either side; they broadcast as in NumPy.
  * ``axes`` is a sorted tuple of non-negative ints; ``shape`` a tuple of ints (no -1).
  * ``key`` of ``getitem``/``index_put`` is a tuple with one entry per indexed axis, each an ``int``
    (already non-negative), a ``slice``, ``None`` (new axis) or an int64 index buffer (NumPy
    advanced indexing: index buffers broadcast together); no Ellipsis, no bool masks.
"""

from __future__ import annotations

import math

KERNEL_API_VERSION = 1

REQUIRED: dict[str, str] = {
    # allocation and transfer
    "from_numpy": "(array, index) -> buf: a C-contiguous ndarray of a supported dtype; the backend may keep it",
    "to_numpy": "(x) -> ndarray: may share memory with x on host backends",
    "full": "(shape, value, dtype, index) -> buf filled with value",
    "copy": "(x) -> buf: a copy that shares no memory with x",
    "cast": "(x, dtype) -> buf of numpy dtype",
    # elementwise unary: same shape and dtype (float-only ones get floats from core)
    "neg": "(x)", "abs": "(x)", "sign": "(x)", "relu": "(x)",
    "exp": "(x)", "log": "(x)", "sqrt": "(x)", "sin": "(x)", "cos": "(x)", "tanh": "(x)", "sigmoid": "(x)",
    # elementwise binary with broadcasting (pow and div get floats from core)
    "add": "(a, b)", "sub": "(a, b)", "mul": "(a, b)", "div": "(a, b)", "pow": "(a, b)",
    "maximum": "(a, b)", "minimum": "(a, b)",
    # comparisons -> bool buffers, and selection
    "eq": "(a, b)", "ne": "(a, b)", "lt": "(a, b)", "le": "(a, b)", "gt": "(a, b)", "ge": "(a, b)",
    "where": "(cond, a, b) -> buf: cond is bool; a, b buffers or scalars; all broadcast",
    # reductions (sum of bool or int64 gives int64)
    "sum": "(x, axes, keepdim)", "max": "(x, axes, keepdim)", "min": "(x, axes, keepdim)",
    "argmax": "(x, axis, keepdim) -> int64 buf (first maximum)", "argmin": "(x, axis, keepdim) -> int64 buf",
    # movement
    "reshape": "(x, shape)", "permute": "(x, axes)", "expand": "(x, shape): broadcast to shape",
    "getitem": "(x, key)",
    "index_put": "(x, key, values, accumulate) -> copy of x with x[key] = values (or += with accumulate, "
                 "repeated indices adding up); values broadcast to x[key]",
    "cat": "(xs, axis)", "pad": "(x, pads, value): pads is ((before, after), ...) per axis",
    # linear algebra and windows
    "matmul": "(a, b): both at least 2-D, batch dimensions broadcast",
    "unfold": "(x, kernel_size, stride, padding, dilation): (N, C, H, W) -> (N, C*kh*kw, L), zero padding",
    "fold": "(cols, output_size, kernel_size, stride, padding, dilation): the adjoint of unfold (overlaps add)",
}

OPTIONAL: dict[str, str] = {
    "mean": "(x, axes, keepdim) on floats",
    "softmax": "(x, axis) on floats",
    "log_softmax": "(x, axis) on floats",
    "softmax_backward": "(g, y, axis) -> y * (g - sum(g * y, axis)): the gradient through y = softmax(x, axis)",
    "log_softmax_backward": "(g, y, axis) -> g - exp(y) * sum(g, axis): the gradient through y = log_softmax(x, axis)",
    "cross_entropy": "(x, probs) -> (loss, softmax): x (N, C) float logits, probs (N, C) target distributions; "
                     "loss (N,) = -sum(probs * log_softmax(x, 1), 1), and softmax(x, 1) for the gradient",
    "cross_entropy_backward": "(g, softmax, probs) -> g[:, None] * (softmax * sum(probs, 1)[:, None] - probs): "
                              "the gradient of cross_entropy's loss with respect to x",
    "batch_norm": "(x, weight, bias, groups, eps) -> (y, mean, var): x (N, C, ...) floats normalised per channel "
                  "over the rows and spatial axes, separately for each of groups consecutive blocks of N/groups "
                  "rows, then y = xhat * weight + bias (each None, (C,) or (groups, C)); mean and biased var "
                  "(groups, C)",
    "batch_norm_backward": "(g, x, mean, var, weight, groups, eps, needs) -> (gx, gweight, gbias): batch_norm's "
                           "gradients for the 3 bools of needs (None where False); gweight, gbias (groups, C)",
    "relu_backward": "(g, x) -> g where x > 0 else 0",
    "sgd_step": "(params, grads, bufs, lr, momentum, dampening, nesterov, weight_decay, maximize) -> "
                "(params, bufs): lists of buffers; a buf is None before the first step",
    "adam_step": "(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay, decoupled, "
                 "maximize) -> (params, exp_avgs, exp_avg_sqs)",
    "linear": "(x, w, b) -> x @ w^T + b: x (..., n, in), w (..., out, in), b (..., out) or None; batch axes "
              "broadcast",
    "linear_backward": "(g, x, w, needs) -> (gx, gw, gb), the gradients of linear for the 3 bools of needs (None "
                       "where False): gx = g @ w, gw = g^T @ x, gb = g summed over its rows (axis -2); with a 2-D "
                       "w, gw and gb are summed over g's leading axes too, else they keep g's batch axes",
    "synchronize": "(index) -> None: wait for queued work (timing); a no-op on synchronous backends",
    "max_pool2d": "(x, kernel_size, stride, padding, dilation) -> (out, indices): x (N, C, H, W) floats, padding "
                  "counts as -inf; indices int64 (N, C, OH, OW): i*kw + j of the first maximum in each window",
    "max_pool2d_backward": "(g, indices, input_size, kernel_size, stride, padding, dilation) -> (N, C, H, W): "
                           "each g goes to the input position its window's index names (overlaps add)",
    "unfold_batch": "(x, kernel_size, stride, padding, dilation) -> (C*kh*kw, N*L): unfold's columns of all images "
                    "side by side, [k, n*L + l] = unfold(x)[n, k, l]",
    "fold_batch": "(cols, output_size, kernel_size, stride, padding, dilation): cols (C*kh*kw, N*L) summed back into "
                  "(N, C, H, W), the adjoint of unfold_batch",
}

KERNELS = (*REQUIRED, *OPTIONAL)


def _prod(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _mean(k):
    def mean(x, axes, keepdim):
        n = _prod(x.shape[a] for a in axes)
        return k.div(k.sum(x, axes, keepdim), float(n))
    return mean


def _softmax(k):
    def softmax(x, axis):
        e = k.exp(k.sub(x, k.max(x, (axis,), True)))
        return k.div(e, k.sum(e, (axis,), True))
    return softmax


def _log_softmax(k):
    def log_softmax(x, axis):
        z = k.sub(x, k.max(x, (axis,), True))
        return k.sub(z, k.log(k.sum(k.exp(z), (axis,), True)))
    return log_softmax


def _softmax_backward(k):
    def softmax_backward(g, y, axis):
        return k.mul(y, k.sub(g, k.sum(k.mul(g, y), (axis,), True)))
    return softmax_backward


def _log_softmax_backward(k):
    def log_softmax_backward(g, y, axis):
        return k.sub(g, k.mul(k.exp(y), k.sum(g, (axis,), True)))
    return log_softmax_backward


def _cross_entropy(k):
    def cross_entropy(x, probs):
        logp = k.log_softmax(x, 1)
        return k.neg(k.sum(k.mul(probs, logp), (1,), False)), k.exp(logp)
    return cross_entropy


def _cross_entropy_backward(k):
    def cross_entropy_backward(g, softmax, probs):
        d = k.sub(k.mul(softmax, k.sum(probs, (1,), True)), probs)
        return k.mul(k.reshape(g, (g.shape[0], 1)), d)
    return cross_entropy_backward


def _bn_view(k, x, groups):
    """x (N, C, ...) as (groups, N / groups, C, rest), and the number of values per statistic."""
    n, c = x.shape[0], x.shape[1]
    rest = _prod(x.shape[2:])
    return k.reshape(x, (groups, n // groups, c, rest)), (n // groups) * rest


def _bn_param(k, p, groups, c):
    return k.reshape(p, ((len(p.shape) == 2 and groups) or 1, 1, c, 1))


def _batch_norm(k):
    def batch_norm(x, weight, bias, groups, eps):
        xr, m = _bn_view(k, x, groups)
        c = x.shape[1]
        mu = k.div(k.sum(xr, (1, 3), True), float(m))
        d = k.sub(xr, mu)
        var = k.div(k.sum(k.mul(d, d), (1, 3), True), float(m))
        scale = k.pow(k.add(var, eps), -0.5)
        if weight is not None:
            scale = k.mul(scale, _bn_param(k, weight, groups, c))
        y = k.mul(d, scale)
        if bias is not None:
            y = k.add(y, _bn_param(k, bias, groups, c))
        return k.reshape(y, x.shape), k.reshape(mu, (groups, c)), k.reshape(var, (groups, c))
    return batch_norm


def _batch_norm_backward(k):
    def batch_norm_backward(g, x, mean, var, weight, groups, eps, needs):
        xr, m = _bn_view(k, x, groups)
        gr, _ = _bn_view(k, g, groups)
        c = x.shape[1]
        inv = k.pow(k.add(k.reshape(var, (groups, 1, c, 1)), eps), -0.5)
        xhat = k.mul(k.sub(xr, k.reshape(mean, (groups, 1, c, 1))), inv)
        gb, gw = k.sum(gr, (1, 3), True), k.sum(k.mul(gr, xhat), (1, 3), True)
        gx = None
        if needs[0]:
            w = inv if weight is None else k.mul(inv, _bn_param(k, weight, groups, c))
            gx = k.mul(k.div(w, float(m)), k.sub(k.sub(k.mul(gr, float(m)), gb), k.mul(xhat, gw)))
            gx = k.reshape(gx, x.shape)
        return gx, k.reshape(gw, (groups, c)) if needs[1] else None, k.reshape(gb, (groups, c)) if needs[2] else None
    return batch_norm_backward


def _relu_backward(k):
    def relu_backward(g, x):
        return k.where(k.gt(x, 0), g, 0)
    return relu_backward


def _sgd_step(k):
    def sgd_step(params, grads, bufs, lr, momentum, dampening, nesterov, weight_decay, maximize):
        new_params, new_bufs = [], []
        for p, g, b in zip(params, grads, bufs):
            if maximize:
                g = k.neg(g)
            if weight_decay:
                g = k.add(g, k.mul(p, weight_decay))
            if momentum:
                b = g if b is None else k.add(k.mul(b, momentum), k.mul(g, 1.0 - dampening))
                g = k.add(g, k.mul(b, momentum)) if nesterov else b
            new_params.append(k.sub(p, k.mul(g, lr)))
            new_bufs.append(b)
        return new_params, new_bufs
    return sgd_step


def _adam_step(k):
    def adam_step(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay, decoupled,
                  maximize):
        bias1 = 1.0 - beta1 ** step
        bias2 = 1.0 - beta2 ** step
        out_p, out_m, out_v = [], [], []
        for p, g, m, v in zip(params, grads, exp_avgs, exp_avg_sqs):
            if maximize:
                g = k.neg(g)
            if weight_decay and decoupled:
                p = k.mul(p, 1.0 - lr * weight_decay)
            elif weight_decay:
                g = k.add(g, k.mul(p, weight_decay))
            m = k.add(k.mul(m, beta1), k.mul(g, 1.0 - beta1))
            v = k.add(k.mul(v, beta2), k.mul(k.mul(g, g), 1.0 - beta2))
            denom = k.add(k.div(k.sqrt(v), bias2 ** 0.5), eps)
            out_p.append(k.sub(p, k.mul(k.div(m, denom), lr / bias1)))
            out_m.append(m)
            out_v.append(v)
        return out_p, out_m, out_v
    return adam_step


def _max_pool2d(k):
    def max_pool2d(x, kernel_size, stride, padding, dilation):
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
        planes = k.reshape(x, (n * c, 1, h, w))
        if ph or pw:
            planes = k.pad(planes, ((0, 0), (0, 0), (ph, ph), (pw, pw)), -math.inf)
        cols = k.unfold(planes, kernel_size, stride, (0, 0), dilation)  # (N*C, kh*kw, OH*OW)
        shape = (n, c, (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1)
        return k.reshape(k.max(cols, (1,), False), shape), k.reshape(k.argmax(cols, 1, False), shape)
    return max_pool2d


def _max_pool2d_backward(k):
    def max_pool2d_backward(g, indices, input_size, kernel_size, stride, padding, dilation):
        n, c, oh, ow = g.shape
        idx, gg = k.reshape(indices, (n * c, 1, oh * ow)), k.reshape(g, (n * c, 1, oh * ow))
        cols = k.cat([k.where(k.eq(idx, j), gg, 0) for j in range(kernel_size[0] * kernel_size[1])], 1)
        out = k.fold(cols, input_size, kernel_size, stride, padding, dilation)
        return k.reshape(out, (n, c, *input_size))
    return max_pool2d_backward


def out_size(size: int, k: int, stride: int, padding: int, dilation: int) -> int:
    """How many windows of ``k`` (dilated) fit along an axis of ``size`` (padded): a convolution's output size."""
    return (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def window_blocks(size, kernel_size, stride, padding, dilation) -> int:
    """The number of windows L that ``unfold`` takes from an image of ``size`` (H, W)."""
    return _prod(out_size(size[i], kernel_size[i], stride[i], padding[i], dilation[i]) for i in (0, 1))


def _unfold_batch(k):
    def unfold_batch(x, kernel_size, stride, padding, dilation):
        cols = k.unfold(x, kernel_size, stride, padding, dilation)  # (N, K, L)
        n, rows, blocks = cols.shape
        return k.reshape(k.permute(cols, (1, 0, 2)), (rows, n * blocks))
    return unfold_batch


def _fold_batch(k):
    def fold_batch(cols, output_size, kernel_size, stride, padding, dilation):
        rows, blocks = cols.shape[0], window_blocks(output_size, kernel_size, stride, padding, dilation)
        per_image = k.permute(k.reshape(cols, (rows, cols.shape[1] // blocks, blocks)), (1, 0, 2))  # (N, K, L)
        return k.fold(per_image, output_size, kernel_size, stride, padding, dilation)
    return fold_batch


def _swap_last(ndim: int) -> tuple:
    return (*range(ndim - 2), ndim - 1, ndim - 2)


def _linear(k):
    def linear(x, w, b):
        y = k.matmul(x, k.permute(w, _swap_last(len(w.shape))))
        if b is None:
            return y
        return k.add(y, k.reshape(b, b.shape[:-1] + (1, b.shape[-1])) if len(w.shape) > 2 else b)
    return linear


def _linear_backward(k):
    def linear_backward(g, x, w, needs):
        gx = k.matmul(g, w) if needs[0] else None
        if len(w.shape) == 2 and len(g.shape) > 2:  # one weight for every row: fold the leading axes into rows
            g = k.reshape(g, (_prod(g.shape[:-1]), g.shape[-1]))
            x = k.reshape(x, (_prod(x.shape[:-1]), x.shape[-1]))
        gw = k.matmul(k.permute(g, _swap_last(len(g.shape))), x) if needs[1] else None
        gb = k.sum(g, (len(g.shape) - 2,), False) if needs[2] else None
        return gx, gw, gb
    return linear_backward


def _synchronize(k):
    def synchronize(index):
        return None
    return synchronize


# optional kernel -> builder of its composition from required kernels (given the resolved table)
DEFAULTS = {
    "mean": _mean, "softmax": _softmax, "log_softmax": _log_softmax, "relu_backward": _relu_backward,
    "sgd_step": _sgd_step, "adam_step": _adam_step, "synchronize": _synchronize,
    "linear": _linear, "linear_backward": _linear_backward,
    "softmax_backward": _softmax_backward, "log_softmax_backward": _log_softmax_backward,
    "cross_entropy": _cross_entropy, "cross_entropy_backward": _cross_entropy_backward,
    "batch_norm": _batch_norm, "batch_norm_backward": _batch_norm_backward,
    "max_pool2d": _max_pool2d, "max_pool2d_backward": _max_pool2d_backward,
    "unfold_batch": _unfold_batch, "fold_batch": _fold_batch,
}
assert set(DEFAULTS) == set(OPTIONAL)
