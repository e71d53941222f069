"""Bounded-memory second-order MAML: peak memory and time per meta-iteration, with and without
``checkpoint_inner_loop``, at 1, 5, 10 and 20 inner steps, on MAML's Conv-4; and iMAML, whose implicit
meta-gradient keeps nothing of the inner loop (``--modes plain imaml``).

Workload: Conv-4 (4 x [3x3 conv, 64 channels, BatchNorm, ReLU, 2x2 max-pool], then Linear) on 28x28
one-channel images (Omniglot's shape), 5-way 5-shot with 5 query images per class, a meta-batch of 2
tasks (small, so that the whole run takes minutes on two cores; memory scales with it), inner lr 0.4,
second order, float32.

Each configuration runs in its own subprocess, so that no allocation of one leaks into another's peak:
one warm-up meta-iteration, ``--number`` timed ones (median reported), then one more under
``tracemalloc``. The tracemalloc peak is the figure compared: NumPy reports its array allocations to it,
so it counts exactly the bytes the meta-iteration holds at its worst moment (tensors, the graph,
Python objects), independent of the interpreter's baseline and of how the allocator returns memory to
the system; it does not see memory allocated by C code outside NumPy (none here). The process's peak
resident set (``ru_maxrss``) is reported beside it, with the RSS after set-up, as a cross-check.

    python bench/maml_memory.py --out bench/results/maml_memory.json
    python bench/maml_memory.py --modes plain imaml --steps 1 5 10 --out bench/results/imaml_memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

import neurenix as nx
from neurenix.meta import MAML, iMAML
from neurenix.meta.tasks import check_tasks
from neurenix.models import Conv4
from neurenix.optim import Adam

STEPS = (1, 5, 10, 20)
MODES = ("plain", "checkpointed", "imaml")
WAYS, SHOTS, QUERIES, TASKS = 5, 5, 5, 2


def conv4(ways: int = WAYS, channels: int = 64) -> Conv4:
    return Conv4(1, channels, ways, image_size=28)  # 28 -> 14 -> 7 -> 3 -> 1


def tasks(seed: int = 0) -> list:
    g = np.random.default_rng(seed)
    out = []
    for _ in range(TASKS):
        templates = g.normal(size=(WAYS, 1, 28, 28)).astype(np.float32)
        task = []
        for k in (SHOTS, QUERIES):
            y = np.repeat(np.arange(WAYS), k)
            task += [nx.tensor(templates[y] + 0.5 * g.normal(size=(len(y), 1, 28, 28)).astype(np.float32)),
                     nx.tensor(y, dtype=nx.int64)]
        out.append(tuple(task))
    return out


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def worker(steps: int, mode: str, number: int) -> dict:
    nx.manual_seed(0)
    if mode == "imaml":  # the same inner rate; lam 2 and 5 conjugate-gradient steps, the paper's Omniglot values
        maml = iMAML(conv4(), inner_lr=0.4, inner_steps=steps, lam=2.0, cg_steps=5)
    else:
        maml = MAML(conv4(), inner_lr=0.4, inner_steps=steps, checkpoint_inner_loop=mode == "checkpointed")
    opt = Adam(maml.parameters(), lr=1e-3)
    checked = check_tasks(tasks())

    def iteration():
        loss, _ = maml.meta_step(checked, opt, None, True)
        return loss.item()

    baseline = rss_mb()
    first_loss = iteration()  # warm-up; also the loss at the initial weights, equal in both modes
    times = []
    for _ in range(number):
        start = time.perf_counter()
        iteration()
        times.append(time.perf_counter() - start)
    rss = rss_mb()
    tracemalloc.start()
    tracemalloc.reset_peak()
    iteration()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"steps": steps, "mode": mode, "checkpointed": mode == "checkpointed", "seconds": statistics.median(times),
            "times": times,
            "traced_peak_mb": peak / 2**20, "rss_peak_mb": rss, "rss_after_setup_mb": baseline,
            "first_loss": first_loss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--number", type=int, default=3)
    ap.add_argument("--steps", type=int, nargs="*", default=list(STEPS))
    ap.add_argument("--modes", nargs="+", choices=MODES, default=["plain", "checkpointed"],
                    help="plain and checkpointed second-order MAML, iMAML")
    ap.add_argument("--worker", nargs=2, metavar=("STEPS", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(int(args.worker[0]), args.worker[1], args.number)))
        return
    runs = []
    print(f"{'steps':>5} {'mode':>13} {'s/iter':>7} {'traced MB':>10} {'RSS MB':>7}", flush=True)
    for steps in args.steps:
        for mode in args.modes:
            out = subprocess.run([sys.executable, __file__, "--worker", str(steps), mode, "--number", str(args.number)],
                                 check=True, capture_output=True, text=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            runs.append(r)
            print(f"{steps:>5} {mode:>13} {r['seconds']:>7.2f} {r['traced_peak_mb']:>10.1f} {r['rss_peak_mb']:>7.0f}",
                  flush=True)
    by = {(r["steps"], r["mode"]): r for r in runs}
    ratios = {s: {f"memory_plain_over_{m}": by[s, "plain"]["traced_peak_mb"] / by[s, m]["traced_peak_mb"]
                  for m in args.modes if m != "plain" and "plain" in args.modes} |
              {f"time_{m}_over_plain": by[s, m]["seconds"] / by[s, "plain"]["seconds"]
               for m in args.modes if m != "plain" and "plain" in args.modes}
              for s in args.steps}
    report = {"benchmark": "maml_memory", "machine": platform.machine(), "cpus": os.cpu_count(),
              "backends": [str(s.name) for s in nx.list_backends() if s.available and s.device_type == "cpu"],
              "threads": 1, "workload": {"model": "Conv-4 (64 channels, BatchNorm)", "image": [1, 28, 28],
                                         "ways": WAYS, "shots": SHOTS, "queries_per_class": QUERIES,
                                         "meta_batch": TASKS, "dtype": "float32", "order": "second",
                                         "modes": args.modes},
              "number": args.number, "runs": runs, "ratios": ratios}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
