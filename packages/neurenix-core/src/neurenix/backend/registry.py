"""Finding backend plugins and resolving them into one kernel table per device type.

Plugins come from the ``neurenix.backends`` entry-point group (plus core's NumPy plugin, and any
registered at run time with :func:`register`). A plugin that fails to import, or whose hook or
backend raises, is recorded and skipped, so one broken install cannot break the others, unless the
environment variable ``NEURENIX_REQUIRE_BACKENDS`` (comma-separated device types or backend names)
names it: then neurenix raises :class:`~neurenix.errors.BackendError` on first use.

Hooks run once; their result is resolved into a :class:`KernelTable` per device type, and the
per-op path is one attribute lookup on that table.
"""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass, field

import pluggy

from ..errors import BackendError, DeviceError
from . import checking, hookspecs, numpy_backend, threads
from .backend import Backend
from .compositions import DEFAULTS
from .kernels import KERNEL_API_VERSION, KERNELS, REQUIRED, SUPPORTED_API_VERSIONS

STANDARD_DEVICE_TYPES = ("cpu", "cuda", "rocm", "webgpu")
_INSTALL_HINT = {t: f"pip install neurenix-backend-{t}" for t in STANDARD_DEVICE_TYPES}


class KernelTable:
    """The kernels of one device type, one attribute per kernel.

    Besides the kernels it has ``device_type``, ``reason`` (None, or why the type cannot run),
    ``providers`` (kernel -> backend name), ``offers`` (kernel -> the names of every usable backend that
    provides it, the one used first), ``device_count`` and ``dtypes`` (those the top backend handles).
    A table whose device type cannot run has no kernel attributes: touching one raises a DeviceError
    that says why. Tables are updated in place when plugins are (un)registered.
    """

    def __init__(self, device_type: str):
        self.device_type = device_type
        self._fill({}, {}, 0, "not resolved yet")

    def __getattr__(self, name):  # only reached for a missing attribute
        if name not in KERNELS:  # not a kernel: an ordinary AttributeError (hasattr, copy and pickle rely on it)
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        raise DeviceError(f"no {self.device_type} device can be used here: {self.reason} (neurenix.list_backends() "
                          f"and `neurenix devices` say more)")

    def _fill(self, kernels: dict, providers: dict, device_count: int, reason: str | None,
              dtypes: tuple = (), offers: dict | None = None, compilers: tuple = ()) -> None:
        meta = {"device_type": self.device_type, "reason": reason, "providers": providers,
                "device_count": device_count, "dtypes": dtypes, "offers": offers or {}, "compilers": compilers}
        self.__dict__.clear()
        self.__dict__.update(kernels)
        self.__dict__.update(meta)


def _refusing(kernels: dict, dtype: str, where: str, declared) -> dict:
    """``from_numpy``, ``full`` and ``cast`` of ``kernels``, raising a TypeError that names ``where`` when asked for
    ``dtype``: the only ways a buffer of a new dtype comes to be, so the other kernels never meet it."""
    import numpy as np

    npd = np.dtype(dtype)

    def refuse():
        raise TypeError(f"{where} has no {dtype} tensors (its backend declares {', '.join(declared)}); {dtype} "
                        "tensors, such as quantized models' weights, live on the cpu")

    def from_numpy(array, index, _k=kernels["from_numpy"]):
        if array.dtype is npd:
            refuse()
        return _k(array, index)

    def full(shape, value, dt, index, _k=kernels["full"]):
        if dt is npd:
            refuse()
        return _k(shape, value, dt, index)

    def cast(x, dt, _k=kernels["cast"]):
        if dt is npd:
            refuse()
        return _k(x, dt)

    return {"from_numpy": from_numpy, "full": full, "cast": cast}


@dataclass
class BackendStatus:
    """One installed backend, as ``neurenix.list_backends()`` reports it."""

    name: str
    device_type: str
    priority: int
    plugin: str
    distribution: str | None
    available: bool
    reason: str | None = None
    devices: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.available:
            state = f"{len(self.devices)} device(s): " + "; ".join(self.devices)
        else:
            state = f"unusable: {self.reason}"
        return f"{self.device_type:<8} {self.name:<14} priority {self.priority:<4} {state}"


@dataclass
class _Entry:
    plugin: str
    distribution: str | None
    backend: Backend | None = None
    error: str | None = None  # the plugin or its hook failed; backend is None


