"""The compiled library's settings: the thread count (through neurenix.set_num_threads, reaching OpenMP from
every Python thread) and the heap setting that keeps freed large buffers for reuse."""

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
