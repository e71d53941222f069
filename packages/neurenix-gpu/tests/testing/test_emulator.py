"""The emulator itself: memory with bounds, a host build of CUDA-style kernels (barriers included), launch
limits, modules bound to a device."""

import numpy as np
import pytest
from cffi import FFI
from neurenix_gpu.testing.emulator import Emulator

_ffi = FFI()
# a block reduction through shared memory: wrong unless __syncthreads is a real barrier across the block
SOURCE = """
typedef long long i64;
extern "C" __global__ void block_sum(i64* out, const i64* x) {
  __shared__ i64 part[64];
  part[threadIdx.x] = x[blockIdx.x * blockDim.x + threadIdx.x];
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = part[0];
}
"""


@pytest.fixture(scope="module")
def emulator():
    return Emulator(devices=2, memory=1 << 16, max_threads=64)


@pytest.fixture(scope="module")
def block_sum(emulator):
    ok, log, image = emulator.compile(SOURCE)
    assert ok, log
    return emulator.function(emulator.load(image, 1), "block_sum")


def _params(*addresses):
    values = _ffi.new("unsigned long long[]", addresses)
    return values, _ffi.new("void*[]", [values + i for i in range(len(addresses))])


def test_a_launch_runs_every_block_with_barriers(emulator, block_sum):
    x = np.arange(3 * 64, dtype=np.int64)
    src, out = emulator.alloc(x.nbytes, 1), emulator.alloc(3 * 8, 1)
    emulator.array(src, np.int64, (x.size,), (1,))[:] = x
    _values, params = _params(out, src)  # the values must live through the launch
    assert emulator.launch(block_sum, (3, 1, 1), (64, 1, 1), int(_ffi.cast("uintptr_t", params)))
    np.testing.assert_array_equal(emulator.array(out, np.int64, (3,), (1,)), x.reshape(3, 64).sum(1))
    assert emulator.functions[block_sum][2] == 1 and emulator.owners[src] == 1


def test_launches_beyond_the_limits_run_nothing(emulator, block_sum):
    launches = emulator.launches
    assert not emulator.launch(block_sum, (1, 1, 1), (128, 1, 1), 0)      # threads per block
    assert not emulator.launch(block_sum, (1, 1, 1), (1, 1, 65), 0)       # block z
    assert emulator.launches == launches


def test_memory_outside_an_allocation_is_not_reachable(emulator):
    addr = emulator.alloc(64)
    assert emulator.array(addr, np.float64, (8,), (1,)) is not None
    assert emulator.array(addr, np.float64, (9,), (1,)) is None           # one past the end
    assert emulator.array(addr + 4, np.float64, (2,), (1,)) is None       # misaligned
    assert emulator.array(addr, np.float64, (2, 2), (7, 1)) is None       # a row beyond
    assert emulator.alloc(1 << 20) is None                                # beyond the capacity
    used = emulator.used
    emulator.free(addr)
    assert emulator.used == used - 64


def test_the_current_device_is_per_thread(emulator):
    import threading
    emulator.make_current(1)
    seen = []
    worker = threading.Thread(target=lambda: seen.append(emulator.current()))
    worker.start()
    worker.join()
    assert emulator.current() == 1 and seen == [None]


def test_a_compile_error_gives_the_log(emulator):
    ok, log, image = emulator.compile('extern "C" __global__ void k(int* x) { x[0] = undeclared; }')
    assert not ok and "undeclared" in log and image == b""
