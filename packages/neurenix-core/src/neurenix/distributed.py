"""Several processes as one job, over MPI (mpi4py): ``pip install 'neurenix-core[distributed]'``.

Launch ``mpirun -n 4 python -m mpi4py script.py`` (or ``srun python -m mpi4py script.py`` under Slurm):
every process runs the same script and learns its place with ``rank()`` and ``world_size()``. Without
mpi4py, or started as a plain ``python script.py``, the process is a job of one (rank 0, world size 1) and
every collective returns its input, so the same script runs both ways.

Collectives: ``all_reduce`` sums a NumPy buffer in place (MPI's buffer API: no pickling, for the hot
path); ``broadcast`` and ``all_gather`` move picklable objects (for one-off set-up).

No rank waits forever for one that will not come. Every collective first checks that all ranks are in
the same one (a 16-byte all-reduce), and waits by polling, so that while it waits it hears from the
other ranks: a rank that exits, or leaves a ``section`` (``meta_learn(distributed=True)``) with an
exception, tells the others, and a rank on this host that dies is noticed. Those are ``DistributedError``
on the ranks that wait for it; an uncaught exception on any rank aborts the job (as ``-m mpi4py`` does).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import pathlib
import pickle
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

_comm = None  # the MPI communicator once init() ran (None: not initialised, or a job of one without mpi4py)
_initialized = False
_watch: _Watch | None = None  # this rank's safety net, in a job of more than one rank
_LAUNCHER_SIZE = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")  # set by Open MPI's and MPICH's (hydra, Slurm PMI) launchers
_ABORT_GRACE_S = 0.5  # between printing why and aborting the job (the launcher may drop output still in its pipes)
_NOTE_TAG = 31_415  # point-to-point tag reserved on the job's communicator for neurenix's notes between ranks
_TIMEOUT_VAR = "NEURENIX_MPI_TIMEOUT"  # seconds a collective may wait for the other ranks (unset: no limit)
_CHECK_EVERY_S = 0.2  # while waiting: how often to check that the ranks on this host are alive, and the timeout
_INSTALL = "pip install 'neurenix-core[distributed]' mpich   (or a system MPI: apt-get install libopenmpi-dev)"


class DistributedError(RuntimeError):
    """The job cannot go on as it is: the ranks are in different collectives, or one of them left, died or
    did not come within ``NEURENIX_MPI_TIMEOUT`` seconds."""


def _launched_size() -> int:
    """How many processes the launcher says the job has (1 when not started by an MPI launcher)."""
    for var in _LAUNCHER_SIZE:
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 1


def _load_mpi():
    """mpi4py's MPI module, or None when mpi4py is not installed; an error when MPI itself cannot load."""
    try:
        import mpi4py
    except ImportError:
        return None
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError, OSError) as e:
        raise ImportError(f"neurenix.distributed: mpi4py {mpi4py.__version__} is installed but cannot load an MPI "
                          f"library ({str(e).strip()}); install one: {_INSTALL}") from e
    return MPI


