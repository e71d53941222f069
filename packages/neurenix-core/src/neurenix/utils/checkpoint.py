"""Gradient checkpointing: run a function without keeping its graph, recompute it in the backward pass.

``checkpoint(fn, *inputs)`` (PyTorch's ``torch.utils.checkpoint``) trades compute for memory: the forward
pass keeps only ``inputs`` and the outputs' values; the backward pass runs ``fn`` again on the saved
inputs, with the graph, and takes its vector-Jacobian product. Chained over the steps of a loop (MAML's
inner loop), peak memory holds one step's graph instead of every step's. The recomputation is itself
recorded when the backward pass records (``create_graph=True``), so gradients of any order go through a
checkpoint as through any op.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import random
from ..autograd import engine, grad_mode
from ..autograd.graph import record
from ..ops.indexing import getitem_key
from ..ops.joining import cat
from ..tensor import Tensor


def checkpoint(fn: Callable, *inputs):
    """``fn(*inputs)`` (a Tensor or a sequence of Tensors), differentiable but without a stored graph.

    ``fn`` must compute the same values when called again (neurenix's random state is restored for the
    recomputation, so dropout draws the same masks) and should not change outside state, since it runs
    twice. Tensors it closes over are constants: gradients flow only to ``inputs``. The outputs must be
    floating-point tensors of one dtype on one device.
    """
    wrt = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not wrt or not grad_mode.state.enabled:
        return fn(*inputs)
    rng = random.get_rng_state()
    with grad_mode.enable_grad():  # fn may differentiate inside (an inner-loop step does)
        outs = fn(*_detached(inputs, wrt))
    single = isinstance(outs, Tensor)
    outs = (outs,) if single else tuple(outs) if isinstance(outs, (list, tuple)) else (outs,)
    _check_outputs(outs)
    shapes = [o.shape for o in outs]
    bounds, start = [], 0
    for o in outs:
        bounds.append((start, start + o.numel()))
        start += o.numel()
    with grad_mode.no_grad():
        packed = cat([o.detach().reshape(-1) for o in outs])
    del outs  # the forward graph goes here: only the values stay

    def vjp(g, _out):
        create = grad_mode.state.enabled  # the engine records the vjp exactly when create_graph is on
        pieces = [getitem_key(g, (slice(a, b),)).reshape(s) for (a, b), s in zip(bounds, shapes)]
        saved = random.get_rng_state()
        random.set_rng_state(rng)
        try:
            with grad_mode.enable_grad():
                # with create_graph the recomputation hangs off the real inputs, so it is differentiable again
                args = list(inputs) if create else _detached(inputs, wrt)
                again = fn(*args)
                again = (again,) if single else tuple(again)
                used = [(o, p) for o, p in zip(again, pieces) if o.requires_grad]
                if not used:
                    return (None,) * len(wrt)
                return engine.grad([o for o, _ in used], [args[i] for i in wrt], [p for _, p in used],
                                   create_graph=create, allow_unused=True)
        finally:
            random.set_rng_state(saved)

    record(packed, "Checkpoint", tuple(inputs[i] for i in wrt), vjp)
    views = [packed[a:b].reshape(s) for (a, b), s in zip(bounds, shapes)]
    return views[0] if single else views


def _detached(inputs: tuple, wrt: list[int]) -> list:
    out = list(inputs)
    for i in wrt:
        out[i] = inputs[i].detach().requires_grad_()
    return out


def _check_outputs(outs: tuple) -> None:
    if not outs or any(not isinstance(o, Tensor) for o in outs):
        raise TypeError(f"checkpoint: fn must return a Tensor or a sequence of Tensors, got "
                        f"{[type(o).__name__ for o in outs] or 'nothing'}")
    first = outs[0]
    for i, o in enumerate(outs):
        if not o.is_floating_point() or o.dtype != first.dtype or o.device != first.device:
            raise TypeError(f"checkpoint: outputs must be floating-point tensors of one dtype on one device; output "
                            f"{i} is {o.dtype} on {o.device}, output 0 {first.dtype} on {first.device}")
