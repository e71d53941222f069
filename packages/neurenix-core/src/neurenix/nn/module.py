"""``Module`` and ``Parameter``: PyTorch's names and semantics.

Parameters, buffers and submodules live in the instance ``__dict__`` (attribute access is plain and
fast); ``Module`` keeps the ordered names of each kind beside them, which is all that
``named_parameters``, ``state_dict`` and friends need.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import Iterator, Mapping

from .. import dtypes as _dt
from ..device import Device
from ..ops.transfer import to_device
from ..tensor import Tensor, zeros_like

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _key_errors(module: str, missing: list, unexpected: list) -> str:
    """PyTorch's message for a strict load_state_dict that does not fit, which scripts may match on."""
    lines = [f"Error(s) in loading state_dict for {module}:"]
    for what, keys in (("Missing", missing), ("Unexpected", unexpected)):
        if keys:
            quoted = ", ".join(f'"{k}"' for k in keys)
            lines.append(f"\t{what} key(s) in state_dict: {quoted}.")
    return "\n".join(lines)


class Parameter(Tensor):
    """A tensor that is a module's learnable parameter: registered when assigned to a Module."""

    __slots__ = ()

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True):
        if data is None:
            data = Tensor([])
        if isinstance(data, Tensor):  # share the buffer, as torch.nn.Parameter does
            self._data, self._device = data._data, data._device
            self.grad, self._node, self._shared, self.requires_grad, self._version = None, None, None, False, 0
        else:
            super().__init__(data)
        if requires_grad:
            self.requires_grad_()

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and models: subclass it, assign layers and Parameters in ``__init__``, and
    write ``forward``."""

    training: bool

    stacks_tasks = False  # whether this layer takes (tasks, rows, ...) inputs as they are (see nn.task_axis)

    def __init__(self):
        d = self.__dict__
        d["training"] = True
        d["_param_names"] = {}  # ordered sets of the attribute names of each kind
        d["_buffer_names"] = {}
        d["_module_names"] = {}
        d["_nonpersistent"] = set()

    # -- registration ----------------------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        if "_param_names" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() is called "
                                 f"(call super().__init__() first in {type(self).__name__}.__init__)")
        if isinstance(value, Parameter):
            self._register(self._param_names, name)
        elif isinstance(value, Module):
            self._register(self._module_names, name)
        elif name in self._param_names and value is not None:
            raise TypeError(f"cannot assign a {type(value).__name__} to parameter {name!r} of "
                            f"{type(self).__name__}: expected a Parameter or None")
        elif name in self._buffer_names and value is not None and not isinstance(value, Tensor):
            raise TypeError(f"cannot assign a {type(value).__name__} to buffer {name!r}: expected a Tensor or None")
        elif name in self._module_names and value is not None:
            raise TypeError(f"cannot assign a {type(value).__name__} to submodule {name!r}: expected a Module or None")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._forget(name)
        object.__delattr__(self, name)

    def _forget(self, name: str) -> None:
        for names in (self._param_names, self._buffer_names, self._module_names):
            names.pop(name, None)
        self._nonpersistent.discard(name)

    def _register(self, names: dict, name: str) -> None:
        """Record ``name`` as one of ``names``, keeping its place if it already was one (as PyTorch does)."""
        if name not in names:
            self._forget(name)
            names[name] = None
        self._nonpersistent.discard(name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is None:
            self._register(self._param_names, name)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register state that is not a parameter (running statistics, say); it goes into state_dict
        unless ``persistent=False``, and moves with ``to()``."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"buffer {name!r} must be a Tensor or None, got {type(tensor).__name__}")
        self._register(self._buffer_names, name)
        if not persistent:
            self._nonpersistent.add(name)
        object.__setattr__(self, name, tensor)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` as submodule ``name`` (PyTorch's checks: a str, no ".", not an attribute already)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{name!r} must be a Module, got {type(module).__name__}")
        if not isinstance(name, str):
            raise TypeError(f"module name should be a string, got {type(name).__name__}")
        if "." in name or not name:
            raise KeyError(f'module name can\'t contain ".", nor be empty, got {name!r}')
        if name not in self._module_names and hasattr(self, name):
            raise KeyError(f"attribute '{name}' already exists")
        self._register(self._module_names, name)
        object.__setattr__(self, name, module)

    # -- traversal -------------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name in self._module_names:
            m = self.__dict__[name]
            if m is not None:
                yield name, m

    def children(self) -> Iterator[Module]:
        return (m for _, m in self.named_children())

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            kids = [(f"{name}.{n}" if name else n, c) for n, c in m.named_children()]
            stack.extend(reversed(kids))

    def get_submodule(self, target: str) -> Module:
        """The submodule at dotted path ``target`` (``"encoder.0"``; ``""`` is this module), as PyTorch's."""
        m = self
        for part in target.split(".") if target else ():
            child = m.__dict__.get(part) if part in m._module_names else None
            if child is None:
                raise AttributeError(f"{type(m).__name__} has no submodule {part!r} (looking up {target!r})")
            m = child
        return m

    def modules(self) -> Iterator[Module]:
        seen = set()
        stack = [self]
        while stack:
            m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield m
            d = m.__dict__
            stack.extend(d[n] for n in reversed(m._module_names) if d[n] is not None)

    def _named(self, kind: str, recurse: bool) -> Iterator[tuple[str, Tensor]]:
        seen = set()
        mods = self.named_modules() if recurse else [("", self)]
        for prefix, m in mods:
            for name in getattr(m, kind):
                t = m.__dict__[name]
                if t is not None and id(t) not in seen:
                    seen.add(id(t))
                    yield (f"{prefix}.{name}" if prefix else name), t

    def _tensors(self, kind: str, recurse: bool) -> Iterator[Tensor]:
        """Like ``_named`` without building names: optimizers and zero_grad call this every step."""
        seen = set()
        for m in self.modules() if recurse else (self,):
            d = m.__dict__
            for name in getattr(m, kind):
                t = d[name]
                if t is not None and id(t) not in seen:
                    seen.add(id(t))
                    yield t

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        for name, p in self._named("_param_names", recurse):
            yield (f"{prefix}.{name}" if prefix else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        return self._tensors("_param_names", recurse)

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        for name, b in self._named("_buffer_names", recurse):
            yield (f"{prefix}.{name}" if prefix else name), b

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        return self._tensors("_buffer_names", recurse)

    def apply(self, fn) -> Module:
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict:
        """Parameters and persistent buffers by dotted name (``"0.weight"``), detached, sharing buffers."""
        out = OrderedDict()
        for prefix, m in self.named_modules():
            for names, persistent_only in ((m._param_names, False), (m._buffer_names, True)):
                for name in names:
                    t = m.__dict__[name]
                    if t is not None and not (persistent_only and name in m._nonpersistent):
                        out[f"{prefix}.{name}" if prefix else name] = t.detach()
        return out

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values from ``state_dict`` into this module's parameters and buffers (shapes must match).

        With ``strict`` (the default) missing or unexpected keys raise a RuntimeError listing them, as PyTorch's;
        without, they are returned as ``(missing_keys, unexpected_keys)``.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict: state_dict must be a dict of name -> tensor, got "
                            f"{type(state_dict).__name__}")
        own = {}
        for prefix, m in self.named_modules():
            for names in (m._param_names, m._buffer_names):
                for name in names:
                    if m.__dict__[name] is not None and not (names is m._buffer_names and name in m._nonpersistent):
                        own[f"{prefix}.{name}" if prefix else name] = m.__dict__[name]
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise RuntimeError(_key_errors(type(self).__name__, missing, unexpected))
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            value = value if isinstance(value, Tensor) else Tensor(value)
            if value.shape != target.shape:
                raise ValueError(f"load_state_dict: {key!r} has shape {value.shape} in the state dict but "
                                 f"{target.shape} in the module")
            if target.dtype is _dt.int8 and value.dtype is not _dt.int8:  # casting would truncate, not quantize
                raise TypeError(f"load_state_dict: {key!r} is {value.dtype} in the state dict but int8 in the module "
                                "(a quantized layer's weights): load the float state into the float model, then "
                                "quantize it")
            value = to_device(value.detach(), target._device).to(target.dtype)
            target._set(target._device.kernels.copy(value._data), "load_state_dict")
        return IncompatibleKeys(missing, unexpected)

    # -- modes, devices, grads -------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            m.__dict__["training"] = bool(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if p.grad is not None:
                p.grad = None if set_to_none else zeros_like(p.grad)

    def to(self, *args, **kwargs) -> Module:
        """Move parameters and buffers to a device and/or float dtype, in place (returns self)."""
        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        for a in args:
            if isinstance(a, (_dt.DType, type)) or (isinstance(a, str) and a in {d.name for d in _dt.DTYPES}):
                dtype = a
            else:
                device = a
        dev = Device(device) if device is not None else None
        dt = _dt.as_dtype(dtype) if dtype is not None else None
        for t in [*self.parameters(), *self.buffers()]:
            new = t.detach()
            if dt is not None and t.is_floating_point():
                new = new.to(dt)
            if dev is not None:
                new = to_device(new, dev)
            t._data, t._device = new._data, new._device
            if t.grad is not None:
                t.grad = to_device(t.grad, t._device).to(t.dtype)
        return self

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self, device: int | None = None) -> Module:
        """``to("cuda")`` (or ``cuda:device``), as PyTorch's: a DeviceError says why where CUDA cannot run."""
        return self.to("cuda" if device is None else f"cuda:{int(device)}")

    def float(self) -> Module:
        return self.to(_dt.float32)

    def double(self) -> Module:
        return self.to(_dt.float64)

    # -- calling ---------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        kids = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self.named_children()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ")" if not kids else head + "\n  " + "\n  ".join(kids) + "\n)"
