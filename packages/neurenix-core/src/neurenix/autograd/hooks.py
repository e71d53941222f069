"""Tensor hooks: functions the backward pass calls with a tensor's gradient once it is complete.

``Tensor.register_hook(fn)`` (PyTorch's name and semantics): ``fn(grad)`` returns None (the gradient is kept)
or a tensor of the same shape that replaces it, both for what flows further back and for what lands in
``.grad`` or in ``autograd.grad``'s result. Hooks of a leaf live on the tensor; hooks of a computed tensor on
its node, so they run where the engine has that node's whole gradient, before its vjp. ``retain_grad()``
is a last hook of a computed tensor that accumulates the gradient into its ``.grad`` (in ``backward()`` and
in ``autograd.grad``, as PyTorch); an in-place change moves it to the tensor's new node, other hooks stay
with the value they were registered on.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable

_ids = itertools.count()
used = False  # whether any hook was ever registered (until then the backward pass looks for none)
RETAIN = "retain_grad"  # the key of retain_grad's entry: it runs after every hook


class RemovableHandle:
    """What ``register_hook`` returns: ``remove()`` takes the hook off again (a second call does nothing)."""

    __slots__ = ("_hooks", "id")

    def __init__(self, hooks: dict, key: int):
        self._hooks, self.id = weakref.ref(hooks), key

    def remove(self) -> None:
        hooks = self._hooks()
        if hooks is not None:
            hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class _Hooks(dict):
    """A tensor's (or node's) hooks in registration order: {handle id: function} (a dict subclass, so a
    handle can hold it weakly)."""

    __slots__ = ("__weakref__",)


def add(owner, fn: Callable) -> RemovableHandle:
    """Register ``fn`` on ``owner`` (a leaf tensor, or a node), which keeps its hooks in ``_hooks``."""
    global used
    used = True
    if getattr(owner, "_hooks", None) is None:  # (a tensor's slot is unset until its first hook)
        owner._hooks = _Hooks()
    key = next(_ids)
    owner._hooks[key] = fn
    return RemovableHandle(owner._hooks, key)


def retain(node, tensor) -> None:
    """Make ``node``'s backward pass accumulate its gradient into ``tensor.grad`` (held weakly)."""
    global used
    used = True
    if node._hooks is None:
        node._hooks = _Hooks()
    node._hooks[RETAIN] = weakref.ref(tensor)


def move_retain(old, new, tensor) -> None:
    """``tensor`` changed in place from node ``old`` to ``new``: its retained gradient is the new value's."""
    if old is not None and old._hooks and old._hooks.pop(RETAIN, None) is not None and new is not None:
        retain(new, tensor)


def run(hooks: dict, grad):
    """``grad`` through each hook in order, then into a retained ``.grad``."""
    for key, fn in list(hooks.items()):
        if key == RETAIN:
            continue
        new = fn(grad)
        if new is not None:
            grad = _checked(fn, new, grad)
    ref = hooks.get(RETAIN)
    t = None if ref is None else ref()
    if t is not None:
        t.grad = grad if t.grad is None else t.grad + grad
    return grad


def _checked(fn, new, grad):
    if not (hasattr(new, "_node") and hasattr(new, "_data")):
        raise TypeError(f"hook {getattr(fn, '__name__', fn)!r} returned a {type(new).__name__}: a hook returns "
                        "None (the gradient stays) or a Tensor that replaces it")
    if new.shape != grad.shape or new.dtype != grad.dtype or new.device != grad.device:
        raise RuntimeError(f"hook {getattr(fn, '__name__', fn)!r} changed the gradient from {grad.shape} "
                           f"{grad.dtype} on {grad.device} to {new.shape} {new.dtype} on {new.device}; it must "
                           "keep its shape, dtype and device")
    return new
