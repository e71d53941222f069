"""Tensors in a module's parameter and buffer slots, and copies of a module's structure.

The machinery under ``neurenix.func.functional_call`` and under MAML-style learners (``neurenix.meta``'s
``clone()`` / ``adapt()``): a slot may hold any tensor, not only a ``Parameter``. A computed one (the adapted
``w - lr * g``) keeps its graph, so a loss of the module backpropagates to what it was computed from, and
``named_parameters()`` lists it under the slot's name.

Names follow PyTorch's where it has them: ``swap_tensor`` and ``swap_tensors_dict`` are the methods of
``torch.nn.utils._named_member_accessor.NamedMemberAccessor``, ``reparametrize_module`` is
``torch.nn.utils.stateless._reparametrize_module`` (``tie_weights`` and ``strict`` as in
``torch.func.functional_call``). ``copy_structure`` is learn2learn's ``clone_module`` made general.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from ...tensor import Tensor
from ..module import Module

__all__ = ["copy_structure", "reparametrize_module", "swap_tensor", "swap_tensors_dict"]


def _slot(module: Module, name: str, caller: str) -> tuple[Module, str]:
    """The submodule owning the parameter or buffer ``name`` (dotted, as in ``named_parameters()``), and
    the attribute it has there. A name that fits no slot is a RuntimeError, the type of PyTorch's
    "Unexpected key(s)" (where PyTorch, not strict, would silently set an attribute of that name)."""
    if not isinstance(name, str):
        raise TypeError(f"{caller}: names must be strings, got {name!r}")
    *path, attr = name.split(".")
    owner = module
    for i, part in enumerate(path):
        child = owner.__dict__.get(part) if part in owner._module_names else None
        if child is None:
            raise RuntimeError(f"{caller}: {name!r} names no submodule of {type(module).__name__} "
                               f"({'.'.join(path[:i + 1])!r} is not one)")
        owner = child
    if attr not in owner._param_names and attr not in owner._buffer_names:
        raise RuntimeError(f"{caller}: {name!r} is not a parameter or buffer of {type(module).__name__}")
    return owner, attr


def _check_module(module, caller: str) -> None:
    if not isinstance(module, Module):
        raise TypeError(f"{caller}: expected a Module, got {type(module).__name__}")


def _named_slots(module: Module) -> Iterator[tuple[str, Tensor]]:
    """Every parameter and buffer slot that holds a tensor, by dotted name (a tensor in two slots comes twice;
    a submodule used twice, once)."""
    for prefix, m in module.named_modules():
        for names in (m._param_names, m._buffer_names):
            for attr in names:
                t = m.__dict__[attr]
                if t is not None:
                    yield (f"{prefix}.{attr}" if prefix else attr), t


def _check_value(name: str, tensor, caller: str) -> None:
    if tensor is not None and not isinstance(tensor, Tensor):
        raise TypeError(f"{caller}: {name!r} must be given a Tensor or None, got {type(tensor).__name__}")


def _put(owner: Module, attr: str, tensor: Tensor | None) -> Tensor | None:
    d = owner.__dict__  # not setattr: Module.__setattr__ admits only Parameters into parameter slots
    old, d[attr] = d[attr], tensor
    return old


def swap_tensor(module: Module, name: str, tensor: Tensor | None) -> Tensor | None:
    """Put ``tensor`` into the parameter or buffer slot ``name`` of ``module`` (dotted, as in
    ``named_parameters()``: ``"0.weight"``, ``"layer.bn.running_mean"``) and return what the slot held.

    ``tensor`` may be any Tensor, computed ones included (it is not made a Parameter), or None. Putting
    the returned value back restores the module. Raises RuntimeError naming ``name`` if it is no parameter or
    buffer of ``module``.
    """
    _check_module(module, "swap_tensor")
    _check_value(name, tensor, "swap_tensor")
    return _put(*_slot(module, name, "swap_tensor"), tensor)


def _has_ties(module: Module) -> bool:
    """Whether one tensor sits in two parameter or buffer slots (a quick walk that builds no names)."""
    ids = [id(t) for m in module.modules() for names in (m._param_names, m._buffer_names)
           for t in map(m.__dict__.__getitem__, names) if t is not None]
    return len(ids) != len(set(ids))


def _tied(module: Module, tensors: Mapping, slots: dict, caller: str) -> dict:
    """``tensors`` plus, for each name given, every other slot that holds the same tensor as that name's slot."""
    names: dict[int, list[str]] = {}
    for name, t in _named_slots(module):
        names.setdefault(id(t), []).append(name)
    out = dict(tensors)
    for name, value in tensors.items():
        owner, attr = slots[name]
        current = owner.__dict__[attr]
        for alias in names.get(id(current), ()) if current is not None else ():
            if alias in tensors and tensors[alias] is not value:
                raise ValueError(f"{caller}: {name!r} and {alias!r} are tied (one tensor) but were given "
                                 "different values; give one of them, or pass tie_weights=False")
            out[alias] = value
    return out


