"""NumPy oracles: the published optimizer update rules for ``neurenix.optim``, and max pooling with its
gradient (where NaN and ties send it) for ``max_pool2d``.

SGD with momentum and Nesterov follows Sutskever et al. (2013) in PyTorch's formulation; Adam follows
Kingma & Ba (2015), Algorithm 1, with the bias corrections folded into the step size as PyTorch does;
AdamW follows Loshchilov & Hutter (2019), Algorithm 2 (decoupled weight decay).
"""

from __future__ import annotations

import numpy as np


def sgd(params, grads_per_step, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """Run SGD on ``params`` (list of arrays) for each list of gradients in ``grads_per_step``."""
    params = [p.astype(np.float64) for p in params]
    bufs = [None] * len(params)
    for grads in grads_per_step:
        for i, g in enumerate(grads):
            g = g + weight_decay * params[i]
            if momentum:
                bufs[i] = g.copy() if bufs[i] is None else momentum * bufs[i] + (1 - dampening) * g
                g = g + momentum * bufs[i] if nesterov else bufs[i]
            params[i] = params[i] - lr * g
    return params


def adam(params, grads_per_step, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False):
    """Run Adam (or AdamW with ``decoupled``) on ``params`` for each list of gradients."""
    params = [p.astype(np.float64) for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t, grads in enumerate(grads_per_step, start=1):
        for i, g in enumerate(grads):
            if decoupled:
                params[i] = params[i] * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * params[i]
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            m_hat = m[i] / (1 - beta1 ** t)
            v_hat = v[i] / (1 - beta2 ** t)
            params[i] = params[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return params


def max_pool2d(x, k: int, stride: int, padding: int):
    """Max pooling of (N, C, H, W) over k x k windows (padding counts as -inf), as PyTorch defines it, and
    for each window the input position (h, w) its gradient goes to: the first maximum in row-major window
    order, where NaN counts as the maximum (NumPy's argmax: the first NaN)."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=-np.inf)
    oh, ow = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    out = np.zeros((n, c, oh, ow), x.dtype)
    where = np.zeros((n, c, oh, ow, 2), np.int64)
    for a in range(oh):
        for b in range(ow):
            window = xp[:, :, a * stride:a * stride + k, b * stride:b * stride + k].reshape(n, c, k * k)
            arg = window.argmax(axis=2)
            out[:, :, a, b] = np.take_along_axis(window, arg[..., None], 2)[..., 0]
            where[:, :, a, b] = np.stack([a * stride + arg // k - padding, b * stride + arg % k - padding], -1)
    return out, where


def max_pool2d_grad(x, g, k: int, stride: int, padding: int):
    """The gradient of max_pool2d's output weighted by ``g`` with respect to ``x``: each g where its
    window's maximum is (overlapping windows add up)."""
    _, where = max_pool2d(x, k, stride, padding)
    grad = np.zeros(x.shape, np.float64)
    n, c, oh, ow = g.shape
    for i in range(n):
        for j in range(c):
            for a in range(oh):
                for b in range(ow):
                    grad[i, j, where[i, j, a, b, 0], where[i, j, a, b, 1]] += g[i, j, a, b]
    return grad
