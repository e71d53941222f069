"""``neurenix.compile(fn)``: trace a call's kernels once, replay them for later calls that match.

The first call of each kind runs ``fn`` eagerly while the tracer records its kernel calls, including the
backward passes of any order and optimizer steps inside it. Later calls whose guard key equals (see
``state``: the arguments' structure and Python values, tensor signatures, grad mode, default dtype and
device, the installed backends) replay the program: its buffers are read from the tensors the arguments
reach, the kernels run with no tensors, graph or dispatch, and what the eager call changed (tensors'
values, gradients, tensors replaced in modules and optimizers) is changed the same way; the return value
is rebuilt. What a replay cannot repeat makes ``fn`` run eagerly, with one ``CaptureWarning`` naming why.
"""

from __future__ import annotations

import functools
import threading
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .. import dtypes as _dt
from ..autograd import grad_mode
from ..autograd.graph import changed
from ..backend.registry import REGISTRY
from ..device import default_device
from ..tensor import Tensor, _wrap
from . import recording
from .program import Const, Program, warming
from .state import State, difference, place, walk
from .trace import TraceBusyError, Tracer, _UnseenError


class CaptureWarning(UserWarning):
    """A compiled function runs eagerly for a call (or for good), for the reason the message gives."""


_EAGER = object()  # a cache entry: calls with this key run eagerly


class Compiled:
    """A function compiled by ``neurenix.compile``: call it as the function. ``stats`` counts ``traces``,
    ``replays`` and ``eager`` calls; ``programs()`` lists the programs held."""

    def __init__(self, fn: Callable, max_programs: int = 8, backend: bool = True):
        if not callable(fn):
            raise TypeError(f"neurenix.compile needs a function, got {fn!r:.80}")
        if isinstance(max_programs, bool) or not isinstance(max_programs, int) or max_programs < 1:
            raise ValueError(f"neurenix.compile: max_programs must be a positive int, got {max_programs!r}")
        functools.update_wrapper(self, fn)
        self.fn, self.max_programs, self.backend = fn, max_programs, bool(backend)
        self.stats = {"traces": 0, "replays": 0, "eager": 0}
        self._cache: OrderedDict = OrderedDict()
        self._unstable: dict = {}  # key -> how often its trace changed the arguments' structure
        self._misses = 0
        self._last_key = None
        self._off: str | None = None  # why every call now runs eagerly
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def __get__(self, obj, owner=None):  # as a method: bind like a function
        return self if obj is None else types.MethodType(self, obj)

    def __capture__(self) -> tuple:  # held by an object a compiled function reads: counts by identity
        return ()

    def programs(self) -> list[Program]:
        return [e.program for e in self._cache.values() if e is not _EAGER]

    def __call__(self, *args, **kwargs):
        if self._off is not None or recording.tracer() is not None:  # off, or inside another trace
            return self._eager(args, kwargs)
        roots = (self.fn, args, kwargs)
        state = walk(roots)
        key = (state.key, grad_mode.state.enabled, _dt.default_float, default_device(), REGISTRY.generation)
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None:
                self._cache.move_to_end(key)
        if entry is _EAGER:
            return self._eager(args, kwargs)
        if entry is not None:
            self.stats["replays"] += 1
            return entry.run(state)
        return self._trace(key, roots, state, args, kwargs)

    def _eager(self, args, kwargs):
        self.stats["eager"] += 1
        return self.fn(*args, **kwargs)

    # -- tracing ---------------------------------------------------------------------------------------
    def _trace(self, key, roots, state: State, args, kwargs):
        self._count_miss(key)
        if self._off is not None:
            return self._eager(args, kwargs)
        before = [(t._data, t.grad, None if t.grad is None else t.grad._data) for t in state.tensors]
        tracer = Tracer(state.buffers())
        try:
            with tracer:
                result = self.fn(*args, **kwargs)
        except TraceBusyError:
            tracer.close()
            return self._eager(args, kwargs)
        except BaseException:
            tracer.close()
            raise
        try:
            return self._keep(tracer, key, roots, state, before, result)
        finally:
            tracer.close()

    def _keep(self, tracer: Tracer, key, roots, state: State, before: list, result):
        """Make and store the entry of a finished trace (or store that the key runs eagerly); ``result``."""
        self.stats["traces"] += 1
        entry = None
        if tracer.reason is None:
            entry = _Entry.build(tracer, state, walk(roots), before, result, self._unstable.get(key, 0))
            if isinstance(entry, int):  # the call changed the arguments' structure: trace again next time
                self._unstable[key] = entry
                return result
            if isinstance(entry, str):
                tracer.fail(entry)
        if tracer.reason is not None:
            self._store(key, _EAGER)
            self._warn(tracer.reason)
            return result
        entry.prepare(self.backend)
        self._store(key, entry)
        return result

    def _count_miss(self, key) -> None:
        """After many different keys, give up tracing: the guards change at every call."""
        if self._last_key is not None:
            self._misses += 1
            if self._misses > 2 * self.max_programs + 2:
                self._off = ("its guards changed at every call (" + _changed(self._last_key, key) + "); "
                             "pass what changes as tensors")
                self._warn(self._off)
        self._last_key = key

    def _store(self, key, entry) -> None:
        with self._lock:
            self._cache[key] = entry
            while len(self._cache) > self.max_programs:
                self._cache.popitem(last=False)

    def _warn(self, reason: str) -> None:
        if reason not in self._warned:
            self._warned.add(reason)
            warnings.warn(f"neurenix.compile({getattr(self.fn, '__qualname__', self.fn)!s}) runs eagerly: {reason}",
                          CaptureWarning, stacklevel=4)


