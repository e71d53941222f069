"""The tracer: runs a function eagerly while recording every kernel call it makes into a Program.

While tracing, each device's kernel table is swapped for a :class:`RecordingTable`, whose kernels record
their call (on the tracing thread only; other threads pass straight through) and then run the real
kernel. Buffers are told apart by identity: the call's input buffers and each recorded result get a
:class:`Value`; a buffer made from host data or from constants only is a :class:`Const`; a buffer of
neither kind came from somewhere the program cannot see (a tensor not reachable from the arguments), and
makes the call uncapturable. A buffer dropped during the trace is forgotten when it dies (a weak reference
says when), so the trace holds no more memory than the eager call; objects without weak references are
kept until the trace ends instead, so that their identities are never reused meanwhile.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

from .. import caches
from ..backend.kernels import KERNELS
from ..device import Device
from . import recording
from .program import Const, Instruction, Program, Value, values

_LITERALS = (int, float, bool, str, bytes, type(None), slice, np.dtype)
_one_at_a_time = threading.Lock()  # the tables are swapped process-wide: one trace at a time


class TraceBusyError(Exception):
    """Another thread is tracing: this call runs eagerly."""


class _UnseenError(Exception):
    """A buffer the program cannot name."""


class Tracer:
    """Records kernel calls into a program; ``reason`` says why the call cannot be captured (None if it can)."""

    def __init__(self, inputs: list):
        self.keep: list = []  # objects without weak references: held, so that no id is reused while tracing
        self._finalizers: list = []
        self._count = 0
        self.slots: dict[int, Value] = {}
        self.consts: dict[int, object] = {}  # id -> a weak reference to a constant buffer (or the buffer)
        self._used: dict[int, Const] = {}  # constants the program reads
        self.instructions: list[Instruction] = []
        self.signatures: dict[int, tuple] = {}
        self.inputs = [self._input(b) for b in inputs]
        self.paused = False
        self.reason: str | None = None
        self._tables: dict[int, RecordingTable] = {}
        self._swapped: list[tuple[Device, object]] = []

    # -- installing -------------------------------------------------------------------------------------
    def __enter__(self) -> Tracer:
        if not _one_at_a_time.acquire(blocking=False):
            raise TraceBusyError
        for dev in {id(d): d for d in list(Device._interned.values())}.values():
            real = dev.kernels
            table = self._tables.get(id(real))
            if table is None:
                table = self._tables[id(real)] = RecordingTable(real, self)
            self._swapped.append((dev, real))
            dev.kernels = table
        recording._local.tracer = self
        return self

    def __exit__(self, *exc) -> None:
        recording._local.tracer = None
        for dev, real in self._swapped:
            dev.kernels = real
        self._swapped.clear()
        _one_at_a_time.release()

    def recording(self) -> bool:
        """Whether a kernel called now, on this thread, is to be recorded."""
        return getattr(recording._local, "tracer", None) is self and not self.paused and self.reason is None

    # -- recording ---------------------------------------------------------------------------------------
    def fail(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def record(self, name: str, fn, args: tuple, host: bool = False, device_type: str | None = None):
        """Run ``fn(*args)`` and record it (unless it only reads constants: then its result is one too)."""
        if self.reason is not None:
            return fn(*args)
        try:
            template = self._template(args)
        except _UnseenError:
            self.fail(f"{name} reads a tensor that is not reachable from the function's arguments (a global, or "
                      "a tensor made before the call and kept elsewhere): pass it as an argument, or make it a "
                      "module's parameter or buffer")
            return fn(*args)
        self.paused = True
        try:
            out = _own_buffers(fn(*args))
        finally:
            self.paused = False
        if self.reason is not None:
            return out
        if host or values(template):
            self.instructions.append(Instruction(name, fn, template, self._results(out, host), host, device_type))
        else:
            self._constants(out)
        return out

    def is_value(self, buffer) -> bool:
        return id(buffer) in self.slots

    def constant(self, buffer) -> None:
        if id(buffer) not in self.slots:
            self.consts[id(buffer)] = self._hold(buffer, self._forget_constant)

    def value(self, buffer):
        """The Value or Const naming ``buffer`` (a result of the traced call)."""
        v = self.slots.get(id(buffer)) or self._const(buffer)
        if v is None and caches.is_constant(buffer):
            self.constant(buffer)
            v = self._const(buffer)
        if v is None:
            raise _UnseenError
        return v

    def close(self) -> None:
        """Stop following the buffers' lifetimes (the program is built): release what the trace held."""
        for f in self._finalizers:
            f.detach()
        self._finalizers.clear()
        self.keep.clear()

    def _const(self, x) -> Const | None:
        c = self._used.get(id(x))
        if c is not None:
            return c
        held = self.consts.get(id(x))
        if held is None or (held() if isinstance(held, weakref.ref) else held) is not x:
            return None
        c = self._used[id(x)] = Const(x)  # (held by the program from now on)
        return c

    def _hold(self, obj, forget):
        """Follow ``obj``'s lifetime: ``forget(id)`` when it dies; a weak reference to it, or for objects without
        weak references (NumPy scalars, dicts, some backends' buffers), ``obj`` itself, held till the end."""
        try:
            self._finalizers.append(weakref.finalize(obj, forget, id(obj)))
            return weakref.ref(obj)
        except TypeError:
            self.keep.append(obj)
            return obj

    def _forget_value(self, key: int) -> None:
        self.slots.pop(key, None)

    def _forget_constant(self, key: int) -> None:
        self.consts.pop(key, None)

    def program(self, outputs: list) -> Program:
        return Program(self.inputs, self.instructions, outputs, self.signatures).prune()

    def _input(self, buffer) -> Value:
        v = Value(self._next())
        self._hold(buffer, self._forget_value)
        self.signatures[v.index] = (tuple(buffer.shape), buffer.dtype)
        self.slots.setdefault(id(buffer), v)  # (a buffer passed twice is read from its first place)
        return v

    def _next(self) -> int:
        self._count += 1
        return self._count - 1

    def _new(self, obj) -> Value:
        v = Value(self._next())
        self._hold(obj, self._forget_value)
        if hasattr(obj, "shape") and hasattr(obj, "dtype"):
            self.signatures[v.index] = (tuple(obj.shape), obj.dtype)
        self.slots[id(obj)] = v
        return v

    def _template(self, x):
        t = type(x)
        if t is tuple or t is list:
            return t(self._template(e) for e in x)
        if t in _LITERALS:
            return x
        v = self.slots.get(id(x)) or self._const(x)
        if v is not None:  # (NumPy's reductions give NumPy scalars: buffers too, when a kernel made them)
            return v
        if hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, np.generic):  # a buffer
            return self.value(x)
        return x  # Python's and NumPy's scalars, devices, functions...: passed as they are

    def _results(self, out, host: bool):
        if out is None:
            return None
        t = type(out)
        if t is tuple or t is list:
            return t(self._results(e, host) for e in out)
        if host or (hasattr(out, "shape") and hasattr(out, "dtype")):
            return self._new(out)  # (a host step's other results, such as a random state, are values too)
        return out

    def _constants(self, out) -> None:
        if type(out) in (tuple, list):
            for e in out:
                self._constants(e)
        elif out is not None and hasattr(out, "shape"):
            self.constant(out)


