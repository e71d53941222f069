"""PyTorch's ``torch.autograd.functional``: Jacobians, Hessians and their products with vectors, of a function
of tensors, all built on ``grad``.

``func`` is called as ``func(*inputs)`` with a tuple of inputs and as ``func(inputs)`` with one tensor; it
returns a tensor or a tuple of tensors. Results follow that structure as in PyTorch: a tuple where the
inputs (or outputs) were a tuple, a tensor where they were one; a Jacobian block has shape
``output.shape + input.shape``. Without ``create_graph`` the results (the function's value too) are detached;
with it they are differentiable, with respect to the inputs that require grad. An input that an output does
not depend on gets zeros, or, with ``strict=True``, a RuntimeError that says which.

Forward-mode products (``jvp``, ``hvp``, ``strategy="forward-mode"``) use the double-vjp trick: ``J^T u`` is
linear in ``u``, so differentiating it with respect to ``u`` along ``v`` gives ``J v``.

Like the rest of this package it knows nothing of Tensor: it works with the tensors' own methods.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from ..arguments import boolean
from .engine import _is_tensor, grad
from .grad_mode import enable_grad

__all__ = ["hessian", "hvp", "jacobian", "jvp", "vhp", "vjp"]

_STRATEGIES = ("reverse-mode", "forward-mode")

# what strict mode reports, by stage: where a gradient was missing (None), or did not require grad although
# create_graph asked for a differentiable result; {i} is an input's index, {n} an output's
_BACK = "the output of the user-provided function is independent of input {i}"
_BACK_JAC = "output {n} of the user-provided function is independent of input {i}"
_CONSTANT = "output {i} of the user-provided function does not require grad (it was not computed from the inputs)"
_BACK_CG = "the Jacobian of the user-provided function is independent of input {i} (create_graph=True)"
_TRICK = ("the gradient with respect to the inputs is independent of output {i} in the double-vjp trick (the output "
          "does not depend on any input)")
_DOUBLE = ("while computing the Hessian, found that the gradient of the user-provided function with respect to input "
           "{i} is independent of the inputs (the function is not twice differentiable there, or is linear in it)")
_DOUBLE_JAC = ("while computing the Hessian, found that the gradient of the user-provided function with respect to "
               "input {n} is independent of input {i} (the function is linear in it, or not twice differentiable)")


class _StrictError(RuntimeError):
    """What strict mode refuses; the public function that raises it puts its name in front."""


def _named(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _StrictError as e:  # (re-raised as a plain RuntimeError: a call nested in func is named once)
            raise RuntimeError(f"{fn.__name__}: {e}, which strict mode does not allow") from None
    return wrapper


@_named
def vjp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False) -> tuple:
    """``(func(inputs), v^T J)``: the vector-Jacobian product, shaped as ``inputs``. ``v`` is shaped as the
    outputs; it may be None only for an output with a single element (then it is 1)."""
    with enable_grad():
        single_in, inputs = _inputs(inputs, "vjp", create_graph, strict)
        single_out, outputs = _outputs(func, inputs, "vjp", strict)
        v = _vector(v, outputs, single_out, "vjp", "output", create_graph)
        got = _grad(outputs, inputs, v, create_graph)
        result = _filled(got, inputs, strict, create_graph, _BACK, _BACK_CG)
    return _post(outputs, create_graph, single_out), _post(result, create_graph, single_in)


@_named
def jvp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False) -> tuple:
    """``(func(inputs), J v)``: the Jacobian-vector product, shaped as the outputs. ``v`` is shaped as
    ``inputs``; it may be None only for a single input with a single element (then it is 1)."""
    with enable_grad():
        single_in, inputs = _inputs(inputs, "jvp", create_graph, strict)
        v = _vector(v, inputs, single_in, "jvp", "input", create_graph)
        single_out, outputs = _outputs(func, inputs, "jvp", strict)
        result = _forward(outputs, inputs, v, create_graph, strict, _BACK)
        result = _filled(result, outputs, strict, create_graph, _TRICK, _BACK_CG)
    return _post(outputs, create_graph, single_out), _post(result, create_graph, single_out)


@_named
def jacobian(func: Callable, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
             strategy: str = "reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``: for output ``i`` and input ``j`` a tensor of shape
    ``outputs[i].shape + inputs[j].shape``, nested as ``result[i][j]`` where both are tuples (one level for one
    tuple, the tensor itself for neither).

    ``strategy="reverse-mode"`` takes one vjp per output element; ``"forward-mode"`` (faster where the outputs
    have more elements than the inputs) one double-vjp per input element, and, as in PyTorch, needs
    ``vectorize=True``. ``vectorize`` gives the same values; here it batches nothing (one product per row or
    column either way), and cannot be combined with ``strict``, as in PyTorch.
    """
    _check_strategy(strategy, vectorize, strict, create_graph, "jacobian", "strategy")
    with enable_grad():
        single_in, inputs = _inputs(inputs, "jacobian", create_graph, strict)
        single_out, outputs = _outputs(func, inputs, "jacobian", strict)
        blocks = _blocks(outputs, inputs, create_graph, strict, strategy, _BACK_JAC)  # (_outputs checked strict)
    return _nest(blocks, create_graph, single_out, single_in)


