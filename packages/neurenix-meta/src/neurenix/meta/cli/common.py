"""What the benchmarks share: optional dependencies, and meta-training with the command line's options."""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable, Sequence
from types import ModuleType

from ..base import MetaLearningModel


def need(module: str, extra: str = "cli") -> ModuleType:
    """Import an optional dependency, or say in one line how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"this needs {module.split('.')[0]}: pip install 'neurenix-meta[{extra}]'") from None


def train(learner: MetaLearningModel, tasks: Callable[[int], Sequence], tasks_per_batch: int,
          args: argparse.Namespace) -> tuple[dict[str, list[float]], str]:
    """Meta-train up to ``args.iterations`` meta-updates (one per epoch, on that epoch's fresh tasks);
    returns the history (one entry per iteration) and a line on how long this run took."""
    ran = []  # the epochs run here (fewer than the history holds when resuming)

    def epoch_tasks(epoch: int) -> Sequence:
        ran.append(epoch)
        return tasks(epoch)

    start = time.perf_counter()
    history = learner.meta_learn(epoch_tasks, epochs=args.iterations, tasks_per_batch=tasks_per_batch,
                                 verbose=not args.quiet, checkpoint=args.save, checkpoint_every=args.save_every,
                                 resume=args.resume)
    seconds = time.perf_counter() - start
    timing = f"{len(ran)} iterations in {seconds:.1f} s ({1e3 * seconds / max(len(ran), 1):.2f} ms each)"
    if len(ran) < len(history["loss"]):
        timing += f", resumed after iteration {len(history['loss']) - len(ran)}"
    return history, timing
