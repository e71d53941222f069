"""Gradient clipping, as PyTorch's ``torch.nn.utils.clip_grad_norm_`` and ``clip_grad_value_``."""

from __future__ import annotations

import math

from ...arguments import boolean, number
from ...autograd.grad_mode import no_grad
from ...ops.joining import stack
from ...tensor import Tensor, tensor


def _grads(parameters) -> list[Tensor]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p.grad for p in params if p.grad is not None]


def _vector_norm(x: Tensor, norm_type: float) -> Tensor:
    """The ``norm_type``-norm of all of ``x``'s entries (``inf``: the largest magnitude; 0: the count of
    non-zeros)."""
    if norm_type == math.inf:
        return x.abs().amax()
    if norm_type == -math.inf:
        return x.abs().amin()
    if norm_type == 0:
        return (x != 0).to(x.dtype).sum()
    if norm_type == 1:
        return x.abs().sum()
    if norm_type == 2:
        return (x * x).sum().sqrt()
    return (x.abs() ** norm_type).sum() ** (1.0 / norm_type)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Scale the gradients of ``parameters`` (a Tensor or an iterable of them) in place so that their total
    ``norm_type``-norm (that of the per-gradient norms) is at most ``max_norm``; return the total norm before
    clipping, as a 0-d tensor. With ``error_if_nonfinite``, a nan or infinite total norm is a RuntimeError
    (checking it reads the norm on the host)."""
    max_norm = number(max_norm, "max_norm", "clip_grad_norm_", finite=False)
    norm_type = number(norm_type, "norm_type", "clip_grad_norm_", finite=False)
    error_if_nonfinite = boolean(error_if_nonfinite, "error_if_nonfinite", "clip_grad_norm_")
    grads = _grads(parameters)
    if not grads:
        return tensor(0.0)
    with no_grad():
        first = grads[0]
        norms = stack([_vector_norm(g, norm_type).to(first.device).to(first.dtype) for g in grads])
        total = _vector_norm(norms, norm_type)
        if error_if_nonfinite and not math.isfinite(total.item()):
            raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
                               f"{total.item()}, so they cannot be clipped (error_if_nonfinite=True; pass False to "
                               "scale them anyway)")
        scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.to(g.device).to(g.dtype))
    return total


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamp the gradients of ``parameters`` (a Tensor or an iterable of them) in place to
    ``[-clip_value, clip_value]``."""
    clip_value = number(clip_value, "clip_value", "clip_grad_value_")
    with no_grad():
        for g in _grads(parameters):
            g.clamp_(-clip_value, clip_value)
