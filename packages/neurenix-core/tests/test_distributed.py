"""neurenix.distributed: a job of one without MPI, clear errors, and real two-rank jobs (mpiexec) where MPI is here."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from neurenix import distributed as dist
from neurenix.testing import mpi


def needs_mpi():
    reason = mpi.unavailable()
    if reason and os.environ.get("NEURENIX_REQUIRE_MPI"):
        pytest.fail(f"NEURENIX_REQUIRE_MPI is set but {reason}")
    if reason:
        pytest.skip(reason)


@pytest.fixture
def no_mpi4py(monkeypatch):
    """neurenix.distributed as in a process where mpi4py is not installed, not yet initialised."""
    monkeypatch.setattr(dist, "_load_mpi", lambda: None)
    monkeypatch.setattr(dist, "_comm", None)
    monkeypatch.setattr(dist, "_initialized", False)
    for var in dist._LAUNCHER_SIZE:
        monkeypatch.delenv(var, raising=False)


def test_without_mpi4py_a_job_of_one(no_mpi4py):
    assert not dist.is_initialized()
    assert (dist.rank(), dist.world_size()) == (0, 1)
    assert dist.is_initialized()
    buf = np.arange(4.0)
    assert dist.all_reduce(buf) is buf and buf.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert dist.broadcast({"a": 1}) == {"a": 1}
    assert dist.all_gather(3) == [3]


def test_launched_as_many_without_mpi4py_is_an_error(no_mpi4py, monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "2")
    with pytest.raises(ImportError, match=r"one of 2 processes.*mpi4py is not installed.*pip install"):
        dist.init()


@pytest.mark.parametrize("buf", [np.arange(4), np.zeros((4, 4))[:, 0], [1.0, 2.0]], ids=["int", "strided", "list"])
def test_all_reduce_rejects_what_mpi_cannot_sum_in_place(no_mpi4py, buf):
    with pytest.raises(TypeError, match="C-contiguous float32 or float64"):
        dist.all_reduce(buf)


def python(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_mpi4py_without_an_mpi_library_explains_the_install():
    needs_mpi()
    r = python("import neurenix.distributed as d; d.init()", {"MPI4PY_LIBMPI": "/nonexistent/libmpi.so"})
    assert r.returncode != 0
    assert "cannot load an MPI library" in r.stderr and "pip install" in r.stderr, r.stderr


def test_plain_python_with_mpi4py_is_a_job_of_one():
    needs_mpi()
    r = python("import neurenix.distributed as d; print(d.rank(), d.world_size())")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "1"]


COLLECTIVES = """
import json, sys
import numpy as np
import neurenix.distributed as d

r, n = d.rank(), d.world_size()
buf = np.arange(5, dtype=np.{dtype}) * (r + 1)
d.all_reduce(buf)
with open(f"{{sys.argv[1]}}/rank{{r}}.json", "w") as f:  # a file per rank: the ranks' stdout can interleave
    json.dump({{"rank": r, "size": n, "sum": buf.tolist(), "dtype": str(buf.dtype),
               "bcast": d.broadcast({{"from": r}}), "gather": d.all_gather(r * 10)}}, f)
"""


def results(out, ranks):
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(ranks)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_collectives_on_two_ranks(tmp_path, dtype):
    needs_mpi()
    script = tmp_path / "collectives.py"
    script.write_text(COLLECTIVES.format(dtype=dtype))
    r = mpi.run(script, 2, str(tmp_path))
    assert r.returncode == 0, r.stderr
    out = results(tmp_path, 2)
    assert [o["rank"] for o in out] == [0, 1]
    for o in out:
        assert o["size"] == 2 and o["dtype"] == dtype
        assert o["sum"] == (np.arange(5) * 3).tolist()  # rank 0 gives 1x, rank 1 gives 2x
        assert o["bcast"] == {"from": 0} and o["gather"] == [0, 10]


RAISES = """
import sys, numpy as np
import neurenix.distributed as d

if d.rank() == 1:
    raise RuntimeError("rank 1 fails on purpose")
d.all_reduce(np.zeros(3))  # rank 0 waits here for a partner that never comes
"""


@pytest.mark.parametrize("with_module", [True, False], ids=["python -m mpi4py", "plain script"])
def test_a_raising_rank_ends_the_job_within_seconds(tmp_path, with_module):
    """With ``-m mpi4py`` (the documented launch) or init()'s own hook, the job aborts instead of hanging."""
    needs_mpi()
    script = tmp_path / "raises.py"
    script.write_text(RAISES)
    start = time.perf_counter()
    r = mpi.run(script, 2, timeout=60, with_mpi4py=with_module)
    elapsed = time.perf_counter() - start
    assert r.returncode != 0
    assert "rank 1 fails on purpose" in r.stderr
    assert elapsed < 20, f"the job took {elapsed:.1f} s to end"


def test_the_same_script_runs_in_one_process(tmp_path):
    """Without a launcher the collectives script is a job of one (mpi4py present or not)."""
    script = tmp_path / "collectives.py"
    script.write_text(COLLECTIVES.format(dtype="float64"))
    r = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    (o,) = results(tmp_path, 1)
    assert (o["rank"], o["size"], o["sum"], o["gather"]) == (0, 1, list(range(5)), [0])



def test_init_with_a_communicator_of_ones_own(tmp_path):
    """``init(comm)`` joins the given communicator: on COMM_SELF each of two ranks is a job of one."""
    needs_mpi()
    script = tmp_path / "self.py"
    script.write_text("import sys\nfrom mpi4py import MPI\nimport neurenix.distributed as d\n"
                      "d.init(MPI.COMM_SELF)\nw = MPI.COMM_WORLD.Get_rank()\n"
                      "open(f'{sys.argv[1]}/{w}.txt', 'w').write(f'{d.rank()} {d.world_size()}')\n")
    r = mpi.run(script, 2, str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert [(tmp_path / f"{w}.txt").read_text() for w in (0, 1)] == ["0 1", "0 1"]
