"""Optimizer steps: Adam and SGD over every parameter in one C call, with vectorised loops (C side:
csrc/optim.h). Inputs are never modified: new parameters and moments come back in new arrays."""

from __future__ import annotations

import numpy as np

from .native import NULL, NUMPY, SUFFIX, ffi, fns, ndarray, ptr

_adam, _sgd = fns("adam"), fns("sgd")


def _same_float(*lists):
    """The common float dtype of every buffer in ``lists`` (None entries skipped), or None."""
    dt = lists[0][0].dtype if lists[0] and type(lists[0][0]) is ndarray else None
    if dt not in SUFFIX:
        return None
    for xs in lists:
        for x in xs:
            if x is not None and (type(x) is not ndarray or x.dtype is not dt):
                return None
    return dt


def _pointers(arrays):
    """A C array of pointers to ``arrays`` (made C-contiguous first), and what keeps them alive."""
    arrays = [x if x is None or x.flags.c_contiguous else np.ascontiguousarray(x) for x in arrays]
    keep = [NULL if x is None else ptr(x) for x in arrays]  # inline: a call per array costs ~3% of a step
    return ffi.new("void *[]", keep), (arrays, keep)


def _sizes(params):
    return ffi.new("int64_t[]", [p.size for p in params])


def adam_step(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay, decoupled, maximize):
    dt = _same_float(params, grads, exp_avgs, exp_avg_sqs)
    if dt is None:
        return NUMPY.adam_step(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay,
                               decoupled, maximize)
    outs = [[np.empty(p.shape, dt) for p in params] for _ in range(3)]
    ptrs = [_pointers(xs) for xs in (params, grads, exp_avgs, exp_avg_sqs, *outs)]
    _adam[dt](len(params), *(p for p, _ in ptrs), _sizes(params), lr, beta1, beta2, eps, weight_decay, int(decoupled),
              int(maximize), 1.0 - beta1 ** step, 1.0 - beta2 ** step)
    return outs[0], outs[1], outs[2]


def sgd_step(params, grads, bufs, lr, momentum, dampening, nesterov, weight_decay, maximize):
    dt = _same_float(params, grads, bufs)
    if dt is None:
        return NUMPY.sgd_step(params, grads, bufs, lr, momentum, dampening, nesterov, weight_decay, maximize)
    new_p = [np.empty(p.shape, dt) for p in params]
    new_b = [np.empty(p.shape, dt) if momentum else None for p in params]  # C fills them when momentum is on
    ptrs = [_pointers(xs) for xs in (params, grads, bufs, new_p, new_b)]
    _sgd[dt](len(params), *(p for p, _ in ptrs), _sizes(params), lr, momentum, dampening, int(nesterov), weight_decay,
             int(maximize))
    return new_p, new_b if momentum else list(bufs)  # without momentum the buffers pass through, as in core
