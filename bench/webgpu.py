"""The WebGPU backend: launch rate, MAML sine meta-iteration time vs cpu, host round trips.

1. launches per second: a chain of small elementwise ops on a (10, 40) float32 tensor, one read at
   the end (the time includes running them, not only recording them);
2. one second-order MAML sine meta-iteration (neurenix.meta's MAML: 25 tasks x 10 + 10 points, a
   1-40-40-1 MLP, one inner step, tasks batched on a task axis, an Adam meta-step, the loss read
   back), on webgpu and on cpu interleaved round by round, median per device;
3. per meta-iteration: dispatches, submits and host waits (buffer map-reads: the round trips).

    python bench/webgpu.py --out bench/results/webgpu.json

Lavapipe (software Vulkan on the CPU) is a correctness target, not a speed one: read the cpu ratio
as the cost of the WebGPU path on this machine, not as a GPU figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


import neurenix as nx
from neurenix.meta import MAML, generate_regression_tasks

TASKS, POINTS, INNER_LR, META_LR = 25, 10, 0.01, 0.001


def sine_batch(seed, device):
    """25 sine tasks of 10 support and 10 query points, on ``device``."""
    return generate_regression_tasks(TASKS, 2 * POINTS, seed=seed, device=device)


class MamlSine:
    """Second-order MAML (neurenix.meta) on sine tasks: one meta-iteration per step, as meta_learn runs it."""

    def __init__(self, device):
        nx.manual_seed(0)
        model = nx.nn.Sequential(nx.nn.Linear(1, 40), nx.nn.ReLU(), nx.nn.Linear(40, 40), nx.nn.ReLU(),
                                 nx.nn.Linear(40, 1)).to(device)
        self.maml = MAML(model, inner_lr=INNER_LR, meta_lr=META_LR, inner_steps=1)
        self.opt = nx.optim.Adam(self.maml.parameters(), lr=META_LR)

    def step(self, tasks) -> float:
        return self.maml.meta_learn(tasks, self.opt, epochs=1, tasks_per_batch=TASKS, shuffle=False)["loss"][0]


def launches_per_second(device, ops=400) -> float:
    x = nx.ones((10, 40), device=device)
    x.numpy()
    t = time.perf_counter()
    y = x
    for _ in range(ops // 2):
        y = y * 1.0001 + 0.001
    y.numpy()
    return ops / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    import neurenix_backend_webgpu as wg

    status = next(s for s in nx.list_backends() if s.device_type == "webgpu")
    if not status.available:  # nothing to measure: say why, without failing run_all on such a machine
        print(f"webgpu cannot run here: {status.reason}", file=sys.stderr)
        return
    learners = {d: MamlSine(d) for d in ("webgpu", "cpu")}
    batches = {d: sine_batch(1, d) for d in learners}
    for d, m in learners.items():  # warm-up: pipelines compiled, caches filled
        for _ in range(2):
            m.step(batches[d])
    times = {d: [] for d in learners}
    launches = {d: [] for d in learners}
    counts = []
    for r in range(args.rounds):
        for d, m in learners.items():
            batch = sine_batch(100 + r, d)
            if d == "webgpu":
                nx.synchronize("webgpu")
                wg.reset_stats()
            t = time.perf_counter()
            m.step(batch)
            times[d].append(time.perf_counter() - t)
            if d == "webgpu":
                counts.append(wg.stats())
            launches[d].append(launches_per_second(d))
    med = {d: statistics.median(v) for d, v in times.items()}
    result = {
        "device": status.devices[0],
        "python": platform.python_version(),
        "rounds": args.rounds,
        "launches_per_second": {d: statistics.median(v) for d, v in launches.items()},
        "maml_sine_meta_iteration_s": med,
        "maml_webgpu_over_cpu": med["webgpu"] / med["cpu"],
        "per_meta_iteration": {k: statistics.median(c.get(k, 0) for c in counts)
                               for k in ("dispatches", "submits", "host_waits", "uploads", "pipelines_compiled")},
        "setup": f"{TASKS} tasks x {POINTS} points, 1-40-40-1 MLP, one inner step (second order), Adam meta-step",
    }
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
