"""The ``neurenix`` command line: meta-train on a few-shot benchmark, score a checkpoint, list the backends.

    neurenix train sine --algo maml|fomaml|reptile     the MAML paper's sine regression
    neurenix train digits --algo protonet|maml|relation  handwritten digits (scikit-learn), held-out classes
    neurenix evaluate CHECKPOINT [--tasks N] [--steps N ...]  a checkpoint of train --save, on new tasks
    neurenix devices [--kernels]                        the installed backends, usable or not, and why
                                                        (and which backend serves each kernel)
    neurenix --version

Global flags, before or after the command: -v (log details), --threads N (host threads of our kernels and
BLAS together).

Bad input (a number out of range, an unknown algorithm or device, an unreadable checkpoint, a missing
optional dependency) ends with one line on stderr and a non-zero exit status: 2 for arguments, 1 for what
fails while running. What can be checked before training is checked before training.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import neurenix as nx

from . import digits, evaluate, sine
from .common import SCHEDULES, ArgumentError, collect_outputs, count

log = logging.getLogger(__name__)
BENCHMARKS = {"sine": sine, "digits": digits}


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (``neurenix: error: ...``), without the usage text."""

    def error(self, message: str):
        self.exit(2, f"{self.prog.split()[0]}: error: {message}\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each default said once: none added where the help text says it already, or where there is none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if "default" in (action.help or "") or action.default in (None, False, argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


def global_flags() -> Parser:
    """The flags every command takes, before or after its name: given twice, the last one counts (SUPPRESS
    keeps a subcommand's absent flag from overwriting the main parser's)."""
    flags = Parser(add_help=False)
    flags.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                       help="log progress details (logging, on stderr)")
    flags.add_argument("--threads", type=count(1), metavar="N", default=argparse.SUPPRESS,
                       help="host threads for our kernels and NumPy's BLAS together (default: OMP_NUM_THREADS, else "
                            "the CPUs affinity and cgroup quota allow, fewer while other processes keep them busy)")
    return flags


class Version(argparse.Action):
    """``--version``: neurenix's version and each installed distribution's, read from their metadata (no backend
    is loaded for it)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="print the versions and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib import metadata

        from .. import __version__ as meta
        backends = sorted({(e.dist.name, e.dist.version) for e in metadata.entry_points(group="neurenix.backends")
                           if e.dist is not None})
        parts = [f"neurenix-meta {meta}", *(f"{name} {v}" for name, v in backends)]
        print(f"neurenix {nx.__version__} ({', '.join(parts)})")
        parser.exit(0)


def device(spec: str) -> str:
    """An argparse type: a device that exists and can run here (else the reason it cannot)."""
    try:
        return str(nx.Device(spec).check())
    except (nx.errors.DeviceError, TypeError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parser() -> Parser:
    flags = global_flags()
    ap = Parser(prog="neurenix", description=__doc__.splitlines()[0], parents=[flags])
    ap.add_argument("--version", action=Version)
    sub = ap.add_subparsers(dest="command", required=True, parser_class=Parser)
    devices = sub.add_parser("devices", help="list the installed backends, with availability and reasons",
                             parents=[flags])
    devices.add_argument("--kernels", action="store_true",
                         help="also list which backend serves each kernel of each usable device type (* marks an "
                              "override of a lower-priority backend's kernel)")
    scoring = sub.add_parser("evaluate", help="score a checkpoint of neurenix train --save on new tasks",
                             description=evaluate.__doc__.split("\n\n")[0], formatter_class=HelpFormatter,
                             parents=[flags])
    evaluate.add_arguments(scoring)
    scoring.add_argument("--device", type=device, default="cpu",
                         help="where to evaluate, e.g. cpu, cuda:0, webgpu, auto (the best usable device)")
    train = sub.add_parser("train", help="meta-train and evaluate on a few-shot benchmark", parents=[flags])
    benchmarks = train.add_subparsers(dest="benchmark", required=True, parser_class=Parser)
    for name, module in BENCHMARKS.items():
        p = benchmarks.add_parser(name, help=module.__doc__.splitlines()[0], formatter_class=HelpFormatter,
                                  parents=[flags])
        module.add_arguments(p)
        p.add_argument("--iterations", type=count(1), default=module.ITERATIONS, help="meta-iterations (meta-updates)")
        p.add_argument("--lr-schedule", choices=SCHEDULES, default=getattr(module, "LR_SCHEDULE", "constant"),
                       help="the meta learning rate over the run: constant, or cosine annealing from --meta-lr to 0 "
                            "over --iterations")
        p.add_argument("--test-tasks", type=count(2), default=module.TEST_TASKS,
                       help="new tasks to evaluate on (two at least: the 95%% interval needs them)")
        p.add_argument("--device", type=device, default="cpu",
                       help="where to train, e.g. cpu, cuda:0, webgpu, auto (the best usable device)")
        p.add_argument("--seed", type=count(0), default=0, help="seed of everything random (test tasks: seed + 1000)")
        p.add_argument("--save", metavar="FILE", help="save a checkpoint (safetensors) while training and at the end")
        p.add_argument("--save-every", type=count(1), default=1000, metavar="N", help="iterations between saves")
        p.add_argument("--resume", metavar="FILE", help="continue from a checkpoint saved with --save")
        p.add_argument("--plot", metavar="FILE.png", help="plot the learning curve (and more) into FILE (matplotlib)")
        p.add_argument("--log", metavar="FILE", help="write each iteration's metrics to FILE as they come (.jsonl or "
                                                     ".csv: iteration, loss, accuracy, validation, seconds), and "
                                                     "TensorBoard events beside it when tensorboard is installed")
        p.add_argument("--out", metavar="DIR", help="gather the run's outputs in DIR: checkpoint.safetensors, "
                                                    "log.jsonl, plot.png (with matplotlib), unless --save, --log or "
                                                    "--plot name their own")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    args = parser().parse_args(argv)
    for flag, default in (("verbose", False), ("threads", None)):  # global flags given nowhere
        setattr(args, flag, getattr(args, flag, default))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    try:
        if args.threads is not None:
            nx.set_num_threads(args.threads)
        if args.command == "devices":
            print(nx.backend.describe(kernels=args.kernels))
            return 0
        nx.set_default_device(args.device)
        if args.command == "evaluate":
            lines = evaluate.run(args, lambda name: parser().parse_args(["train", name]), BENCHMARKS)
        else:
            collect_outputs(args)
            lines = BENCHMARKS[args.benchmark].run(args)
        for line in lines:
            print(line, flush=True)
        return 0
    except ArgumentError as e:
        print(f"neurenix: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, OSError, ImportError, FloatingPointError, nx.errors.DeviceError, nx.errors.BackendError) as e:
        log.debug("failed", exc_info=True)
        print(f"neurenix: error: {e}", file=sys.stderr)
        return 1

