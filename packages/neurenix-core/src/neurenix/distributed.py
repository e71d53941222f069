"""Several processes as one job, over MPI (mpi4py): ``pip install 'neurenix-core[distributed]'``.

Launch ``mpirun -n 4 python -m mpi4py script.py`` (or ``srun python -m mpi4py script.py`` under Slurm):
every process runs the same script and learns its place with ``rank()`` and ``world_size()``. Without
mpi4py, or started as a plain ``python script.py``, the process is a job of one (rank 0, world size 1) and
every collective returns its input, so the same script runs both ways. ``-m mpi4py`` makes an uncaught
exception on one rank abort the whole job instead of leaving the others waiting in a collective; ``init``
installs the same safeguard for scripts started without it.

Collectives: ``all_reduce`` sums a NumPy buffer in place (MPI's buffer API: no pickling, for the hot
path); ``broadcast`` and ``all_gather`` move picklable objects (for one-off set-up).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np

_comm = None  # the MPI communicator once init() ran (None: not initialised, or a job of one without mpi4py)
_initialized = False
_LAUNCHER_SIZE = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")  # set by Open MPI's and MPICH's (hydra, Slurm PMI) launchers
_ABORT_GRACE_S = 0.5  # between printing an uncaught exception and aborting the job
_INSTALL = "pip install 'neurenix-core[distributed]' mpich   (or a system MPI: apt-get install libopenmpi-dev)"


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


def init(comm: Any = None) -> None:
    """Join the job (idempotent): MPI's world communicator, or ``comm`` (an mpi4py communicator) if given.

    Without mpi4py the process is a job of one, unless an MPI launcher started several processes:
    then each would silently train alone, so that is an error naming the install command.
    """
    global _comm, _initialized
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
    _comm, _initialized = comm, True
    if comm is not None and comm.Get_size() > 1:
        _abort_on_uncaught_exception(comm)


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

    sys.excepthook = hook


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
        from mpi4py import MPI
        _comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
    return buffer


def broadcast(obj: Any, root: int = 0) -> Any:
    """Rank ``root``'s ``obj`` (pickled), on every rank."""
    return obj if world_size() == 1 else _comm.bcast(obj, root=root)


def all_gather(obj: Any) -> list:
    """Every rank's ``obj`` (pickled), as a list in rank order, on every rank."""
    return [obj] if world_size() == 1 else _comm.allgather(obj)


__all__ = ["all_gather", "all_reduce", "broadcast", "init", "is_initialized", "rank", "world_size"]
