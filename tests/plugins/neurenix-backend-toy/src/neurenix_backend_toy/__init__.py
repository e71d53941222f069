"""A toy Neurenix backend: device type ``toy`` with two devices, ``toy:0`` and ``toy:1``.

It lives in the repository's tests: it proves that a third-party plugin goes through the whole path
(entry point, hook, kernel table, conformance suite) and that core never assumes its buffers are
NumPy arrays. Read ``plugin.py`` as the example of a backend.
"""

from .plugin import ToyBackend, ToyBuffer

__all__ = ["ToyBackend", "ToyBuffer"]
