"""One thread budget for the host: our kernels' threads (OpenMP in neurenix-backend-cpu) and NumPy's BLAS.

The default count is ``min(affinity, cgroup CPU quota)`` (:func:`cpu_budget`); ``OMP_NUM_THREADS`` or
``NEURENIX_NUM_THREADS`` fix it, as does ``neurenix.set_num_threads``. Unless one of those fixes it (or
``NEURENIX_THREADS_FOLLOW_LOAD=0``), the default count also follows contention (:class:`Governor`): at most
every :data:`INTERVAL` seconds, from the host kernels of the CPU backend, it counts the runnable threads of
other processes (``/proc/loadavg``) and gives itself only the CPUs they leave (once two looks in a row find
them busy), so beside one CPU-bound process on two cores it runs on one thread instead of losing to it.

BLAS is told through a direct call of OpenBLAS's ``openblas_set_num_threads`` in the library NumPy loaded
(microseconds, no import), else through threadpoolctl when it is installed (``pip install
neurenix-core[threads]``; it also knows MKL and BLIS), else not at all (:func:`blas_backend` says which).
"""

from __future__ import annotations

import ctypes
import math
import os
import time

#: seconds between two looks at the load, when the count follows it
INTERVAL = 0.5
#: looks kept: the others' count is their least over these, so a burst does not halve our threads
WINDOW = 4


# -- the budget: affinity and cgroup quota ------------------------------------------------------
def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def parse_cpu_max(text: str) -> float | None:
    """CPUs a cgroup v2 ``cpu.max`` allows ("200000 100000" -> 2.0; "max 100000" -> None)."""
    parts = text.split()
    if len(parts) < 1 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1]) if len(parts) > 1 else 100000
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def parse_cfs(quota_text: str, period_text: str) -> float | None:
    """CPUs cgroup v1's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` allow (quota -1: no limit)."""
    try:
        quota, period = int(quota_text.strip()), int(period_text.strip())
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def cgroup_cpu_limit(root: str = "/sys/fs/cgroup", proc_cgroup: str = "/proc/self/cgroup") -> float | None:
    """The CPUs this process's cgroup (and every cgroup above it) may use, or None for no quota.

    cgroup v2: ``cpu.max`` of the process's cgroup (from ``/proc/self/cgroup``) and its ancestors, and of the
    mount root (a container's own cgroup); cgroup v1: ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` under the
    ``cpu`` controller's mount. The least limit wins."""
    limits = []
    paths = {""}
    for line in (_read(proc_cgroup) or "").splitlines():
        hid, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hid == "0" or "cpu" in controllers.split(","):
            path = path.strip().strip("/")
            while path:
                paths.add(path)
                path = path.rpartition("/")[0]
    for p in sorted(paths):
        for base in (root, os.path.join(root, "cpu"), os.path.join(root, "cpu,cpuacct")):
            d = os.path.join(base, p) if p else base
            text = _read(os.path.join(d, "cpu.max"))
            if text is not None:
                limits.append(parse_cpu_max(text))
                continue
            q, per = _read(os.path.join(d, "cpu.cfs_quota_us")), _read(os.path.join(d, "cpu.cfs_period_us"))
            if q is not None and per is not None:
                limits.append(parse_cfs(q, per))
    limits = [x for x in limits if x is not None]
    return min(limits) if limits else None


def affinity_count() -> int:
    """CPUs this process may run on (``os.sched_getaffinity``, else ``os.cpu_count``)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_budget(affinity: int | None = None, quota: float | str | None = "read") -> int:
    """``min(affinity, ceil(quota))``: the CPUs this process can have at once, at least one."""
    affinity = affinity_count() if affinity is None else affinity
    quota = cgroup_cpu_limit() if quota == "read" else quota
    n = affinity if quota is None else min(affinity, math.ceil(quota))
    return max(1, n)


def env_num_threads(environ=os.environ) -> int | None:
    """The count ``NEURENIX_NUM_THREADS`` or ``OMP_NUM_THREADS`` fixes (the first of a list), or None."""
    for name in ("NEURENIX_NUM_THREADS", "OMP_NUM_THREADS"):
        v = environ.get(name, "").split(",")[0].strip()
        if v.isdigit() and int(v) > 0:
            return int(v)
    return None


# -- contention ---------------------------------------------------------------------------------
def parse_loadavg(text: str) -> int | None:
    """Runnable threads on the host now: the numerator of ``/proc/loadavg``'s fourth field."""
    try:
        return int(text.split()[3].split("/")[0])
    except (IndexError, ValueError):
        return None


def own_running(task_dir: str = "/proc/self/task") -> int:
    """Threads of this process that are runnable now (state R), this one included."""
    n = 0
    try:
        tids = os.listdir(task_dir)
    except OSError:
        return 1
    for tid in tids:
        text = _read(os.path.join(task_dir, tid, "stat"))
        if text and text.rpartition(")")[2].split()[:1] == ["R"]:
            n += 1
    return max(n, 1)


def others_running(loadavg: str = "/proc/loadavg", task_dir: str = "/proc/self/task") -> int | None:
    """Runnable threads of other processes now, or None where the host does not say."""
    total = parse_loadavg(_read(loadavg) or "")
    return None if total is None else max(0, total - own_running(task_dir))


def contended_count(budget: int, others: int, cpus: int) -> int:
    """Threads to use when ``others`` threads of other processes want ``cpus`` host CPUs: those they leave,
    within the budget, at least one."""
    return max(1, min(budget, cpus - others))


# -- BLAS ---------------------------------------------------------------------------------------
_OPENBLAS_SET = ("openblas_set_num_threads", "openblas_set_num_threads64_", "scipy_openblas_set_num_threads64_",
                 "scipy_openblas_set_num_threads")