@_named
def hessian(func: Callable, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
            outer_jacobian_strategy: str = "reverse-mode"):
    """The Hessian of ``func`` (which returns a single-element tensor) at ``inputs``: a tensor of shape
    ``inputs.shape * 2`` for one input; for a tuple, ``result[i][j]`` of shape
    ``inputs[i].shape + inputs[j].shape``. The Jacobian of the gradient, taken with
    ``outer_jacobian_strategy`` (see ``jacobian``)."""
    _check_strategy(outer_jacobian_strategy, vectorize, strict, create_graph, "hessian", "outer_jacobian_strategy")
    with enable_grad():
        single_in, inputs = _inputs(inputs, "hessian", create_graph, strict)
        _, outputs = _outputs(func, inputs, "hessian", strict, scalar=True)
        grads = _filled(_grad(outputs, inputs, None, True), inputs, strict, False, _BACK, _BACK_CG)
        _require(grads, strict, _DOUBLE)
        blocks = _blocks(grads, inputs, create_graph, strict, outer_jacobian_strategy, _DOUBLE_JAC)
    return _nest(blocks, create_graph, single_in, single_in)


@_named
def vhp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False) -> tuple:
    """``(func(inputs), v^T H)`` for ``func`` returning a single-element tensor; shaped as ``inputs``."""
    with enable_grad():
        single_in, single_out, inputs, outputs, grads, v = _gradient(func, inputs, v, create_graph, strict, "vhp")
        result = _filled(_grad(grads, inputs, v, create_graph), inputs, strict, create_graph, _DOUBLE, _DOUBLE)
    return _post(outputs, create_graph, single_out), _post(result, create_graph, single_in)


@_named
def hvp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False) -> tuple:
    """``(func(inputs), H v)`` for ``func`` returning a single-element tensor; shaped as ``inputs``. Equal to
    ``vhp`` where the Hessian is symmetric; computed by the double-vjp trick on the gradient."""
    with enable_grad():
        single_in, single_out, inputs, outputs, grads, v = _gradient(func, inputs, v, create_graph, strict, "hvp")
        result = _forward(grads, inputs, v, create_graph, strict, _DOUBLE)
        result = _filled(result, inputs, strict, create_graph, _DOUBLE, _DOUBLE)
    return _post(outputs, create_graph, single_out), _post(result, create_graph, single_in)


