"""The kernel contract, version 2: what a backend implements, and with which types.

**Buffers.** A buffer is a backend's array: any object with ``.shape`` (a tuple of Python ints) and
``.dtype`` (NumPy's own ``numpy.dtype`` object for float32, float64, int64, bool or int8: ``np.dtype("float32")``,
compared by identity). A backend handles the dtypes it declares (``Backend.dtypes``); core never hands it
others (a tensor of a dtype its device's backend does not declare cannot be made: ``from_numpy``, ``full`` and
``cast`` to it raise first). int8 is optional: a backend that declares it runs every required kernel on it, with
two's-complement wrapping as NumPy's; ``sum`` of int8 is int64. Kernels never modify their inputs; they return
new buffers (which may share memory with an input, as NumPy views do).

**What core guarantees before a kernel runs** (so kernels need not check again): operands are on the
kernel's device; shapes fit (broadcastable, matching inner dimensions, windows inside the padded input);
binary operands have one dtype, or one is a Python ``int``/``float``/``bool`` scalar and the buffer
already has the result's dtype (an int64 buffer meeting a float is cast first); ``div``, ``pow``, the
transcendental functions and the fused kernels get float buffers; indices are in range (int entries of a
``key`` are non-negative; entries of index buffers may be negative, counting from the end as in NumPy).

**Result dtypes.** Elementwise and movement kernels return the dtype of their buffer operand(s);
comparisons (``eq``, ``lt``...) return bool; ``sum`` of bool or int64 returns int64; ``argmax``/``argmin``
return int64; ``cast`` returns the dtype asked for.

**Bool buffers** reach: the movement kernels, ``copy``, ``cast``, ``full``, ``from_numpy``/``to_numpy``,
``eq`` (also with a bool scalar), ``where`` (as ``cond``, and as values), ``mul`` and ``maximum`` (logical
and / or), ``sum`` (giving int64), ``max``/``argmax``.

**Argument types.** ``axes``: a sorted tuple of non-negative ints; ``axis``: an int; ``shape``: a tuple of
ints (no -1); ``dtype``: a ``numpy.dtype``; ``index``: the device index (an int); window arguments
(``kernel_size``, ``stride``, ``padding``, ``dilation``, ``output_size``): 2-tuples of ints for the two
spatial axes; ``xs`` of ``cat``: a list of buffers; ``key`` of ``getitem``/``index_put``: a tuple with one
entry per indexed axis, each an ``int`` (non-negative), a ``slice``, ``None`` (a new axis) or an int64
index buffer (NumPy advanced indexing: index buffers broadcast together); no Ellipsis, no bool masks.

``REQUIRED`` kernels must all be provided by a device type (by one backend or several of that type).
``OPTIONAL`` kernels are exact compositions of required ones (``neurenix.backend.compositions``) or fused,
faster paths: where no backend provides one, core composes it, so results never depend on which are
present. A backend of version 1 (which had 45 required kernels) provides a superset of version 2's and keeps
working unchanged.
"""

from __future__ import annotations

KERNEL_API_VERSION = 2
#: kernel API versions this core accepts from a backend (``Backend.api_version``)
SUPPORTED_API_VERSIONS = (1, 2)

