"""Neurenix backend for WebGPU: tensors in GPU storage buffers, WGSL kernels through wgpu.

Device type ``webgpu`` (one device, ``webgpu:0``: the adapter wgpu-native picks). float32, with
int64 stored as 32-bit integers (values outside int32 are refused) and bool as 32-bit words;
float64 is refused with a clear error. See docs/webgpu.md for the design.
"""

from .plugin import WebGPUBackend, reset_stats, stats
from .runtime import KernelCompileError, WebGPUBuffer

__version__ = "0.1.0"
__all__ = ["KernelCompileError", "WebGPUBackend", "WebGPUBuffer", "reset_stats", "stats"]