def _timeout() -> float | None:
    """``NEURENIX_MPI_TIMEOUT`` in seconds (None when unset or empty)."""
    value = os.environ.get(_TIMEOUT_VAR, "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"neurenix.distributed: {_TIMEOUT_VAR} must be a number of seconds > 0, got {value!r}")
    return seconds


def init(comm: Any = None) -> None:
    """Join the job (idempotent): MPI's world communicator, or ``comm`` (an mpi4py communicator) if given.

    Without mpi4py the process is a job of one, unless an MPI launcher started several processes:
    then each would silently train alone, so that is an error naming the install command.
    """
    global _comm, _initialized, _watch
    if _initialized:
        return
    if comm is None:
        mpi = _load_mpi()
        if mpi is None:
            n = _launched_size()
            if n > 1:
                raise ImportError(f"neurenix.distributed: started by an MPI launcher as one of {n} processes, but "
                                  f"mpi4py is not installed, so each process would train alone; install it: {_INSTALL}")
        else:
            comm = mpi.COMM_WORLD
    if comm is not None and comm.Get_size() > 1:
        _watch = _Watch(comm, _timeout())
        _abort_on_uncaught_exception(comm)
    _comm, _initialized = comm, True


@atexit.register  # before mpi4py finalizes MPI (with Py_AtExit, after every atexit handler)
def _at_exit() -> None:
    """Tell the other ranks that this one exits, even if it never joined the job here (so never will)."""
    if _watch is not None:
        _watch.at_exit()
        return
    if _initialized:  # a job of one by choice (init(MPI.COMM_SELF)): nobody to tell
        return
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized() and mpi.COMM_WORLD.Get_size() > 1:
        _Watch(mpi.COMM_WORLD, None).tell("exited without joining the job (it never used neurenix.distributed)",
                                          final=True)


def _abort_on_uncaught_exception(comm) -> None:
    """An uncaught exception on one rank aborts the job (as ``-m mpi4py`` does), so no rank waits forever.

    The traceback is printed first and given a moment to travel: the launcher kills every rank on an
    abort and can drop output still in its pipes (the error message, when all ranks raise it together).
    """
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        sys.stdout.flush()
        sys.stderr.flush()
        time.sleep(_ABORT_GRACE_S)
        comm.Abort(1)
        os._exit(1)  # MPI_Abort can return while another thread is inside MPI

    sys.excepthook = hook


def _abort(comm, message: str) -> None:
    """End the whole job now, non-zero, after printing why."""
    sys.stdout.flush()
    sys.stderr.write(f"neurenix.distributed: {message}\n")
    sys.stderr.flush()
    time.sleep(_ABORT_GRACE_S)
    comm.Abort(1)
    os._exit(1)  # MPI_Abort can return while another thread is inside MPI


def is_initialized() -> bool:
    """Whether ``init()`` has run in this process."""
    return _initialized


def rank() -> int:
    """This process's index in the job, 0 to ``world_size() - 1`` (joins the job first if needed)."""
    init()
    return 0 if _comm is None else _comm.Get_rank()


def world_size() -> int:
    """How many processes the job has (1 without MPI; joins the job first if needed)."""
    init()
    return 1 if _comm is None else _comm.Get_size()


def all_reduce(buffer: np.ndarray) -> np.ndarray:
    """Sum ``buffer`` (a C-contiguous float32/float64 NumPy array) over all ranks, in place; returns it."""
    if not isinstance(buffer, np.ndarray) or not buffer.flags.c_contiguous or buffer.dtype.kind != "f":
        got = f"{buffer.dtype} array, contiguous={buffer.flags.c_contiguous}" if isinstance(buffer, np.ndarray) \
            else type(buffer).__name__
        raise TypeError(f"all_reduce: needs a C-contiguous float32 or float64 NumPy array, got {got}")
    if world_size() > 1:
        with _watch.collective("all_reduce", f"of {buffer.size} {buffer.dtype}") as w:
            w.wait(_comm.Iallreduce(w.mpi.IN_PLACE, buffer, op=w.mpi.SUM), "all_reduce")
    return buffer


def broadcast(obj: Any, root: int = 0) -> Any:
    """Rank ``root``'s ``obj`` (pickled), on every rank."""
    size = world_size()
    if not isinstance(root, int) or not 0 <= root < size:
        raise ValueError(f"broadcast: root must be a rank, 0 to {size - 1}, got {root!r}")
    if size == 1:
        return obj
    with _watch.collective("broadcast", f"from rank {root}") as w:
        return w.bcast(obj, root)


def all_gather(obj: Any) -> list:
    """Every rank's ``obj`` (pickled), as a list in rank order, on every rank."""
    if world_size() == 1:
        return [obj]
    with _watch.collective("all_gather", "") as w:
        return w.gather(obj)


@contextlib.contextmanager
def section(what: str) -> Iterator[None]:
    """A stretch of collectives that every rank runs to its end (``meta_learn(distributed=True)`` is one).

    A rank that leaves it with an exception tells the others: those that wait for it in a collective get
    a ``DistributedError`` naming it (unless they left at the same point too, as when every rank raises the
    same error). A rank that exits while a section is open in another of its threads aborts the job.
    """
    if world_size() == 1:
        yield
        return
    stack = _watch.sections.setdefault(threading.get_ident(), [])
    stack.append(what)
    try:
        yield
    except BaseException as e:
        _watch.depart(f"left {what} with {type(e).__name__}: {_short(e)}")
        raise
    finally:
        stack.pop()


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0][:200] + (" ..." if len(text) > 1 or len(text[0]) > 200 else "")) if text else repr(e)