def _gradient(func: Callable, inputs, v, create_graph: bool, strict: bool, fn: str) -> tuple:
    """What vhp and hvp start from: the checked inputs and ``v``, ``func``'s scalar output, and its gradient,
    recorded (to be differentiated again)."""
    single_in, inputs = _inputs(inputs, fn, create_graph, strict)
    v = _vector(v, inputs, single_in, fn, "input", create_graph)
    single_out, outputs = _outputs(func, inputs, fn, strict, scalar=True)
    grads = _filled(_grad(outputs, inputs, None, True), inputs, strict, False, _BACK, _BACK_CG)
    _require(grads, strict, _DOUBLE)
    return single_in, single_out, inputs, outputs, grads, v


# -- arguments ------------------------------------------------------------------------------------------------
def _as_tuple(value, what: str, fn: str) -> tuple[bool, tuple]:
    """(whether ``value`` is a tuple, its tensors as a tuple); a TypeError unless a tensor or a tuple of them
    (a list too is refused, as in PyTorch, so that a result's structure is never a guess)."""
    is_tuple = isinstance(value, tuple)
    items = value if is_tuple else (value,)
    for i, t in enumerate(items):
        if not _is_tensor(t):
            where = f"{what}[{i}]" if is_tuple else what
            raise TypeError(f"{fn}: {what} must be a Tensor or a tuple of Tensors, but {where} is a "
                            f"{type(t).__name__}")
    return is_tuple, items


def _inputs(inputs, fn: str, create_graph, strict) -> tuple[bool, tuple]:
    """The inputs as fresh tensors that require grad: detached ones, or, with create_graph, copies still
    connected to inputs that require grad (copies, so that an input passed twice has two gradients)."""
    boolean(create_graph, "create_graph", fn)
    boolean(strict, "strict", fn)
    is_tuple, items = _as_tuple(inputs, "inputs", fn)
    if not items:
        raise ValueError(f"{fn}: inputs is an empty tuple; pass the tensors to differentiate with respect to")
    prepared = []
    for i, t in enumerate(items):
        if not t.is_floating_point():
            raise RuntimeError(f"{fn}: inputs[{i}] is {t.dtype}; only floating-point tensors can be differentiated")
        prepared.append(t.clone() if create_graph and t.requires_grad else t.detach().requires_grad_())
    return not is_tuple, tuple(prepared)


def _outputs(func, inputs: tuple, fn: str, strict: bool, scalar: bool = False) -> tuple[bool, tuple]:
    """Call ``func`` on the prepared inputs; its outputs, checked (a single element each if ``scalar``)."""
    if not callable(func):
        raise TypeError(f"{fn}: func must be callable, got {type(func).__name__}")
    is_tuple, outputs = _as_tuple(func(*inputs), "the outputs of the user-provided function", fn)
    if scalar and (len(outputs) != 1 or outputs[0].numel() != 1):
        got = [tuple(o.shape) for o in outputs]
        raise RuntimeError(f"{fn}: the function must return a single tensor with a single element, got shapes {got}")
    _require(outputs, strict, _CONSTANT)
    return not is_tuple, outputs


def _vector(v, refs: tuple, single: bool, fn: str, what: str, create_graph: bool) -> tuple:
    """``v`` checked against ``refs`` (one tensor each, of its shape), cast to their dtypes, detached unless
    create_graph keeps it differentiable; None stands for 1 where ``refs`` is one single-element tensor."""
    if v is None:
        if len(refs) != 1 or refs[0].numel() != 1:
            raise RuntimeError(f"{fn}: v can be None only where the {what} is a single tensor with a single element; "
                               f"pass v shaped as the {what}s {[tuple(r.shape) for r in refs]}")
        return (refs[0].new_ones(refs[0].shape),)
    _, vs = _as_tuple(v, "v", fn)
    if len(vs) != len(refs):
        raise RuntimeError(f"{fn}: v has {len(vs)} tensors but there {'is' if single else 'are'} {len(refs)} "
                           f"{what}{'' if single else 's'}")
    out = []
    for i, (t, r) in enumerate(zip(vs, refs)):
        if t.shape != r.shape:
            raise RuntimeError(f"{fn}: v[{i}] has shape {tuple(t.shape)} but {what} {i} has shape {tuple(r.shape)}")
        t = t if create_graph and t.requires_grad else t.detach()
        out.append(t if t.dtype == r.dtype else t.to(r.dtype))
    return tuple(out)


