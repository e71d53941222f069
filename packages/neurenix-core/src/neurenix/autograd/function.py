"""Custom differentiable ops, as PyTorch's ``torch.autograd.Function``.

Subclass ``Function`` with two static methods and call ``apply``::

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad_y):
            (y,) = ctx.saved_tensors
            return grad_y * y

    y = Exp.apply(x)

``forward`` runs without recording; its result gets one graph node whose vector-Jacobian product calls
``backward``. Since ``backward`` is written with Tensor ops and the engine records it when asked
(``create_graph=True``), a custom op has gradients of any order, as every built-in op. A saved output is
given back to ``backward`` as the node's output, so that its gradient flows too (second order of ``Exp``).

Several outputs share one node: the differentiable ones are packed into one buffer and returned as views
of it, and ``backward`` gets one gradient per output (zeros for an output nothing depended on, None for a
non-tensor output). Like the engine, this module knows nothing of Tensor: it works on whatever records nodes.
"""

from __future__ import annotations

import inspect
import math

from . import grad_mode, graph


def _is_tensor(x) -> bool:
    return hasattr(x, "_node") and hasattr(x, "_data")  # (duck-typed: this package is below tensor.py)


class FunctionCtx:
    """What ``forward`` (or ``setup_context``) tells ``backward``: saved tensors and any attributes set on it.

    ``needs_input_grad`` holds, per argument of ``forward``, whether a gradient for it is wanted.
    """

    def __init__(self, needs_input_grad: tuple):
        self.needs_input_grad = needs_input_grad
        self.materialize_grads = True
        self._to_save: tuple = ()
        self._saved: tuple | None = None  # the saved tensors, outputs as markers (set by apply)
        self._unpacked: tuple | None = None  # the saved tensors while backward runs
        self._non_differentiable: set = set()
        self._outputs: list = []  # per output of forward: True (differentiable), False (not a tensor), or a spec

    def save_for_backward(self, *tensors) -> None:
        """Keep ``tensors`` (inputs, outputs, or None) for ``backward``, which reads them as ``saved_tensors``."""
        for i, t in enumerate(tensors):
            if t is not None and not _is_tensor(t):
                raise TypeError(f"save_for_backward: argument {i} is a {type(t).__name__}, not a Tensor or None; "
                                "keep other values as attributes of ctx (ctx.value = ...)")
        self._to_save = tensors

    @property
    def saved_tensors(self) -> tuple:
        """The tensors given to ``save_for_backward``; a saved output is the recorded output."""
        if self._unpacked is not None:
            return self._unpacked
        return self._to_save

    def mark_non_differentiable(self, *outputs) -> None:
        """Outputs that get no gradient (indices, masks): they come back with ``requires_grad=False`` and
        ``backward`` gets zeros for them."""
        self._non_differentiable.update(id(o) for o in outputs)

    def set_materialize_grads(self, value: bool) -> None:
        """With False, ``backward`` gets None (instead of zeros) for outputs that got no gradient."""
        self.materialize_grads = bool(value)


class Function:
    """Base class of custom ops: define ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)`` as static
    methods, then call ``MyOp.apply(*args)``.

    ``backward`` returns one gradient per argument of ``forward``: a tensor of the input's shape (or one
    that broadcasting gives from it: it is summed back), or None for an argument that needs none. Arguments
    that are not tensors are passed through as they are. As in PyTorch, ``forward(*args)`` may instead leave
    ``ctx`` to a ``setup_context(ctx, inputs, output)`` static method.
    """

    @staticmethod
    def forward(ctx, *args):
        """Compute the outputs (a tensor, or a tuple of them and of other values) from the arguments."""
        raise NotImplementedError("a Function subclass must define forward as a static method")

    @staticmethod
    def backward(ctx, *grad_outputs):
        """The gradients with respect to the arguments of ``forward``, from those of its outputs."""
        raise NotImplementedError("a Function subclass must define backward as a static method")

    @staticmethod
    def setup_context(ctx, inputs: tuple, output):
        """Save what ``backward`` needs, when ``forward`` does not take ``ctx``."""
        raise NotImplementedError

    @classmethod
    def apply(cls, *args):
        """Run the op on ``args``: its outputs, recorded for autograd if an argument requires grad."""
        wanted = grad_mode.state.enabled and any(_is_tensor(a) and a.requires_grad for a in args)
        ctx = FunctionCtx(tuple(wanted and _is_tensor(a) and a.requires_grad for a in args))
        with grad_mode.no_grad():
            if cls.setup_context is Function.setup_context:
                outputs = cls.forward(ctx, *args)
            else:
                outputs = cls.forward(*args)
                cls.setup_context(ctx, args, outputs)
        if not wanted:
            return outputs
        return _record(cls, ctx, args, outputs)

    def __call__(self, *args):
        raise RuntimeError(f"call {type(self).__name__}.apply(...) to run a Function (not an instance of it)")


