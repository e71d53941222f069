"""Backends: the hookspec, the kernel set they implement, and how they are found and chosen.

See ``docs/backends.md`` for a guide to writing a backend plugin.
"""

from .backend import Backend
from .compositions import compose, reference
from .hookspecs import ENTRY_POINT_GROUP, hookimpl, hookspec
from .kernels import KERNEL_API_VERSION, KERNELS, OPTIONAL, REQUIRED, SUPPORTED_API_VERSIONS
from .registry import (
    BackendStatus,
    KernelTable,
    get_num_threads,
    kernel_providers,
    list_backends,
    register,
    set_num_threads,
    unregister,
)
from .report import describe

__all__ = [
    "ENTRY_POINT_GROUP",
    "KERNELS",
    "KERNEL_API_VERSION",
    "OPTIONAL",
    "REQUIRED",
    "SUPPORTED_API_VERSIONS",
    "Backend",
    "BackendStatus",
    "KernelTable",
    "compose",
    "describe",
    "get_num_threads",
    "hookimpl",
    "hookspec",
    "kernel_providers",
    "list_backends",
    "reference",
    "register",
    "set_num_threads",
    "unregister",
]