def _plan(module: Module, tensors: Mapping, tie_weights: bool, strict: bool,
          caller: str) -> list[tuple[str, Module, str, Tensor]]:
    """(name, owning submodule, attribute, new value) for each slot to change, every name checked first;
    errors name ``caller``, the public function called."""
    _check_module(module, caller)
    if not isinstance(tensors, Mapping):
        raise TypeError(f"{caller}: expected a dict of name -> tensor, got {type(tensors).__name__}")
    slots = {name: _slot(module, name, caller) for name in tensors}
    for name, value in tensors.items():
        _check_value(name, value, caller)
    plan = _tied(module, tensors, slots, caller) if tie_weights and _has_ties(module) else tensors
    if strict:
        missing = [n for n, _ in _named_slots(module) if n not in plan]
        if missing:  # RuntimeError: PyTorch's type for its "Missing key(s)"
            raise RuntimeError(f"{caller}: strict, but no tensors given for {missing}")
    return [(name, *(slots.get(name) or _slot(module, name, caller)), value) for name, value in plan.items()]


def swap_tensors_dict(module: Module, tensors: Mapping[str, Tensor | None], *, tie_weights: bool = False,
                      strict: bool = False) -> dict[str, Tensor | None]:
    """``swap_tensor`` for each name in ``tensors``; returns what each slot held, by name, in the order changed.

    With ``tie_weights``, a tensor that sits in several slots of ``module`` (weights tied across layers)
    is replaced in all of them when one of its names is given. With ``strict``, every parameter and
    buffer of ``module`` must be given (RuntimeError listing the missing names). All names are checked before
    anything changes, so an error leaves ``module`` as it was. To restore, swap the returned values back in
    reverse order (``reparametrize_module`` does).
    """
    plan = _plan(module, tensors, tie_weights, strict, "swap_tensors_dict")
    return {name: _put(owner, attr, value) for name, owner, attr, value in plan}


@contextmanager
def reparametrize_module(module: Module, tensors: Mapping[str, Tensor | None], *, tie_weights: bool = False,
                         strict: bool = False) -> Iterator[Module]:
    """Within the ``with`` block, ``module``'s slots hold ``tensors`` (see ``swap_tensors_dict`` for the
    arguments); on leaving it, even by an exception, they hold their own tensors again. Not thread-safe for
    one module shared across threads."""
    with _reparametrized(module, tensors, tie_weights, strict, "reparametrize_module"):
        yield module


@contextmanager
def _reparametrized(module: Module, tensors: Mapping, tie_weights: bool, strict: bool,
                    caller: str) -> Iterator[Module]:
    """``reparametrize_module`` for the public function ``caller``, which errors name."""
    old = [(owner, attr, _put(owner, attr, value))
           for _, owner, attr, value in _plan(module, tensors, tie_weights, strict, caller)]
    try:
        yield module
    finally:
        for owner, attr, value in reversed(old):
            _put(owner, attr, value)


def copy_structure(module: Module, parameter_fn: Callable[[Tensor], Tensor] | None = None) -> Module:
    """A copy of ``module`` and of each of its submodules, whose parameter slots hold ``parameter_fn(p)``
    for each parameter ``p`` (by default ``p`` itself).

    Each copy is a new object of the same class with the same attributes (no ``__init__`` runs; attributes
    that are not parameters or submodules, buffers included, are shared with the original). A submodule
    or parameter used twice stays one: ``parameter_fn`` is called once per distinct parameter, so tied
    weights stay tied. ``module`` itself is not changed. With ``parameter_fn=lambda p: p.clone()`` the
    copy's parameters are non-leaf tensors through which gradients reach ``module``'s: MAML's ``clone()``.
    """
    if not isinstance(module, Module):
        raise TypeError(f"copy_structure: expected a Module, got {type(module).__name__}")
    if parameter_fn is not None and not callable(parameter_fn):
        raise TypeError(f"copy_structure: parameter_fn must be callable, got {type(parameter_fn).__name__}")
    return _copy(module, parameter_fn or (lambda p: p), {})


def _copy(module: Module, fn: Callable[[Tensor], Tensor], memo: dict) -> Module:
    if id(module) in memo:
        return memo[id(module)]
    new = object.__new__(type(module))
    state = dict(module.__dict__)
    for kind in ("_param_names", "_buffer_names", "_module_names"):
        state[kind] = dict(state[kind])
    state["_nonpersistent"] = set(state["_nonpersistent"])
    memo[id(module)] = new
    for name in module._module_names:
        if state[name] is not None:
            state[name] = _copy(state[name], fn, memo)
    for name in module._param_names:
        p = state[name]
        if p is not None:
            if id(p) not in memo:
                memo[id(p)] = fn(p)
            state[name] = memo[id(p)]
    new.__dict__.update(state)
    return new
