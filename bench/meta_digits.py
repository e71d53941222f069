"""Learning quality on "digits": few-shot classification of scikit-learn's 8x8 handwritten digits
(``load_digits``, 1,797 images), with the classes split between meta-training and testing.

Meta-training tasks are 5-way 5-shot with 10 query images per class, 5 classes drawn from 20: digits
0-4 and their rotations by 90, 180 and 270 degrees (Omniglot's augmentation), in a random order (so
labels are shuffled per task); test tasks: digits 5-9, never seen in training, in a random order.
Model: 2 x [3x3 conv, 32 channels, BatchNorm, ReLU, 2x2 max-pool], then Linear (8 -> 4 -> 2).
Learners (Adam at 3e-3, meta-batch 4, second order): MAML (3 inner steps at 0.3), ANIL (the same,
head only), Meta-SGD (1 inner step, rates started at 0.3), MAML++ (3 steps, learned per-step rates, the
multi-step loss annealed over the first half of training). Evaluation: 300 fixed test tasks, each
learner's own inner loop on the support set, query accuracy (mean and 95% interval over tasks), at
iteration 0 (the same adaptation from the untrained initialisation) and every ``--eval-every``.
Needs scikit-learn (a benchmark-only dependency). Seeds: training ``--seed``, test tasks ``--seed + 1000``.

    python bench/meta_digits.py --algo maml --out bench/results/meta_digits_maml.json
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
from neurenix.meta import ANIL, MAML, MetaSGD, multi_step_weights
from neurenix.meta.batchnorm import task_call
from neurenix.meta.tasks import check_tasks, stack
from neurenix.models import Conv4
from neurenix.optim import Adam

WAYS, SHOTS, QUERIES, STEPS, LR = 5, 5, 10, 3, 0.3
TRAIN_DIGITS, TEST_DIGITS = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]


def digits() -> dict[int, np.ndarray]:
    """Images by class: digits 0-9, and for meta-training the rotations of digits 0-4 by 90, 180 and
    270 degrees as further classes 10 + 4 * digit + quarter - 1 (Omniglot's augmentation)."""
    from sklearn.datasets import load_digits  # benchmark-only dependency

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    by_class = {c: x[d.target == c] for c in range(10)}
    for c in TRAIN_DIGITS:
        for quarter in (1, 2, 3):
            by_class[10 + 4 * c + quarter - 1] = np.rot90(by_class[c], quarter, axes=(2, 3)).copy()
    return by_class


def sample(by_class: dict, classes: list[int], g: np.random.Generator) -> tuple:
    """One task: ``classes`` in a random order (labels 0..WAYS-1), SHOTS + QUERIES distinct images each."""
    order = g.permutation(classes)
    sx, sy, qx, qy = [], [], [], []
    for label, c in enumerate(order):
        pick = g.choice(len(by_class[c]), SHOTS + QUERIES, replace=False)
        sx.append(by_class[c][pick[:SHOTS]])
        qx.append(by_class[c][pick[SHOTS:]])
        sy += [label] * SHOTS
        qy += [label] * QUERIES
    return (nx.tensor(np.concatenate(sx)), nx.tensor(np.array(sy), dtype=nx.int64),
            nx.tensor(np.concatenate(qx)), nx.tensor(np.array(qy), dtype=nx.int64))


def make(algo: str, meta_lr: float):
    model = Conv4(1, 32, WAYS, blocks=2, image_size=8)  # two blocks: 8x8 -> 32x2x2
    learner = {"maml": lambda: MAML(model, inner_lr=LR, inner_steps=STEPS),
               "anil": lambda: ANIL(model, inner_lr=LR, inner_steps=STEPS),
               "metasgd": lambda: MetaSGD(model, inner_lr=LR, inner_steps=1),
               "mamlpp": lambda: MAML(model, inner_lr=LR, inner_steps=STEPS, per_step_lr=True)}[algo]()
    return learner, Adam(learner.parameters(), lr=meta_lr)


def evaluate(learner, batch) -> dict[str, float]:
    """Query accuracy of every test task after the learner's inner loop (all tasks at once)."""
    theta = {n: p.detach().unsqueeze(0).expand(batch.size, *p.shape) for n, p in learner.trainable().items()}
    with nx.enable_grad():
        fast = learner.inner_adapt(learner.model, {n: w.requires_grad_() for n, w in theta.items()}, batch,
                                   learner.inner_steps, None)
    with nx.no_grad():
        pred = task_call(learner.model, fast, batch.query_x)
    acc = (pred.argmax(dim=-1) == batch.query_labels).float().mean(1).numpy()
    return {"accuracy": float(acc.mean()), "ci95": float(1.96 * acc.std(ddof=1) / np.sqrt(len(acc)))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--algo", choices=["maml", "anil", "metasgd", "mamlpp"], default="maml")
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--test-tasks", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--meta-lr", type=float, default=3e-3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    data = digits()
    nx.manual_seed(args.seed)
    g = np.random.default_rng(args.seed)
    learner, opt = make(args.algo, args.meta_lr)
    test_g = np.random.default_rng(args.seed + 1000)
    test = stack(check_tasks([sample(data, TEST_DIGITS, test_g) for _ in range(args.test_tasks)]))
    train = [c for c in data if c not in TEST_DIGITS]
    curve = [{"iteration": 0, **evaluate(learner, test), "seconds": 0.0}]
    print(f"{args.algo} iteration 0: 5-way 5-shot test accuracy {curve[0]['accuracy']:.3f}", flush=True)
    start = time.perf_counter()
    for it in range(1, args.iterations + 1):
        if args.algo == "mamlpp":  # anneal over the first half: 10 "epochs" of iterations / 20
            learner.multi_step_weights = multi_step_weights(STEPS, it * 20 // max(args.iterations, 1), 10)
        learner.meta_learn([sample(data, list(g.choice(train, WAYS, replace=False)), g) for _ in range(4)], opt,
                           epochs=1, tasks_per_batch=4)
        if it % args.eval_every == 0 or it == args.iterations:
            curve.append({"iteration": it, **evaluate(learner, test), "seconds": time.perf_counter() - start})
            print(f"{args.algo} iteration {it}: 5-way 5-shot test accuracy {curve[-1]['accuracy']:.3f} "
                  f"+- {curve[-1]['ci95']:.3f} ({curve[-1]['seconds']:.0f} s)", flush=True)
    report = {"benchmark": "meta_digits", "algo": args.algo, "seed": args.seed, "test_seed": args.seed + 1000,
              "meta_lr": args.meta_lr,
              "ways": WAYS, "shots": SHOTS, "queries_per_class": QUERIES, "train_classes": train,
              "test_classes": TEST_DIGITS, "test_tasks": args.test_tasks, "iterations": args.iterations,
              "initial": curve[0], "final": curve[-1], "curve": curve}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
