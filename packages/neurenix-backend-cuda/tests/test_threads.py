"""The host layer from several threads and on several devices: what the driver keeps per host thread (the
current context) and what the backend shares between threads (allocator cache, module, BLAS handle).
The conformance suite's two-thread test runs the whole kernel set this way; these pin down the details."""

import threading

import numpy as np
import pytest
from neurenix_gpu.testing import serving
from neurenix_gpu.testing.emulator import Emulator

import neurenix as nx

from .conftest import emulated_backend
from .stand_ins import INVALID_CONTEXT


@pytest.fixture(scope="module")
def two_devices():
    emulator = Emulator(devices=2)
    with serving(emulated_backend(emulator, "cuda_thr", blas=True), "cuda_thr") as backend:
        yield backend, emulator


def test_memory_is_allocated_on_its_own_device(two_devices):
    """A tensor of device 1 gets device 1's memory even when the thread last worked on device 0."""
    owners = two_devices[1].owners
    a = nx.ones(3, device="cuda_thr:1")
    b = nx.ones(5000, device="cuda_thr:0")
    c = nx.full((7000,), 2.0, device="cuda_thr:1")  # sizes the allocators have not cached
    assert (owners[a._data.ptr], owners[b._data.ptr], owners[c._data.ptr]) == (1, 0, 1)


def test_a_new_thread_makes_the_context_current_before_any_call(two_devices):
    """The driver's current context is per thread: a thread that never used the device allocates,
    launches, multiplies (BLAS) and reads without being told to."""
    x = nx.tensor(np.arange(6.0).reshape(2, 3), device="cuda_thr:1")
    got = []
    worker = threading.Thread(target=lambda: got.append((x @ x.T + nx.ones(1, device="cuda_thr:1")).numpy()))
    worker.start()
    worker.join()
    a = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(got[0], a @ a.T + 1)


def test_the_stand_in_refuses_what_the_driver_refuses(two_devices):
    """Without a current context, and for a kernel of another context, the fake libcuda fails as the driver."""
    from neurenix_backend_cuda.cuda import ffi

    backend, emulator = two_devices
    nx.ones(2, device="cuda_thr:0").numpy()  # loads device 0's module in this thread
    fake = backend.driver.lib
    fn = next(f for f, (_, _, device) in emulator.functions.items() if device == 0)
    status = []
    worker = threading.Thread(target=lambda: status.append(fake.cuMemAlloc_v2(ffi.new("CUdeviceptr*"), 16)))
    worker.start()
    worker.join()
    fake.cuCtxSetCurrent(ffi.cast("void*", 2))  # device 1's context, behind the backend's back
    try:
        launch = fake.cuLaunchKernel(ffi.cast("void*", fn), 1, 1, 1, 1, 1, 1, 0, ffi.NULL, ffi.NULL, ffi.NULL)
    finally:
        backend.driver._thread.current = None  # so that the backend makes its context current again
    assert status == [INVALID_CONTEXT] and launch == INVALID_CONTEXT
