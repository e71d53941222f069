"""Neurenix backend for NVIDIA GPUs: CUDA C kernels compiled at run time with NVRTC, driven through the
CUDA driver API (cffi, ABI mode). ``neurenix_backend_cuda.gpu`` is shared with neurenix-backend-rocm."""

__version__ = "0.1.0"
