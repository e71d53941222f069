"""The Tensor: a backend buffer on a device, plus what autograd needs.

A tensor's buffer is treated as an immutable value: ops return new tensors, and in-place methods
(``add_``, ``x[i] = v``, ``zero_``...) give the tensor a new buffer rather than writing into the old
one, so tensors that share a buffer never see each other change. Where PyTorch code would rely on
sharing, neurenix either does the same or refuses (docs/index.md, "Tensors are values"):

- ``t.data`` is an alias of ``t``: reading it reads ``t``, changing it in place changes ``t``;
- a view (``t[0]``, ``t.view(...)``, ``t.T``, ``t.detach()``...) refuses in-place changes, which in
  PyTorch would also change ``t``;
- a tensor a graph saved for its backward pass and then changed in place makes that backward pass
  raise instead of computing with the new value (``_version``, see autograd/graph.py).

``numpy()`` on host backends shares memory with the tensor, as in PyTorch; for a tensor that requires grad
(which PyTorch refuses) the array is read-only, so that a write cannot change a value a graph recorded.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from . import arguments
from . import dtypes as _dt
from .autograd import engine, grad_mode, graph, hooks
from .autograd.graph import changed
from .device import Device, as_device
from .errors import InPlaceError

_new = object.__new__


class Tensor:
    """An n-dimensional array on a device, with automatic differentiation.

    ``Tensor(data, dtype=None, device=None, requires_grad=False)`` copies ``data`` (a float or bool, nested
    lists, a NumPy array or another tensor). The dtype is inferred as ``neurenix.tensor`` does:
    NumPy arrays keep theirs, Python floats take the default float dtype (float32 unless
    ``set_default_dtype`` changed it), ints int64, bools bool.

    As PyTorch's legacy constructor, ints alone are sizes: ``Tensor(5)`` is a float tensor of shape (5,) and
    ``Tensor(2, 3)`` one of shape (2, 3), filled with zeros (neurenix fills new tensors); ``Tensor()`` has
    shape (0,). ``neurenix.tensor(5)`` is the 0-d tensor holding 5.
    """

    # _version: 0 if never changed in place, else the graph sequence number of the last change; -1 for a
    # view, which refuses in-place changes while another tensor shares its value (_shared, see mark_view)
    __slots__ = ("__weakref__", "_data", "_device", "_hooks", "_node", "_shared", "_version", "grad", "requires_grad")
    __array_priority__ = 1000  # ndarray (op) Tensor -> our reflected operator
    __array_ufunc__ = None

    def __init__(self, *data: Any, dtype=None, device=None, requires_grad: bool = False):
        self._fill(_legacy_sizes(data, dtype), dtype, device, requires_grad)

    def _fill(self, data: Any, dtype, device, requires_grad: bool) -> None:
        dev = as_device(device if device is not None or not isinstance(data, Tensor) else data._device)
        self._data = _to_buffer(data, dtype, dev)
        self._device = dev
        self.grad = None
        self._node = self._shared = None
        self._version = 0
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_()

    # -- properties ------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def dtype(self) -> _dt.DType:
        return _dt.BY_NUMPY[self._data.dtype]

    @property
    def device(self) -> Device:
        return self._device

    @property
    def is_cuda(self) -> bool:
        """Whether this tensor is on a CUDA device."""
        return self._device.type == "cuda"

    @property
    def ndim(self) -> int:
        return len(self._data.shape)

    @property
    def signature(self) -> tuple:
        """``(shape, dtype, device)``: hashable and cheap, what a plan for this tensor depends on (tensors of
        one signature stack into one batch, run through one compiled program...)."""
        return self._data.shape, _dt.BY_NUMPY[self._data.dtype], self._device

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self):
        return self._node

    @property
    def data(self) -> Tensor:
        """An alias of this tensor outside autograd (PyTorch's ``.data``): it reads this tensor's value, and
        in-place changes to it (``p.data.add_(...)``, ``p.grad.data.mul_(...)``) change this tensor, unrecorded.
        Assigning to it replaces the value."""
        return _DataAlias(self)

    @data.setter
    def data(self, value: Tensor) -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"can only set .data to a Tensor, not {type(value).__name__}")
        if value._device is not self._device or value.shape != self.shape:
            raise ValueError(f"cannot set .data of a tensor of shape {self.shape} on {self._device} to one of "
                             f"shape {value.shape} on {value._device}")
        self._set(value._data, ".data =")

    def dim(self) -> int:
        return len(self._data.shape)

    def size(self, dim: int | None = None):
        return self._data.shape if dim is None else self._data.shape[dim]

    def numel(self) -> int:
        n = 1
        for s in self._data.shape:
            n *= s
        return n

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    def __len__(self) -> int:
        if not self._data.shape:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    __hash__ = object.__hash__

    # -- conversion ------------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The values as a NumPy array (sharing memory on host backends). PyTorch refuses ``numpy()`` on a tensor
        that requires grad; neurenix returns a read-only array instead (reads work, writes raise NumPy's
        "assignment destination is read-only"): a write would silently change values a recorded graph uses.
        ``detach().numpy()`` is writable and shared, as in PyTorch."""
        dev = self._device
        if dev.checks:  # a synchronisation: index checks queued on the device report here
            dev.raise_pending()
        a = dev.kernels.to_numpy(self._data)
        if self.requires_grad or self._node is not None:
            a = a.view()  # a read-only view: the buffer itself stays writable for detach().numpy()
            a.flags.writeable = False
        return a

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """This tensor's values as a DLPack capsule (the array API's exchange protocol), for ``np.from_dlpack``,
        ``torch.from_dlpack``, ``jax.dlpack.from_dlpack``...: no copy on the host, the consumer sharing memory
        with the tensor. As PyTorch, a tensor that requires grad is refused (``detach()`` it first); a tensor on
        another device raises BufferError (``.to("cpu")`` it first: neurenix never copies behind your back)."""
        if self.requires_grad:
            raise RuntimeError("Can't export tensors that require gradient, use tensor.detach()")
        if self._device.type != "cpu":
            raise BufferError(f"DLPack export is for tensors on the host; this one is on {self._device}: "
                              f"move it with .to('cpu') first")
        return self.numpy().__dlpack__(stream=stream, max_version=max_version, dl_device=dl_device, copy=copy)

    def __dlpack_device__(self) -> tuple[int, int]:
        """(DLPack device type, index): (1, 0), the host (kDLCPU); see ``__dlpack__``."""
        if self._device.type != "cpu":
            raise BufferError(f"DLPack export is for tensors on the host; this one is on {self._device}")
        return (1, 0)

    def __array__(self, dtype=None, copy=None):
        # NumPy 2 trusts __array__ to copy when asked: np.array(t) must neither share nor be read-only
        a = self.numpy()
        if dtype is not None:
            return a.astype(dtype, copy=bool(copy))
        return a.copy() if copy else a

    def item(self) -> int | float | bool:
        if self.numel() != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def __float__(self) -> float:
        return float(self.item())

    def contiguous(self, memory_format=None) -> Tensor:
        """This tensor: neurenix tensors are always laid out contiguously."""
        return self

    def is_contiguous(self, memory_format=None) -> bool:
        """True: neurenix tensors are always laid out contiguously (a transpose is a value of its own layout)."""
        return True

    def half(self):
        """Refused: neurenix has no float16 dtype."""
        raise TypeError("half(): neurenix has no float16 dtype (its dtypes are float32, float64, int64, bool and "
                        "int8); use float() for float32")

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.numel() != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous; use .any() or .all()")
        return bool(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub" or self.numel() != 1:
            raise TypeError(f"only one-element integer tensors can be used as an index, not {self.dtype} {self.shape}")
        return int(self.item())

    def __format__(self, spec: str) -> str:
        if spec and self.numel() == 1:
            return format(self.item(), spec)
        return str(self)

    def __repr__(self) -> str:
        arr = np.asarray(self.numpy())
        body = np.array2string(arr, separator=", ", precision=4, prefix="tensor(",
                               floatmode="maxprec_equal" if arr.dtype.kind == "f" else "maxprec")
        extras = []
        if self._data.dtype not in (_dt.float32.np, _dt.int64.np, _dt.bool_.np):
            extras.append(f"dtype={self.dtype!r}")
        if str(self._device) != "cpu":
            extras.append(f"device='{self._device}'")
        if self._node is not None:
            extras.append(f"grad_fn={self._node!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body, *extras]) + ")"

    # -- copying and pickling (through the backend, whatever its buffers are) -------------------------
    def __deepcopy__(self, memo) -> Tensor:
        if self._node is not None:
            raise RuntimeError("only leaf tensors can be deep-copied (detach() first)")
        new = _new(Tensor if type(self) is _DataAlias else type(self))
        new._data, new._device = self._device.kernels.copy(self._data), self._device
        new.requires_grad, new._node, new._shared, new._version = self.requires_grad, None, None, 0
        memo[id(self)] = new
        new.grad = None if self.grad is None else self.grad.__deepcopy__(memo)
        return new

    def __reduce_ex__(self, protocol):
        cls = Tensor if type(self) is _DataAlias else type(self)
        return (_rebuild, (cls, np.array(self.numpy()), str(self._device), self.requires_grad))

    # -- autograd --------------------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Start (or stop) recording ops on this leaf tensor."""
        if requires_grad and self._data.dtype.kind != "f":
            raise RuntimeError(f"only floating-point tensors can require grad, not {self.dtype}")
        if not requires_grad and self._node is not None:
            raise RuntimeError("requires_grad_(False) only applies to leaf tensors; use detach() here")
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self) -> Tensor:
        """The same value, cut from the graph (shares the buffer). It is a view: in-place changes to it are
        refused while this tensor lives (in PyTorch they would change it too); ``detach().clone()`` gives a
        tensor to change."""
        t = _wrap(self._data, self._device)
        mark_view(t, self)
        return t

    def register_hook(self, hook) -> hooks.RemovableHandle:
        """Call ``hook(grad)`` when the backward pass has this tensor's gradient; a tensor it returns (same
        shape, dtype and device) replaces the gradient. Returns a handle whose ``remove()`` takes it off."""
        if not callable(hook):
            raise TypeError(f"register_hook: hook must be callable, got {type(hook).__name__}")
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        return hooks.add(self if self._node is None else self._node, hook)

    def retain_grad(self) -> None:
        """Accumulate this computed tensor's gradient into its ``.grad`` too (a leaf's is filled anyway)."""
        if not self.requires_grad:
            raise RuntimeError("cannot retain the gradient of a tensor that does not require grad")
        if self._node is not None:
            hooks.retain(self._node, self)

    @property
    def retains_grad(self) -> bool:
        """Whether ``retain_grad()`` was called on this computed tensor (its current node)."""
        return self._node is not None and self._node._hooks is not None and hooks.RETAIN in self._node._hooks

    def backward(self, gradient: Tensor | None = None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs=None) -> None:
        """Accumulate the gradient of this tensor into ``.grad`` of the leaves it was computed from."""
        engine.backward(self, gradient, retain_graph, create_graph, inputs)

    # -- new tensors like this one (PyTorch's new_*: this dtype and device unless given) ---------------------
    def new_tensor(self, data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
        return tensor(data, dtype=dtype or self.dtype, device=device or self._device, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
        dev = self._device if device is None else as_device(device)
        npd = self._data.dtype if dtype is None else _dt.as_dtype(dtype).np
        t = _wrap(dev.kernels.full(arguments.shape((size,), "new_full"), arguments.fill_value(fill_value, "new_full"),
                                   npd, dev.index), dev)
        return t.requires_grad_() if requires_grad else t

    def new_zeros(self, *size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
        return self.new_full(arguments.shape(size, "new_zeros"), 0, dtype, device, requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
        return self.new_full(arguments.shape(size, "new_ones"), 1, dtype, device, requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
        """Neurenix fills new tensors: ``new_empty`` gives zeros."""
        return self.new_full(arguments.shape(size, "new_empty"), 0, dtype, device, requires_grad)

    # -- in-place updates: rebind this tensor to a new value ----------------------------------------
    def _set(self, data, op: str) -> None:
        """Give this tensor the buffer ``data``, outside autograd (optimizer steps, ``.data =``, init)."""
        if self._version < 0 and _shared(self):
            raise _view_error(op)
        self._version = changed(op)
        self._data = data

    def _assign(self, op: str, fn, *args) -> Tensor:
        """Replace this tensor's value by ``fn(old_value, *args)``, recording it if needed."""
        if self._version < 0 and _shared(self):
            raise _view_error(op)
        if grad_mode.state.enabled and self.requires_grad and self._node is None:
            raise RuntimeError(f"{op}: a leaf tensor that requires grad cannot be changed in place while recording; "
                               "wrap the update in neurenix.no_grad()")
        old = _wrap(self._data, self._device)
        old.requires_grad, old._node = self.requires_grad, self._node
        new = fn(old, *args)
        if new.shape != self.shape:
            raise ValueError(f"{op}: an in-place update cannot change the shape {self.shape} to {new.shape}")
        if new._data.dtype is not self._data.dtype:
            new = new.to(self.dtype)
        self._version = changed(op)
        hooks.move_retain(self._node, new._node, self)
        self._data, self._node = new._data, new._node
        self.requires_grad = self.requires_grad or new.requires_grad
        return self

    def copy_(self, src) -> Tensor:
        """Take ``src``'s values (broadcast to this shape, cast to this dtype, moved to this device)."""
        src = src if isinstance(src, Tensor) else tensor(src, device=self._device)
        # clone: this tensor gets a node of its own, never the one src already has
        return self._assign("copy_", lambda old, s: s.to(old._device).expand(old.shape).clone(), src)

    def zero_(self) -> Tensor:
        return self._assign("zero_", lambda old: full_like(old, 0))

    def fill_(self, value) -> Tensor:
        return self._assign("fill_", lambda old: full_like(old, value))

    def add_(self, other, alpha=1) -> Tensor:
        return self._assign("add_", lambda old: old + (other if alpha == 1 else other * _alpha(alpha, "add_")))

    def sub_(self, other, alpha=1) -> Tensor:
        return self._assign("sub_", lambda old: old - (other if alpha == 1 else other * _alpha(alpha, "sub_")))

    def mul_(self, other) -> Tensor:
        return self._assign("mul_", lambda old: old * other)

    def div_(self, other) -> Tensor:
        return self._assign("div_", lambda old: old / other)

    def clamp_(self, min=None, max=None) -> Tensor:
        return self._assign("clamp_", lambda old: old.clamp(min, max))

    def masked_fill_(self, mask, value) -> Tensor:
        """In place: ``value`` where ``mask`` is True."""
        return self._assign("masked_fill_", lambda old: old.masked_fill(mask, value))

    def scatter_(self, dim: int, index, src=None, value=None, reduce: str | None = None) -> Tensor:
        """In place: ``scatter``."""
        return self._assign("scatter_", lambda old: old.scatter(dim, index, src, value, reduce))

    def scatter_add_(self, dim: int, index, src) -> Tensor:
        """In place: ``scatter_add``."""
        return self._assign("scatter_add_", lambda old: old.scatter_add(dim, index, src))

    def index_put_(self, indices, values, accumulate: bool = False) -> Tensor:
        """In place: ``index_put``."""
        return self._assign("index_put_", lambda old: old.index_put(indices, values, accumulate))

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)


def _wrap(data, device: Device) -> Tensor:
    """Make a tensor around a backend buffer (the internal, fast constructor)."""
    t = _new(Tensor)
    if data.__class__ is _NP_BOOL:  # NumPy's 0-d True and False are shared objects: a tensor holds its own buffer
        data = np.array(data)  # (a compiled function tells buffers apart by identity)
    t._data = data
    t._device = device
    t.requires_grad = False
    t.grad = None
    t._node = t._shared = None  # (_hooks stays unset until a hook: read with getattr(t, "_hooks", None))
    t._version = 0
    return t


_NP_BOOL = np.bool_


graph.make_tensor = _wrap  # the graph rebuilds dropped outputs with it


def _alpha(alpha, op: str):
    if type(alpha) not in (int, float, bool):
        return arguments.number(alpha, "alpha", op, finite=False)
    return alpha


def mark_view(view: Tensor, of: Tensor) -> None:
    """Make ``view`` (made by a view op from ``of``) a view: it shares a token with ``of`` and every other view of
    the same value, so that an in-place change of it can tell whether anyone else would see it in PyTorch."""
    if type(of) is _DataAlias:
        of = of._owner
    token = of._shared
    if token is None:
        token = of._shared = []
    view._shared = token
    view._version = -1


def _shared(view: Tensor) -> bool:
    """Whether a tensor still holds a view's token with ``view`` (the tensor it was made from, or another view of
    it): then an in-place change of ``view`` would reach it in PyTorch, and is refused. A view whose tensor and
    sibling views are gone is a tensor of its own (``nx.zeros(6).view(2, 3)[0] = 1`` works, as in PyTorch)."""
    token = view._shared
    # references: view._shared, the local name, getrefcount's argument; one more is another holder's
    return token is None or type(view) is _DataAlias or sys.getrefcount(token) > 3


def _view_error(op: str) -> InPlaceError:
    return InPlaceError(
        f"{op}: this tensor is a view (made by indexing, view/reshape, permute/transpose, expand, squeeze/unsqueeze, "
        "flatten or detach()), and in PyTorch changing it in place would also change the tensor it was made from. "
        "Neurenix tensors are values, so it would not: change the original instead (t[0] = v, t[:, 1].fill_ -> "
        "t[:, 1] = v), or clone() the view to get a tensor of its own")


class _DataAlias(Tensor):
    """``t.data``: reads ``t``'s current value; in-place changes land in ``t``, unrecorded by autograd."""

    __slots__ = ("_owner",)

    def __init__(self, owner: Tensor):
        self._owner = owner
        self._device = owner._device
        self._node = self._shared = None
        self.grad = None
        self.requires_grad = False

    @property
    def _data(self):
        return self._owner._data

    @_data.setter
    def _data(self, data) -> None:
        self._owner._set(data, "an in-place change through .data")

    @property
    def _version(self) -> int:
        return self._owner._version

    @_version.setter
    def _version(self, version: int) -> None:
        self._owner._version = version

    def _set(self, data, op: str) -> None:
        self._owner._set(data, op)

    def _assign(self, op: str, fn, *args) -> Tensor:
        with grad_mode.no_grad():  # outside autograd, as PyTorch's .data
            new = fn(_wrap(self._data, self._device), *args)
        if new.shape != self.shape:
            raise ValueError(f"{op}: an in-place update cannot change the shape {self.shape} to {new.shape}")
        if new._data.dtype is not self._data.dtype:
            new = new.to(self.dtype)
        self._owner._set(new._data, op + " (through .data)")
        return self


def _rebuild(cls, array: np.ndarray, device: str, requires_grad: bool) -> Tensor:
    """Unpickle a tensor (onto the device it was saved from)."""
    dev = Device(device)
    t = _wrap(dev.kernels.from_numpy(np.asarray(array, order="C"), dev.index), dev)
    t.__class__ = cls
    t.requires_grad = requires_grad
    return t


def _to_buffer(data, dtype, device: Device):
    """A buffer on ``device`` holding a copy of ``data``, with ``tensor()``'s dtype inference."""
    if isinstance(data, Tensor):
        t = data.detach().to(device)
        if dtype is not None:
            t = t.to(dtype)
        return device.kernels.copy(t._data) if t._data is data._data else t._data
    if isinstance(data, (np.ndarray, np.generic)):
        dt = _dt.as_dtype(dtype) if dtype is not None else _dt.from_numpy_kind(data.dtype)
        arr = np.array(data, dtype=dt.np, order="C", copy=True)
    else:
        try:
            arr = np.array(data)
        except (ValueError, OverflowError):  # ragged nesting, or an int too large for NumPy
            arr = np.array(None)
        if arr.dtype == object:
            raise TypeError(f"cannot make a tensor from {type(data).__name__} {data!r:.80}: expected numbers (ints "
                            "within int64), nested lists of equal lengths, or an array")
        if dtype is not None:
            dt = _dt.as_dtype(dtype)
        elif arr.dtype.kind == "f":
            dt = _dt.default_float
        else:
            dt = _dt.from_numpy_kind(arr.dtype)
        if dt is _dt.int8 and arr.size and arr.dtype.kind in "iuf":  # numbers written out must fit, as NumPy's
            with np.errstate(invalid="ignore"):  # (and PyTorch's) torch.tensor([300], dtype=int8) raises too
                low, high = np.trunc(arr.min()), np.trunc(arr.max())
            if not -128 <= low <= high <= 127:  # (False for NaN)
                raise OverflowError(f"cannot make an int8 tensor of {data!r:.80}: its values must be numbers in "
                                    f"[-128, 127] (found {arr.min()} to {arr.max()})")
        arr = np.asarray(arr, dtype=dt.np, order="C")  # (np.ascontiguousarray would make 0-d data 1-d)
    return device.kernels.from_numpy(_dt.canonical(arr), device.index)


def _legacy_sizes(args: tuple, dtype):
    """The data of ``Tensor(*args)``: ``args[0]``, or zeros when ``args`` are sizes (ints, or none)."""
    if len(args) == 1 and type(args[0]) is not int:
        return args[0]
    if any(type(a) is not int for a in args):
        raise TypeError(f"Tensor(*sizes) takes ints, or Tensor(data) one argument; got {args!r:.80}")
    if any(a < 0 for a in args):
        raise ValueError(f"Tensor(*sizes): sizes must be non-negative, got {args}")
    return np.zeros(args or (0,), (_dt.as_dtype(dtype) if dtype is not None else _dt.default_float).np)


def tensor(data: Any, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (a number, nested lists, an array or a tensor)."""
    t = _new(Tensor)
    t._fill(data, dtype, device, requires_grad)
    return t


def full_like(x: Tensor, value, dtype=None, device=None) -> Tensor:
    if type(value) not in (int, float, bool):
        value = arguments.fill_value(value, "full_like")
    dev = x._device if device is None else Device(device)
    npd = x._data.dtype if dtype is None else _dt.as_dtype(dtype).np
    return _wrap(dev.kernels.full(x.shape, value, npd, dev.index), dev)


def zeros_like(x: Tensor, dtype=None, device=None) -> Tensor:
    return full_like(x, 0, dtype, device)


def ones_like(x: Tensor, dtype=None, device=None) -> Tensor:
    return full_like(x, 1, dtype, device)
