"""neurenix-backend-cpu: C kernels (cffi, OpenMP) for Neurenix's ``cpu`` device.

Installed, it is found through the ``neurenix.backends`` entry point and serves ``cpu`` at a higher
priority than core's NumPy kernels, overriding only those its C code runs faster; nothing to import.
The kernels live in one module per family (elementwise, reductions, softmax, norm, windows, linalg,
optim), each with its C header in ``csrc/``; ``plugin`` holds the backend and its kernel table.
"""

__version__ = "0.1.0"

from .plugin import KERNELS, CpuBackend

__all__ = ["KERNELS", "CpuBackend"]
