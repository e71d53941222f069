"""Per-op overhead of this tree against another neurenix (an earlier commit), side by side: runs
core_overhead.py alternately on each tree's core, in fresh processes, and compares them workload by
workload (ratio this / base: of the fastest run, and the median of the run-by-run ratios), because one
run on a shared machine moves by a few percent.

    git worktree add /tmp/base <commit>      # then build its C kernels in place (see SOURCES)
    python bench/core_overhead_ab.py --base /tmp/base --runs 10 --out bench/results/core_overhead_ab.json
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
# each tree's core and C backend (its compiled library built in place: an editable install of that tree, or
# neurenix_backend_cpu/_build.py's build()), so that each side runs its own cpu kernels
SOURCES = ("packages/neurenix-core/src", "packages/neurenix-backend-cpu/src")


def one_run(tree: pathlib.Path, rounds: int, number: int) -> dict:
    """core_overhead.py's neurenix timings (us per call) with ``tree``'s core and C backend first on the path."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run.json")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(tree / s) for s in SOURCES), OMP_NUM_THREADS="1")
        subprocess.run([sys.executable, str(HERE / "core_overhead.py"), "--rounds", str(rounds), "--number",
                        str(number), "--out", out], env=env, check=True, capture_output=True)
        with open(out) as f:
            return {name: r["neurenix_us"] for name, r in json.load(f)["results"].items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the other tree (a checkout of the repository)")
    ap.add_argument("--runs", type=int, default=10, help="processes per tree, alternated")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--number", type=int, default=1000)
    ap.add_argument("--out", default=None, help="JSON file to write")
    args = ap.parse_args()
    trees = {"base": pathlib.Path(args.base).resolve(), "this": HERE.parent}
    runs: dict = {name: [] for name in trees}
    for _ in range(args.runs):
        for name, tree in trees.items():
            runs[name].append(one_run(tree, args.rounds, args.number))
    results = {}
    for wl in runs["base"][0]:
        base, this = [r[wl] for r in runs["base"]], [r[wl] for r in runs["this"]]
        results[wl] = {"base_us": min(base), "this_us": min(this), "ratio_of_fastest": min(this) / min(base),
                       "median_ratio": statistics.median(t / b for t, b in zip(this, base))}
    print(f"{'workload':<28}{'base us':>9}{'this us':>9}{'fastest':>9}{'median':>8}")
    for wl, r in results.items():
        print(f"{wl:<28}{r['base_us']:>9.2f}{r['this_us']:>9.2f}{r['ratio_of_fastest']:>9.3f}{r['median_ratio']:>8.3f}")
    if args.out:
        report = {"benchmark": "core_overhead_ab", "base": str(trees["base"]), "runs": args.runs, "results": results}
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
