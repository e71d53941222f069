"""GpuBackend: the driver opened once, why it cannot run, one device per index."""

import threading

from neurenix_gpu import GpuError
from neurenix_gpu.backend import GpuBackend
from neurenix_gpu.testing.driver import EmulatedDriver
from neurenix_gpu.testing.emulator import Emulator


def test_the_reason_a_driver_did_not_open_is_shown():
    opened = []

    def open_driver(error=OSError("no vendor driver (libvendor.so.1 not found)")):
        opened.append(error)
        raise error
    backend = GpuBackend(open_driver, "gpu_none")
    assert backend.unavailable_reason() == "no vendor driver (libvendor.so.1 not found)"
    assert backend.unavailable_reason() and len(opened) == 1  # probed once
    too_old = GpuBackend(lambda: open_driver(GpuError("driver too old")), "gpu_old")
    assert too_old.unavailable_reason() == "driver too old"


def test_a_driver_without_devices_is_unavailable():
    assert GpuBackend(lambda: EmulatedDriver(Emulator(devices=0)), "gpu_zero").unavailable_reason() == \
        "no gpu_zero device found"


def test_one_device_per_index_whichever_thread_asks_first():
    backend = GpuBackend(lambda: EmulatedDriver(Emulator(devices=2)), "gpu_two")
    assert backend.unavailable_reason() is None and backend.device_count() == 2
    got = []
    threads = [threading.Thread(target=lambda: got.append(backend.device(1))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(d) for d in got}) == 1 and got[0].name == "gpu_two:1" and backend.device(0) is not got[0]
