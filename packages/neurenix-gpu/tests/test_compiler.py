"""RtcCompiler, the part NVRTC's and hiprtc's compilers share, over the emulator's run-time compiler (which
builds for the host) under a toy prefix."""

import pytest
from cffi import FFI
from neurenix_gpu import CompileError
from neurenix_gpu.compiler import RtcCompiler
from neurenix_gpu.source import kernel_source
from neurenix_gpu.testing.emulator import Emulator
from neurenix_gpu.testing.emulator.rtc import Rtc

_ffi = FFI()
_ffi.cdef("typedef struct _toyrtcProgram* toyrtcProgram;")
STATUSES = {"TOYRTC_SUCCESS": 0, "TOYRTC_ERROR_COMPILATION": 6}


class ToyCompiler(RtcCompiler):
    title, prefix = "ToyRTC", "toyrtc"

    def __init__(self, lib):
        super().__init__(_ffi, lib)
        self.asked = []

    def options(self, arch):
        self.asked.append(arch)
        return [f"--arch={arch}"]

    def code_calls(self, arch):
        return "GetBinarySize", "GetBinary"


@pytest.fixture
def compiler():
    emulator = Emulator()
    return ToyCompiler(Rtc(emulator, "toyrtc", ("Binary",), (2, 7), STATUSES, "TOYRTC_SUCCESS",
                           "TOYRTC_ERROR_COMPILATION")), emulator


def test_compiles_through_the_library_calls(compiler):
    toy, emulator = compiler
    assert toy.version == "toyrtc2.7"
    image = toy.compile(kernel_source(), "t1")
    assert image[:4] == b"\x7fELF" and toy.asked == ["t1"]
    assert emulator.function(emulator.load(image, 0), "binary_f32") is not None
    assert not toy.lib.programs  # destroyed


def test_a_compile_error_carries_the_log(compiler):
    toy, _ = compiler
    with pytest.raises(CompileError, match=r"(?s)ToyRTC 2\.7 could not compile nx_kernels\.cu for t1 "
                                           r"\(TOYRTC_ERROR_COMPILATION\):\n.*.y. was not declared"):
        toy.compile('extern "C" __global__ void broken(float* x) { x[0] = y; }', "t1")
    assert not toy.lib.programs  # destroyed after the error too