REQUIRED: dict[str, str] = {
    # allocation and transfer
    "from_numpy": "(array, index) -> buf: array is a C-contiguous ndarray of a supported dtype (NumPy's own dtype "
                  "object); the backend may keep it (host backends share its memory)",
    "to_numpy": "(x) -> ndarray of x's shape and dtype: may share memory with x on host backends",
    "full": "(shape, value, dtype, index) -> buf of shape and dtype filled with value (a Python number or bool)",
    "copy": "(x) -> buf: equal to x, sharing no memory with it",
    "cast": "(x, dtype) -> buf of dtype (float -> int truncates toward zero; nonzero -> True)",
    # elementwise unary on floats: same shape and dtype
    "exp": "(x)", "log": "(x)", "sqrt": "(x)", "sin": "(x)", "cos": "(x)", "tanh": "(x)",
    # elementwise binary with NumPy broadcasting: (a, b), buffers of one dtype or a buffer and a scalar
    "add": "(a, b)", "mul": "(a, b): also on bools (logical and)", "div": "(a, b): true division, on floats",
    "pow": "(a, b): on floats", "maximum": "(a, b): NaN wins; also on bools (logical or)",
    # comparisons -> bool buffers (NaN compares false), and selection
    "eq": "(a, b) -> bool buf", "lt": "(a, b) -> bool buf",
    "where": "(cond, a, b) -> buf: cond a bool buffer; a, b buffers or scalars of the result's dtype; all broadcast",
    # reductions over axes
    "sum": "(x, axes, keepdim): bool and int64 sums are int64",
    "max": "(x, axes, keepdim): NaN wins; the reduced axes are not empty",
    "argmax": "(x, axis, keepdim) -> int64 buf: the index of the first maximum (of the first NaN if any)",
    # movement
    "reshape": "(x, shape)", "permute": "(x, axes): output axis i is input axis axes[i]",
    "expand": "(x, shape): broadcast to shape (new axes in front)",
    "getitem": "(x, key) -> x[key] as NumPy indexes",
    "index_put": "(x, key, values, accumulate) -> copy of x with x[key] = values (or += with accumulate, "
                 "repeated indices adding up); values (a buffer) broadcast to x[key]",
    "cat": "(xs, axis): xs a list of buffers of one dtype", "pad": "(x, pads, value): pads is ((before, after), "
                                                                  "...) per axis, non-negative; value a number",
    # linear algebra and windows
    "matmul": "(a, b): both at least 2-D, batch dimensions broadcast; not on bools",
    "unfold": "(x, kernel_size, stride, padding, dilation): (N, C, H, W) -> (N, C*kh*kw, L), zero padding; row "
              "c*kh*kw + i*kw + j of the columns holds kernel position (i, j) of channel c; column l is window l "
              "in row-major order over the (OH, OW) output",
    "fold": "(cols, output_size, kernel_size, stride, padding, dilation): (N, C*kh*kw, L) -> (N, C, H, W), the "
            "adjoint of unfold (overlapping windows add up)",
}

