"""What Neurenix's GPU backends share: one kernel source, the host layer over a :class:`Driver`, and
a host emulator for tests. A vendor package (neurenix-backend-cuda, -rocm) adds only its driver.

Rooms: ``driver`` (the Driver protocol and the helpers vendor drivers are built from), ``source`` (the
kernel source, its disk cache, the parameter structs), ``runtime`` (a device: allocator, buffers,
checked launches), ``blas`` (strided-batched GEMM through cuBLAS or rocBLAS), ``ops`` (the kernel table,
by family), ``backend`` (the neurenix Backend), ``testing`` (the emulator, and ABI checks against
vendor headers).
"""

from .driver import Driver, Limits, VendorCalls, VendorDriver, declare, dlopen_first
from .errors import CompileError, GpuError, OutOfMemoryError

__version__ = "0.1.0"

__all__ = ["CompileError", "Driver", "GpuError", "Limits", "OutOfMemoryError", "VendorCalls", "VendorDriver",
           "declare", "dlopen_first"]
