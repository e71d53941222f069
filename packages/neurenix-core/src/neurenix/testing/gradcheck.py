"""Gradient checks against central finite differences, first and second order (float64)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..autograd import grad as autograd_grad
from ..tensor import Tensor


class GradcheckError(AssertionError):
    """Autograd's Jacobian and the finite-difference one disagree."""


def _outputs(fn, args) -> list[Tensor]:
    out = fn(*args)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [o for o in outs if isinstance(o, Tensor) and o.is_floating_point()]


def _perturbed(args: list, i: int, flat_index: int, delta: float) -> list:
    a = args[i]
    arr = np.array(a.numpy(), dtype=np.float64, copy=True)
    arr.reshape(-1)[flat_index] += delta
    new = list(args)
    new[i] = Tensor(arr, device=a.device, requires_grad=a.requires_grad)  # fn may differentiate itself
    return new


def numerical_jacobian(fn: Callable, args: Sequence, wrt: list[int], eps: float) -> list[np.ndarray]:
    """Per differentiated input, the (outputs, input elements) Jacobian by central differences."""
    cols_per_input = []
    for i in wrt:
        cols = []
        for k in range(args[i].numel()):
            plus = _outputs(fn, _perturbed(list(args), i, k, eps))
            minus = _outputs(fn, _perturbed(list(args), i, k, -eps))
            cols.append(np.concatenate([(p.numpy().astype(np.float64) - m.numpy().astype(np.float64)).ravel()
                                        for p, m in zip(plus, minus)]) / (2 * eps))
        cols_per_input.append(np.stack(cols, axis=1) if cols else np.zeros((0, 0)))
    return cols_per_input


def analytical_jacobian(fn: Callable, args: Sequence, wrt: list[int]) -> list[np.ndarray]:
    """Per differentiated input, the Jacobian built row by row with vector-Jacobian products."""
    outs = _outputs(fn, args)
    sizes = [o.numel() for o in outs]
    rows = [[] for _ in wrt]
    inputs = [args[i] for i in wrt]
    for j in range(len(outs)):
        for k in range(sizes[j]):
            seeds = []
            for jj, oo in enumerate(outs):
                s = np.zeros(oo.shape, dtype=np.float64)
                if jj == j:
                    s.reshape(-1)[k] = 1.0
                seeds.append(Tensor(s, dtype=oo.dtype, device=oo.device))
            live = [(oo, s) for oo, s in zip(outs, seeds) if oo.requires_grad]
            if live:
                grads = autograd_grad([oo for oo, _ in live], inputs, [s for _, s in live], retain_graph=True,
                                      allow_unused=True)
            else:
                grads = [None] * len(inputs)
            for r, (g, x) in enumerate(zip(grads, inputs)):
                rows[r].append(np.zeros(x.numel()) if g is None else g.numpy().astype(np.float64).ravel())
    return [np.stack(r, axis=0) if r else np.zeros((0, 0)) for r in rows]


def gradcheck(fn: Callable, inputs: Sequence, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True) -> bool:
    """Check autograd's gradients of ``fn(*inputs)`` against finite differences.

    Inputs that are float64 tensors with ``requires_grad`` are differentiated; others are passed
    through. Raises ``GradcheckError`` describing the worst mismatch (or returns False).
    """
    args = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    wrt = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    for i in wrt:
        if args[i].dtype.name != "float64":
            raise TypeError(f"gradcheck: input {i} is {args[i].dtype}; finite differences need float64 inputs")
    if not wrt:
        raise ValueError("gradcheck: no input requires grad")
    analytical = analytical_jacobian(fn, args, wrt)
    numerical = numerical_jacobian(fn, args, wrt, eps)
    for i, a, n in zip(wrt, analytical, numerical):
        if a.shape != n.shape or not np.allclose(a, n, rtol=rtol, atol=atol):
            err = np.abs(a - n).max() if a.shape == n.shape else float("nan")
            msg = (f"gradcheck: Jacobian mismatch for input {i} (shape {args[i].shape}), max abs difference {err:.3g}"
                   f"\nanalytical:\n{np.array2string(a, precision=5)}\nnumerical:\n{np.array2string(n, precision=5)}")
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True


def gradgradcheck(fn: Callable, inputs: Sequence, grad_outputs: Sequence | None = None, eps: float = 1e-6,
                  atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0, raise_exception: bool = True) -> bool:
    """Check second-order gradients: the map (inputs, v) -> vjp of ``fn`` along v must pass gradcheck.

    ``grad_outputs`` (v) default to random float64 tensors shaped like the outputs.
    """
    args = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    wrt = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    outs = _outputs(fn, args)
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        grad_outputs = [Tensor(rng.standard_normal(o.shape), device=o.device, requires_grad=True) for o in outs]
    n_args = len(args)

    def first_order(*all_args):
        a, v = list(all_args[:n_args]), all_args[n_args:]
        out = _outputs(fn, a)
        live = [(o, g) for o, g in zip(out, v) if o.requires_grad]
        grads = autograd_grad([o for o, _ in live], [a[i] for i in wrt], [g for _, g in live], create_graph=True,
                              allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(first_order, [*args, *grad_outputs], eps, atol, rtol, raise_exception)
