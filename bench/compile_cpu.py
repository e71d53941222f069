"""cpu-c's compile_program against core's replay, on one MAML sine meta-gradient program (MLP 1-40-40-1, 25
tasks, second order): microseconds per run of each runner, alternated round by round (a shared machine
moves by a few percent), their ratio, and what fusion did to the program.

    python bench/compile_cpu.py --rounds 7 --number 200 --out bench/results/compile_cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
from neurenix_backend_cpu import compiler

import neurenix as nx
from neurenix.capture.program import replay
from neurenix.capture.state import walk
from neurenix.meta import MAML
from neurenix.meta.generators import generate_regression_tasks


def program_and_inputs():
    """The program neurenix.compile recorded for MAML's meta-gradient, and its inputs for a replay."""
    nx.manual_seed(0)
    model = nx.nn.Sequential(nx.nn.Linear(1, 40), nx.nn.ReLU(), nx.nn.Linear(40, 40), nx.nn.ReLU(),
                             nx.nn.Linear(40, 1))
    maml = MAML(model, inner_lr=0.01, meta_lr=0.001)
    tasks = generate_regression_tasks(25, 20, seed=1)
    for _ in range(2):
        maml.meta_learn(tasks, epochs=1, tasks_per_batch=25, shuffle=False)
    compiled = maml.__dict__["_compiled_gradient"]
    opt = maml.default_optimizer()
    checked = [t._replace(index=i) for i, t in enumerate(maml.check(tasks))]
    opt.zero_grad()  # (the program of a step that starts with no gradients: the one meta_learn replays)
    inputs = walk((compiled.fn, (checked, opt, None, True), {})).buffers()
    program = next(p for p in compiled.programs()[::-1] if len(p.inputs) == len(inputs))
    return program, inputs


def per_run(run, inputs, number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        run(inputs)
    return (time.perf_counter() - start) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out")
    args = parser.parse_args()
    nx.set_num_threads(args.threads)
    program, inputs = program_and_inputs()
    core = replay(program)
    start = time.perf_counter()
    fused = compiler.Runner(program)
    fused(inputs)  # learns the signatures, plans and compiles (or loads from the disk cache)
    first = time.perf_counter() - start
    for want, got in zip(core(inputs), fused(inputs)):
        assert np.array_equal(want, got), "the fused runner differs from core's replay"
    times = {"replay": [], "fused": []}
    for _ in range(args.rounds):
        times["replay"].append(per_run(core, inputs, args.number))
        times["fused"].append(per_run(fused, inputs, args.number))
    ratios = [r / f for r, f in zip(times["replay"], times["fused"])]
    result = {
        "workload": "MAML sine meta-gradient program, MLP 1-40-40-1, 25 tasks, second order",
        "threads": args.threads, "instructions": len(program.instructions),
        "instructions_fused_program": fused.steps,
        "groups": fused.groups, "first_run_s": round(first, 3),
        "replay_us_best": round(min(times["replay"]), 1), "fused_us_best": round(min(times["fused"]), 1),
        "ratio_of_best": round(min(times["replay"]) / min(times["fused"]), 3),
        "ratio_median": round(statistics.median(ratios), 3), "bit_exact": True,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
