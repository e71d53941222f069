"""Learning quality of ``neurenix train digits``: few-shot accuracy on held-out digit classes, per algorithm.

Runs the command line's own experiment (``neurenix.meta.cli.digits.experiment``: class-disjoint split,
fresh 5-way 5-shot tasks from the training classes, validation on turned training digits kept out of
training, 600 test tasks from the held-out classes) for each algorithm and seed, with the command's
defaults, and records the test accuracy with its 95% interval before and after meta-training, the best
validation score and its iteration, and the iteration whose weights were tested.

    python bench/cli_digits.py --out bench/results/cli_digits.json
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from neurenix.meta.cli import parser
from neurenix.meta.cli.digits import experiment


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--algos", nargs="+", default=["protonet", "maml", "relation"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--iterations", type=int, default=None, help="default: the command's")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    runs = []
    for algo in args.algos:
        for seed in args.seeds:
            more = [] if args.iterations is None else ["--iterations", str(args.iterations)]
            cli = parser().parse_args(["train", "digits", "--algo", algo, "--seed", str(seed), "--quiet", *more])
            start = time.perf_counter()
            r = experiment(cli)
            seconds = time.perf_counter() - start  # the whole run: data, both tests, training, validation
            run = {"algo": algo, "seed": seed, "iterations": cli.iterations, "timing": r["timing"],
                   "seconds": round(seconds, 1),
                   "train_classes": r["train_classes"], "test_classes": r["test_classes"],
                   "validation_classes": [list(c) for c in r["validation_classes"]],
                   "best_validation": {"accuracy": r["best"][0], "iteration": r["best"][1]},
                   "tested_iteration": r["kept"],
                   **{f"{k}_accuracy": {"mean": r[k].mean, "ci95": r[k].ci95, "tasks": len(r[k].values)}
                      for k in ("before", "after")},
                   "final_train_query_accuracy": r["history"]["accuracy"][-1]}
            runs.append(run)
            print(f"{algo} seed {seed}: {r['before'].mean:.2%} before, {r['after'].mean:.2%} ± {r['after'].ci95:.2%} "
                  f"after ({r['timing']}; {seconds:.0f} s in all)", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"benchmark": "cli_digits", "ways": 5, "shots": 5, "queries": 15, "runs": runs}, f, indent=2)


if __name__ == "__main__":
    main()
