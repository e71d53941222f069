"""The errors of the GPU backends: each message names the vendor call, its error, and what was asked."""

from __future__ import annotations


class GpuError(RuntimeError):
    """A vendor call failed; the message names the call, the error, and what was asked."""


class OutOfMemoryError(GpuError):
    """The device could not allocate (after the caching allocator gave its cache back)."""


class CompileError(GpuError):
    """NVRTC or hiprtc rejected a kernel source; the message holds the compiler's log."""
