"""Neurenix backend for NVIDIA GPUs: the kernels of neurenix-gpu compiled at run time with NVRTC, driven
through the CUDA driver API (cffi, ABI mode). ``cuda`` holds the driver; ``plugin`` the entry point."""

__version__ = "0.1.0"
