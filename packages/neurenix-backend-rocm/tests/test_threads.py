"""HIP's current device is per host thread (device 0 until hipSetDevice): a thread working on device 1
must set it itself, or its launches go to device 0, where device 1's kernels are not loaded."""

import threading

import numpy as np
import pytest
from neurenix_gpu.testing import serving
from neurenix_gpu.testing.emulator import Emulator

import neurenix as nx

from .conftest import emulated_backend


@pytest.fixture(scope="module")
def two_devices():
    with serving(emulated_backend(Emulator(devices=2), "rocm_thr"), "rocm_thr") as backend:
        yield backend


def test_a_new_thread_works_on_device_1(two_devices):
    a = np.arange(6.0).reshape(2, 3)
    x = nx.tensor(a, device="rocm_thr:1")
    (x * 2).numpy()  # device 1's kernels loaded, and device 1 current, in this thread
    got, errors = [], []

    def work():
        try:
            got.append((x * 2 + x.sum()).numpy())
        except Exception as e:  # re-raised below, in the test's thread
            errors.append(e)
    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert not errors, errors
    np.testing.assert_array_equal(got[0], a * 2 + a.sum())