def _check_strategy(strategy, vectorize, strict, create_graph, fn: str, name: str) -> None:
    for flag, value in (("vectorize", vectorize), ("strict", strict), ("create_graph", create_graph)):
        boolean(value, flag, fn)
    if strategy not in _STRATEGIES:
        raise ValueError(f"{fn}: {name} must be 'reverse-mode' or 'forward-mode', got {strategy!r} ('forward-mode' "
                         "is faster where the outputs have more elements than the inputs)")
    if strategy == "forward-mode" and not vectorize:
        raise ValueError(f"{fn}: {name}='forward-mode' needs vectorize=True, as in PyTorch; pass vectorize=True, or "
                         f"use {name}='reverse-mode'")
    if strict and vectorize:
        raise RuntimeError(f"{fn}: strict=True and vectorize=True cannot be combined, as in PyTorch; set one of them "
                           "to False")


# -- products -------------------------------------------------------------------------------------------------
def _grad(outputs: tuple, inputs: tuple, weights: tuple | None, create_graph: bool) -> tuple:
    """``sum_i weights[i]^T d outputs[i] / d inputs`` (None for an input none of them depends on); outputs that
    do not require grad contribute nothing. ``weights`` None: the outputs are single-element (weight 1)."""
    pairs = [(o, None if weights is None else w) for o, w in zip(outputs, weights or outputs)
             if o is not None and o.requires_grad]
    if not pairs:
        return (None,) * len(inputs)
    outs = [o for o, _ in pairs]
    ws = None if weights is None else [w for _, w in pairs]
    return grad(outs, inputs, ws, create_graph=create_graph, retain_graph=True, allow_unused=True)


def _forward(outputs: tuple, inputs: tuple, v: tuple, create_graph: bool, strict: bool, stage: str) -> tuple:
    """``J v`` for each output (None where it depends on no input), by the double-vjp trick: ``g(u) = J^T u``
    with ``u`` a dummy cotangent, then the gradient of ``g`` with respect to ``u`` along ``v``."""
    dummies, transposed, live = _transposed(outputs, inputs, strict, stage)
    if not live:
        return (None,) * len(outputs)
    got = _grad(transposed, tuple(dummies[i] for i in live), v, create_graph)
    result = [None] * len(outputs)
    for i, g in zip(live, got):
        result[i] = g
    return tuple(result)


def _transposed(outputs: tuple, inputs: tuple, strict: bool, stage: str) -> tuple:
    """The double-vjp trick's first half: dummy cotangents ``u`` (None for outputs that do not require grad),
    ``J^T u`` for each input (differentiable in ``u``), and the indices of the outputs that have a ``u``."""
    dummies = tuple(o.new_zeros(o.shape, requires_grad=True) if o.requires_grad else None for o in outputs)
    transposed = _filled(_grad(outputs, inputs, dummies, True), inputs, strict, False, stage, stage)
    return dummies, transposed, [n for n, u in enumerate(dummies) if u is not None]


def _blocks(outputs: tuple, inputs: tuple, create_graph: bool, strict: bool, strategy: str, stage: str) -> list:
    """The Jacobian blocks ``[n][j]`` (output n, input j), each of shape ``outputs[n].shape + inputs[j].shape``;
    ``stage``: what strict mode says of a missing block."""
    if strategy == "forward-mode":
        return _by_columns(outputs, inputs, create_graph)
    return [_by_rows(n, o, inputs, create_graph, strict, stage) for n, o in enumerate(outputs)]


