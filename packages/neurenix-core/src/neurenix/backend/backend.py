"""The Backend base class: what a plugin hands to neurenix for one device type."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .kernels import KERNEL_API_VERSION


class Backend:
    """Kernels for one device type, with what neurenix needs to know to choose and report them.

    Subclass it and set the class attributes; override the methods that apply. Several backends may
    serve one device type: for each kernel the usable backend of highest ``priority`` that provides it
    wins, so a backend whose buffers are compatible with another's may override only some kernels.
    """

    #: device type it drives: "cpu", "cuda", "rocm", "webgpu" or a new one
    device_type: str = ""
    #: short name shown in listings, such as "numpy" or "cpu-c"
    name: str = ""
    #: higher wins; core's NumPy reference backend for "cpu" has priority 0
    priority: int = 0
    #: version of the kernel set it implements (neurenix.backend.KERNEL_API_VERSION)
    api_version: int = KERNEL_API_VERSION
    #: dtypes its kernels handle (names); the conformance suite tests exactly these
    dtypes: tuple[str, ...] = ("float32", "float64", "int64", "bool")

    def unavailable_reason(self) -> str | None:
        """Why this backend cannot run here (driver missing, no adapter...), or None if it can."""
        return None

    def device_count(self) -> int:
        """How many devices of this type the backend sees (called only when available)."""
        return 1

    def device_name(self, index: int) -> str:
        """A human-readable description of device ``index`` (model, API...)."""
        return self.name

    def preference(self, index: int) -> int:
        """How strongly ``device="auto"`` prefers device ``index`` of this type: the usable device of highest
        preference is picked, the CPU (1) when no other says more. 0, the default, never picks it: a backend
        opts in. Core's CPU backends say 1, the GPU backends 100, WebGPU 50 on a GPU and 0 on a CPU adapter
        (a software renderer, slower than the CPU backends)."""
        return 0

    def set_num_threads(self, n: int) -> None:
        """Let this backend's host kernels use ``n`` threads; ``neurenix.set_num_threads`` calls it on every
        usable backend (and on those that load later). Optional: backends without a thread pool ignore it."""

    def compile_program(self, program) -> Callable[[list], list] | None:
        """Optional: a runner for a program ``neurenix.compile`` recorded on this device type
        (``neurenix.capture.program.Program``): ``run(inputs) -> outputs``, lists of buffers, computing what
        replaying the program's instructions in order would (bit for bit where the kernel order is kept). Return
        None to leave the program to core, which replays it kernel by kernel. Called once per program."""
        return None

    def kernels(self) -> Mapping[str, Callable]:
        """Kernel name -> callable, for the kernels this backend implements (called only when available)."""
        raise NotImplementedError(f"backend {self.name!r} provides no kernels")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} for {self.device_type!r}, priority {self.priority}>"
