"""Handwritten digits (scikit-learn's 8x8 images): meta-train on some classes, test N-way K-shot on the others.

The ten digit classes are split by a seeded permutation into meta-training and held-out test classes
(class-disjoint, so the test measures learning new classes from K examples). The training digits turned
by 90, 180 and 270 degrees become further training classes (Omniglot's augmentation: 5 digits give 20
classes), except a 6 or 9 turned by 180 degrees, which would be the other digit. Each meta-iteration
draws fresh N-way K-shot tasks from the training classes; the test draws ``--test-tasks`` tasks from
the held-out classes (seed + 1000) and reports the accuracy on their query examples with a 95% interval.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import neurenix as nx
from neurenix.nn import BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential

from ..data import TaskSampler, rotate_classes, split_classes
from ..evaluation import evaluate
from ..maml import MAML
from ..protonets import PrototypicalNetworks
from ..relation import RelationNetworks
from .common import ArgumentError, count, need, preflight, train
from .plot import figure, learning_curve

ITERATIONS, TEST_TASKS = 1000, 600
ALGOS = {"protonet": "Prototypical Networks", "maml": "MAML (second order)", "relation": "Relation Networks"}
UPSIDE_DOWN = {6: (2,), 9: (2,)}  # turned by 180 degrees, a 6 is a 9 and a 9 a 6: not new classes


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--algo", choices=ALGOS, default="protonet", help="meta-learning algorithm")
    p.add_argument("--ways", type=count(2, 9), default=5, help="classes per task (N)")
    p.add_argument("--shots", type=count(1), default=5, help="support examples per class (K)")
    p.add_argument("--queries", type=count(1), default=15, help="query examples per class")
    p.add_argument("--test-classes", type=count(1, 9), default=5, help="digit classes held out for the test")
    p.add_argument("--meta-batch", type=count(1), default=4, help="tasks per meta-iteration")
    p.add_argument("--rotate", action=argparse.BooleanOptionalAction, default=True,
                   help="add the training digits turned by 90, 180 and 270 degrees as further training classes")


def settings(args: argparse.Namespace) -> dict:
    """What a resumed run must share with the run it resumes."""
    if args.test_classes < args.ways or 10 - args.test_classes < args.ways:
        raise ArgumentError("--ways", f"{args.ways}-way tasks need {args.ways} classes in both splits; --test-classes "
                                      f"{args.test_classes} leaves {10 - args.test_classes} for training")
    return {"benchmark": "digits", "--algo": args.algo, "--seed": args.seed, "--ways": args.ways, "--shots": args.shots,
            "--queries": args.queries, "--test-classes": args.test_classes, "--meta-batch": args.meta_batch,
            "--rotate": args.rotate}


def memory(args: argparse.Namespace) -> list[tuple[str, int, int]]:
    """What is built at once, at least: a meta-iteration's tasks and the test tasks, each about 300 bytes per
    8x8 image (measured: 29 kB for a 5-way task of 20 images per class)."""
    each = 1_000 + args.ways * (args.shots + args.queries) * 300
    return [("--meta-batch", args.meta_batch, each), ("--test-tasks", args.test_tasks, each)]


def learner(args: argparse.Namespace):
    def conv(channels: int = 32) -> list:  # 1x8x8 -> 32x2x2: two blocks of 3x3 conv, BatchNorm, ReLU, 2x2 max-pool
        return [Conv2d(1, channels, 3, padding=1), BatchNorm2d(channels), ReLU(), MaxPool2d(2),
                Conv2d(channels, channels, 3, padding=1), BatchNorm2d(channels), ReLU(), MaxPool2d(2), Flatten()]

    if args.algo == "protonet":
        return PrototypicalNetworks(Sequential(*conv()))
    if args.algo == "relation":
        return RelationNetworks(Sequential(*conv()), Sequential(Linear(256, 64), ReLU(), Linear(64, 1)), meta_lr=0.003)
    return MAML(Sequential(*conv(), Linear(128, args.ways)), inner_lr=0.3, inner_steps=3, meta_lr=0.003)


def experiment(args: argparse.Namespace) -> dict:
    """Split, meta-train, test: the classes of each split, the test accuracy before meta-training (None
    when resuming) and after, the history and the timing line (also what bench/cli_digits.py records)."""
    run_settings = settings(args)
    datasets = need("sklearn.datasets")
    preflight(args, run_settings, memory(args))
    digits = datasets.load_digits()
    train_set, test_set = split_classes(digits.images[:, None] / 16.0, digits.target,
                                        (10 - args.test_classes, args.test_classes), seed=args.seed)
    digits_seen = sorted(set(train_set[1].tolist()))
    if args.rotate:
        train_set = rotate_classes(*train_set, skip=UPSIDE_DOWN)
    nx.manual_seed(args.seed)
    sampler = TaskSampler(*train_set, args.ways, args.shots, args.queries)
    test = TaskSampler(*test_set, args.ways, args.shots, args.queries, seed=args.seed + 1000).sample(args.test_tasks)
    meta = learner(args)
    before = evaluate(meta, test) if args.resume is None else None
    history, timing = train(meta, lambda epoch: sampler.sample(args.meta_batch), args.meta_batch, args, run_settings)
    return {"train_classes": digits_seen, "test_classes": sorted(set(test_set[1].tolist())),
            "before": before, "after": evaluate(meta, test), "history": history, "timing": timing}


def run(args: argparse.Namespace) -> Iterator[str]:
    r = experiment(args)
    rotated = " and their rotations" if args.rotate else ""
    yield (f"{ALGOS[args.algo]} on digits, {args.meta_batch} tasks per meta-iteration, training classes "
           f"{r['train_classes']}{rotated}, seed {args.seed}, {args.device}: {r['timing']}")
    yield (f"{args.ways}-way {args.shots}-shot test on held-out classes {r['test_classes']}, {args.queries} "
           "queries per class:")
    if r["before"] is not None:  # the untrained network: what meta-training adds (or loses) on new classes
        yield f"  before meta-training: {r['before']}"
    yield f"  after meta-training:  {r['after']}"
    if args.plot:
        fig, (ax,) = figure(1)
        learning_curve(ax, r["history"])
        ax.set_title(f"{ALGOS[args.algo]}, digits {args.ways}-way {args.shots}-shot: learning curve")
        fig.savefig(args.plot, dpi=110)
        yield f"plot: {args.plot}"
