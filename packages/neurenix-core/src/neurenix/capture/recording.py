"""Whether this thread is tracing a program, and the calls through which host work joins the trace.

Kernel calls are recorded by the tracer's stand-in kernel tables; host work that must run again at every
replay (index checks, random draws, the random state) goes through :func:`host`; host work that cannot be
replayed (reading a computed value, reseeding) calls :func:`refuse`, which makes the call run eagerly.
Outside a trace each is a thread-local read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_local = threading.local()


def tracer():
    """The tracer recording on this thread, or None (also while it runs a recorded step itself)."""
    t = getattr(_local, "tracer", None)
    return None if t is None or t.paused else t


def host(fn: Callable, *args):
    """``fn(*args)``, recorded as one step of the program when this thread is tracing, so that replays run it
    too. Buffers among ``args`` (also inside tuples and lists) are the program's values at that point."""
    t = tracer()
    return fn(*args) if t is None else t.record(getattr(fn, "__name__", "host"), fn, args, host=True)


def refuse(reason: str) -> None:
    """Mark the trace on this thread (if any) uncapturable for ``reason``: the call goes on eagerly and its
    program is dropped."""
    t = tracer()
    if t is not None:
        t.fail(reason)