OPTIONAL: dict[str, str] = {
    # exact compositions of required kernels (version 1 required them)
    "neg": "(x)", "abs": "(x): abs(-0.0) = +0.0", "sign": "(x): -1, 0 or 1 in x's dtype; NaN stays NaN",
    "relu": "(x): max(x, 0); NaN stays NaN", "sigmoid": "(x) on floats",
    "sub": "(a, b)", "minimum": "(a, b): NaN wins; on bools logical and",
    "ne": "(a, b) -> bool buf (NaN != NaN)", "le": "(a, b) -> bool buf", "gt": "(a, b) -> bool buf",
    "ge": "(a, b) -> bool buf",
    "min": "(x, axes, keepdim): NaN wins", "argmin": "(x, axis, keepdim) -> int64 buf: the first minimum (or NaN)",
    # fused or faster paths
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
    "relu_backward": "(g, x) -> g where x > 0 else 0 (a NaN g where x <= 0 gives 0)",
    "batch_norm_relu_pool": "(x, weight, bias, groups, eps) -> (y, mean, var): x (N, C, H, W) floats, H and W at "
                            "least 2, through batch_norm, relu and a 2x2 max-pool of stride 2 (an odd last row or "
                            "column in no window): y (N, C, H // 2, W // 2), mean and var as batch_norm's",
    "batch_norm_relu_pool_backward": "(g, x, mean, var, weight, bias, groups, eps, needs) -> (gx, gweight, gbias): "
                                     "batch_norm_relu_pool's gradients for the 3 bools of needs (None where False): "
                                     "each g goes to its window's first maximum of z = batch_norm(x) (NaN winning) "
                                     "where that z is positive, then batch_norm_backward",
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
                  "counts as -inf; indices int64 (N, C, OH, OW): i*kw + j of the first maximum in each window "
                  "(of the first NaN if any)",
    "max_pool2d_backward": "(g, indices, input_size, kernel_size, stride, padding, dilation) -> (N, C, H, W): "
                           "each g goes to the input position its window's index names (overlaps add)",
    "unfold_batch": "(x, kernel_size, stride, padding, dilation) -> (C*kh*kw, N*L): unfold's columns of all images "
                    "side by side, [k, n*L + l] = unfold(x)[n, k, l]",
    "fold_batch": "(cols, output_size, kernel_size, stride, padding, dilation): cols (C*kh*kw, N*L) summed back into "
                  "(N, C, H, W), the adjoint of unfold_batch",
    # convolution: three kernels closed under differentiation (each one's gradients are the other two)
    "conv2d": "(x, weight, bias, stride, padding, dilation, groups) -> (N, O, OH, OW): x (N, C, H, W) floats, zero "
              "padding; weight (O, C/groups, kh, kw), or (T, O, C/groups, kh, kw) for T tasks, the N rows being T "
              "blocks of N/T rows, block t convolved with weight[t]; bias None, (O,) or (T, O); cross-correlation "
              "as torch.nn.functional.conv2d",
    "conv2d_input_grad": "(g, weight, input_shape, stride, padding, dilation, groups) -> (N, C, H, W): the gradient "
                         "of sum(g * conv2d(x, weight)) with respect to x of input_shape; g (N, O, OH, OW)",
    "conv2d_weight_grad": "(x, g, weight_shape, stride, padding, dilation, groups) -> weight_shape: the gradient of "
                          "sum(g * conv2d(x, weight)) with respect to weight (4-D, or 5-D per task)",
    # linear algebra on batches of matrices: a (..., n, n), b (..., n, k) floats of one batch shape, none of n, k and
    # the batch empty (core handles empty operands itself)
    "cholesky": "(a) -> (l, info): l lower-triangular with l @ l^T = a, read from a's lower triangle only (l's strict "
                "upper triangle is 0); info int64 (...): 0, or the order of a's first leading minor that is not "
                "positive-definite (a pivot <= 0 or NaN), where l's values are unspecified",
    "solve_triangular": "(a, b, upper, unitriangular) -> x with t @ x = b, t the upper (else lower) triangle of a, "
                        "its diagonal taken as ones if unitriangular; the other triangle is never read; a zero on the "
                        "diagonal gives infinities or NaN, as division does",
    "solve": "(a, b) -> (x, info): x = a^-1 @ b (LU with partial pivoting); info int64 (...): 0, or nonzero where a is "
             "singular (a zero pivot), where x's values are unspecified",
    # int8 inference, on backends that declare int8: x is float32 without NaN, quantized per tensor as ONNX's
    # QuantizeLinear does, q(x) = clamp(rint(x / x_scale) + x_zero_point, -128, 127) (float32 division, rint half to
    # even, infinities saturating); x_scale a positive Python float, x_zero_point a Python int in [-128, 127]; wq int8
    # weights with one float32 scale per output channel (w_scale), bias float32 or None; the integer sums are exact
    "quantized_linear": "(x, wq, w_scale, bias, x_scale, x_zero_point) -> y float32 (..., out): x (..., in), wq "
                        "(out, in), w_scale and bias (out,); acc = sum_i (q(x)[..., i] - x_zero_point) * wq[o, i], "
                        "y = float32(acc) * (float32(x_scale) * w_scale[o]) + bias[o]",
    "quantized_conv2d": "(x, wq, w_scale, bias, x_scale, x_zero_point, stride, padding, dilation, groups) -> y float32 "
                        "(N, O, OH, OW): x (N, C, H, W), wq (O, C/groups, kh, kw), w_scale and bias (O,); conv2d's "
                        "sums of (q(x) - x_zero_point) * wq, padding adding 0 (a real zero), then dequantized as "
                        "quantized_linear's",
}

KERNELS = (*REQUIRED, *OPTIONAL)


def _prod(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def out_size(size: int, k: int, stride: int, padding: int, dilation: int) -> int:
    """How many windows of ``k`` (dilated) fit along an axis of ``size`` (padded): a convolution's output size.
    The one window formula: every op, composition and backend uses it."""
    return (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def window_blocks(size, kernel_size, stride, padding, dilation) -> int:
    """The number of windows L that ``unfold`` takes from an image of ``size`` (H, W)."""
    return _prod(out_size(size[i], kernel_size[i], stride[i], padding[i], dilation[i]) for i in (0, 1))
