"""neurenix.distributed: a job of one without MPI, clear errors, and real two-rank jobs (mpiexec) where MPI is here."""

import json
import os
import re
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
    monkeypatch.setattr(dist, "_watch", None)
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


def test_broadcast_root_must_be_a_rank(no_mpi4py):
    for root in (1, -1, "0"):
        with pytest.raises(ValueError, match=r"root must be a rank, 0 to 0"):
            dist.broadcast(1, root=root)


def test_a_section_in_a_job_of_one_lets_exceptions_through(no_mpi4py):
    with pytest.raises(KeyError, match="inside"), dist.section("training"):
        raise KeyError("inside")
    with dist.section("training"):
        assert dist.all_gather(1) == [1]


@pytest.mark.parametrize("values, words", [
    ([2, 2, 3, 2], "2 on ranks 0-1, 3; 3 on rank 2"),
    ([1, 2], "1 on rank 0; 2 on rank 1"),
    (["a"] * 5, "a on ranks 0-4"),
])
def test_by_rank_groups_the_ranks_of_each_value(values, words):
    assert dist.by_rank(values) == words


@pytest.mark.parametrize("value, seconds", [("", None), ("  ", None), ("2.5", 2.5), ("30", 30.0)])
def test_the_timeout_comes_from_the_environment(monkeypatch, value, seconds):
    monkeypatch.setenv("NEURENIX_MPI_TIMEOUT", value)
    assert dist._timeout() == seconds


@pytest.mark.parametrize("value", ["0", "-1", "ten", "nan", "inf"])
def test_a_bad_timeout_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("NEURENIX_MPI_TIMEOUT", value)
    with pytest.raises(ValueError, match=rf"NEURENIX_MPI_TIMEOUT must be a number of seconds > 0, got '{value}'"):
        dist._timeout()


def test_alive_tells_a_running_process_from_a_finished_one():
    assert dist._alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while dist._alive(child.pid) and time.monotonic() < deadline:  # a zombie until reaped: not alive either
        time.sleep(0.01)
    assert not dist._alive(child.pid)
    child.wait(timeout=30)
    assert not dist._alive(child.pid)


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
    big = d.all_gather(np.full(100_000, r))  # 800 kB each: more than one eager message
    json.dump({{"rank": r, "size": n, "sum": buf.tolist(), "dtype": str(buf.dtype),
               "bcast": d.broadcast({{"from": r}}), "bcast_last": d.broadcast(r, root=n - 1),
               "gather": d.all_gather(r * 10), "big": [int(b.sum()) for b in big]}}, f)
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
        assert o["bcast"] == {"from": 0} and o["bcast_last"] == 1 and o["gather"] == [0, 10]
        assert o["big"] == [0, 100_000]


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


FAULTS = """
import os, signal, sys, threading, time
import numpy as np
import neurenix.distributed as d

mode, out = sys.argv[1], sys.argv[2]
r = d.rank()
d.all_reduce(np.zeros(3))  # every rank joins the job and does one collective


def fault():  # what the last rank does instead of the next collective
    if mode == "exits": sys.exit(0)
    if mode == "script_ends": return False
    if mode == "sigkill": os.kill(os.getpid(), signal.SIGKILL)
    if mode == "os_exit": os._exit(0)
    if mode == "sleeps": time.sleep(120)
    if mode == "gathers": d.all_gather(r)
    if mode == "leaves_section":
        try:
            with d.section("training"):
                raise ValueError("boom on the last rank")
        except ValueError:
            time.sleep(120)  # caught: this rank lives on, the others must not wait for it
    if mode == "exits_in_thread":  # a daemon thread is inside a section when the process exits
        threading.Thread(target=in_section, daemon=True).start()
        time.sleep(0.5)
        sys.exit(0)
    return True


def in_section():
    with d.section("training"):
        time.sleep(120)  # a long step, never finished: the process exits first


if mode == "threads":  # every rank: two threads call collectives at once
    t = threading.Thread(target=lambda: [d.all_reduce(np.zeros(10)) for _ in range(500)])
    t.start()
    [d.all_gather(r) for _ in range(500)]
    t.join()
elif r < d.world_size() - 1:
    d.all_reduce(np.zeros(3))
elif fault():
    d.all_reduce(np.zeros(3))
open(f"{out}/rank{r}.done", "w").close()
"""

BOUND_S = 20  # a failing job must end within this, job start-up included (on a loaded 2-core machine)


def run_faults(tmp_path, mode, ranks, **kw) -> tuple[subprocess.CompletedProcess, float]:
    script = tmp_path / "faults.py"
    script.write_text(FAULTS)
    start = time.perf_counter()
    r = mpi.run(script, ranks, mode, str(tmp_path), timeout=90, **kw)
    return r, time.perf_counter() - start


