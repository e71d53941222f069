"""Data-parallel meta-training over MPI: meta-iterations per second at 1 and 2 ranks, and the all-reduce's share.

Workload: second-order MAML on a Conv-4 (4 blocks of 3x3 conv, 64 channels, BatchNorm, ReLU, 2x2 max-pool;
Omniglot-sized 1x28x28 inputs), 5-way 1-shot with 5 queries per class, one inner step, meta-batch 32 tasks.
One rank runs the plain ``meta_step`` (as ``meta_learn`` does without ``distributed``) in one process; two
ranks run ``mpiexec -n 2 python -m mpi4py`` with each rank taking 16 tasks through ``DataParallel`` (as
``meta_learn(distributed=True)`` does). One thread per rank. The 1- and 2-rank jobs alternate round by
round (the machine is shared and noisy); medians over rounds.

Wall-clock speedup is the measure; the CPU time of the busiest rank is reported beside it, since on
a shared 2-core machine two ranks rarely get two free cores.

The 2-rank step is split into: time inside the all-reduce (communication plus waiting for the slower
rank), packing/unpacking the gradient buffer (host copies), and the rest (the meta-gradient of the share,
the optimizer step). A bare all-reduce of the same buffer, after a barrier, gives communication alone;
beside it mpi4py's own Allreduce of that buffer, so that their difference is what neurenix's safety
checks cost per meta-step (the agreement check on every collective, the polling wait that hears from
the other ranks), and the same two on an 8-value buffer, where latency is all there is.

    python bench/distributed.py --out bench/results/distributed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

import neurenix as nx
from neurenix import distributed as dist
from neurenix import nn
from neurenix.meta import MAML
from neurenix.meta.distributed import DataParallel
from neurenix.meta.tasks import check_tasks
from neurenix.models import Conv4
from neurenix.testing import mpi

META_BATCH, WAYS, QUERIES, SIZE = 32, 5, 5, 28


def conv4(channels: int) -> nn.Module:
    return Conv4(1, channels, WAYS, image_size=SIZE)


def workload(channels: int):
    """The learner, its optimizer and a meta-batch: the same on every rank (fixed seeds)."""
    nx.manual_seed(0)
    learner = MAML(conv4(channels), inner_lr=0.4, meta_lr=1e-3, inner_steps=1)
    rng = np.random.default_rng(0)
    tasks = [(nx.tensor(rng.standard_normal((WAYS, 1, SIZE, SIZE)), dtype=nx.float32), nx.arange(WAYS),
              nx.tensor(rng.standard_normal((WAYS * QUERIES, 1, SIZE, SIZE)), dtype=nx.float32),
              nx.tensor(np.repeat(np.arange(WAYS), QUERIES))) for _ in range(META_BATCH)]
    return learner, learner.default_optimizer(), check_tasks(tasks)


class Clock:
    """Accumulated seconds of the calls it wraps."""

    def __init__(self):
        self.seconds = 0.0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
        return timed


def worker(iterations: int, channels: int) -> dict:
    """Time ``iterations`` meta-steps after one warm-up (this process is one rank of the job)."""
    learner, opt, tasks = workload(channels)
    if dist.world_size() == 1:
        step = learner.meta_step
    else:
        reduce_clock, pack_clock = Clock(), Clock()
        dist.all_reduce = reduce_clock.wrap(dist.all_reduce)  # DataParallel looks it up on the module
        DataParallel._pack = pack_clock.wrap(DataParallel._pack)
        DataParallel._unpack = pack_clock.wrap(DataParallel._unpack)
        step = DataParallel(learner, opt, tasks, META_BATCH).meta_step
    step(tasks, opt, None, True)[0].item()  # warm-up
    if dist.world_size() > 1:
        reduce_clock.seconds = pack_clock.seconds = 0.0
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(iterations):
        step(tasks, opt, None, True)[0].item()
    total, cpu = time.perf_counter() - start, time.process_time() - cpu
    out = {"ranks": dist.world_size(), "ms_per_iteration": total / iterations * 1e3,
           "cpu_ms_per_iteration_per_rank": dist.all_gather(cpu / iterations * 1e3),
           "parameters": sum(p.numel() for p in learner.parameters())}
    if dist.world_size() > 1:
        buffer = np.zeros(step.__self__._pack(None, None, 0, 0).size)  # the packed buffer's size
        out |= {"all_reduce_ms": reduce_clock.seconds / iterations * 1e3,
                "pack_unpack_ms": pack_clock.seconds / iterations * 1e3, "buffer_bytes": buffer.nbytes}
        out |= bare_all_reduce(buffer)
    return out


def bare_all_reduce(buffer: np.ndarray, rounds: int = 100) -> dict:
    """Communication alone (after a barrier), neurenix's all_reduce against mpi4py's Allreduce of the same
    buffer, interleaved; their difference is what neurenix's checks cost (the agreement check, the polling
    wait). The same on an 8-value buffer, where latency is all there is."""
    from mpi4py import MPI
    comm = MPI.COMM_WORLD

    def median_ms(reduce, buf):
        times = []
        for _ in range(rounds):
            comm.Barrier()  # time communication, not waiting
            t = time.perf_counter()
            reduce(buf)
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1e3

    def raw(buf):
        comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)

    small = np.zeros(8)
    return {"bare_all_reduce_ms": median_ms(dist.all_reduce, buffer), "raw_mpi_all_reduce_ms": median_ms(raw, buffer),
            "small_all_reduce_ms": median_ms(dist.all_reduce, small), "small_raw_mpi_all_reduce_ms":
            median_ms(raw, small)}


def job(ranks: int, args) -> dict:
    cmd = [__file__, "--worker", "--iterations", str(args.iterations), "--channels", str(args.channels)]
    if ranks == 1:
        r = subprocess.run([sys.executable, *cmd], capture_output=True, text=True, timeout=1800)
    else:
        r = mpi.run(cmd[0], ranks, *cmd[1:], timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"the {ranks}-rank job failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        out = worker(args.iterations, args.channels)
        if dist.rank() == 0:
            print(json.dumps(out))
        return
    load_before = os.getloadavg()
    runs = {1: [], 2: []}
    for i in range(args.rounds):
        for ranks in runs:
            runs[ranks].append(job(ranks, args))
            print(f"round {i}: {ranks} rank(s) {runs[ranks][-1]['ms_per_iteration']:.0f} ms per meta-iteration",
                  flush=True)
    med = {r: statistics.median(x["ms_per_iteration"] for x in v) for r, v in runs.items()}
    cpu = {r: statistics.median(max(x["cpu_ms_per_iteration_per_rank"]) for x in v) for r, v in runs.items()}
    two = {k: statistics.median(x[k] for x in runs[2]) for k in (
        "all_reduce_ms", "pack_unpack_ms", "bare_all_reduce_ms", "raw_mpi_all_reduce_ms", "small_all_reduce_ms",
        "small_raw_mpi_all_reduce_ms")}
    two["checks_ms"] = two["bare_all_reduce_ms"] - two["raw_mpi_all_reduce_ms"]  # neurenix's checks, per step
    results = {
        "ms_per_iteration": {f"{r}_rank{'s' * (r > 1)}": m for r, m in med.items()},
        "iterations_per_s": {f"{r}_rank{'s' * (r > 1)}": 1e3 / m for r, m in med.items()},
        "speedup_2_ranks": med[1] / med[2],
        # CPU seconds of the busiest rank (its all-reduce wait included, as MPI polls): what the speedup
        # would be if each rank had a core of its own, which a shared machine does not promise
        "cpu_ms_per_iteration_busiest_rank": {f"{r}_rank{'s' * (r > 1)}": c for r, c in cpu.items()},
        "cpu_time_speedup_2_ranks": cpu[1] / cpu[2],
        "round_speedups": [a["ms_per_iteration"] / b["ms_per_iteration"] for a, b in zip(runs[1], runs[2])],
        "2_ranks": two | {"all_reduce_share": two["all_reduce_ms"] / med[2],
                          "bare_all_reduce_share": two["bare_all_reduce_ms"] / med[2],
                          "pack_unpack_share": two["pack_unpack_ms"] / med[2],
                          "checks_share": two["checks_ms"] / med[2],
                          "buffer_bytes": runs[2][0]["buffer_bytes"]},
    }
    report = {"benchmark": "distributed", "machine": platform.machine(), "cpus": os.cpu_count(),
              "backends": [str(s) for s in nx.list_backends() if s.available], "threads_per_rank": 1,
              "workload": {"model": f"Conv-4 ({args.channels} channels), 1x{SIZE}x{SIZE}",
                           "parameters": runs[1][0]["parameters"], "algorithm": "MAML second order, 1 inner step",
                           "meta_batch": META_BATCH, "task": f"{WAYS}-way 1-shot, {QUERIES} queries per class"},
              "rounds": args.rounds, "iterations_per_round": args.iterations,
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "runs": {str(r): v for r, v in runs.items()}, "results": results}
    print(json.dumps(results, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
