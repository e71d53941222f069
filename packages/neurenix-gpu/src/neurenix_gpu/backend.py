"""The Backend both GPU plugins hand to neurenix: a driver, probed once, and a GpuDevice per index."""

from __future__ import annotations

import threading
from collections.abc import Callable

from neurenix.backend import Backend

from .driver import Driver
from .errors import GpuError
from .ops import make_kernels
from .program import ProgramRunner
from .runtime import GpuDevice


class GpuBackend(Backend):
    """``open_driver()`` returns a :class:`Driver` or raises OSError/GpuError saying why there is none; it is
    called once, when neurenix first asks whether the backend can run."""

    priority = 10
    dtypes = ("float32", "float64", "int64", "bool")

    def __init__(self, open_driver: Callable[[], Driver], device_type: str | None = None, name: str | None = None):
        self.open_driver = open_driver
        if device_type:
            self.device_type = device_type
        if name:
            self.name = name
        self._driver, self._reason, self._devices = None, None, {}
        self._lock = threading.Lock()  # one GpuDevice (one stream, one allocator) per index, whoever asks first

    @property
    def driver(self) -> Driver | None:
        if self._driver is None and self._reason is None:
            try:
                self._driver = self.open_driver()
                if self._driver.device_count() == 0:
                    self._reason = f"no {self.device_type} device found"
            except (OSError, GpuError) as e:
                self._reason = str(e)
        return self._driver

    def unavailable_reason(self) -> str | None:
        return self._reason if self.driver is None or self._reason else None

    def device_count(self) -> int:
        return self.driver.device_count()

    def device_name(self, index: int) -> str:
        return self.driver.device_name(index)

    def preference(self, index: int) -> int:
        return 100

    def device(self, index: int) -> GpuDevice:
        dev = self._devices.get(index)
        if dev is None:
            with self._lock:
                dev = self._devices.get(index)
                if dev is None:
                    dev = self._devices[index] = GpuDevice(self.driver, index, f"{self.device_type}:{index}")
        return dev

    def kernels(self):
        return make_kernels(self.device)

    def compile_program(self, program) -> ProgramRunner | None:
        """A runner for a program ``neurenix.compile`` recorded on this device type: launches planned at its
        first call, issued from the plan at later ones (``neurenix_gpu.program``); None for host steps only."""
        if all(ins.host for ins in program.instructions):
            return None
        return ProgramRunner(program, self)
