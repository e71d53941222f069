"""Sine regression, the MAML paper's setup: meta-train, then adapt to new sine waves from 5 points.

Defaults are the paper's: a 1-40-40-1 ReLU network, K = 10 support and 10 query points per task, 25 new
tasks per meta-iteration, one inner step at 0.01 (Reptile: 8 inner SGD steps at 0.01; iMAML: its own defaults,
20 steps of its regularised problem at 0.05), Adam as the meta-optimizer. Not the paper's: Adam starts at 0.01
and anneals to 0 by cosine over the run, which reaches the paper's 70,000-iteration numbers in 10,000
(docs/quality.md has the runs that chose it). Evaluation as in the paper's figure: adapt on 5 points of a new
task for 1, 5 and 10 steps, mean squared error on 50 other points.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import neurenix as nx
from neurenix.nn import Linear, ReLU, Sequential

from ..evaluation import evaluate
from ..generators import generate_regression_tasks
from ..imaml import iMAML
from ..inner_optimizers import OPTIMIZERS
from ..maml import MAML
from ..reptile import Reptile
from .common import ArgumentError, count, preflight, rate, train
from .plot import figure, learning_curve

ITERATIONS, TEST_TASKS = 10_000, 1000
LR_SCHEDULE = "cosine"
TEST_POINTS = 100  # per test task: up to half of them the support set, the other half the query set
STEPS = (1, 5, 10)
PAPER = {1: 0.67, 5: 0.38, 10: 0.35}  # MAML paper, 5-shot, after 70,000 meta-iterations
ALGOS = {"maml": "MAML (second order)", "fomaml": "first-order MAML", "reptile": "Reptile",
         "imaml": "iMAML (implicit gradients)"}
INNER_STEPS = {"maml": 1, "fomaml": 1, "reptile": 8, "imaml": 20}  # --inner-steps' default per --algo
INNER_LR = {"maml": 0.01, "fomaml": 0.01, "reptile": 0.01, "imaml": 0.05}  # --inner-lr's
IMAML = {"lam": 5.0, "cg_steps": 5}  # --lam's and --cg-steps' defaults: iMAML's own (see its docstring)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--algo", choices=ALGOS, default="maml", help="meta-learning algorithm")
    p.add_argument("--meta-batch", type=count(1), default=25, help="tasks per meta-iteration")
    p.add_argument("--shots", type=count(1), default=10, help="support (and query) points per training task")
    p.add_argument("--test-shots", type=count(1, TEST_POINTS // 2), default=5, help="support points of a test task")
    p.add_argument("--inner-steps", type=count(0), help="inner steps in training (default: " + ", ".join(
        f"{a} {n}" for a, n in INNER_STEPS.items()) + ")")
    p.add_argument("--inner-lr", type=rate, help="inner (adaptation) learning rate (default: " + ", ".join(
        f"{a} {n}" for a, n in INNER_LR.items()) + ")")
    p.add_argument("--meta-lr", type=rate, default=0.01, help="the meta-optimizer's (Adam's) learning rate, where "
                                                              "the cosine schedule starts")
    p.add_argument("--inner-optimizer", choices=OPTIMIZERS, default="sgd",
                   help="MAML's inner update rule (maml, fomaml): differentiable SGD, momentum, Adam or RMSprop")
    p.add_argument("--lam", type=rate, help=f"iMAML's regularisation strength (default {IMAML['lam']})")
    p.add_argument("--cg-steps", type=count(1), help=f"iMAML's conjugate-gradient steps (default {IMAML['cg_steps']})")
    p.add_argument("--validate-every", type=count(0), default=2000, metavar="N",
                   help="iterations between validation scores on new tasks (0: after the last only)")
    p.add_argument("--validation-tasks", type=count(2), default=100, metavar="N",
                   help="new tasks (seed + 500) scored for validation, --test-shots points each")


def settings(args: argparse.Namespace) -> dict:
    """What a resumed run must share with the run it resumes (defaults resolved)."""
    steps = args.inner_steps if args.inner_steps is not None else INNER_STEPS[args.algo]
    if args.algo in ("reptile", "imaml") and steps < 1:
        raise ArgumentError("--inner-steps", f"{ALGOS[args.algo].split()[0]} takes at least 1 inner step, got 0")
    if args.inner_optimizer != "sgd" and args.algo not in ("maml", "fomaml"):
        raise ArgumentError("--inner-optimizer", f"only MAML takes another inner update rule, not --algo {args.algo}")
    for flag in ("lam", "cg_steps"):
        if getattr(args, flag, None) is not None and args.algo != "imaml":
            raise ArgumentError("--" + flag.replace("_", "-"), f"is iMAML's, not --algo {args.algo}'s")
    if args.algo == "imaml" and args.lam == 0:
        raise ArgumentError("--lam", "must be > 0, got 0")
    run = {"benchmark": "sine", "--algo": args.algo, "--seed": args.seed, "--meta-batch": args.meta_batch,
           "--shots": args.shots, "--inner-steps": steps, "--meta-lr": args.meta_lr,
           "--inner-lr": INNER_LR[args.algo] if args.inner_lr is None else args.inner_lr}
    if args.inner_optimizer != "sgd":  # (only when chosen: checkpoints of earlier runs stay resumable)
        run["--inner-optimizer"] = args.inner_optimizer
    if args.algo == "imaml":
        run |= {f"--{k.replace('_', '-')}": IMAML[k] if getattr(args, k) is None else getattr(args, k) for k in IMAML}
    return run


def learner(args: argparse.Namespace):
    model = Sequential(Linear(1, 40), ReLU(), Linear(40, 40), ReLU(), Linear(40, 1))
    run = settings(args)
    if args.algo == "reptile":
        return Reptile(model, run["--inner-lr"], run["--meta-lr"], run["--inner-steps"])
    if args.algo == "imaml":
        return iMAML(model, run["--inner-lr"], run["--meta-lr"], run["--inner-steps"], run["--lam"], run["--cg-steps"])
    return MAML(model, run["--inner-lr"], run["--meta-lr"], args.algo == "fomaml", run["--inner-steps"],
                inner_optimizer=args.inner_optimizer)


def memory(args: argparse.Namespace) -> list[tuple[str, int, int]]:
    """What is built at once, at least: a meta-iteration's tasks (5 kB for a task of 20 points, measured at
    60,000 tasks per meta-iteration: the points, the tensors, their stacked copies) and the test tasks
    (2.9 kB each, measured)."""
    return [("--meta-batch", args.meta_batch, 1_000 + 2 * args.shots * 150), ("--test-tasks", args.test_tasks, 2_500)]


def new_tasks(n: int, shots: int, seed: int, points: int = TEST_POINTS) -> list:
    """New tasks: ``shots`` support points, ``points // 2`` query points."""
    return [(sx[:shots], sy[:shots], qx, qy) for sx, sy, qx, qy in generate_regression_tasks(n, points, seed=seed)]


