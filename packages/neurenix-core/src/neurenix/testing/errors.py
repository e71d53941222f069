"""The error contract of neurenix's public API, for tests (neurenix's own, and those of packages built on it).

Bad input raises one of ``DOCUMENTED`` (``neurenix.errors`` subclasses them), from neurenix's own code,
with a message that names the argument and the value. Anything else (a ZeroDivisionError, a KeyError,
an AttributeError, NumPy's own complaint) is an error escaping from the insides.
"""

from __future__ import annotations

#: the exception types bad input may raise (MemoryError: a tensor too large to allocate; OverflowError: an
#: int64 result a device cannot hold, such as WebGPU's 32-bit integers, reported at the next read)
DOCUMENTED = (ValueError, TypeError, IndexError, RuntimeError, MemoryError, OverflowError)


def raised_inside(e: BaseException, package: str = "neurenix") -> bool:
    """Whether ``e`` was raised by code outside ``package`` (NumPy, the standard library...), that is, the
    innermost frame of its traceback is not in a module whose path names ``package``."""
    tb, last = e.__traceback__, None
    while tb is not None:
        last, tb = tb.tb_frame.f_code.co_filename, tb.tb_next
    if last is None:
        return False
    path = last.replace("\\", "/").split("/site-packages/")[-1]
    return package not in path


def check_error(e: BaseException, package: str = "neurenix") -> None:
    """Raise an AssertionError saying why, unless ``e`` keeps the contract above."""
    if not isinstance(e, DOCUMENTED):
        raise AssertionError(f"{type(e).__name__} escaped: {e}") from e
    if raised_inside(e, package) and not isinstance(e, MemoryError):  # an allocation may fail anywhere
        raise AssertionError(f"{type(e).__name__} raised outside {package}: {e}") from e


__all__ = ["DOCUMENTED", "check_error", "raised_inside"]
