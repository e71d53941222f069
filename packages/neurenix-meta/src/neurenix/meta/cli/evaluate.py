"""``neurenix evaluate CHECKPOINT``: score a checkpoint saved by ``neurenix train ... --save`` on new tasks.

The checkpoint's saved settings say which benchmark and learner it holds; the learner is built as training
built it, its weights loaded (not the optimizer's state), and it adapts to each new task and is scored on
its query set: mean and 95% interval over the tasks. By default the tasks are the ones training reported on
(the run's seed + 1000), so the numbers match the end of ``neurenix train``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator

from ..checkpoint import CheckpointError, load_checkpoint, read_checkpoint
from ..evaluation import evaluate
from .common import count


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint written by neurenix train --save")
    p.add_argument("--tasks", type=count(2), metavar="N",
                   help="new tasks to score (default: the benchmark's --test-tasks default)")
    p.add_argument("--steps", type=count(0), nargs="+", metavar="N",
                   help="adaptation steps, one score each (default: sine 1 5 10; digits the learner's own)")
    p.add_argument("--seed", type=count(0),
                   help="seed of the tasks' draw (default: the training run's seed + 1000, the tasks it reported on)")


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
    yield (f"{algo} on {trained.benchmark}, checkpoint {args.checkpoint} (iteration {metadata.get('epoch', '?')}, "
           f"training seed {trained.seed}): {n} new tasks drawn with seed {seed}")
    steps = args.steps or getattr(module, "STEPS", [None])
    for s in steps:
        label = "the learner's steps" if s is None else f"after {s} step" + ("s" if s != 1 else "")
        yield f"  {label + ':':22}{evaluate(meta, tasks, steps=s)}"