def _changed(old, new) -> str:
    (s0, g0, b0), (s1, g1, b1) = old[0], new[0]
    if s0 != s1:
        return "the arguments' Python values: " + difference(s0, s1)
    if g0 != g1:
        i = next(i for i, (a, b) in enumerate(zip(g0, g1)) if a != b)
        return f"tensor {i} of the arguments: (shape, dtype, device, requires_grad, ...) {g0[i]} became {g1[i]}"
    if b0 != b1:
        return "which arguments share memory"
    return "grad mode, the default dtype or device, or the installed backends"


class _Entry:
    """A program ready to replay, with how to apply its results to a call's state."""

    def __init__(self, program: Program, writes: list, result: Any, copies: dict):
        self.program, self.writes, self.result, self.copies = program, writes, result, copies
        self.runner: Callable | None = None

    @staticmethod
    def build(tracer: Tracer, pre: State, post: State, before: list, result, unstable: int):
        """The entry for a finished trace; an int (the times this key was unstable) if the call changed the
        structure of its arguments; a str saying why it cannot be replayed."""
        if post.structure != pre.structure or len(post.tensors) != len(pre.tensors):
            if unstable:
                return ("it changes the Python values or objects its arguments hold at every call ("
                        + difference(pre.structure, post.structure) + ")")
            return unstable + 1
        outputs: list = []
        devices: list = []

        def out(buffer, device) -> int:
            outputs.append(tracer.value(buffer))
            devices.append(device)
            return len(outputs) - 1

        try:
            writes = _writes(pre, post, before, out)
            if isinstance(writes, str):
                return writes
            template = _result(result, {id(o): i for i, o in enumerate(pre.objects)}, out)
        except _UnseenError:
            return ("its results hold a tensor that is not reachable from its arguments and was not computed in "
                    "it")
        except _UnreplayableError as e:
            return str(e)
        program = tracer.program(outputs)
        copies = {i: devices[i] for i, v in enumerate(outputs) if isinstance(v, Const)}
        return _Entry(program, writes, template, copies)

    def prepare(self, backend: bool) -> None:
        types_ = self.program.device_types()
        if backend and len(types_) == 1:
            for compiler in REGISTRY.table(next(iter(types_))).compilers:
                self.runner = compiler(self.program)
                if self.runner is not None:
                    return
        self.runner = warming(self.program)

    def run(self, state: State):
        outs = self.runner(state.buffers())
        for i, device in self.copies.items():  # a constant is never handed out (numpy() would share its memory)
            outs[i] = device.kernels.copy(outs[i])
        tensors = state.tensors
        for kind, pos, j in self.writes:
            t = tensors[pos]
            if kind == "data":
                t._version = changed("a compiled step")
                t._data = outs[j]
            elif kind == "grad":
                t.grad = _wrap(outs[j], t._device)
            elif kind == "grad_data":
                t.grad._data = outs[j]
            elif kind == "no_grad":
                t.grad = None
            else:  # "replace": a new tensor where this one was
                place(state, pos, _wrap(outs[j], t._device))
        return _rebuild(self.result, outs, state)