def _own_buffers(out):
    """``out`` with NumPy's shared 0-d True and False (a comparison or ``all`` of NumPy buffers gives them) as
    0-d arrays of their own: buffers are told apart by identity, and two results must not be one object."""
    t = type(out)
    if t is np.bool_:
        return np.array(out)
    if t is tuple or t is list:
        return t(_own_buffers(e) for e in out)
    return out


class RecordingTable:
    """A device's kernel table while tracing: the same attributes, kernels that record their calls."""

    def __init__(self, table, tracer: Tracer):
        self.__dict__["_real"] = table
        self.__dict__["_tracer"] = tracer

    def __getattr__(self, name):
        attr = getattr(self._real, name)
        if name not in KERNELS:
            return attr
        kernel = self.__dict__[name] = _recording(name, attr, self._tracer, self._real.device_type)
        return kernel

    def __setattr__(self, name, value) -> None:
        setattr(self._real, name, value)


def _recording(name: str, fn, tracer: Tracer, device_type: str):
    if name == "from_numpy":  # host data: a constant of the program
        def kernel(*args):
            out = fn(*args)
            if tracer.recording():
                tracer.constant(out)
            return out
    elif name == "to_numpy":
        def kernel(x):
            if tracer.recording() and tracer.is_value(x):
                tracer.fail("it reads a value computed from its inputs on the host (.item(), .numpy(), .tolist(), "
                            "bool() or printing a tensor), which a replay cannot do: return the tensor instead and "
                            "read it after the call")
            return fn(x)
    elif name == "synchronize":
        return fn
    else:
        def kernel(*args):
            return tracer.record(name, fn, args, device_type=device_type) if tracer.recording() else fn(*args)
    kernel.__name__ = name
    return kernel