def _key(text: str) -> int:
    """A 56-bit hash of ``text``, the same in every process (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=7).digest(), "little")


class _Watch:
    """This rank's safety net in a job of more than one rank: counts collectives, checks that every rank is
    in the same one, and gives up on one that another rank will never join."""

    def __init__(self, comm, timeout: float | None):
        from mpi4py import MPI
        self.mpi, self.comm, self.timeout = MPI, comm, timeout
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.done = 0  # collectives completed: the index of the next one, the same on every rank
        self.notes: list[tuple[int, int, str, bool]] = []  # (rank, its collectives done, what, final) from others
        self.departed: set[int] = set()  # collective counts at which this rank left a section early
        self.broken: str | None = None  # why a collective this rank started can never complete
        self.sections: dict[int, list[str]] = {}  # thread -> open sections
        self.lock, self.busy = threading.Lock(), ""  # one thread at a time in a collective; what it does
        self.neighbours: dict[int, int] | None = None  # rank -> pid, for the other ranks on this host
        self.status = MPI.Status()

    # -- a collective --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def collective(self, kind: str, detail: str) -> Iterator[_Watch]:
        """Around one collective: one thread at a time, the same collective on every rank, then counted."""
        doing = f"{kind} {detail}".strip() + self._where()
        if not self.lock.acquire(blocking=False):
            other = self.busy or "another thread is in a collective"
            _abort(self.comm, f"rank {self.rank}: thread {threading.current_thread().name!r} called {doing} "
                   f"while {other}: collectives must come from one thread at a time, in the same order on every "
                   "rank, or the ranks pair different calls")
        try:
            self.busy = f"thread {threading.current_thread().name!r} is in {doing}"
            if self.broken:
                raise DistributedError(f"rank {self.rank} cannot run {doing}: {self.broken}")
            if self.neighbours is None:
                self.neighbours = self._find_neighbours(kind)
            problem = self._agree(kind, detail, doing)
            if problem:
                self.done += 1
                raise DistributedError(problem)
            yield self
            self.done += 1
        finally:
            self.busy = ""
            self.lock.release()

    def _where(self) -> str:
        stack = self.sections.get(threading.get_ident())
        return f" in {stack[-1]}" if stack else ""

    def _agree(self, kind: str, detail: str, doing: str) -> str | None:
        """Whether every rank is in the same collective (max and -min of a hash: exact, no overflow); if not,
        what each rank is doing."""
        mine = _key(f"{kind} {detail}")
        both = np.array([mine, -mine], dtype=np.int64)
        self.wait(self.comm.Iallreduce(self.mpi.IN_PLACE, both, op=self.mpi.MAX), kind)
        if both[0] == -both[1]:
            return None
        every = self.gather(doing)
        return (f"the ranks are in different collectives (their collective {self.done + 1}): "
                f"{by_rank(every)}; every rank must call the same collectives in the same order")

    def _find_neighbours(self, kind: str) -> dict[int, int]:
        """The other ranks in this process's host and PID namespace, by pid (their liveness can be checked)."""
        mine = np.array([_key(_host()), os.getpid()], dtype=np.int64)
        every = np.zeros((self.size, 2), dtype=np.int64)
        self.wait(self.comm.Iallgather(mine, every), kind)
        return {r: int(pid) for r, (host, pid) in enumerate(every) if host == mine[0] and r != self.rank}

    def bcast(self, obj: Any, root: int) -> Any:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL) if self.rank == root else b""
        n = np.array([len(data)], dtype=np.int64)
        self.wait(self.comm.Ibcast(n, root=root), "broadcast")
        buf = bytearray(data) if self.rank == root else bytearray(int(n[0]))
        self.wait(self.comm.Ibcast(buf, root=root), "broadcast")
        return obj if self.rank == root else pickle.loads(buf)

    def gather(self, obj: Any) -> list:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        mine, sizes = np.array([len(data)], dtype=np.int64), np.zeros(self.size, dtype=np.int64)
        self.wait(self.comm.Iallgather(mine, sizes), "all_gather")
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        out = bytearray(int(sizes.sum()))
        self.wait(self.comm.Iallgatherv(data, [out, sizes.tolist(), starts.tolist(), self.mpi.BYTE]), "all_gather")
        return [pickle.loads(out[a:a + n]) for a, n in zip(starts, sizes)]

    # -- waiting -------------------------------------------------------------------------------------
    def wait(self, request, kind: str) -> None:
        """Complete ``request``, hearing from the other ranks meanwhile; a request that cannot complete any
        more (a rank left or died, or the timeout passed) is a ``DistributedError``, and breaks this rank."""
        if request.Test():
            return
        start = checked = time.monotonic()
        try:
            while not request.Test():
                self._hear(kind)
                now = time.monotonic()
                if now - checked > _CHECK_EVERY_S:
                    self._check(kind, now - start)
                    checked = now
                if now - start > 1.0:  # a long wait: the others do something else; stop spinning
                    time.sleep(5e-4)
        except BaseException as e:
            self.broken = f"its {kind} was interrupted ({type(e).__name__}: {_short(e)})"
            raise

    def _hear(self, kind: str) -> None:
        """Read the other ranks' notes; raise if one of them will not join the collective this rank waits in."""
        status = self.status
        while self.comm.Iprobe(source=self.mpi.ANY_SOURCE, tag=_NOTE_TAG, status=status):
            self.notes.append(self.comm.recv(source=status.Get_source(), tag=_NOTE_TAG))
        for note in list(self.notes):
            r, done, what, final = note
            if done > self.done:  # it joined this collective before leaving: keep waiting
                continue
            if not final and done in self.departed:  # this rank left at the same point: still in step
                self.notes.remove(note)
                continue
            raise DistributedError(f"rank {r} {what} after {_count(done, 'collective')}, so it will never join "
                                   f"the {kind} (collective {self.done + 1}{self._where()}) that rank {self.rank} "
                                   "waits in: the job cannot go on")

    def _check(self, kind: str, waited: float) -> None:
        """The ranks on this host are alive; the timeout, if set, has not passed."""
        for r, pid in (self.neighbours or {}).items():
            if not _alive(pid):
                self._hear(kind)  # it may have exited normally after this collective, and said so
                if any(n[0] == r and n[1] > self.done for n in self.notes):
                    continue
                raise DistributedError(f"rank {r} (process {pid} on this host) ended without a word (killed, "
                                       f"crashed, or os._exit) while rank {self.rank} waits for it in {kind} "
                                       f"(collective {self.done + 1}{self._where()}); the job cannot go on")
        if self.timeout is not None and waited > self.timeout:
            raise DistributedError(f"rank {self.rank} waited {waited:.1f} s in {kind} (collective {self.done + 1}"
                                   f"{self._where()}) for the other ranks ({_TIMEOUT_VAR}={self.timeout:g})")

    # -- leaving -------------------------------------------------------------------------------------
    def depart(self, what: str) -> None:
        """This rank left a section early: tell the others, once per point."""
        if self.done not in self.departed:
            self.departed.add(self.done)
            self.tell(what, final=self.broken is not None)  # a broken rank can never join again

    def tell(self, what: str, final: bool) -> None:
        """A note to every other rank (small: sent eagerly; given up after a second if a rank is gone)."""
        note, pending = (self.rank, self.done, what, final), []
        for r in range(self.size):
            with contextlib.suppress(Exception):  # a rank that is gone may refuse it: the others still hear
                if r != self.rank:
                    pending.append(self.comm.isend(note, dest=r, tag=_NOTE_TAG))
        deadline = time.monotonic() + 1.0
        while pending and time.monotonic() < deadline:
            pending = [q for q in pending if not _done(q)]
        for q in pending:
            with contextlib.suppress(Exception):
                q.Cancel()
                q.Free()

    def at_exit(self) -> None:
        """At this process's exit: abort if it leaves the job in the middle of something, else tell the others."""
        if self.mpi.Is_finalized():  # the script finalized MPI itself: nothing more can be said
            return
        open_ = [s for stack in self.sections.values() for s in stack]
        if self.broken:
            _abort(self.comm, f"rank {self.rank} is exiting, but {self.broken}: the job cannot end normally")
        if open_:
            _abort(self.comm, f"rank {self.rank} is exiting while {open_[-1]} still runs in another of its "
                   "threads, where the other ranks wait for it")
        self.tell("exited (its script ended, or called sys.exit)", final=True)


