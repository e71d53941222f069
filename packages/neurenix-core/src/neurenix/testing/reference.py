"""NumPy transcriptions of the published optimizer update rules, the oracle for ``neurenix.optim``.

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