def _writes(pre: State, post: State, before: list, out) -> list | str:
    """What the call changed in the tensors its arguments reach, as (kind, tensor position, output index)."""
    writes = []
    for pos, (t, t_after) in enumerate(zip(pre.tensors, post.tensors)):
        data, grad, grad_data = before[pos]
        if t_after is not t:
            if t_after._node is not None or t_after.requires_grad:
                return "it puts a tensor that requires grad where its arguments held another"
            if pre.places[pos] is None:
                return "it replaces a tensor inside a tuple"
            writes.append(("replace", pos, out(t_after._data, t._device)))
            continue
        if t._node is not None:
            return "it changes a tensor of its arguments in place while recording the graph"
        if t._data is not data:
            writes.append(("data", pos, out(t._data, t._device)))
        g = t.grad
        if g is grad:
            if g is not None and g._data is not grad_data:
                writes.append(("grad_data", pos, out(g._data, g._device)))
        elif g is None:
            writes.append(("no_grad", pos, -1))
        elif g._node is not None or g.requires_grad:
            return ("it leaves gradients that are attached to a graph (backward(create_graph=True) into .grad): "
                    "use neurenix.autograd.grad for higher-order gradients")
        else:
            writes.append(("grad", pos, out(g._data, g._device)))
    return writes


class _UnreplayableError(Exception):
    pass


def _result(x, objects: dict, out):
    """A template of the return value: ("tensor", output index), ("object", walk position), containers of
    them, or Python values."""
    t = type(x)
    if isinstance(x, Tensor):
        if id(x) in objects:
            return ("object", objects[id(x)])
        if x._node is not None or x.requires_grad:
            raise _UnreplayableError("it returns a tensor attached to autograd's graph (requires_grad): a replay "
                                     "records no graph; detach() it, or call backward inside the function")
        return ("tensor", out(x._data, x._device), x._device)
    if t in (int, float, bool, str, bytes, complex, type(None)):
        return ("value", x)
    if t is list or t is tuple or (isinstance(x, tuple) and hasattr(x, "_make")):
        return ("seq", t, [_result(e, objects, out) for e in x])
    if t is dict:
        return ("dict", [(k, _result(v, objects, out)) for k, v in x.items()])
    if id(x) in objects:
        return ("object", objects[id(x)])
    raise _UnreplayableError(f"it returns a {t.__name__}, which a replay cannot rebuild (return tensors, numbers and "
                        "containers of them)")


def _rebuild(template, outs: list, state: State):
    kind = template[0]
    if kind == "tensor":
        return _wrap(outs[template[1]], template[2])
    if kind == "value":
        return template[1]
    if kind == "object":
        return state.objects[template[1]]
    if kind == "seq":
        items = [_rebuild(e, outs, state) for e in template[2]]
        cls = template[1]
        return cls._make(items) if hasattr(cls, "_make") else cls(items)
    return {k: _rebuild(v, outs, state) for k, v in template[1]}


def compile(fn: Callable | None = None, *, max_programs: int = 8, backend: bool = True) -> Compiled | Callable:  # noqa: A001 - neurenix.compile, as torch.compile
    """Compile ``fn``: later calls like an earlier one replay the kernels it ran, without Python dispatch.

    Use it as ``step = neurenix.compile(step)`` or as a decorator (``@neurenix.compile`` or
    ``@neurenix.compile(max_programs=4)``). Compile whole steps: forward, backward (of any order) and the
    update, returning tensors without a graph (a loss ``.detach()``-ed, numbers of right answers).
    ``max_programs`` bounds the programs kept (one per kind of call); ``backend=False`` replays kernel by
    kernel even where the backend could take the whole program.

    What is constant: Python and NumPy computations inside ``fn`` run once, at the trace; their results are
    part of the program (as in ``jax.jit``). What is read fresh at every call: every tensor reachable from
    ``fn``'s arguments, its bound object and closure (parameters, buffers, gradients, optimizer state).
    Random ops draw fresh numbers. Globals are not guarded: pass what changes as arguments.
    """
    if fn is None:
        return lambda f: Compiled(f, max_programs, backend)
    return Compiled(fn, max_programs, backend)