def _by_rows(n: int, out, inputs: tuple, create_graph: bool, strict: bool, stage: str) -> list:
    """The blocks of output ``n``, one vjp per element of it."""
    rows = [[] for _ in inputs]
    for k in range(out.numel() if out.requires_grad else 0):
        got = _grad((out,), inputs, (_one_hot(out, k),), create_graph)
        for j, g in enumerate(_filled(got, inputs, strict, create_graph, stage, _BACK_CG, n)):
            rows[j].append(g)
    if not out.requires_grad:  # (a constant: zeros, strict mode having refused it)
        rows = [[x.new_zeros(x.numel())] * out.numel() for x in inputs]
    return [_stacked(rs, x, x.numel(), tuple(out.shape) + tuple(x.shape)) for rs, x in zip(rows, inputs)]


def _by_columns(outputs: tuple, inputs: tuple, create_graph: bool) -> list:
    """All blocks, one double-vjp per input element: the columns of every output's block at once."""
    dummies, transposed, live = _transposed(outputs, inputs, False, _BACK)
    blocks = [[None] * len(inputs) for _ in outputs]
    for j, x in enumerate(inputs):
        columns = [[] for _ in outputs]
        for k in range(x.numel()):
            v = tuple(_one_hot(x, k) if m == j else y.new_zeros(y.shape) for m, y in enumerate(inputs))
            by_output = dict(zip(live, _grad(transposed, tuple(dummies[n] for n in live), v, create_graph)))
            for n, o in enumerate(outputs):
                g = by_output.get(n)
                columns[n].append(x.new_zeros(o.numel()) if g is None else g)
        for n, o in enumerate(outputs):
            flat = _stacked(columns[n], x, o.numel(), (x.numel(), o.numel()))
            blocks[n][j] = flat.t().reshape(tuple(o.shape) + tuple(x.shape))
    return blocks


# -- assembling results ---------------------------------------------------------------------------------------
def _one_hot(like, k: int):
    """A tensor of ``like``'s shape, dtype and device: 1 at flat position ``k``, 0 elsewhere."""
    e = like.new_zeros(like.numel())
    e[k] = 1
    return e.reshape(like.shape)


def _stacked(rows: list, like, width: int, shape: tuple):
    """``rows`` (tensors of ``width`` elements, each flattened to a row) as one tensor of ``shape``, in ``like``'s
    dtype and device; written row by row, which records the graph where a row requires grad."""
    flat = like.new_zeros((len(rows), width))
    for k, r in enumerate(rows):
        flat[k] = r.reshape(-1)
    return flat.reshape(shape)


def _filled(grads: tuple, refs: tuple, strict: bool, create_graph: bool, missing: str, constant: str,
            n: int = 0) -> tuple:
    """``grads`` with zeros (shaped as ``refs``) for None; strict mode raises instead, naming the input, and,
    with ``create_graph``, also for a gradient that does not require grad (it cannot be differentiated)."""
    out = []
    for i, (g, ref) in enumerate(zip(grads, refs)):
        if g is None:
            if strict:
                raise _StrictError(missing.format(i=i, n=n))
            g = ref.new_zeros(ref.shape)
        elif strict and create_graph and not g.requires_grad:
            raise _StrictError(constant.format(i=i, n=n))
        out.append(g)
    return tuple(out)


def _require(tensors: tuple, strict: bool, message: str) -> None:
    """Strict mode: every tensor (an output, or a gradient to differentiate again) must depend on the inputs."""
    for i, g in enumerate(tensors):
        if strict and not g.requires_grad:
            raise _StrictError(message.format(i=i))


def _post(tensors: tuple, create_graph: bool, single: bool):
    """Detached unless ``create_graph``; the tensor itself where the structure was a single tensor."""
    out = tuple(t if create_graph else t.detach() for t in tensors)
    return out[0] if single else out


def _nest(blocks: list, create_graph: bool, single_out: bool, single_in: bool):
    rows = [_post(tuple(row), create_graph, single_in) for row in blocks]
    return rows[0] if single_out else tuple(rows)
