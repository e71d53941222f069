"""Neurenix backend for AMD GPUs: the kernels of neurenix-backend-cuda compiled at run time with hiprtc,
driven through the HIP runtime (cffi, ABI mode)."""

__version__ = "0.1.0"
