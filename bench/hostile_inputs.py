"""Counts how neurenix answers hostile input: each case of packages/neurenix-core/tests/test_hostile_inputs.py is
run and classed as

  clear           the documented kind of error (neurenix.testing.errors), raised by neurenix's own code
  right           a valid call that gave the right result
  internal        an exception of another type, or raised from outside neurenix (NumPy, the standard library)
  silently wrong  no error where one was due, or a wrong result
  refused         a clear error where PyTorch gives a result
  hang            no answer within the time limit

The test asserts more (the error's type and message); this script only classes, so that it can also run on
an older neurenix (``PYTHONPATH=<old tree>/packages/neurenix-core/src``) to count what a change fixed.

    python bench/hostile_inputs.py --out bench/results/hostile_inputs.json
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import pathlib
import signal
import sys
import types
import warnings

import neurenix as nx

TESTS = pathlib.Path(__file__).resolve().parent.parent / "packages/neurenix-core/tests/test_hostile_inputs.py"
DOCUMENTED = (ValueError, TypeError, IndexError, RuntimeError, MemoryError, OverflowError)


def raised_inside(e: BaseException) -> bool:
    tb, last = e.__traceback__, None
    while tb is not None:
        last, tb = tb.tb_frame.f_code.co_filename, tb.tb_next
    return last is not None and "neurenix" not in last.replace("\\", "/").split("/site-packages/")[-1]


def classify(case, seconds: int = 10) -> str:
    def alarm(signum, frame):
        raise TimeoutError

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = case.fn()
    except TimeoutError:
        return "hang"
    except Exception as e:  # classing it is the point
        if isinstance(e, DOCUMENTED) and (not raised_inside(e) or isinstance(e, MemoryError)):
            return "clear" if case.error is not None else "refused"
        return "internal"
    finally:
        signal.alarm(0)
    if case.error is not None:
        return "silently wrong"
    try:
        return "right" if case.check(result) else "silently wrong"
    except Exception:  # a result the check cannot read is not the right one
        return "silently wrong"


def _stand_ins() -> None:
    """Names the cases import that an older neurenix lacks (so that it can be counted too)."""
    if not hasattr(nx, "InPlaceError"):
        nx.InPlaceError = type("InPlaceError", (RuntimeError,), {})
    try:
        import neurenix.testing.errors  # noqa: F401
    except ImportError:
        stand_in = types.ModuleType("neurenix.testing.errors")
        stand_in.raised_inside = raised_inside
        sys.modules["neurenix.testing.errors"] = stand_in


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="JSON file to write")
    args = ap.parse_args()
    _stand_ins()
    spec = importlib.util.spec_from_file_location("hostile_cases", TESTS)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (its dataclass looks itself up there)
    spec.loader.exec_module(module)
    classes = {name: classify(case) for name, case in module.CASES.items()}
    counts = collections.Counter(classes.values())
    report = {"benchmark": "hostile_inputs", "neurenix": nx.__version__, "tree": os.path.dirname(nx.__file__),
              "tried": len(classes), "counts": dict(counts), "cases": classes}
    print(f"{len(classes)} hostile inputs: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for name, cls in classes.items():
        if cls not in ("clear", "right"):
            print(f"  {cls:<15} {name}")
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
