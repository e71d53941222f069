"""Starting real MPI jobs from a test: ``run(script, ranks)`` launches ``mpiexec -n ranks python -m mpi4py``.

``unavailable()`` says why no job can start here (None when one can); tests skip with that reason unless
the environment variable ``NEURENIX_REQUIRE_MPI`` is set, as CI's ``distributed`` environment does.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import signal
import subprocess
import sys


def mpiexec() -> str | None:
    """The launcher: the one beside this Python (the ``mpich`` wheel puts it there), else the first on PATH."""
    return shutil.which("mpiexec", path=str(pathlib.Path(sys.executable).parent)) or shutil.which("mpiexec")


def unavailable() -> str | None:
    """Why an MPI job cannot start here, or None."""
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install 'neurenix-core[distributed]' mpich)"
    if mpiexec() is None:
        return "no mpiexec found beside this Python or on PATH (pip install mpich)"
    return None


def _version() -> str:
    launcher = mpiexec()
    if launcher is None:
        raise RuntimeError(unavailable())
    return subprocess.run([launcher, "--version"], capture_output=True, text=True, timeout=60).stdout


def is_mpich() -> bool:
    """Whether the launcher is MPICH's (hydra), whose options ``run(launcher_args=...)`` may then pass."""
    return "HYDRA" in _version()


def run(script: str | os.PathLike, ranks: int, *args: str, timeout: float = 60.0, env: dict | None = None,
        with_mpi4py: bool = True, launcher_args: list[str] | tuple = ()) -> subprocess.CompletedProcess:
    """Run ``script`` on ``ranks`` processes of this Python; returns the finished process (text output).
    ``with_mpi4py=False`` starts ``python script`` rather than ``python -m mpi4py script``; ``launcher_args``
    go to ``mpiexec`` before ``-n``. A job still running after ``timeout`` seconds is killed, every rank with
    it, and ``subprocess.TimeoutExpired`` raised, so that a hang fails a test instead of blocking it.

    Open MPI needs leave to run as root and to place more ranks than cores; MPICH needs neither.
    """
    version = _version()
    extra = ["--allow-run-as-root", "--oversubscribe"] if "Open MPI" in version or "OpenRTE" in version else []
    module = ["-m", "mpi4py"] if with_mpi4py else []
    cmd = [mpiexec(), *extra, *launcher_args, "-n", str(ranks), sys.executable, *module, str(script), *args]
    # a session of its own, so that a job past its timeout is killed with every rank it started
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                          env={**os.environ, **(env or {})}) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
