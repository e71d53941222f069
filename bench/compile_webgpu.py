"""neurenix.compile on WebGPU: a MAML sine meta-iteration, eager vs compiled, on webgpu and on cpu.

The meta-iteration is ``MAML.meta_learn`` over one meta-batch (25 sine tasks of 10 support + 10 query
points, a 1-40-40-1 MLP, one second-order inner step, an Adam meta-step, the loss read back); with
``compile=True`` (meta_learn's default) its meta-gradient is a compiled program, which the webgpu backend
runs through its own runner (``compile_program``: dispatches bound once, one prepared item per replay).
The four configurations run interleaved, round by round; medians per configuration. Per webgpu
meta-iteration: submits, dispatches recorded eagerly, replays enqueued, host waits.

    python bench/compile_webgpu.py --out bench/results/compile_webgpu.json

On lavapipe (software Vulkan) the time is mostly the driver running the kernels on the CPU: read the
ratio to cpu as this machine's cost of the WebGPU path, not as a GPU figure.
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

TASKS, POINTS = 25, 10
CONFIGS = [("webgpu", False), ("webgpu", True), ("cpu", False), ("cpu", True)]


def learner(device: str):
    nx.manual_seed(0)
    model = nx.nn.Sequential(nx.nn.Linear(1, 40), nx.nn.ReLU(), nx.nn.Linear(40, 40), nx.nn.ReLU(),
                             nx.nn.Linear(40, 1)).to(device)
    maml = MAML(model, inner_lr=0.01, meta_lr=0.001, inner_steps=1)
    return maml, nx.optim.Adam(maml.parameters(), lr=0.001)


def meta_iteration(maml, opt, tasks, compiled: bool) -> float:
    return maml.meta_learn(tasks, opt, epochs=1, tasks_per_batch=TASKS, shuffle=False, compile=compiled)["loss"][0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    status = next(s for s in nx.list_backends() if s.device_type == "webgpu")
    if not status.available:
        print(f"webgpu cannot run here: {status.reason}", file=sys.stderr)
        return
    import neurenix_backend_webgpu.plugin as wg

    runs = {c: learner(c[0]) for c in CONFIGS}
    for (device, compiled), (maml, opt) in runs.items():  # trace, plan, and pipelines compiled
        for seed in range(3):
            meta_iteration(maml, opt, generate_regression_tasks(TASKS, 2 * POINTS, seed=seed, device=device), compiled)
    times: dict = {c: [] for c in CONFIGS}
    counts: dict = {c: [] for c in CONFIGS if c[0] == "webgpu"}
    for r in range(args.rounds):
        for (device, compiled), (maml, opt) in runs.items():
            tasks = generate_regression_tasks(TASKS, 2 * POINTS, seed=100 + r, device=device)
            nx.synchronize(device)
            wg.reset_stats()
            t = time.perf_counter()
            meta_iteration(maml, opt, tasks, compiled)
            times[(device, compiled)].append(time.perf_counter() - t)
            if device == "webgpu":
                counts[(device, compiled)].append(wg.stats())
    med = {f"{d}_{'compiled' if c else 'eager'}": statistics.median(v) for (d, c), v in times.items()}
    maml, _ = runs[("webgpu", True)]
    runner = next(e.runner for e in maml._compiled_gradient._cache.values() if getattr(e.runner, "plan", None))
    result = {
        "device": status.devices[0],
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "rounds": args.rounds,
        "meta_iteration_s": med,
        "webgpu_compiled_over_cpu_compiled": med["webgpu_compiled"] / med["cpu_compiled"],
        "webgpu_compiled_over_cpu_eager": med["webgpu_compiled"] / med["cpu_eager"],
        "webgpu_eager_over_cpu_eager": med["webgpu_eager"] / med["cpu_eager"],
        "webgpu_eager_over_webgpu_compiled": med["webgpu_eager"] / med["webgpu_compiled"],
        "per_meta_iteration": {f"webgpu_{'compiled' if c else 'eager'}":
                               {k: statistics.median(s.get(k, 0) for s in v)
                                for k in ("submits", "dispatches", "replays_enqueued", "host_waits")}
                               for (_, c), v in counts.items()},
        "runner": dict(runner.info),
        "setup": f"{TASKS} tasks x {POINTS} + {POINTS} points, 1-40-40-1 MLP, one second-order inner step, Adam",
    }
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