_OPENBLAS_CALLBACK = tuple(n.replace("set_num_threads", "set_threads_callback_function") for n in _OPENBLAS_SET)


class Blas:
    """NumPy's BLAS thread count: OpenBLAS by a direct call, else threadpoolctl, else nothing."""

    def __init__(self):
        self._found = False
        self.backend: str | None = None  # "openblas", "threadpoolctl" or None
        self._set = self._get = None
        self._openblas = None  # the OpenBLAS library NumPy loaded, where found
        self.pool: str = "its own"  # who runs OpenBLAS's parallel jobs (see share_pool)

    def _find(self) -> None:
        if self._found:
            return
        self._found = True
        import numpy  # noqa: F401  (its BLAS is loaded with it)

        for path in self._loaded_openblas():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for name in _OPENBLAS_SET:
                if hasattr(lib, name):
                    self._set = getattr(lib, name)
                    self._set.argtypes, self._set.restype = [ctypes.c_int], None
                    self._get = getattr(lib, name.replace("set_num", "get_num"))
                    self._get.argtypes, self._get.restype = [], ctypes.c_int
                    self.backend, self._openblas = "openblas", lib
                    return
        try:
            import threadpoolctl
        except ImportError:
            return
        self.backend = "threadpoolctl"
        self._set = lambda n: threadpoolctl.threadpool_limits(n, user_api="blas")
        self._get = lambda: max((p["num_threads"] for p in threadpoolctl.threadpool_info()
                                 if p["user_api"] == "blas"), default=0)

    @staticmethod
    def _loaded_openblas() -> list[str]:
        out = []
        for line in (_read("/proc/self/maps") or "").splitlines():
            path = line.split(maxsplit=5)[-1] if line.count(" ") >= 5 else ""
            if "openblas" in os.path.basename(path).lower() and path not in out:
                out.append(path)
        return out

    def set_num_threads(self, n: int) -> bool:
        """Limit BLAS to ``n`` threads; False where no BLAS could be told."""
        self._find()
        if self._set is None:
            return False
        self._set(n)
        return True

    def get_num_threads(self) -> int | None:
        self._find()
        return self._get() if self._get is not None else None

    def can_share_pool(self) -> bool:
        """Whether NumPy's OpenBLAS can run its parallel jobs on another pool (:meth:`share_pool`)."""
        self._find()
        return self._openblas is not None and any(hasattr(self._openblas, n) for n in _OPENBLAS_CALLBACK)

    def share_pool(self, callback: int, owner: str) -> bool:
        """Have OpenBLAS run its parallel jobs through ``callback`` (the address of a C function of OpenBLAS's
        ``openblas_threads_callback`` type) instead of its own spinning workers, so that a backend's thread pool
        is the only one (OpenBLAS 0.3.27+); ``owner`` names it for :attr:`pool`. False where the BLAS cannot."""
        self._find()
        setter = next((getattr(self._openblas, n) for n in _OPENBLAS_CALLBACK
                       if self._openblas is not None and hasattr(self._openblas, n)), None)
        if setter is None:
            return False
        setter.argtypes, setter.restype = [ctypes.c_void_p], None
        setter(callback)
        self.pool = owner
        return True


BLAS = Blas()


def blas_backend() -> str | None:
    """How BLAS is told its thread count: "openblas" (direct call), "threadpoolctl", or None (it is not)."""
    BLAS._find()
    return BLAS.backend


# -- the governor -------------------------------------------------------------------------------
class Governor:
    """The default thread count, following contention; ``apply`` (the registry's) tells backends and BLAS."""

    def __init__(self):
        self.budget: int | None = None
        self.current: int | None = None
        # on by default, as MKL_DYNAMIC is: the OpenMP kernels and OpenBLAS split work statically, so beside one
        # CPU-bound process on two cores a step on two threads waits for the one that shares its core (1.3-1.4x
        # the one-thread time, bench/threads.py). Our kernels' results do not depend on the count (each output
        # is summed by one thread); off with NEURENIX_THREADS_FOLLOW_LOAD=0 for timings that must not move
        self.follow = os.environ.get("NEURENIX_THREADS_FOLLOW_LOAD", "1") != "0"
        self.apply = None  # set by the registry: callable(n)
        self._next = 0.0
        self._seen: list[int] = []
        self.cpus = os.cpu_count() or 1

    def default(self) -> int:
        if self.budget is None:
            self.budget = cpu_budget()
            self.current = self.budget
            if self.follow and self.budget > 1:
                self._look()
        return self.current

    def _look(self) -> None:
        others = others_running()
        if others is None:
            self.follow = False
            return
        self._seen = (self._seen + [others])[-WINDOW:]
        # fewer threads once two looks in a row find contention (one look can catch a process that is runnable
        # for a moment: on an idle machine that cost a whole run its second thread); more only once every look
        # of the window has found room (a busy loop is always runnable; a short job is not)
        confirmed = min(self._seen[-2:]) if len(self._seen) >= 2 else 0
        lower = contended_count(self.budget, confirmed, self.cpus)
        higher = contended_count(self.budget, max(self._seen), self.cpus)
        if lower < self.current:
            self.current = lower
        elif higher > self.current:
            self.current = higher

    def tick(self) -> None:
        """Look at the load if :data:`INTERVAL` has passed; tell everyone a new count. Cheap otherwise."""
        t = time.monotonic()
        if t < self._next or not self.follow:
            return
        self._next = t + INTERVAL
        self.default()
        if self.budget <= 1:
            self.follow = False
            return
        before = self.current
        self._look()
        if self.current != before and self.apply is not None:
            self.apply(self.current)


GOVERNOR = Governor()
