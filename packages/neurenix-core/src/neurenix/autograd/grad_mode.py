"""Whether ops record the graph: a per-thread switch, as in PyTorch."""

from __future__ import annotations

import functools
import threading


class _GradMode(threading.local):
    enabled = True  # the class attribute is every new thread's starting value


state = _GradMode()


def is_grad_enabled() -> bool:
    """True when ops on tensors that require grad record the graph (in this thread)."""
    return state.enabled


class no_grad:
    """Context manager (or decorator) in which no graph is recorded."""

    mode = False

    def __enter__(self) -> None:
        self.prev = state.enabled
        state.enabled = self.mode

    def __exit__(self, *exc) -> None:
        state.enabled = self.prev

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev, state.enabled = state.enabled, mode
            try:
                return fn(*args, **kwargs)
            finally:
                state.enabled = prev
        return wrapper


class enable_grad(no_grad):
    """Context manager (or decorator) that turns recording back on, for example inside ``no_grad``."""

    mode = True


class set_grad_enabled(no_grad):
    """Set recording on or off: takes effect at once, and as a context manager restores it after."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self.prev = state.enabled
        state.enabled = self.mode

    def __enter__(self) -> None:
        pass  # already switched by __init__

    def __call__(self, fn):
        state.enabled = self.prev  # used as a decorator: only calls of fn switch
        return super().__call__(fn)


class inference_mode(no_grad):
    """PyTorch's ``inference_mode``: here the same as ``no_grad`` (neurenix has no separate inference tensors).
    ``inference_mode(False)`` leaves recording as it is; also a decorator, with or without the call."""

    def __new__(cls, mode=True):
        if callable(mode):  # @inference_mode, bare
            return no_grad()(mode)
        return super().__new__(cls)

    def __init__(self, mode: bool = True):
        self.mode = False if mode else None

    def __enter__(self) -> None:
        self.prev = state.enabled
        if self.mode is not None:
            state.enabled = self.mode

    def __call__(self, fn):
        return fn if self.mode is None else super().__call__(fn)
