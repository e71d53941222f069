"""Learning quality on sine regression, the MAML paper's setup: MAML (and first order, MAML++), ANIL, Meta-SGD, Reptile.

Meta-training: a 1-40-40-1 ReLU MLP, K=10 support and 10 query points per task, 25 new tasks per
meta-iteration (meta-batch 25), Adam at 1e-3 for MAML and first-order MAML (inner lr 0.01, one inner
step); Reptile with 8 inner SGD steps at 0.01 and the plain interpolation at meta lr 0.1 (its own
defaults are tuned for other scales); ANIL and Meta-SGD (rates started at 0.01) as MAML; ``mamlpp``: MAML
with 5 inner steps, learned per-step rates (Adam at 1e-5 for them) and the multi-step loss annealed over
10,000 iterations; ``maml5``: MAML with 5 inner steps, its baseline.
Evaluation: 5-shot, on fixed held-out tasks: adapt with the learner's inner step (``inner_lr``, or the
learned rates) on 5 support points for 1, 5 and 10 steps, MSE on 50 query points, mean (and median) over tasks.
Training stops at ``--iterations`` or (unless ``--full``) once every target of the MAML paper (0.67 / 0.38 / 0.35 after
1 / 5 / 10 steps) is met at an evaluation. Seeds: training ``--seed``, test tasks ``--seed + 1000``.

    python bench/meta_sine.py --algo maml --out bench/results/meta_sine_maml.json
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

import neurenix as nx
from neurenix.meta import ANIL, MAML, MetaSGD, Reptile, generate_regression_tasks, multi_step_weights
from neurenix.meta.tasks import check_tasks, stack
from neurenix.nn import Linear, ReLU, Sequential
from neurenix.optim import SGD, Adam

TARGETS = {1: 0.67, 5: 0.38, 10: 0.35}
ANNEAL = 10  # MAML++ (mamlpp): the multi-step loss anneals over 10 "epochs" of 1,000 meta-iterations


def make(algo: str):
    model = Sequential(Linear(1, 40), ReLU(), Linear(40, 40), ReLU(), Linear(40, 1))
    if algo == "reptile":
        reptile = Reptile(model, inner_lr=0.01, meta_lr=0.1, inner_steps=8)
        return reptile, SGD(reptile.parameters(), lr=0.1)  # the plain interpolation (the default is Adam)
    if algo in ("anil", "metasgd", "mamlpp", "maml5"):
        learner = {"anil": lambda: ANIL(model, inner_lr=0.01, inner_steps=1),
                   "maml5": lambda: MAML(model, inner_lr=0.01, inner_steps=5),
                   "metasgd": lambda: MetaSGD(model, inner_lr=0.01, inner_steps=1),
                   "mamlpp": lambda: MAML(model, inner_lr=0.01, inner_steps=5, per_step_lr=True,
                                          multi_step_weights=multi_step_weights(5, 0, ANNEAL))}[algo]()
        if algo == "mamlpp":  # Adam moves each value by about lr a step: 1e-3 is 10% of a 0.01 rate, unstable here
            rates = [p for n, p in learner.named_parameters() if n.startswith("inner_lrs.")]
            return learner, Adam([{"params": list(learner.model.parameters())}, {"params": rates, "lr": 1e-5}],
                                 lr=1e-3)
        return learner, Adam(learner.parameters(), lr=1e-3)
    learner = MAML(model, inner_lr=0.01, meta_lr=1e-3, first_order=algo == "fomaml", inner_steps=1)
    return learner, Adam(learner.parameters(), lr=1e-3)


def test_tasks(n: int, seed: int):
    """5-shot test tasks: 5 support points, 50 query points."""
    return [(sx[:5], sy[:5], qx, qy) for sx, sy, qx, qy in generate_regression_tasks(n, 100, seed=seed)]


def evaluate(learner, batch, steps=(1, 5, 10), medians: dict | None = None) -> dict[int, float]:
    """Mean query MSE after each number of inner steps (the learner's own inner step: learned rates,
    ANIL's head), all test tasks adapted at once; the median over tasks goes into ``medians``."""
    theta = {n: p.detach().unsqueeze(0).expand(batch.size, *p.shape) for n, p in learner.trainable().items()}
    out = {}
    for s in steps:
        with nx.enable_grad():
            fast = {n: w.detach().requires_grad_() for n, w in theta.items()}
            fast = learner.inner_adapt(learner.model, fast, batch, s, None)
        with nx.no_grad():
            pred = nx.func.batched_call(learner.model, fast, batch.query_x)
            per_task = ((pred - batch.query_y) ** 2).flatten(1).mean(1)
            out[s] = float(per_task.mean().item())
            if medians is not None:
                medians[s] = float(np.median(per_task.numpy()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--algo", default="maml",
                    choices=["maml", "fomaml", "reptile", "anil", "metasgd", "mamlpp", "maml5"])
    ap.add_argument("--iterations", type=int, default=70_000)
    ap.add_argument("--eval-every", type=int, default=5_000)
    ap.add_argument("--test-tasks", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--full", action="store_true", help="run all iterations even once the targets are met")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    nx.manual_seed(args.seed)
    learner, opt = make(args.algo)
    test = stack(check_tasks(test_tasks(args.test_tasks, args.seed + 1000)))
    med: dict = {}
    curve = [{"iteration": 0, "mse": evaluate(learner, test, medians=med), "median_mse": dict(med), "seconds": 0.0}]
    start, it = time.perf_counter(), 0
    while it < args.iterations:
        n = min(args.eval_every, args.iterations - it)
        for i in range(it, it + n):
            if args.algo == "mamlpp" and i % 1000 == 0:
                learner.multi_step_weights = multi_step_weights(5, i // 1000, ANNEAL)
            learner.meta_learn(generate_regression_tasks(25, 20), opt, epochs=1, tasks_per_batch=25)
        it += n
        mse = evaluate(learner, test, medians=med)
        curve.append({"iteration": it, "mse": mse, "median_mse": dict(med), "seconds": time.perf_counter() - start})
        print(f"{args.algo} iteration {it}: 5-shot test MSE " +
              " / ".join(f"{mse[s]:.3f}" for s in TARGETS) + f" after 1/5/10 steps ({curve[-1]['seconds']:.0f} s)",
              flush=True)
        if not args.full and all(mse[s] <= t for s, t in TARGETS.items()):
            break
    final = curve[-1]
    report = {"benchmark": "meta_sine", "algo": args.algo, "seed": args.seed, "test_seed": args.seed + 1000,
              "test_tasks": args.test_tasks, "iterations": final["iteration"], "targets": TARGETS,
              "final_mse": final["mse"], "final_median_mse": final["median_mse"],
              "targets_met": all(final["mse"][s] <= t for s, t in TARGETS.items()),
              "seconds": final["seconds"], "ms_per_iteration": final["seconds"] / max(final["iteration"], 1) * 1e3,
              "curve": curve}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
