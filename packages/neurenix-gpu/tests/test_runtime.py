"""A device of the host layer: the caching allocator, buffers, launches checked against the device's limits."""

import numpy as np
import pytest
from neurenix_gpu import GpuError, OutOfMemoryError
from neurenix_gpu.runtime import GpuBuffer
from neurenix_gpu.testing.emulator import Emulator


def test_allocations_are_rounded_and_reused(make_backend):
    dev = make_backend().device(0)
    a = GpuBuffer(dev, (3,), np.dtype(np.float32))
    big = GpuBuffer(dev, (300_000,), np.dtype(np.float64))  # 2.4 MB: whole MiB above 1 MiB
    assert (a.mem.size, big.mem.size) == (512, 3 << 20)
    ptr = a.ptr
    del a
    assert dev.allocator.cached == 512
    b = GpuBuffer(dev, (100,), np.dtype(np.int64))  # 800 bytes: another size class, not the cached block
    c = GpuBuffer(dev, (2, 2), np.dtype(bool))
    assert c.ptr == ptr and b.ptr != ptr and dev.allocator.cached == 0
    assert dev.allocator.in_use == 512 + 1024 + (3 << 20)


def test_out_of_memory_frees_the_cache_then_names_the_sizes(make_backend):
    dev = make_backend(Emulator(memory=4096)).device(0)
    keep = GpuBuffer(dev, (256,), np.dtype(np.float32))                 # 1024 bytes
    GpuBuffer(dev, (512,), np.dtype(np.float32))                        # 2048, dies at once: cached
    GpuBuffer(dev, (700,), np.dtype(np.float32))                        # 2800 -> 3072: fits once the cache is freed
    assert dev.allocator.cached == 3072 and keep.size == 256            # the last one is cached now
    with pytest.raises(OutOfMemoryError, match=r"out of memory on gpu_emu:0: cannot allocate 8000 bytes \(8192 "
                                               r"rounded\); 1024 bytes held by live tensors, 3072 cached bytes "
                                               r"freed before retrying, device total 4096 bytes"):
        GpuBuffer(dev, (1000,), np.dtype(np.float64))


def test_reshape_shares_memory(kernels):
    x = kernels["from_numpy"](np.arange(6.0), 0)
    y = kernels["reshape"](x, (2, 3))
    assert y.mem is x.mem and y.ptr == x.ptr and y.shape == (2, 3)
    np.testing.assert_array_equal(kernels["to_numpy"](y), np.arange(6.0).reshape(2, 3))


def test_a_launch_beyond_the_limits_names_the_kernel(make_backend):
    dev = make_backend(Emulator(max_threads=128)).device(0)
    with pytest.raises(GpuError, match=r"launch of kernel 'k' with grid \(1, 1, 1\) and block \(256, 1, 1\) exceeds "
                                       r"the limits of gpu_emu:0: at most 128 threads per block"):
        dev.check_launch("k", (1, 1, 1), (256, 1, 1))
    with pytest.raises(GpuError, match="grid"):
        dev.check_launch("k", (1, 0, 1), (32, 1, 1))
    dev.check_launch("k", (70000, 65535, 1), (128, 1, 1))


def test_grid_1d_never_exceeds_the_grid(make_backend):
    dev = make_backend(Emulator(max_grid=(100, 1, 1))).device(0)
    assert dev.grid_1d(0, 256) == (1, 1, 1) and dev.grid_1d(257, 256) == (2, 1, 1)
    assert dev.grid_1d(10**9, 256) == (100, 1, 1)  # the kernels loop over the rest
