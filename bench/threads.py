"""Thread counts on a shared machine (issue 21, item 2): a ProtoNets Conv-4 training episode timed at one
thread, two threads and the default, on the machine as it is ("idle") and beside one CPU-bound process this
script starts itself (a busy loop in a subprocess), with the ratios of one run. JSON on stdout (or --out).

Each (condition, threads) cell runs in its own process, so the default is what a fresh ``import neurenix``
chooses; the cells are interleaved over ``--rounds`` rounds and each reports the median of its episodes.

    python bench/threads.py --rounds 3 --episodes 10 --out bench/results/threads.json
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: goals of issue 21: beside one CPU-bound process the default at most this times the one-thread time;
#: on an idle machine two threads at least this much faster than one
GOAL_BUSY_DEFAULT_OVER_ONE = 1.1
GOAL_IDLE_ONE_OVER_TWO = 1.5

BUSY = "while True: pass"


def worker(threads: str, episodes: int, warmup: int) -> dict:
    """Time ``episodes`` training episodes in this process; ``threads`` is "default" or a count."""
    from peers import ours
    from peers.workloads import WORKLOADS, data, initial_weights

    import neurenix as nx

    if threads != "default":
        nx.set_num_threads(int(threads))
    w = WORKLOADS["protonet_conv4_train"]
    runner = ours.build(w, data(w), initial_weights(w))
    for _ in range(warmup):
        runner.step()
    times = []
    for _ in range(episodes):
        t = time.perf_counter()
        runner.step()
        times.append(time.perf_counter() - t)
    out = {"median_s": statistics.median(times), "min_s": min(times), "threads_used": nx.get_num_threads()}
    try:
        from threadpoolctl import threadpool_info
        out["blas_threads"] = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    except ImportError:
        pass
    return out


def cell(threads: str, episodes: int, warmup: int, env: dict) -> dict:
    cmd = [sys.executable, __file__, "--worker", threads, "--episodes", str(episodes), "--warmup", str(warmup)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", nargs="*", default=["1", "2", "default"])
    ap.add_argument("--conditions", nargs="*", default=["idle", "busy"], choices=["idle", "busy"])
    ap.add_argument("--out", help="write the JSON here as well")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.episodes, args.warmup)))
        return
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    runs: dict = {c: {t: [] for t in args.threads} for c in args.conditions}
    for _ in range(args.rounds):
        for c in args.conditions:
            busy = subprocess.Popen([sys.executable, "-c", BUSY]) if c == "busy" else None
            try:
                if busy:
                    time.sleep(0.5)
                for t in args.threads:
                    runs[c][t].append(cell(t, args.episodes, args.warmup, env))
            finally:
                if busy:
                    busy.kill()
                    busy.wait()
    result: dict = {"workload": "protonet_conv4_train", "cpus": os.cpu_count(),
                    "affinity": len(os.sched_getaffinity(0)), "loadavg_before": os.getloadavg(),
                    "python": platform.python_version(), "rounds": args.rounds, "episodes": args.episodes}
    for c, by_t in runs.items():
        med = {t: statistics.median(r["median_s"] for r in rs) for t, rs in by_t.items()}
        result[c] = {"median_s": med, "threads_used": {t: rs[0]["threads_used"] for t, rs in by_t.items()},
                     "blas_threads": {t: rs[0].get("blas_threads") for t, rs in by_t.items()},
                     "per_round_s": {t: [round(r["median_s"], 4) for r in rs] for t, rs in by_t.items()}}
        if "1" in med:
            result[c]["over_one"] = {t: round(m / med["1"], 3) for t, m in med.items()}
    if "busy" in result and "default" in result["busy"]["median_s"]:
        r = result["busy"]["over_one"]["default"]
        result["goal_busy_default_over_one"] = {"goal": GOAL_BUSY_DEFAULT_OVER_ONE, "measured": r,
                                                "met": r <= GOAL_BUSY_DEFAULT_OVER_ONE}
    if "idle" in result and "2" in result["idle"]["median_s"]:
        s = round(1 / result["idle"]["over_one"]["2"], 3)
        result["goal_idle_two_speedup"] = {"goal": GOAL_IDLE_ONE_OVER_TWO, "measured": s,
                                           "met": s >= GOAL_IDLE_ONE_OVER_TWO}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
