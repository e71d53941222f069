"""What a call reads and may change: the tensors reachable from its arguments, and the key that guards a
program recorded for it.

A walk goes through the function (a bound method's object, a closure's cells) and the arguments: into
containers, modules, optimizers and other objects' attributes. Tensors are the program's inputs, found in
walk order; everything else the walk meets becomes part of the *structure*: Python scalars, strings and
other hashable values by value (a learning rate, ``training``, a flag), host arrays by content, functions
by their code, unhashable objects by identity. An object whose class defines ``__capture__()`` counts by
identity plus what that returns (optimizers: not their step counts, which their step reads at each
replay). A class may name in ``__capture_unread__`` the attributes its compiled methods never read (a cache,
an optimizer they do not step): the walk leaves them out, so that changing them neither retraces nor makes
inputs of their tensors. A program replays only for a call whose structure, tensor signatures (shape, dtype, device,
requires_grad, whether a gradient is present) and sharing of buffers equal those it was traced with.
"""

from __future__ import annotations

import enum
import types

import numpy as np

from ..tensor import Tensor

_SCALARS = frozenset((int, float, bool, str, bytes, complex, type(None)))
_DEPTH = 12  # deeper than this, objects count by identity
# a Module's ordered name sets: what they list is among its attributes (walked), and how many attributes
# there are is counted
_BOOKKEEPING = frozenset(("_param_names", "_buffer_names", "_module_names", "_nonpersistent"))
_CODE = (types.FunctionType, types.LambdaType)


class State:
    """The walk of one call: ``tensors`` (distinct, in walk order), ``places`` (where each was first found:
    (container, key), or None inside a tuple or a dict key), ``objects`` (every non-scalar met, in order),
    ``structure`` and ``key`` (structure plus tensor guards)."""

    __slots__ = ("key", "objects", "places", "structure", "tensors")

    def buffers(self) -> list:
        """The buffers a program reads: each tensor's, then the gradient of each tensor that has one."""
        ts = self.tensors
        return [t._data for t in ts] + [t.grad._data for t in ts if t.grad is not None]


def walk(roots) -> State:
    parts: list = []
    tensors: list[Tensor] = []
    places: list = []
    objects: list = []
    seen: dict[int, int] = {}

    def visit(x, parent, slot, depth: int) -> None:
        t = type(x)
        if t in _SCALARS:
            parts.append(x)
            return
        i = seen.get(id(x))
        if i is not None:
            parts.append((_REF, i))
            return
        seen[id(x)] = len(objects)
        objects.append(x)
        if isinstance(x, Tensor):
            parts.append(_TENSOR)
            tensors.append(x)
            places.append(None if parent is None else (parent, slot))
        elif t is dict:
            parts.append((t, len(x)))
            for k, v in x.items():  # (scalars inline: most keys and many values are; a call each is the cost)
                if type(k) in _SCALARS:
                    parts.append(k)
                else:
                    visit(k, None, None, depth + 1)
                if type(v) in _SCALARS:
                    parts.append(v)
                else:
                    visit(v, x, k, depth + 1)
        elif t is list:
            parts.append((t, len(x)))
            for k, v in enumerate(x):
                if type(v) in _SCALARS:
                    parts.append(v)
                else:
                    visit(v, x, k, depth + 1)
        elif isinstance(x, tuple):
            parts.append((t, len(x)))
            for v in x:
                if type(v) in _SCALARS:
                    parts.append(v)
                else:
                    visit(v, None, None, depth + 1)
        elif t is set or t is frozenset:  # by content (a tensor inside one is not an input: unseen if read)
            try:
                parts.append((t, frozenset(x)))
            except TypeError:
                parts.append((t, id(x)))
        elif isinstance(x, np.ndarray):
            parts.append((_ARRAY, x.shape, x.dtype.str, hash(x.tobytes())))
        elif depth > _DEPTH:
            parts.append((_DEEP, id(x)))
        elif isinstance(x, _CODE):
            parts.append(x.__code__)
            for v in x.__defaults__ or ():
                visit(v, None, None, depth + 1)
            for cell in x.__closure__ or ():
                try:
                    v = cell.cell_contents
                except ValueError:  # an empty cell
                    v = None
                visit(v, None, None, depth + 1)
        elif isinstance(x, types.MethodType):
            parts.append(x.__func__)
            visit(x.__self__, None, None, depth + 1)
        elif isinstance(x, (type, types.ModuleType, types.BuiltinFunctionType)):
            parts.append(x)
        elif hasattr(t, "__capture__"):  # it says what to read of it (an optimizer: not its step counts)
            parts.append((t, id(x)))
            visit(x.__capture__(), None, None, depth + 1)
        elif hasattr(x, "__dict__") and not isinstance(x, enum.Enum):  # (a frozen dataclass may hold tensors)
            attrs = vars(x)
            unread = getattr(t, "__capture_unread__", ())
            parts.append((t, len(attrs)))
            for k, v in attrs.items():
                if k in _BOOKKEEPING or k in unread:
                    continue
                parts.append(k)
                if type(v) in _SCALARS:
                    parts.append(v)
                else:
                    visit(v, x, k, depth + 1)
        else:
            try:
                parts.append((t, hash(x), x))
            except TypeError:
                parts.append((t, id(x)))

    visit(roots, None, None, 0)
    s = State()
    s.tensors, s.places, s.objects, s.structure = tensors, places, objects, tuple(parts)
    s.key = (s.structure, tuple(_guard(t) for t in tensors), _sharing(s.buffers()))
    return s


def _guard(t: Tensor) -> tuple:
    g = t.grad
    # (devices by name: a Device hashes in Python, a str in C)
    return (t._data.shape, t._data.dtype, t._device._name, t.requires_grad, t._node is None, t._version < 0,
            None if g is None else (g._data.shape, g._data.dtype, g._device._name))


def _sharing(buffers: list) -> tuple:
    """Which buffers are the same object (a tensor passed twice, a view beside its base): for each, the first
    position holding it."""
    first: dict[int, int] = {}
    return tuple(first.setdefault(id(b), i) for i, b in enumerate(buffers))


def place(state: State, position: int, value) -> None:
    """Put ``value`` where the ``position``-th tensor of ``state`` was found."""
    container, slot = state.places[position]
    if type(container) in (dict, list):
        container[slot] = value
    else:
        setattr(container, slot, value)


def difference(a: tuple, b: tuple) -> str:
    """The first difference between two structures, for messages."""
    for x, y in zip(a, b):
        if x != y:
            return f"{_show(x)} became {_show(y)}"
    return f"{len(a)} parts became {len(b)}"


def _show(part) -> str:
    if part is _TENSOR:
        return "a tensor"
    if type(part) is tuple and part and part[0] is _REF:
        return "a second reference to an object"
    return repr(part)[:80]


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


_TENSOR, _REF, _ARRAY, _DEEP = _Marker("tensor"), _Marker("ref"), _Marker("array"), _Marker("deep")
