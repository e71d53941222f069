"""Running a module with parameters passed in: ``functional_call``."""

from __future__ import annotations

from collections.abc import Mapping

from .nn.module import Module


def _owner(module: Module, dotted: str) -> tuple[Module, str]:
    *path, attr = dotted.split(".")
    m = module
    for part in path:
        m = m.__dict__.get(part)
        if not isinstance(m, Module):
            raise KeyError(f"functional_call: {dotted!r} names no submodule of {type(module).__name__}")
    if attr not in m._param_names and attr not in m._buffer_names:
        raise KeyError(f"functional_call: {dotted!r} is not a parameter or buffer of {type(module).__name__}")
    return m, attr


def functional_call(module: Module, params: Mapping, *args, **kwargs):
    """Call ``module(*args, **kwargs)`` with the tensors in ``params`` (dotted names, as in
    ``named_parameters()``) standing in for its parameters and buffers; the module is left unchanged.

    The tensors may carry a graph (MAML's adapted weights do), so gradients flow back to whatever they
    were computed from. Names not given keep the module's own tensors. As with PyTorch's version,
    ``args`` may also be given as one tuple. Not thread-safe for one module shared across threads.
    """
    if len(args) == 1 and isinstance(args[0], tuple):
        args = args[0]
    swapped = []
    try:
        for name, value in params.items():
            owner, attr = _owner(module, name)
            swapped.append((owner, attr, owner.__dict__[attr]))
            owner.__dict__[attr] = value
        return module(*args, **kwargs)
    finally:
        for owner, attr, old in reversed(swapped):
            owner.__dict__[attr] = old
