"""The Driver protocol (what the host layer may call) and VendorDriver, the part of it that CUDA's and HIP's
drivers share, over a toy vendor library."""

import threading

import numpy as np
import pytest
from neurenix_gpu import Driver, GpuError, OutOfMemoryError, VendorCalls, VendorDriver, declare
from neurenix_gpu.backend import GpuBackend
from neurenix_gpu.testing.driver import EmulatedDriver
from neurenix_gpu.testing.emulator import Emulator

PROTOCOL = {n for n in vars(Driver) if not n.startswith("_")} | set(Driver.__annotations__)


class ProtocolOnly:
    """A driver that lets the host layer reach only the protocol's members, and records what it reached."""

    def __init__(self, driver):
        self._driver, self.used, self.outside = driver, set(), set()

    def __getattr__(self, name):
        (self.used if name in PROTOCOL else self.outside).add(name)
        return getattr(self._driver, name)


def test_the_emulated_driver_is_a_driver():
    assert isinstance(EmulatedDriver(Emulator()), Driver)


def test_the_host_layer_calls_only_the_protocol():
    driver = ProtocolOnly(EmulatedDriver(Emulator(memory=8192)))
    backend = GpuBackend(lambda: driver, "gpu_protocol")
    assert backend.device_name(0) == "Emulated GPU 0 (host CPU)"
    k = backend.kernels()
    x = np.arange(6.0).reshape(2, 3)
    a, idx = k["from_numpy"](x, 0), k["from_numpy"](np.array([1, 0]), 0)
    out = k["sum"](k["add"](k["matmul"](a, k["permute"](a, (1, 0))), 1.0), (1,), False)
    np.testing.assert_array_equal(k["to_numpy"](k["getitem"](out, (idx,))), (x @ x.T + 1).sum(1)[[1, 0]])
    del a, out
    k["full"]((1500,), 0.0, np.float32, 0)  # beyond the memory left beside the cache: frees it, retries
    k["synchronize"](0)
    assert not driver.outside, f"the host layer called {driver.outside}, outside the Driver protocol"
    assert driver.used == PROTOCOL - {"name"}  # all of it (the name is for people)


# -- VendorDriver: a toy vendor whose library is a Python object with the vendor's names
_ffi, E = declare("""
typedef enum { TOY_OK = 0, TOY_OUT_OF_MEMORY = 2, TOY_BAD = 7 } toyStatus;
typedef enum { TOY_THREADS = 10, TOY_BX = 11, TOY_BY = 12, TOY_BZ = 13, TOY_GX = 14, TOY_GY = 15, TOY_GZ = 16 } toyAttr;
typedef void* toyPtr; typedef struct toyStream_st* toyStream; typedef struct toyMod_st* toyModule;
typedef struct toyFn_st* toyFunction;
""")


class ToyLib:
    """Records the calls it gets; ``status`` is what the next launch returns."""

    def __init__(self):
        self.calls, self.status, self.current = [], E["TOY_OK"], {}

    def toyAlloc(self, out, size):
        self.calls.append(("alloc", size))
        if size > 1000:
            return E["TOY_OUT_OF_MEMORY"]
        out[0] = _ffi.cast("toyPtr", 0x1000)
        return E["TOY_OK"]

    def toyFree(self, ptr):
        self.calls.append(("free", ptr))
        return E["TOY_OK"]

    def toyLaunch(self, fn, gx, gy, gz, bx, by, bz, shared, stream, params, extra):
        self.calls.append(("launch", (gx, gy, gz), (bx, by, bz)))
        return self.status


class ToyDriver(VendorDriver):
    name = "toy"
    calls = VendorCalls(ptr="toyPtr", alloc="toyAlloc", free="toyFree", htod="toyHtoD", dtoh="toyDtoH",
                        stream="toyStream", stream_type="toyStream", sync="toySync", load="toyLoad",
                        module_type="toyModule", function="toyFunction", function_type="toyFunction",
                        launch="toyLaunch", out_of_memory=E["TOY_OUT_OF_MEMORY"],
                        attributes=(E["TOY_THREADS"], (E["TOY_BX"], E["TOY_BY"], E["TOY_BZ"]),
                                    (E["TOY_GX"], E["TOY_GY"], E["TOY_GZ"])))

    def __init__(self):
        super().__init__(_ffi, ToyLib(), compiler=None)
        self.made_current = []

    def device_count(self):
        return 1

    def device_name(self, index):
        return "toy"

    def arch(self, index):
        return "toy1"

    def error_name(self, status):
        return _ffi.typeof("toyStatus").elements.get(status, "TOY_UNKNOWN")

    def make_current(self, index):
        self.made_current.append((threading.get_ident(), index))

    def attribute(self, attr, index):
        return 100 + attr

    def total_memory(self, index):
        return 1 << 20


def test_vendor_driver_implements_the_protocol():
    assert isinstance(ToyDriver(), Driver)
    assert ToyDriver().limits(0) == (110, (111, 112, 113), (114, 115, 116), 1 << 20)


def test_errors_name_the_call_and_the_vendor_error():
    d = ToyDriver()
    assert d.alloc(64) == 0x1000 and d.lib.calls == [("alloc", 64)]
    with pytest.raises(OutOfMemoryError, match=r"^toyAlloc failed: TOY_OUT_OF_MEMORY \(4096 bytes\)$"):
        d.alloc(4096)
    d.lib.status = E["TOY_BAD"]
    with pytest.raises(GpuError, match=r"toyLaunch failed: TOY_BAD \(grid \(2, 1, 1\), block \(64, 1, 1\)\)") as e:
        d.launch(None, (2, 1, 1), (64, 1, 1), _ffi.NULL, None)
    assert not isinstance(e.value, OutOfMemoryError)


def test_device_pointers_go_as_the_vendor_type():
    d = ToyDriver()
    d.free(0x2000)
    (_, ptr), = d.lib.calls
    assert _ffi.typeof(ptr) is _ffi.typeof("toyPtr") and int(_ffi.cast("uintptr_t", ptr)) == 0x2000


def test_activate_makes_current_once_per_thread_and_device():
    d = ToyDriver()
    for index in (0, 0, 1, 1, 0):
        d.activate(index)
    other = threading.Thread(target=lambda: d.activate(0))
    other.start()
    other.join()
    here = threading.get_ident()
    assert [i for t, i in d.made_current if t == here] == [0, 1, 0] and len(d.made_current) == 4
