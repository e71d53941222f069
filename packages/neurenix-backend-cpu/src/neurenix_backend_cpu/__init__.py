"""neurenix-backend-cpu: C kernels (cffi, OpenMP) for Neurenix's ``cpu`` device.

Installed, it is found through the ``neurenix.backends`` entry point and serves ``cpu`` at a higher
priority than core's NumPy kernels, overriding only those its C code runs faster; nothing to import.
"""

__version__ = "0.1.0"

from .plugin import ALL_KERNELS, KERNELS, CpuBackend

__all__ = ["ALL_KERNELS", "KERNELS", "CpuBackend"]
