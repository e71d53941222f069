"""Capturing a function's kernel calls once and replaying them: ``neurenix.compile``.

- ``recording``: whether this thread is tracing, and the calls through which host work joins a trace;
- ``trace``: the tracer, which records every kernel call a function makes into a ``Program``;
- ``state``: what a call reads and may change (tensors reachable from its arguments) and its guard key;
- ``program``: the recorded program, and core's replay of it (generated straight-line Python);
- ``compiled``: ``compile(fn)``, the cache of programs by guard key, and the fallback to eager.

This file imports none of them: ops import ``recording``, which must not pull in the rest.
"""
