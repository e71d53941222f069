"""What the benchmarks share: optional dependencies, argument types, the checks made before anything runs,
and meta-training with the command line's options."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from neurenix.optim import Optimizer
from neurenix.optim.lr_scheduler import CosineAnnealingLR

from ..base import MetaLearningModel
from ..checkpoint import check_writable, read_checkpoint
from ..resume import check_settings


class ArgumentError(ValueError):
    """A command-line value that cannot work (exit status 2, like argparse's own errors): ``flag`` names it."""

    def __init__(self, flag: str, message: str):
        super().__init__(f"argument {flag}: {message}")


def need(module: str, extra: str = "cli") -> ModuleType:
    """Import an optional dependency, or say in one line how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"this needs {module.split('.')[0]}: pip install 'neurenix-meta[{extra}]'") from None


# -- argument types (argparse names the flag in its error) -------------------------------------------
def count(least: int, most: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [least, most]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < least or (most is not None and value > most):
            bound = f">= {least}" if most is None else f"between {least} and {most}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value
    parse.__name__ = "integer"
    return parse


def rate(text: str) -> float:
    """An argparse type: a finite number >= 0 (a learning rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


SCHEDULES = ("constant", "cosine")


def with_schedule(args: argparse.Namespace, settings: dict) -> dict:
    """The run's ``settings`` and its learning-rate schedule: a cosine schedule is fixed by its length, so a
    run resumes only with the --iterations it started with."""
    return {**settings, "--lr-schedule": args.lr_schedule} | \
        ({"--iterations": args.iterations} if args.lr_schedule == "cosine" else {})


# -- checks before anything runs ---------------------------------------------------------------------
def preflight(args: argparse.Namespace, settings: dict, needs: Sequence[tuple[str, int, int]]) -> None:
    """Fail now, not after training: a run that cannot fit in memory (``needs``: (flag, how many, bytes each
    at least) for what is built at once), a --plot or --save that could not be written, a --resume that has
    nothing left to do or was saved by a run with other ``settings``."""
    check_memory(needs)
    if getattr(args, "log", None):
        from .metrics import check_log
        check_log(args.log)
        check_writable(args.log, "the log")
    if args.plot:
        check_plot(args.plot)
    if args.save:
        check_writable(args.save)
    if args.resume:
        check_resume(args.resume, args.iterations, with_schedule(args, settings))


def collect_outputs(args: argparse.Namespace) -> None:
    """--out DIR: the run's checkpoint, log and plot (when matplotlib is installed) go into DIR, created here,
    unless --save, --log or --plot name their own file."""
    if not getattr(args, "out", None):
        return
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ArgumentError("--out", f"cannot create the folder {out}: {e.strerror}") from None
    args.save = args.save or str(out / "checkpoint.safetensors")
    args.log = args.log or str(out / "log.jsonl")
    if args.plot is None and importlib.util.find_spec("matplotlib") is not None:
        args.plot = str(out / "plot.png")


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable; else free physical pages), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(needs: Sequence[tuple[str, int, int]]) -> None:
    total, free = sum(n * each for _, n, each in needs), available_memory()
    if free is None or total <= free:
        return
    flag, n, each = max(needs, key=lambda need: need[1] * need[2])
    raise ArgumentError(flag, f"{n} needs about {_bytes(total)} of memory in all (at least {_bytes(each)} per "
                              f"task), more than the {_bytes(free)} available here")


def _bytes(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return ""  # not reached


def check_plot(path: str) -> None:
    """matplotlib is installed, writes ``path``'s format, and ``path`` can be written."""
    need("matplotlib")
    from matplotlib.backend_bases import FigureCanvasBase

    suffix = Path(path).suffix.lstrip(".").lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix and suffix not in formats:
        raise ArgumentError("--plot", f"matplotlib cannot write .{suffix} files (it writes "
                                      f"{', '.join(sorted(formats))})")
    check_writable(path, "the plot")


def check_resume(path: str, iterations: int, settings: dict) -> None:
    """The checkpoint is readable, has iterations left before ``iterations``, and was saved with ``settings``."""
    metadata = read_checkpoint(path).metadata
    check_settings(path, metadata.get("settings"), {"run": settings})
    done = metadata.get("epoch")
    if type(done) is int and done >= iterations:
        raise ArgumentError("--iterations", f"--resume {path} is already at iteration {done}, so --iterations "
                                            f"{iterations} leaves nothing to train; ask for more to continue it")


def train(learner: MetaLearningModel, tasks: Callable[[int], Sequence], tasks_per_batch: int,
          args: argparse.Namespace, settings: dict[str, Any], validation: Sequence | None = None,
          validate_every: int = 1, keep_best: bool = False,
          meta_optimizer: Optimizer | None = None) -> tuple[dict[str, list[float]], str]:
    """Meta-train up to ``args.iterations`` meta-updates (one per epoch, on that epoch's fresh tasks);
    returns the history (one entry per iteration, and the ``validation`` tasks' scores every
    ``validate_every`` iterations and after the last) and a line on how long this run took. ``settings`` are
    the run's (saved with checkpoints, compared when resuming); ``args.log`` gets a row per iteration
    (:mod:`.metrics`). The learner's default meta-optimizer's rate
    follows ``args.lr_schedule`` (``meta_optimizer``'s, when given, instead of the default Adam at ``meta_lr``);
    ``keep_best`` ends with the weights of the best validation score."""
    ran = []  # the epochs run here (fewer than the history holds when resuming)

    def epoch_tasks(epoch: int) -> Sequence:
        ran.append(epoch)
        return tasks(epoch)

    optimizer = learner.default_optimizer() if meta_optimizer is None else meta_optimizer
    scheduler = CosineAnnealingLR(optimizer, T_max=args.iterations) \
        if args.lr_schedule == "cosine" else None
    from .metrics import MetricsLog
    log = MetricsLog(args.log, resume=args.resume is not None) if getattr(args, "log", None) else None
    start = time.perf_counter()
    try:
        history = learner.meta_learn(epoch_tasks, meta_optimizer, epochs=args.iterations,
                                     tasks_per_batch=tasks_per_batch, verbose=not args.quiet, checkpoint=args.save,
                                     checkpoint_every=args.save_every, resume=args.resume,
                                     settings=with_schedule(args, settings), validation=validation,
                                     validate_every=validate_every, keep_best=keep_best, scheduler=scheduler,
                                     callback=log)
    finally:
        if log is not None:
            log.close()
    seconds = time.perf_counter() - start
    timing = f"{len(ran)} iterations in {seconds:.1f} s ({1e3 * seconds / max(len(ran), 1):.2f} ms each)"
    if len(ran) < len(history["loss"]):
        timing += f", resumed after iteration {len(history['loss']) - len(ran)}"
    return history, timing
