"""Handwritten digits (scikit-learn's 8x8 images): meta-train on some classes, test N-way K-shot on the others.

The ten digit classes are split by a seeded permutation into meta-training and held-out test classes
(class-disjoint, so the test measures learning new classes from K examples). The training digits turned
by 90, 180 and 270 degrees are further classes (Omniglot's augmentation), except turns that would give
another class: a 6 or 9 turned by 180 degrees is the other digit, and with both a 6 and a 9 among the
training digits, the 9 turned by 90 or 270 degrees is the 6 turned by 270 or 90.

Validation classes. Ten digits leave none to spare: every upright digit is either a training or a test
class, and one or two held-out digits are fewer than the N = 5 classes a validation task needs, while
each digit moved from training to validation costs the training classes four. So validation takes
``--validation-classes`` (5) of the *turned* training digits, one turn per digit (a seeded draw), and
these are never trained on: the validation classes are disjoint from the training classes (upright
digits and the remaining turns) and from the test classes (upright held-out digits, whose turns are
used nowhere). They are new classes for the learner, as the test's are; they are easier than the test's
(another view of a digit it has learned), so the validation score reads higher than the test's, but it
rises and falls with what the learner makes of new classes, which is what choosing the iteration to keep
(``--keep-best``) and the hyperparameters needs. The test set is never used to choose anything.

Each meta-iteration draws fresh N-way K-shot tasks from the training classes; every ``--validate-every``
iterations ``--validation-tasks`` tasks (seed + 500) from the validation classes are scored; the test
draws ``--test-tasks`` tasks from the held-out classes (seed + 1000) and reports the accuracy on their
query examples with a 95% interval. Defaults per algorithm (``DEFAULTS``) were chosen by measurement over
seeds 0, 1 and 2 on the validation score: see docs/cli.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import numpy as np

import neurenix as nx
from neurenix.models import Conv4
from neurenix.nn import BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential
from neurenix.optim import Adam

from ..checkpoint import read_checkpoint
from ..data import TaskSampler, split_classes
from ..evaluation import evaluate
from ..imaml import iMAML
from ..inner_optimizers import OPTIMIZERS
from ..maml import MAML
from ..protonets import PrototypicalNetworks
from ..r2d2 import R2D2
from ..relation import RelationNetworks
from .common import ArgumentError, count, need, preflight, rate, train
from .plot import figure, learning_curve

ITERATIONS, TEST_TASKS = 1000, 600
ALGOS = {"protonet": "Prototypical Networks", "maml": "MAML", "relation": "Relation Networks", "imaml": "iMAML",
         "r2d2": "R2-D2"}
STEPPED = ("maml", "imaml")  # the algorithms that adapt by gradient steps
# per algorithm, chosen by measurement (docs/cli.md): meta learning rate, MAML's inner steps and rate, and
# whether the test takes the weights of the best validation score
DEFAULTS = {"protonet": {"meta_lr": 0.001, "keep_best": True},
            "maml": {"meta_lr": 0.001, "inner_lr": 0.5, "inner_steps": 10, "first_order": True, "keep_best": True},
            "relation": {"meta_lr": 0.001, "keep_best": True},
            "r2d2": {"meta_lr": 0.001, "keep_best": True},
            "imaml": {"meta_lr": 0.001, "inner_lr": 0.5, "inner_steps": 10, "lam": 2.0, "cg_steps": 5,
                      "keep_best": True}}


BACKBONES = ("blocks", "conv4")
MIRROR = {6: 9, 9: 6}  # turned by 180 degrees, a 6 is a 9 and a 9 a 6


def rotations(digits: list[int]) -> list[tuple[int, int]]:
    """The new classes that turning ``digits`` gives: (digit, quarter turns) for quarters 1, 2, 3, leaving out
    turns that give another class, upright or turned: a 6 or 9 by 180 degrees (the other digit), and when 6
    and 9 are both here, the 9's turns by 90 and 270 degrees (the 6's by 270 and 90)."""
    out = []
    for d in sorted(digits):
        for q in (1, 2, 3):
            if d in MIRROR and (q == 2 or (d == 9 and MIRROR[d] in digits)):
                continue
            out.append((d, q))
    return out


def pick_validation(candidates: list[tuple[int, int]], n: int, seed: int) -> list[tuple[int, int]]:
    """``n`` of the turned classes for validation, drawn by ``seed``, from as many different digits as possible
    (one turn of each digit before a second of any)."""
    order = [candidates[i] for i in np.random.default_rng(seed).permutation(len(candidates))]
    taken: dict[int, int] = {}
    ranked = []
    for d, q in order:  # the k-th turn drawn of a digit ranks k-th
        ranked.append((taken.get(d, 0), len(ranked), (d, q)))
        taken[d] = taken.get(d, 0) + 1
    return sorted(c for _, _, c in sorted(ranked)[:n])


def turned(x: np.ndarray, y: np.ndarray, classes: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """The images of ``classes`` (digit, quarter turns), turned; labels digit + 10 * quarters."""
    xs = [np.rot90(x[y == d], q, axes=(-2, -1)) for d, q in classes]
    ys = [np.full(len(a), d + 10 * q) for a, (d, q) in zip(xs, classes)]
    return np.concatenate(xs), np.concatenate(ys)

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--algo", choices=ALGOS, default="protonet", help="meta-learning algorithm")
    p.add_argument("--ways", type=count(2, 9), default=5, help="classes per task (N)")
    p.add_argument("--shots", type=count(1), default=5, help="support examples per class (K)")
    p.add_argument("--queries", type=count(1), default=15, help="query examples per class")
    p.add_argument("--test-classes", type=count(1, 9), default=5, help="digit classes held out for the test")
    p.add_argument("--meta-batch", type=count(1), default=4, help="tasks per meta-iteration")
    p.add_argument("--rotate", action=argparse.BooleanOptionalAction, default=True,
                   help="add the training digits turned by 90, 180 and 270 degrees (but the validation classes) as "
                        "further training classes")
    p.add_argument("--backbone", choices=BACKBONES, default="blocks",
                   help="the embedding: blocks, two 32-channel conv blocks to 32x4x4 (the default); conv4, "
                        "neurenix.models.Conv4 with 64 channels in three blocks to 64x1x1 (a fourth would halve "
                        "8x8 digits to nothing)")
    p.add_argument("--meta-lr", type=rate, help="meta learning rate (default: " + ", ".join(
        f"{a} {d['meta_lr']}" for a, d in DEFAULTS.items()) + ")")
    p.add_argument("--inner-lr", type=rate, help="the inner learning rate (default: " + ", ".join(
        f"{a} {DEFAULTS[a]['inner_lr']}" for a in STEPPED) + ")")
    p.add_argument("--inner-steps", type=count(1), help="inner steps, in training and test (default: " + ", ".join(
        f"{a} {DEFAULTS[a]['inner_steps']}" for a in STEPPED) + ")")
    p.add_argument("--inner-optimizer", choices=OPTIMIZERS, default="sgd",
                   help="MAML's inner update rule: differentiable SGD, momentum, Adam or RMSprop")
    p.add_argument("--lam", type=rate, help=f"iMAML's regularisation strength (default {DEFAULTS['imaml']['lam']})")
    p.add_argument("--cg-steps", type=count(1),
                   help=f"iMAML's conjugate-gradient steps (default {DEFAULTS['imaml']['cg_steps']})")
    p.add_argument("--first-order", action=argparse.BooleanOptionalAction, default=None,
                   help=f"first-order MAML (default: {'yes' if DEFAULTS['maml']['first_order'] else 'no'})")
    p.add_argument("--validation-classes", type=count(2), default=5, metavar="N",
                   help="turned training digits held out as validation classes (never trained on)")
    p.add_argument("--validate-every", type=count(0), default=100, metavar="N",
                   help="iterations between validation scores (0: after the last only)")
    p.add_argument("--validation-tasks", type=count(2), default=100, metavar="N",
                   help="tasks (seed + 500) drawn from the validation classes and scored for validation")
    p.add_argument("--keep-best", action=argparse.BooleanOptionalAction, default=None,
                   help="test the weights of the best validation score, not the last (default: " + ", ".join(
                       f"{a} {'yes' if d['keep_best'] else 'no'}" for a, d in DEFAULTS.items()) + ")")


def option(args: argparse.Namespace, name: str):
    """The flag's value, or the algorithm's default."""
    value = getattr(args, name, None)
    return DEFAULTS[args.algo].get(name) if value is None else value


def settings(args: argparse.Namespace) -> dict:
    """What a resumed run must share with the run it resumes (defaults resolved)."""
    if args.test_classes < args.ways or 10 - args.test_classes < args.ways:
        raise ArgumentError("--ways", f"{args.ways}-way tasks need {args.ways} classes in both splits; --test-classes "
                                      f"{args.test_classes} leaves {10 - args.test_classes} for training")
    if args.validation_classes < args.ways:
        raise ArgumentError("--validation-classes", f"{args.ways}-way validation tasks need {args.ways} classes, got "
                                                    f"{args.validation_classes}")
    only = {"maml": ("first_order",), "imaml": ("lam", "cg_steps")}
    for flag in ("inner_lr", "inner_steps", "first_order", "lam", "cg_steps"):
        if getattr(args, flag, None) is not None and args.algo not in STEPPED:
            raise ArgumentError("--" + flag.replace("_", "-"), f"only MAML and iMAML adapt with gradient steps, not "
                                                               f"--algo {args.algo}")
        owner = next((a for a, flags in only.items() if flag in flags), args.algo)
        if getattr(args, flag, None) is not None and owner != args.algo:
            raise ArgumentError("--" + flag.replace("_", "-"), f"is {ALGOS[owner]}'s, not --algo {args.algo}'s")
    if getattr(args, "inner_optimizer", "sgd") != "sgd" and args.algo != "maml":
        raise ArgumentError("--inner-optimizer", f"only MAML takes another inner update rule, not --algo {args.algo}")
    if args.algo == "imaml" and args.lam == 0:
        raise ArgumentError("--lam", "must be > 0, got 0")
    run = {"benchmark": "digits", "--algo": args.algo, "--seed": args.seed, "--ways": args.ways, "--shots": args.shots,
           "--queries": args.queries, "--test-classes": args.test_classes, "--meta-batch": args.meta_batch,
           "--rotate": args.rotate, "--validation-classes": args.validation_classes,
           "--meta-lr": option(args, "meta_lr")}
    if args.algo in STEPPED:
        run |= {"--inner-lr": option(args, "inner_lr"), "--inner-steps": option(args, "inner_steps")}
    if args.algo == "maml":
        run["--first-order"] = option(args, "first_order")
        if getattr(args, "inner_optimizer", "sgd") != "sgd":  # (only when chosen: earlier checkpoints stay resumable)
            run["--inner-optimizer"] = args.inner_optimizer
    if args.algo == "imaml":
        run |= {"--lam": option(args, "lam"), "--cg-steps": option(args, "cg_steps")}
    if getattr(args, "backbone", "blocks") != "blocks":  # (only when chosen: earlier checkpoints stay resumable)
        run["--backbone"] = args.backbone
    return run


def memory(args: argparse.Namespace) -> list[tuple[str, int, int]]:
    """What is built at once, at least: a meta-iteration's tasks, the validation and the test tasks, each about
    300 bytes per 8x8 image (measured: 29 kB for a 5-way task of 20 images per class)."""
    each = 1_000 + args.ways * (args.shots + args.queries) * 300
    return [("--meta-batch", args.meta_batch, each), ("--validation-tasks", args.validation_tasks, each),
            ("--test-tasks", args.test_tasks, each)]


class PairDifference(Module):
    """The first layer of the relation module: a pair's two embeddings, concatenated on the channel axis
    (rows, 2 * channels, ...), to their elementwise distance |f(x_q) - f(x_i)| (rows, channels, ...). A
    relation module that starts with it compares the two embeddings and cannot tell which classes they are,
    which a module given the concatenation learns instead (measured: see docs/cli.md)."""

    def forward(self, pairs: nx.Tensor) -> nx.Tensor:
        half = pairs.shape[1] // 2
        return (pairs[:, :half] - pairs[:, half:]).abs()


def embedding(args: argparse.Namespace, pools: int = 1) -> list:
    """The layers of ``--backbone``, ending in Flatten. blocks: two blocks of 3x3 conv, BatchNorm, ReLU, the first
    (and with ``pools`` 2 the second) with a 2x2 max-pool: 1x8x8 -> 32x4x4 (pools 2: 32x2x2). conv4: Conv-4 of 64
    channels in three blocks, 1x8x8 -> 64x1x1 (the same whatever ``pools``)."""
    if getattr(args, "backbone", "blocks") == "conv4":
        return list(Conv4(1, 64, blocks=3, image_size=8).children())
    return [Conv2d(1, 32, 3, padding=1), BatchNorm2d(32), ReLU(), MaxPool2d(2),
            Conv2d(32, 32, 3, padding=1), BatchNorm2d(32), ReLU(), *[MaxPool2d(2)][:pools - 1], Flatten()]


#: (backbone, pools) -> the shape of one digit's embedding before Flatten
FEATURES = {("blocks", 1): (32, 4, 4), ("blocks", 2): (32, 2, 2), ("conv4", 1): (64, 1, 1), ("conv4", 2): (64, 1, 1)}


def features(args: argparse.Namespace, pools: int = 1) -> tuple[int, int, int]:
    return FEATURES[getattr(args, "backbone", "blocks"), pools]


def learner(args: argparse.Namespace):
    meta_lr = option(args, "meta_lr")
    if args.algo == "protonet":
        return PrototypicalNetworks(Sequential(*embedding(args)), meta_lr=meta_lr)
    if args.algo == "r2d2":  # Prototypical Networks' embedding, the ridge-regression head
        return R2D2(Sequential(*embedding(args)), meta_lr=meta_lr)
    if args.algo == "relation":
        body = embedding(args, pools=2)[:-1]  # the embedding keeps its channel axis: 32x2x2 (conv4: 64x1x1)
        c, h, w = features(args, pools=2)
        return RelationNetworks(Sequential(*body), Sequential(PairDifference(), Flatten(), Linear(c * h * w, 64),
                                                              ReLU(), Linear(64, 1)), meta_lr=meta_lr)
    # MAML: the one-pool blocks (32x4x4 = 512 features, as Prototypical Networks': the second pool cost
    # seed 0 13 points, 73.4% against 86.3%) and a linear output layer at zero, which the meta-optimizer
    # leaves there (``meta_optimizer``)
    c, h, w = features(args)
    head = Linear(c * h * w, args.ways)  # (made first: the measured runs drew the head's weights first)
    with nx.no_grad():  # every class scores the same until adapted: a task's labels are a random order, so an
        head.weight.zero_()  # untrained head's leanings only mislead the first steps (measured: docs/cli.md)
        head.bias.zero_()
    model = Sequential(*embedding(args), head)
    if args.algo == "imaml":
        return iMAML(model, inner_lr=option(args, "inner_lr"), inner_steps=option(args, "inner_steps"),
                     meta_lr=meta_lr, lam=option(args, "lam"), cg_steps=option(args, "cg_steps"))
    return MAML(model, inner_lr=option(args, "inner_lr"), inner_steps=option(args, "inner_steps"), meta_lr=meta_lr,
                first_order=option(args, "first_order"), inner_optimizer=getattr(args, "inner_optimizer", "sgd"))


def meta_optimizer(args: argparse.Namespace, meta) -> Adam | None:
    """The meta-optimizer, None for the learner's default (Adam at its meta_lr over all its parameters).

    MAML's and iMAML's: Adam at meta_lr over the convolution blocks, and a rate of 0 for the output layer, which so
    stays at zero and is learned by the inner steps alone, from zero, on every task (the "zeroing trick" of
    Kao et al., "MAML is a noisy contrastive learner in classification", ICLR 2022). A task's labels are a
    random order of its classes, so the layer's meta-gradient has no direction to learn, only noise, which
    Adam scales up to full steps; with that noise kept out, seed 0 went from 86.3% to 92.0% and its
    validation score no longer fell in mid-run (docs/cli.md)."""
    if args.algo not in STEPPED:
        return None
    head = list(meta.model[-1].parameters())
    fixed = {id(p) for p in head}
    body = [p for p in meta.parameters() if id(p) not in fixed]
    return Adam([{"params": body}, {"params": head, "lr": 0.0}], lr=meta.meta_lr)


def data(args: argparse.Namespace) -> dict:
    """The class-disjoint splits: the training set (upright training digits, and their turns unless
    --no-rotate), the validation set (--validation-classes turns of the training digits, never trained on)
    and the test set (the held-out digits, upright), with the classes of each."""
    datasets = need("sklearn.datasets")
    digits = datasets.load_digits()
    x, y = digits.images[:, None] / 16.0, digits.target
    (train_x, train_y), test_set = split_classes(x, y, (10 - args.test_classes, args.test_classes), seed=args.seed)
    seen = sorted(set(train_y.tolist()))
    candidates = rotations(seen)
    if len(candidates) < args.validation_classes:
        raise ArgumentError("--validation-classes", f"{args.validation_classes} asks for more than the "
                                                    f"{len(candidates)} turned classes of training digits {seen}")
    held = pick_validation(candidates, args.validation_classes, args.seed)
    train_set = (train_x, train_y)
    if args.rotate:
        rest = turned(train_x, train_y, [c for c in candidates if c not in held])
        train_set = (np.concatenate([train_x, rest[0]]), np.concatenate([train_y, rest[1]]))
    return {"train": train_set, "validation": turned(train_x, train_y, held), "test": test_set,
            "train_digits": seen, "validation_classes": held, "test_classes": sorted(set(test_set[1].tolist()))}


def test_tasks(args: argparse.Namespace, count: int, seed: int, split: dict | None = None) -> list:
    """``count`` test tasks of the held-out classes, drawn with ``seed`` (the run's report: its seed + 1000);
    ``split``: :func:`data`'s, when made already."""
    d = split or data(args)
    return TaskSampler(*d["test"], args.ways, args.shots, args.queries, seed=seed).sample(count)


def calibration_tasks(args: argparse.Namespace, count: int, seed: int) -> list:
    """``count`` tasks of the training classes, drawn with ``seed``: what ``neurenix evaluate --int8`` calibrates
    on (never the test classes)."""
    d = data(args)
    return TaskSampler(*d["train"], args.ways, args.shots, args.queries, seed=seed).sample(count)


def turn_name(c: tuple[int, int]) -> str:
    return f"{c[0]} ({90 * c[1]} deg)"


def experiment(args: argparse.Namespace) -> dict:
    """Split, meta-train (validating), test: the classes of each split, the test accuracy before meta-training
    (None when resuming) and after, the history, the best validation score and its iteration, and the timing
    line (also what bench/cli_digits.py records)."""
    run_settings = settings(args)
    preflight(args, run_settings, memory(args))
    d = data(args)
    nx.manual_seed(args.seed)
    sampler = TaskSampler(*d["train"], args.ways, args.shots, args.queries)
    validation = TaskSampler(*d["validation"], args.ways, args.shots, args.queries,
                             seed=args.seed + 500).sample(args.validation_tasks)
    test = test_tasks(args, args.test_tasks, args.seed + 1000, d)
    meta = learner(args)
    keep_best = option(args, "keep_best")
    before = evaluate(meta, test) if args.resume is None else None
    every = args.validate_every or args.iterations
    history, timing = train(meta, lambda epoch: sampler.sample(args.meta_batch), args.meta_batch, args,
                            run_settings, validation, every, keep_best, meta_optimizer(args, meta))
    scores, at = history["validation"], history["validation_epoch"]
    best = max(range(len(scores)), key=scores.__getitem__)
    # keep_best holds the best weights of this run only: a resumed run keeps its own best (or its last)
    start = read_checkpoint(args.resume).metadata.get("epoch", 0) if args.resume else 0
    own = [i for i in range(len(scores)) if at[i] > start]
    kept = max(own, key=scores.__getitem__) if keep_best and own else None
    return {"train_classes": d["train_digits"], "validation_classes": d["validation_classes"],
            "test_classes": d["test_classes"], "before": before, "after": evaluate(meta, test), "history": history,
            "best": (scores[best], at[best]), "kept": len(history["loss"]) if kept is None else at[kept],
            "timing": timing}


def run(args: argparse.Namespace) -> Iterator[str]:
    r = experiment(args)
    rotated = " and their other turns" if args.rotate else ""
    name = ALGOS[args.algo]
    if args.algo == "maml":
        name += (f" ({'first' if option(args, 'first_order') else 'second'} order, {option(args, 'inner_steps')} "
                 f"inner steps at {option(args, 'inner_lr')})")
    elif args.algo == "imaml":
        name += (f" ({option(args, 'inner_steps')} inner steps at {option(args, 'inner_lr')}, lam "
                 f"{option(args, 'lam')}, {option(args, 'cg_steps')} conjugate-gradient steps)")
    yield (f"{name} on digits, {args.meta_batch} tasks per meta-iteration, training classes "
           f"{r['train_classes']}{rotated}, seed {args.seed}, {args.device}: {r['timing']}")
    (score, at), last = r["best"], r["history"]["validation"][-1]
    classes = ", ".join(map(turn_name, r["validation_classes"]))
    yield (f"validation on {args.validation_tasks} tasks of classes {classes} "
           f"(turned training digits, not trained on): best {score:.2%} after iteration {at}, last {last:.2%}")
    yield (f"{args.ways}-way {args.shots}-shot test on held-out classes {r['test_classes']}, {args.queries} "
           f"queries per class, weights of iteration {r['kept']}:")
    if r["before"] is not None:  # the untrained network: what meta-training adds (or loses) on new classes
        yield f"  before meta-training: {r['before']}"
    yield f"  after meta-training:  {r['after']}"
    if args.plot:
        fig, (ax,) = figure(1)
        learning_curve(ax, r["history"])
        ax.set_title(f"{ALGOS[args.algo]}, digits {args.ways}-way {args.shots}-shot: learning curve")
        fig.savefig(args.plot, dpi=110)
        yield f"plot: {args.plot}"