@pytest.mark.parametrize("mode, message", [
    ("exits", r"rank {last} exited \(its script ended, or called sys.exit\) after 1 collective, so it will never "
              r"join the all_reduce \(collective 2\) that rank 0 waits in"),
    ("script_ends", r"rank {last} exited .* after 1 collective, so it will never join the all_reduce"),
    ("leaves_section", r"rank {last} left training with ValueError: boom on the last rank after 1 collective, so it "
                       r"will never join the all_reduce \(collective 2\)"),
    ("gathers", r"the ranks are in different collectives \(their collective 2\): all_reduce of 3 float64 on "
                r"ranks? 0(-\d)?; all_gather on rank {last}; every rank must call the same collectives"),
    ("threads", r"thread '.*' called all_\w+.* while thread '.*' is in all_\w+.*: collectives must come from one "
                r"thread at a time"),
    ("exits_in_thread", r"rank {last} is exiting while training still runs in another of its threads"),
    ("sigkill", r"signal 9|Killed"),  # MPICH's launcher ends the job and says so
])
@pytest.mark.parametrize("ranks", [2, 3])
def test_a_rank_that_goes_away_ends_the_job_within_seconds(tmp_path, mode, message, ranks):
    """Whatever the last rank does instead of the next collective, the job ends, non-zero, with the reason."""
    needs_mpi()
    r, elapsed = run_faults(tmp_path, mode, ranks)
    assert r.returncode != 0, r.stderr[-3000:]
    assert re.search(message.format(last=ranks - 1), r.stdout + r.stderr), r.stderr[-3000:]
    assert elapsed < BOUND_S, f"the job took {elapsed:.1f} s to end"
    assert not (tmp_path / "rank0.done").exists()


@pytest.mark.parametrize("mode", ["os_exit", "sigkill"])
def test_a_rank_that_vanishes_is_noticed_where_the_launcher_does_not_clean_up(tmp_path, mode):
    """A process that ends without Python's exit handlers says nothing: the ranks on its host see it gone.
    (MPICH's launcher ends such a job itself unless told not to, as Slurm's srun does not by default.)"""
    needs_mpi()
    if not mpi.is_mpich():
        pytest.skip("-disable-auto-cleanup is an option of MPICH's launcher")
    r, elapsed = run_faults(tmp_path, mode, 2, launcher_args=["-disable-auto-cleanup"])
    assert r.returncode != 0, r.stderr[-3000:]
    if mode == "os_exit":  # a killed rank may still be reported by the launcher first
        assert re.search(r"rank 1 \(process \d+ on this host\) ended without a word \(killed, crashed, or "
                         r"os._exit\) while rank 0 waits for it in all_reduce", r.stderr), r.stderr[-3000:]
    assert elapsed < BOUND_S, f"the job took {elapsed:.1f} s to end"


def test_a_rank_that_does_not_come_ends_the_job_after_the_timeout(tmp_path):
    needs_mpi()
    r, elapsed = run_faults(tmp_path, "sleeps", 2, env={"NEURENIX_MPI_TIMEOUT": "2"})
    assert r.returncode != 0
    assert re.search(r"rank 0 waited 2\.\d s in all_reduce \(collective 2\) for the other ranks "
                     r"\(NEURENIX_MPI_TIMEOUT=2\)", r.stderr), r.stderr[-3000:]
    assert elapsed < BOUND_S


NO_ALARM = """
import sys, time
import numpy as np
import neurenix.distributed as d

mode, out = sys.argv[1], sys.argv[2]
r, n = d.rank(), d.world_size()
total = d.all_reduce(np.ones(4))
if mode == "late":  # a rank arrives 1.5 s after the others: they wait (past the spinning phase) and go on
    time.sleep(1.5 * (r == 1))
    total = d.all_reduce(np.ones(4))
if mode == "every_rank_leaves":  # all ranks leave the section at the same point: still in step
    for attempt in range(2):
        try:
            with d.section("training"):
                total = d.all_reduce(np.ones(4))
                if attempt == 0:
                    raise ValueError("on every rank")
        except ValueError:
            pass
if mode == "rank_0_works_on":  # after the last collective, rank 0 works alone while the others exit
    time.sleep(3 * (r == 0))
open(f"{out}/rank{r}.done", "w").write(str(total.tolist()))
"""


@pytest.mark.parametrize("mode", ["late", "every_rank_leaves", "rank_0_works_on"])
@pytest.mark.parametrize("ranks", [2, 3])
def test_no_false_alarm(tmp_path, mode, ranks):
    """Ranks that arrive late, leave a section together, or end at different times are a healthy job."""
    needs_mpi()
    script = tmp_path / "no_alarm.py"
    script.write_text(NO_ALARM)
    r = mpi.run(script, ranks, mode, str(tmp_path), timeout=90)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr == ""
    for k in range(ranks):
        assert (tmp_path / f"rank{k}.done").read_text() == str([float(ranks)] * 4)


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
