"""Compiled meta-steps (``neurenix.compile``, the default of ``meta_learn``) against eager ones, on one device.

Per workload (``bench/peers/workloads.py``), in one process per thread count, eager and compiled runners
interleaved round by round (medians, and the median of each round's ratio):

- time per meta-iteration, eager and compiled (replayed);
- the cost of tracing: the first compiled meta-iteration of a fresh learner, over the eager median and over
  the first eager meta-iteration of a fresh learner (both pay first-call costs: plan caches, Adam's state);
- peak memory of one meta-iteration (tracemalloc: NumPy's allocations), eager and replayed;
- the kernels of the replayed program, and Python frames per kernel call on replay (``sys.setprofile``).

    python bench/compile.py --out bench/results/compile.json
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time
import tracemalloc

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peers.workloads import WORKLOADS, data, initial_weights  # noqa: E402

DEFAULT = ["maml_sine", "fomaml_sine", "reptile_sine", "protonet_conv4_train", "fomaml_conv4"]


def _runner(name: str, compiled: bool):
    from peers import ours
    w = WORKLOADS[name]
    return ours.build(w, data(w), initial_weights(w), compile=compiled)


def _peak_mb(step) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    step()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2 ** 20


def _learner_program(runner):
    """The program the compiled runner replays (from the learner its step closes over)."""
    learner = next(c.cell_contents for c in runner.step.__closure__ if hasattr(c.cell_contents, "meta_learn"))
    compiled = learner.__dict__.get("_compiled_gradient")
    return compiled.programs()[-1] if compiled and compiled.programs() else None


def _frames_per_kernel(step, program) -> float | None:
    """Python calls made during one replayed step, per kernel of its program (a proxy for host overhead)."""
    if program is None:
        return None
    calls = [0]

    def count(frame, event, arg):
        if event in ("call", "c_call"):
            calls[0] += 1
    sys.setprofile(count)
    try:
        step()
    finally:
        sys.setprofile(None)
    return calls[0] / len(program.instructions)


def worker(threads: int, rounds: int, names: list[str]) -> dict:
    import neurenix as nx
    nx.set_num_threads(threads)
    out = {}
    for name in names:
        fresh, fresh_eager = _runner(name, True), _runner(name, False)
        start = time.perf_counter()
        fresh_eager.step()
        first_eager_ms = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        fresh.step()
        trace_ms = (time.perf_counter() - start) * 1e3
        runners = {"eager": fresh_eager, "compiled": fresh}
        for r in runners.values():
            r.step()
            r.step()
        samples = {k: [] for k in runners}
        n = 10 if WORKLOADS[name].model == "mlp" else 1
        for _ in range(rounds):
            for k, r in runners.items():
                start = time.perf_counter()
                for _ in range(n):
                    r.step()
                samples[k].append((time.perf_counter() - start) / n * 1e3)
        eager, compiled = (statistics.median(samples[k]) for k in ("eager", "compiled"))
        program = _learner_program(runners["compiled"])
        out[name] = {
            "eager_ms": eager, "compiled_ms": compiled,
            "ratio": statistics.median(c / e for c, e in zip(samples["compiled"], samples["eager"])),
            "trace_ms": trace_ms, "trace_over_eager": trace_ms / eager, "first_eager_ms": first_eager_ms,
            "trace_over_first_eager": trace_ms / first_eager_ms,
            "peak_mb": {k: _peak_mb(r.step) for k, r in runners.items()},
            "kernels": len(program.instructions) if program else None,
            "python_calls_per_kernel": _frames_per_kernel(runners["compiled"].step, program),
            "samples_ms": samples,
        }
        print(f"  {threads} thread(s) {name}: eager {eager:.2f} ms, compiled {compiled:.2f} ms "
              f"(x{out[name]['ratio']:.2f}), trace {trace_ms:.1f} ms, peak MB {out[name]['peak_mb']}",
              file=sys.stderr, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path)
    parser.add_argument("--workloads", nargs="*", default=DEFAULT, choices=sorted(WORKLOADS))
    parser.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--worker", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.worker:
        threads, rounds, *names = args.worker
        print(json.dumps(worker(int(threads), int(rounds), names)))
        return
    report = {}
    for t in args.threads:
        env = os.environ | {v: str(t) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        done = subprocess.run([sys.executable, __file__, "--worker", str(t), str(args.rounds), *args.workloads],
                              env=env, stdout=subprocess.PIPE, check=True, text=True)
        report[str(t)] = json.loads(done.stdout.strip().splitlines()[-1])
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.write_text(text)
    for t, per in report.items():
        for name, r in per.items():
            print(f"{t} thread(s) {name:<22} eager {r['eager_ms']:8.2f} ms  compiled {r['compiled_ms']:8.2f} ms "
                  f"ratio {r['ratio']:.2f}  trace x{r['trace_over_eager']:.1f} "
                  f"(x{r['trace_over_first_eager']:.1f} of a first eager step)  peak MB eager "
                  f"{r['peak_mb']['eager']:.2f} / replay {r['peak_mb']['compiled']:.2f}  kernels {r['kernels']}  "
                  f"calls/kernel {r['python_calls_per_kernel']}")


if __name__ == "__main__":
    main()