def _done(request) -> bool:
    try:
        return request.Test()
    except Exception:  # its destination is gone: nothing more to wait for
        return True


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _host() -> str:
    """This host and PID namespace: ranks with the same can see each other's processes."""
    parts = [socket.gethostname()]
    with contextlib.suppress(OSError):
        parts.append(pathlib.Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    with contextlib.suppress(OSError):
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    return "|".join(parts)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped by the launcher, does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return not os.path.isdir("/proc/self")  # no /proc at all (not Linux): assume alive
    except (OSError, IndexError):
        return True


def by_rank(values: list) -> str:
    """``values`` (one per rank) in words, ranks with equal values together: "2 on ranks 0-2, 5; 3 on rank 3"."""
    groups: dict[str, list[int]] = {}
    for r, v in enumerate(values):
        groups.setdefault(str(v), []).append(r)
    return "; ".join(f"{v} on {_ranks(rs)}" for v, rs in groups.items())


def _ranks(ranks: list[int]) -> str:
    spans: list[list[int]] = []
    for r in ranks:
        if spans and r == spans[-1][1] + 1:
            spans[-1][1] = r
        else:
            spans.append([r, r])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
    return f"rank {text}" if len(ranks) == 1 else f"ranks {text}"


__all__ = ["DistributedError", "all_gather", "all_reduce", "broadcast", "by_rank", "init", "is_initialized", "rank",
           "section", "world_size"]
