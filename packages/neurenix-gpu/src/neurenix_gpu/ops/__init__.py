"""The neurenix kernel set on a GPU, by family: Python that shapes the launches of nx_kernels.cu.

``launch`` (views, geometry plans, the per-op path), ``elementwise``, ``reduce``, ``movement`` (reshape,
permute, indexing, cat, pad), ``linalg`` (matmul, unfold, fold), ``conv`` (convolution and its gradients as
implicit GEMMs).
"""

from __future__ import annotations

from collections.abc import Callable

from . import conv, elementwise, linalg, movement, reduce


def make_kernels(device: Callable) -> dict:
    """The kernel table of a backend; ``device(index)`` gives its GpuDevice."""
    return {
        **elementwise.KERNELS, **reduce.KERNELS, **movement.KERNELS, **linalg.KERNELS, **conv.KERNELS,
        "from_numpy": lambda array, index: device(index).upload(array),
        "to_numpy": lambda x: x.device.download(x),
        "full": lambda shape, value, dtype, index: elementwise.full(device(index), shape, value, dtype),
        "synchronize": lambda index: device(index).synchronize(),
    }
