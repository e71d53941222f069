"""The compiled library's settings: the thread count (through neurenix.set_num_threads, reaching OpenMP from
every Python thread) and the heap setting that keeps freed large buffers for reuse."""

import os
import threading

import pytest
from neurenix_backend_cpu import native

import neurenix as nx


def test_set_num_threads_reaches_openmp():
    before = nx.get_num_threads()
    try:
        nx.set_num_threads(1)
        assert native.lib.nx_get_num_threads() == 1 and native.threads == 1
        nx.set_num_threads(2)
        assert native.lib.nx_get_num_threads() == 2 and native.threads == 2
    finally:
        nx.set_num_threads(before)


@pytest.mark.parametrize("n", [1, 2])
def test_set_num_threads_holds_in_other_threads(n):
    """OpenMP keeps omp_set_num_threads per calling thread: the setting must reach kernels that another
    Python thread (a data loader, a second learner) calls too."""
    before = nx.get_num_threads()
    seen = []
    try:
        nx.set_num_threads(n)
        worker = threading.Thread(target=lambda: seen.append(native.lib.nx_get_num_threads()))
        worker.start()
        worker.join()
    finally:
        nx.set_num_threads(before)
    assert seen == [n]


def test_freed_memory_is_kept_unless_the_user_tunes_malloc(monkeypatch):
    calls = []
    monkeypatch.setattr(native, "lib", type("Lib", (), {"nx_keep_freed_memory": staticmethod(calls.append)}))
    for env in ({"NEURENIX_CPU_KEEP_FREED": "0"}, {"MALLOC_TRIM_THRESHOLD_": "1"},
                {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1"}):
        with monkeypatch.context() as m:
            for k, v in env.items():
                m.setenv(k, v)
            assert not native.keep_freed_memory()
    assert calls == []
    for k in ("NEURENIX_CPU_KEEP_FREED", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"):
        monkeypatch.delenv(k, raising=False)
    native.keep_freed_memory()
    assert calls == [native.KEEP_FREED_BYTES]


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_blas_jobs_run_each_once_at_the_same_time(jobs):
    """nx_blas_threads, through which NumPy's OpenBLAS runs its parallel jobs: job i gets its own slot of the
    job array and OpenBLAS's argument, and all jobs of a call run at once (OpenBLAS's jobs wait on each other:
    here each waits until every job has started, which never ends if they ran in turn)."""
    ffi, size = native.ffi, 16
    data = ffi.new(f"char[{jobs * size}]")
    started, seen = threading.Barrier(jobs, timeout=10), []

    @ffi.callback("void(int, void *, int)")
    def job(i, slot, arg):
        started.wait()  # (broken after 10 s if the jobs ran in turn: then nothing is recorded)
        seen.append((i, int(ffi.cast("uintptr_t", slot)) - int(ffi.cast("uintptr_t", data)), arg))

    native.lib.nx_blas_threads(1, job, jobs, size, data, 7)
    assert sorted(seen) == [(i, i * size, 7) for i in range(jobs)]


def test_numpy_blas_runs_on_our_threads_and_stays_exact():
    import numpy as np

    from neurenix.backend import threads

    if threads.blas_backend() != "openblas" or not native.lib.nx_has_openmp():
        pytest.skip("NumPy's BLAS is not OpenBLAS, or the kernels were built without OpenMP")
    if not any(hasattr(threads.BLAS._openblas, name) for name in threads._OPENBLAS_CALLBACK):
        pytest.skip("this OpenBLAS takes no threads callback (0.3.27+ does)")
    # one that takes it runs its jobs on our threads, unless the user said otherwise
    if os.environ.get("NEURENIX_CPU_SHARE_BLAS_POOL") != "0":
        assert threads.BLAS.pool == "neurenix-backend-cpu's OpenMP threads"
    before = nx.get_num_threads()
    a, b = np.random.default_rng(0).random((2, 300, 300))
    try:
        nx.set_num_threads(2)
        np.testing.assert_allclose(a @ b, np.einsum("ij,jk->ik", a, b), rtol=1e-12)
    finally:
        nx.set_num_threads(before)


def test_blas_jobs_get_threads_of_their_own_when_openmp_gives_too_few():
    """Capped at one OpenMP thread (OMP_THREAD_LIMIT=1), the jobs still all run at once, on pthreads."""
    import subprocess
    import sys

    code = ("import threading; from neurenix_backend_cpu import native; ffi = native.ffi; seen = []; "
            "b = threading.Barrier(3, timeout=10); data = ffi.new('char[48]')\n"
            "@ffi.callback('void(int, void *, int)')\ndef job(i, slot, arg): b.wait(); seen.append(i)\n"
            "native.lib.nx_blas_threads(1, job, 3, 16, data, 0); print(sorted(seen))")
    env = {**__import__("os").environ, "OMP_THREAD_LIMIT": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[0, 1, 2]", out.stderr


def test_cpu_feature_checks_agree_with_the_kernel():
    """nx_cpu_runs, which picks a portable wheel's AVX2 or AVX-512 module, against Linux's CPU flags on x86-64; on
    other machines (aarch64) no x86 module may ever be picked. A build from source is for this machine ("native")."""
    import pathlib
    import platform
    if native.lib is None:
        pytest.skip("no compiled kernels")
    if platform.machine().lower() in ("x86_64", "amd64"):
        cpuinfo = pathlib.Path("/proc/cpuinfo")
        if not cpuinfo.is_file():
            pytest.skip("no /proc/cpuinfo (not Linux)")
        flags = set(next(line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")).split())
        v3 = {"avx2", "fma", "bmi2"} <= flags
        v4 = v3 and {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"} <= flags
    else:  # (qemu-user shows the host's /proc/cpuinfo: it cannot be read for this machine's features)
        v3 = v4 = False
    assert native.lib.nx_cpu_runs(b"x86-64-v3") == v3
    assert native.lib.nx_cpu_runs(b"x86-64-v4") == v4
    assert native.lib.nx_cpu_runs(b"no-such-target") == 0
    assert native.TARGET in {"native", "x86-64-v2", "x86-64-v3", "x86-64-v4", "armv8-a"} | {
        os.environ.get("NEURENIX_CPU_MARCH")}


@pytest.mark.parametrize("env, want", [({}, "spin"), ({"NEURENIX_CPU_SHARE_BLAS_POOL": "0"}, "PASSIVE"),
                                       ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE"), ({"GOMP_SPINCOUNT": "7"}, "7")])
def test_idle_threads_wait_policy(env, want):
    """Set before libgomp loads: a bounded spin where OpenBLAS shares our pool, sleep at once where BLAS keeps its
    own threads, and a user's setting kept."""
    import subprocess
    import sys

    from neurenix.backend import threads
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")} | env
    code = ("import os, neurenix_backend_cpu.native\n"
            "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))")
    policy, spins = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True,
                                   check=True).stdout.split()
    if want == "spin":
        want = "spin" if threads.BLAS.can_share_pool() else "PASSIVE"
        assert (policy, spins) == (("None", "100000") if want == "spin" else ("PASSIVE", "None"))
    elif want == "7":
        assert (policy, spins) == ("None", "7")
    else:
        assert policy == want