def _record(cls, ctx: FunctionCtx, args: tuple, outputs):
    """Give ``outputs`` one node whose vjp calls ``cls.backward``; return them as fresh tensors."""
    single = not isinstance(outputs, tuple)
    outs = (outputs,) if single else outputs
    diff = [k for k, o in enumerate(outs) if _is_tensor(o) and o._data.dtype.kind == "f"
            and id(o) not in ctx._non_differentiable]
    ctx._saved = tuple(_saved_entry(t, [outs[k] for k in diff]) for t in ctx._to_save)
    ctx._to_save = ()
    ctx._outputs = [True if k in diff else (o.shape, o.dtype, o.device) if _is_tensor(o) else False
                    for k, o in enumerate(outs)]
    fresh = [graph.make_tensor(o._data, o._device) if _is_tensor(o) else o for o in outs]
    if diff:
        results = _packed(cls, ctx, args, [fresh[k] for k in diff])
        for k, r in zip(diff, results):
            fresh[k] = r
    return fresh[0] if single else tuple(fresh)


def _saved_entry(t, diff_outs: list):
    """A saved tensor as kept: ``("output", k)`` for the k-th differentiable output, else itself."""
    k = next((k for k, o in enumerate(diff_outs) if o is t), None)
    return t if k is None else ("output", k)


def _packed(cls, ctx: FunctionCtx, args: tuple, outs: list) -> list:
    """Record the differentiable ``outs`` (as one tensor if several) and return them, now in the graph."""
    first = outs[0]
    for o in outs:
        if o._data.dtype != first._data.dtype or o._device != first._device:
            raise TypeError(f"{cls.__name__}.forward: its differentiable outputs must share one dtype and device; an "
                            f"output is {o.dtype} on {o.device}, another {first.dtype} on {first.device}")
    shapes = [o.shape for o in outs]
    bounds = _bounds(shapes)
    if len(outs) == 1:
        packed = first
    else:
        with grad_mode.no_grad():
            packed = first.new_empty(bounds[-1][1])
            for (a, b), o in zip(bounds, outs):
                packed[a:b] = o.reshape(-1)
    parents = tuple(a for a in args if _is_tensor(a) and a.requires_grad)
    saved = tuple(t for t in ctx._saved if _is_tensor(t))
    reads_output = any(type(t) is tuple for t in ctx._saved)
    graph.record(packed, cls.__name__, parents, _vjp(cls, ctx, args, shapes, bounds), reads_output, saved)
    if len(outs) == 1:
        return [packed]
    return [packed[a:b].reshape(s) for (a, b), s in zip(bounds, shapes)]


def _bounds(shapes: list) -> list:
    out, start = [], 0
    for s in shapes:
        out.append((start, start + math.prod(s)))
        start += math.prod(s)
    return out