class _Registry:
    def __init__(self):
        self.pm: pluggy.PluginManager | None = None
        self.entries: list[_Entry] = []
        self.tables: dict[str, KernelTable] = {}
        self.reasons: dict[Backend, str | None] = {}  # probe results, asked once per backend
        self.num_threads: int | None = None  # set by set_num_threads; None: each backend's own default
        self.rejected: dict[int, str] = {}  # id -> name of plugins taken out of pluggy after they failed
        self.generation = 0  # counts resolutions: a program compiled against older tables is not replayed

    # -- loading ---------------------------------------------------------------------------------
    def load(self) -> None:
        if self.pm is not None:
            return
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._add_plugin(numpy_backend, "numpy", "neurenix-core")
        for ep in importlib.metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else None
            try:
                plugin = ep.load()
            except Exception as e:  # a broken plugin is reported, not fatal
                self.entries.append(_Entry(ep.name, dist, error=f"import of {ep.value!r} failed: {e!r}"))
                continue
            self._add_plugin(plugin, ep.name, dist)
        self._check_required()

    def _add_plugin(self, plugin, name: str, dist: str | None) -> None:
        try:
            self.pm.register(plugin, name=name)
            impls = self._hook_impls(plugin, name)
            backends = [b for impl in impls for b in impl.function()]
        except Exception as e:
            if self.pm.is_registered(plugin):  # (left in, a plugin failing pluggy's checks would fail every later one)
                self.pm.unregister(plugin)
                self.rejected[id(plugin)] = name
            self.entries.append(_Entry(name, dist, error=f"plugin {name!r} failed: {e!r}"))
            return
        for b in backends:
            if not isinstance(b, Backend):
                self.entries.append(_Entry(name, dist, error=f"plugin {name!r} returned {b!r}, not a Backend"))
            else:
                self.entries.append(_Entry(name, dist, backend=b))
        for t in {b.device_type for b in backends if isinstance(b, Backend)}:
            if t in self.tables:
                self._resolve(t)

    def _hook_impls(self, plugin, name: str) -> list:
        """``plugin``'s implementations of the hook, or an error that says what is wrong with it: a hook whose
        name is misspelled (pluggy's check_pending), or a ``neurenix_backends`` without ``@hookimpl``."""
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as e:
            raise ValueError(f"{e} (neurenix's hook is neurenix_backends, with @neurenix.backend.hookimpl)") from None
        impls = [i for i in self.pm.hook.neurenix_backends.get_hookimpls() if i.plugin is plugin]
        if not impls:
            if callable(getattr(plugin, "neurenix_backends", None)):
                raise ValueError("its neurenix_backends is not decorated with @neurenix.backend.hookimpl, so pluggy "
                                 "does not see it: add the decorator")
            raise ValueError("it has no neurenix_backends hook (a function decorated with "
                             "@neurenix.backend.hookimpl that returns its Backend objects)")
        return impls

    def failures(self) -> list[str]:
        """``name: error`` of each plugin that failed to load, for error messages."""
        return [f"{e.plugin}: {e.error}" for e in self.entries if e.error]

    def _check_required(self) -> None:
        required = [r.strip() for r in os.environ.get("NEURENIX_REQUIRE_BACKENDS", "").split(",") if r.strip()]
        for req in required:
            failed = [e for e in self.entries if e.error and e.plugin == req]
            matches = [e.backend for e in self.entries if e.backend and req in (e.backend.device_type, e.backend.name)]
            if failed:
                raise BackendError(f"NEURENIX_REQUIRE_BACKENDS names {req!r}, but its plugin failed: {failed[0].error}")
            if not matches:
                raise BackendError(f"NEURENIX_REQUIRE_BACKENDS names {req!r}, but no installed backend provides it "
                                   f"(installed: {', '.join(sorted(self.device_types()))})")
            for b in matches:  # a device type must run; a backend named must run itself
                reason = self.why_not(b) if req == b.name else self.table(b.device_type).reason
                if reason is not None:
                    raise BackendError(f"NEURENIX_REQUIRE_BACKENDS names {req!r}, but it cannot run: {reason}")

    # -- resolution ------------------------------------------------------------------------------
    def probe(self, b: Backend) -> str | None:
        """Why backend ``b`` cannot run, or None; asked once per backend."""
        if b not in self.reasons:
            if b.api_version not in SUPPORTED_API_VERSIONS:
                reason = (f"implements kernel API {b.api_version!r}, but this neurenix supports versions "
                          f"{', '.join(map(str, SUPPORTED_API_VERSIONS))}: set api_version = {KERNEL_API_VERSION} and "
                          "provide neurenix.backend.REQUIRED (see docs/backends.md), or install a neurenix that "
                          f"has version {b.api_version!r}")
            else:
                try:
                    reason = b.unavailable_reason()
                except Exception as e:
                    reason = f"availability check raised {e!r}"
            self.reasons[b] = reason
        return self.reasons[b]

    def why_not(self, b: Backend) -> str | None:
        """Why backend ``b`` cannot run: its own reason, or its device type's (required kernels missing)."""
        return self.probe(b) or self.table(b.device_type).reason

    def device_types(self) -> set[str]:
        return {e.backend.device_type for e in self.entries if e.backend}

    def table(self, device_type: str) -> KernelTable:
        self.load()
        table = self.tables.get(device_type)
        if table is None:
            table = self.tables[device_type] = KernelTable(device_type)
            self._resolve(device_type)
        return table

    def backends(self, device_type: str) -> list[Backend]:
        """The backends of ``device_type``, highest priority first."""
        return sorted((e.backend for e in self.entries if e.backend and e.backend.device_type == device_type),
                      key=lambda b: -b.priority)

    def ranking(self) -> list[tuple[str, int, str]]:
        """``device="auto"``'s candidates, best first: every usable device as (name, preference, backend), the
        preference being what the device type's serving backend (its usable backend of highest priority) says;
        ties go to the standard types in the order cuda, rocm, webgpu, cpu, then others by name. A preference
        that raises counts 0."""
        order = {t: i for i, t in enumerate(("cuda", "rocm", "webgpu", "cpu"))}
        out = []
        for t in sorted(self.device_types(), key=lambda t: (order.get(t, len(order)), t)):
            table = self.table(t)
            if table.reason is not None:
                continue
            top = next(b for b in self.backends(t) if self.probe(b) is None)
            for i in range(table.device_count):
                try:
                    rank = int(top.preference(i))
                except Exception:
                    rank = 0
                out.append((t if t == "cpu" and i == 0 else f"{t}:{i}", rank, top.name))
        return sorted(out, key=lambda c: -c[1])

    def _resolve(self, device_type: str) -> None:
        self.generation += 1
        table = self.tables[device_type]
        backends = self.backends(device_type)
        reasons = [f"{b.name}: {r}" for b in backends if (r := self.probe(b)) is not None]
        usable = [b for b in backends if self.probe(b) is None]
        if not usable:
            hint = _INSTALL_HINT.get(device_type, "no plugin provides it")
            why = "; ".join(reasons) if reasons else f"no backend for it is installed ({hint})"
            table._fill({}, {}, 0, why)
            return
        kernels, providers, offers = {}, {}, {}
        for b in usable:
            try:
                offered = b.kernels().items()
            except Exception as e:  # this backend is unusable, not the device type: resolve without it
                self.reasons[b] = f"listing its kernels raised {e!r}"
                return self._resolve(device_type)
            for name, fn in offered:
                if name in KERNELS:
                    offers.setdefault(name, []).append(b.name)
                if name in KERNELS and name not in kernels:
                    kernels[name], providers[name] = fn, b.name
        try:
            count = usable[0].device_count()
        except Exception as e:
            self.reasons[usable[0]] = f"counting its devices raised {e!r}"
            return self._resolve(device_type)
        missing = [n for n in REQUIRED if n not in kernels]
        if missing:
            table._fill({}, {}, 0, f"backends {[b.name for b in usable]} lack required kernels: {', '.join(missing)}")
            return
        if checking.enabled():
            kernels = {n: checking.checked(n, fn, providers[n], kernels["to_numpy"]) for n, fn in kernels.items()}
        compilers = tuple(b.compile_program for b in usable if type(b).compile_program is not Backend.compile_program)
        if "int8" not in usable[0].dtypes:
            kernels |= _refusing(kernels, "int8", f"{device_type} (backend {usable[0].name})", usable[0].dtypes)
        table._fill(kernels, providers, count, None, tuple(usable[0].dtypes), offers, compilers)
        for b in usable:
            self.apply_threads(b)
        if device_type == "cpu" and self.threads_to_tell() is not None:
            threads.BLAS.set_num_threads(self.threads_to_tell())
        for name, build in DEFAULTS.items():  # compose the optional kernels nobody provides
            if name not in kernels:
                setattr(table, name, build(table))
                providers[name] = "core (composed)"

    def apply_threads(self, b: Backend) -> None:
        """Tell ``b`` the thread count if it is set and ``b`` is known usable. A backend not probed yet is told
        when its device type is resolved: probing it here would load its driver (a GPU runtime, or
        wgpu-native and a Vulkan loader: 150 MB resident) in programs that never use it."""
        n = self.threads_to_tell()
        if n is not None and b in self.reasons and self.reasons[b] is None:
            b.set_num_threads(n)

    def threads_to_tell(self) -> int | None:
        """What set_num_threads set, else the default when it follows affinity, quota and load (None where
        ``OMP_NUM_THREADS`` or ``NEURENIX_NUM_THREADS`` fixes it: OpenMP and OpenBLAS read it themselves)."""
        if self.num_threads is not None:
            return self.num_threads
        if threads.env_num_threads() is not None:
            return None
        return threads.GOVERNOR.default()

    def tell_all(self, n: int) -> None:
        """Tell every usable host backend, and NumPy's BLAS, to use ``n`` threads."""
        for e in self.entries:
            if e.backend is not None and e.backend in self.reasons and self.reasons[e.backend] is None:
                e.backend.set_num_threads(n)
        threads.BLAS.set_num_threads(n)

    # -- run-time registration -------------------------------------------------------------------
    def register(self, plugin, name: str | None = None) -> None:
        self.load()
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        before = len(self.entries)
        self._add_plugin(plugin, name, None)
        errors = [e.error for e in self.entries[before:] if e.error]
        if errors:
            raise BackendError(errors[0])

    def unregister(self, plugin) -> None:
        self.load()
        name = self.pm.get_name(plugin)
        if name is None and id(plugin) in self.rejected:  # it failed: only its entries are left
            name = self.rejected.pop(id(plugin))
        elif name is None:
            raise ValueError(f"{plugin!r} is not a registered neurenix plugin")
        else:
            self.pm.unregister(plugin)
        gone = [e for e in self.entries if e.plugin == name]
        self.entries = [e for e in self.entries if e.plugin != name]
        for t in {e.backend.device_type for e in gone if e.backend}:
            if t in self.tables:
                self._resolve(t)

    # -- reporting -------------------------------------------------------------------------------
    def statuses(self) -> list[BackendStatus]:
        self.load()
        out = []
        for e in self.entries:
            if e.backend is None:
                out.append(BackendStatus(e.plugin, "?", 0, e.plugin, e.distribution, False, e.error))
                continue
            b = e.backend
            reason = self.why_not(b)
            devices = []
            if reason is None:
                try:
                    devices = [f"{b.device_type}:{i} {b.device_name(i)}" for i in range(b.device_count())]
                except Exception as err:
                    reason = f"device query raised {err!r}"
            out.append(BackendStatus(b.name, b.device_type, b.priority, e.plugin, e.distribution,
                                     reason is None, reason, devices))
        return out


