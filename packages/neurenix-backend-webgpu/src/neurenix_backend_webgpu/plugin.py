"""The ``webgpu`` backend plugin: probes for an adapter, then hands neurenix the WGSL kernels."""

from __future__ import annotations

from neurenix.backend import Backend, hookimpl

from . import kernels, programs, runtime


class WebGPUBackend(Backend):
    """WGSL kernels on the adapter wgpu-native finds (Vulkan, Metal, D3D12 or GL; lavapipe on a CPU)."""

    device_type = "webgpu"
    name = "webgpu-wgsl"
    priority = 10
    dtypes = ("float32", "int64", "bool")  # int64 held in 32 bits (range-checked); no float64 in WGSL

    def __init__(self):
        self._adapter = None

    def unavailable_reason(self) -> str | None:
        self._adapter, reason = runtime.probe()
        return reason

    def device_count(self) -> int:
        return 1

    def device_name(self, index: int) -> str:
        return runtime.describe(self._adapter)

    def preference(self, index: int) -> int:
        """50 on a GPU (below CUDA's and ROCm's 100), 0 on a CPU adapter: lavapipe renders in software, slower
        than the CPU backends."""
        return 0 if self._adapter is None or self._adapter.info.get("adapter_type") == "CPU" else 50

    def kernels(self) -> dict:
        if kernels.RT is None:
            kernels.RT = runtime.Runtime(self._adapter)
        return kernels.KERNELS

    def compile_program(self, program):
        """The runner of :mod:`.programs`: the program's dispatches bound once, enqueued as prepared work
        at each call (no submit of its own)."""
        if kernels.RT is None:
            return None
        return programs.ProgramRunner(kernels.RT, program)


def stats() -> dict:
    """Counters since the last reset: dispatches, submits, host_waits (buffer map-reads: the host
    round trips), uploads, pipelines_compiled."""
    return dict(kernels.RT.stats) if kernels.RT is not None else {}


def reset_stats() -> None:
    if kernels.RT is not None:
        kernels.RT.stats.clear()


@hookimpl
def neurenix_backends() -> list[Backend]:
    return [WebGPUBackend()]
