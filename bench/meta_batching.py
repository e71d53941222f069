"""Task batching pays: one meta-iteration with tasks stacked on a task axis vs the same code looping.

MAML on sine tasks (1-40-40-1 MLP, 25 tasks a batch, 10 support and 10 query points, one inner step,
second and first order) and ProtoNets (5-way 5-shot 5-query, 20-64-64-32 MLP, 4 tasks a batch): time
per meta-iteration with ``batch_tasks=True`` and ``False``, interleaved round by round (the machine is
shared and noisy), medians over rounds. Also checks that both give the same meta-gradient (float64).

    python bench/meta_batching.py --out bench/results/meta_batching.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

import neurenix as nx
from neurenix.meta import MAML, PrototypicalNetworks, generate_classification_tasks, generate_regression_tasks
from neurenix.meta.tasks import check_tasks
from neurenix.nn import Linear, ReLU, Sequential
from neurenix.optim import Adam


def sine_mlp():
    return Sequential(Linear(1, 40), ReLU(), Linear(40, 40), ReLU(), Linear(40, 1))


def workloads(dtype):
    nx.manual_seed(0)
    sine = generate_regression_tasks(25, 20, seed=0, dtype=dtype)
    classes = generate_classification_tasks(4, 5, 10, 20, seed=0, dtype=dtype)  # 5-way 5-shot 5-query
    cast = (lambda m: m.double()) if dtype == nx.float64 else (lambda m: m)
    return {
        "maml_sine_second_order": (MAML(cast(sine_mlp()), inner_lr=0.01, inner_steps=1), sine),
        "maml_sine_first_order": (MAML(cast(sine_mlp()), inner_lr=0.01, inner_steps=1, first_order=True), sine),
        "protonet_mlp_5way_5shot": (PrototypicalNetworks(cast(Sequential(Linear(20, 64), ReLU(), Linear(64, 64),
                                                                         ReLU(), Linear(64, 32)))), classes),
    }


def meta_iteration(learner, tasks, opt, batch_tasks):
    """One meta-update from all of ``tasks`` (a meta-batch), as meta_learn runs it."""
    def run():
        loss, _ = learner.meta_step(check_tasks(tasks), opt, None, batch_tasks)
        loss.item()  # the one host read meta_learn makes
    return run


def time_ms(fn, number):
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number * 1e3


def same_gradient(learner, tasks) -> float:
    """Largest difference between the batched and looped meta-gradients (float64 model and tasks)."""
    out = []
    for batch_tasks in (True, False):
        learner.zero_grad()
        learner.meta_loss(tasks, batch_tasks=batch_tasks).backward()
        out.append([p.grad.numpy().copy() for p in learner.parameters()])
    return max(float(np.abs(a - b).max()) for a, b in zip(*out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--number", type=int, default=5)
    args = ap.parse_args()
    results = {}
    for name, (learner, tasks) in workloads(nx.float32).items():
        opt = Adam(learner.parameters(), lr=1e-3)
        runs = {mode: meta_iteration(learner, tasks, opt, mode == "batched") for mode in ("batched", "looped")}
        for fn in runs.values():
            fn()  # warm-up
        samples = {mode: [] for mode in runs}
        for _ in range(args.rounds):
            for mode, fn in runs.items():
                samples[mode].append(time_ms(fn, args.number))
        med = {mode: statistics.median(v) for mode, v in samples.items()}
        results[name] = {"batched_ms": med["batched"], "looped_ms": med["looped"],
                         "speedup": med["looped"] / med["batched"], "tasks_per_batch": len(tasks)}
    for name, (learner, tasks) in workloads(nx.float64).items():
        results[name]["max_grad_difference_float64"] = same_gradient(learner, tasks)
    report = {"benchmark": "meta_batching", "machine": platform.machine(), "cpus": os.cpu_count(),
              "backends": [str(s) for s in nx.list_backends() if s.available], "threads": 1,
              "rounds": args.rounds, "number": args.number, "results": results}
    print(f"{'workload':<26} {'batched ms':>11} {'looped ms':>10} {'speedup':>8} {'max |dgrad|':>12}")
    for name, r in results.items():
        print(f"{name:<26} {r['batched_ms']:>11.2f} {r['looped_ms']:>10.2f} {r['speedup']:>7.1f}x "
              f"{r['max_grad_difference_float64']:>12.2e}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
