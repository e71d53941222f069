"""``neurenix evaluate CHECKPOINT``: score a checkpoint saved by ``neurenix train ... --save`` on new tasks.

The checkpoint's saved settings say which benchmark and learner it holds; the learner is built as training
built it, its weights loaded (not the optimizer's state), and it adapts to each new task and is scored on
its query set: mean and 95% interval over the tasks. By default the tasks are the ones training reported on
(the run's seed + 1000), so the numbers match the end of ``neurenix train``. ``--int8`` scores the learner again
with its layers in int8 (``neurenix.quantization.quantize``, calibrated on training tasks): learners that adapt
without gradient steps (Prototypical and Relation Networks, R2-D2), on the cpu.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator

import neurenix as nx

from ..checkpoint import CheckpointError, load_checkpoint, read_checkpoint
from ..evaluation import evaluate
from .common import ArgumentError, count

CALIBRATION_TASKS = 8  # training tasks (seed + 2000) whose support and query sets calibrate --int8


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint written by neurenix train --save")
    p.add_argument("--tasks", type=count(2), metavar="N",
                   help="new tasks to score (default: the benchmark's --test-tasks default)")
    p.add_argument("--steps", type=count(0), nargs="+", metavar="N",
                   help="adaptation steps, one score each (default: sine 1 5 10; digits the learner's own)")
    p.add_argument("--seed", type=count(0),
                   help="seed of the tasks' draw (default: the training run's seed + 1000, the tasks it reported on)")
    p.add_argument("--int8", action="store_true",
                   help="also score the learner quantized to int8 (calibrated on CALIBRATION_TASKS training tasks); "
                        "for learners that adapt without gradient steps")


def saved_run(path: str, defaults: Callable[[str], argparse.Namespace], benchmarks: dict) -> argparse.Namespace:
    """The training run's arguments: ``defaults(benchmark)`` overridden by the settings saved in ``path``."""
    run = (read_checkpoint(path).metadata.get("settings") or {}).get("run")
    if not isinstance(run, dict) or run.get("benchmark") not in benchmarks:
        raise CheckpointError(f"{path} was not written by neurenix train --save (its settings name no benchmark "
                              f"of {sorted(benchmarks)})")
    args = defaults(run["benchmark"])
    for key, value in run.items():
        if key.startswith("--"):
            setattr(args, key[2:].replace("-", "_"), value)
    return args


def run(args: argparse.Namespace, defaults: Callable[[str], argparse.Namespace], benchmarks: dict) -> Iterator[str]:
    trained = saved_run(args.checkpoint, defaults, benchmarks)
    module = benchmarks[trained.benchmark]
    meta = module.learner(trained)
    metadata = load_checkpoint(args.checkpoint, meta, with_optimizer=False)
    n = args.tasks or module.TEST_TASKS
    seed = trained.seed + 1000 if args.seed is None else args.seed
    tasks = module.test_tasks(trained, n, seed)
    algo = module.ALGOS[trained.algo]
    int8 = quantized(meta, module, trained) if getattr(args, "int8", False) else None  # (refused before any output)
    yield (f"{algo} on {trained.benchmark}, checkpoint {args.checkpoint} (iteration {metadata.get('epoch', '?')}, "
           f"training seed {trained.seed}): {n} new tasks drawn with seed {seed}")
    steps = args.steps or getattr(module, "STEPS", [None])
    for s in steps:
        label = "the learner's steps" if s is None else f"after {s} step" + ("s" if s != 1 else "")
        yield f"  {label + ':':22}{evaluate(meta, tasks, steps=s)}"
        if int8 is not None:
            yield f"  {'int8 (quantized):':22}{evaluate(int8, tasks, steps=s)}"


def quantized(meta, module, trained: argparse.Namespace):
    """``meta`` with its layers in int8, calibrated by adapting to training tasks and classifying their queries (so
    that every layer, a relation module's too, sees its inputs); an ArgumentError where int8 cannot work."""
    if trained.algo in getattr(module, "STEPPED", ()) or not hasattr(module, "calibration_tasks"):
        raise ArgumentError("--int8", f"int8 layers have no gradient, and {module.ALGOS[trained.algo]} on "
                                      f"{trained.benchmark} adapts by gradient steps: --int8 scores learners that "
                                      "adapt without them (digits' protonet, relation, r2d2)")
    if "int8" not in (nx.default_device().kernels.dtypes or ()):
        raise ArgumentError("--int8", f"{nx.default_device()} holds no int8 tensors: evaluate with --device cpu")
    from neurenix import quantization

    # in the learner's own mode: one left in training mode (as training leaves it) normalises by each batch's
    # statistics, so its batch norms stay (not folded) and calibration sees what evaluation will
    prepared = quantization.prepare(meta, fuse=not meta.training).train(meta.training)
    with nx.no_grad():
        for sx, sy, qx, _ in module.calibration_tasks(trained, CALIBRATION_TASKS, trained.seed + 2000):
            prepared.adapt_to_task(sx, sy)(qx)
    return quantization.convert(prepared, inplace=True)