REGISTRY = _Registry()


def register(plugin, name: str | None = None) -> None:
    """Register a backend plugin at run time (a module or object with a ``neurenix_backends`` hook)."""
    REGISTRY.register(plugin, name)


def unregister(plugin) -> None:
    """Remove a plugin registered with ``register``; its device types are resolved again."""
    REGISTRY.unregister(plugin)


def set_num_threads(n: int) -> None:
    """Use ``n`` threads on the host: in every usable backend's kernels (now for ``cpu`` and device types in
    use, else when its device type is first used) and in NumPy's BLAS (see :mod:`neurenix.backend.threads`).
    The count is then fixed: it no longer follows the load.

    The default is ``NEURENIX_NUM_THREADS`` (else ``OMP_NUM_THREADS``) if set, else ``min(affinity, cgroup CPU
    quota)``, lowered while other processes keep the CPUs busy.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    REGISTRY.num_threads = n
    threads.GOVERNOR.follow = False
    REGISTRY.table("cpu")  # the host is always in use: its backends are told now
    REGISTRY.tell_all(n)


def get_num_threads() -> int:
    """The number of threads host kernels (and BLAS) may use now: what ``set_num_threads`` set, else
    ``NEURENIX_NUM_THREADS`` or ``OMP_NUM_THREADS``, else ``min(affinity, cgroup CPU quota)``, lowered while
    other processes keep the CPUs busy (unless ``NEURENIX_THREADS_FOLLOW_LOAD=0``)."""
    if REGISTRY.num_threads is not None:
        return REGISTRY.num_threads
    env = threads.env_num_threads()
    return env if env is not None else threads.GOVERNOR.default()


def follow_load() -> None:
    """Let the default thread count follow the load now (the CPU backend calls it from its kernels; it costs a
    clock read except every ``threads.INTERVAL`` seconds)."""
    g = threads.GOVERNOR
    if g.follow and REGISTRY.num_threads is None:
        if g.apply is None:
            if threads.env_num_threads() is not None:
                g.follow = False
                return
            g.apply = REGISTRY.tell_all
        g.tick()


def list_backends() -> list[BackendStatus]:
    """Every installed backend, whether it can run here and, if not, why."""
    return REGISTRY.statuses()


def kernel_providers(device_type: str) -> dict[str, list[str]]:
    """Which backend serves each kernel of ``device_type``: kernel -> the names of the usable backends that
    provide it, the one used first (a lower one is overridden); ``["core (composed)"]`` for an optional
    kernel no backend provides. Empty if the device type cannot run."""
    table = REGISTRY.table(device_type)
    if table.reason is not None:
        return {}
    return {name: table.offers.get(name) or [table.providers[name]] for name in sorted(table.providers)}