def test_tasks(args: argparse.Namespace, count: int, seed: int) -> list:
    """``count`` new tasks of --test-shots support points, drawn with ``seed`` (the run's report: its seed + 1000)."""
    return new_tasks(count, args.test_shots, seed)


def run(args: argparse.Namespace) -> Iterator[str]:
    run_settings = settings(args)
    preflight(args, run_settings, memory(args))
    nx.manual_seed(args.seed)
    meta = learner(args)
    validation = new_tasks(args.validation_tasks, args.test_shots, args.seed + 500)
    history, timing = train(meta, lambda epoch: generate_regression_tasks(args.meta_batch, 2 * args.shots),
                            args.meta_batch, args, run_settings, validation, args.validate_every or args.iterations)
    yield (f"{ALGOS[args.algo]} on sine regression, {args.meta_batch} tasks (K = {args.shots}) per meta-iteration, "
           f"seed {args.seed}, {args.device}: {timing}")
    scores, at = history["validation"], history["validation_epoch"]
    best = min(range(len(scores)), key=scores.__getitem__)
    yield (f"validation on {args.validation_tasks} other new tasks ({args.test_shots}-shot, the learner's default "
           f"steps): best MSE {scores[best]:.4f} after iteration {at[best]}, last {scores[-1]:.4f}")
    tasks = test_tasks(args, args.test_tasks, args.seed + 1000)
    yield f"{args.test_shots}-shot test MSE on {args.test_tasks} new tasks (mean ± 95% CI), inner lr {meta.inner_lr}:"
    for s in STEPS:
        yield f"  {f'after {s} step' + ('s:' if s > 1 else ':'):16}{evaluate(meta, tasks, steps=s)}"
    yield "  MAML paper (5-shot, 70,000 iterations): " + " / ".join(f"{PAPER[s]}" for s in STEPS)
    if args.plot:
        plot(meta, history, args)
        yield f"plot: {args.plot}"


def plot(meta, history: dict, args: argparse.Namespace) -> None:
    """Left: a new task's true function, its support points, and the model before and after 1 and 10
    steps (the MAML paper's figure). Right: the learning curve."""
    fig, (ax, curve) = figure(2)
    sx, sy, qx, qy = new_tasks(1, args.test_shots, args.seed + 2000, points=400)[0]
    order = qx.numpy()[:, 0].argsort()
    ax.plot(qx.numpy()[order, 0], qy.numpy()[order, 0], color="tab:red", lw=2, label="ground truth")
    x = nx.linspace(-5, 5, 200).reshape(200, 1)
    for steps, style in ((0, ":"), (1, "--"), (10, "-")):
        model = meta.model if steps == 0 else meta.adapt_to_task(sx, sy, steps=steps)
        with nx.no_grad():
            y = model(x).numpy()[:, 0]
        ax.plot(x.numpy()[:, 0], y, "k" + style, label="pre-update" if steps == 0 else f"after {steps} step"
                + ("s" if steps > 1 else ""))
    ax.plot(sx.numpy()[:, 0], sy.numpy()[:, 0], "^", color="tab:purple", ms=8, label=f"{args.test_shots} points used")
    ax.set_title(f"{ALGOS[args.algo]}, {args.test_shots}-shot adaptation")
    ax.set_xlabel("x")
    ax.legend(fontsize=8)
    learning_curve(curve, history)
    fig.savefig(args.plot, dpi=110)