def _vjp(cls, ctx: FunctionCtx, args: tuple, shapes: list, bounds: list):
    """The node's vector-Jacobian product: unpack the gradient and the saved outputs, call backward, check."""
    def vjp(g, out):
        pieces = [g] if len(shapes) == 1 else [g[a:b].reshape(s) for (a, b), s in zip(bounds, shapes)]
        outs = None
        if out is not None:
            outs = [out] if len(shapes) == 1 else [out[a:b].reshape(s) for (a, b), s in zip(bounds, shapes)]
        ctx._unpacked = tuple(outs[t[1]] if type(t) is tuple else t for t in ctx._saved)
        try:
            grads = cls.backward(ctx, *_grad_outputs(ctx, pieces))
        finally:
            ctx._unpacked = None
        return _checked(cls, args, grads)
    return vjp


def _grad_outputs(ctx: FunctionCtx, pieces: list) -> list:
    """One gradient per output of forward: the differentiable ones from the node, zeros (or None) elsewhere."""
    it = iter(pieces)
    result = []
    for o in ctx._outputs:
        if o is True:  # a differentiable output: its piece
            result.append(next(it))
        elif o is False:  # not a tensor
            result.append(None)
        else:  # a non-differentiable tensor output: (shape, dtype, device)
            shape, dtype, device = o
            result.append(pieces[0].new_zeros(shape, dtype=dtype, device=device) if ctx.materialize_grads else None)
    return result


def _checked(cls, args: tuple, grads) -> tuple:
    """``backward``'s result as one gradient per parent (each argument that requires grad), checked."""
    grads = grads if isinstance(grads, tuple) else tuple(grads) if isinstance(grads, list) else (grads,)
    n = len(args)
    if len(grads) > n and all(g is None for g in grads[n:]):
        grads = grads[:n]
    if len(grads) != n:
        raise RuntimeError(f"{cls.__name__}.backward returned an incorrect number of gradients (expected {n}, got "
                           f"{len(grads)}): it must return one per argument of forward, None where none is needed")
    out = []
    for i, (a, g) in enumerate(zip(args, grads)):
        if not _is_tensor(a):
            if g is not None:
                raise RuntimeError(f"{cls.__name__}.backward returned a gradient for {_input_name(cls, i)}, which "
                                   f"is a {type(a).__name__}, not a tensor: return None for it")
        elif a.requires_grad:
            out.append(None if g is None else _fit(cls, i, a, g))
    return tuple(out)


def _fit(cls, i: int, a, g):
    """Gradient ``g`` of input ``a``, of ``a``'s shape and dtype (a broadcast gradient is summed back)."""
    if not _is_tensor(g):
        raise TypeError(f"{cls.__name__}.backward returned a {type(g).__name__} as the gradient of "
                        f"{_input_name(cls, i)}; expected a Tensor or None")
    if g.shape != a.shape:
        if not _broadcasts_to(a.shape, g.shape):
            raise RuntimeError(f"{cls.__name__}.backward returned a gradient of shape {g.shape} for "
                               f"{_input_name(cls, i)}, which has shape {a.shape}")
        lead = len(g.shape) - len(a.shape)
        dims = tuple(range(lead)) + tuple(lead + d for d, s in enumerate(a.shape) if s == 1 and g.shape[lead + d] != 1)
        g = g.sum(dim=dims, keepdim=True).reshape(a.shape)
    if g._data.dtype != a._data.dtype:
        g = g.to(a.dtype)
    return g


def _broadcasts_to(shape: tuple, target: tuple) -> bool:
    """Whether broadcasting ``shape`` gives ``target``."""
    if len(shape) > len(target):
        return False
    return all(s == t or s == 1 for s, t in zip(shape[::-1], target[::-1]))


def _input_name(cls, i: int) -> str:
    """``input 1 (weight)``: the position and, where forward's signature says it, the name of argument ``i``."""
    try:
        params = list(inspect.signature(cls.forward).parameters.values())
    except (TypeError, ValueError):
        return f"input {i}"
    if cls.setup_context is Function.setup_context:
        params = params[1:]  # ctx
    if i < len(params) and params[i].kind in (params[i].POSITIONAL_ONLY, params[i].POSITIONAL_OR_KEYWORD):
        return f"input {i} ({params[i].name})"
    return f"input {i}"


__all__ = ["Function", "FunctionCtx"]
