"""The host thread budget: cgroup quota and affinity parsing (fake files), the contention count, and
set_num_threads governing NumPy's BLAS."""

from __future__ import annotations

import os

import pytest

import neurenix as nx
from neurenix.backend import threads


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize("text, cpus", [("max 100000\n", None), ("200000 100000\n", 2.0), ("150000 100000", 1.5),
                                        ("50000 100000", 0.5), ("", None), ("junk", None), ("0 100000", None)])
def test_parse_cpu_max(text, cpus):
    assert threads.parse_cpu_max(text) == cpus


@pytest.mark.parametrize("quota, period, cpus", [("-1\n", "100000\n", None), ("300000\n", "100000\n", 3.0),
                                                 ("x", "100000", None), ("100000", "0", None)])
def test_parse_cfs(quota, period, cpus):
    assert threads.parse_cfs(quota, period) == cpus


def test_cgroup_v2_takes_the_least_limit_of_the_path(tmp_path):
    root = tmp_path / "cg"
    write(root / "cpu.max", "max 100000\n")
    write(root / "user.slice" / "cpu.max", "400000 100000\n")
    write(root / "user.slice" / "job" / "cpu.max", "150000 100000\n")
    write(tmp_path / "cgroup", "0::/user.slice/job\n")
    assert threads.cgroup_cpu_limit(str(root), str(tmp_path / "cgroup")) == 1.5


def test_cgroup_v2_container_root(tmp_path):
    write(tmp_path / "cg" / "cpu.max", "200000 100000\n")
    write(tmp_path / "cgroup", "0::/\n")
    assert threads.cgroup_cpu_limit(str(tmp_path / "cg"), str(tmp_path / "cgroup")) == 2.0


def test_cgroup_v1_cfs(tmp_path):
    base = tmp_path / "cg" / "cpu,cpuacct" / "docker" / "abc"
    write(base / "cpu.cfs_quota_us", "250000\n")
    write(base / "cpu.cfs_period_us", "100000\n")
    write(tmp_path / "cgroup", "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n")
    assert threads.cgroup_cpu_limit(str(tmp_path / "cg"), str(tmp_path / "cgroup")) == 2.5


def test_no_cgroup_files_is_no_limit(tmp_path):
    assert threads.cgroup_cpu_limit(str(tmp_path / "none"), str(tmp_path / "none" / "cgroup")) is None


@pytest.mark.parametrize("affinity, quota, n", [(8, None, 8), (8, 2.0, 2), (8, 1.5, 2), (2, 4.0, 2), (4, 0.5, 1)])
def test_budget_is_affinity_and_quota(affinity, quota, n):
    assert threads.cpu_budget(affinity, quota) == n


def test_budget_reads_this_process():
    assert 1 <= threads.cpu_budget() <= len(os.sched_getaffinity(0))


@pytest.mark.parametrize("env, n", [({}, None), ({"OMP_NUM_THREADS": "3"}, 3), ({"OMP_NUM_THREADS": "4,2"}, 4),
                                    ({"OMP_NUM_THREADS": "0"}, None), ({"NEURENIX_NUM_THREADS": "2",
                                                                        "OMP_NUM_THREADS": "5"}, 2)])
def test_env_fixes_the_count(env, n):
    assert threads.env_num_threads(env) == n


def test_loadavg_and_own_threads(tmp_path):
    write(tmp_path / "loadavg", "3.04 3.35 2.97 5/134 29244\n")
    for tid, state in [("1", "R"), ("2", "S"), ("3", "R")]:
        write(tmp_path / "task" / tid / "stat", f"{tid} (python (x) y) {state} 1 2 3\n")
    assert threads.parse_loadavg("0.1 0.2 0.3 5/134 29244") == 5
    assert threads.parse_loadavg("junk") is None
    assert threads.own_running(str(tmp_path / "task")) == 2
    assert threads.others_running(str(tmp_path / "loadavg"), str(tmp_path / "task")) == 3
    assert threads.others_running(str(tmp_path / "missing"), str(tmp_path / "task")) is None


@pytest.mark.parametrize("budget, others, cpus, n", [(2, 0, 2, 2), (2, 1, 2, 1), (2, 5, 2, 1), (2, 10, 64, 2),
                                                     (8, 3, 8, 5)])
def test_contended_count(budget, others, cpus, n):
    assert threads.contended_count(budget, others, cpus) == n


@pytest.mark.parametrize("seen, counts, told", [
    ([1, 1, 0, 0, 0, 0], [2, 1, 1, 1, 1, 2], [1, 2]),  # drops on the second look in a row, rises after the window
    ([1, 0, 1, 0, 0, 0], [2, 2, 2, 2, 2, 2], []),  # a process runnable for a moment is not contention
    ([0, 3, 3, 3, 1, 0], [2, 2, 1, 1, 1, 1], [1]),
])
def test_governor_drops_on_contention_seen_twice_and_rises_after_the_window(monkeypatch, seen, counts, told):
    g = threads.Governor()
    g.budget, g.current, g.cpus, g.follow = 2, 2, 2, True
    looks = iter(seen)
    monkeypatch.setattr(threads, "others_running", lambda: next(looks))
    applied = []
    g.apply = applied.append
    got = []
    for _ in seen:
        g._next = 0.0
        g.tick()
        got.append(g.current)
    assert got == counts and applied == told


def test_set_num_threads_governs_blas():
    if threads.blas_backend() is None:
        pytest.skip("no BLAS whose threads can be set (no OpenBLAS, no threadpoolctl)")
    before = nx.get_num_threads()
    try:
        nx.set_num_threads(1)
        assert threads.BLAS.get_num_threads() == 1
        nx.set_num_threads(2)
        assert threads.BLAS.get_num_threads() == 2
        tpc = pytest.importorskip("threadpoolctl")
        assert {p["num_threads"] for p in tpc.threadpool_info() if p["user_api"] == "blas"} == {2}
    finally:
        nx.set_num_threads(before)
