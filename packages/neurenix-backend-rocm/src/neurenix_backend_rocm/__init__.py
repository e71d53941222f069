"""Neurenix backend for AMD GPUs: the kernels of neurenix-gpu compiled at run time with hiprtc, driven
through the HIP runtime (cffi, ABI mode). ``hip`` holds the driver; ``plugin`` the entry point."""

__version__ = "0.1.0"
