"""Learning quality of every learner with its defaults, over seeds: writes JSON and docs/quality.md.

Three experiments, each run once per seed in its own process (one thread; ``--jobs`` processes at once), which
reports its scores, its training time and its peak memory (maximum resident set size):

- ``main``: the main job, ``neurenix train sine`` with its defaults (MAML; also ``--algo fomaml`` and
  ``--algo reptile``): 5-shot MSE after 1 / 5 / 10 steps on 1,000 new tasks, against the MAML paper's;
  ``schedule``: the same MAML job at the paper's constant Adam rate of 0.001, what the default schedule gains.
- ``user``: each regression learner built as a user would: a 1-40-40-1 ReLU network, the learner's constructor
  defaults and its default meta-optimizer, 3,000 meta-iterations of 25 new sine tasks (10 support and 10 query
  points), then 5-shot MSE after 1 / 5 / 10 / 20 steps on 1,000 new tasks (seed + 1000).
- ``digits``: ``neurenix train digits`` with its defaults per ``--algo``: 5-way 5-shot accuracy on 600 tasks of
  held-out digit classes.

Means over seeds carry a 95% interval from Student's t (n - 1 degrees of freedom).

    python bench/quality.py --out bench/results/quality.json --doc docs/quality.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = (1, 5, 10, 20)
PAPER = {1: 0.67, 5: 0.38, 10: 0.35}
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
USER_ITERATIONS, LONG_ITERATIONS = 3000, 10000
EXPERIMENTS = ("main", "schedule", "user", "long", "digits")
LONG = ("reptile",)  # the learners the ``long`` experiment runs
USER = """
import json, sys, time
import neurenix as nx
from neurenix.meta import ANIL, MAML, MetaSGD, Reptile, evaluate, generate_regression_tasks, iMAML
from neurenix.meta.cli.sine import new_tasks
from neurenix.nn import Linear, ReLU, Sequential
name, seed, iterations, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
nx.set_num_threads(1)
nx.manual_seed(seed)
model = Sequential(Linear(1, 40), ReLU(), Linear(40, 40), ReLU(), Linear(40, 1))
learner = {"maml": MAML, "fomaml": lambda m: MAML(m, first_order=True), "reptile": Reptile, "metasgd": MetaSGD,
           "anil": ANIL, "imaml": iMAML, "maml-adam": lambda m: MAML(m, inner_optimizer="adam")}[name](model)
start = time.perf_counter()
learner.meta_learn(lambda epoch: generate_regression_tasks(25, 20), epochs=iterations, tasks_per_batch=25)
seconds = time.perf_counter() - start
test = new_tasks(1000, 5, seed + 1000)
scores = {str(s): evaluate(learner, test, steps=s).mean for s in steps}
print(json.dumps({"scores": scores, "seconds": seconds, "iterations": iterations}))
"""


def cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "neurenix.meta.cli", *argv, "--quiet", "--threads", "1"]


def jobs(experiments: list[str], seeds: list[int], quick: bool) -> list[dict]:
    """Every (experiment, learner, seed) run: its command and how its output is read."""
    out = []
    for seed in seeds:
        if "main" in experiments:
            for algo in ("maml", "fomaml", "reptile"):
                extra = ["--iterations", "20", "--test-tasks", "20", "--validation-tasks", "2"] if quick else []
                out.append({"experiment": "main", "learner": algo, "seed": seed, "read": "sine",
                            "argv": cli("train", "sine", "--algo", algo, "--seed", str(seed), *extra)})
        if "schedule" in experiments:  # the main job at the paper's constant rate: what the schedule gains
            extra = ["--iterations", "20", "--test-tasks", "20", "--validation-tasks", "2"] if quick else []
            out.append({"experiment": "schedule", "learner": "maml", "seed": seed, "read": "sine",
                        "argv": cli("train", "sine", "--lr-schedule", "constant", "--meta-lr", "0.001",
                                    "--seed", str(seed), *extra)})
        if "user" in experiments:
            for name in ("maml", "fomaml", "reptile", "metasgd", "anil", "imaml", "maml-adam"):
                out.append({"experiment": "user", "learner": name, "seed": seed, "read": "json",
                            "argv": [sys.executable, "-c", USER, name, str(seed),
                                     str(5 if quick else USER_ITERATIONS), json.dumps(STEPS)]})
        if "long" in experiments:  # the same at the main job's length, for learners slow to learn in 3,000
            for name in LONG:
                out.append({"experiment": "long", "learner": name, "seed": seed, "read": "json",
                            "argv": [sys.executable, "-c", USER, name, str(seed),
                                     str(5 if quick else LONG_ITERATIONS), json.dumps(STEPS)]})
        if "digits" in experiments:
            for algo in ("protonet", "maml", "relation", "imaml", "r2d2"):
                extra = ["--iterations", "3", "--test-tasks", "4"] if quick else []
                out.append({"experiment": "digits", "learner": algo, "seed": seed, "read": "digits",
                            "argv": cli("train", "digits", "--algo", algo, "--seed", str(seed), *extra)})
    return out


def read(kind: str, text: str) -> dict:
    """Scores and training seconds from a run's output."""
    if kind == "json":
        r = json.loads(text.strip().splitlines()[-1])
        return {"scores": r["scores"], "seconds": r["seconds"], "iterations": r["iterations"]}
    timing = re.search(r"(\d+) iterations in ([\d.]+) s", text)
    r = {"seconds": float(timing[2]), "iterations": int(timing[1])}
    if kind == "sine":
        r["scores"] = {s: float(v) for s, v in re.findall(r"after (\d+) steps?: +([\d.]+)", text)}
    else:
        r["scores"] = {"accuracy": float(re.search(r"after meta-training: +([\d.]+)%", text)[1]) / 100}
        best = re.search(r"^validation on .*: best ([\d.]+)% after iteration", text, re.M)
        if best:
            r["scores"]["validation"] = float(best[1]) / 100
    return r


def run_all(todo: list[dict], parallel: int) -> list[dict]:
    """Run the jobs, ``parallel`` at a time; each one's peak memory from its own rusage (wait4)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    pending, running, done = list(todo), {}, []
    while pending or running:
        while pending and len(running) < parallel:
            job = pending.pop(0)
            proc = subprocess.Popen(job["argv"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            running[proc.pid] = (job, proc, time.perf_counter())
        pid, status, usage = os.wait4(-1, 0)
        if pid not in running:
            continue
        job, proc, start = running.pop(pid)
        out, err = proc.communicate()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(job['argv'][:6])}... failed:\n{err[-2000:]}")
        result = read(job["read"], out)
        done.append({k: job[k] for k in ("experiment", "learner", "seed")} | result |
                    {"peak_rss_mb": usage.ru_maxrss / 1024, "wall_s": time.perf_counter() - start})
        print(json.dumps(done[-1]), flush=True)
    return done


def summary(values: list[float]) -> dict:
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    return {"mean": mean, "ci95": T95.get(n - 1, 1.96) * sd / math.sqrt(n) if n > 1 else float("nan"),
            "values": values}


def group(runs: list[dict]) -> dict:
    """experiment -> learner -> score -> summary over seeds, with seconds per iteration and peak memory."""
    out: dict = {}
    for r in runs:
        out.setdefault(r["experiment"], {}).setdefault(r["learner"], []).append(r)
    table: dict = {}
    for experiment, learners in out.items():
        for learner, rs in learners.items():
            rs.sort(key=lambda r: r["seed"])
            keys = list(rs[0]["scores"])
            table.setdefault(experiment, {})[learner] = {
                "seeds": [r["seed"] for r in rs],
                "scores": {k: summary([r["scores"][k] for r in rs]) for k in keys},
                "ms_per_iteration": summary([1e3 * r["seconds"] / r["iterations"] for r in rs]),
                "train_s": summary([r["seconds"] for r in rs]),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in rs)}
    return table


def fmt(s: dict, digits: int = 3, pct: bool = False) -> str:
    scale = 100 if pct else 1
    each = " / ".join(f"{scale * v:.{1 if pct else digits}f}" for v in s["values"])
    ci = "" if math.isnan(s["ci95"]) else f" ± {scale * s['ci95']:.{1 if pct else digits}f}"
    return f"**{scale * s['mean']:.{1 if pct else digits}f}**{ci} ({each})"


NAMES = {"maml": "MAML", "fomaml": "first-order MAML", "reptile": "Reptile", "metasgd": "Meta-SGD", "anil": "ANIL",
         "protonet": "Prototypical Networks", "relation": "Relation Networks", "imaml": "iMAML",
         "maml-adam": "MAML, inner Adam", "r2d2": "R2-D2"}


def targets(table: dict) -> list[tuple[str, bool]]:
    """Issue 22's goals, each with whether the means over seeds meet it."""
    def mean(experiment: str, learner: str, score: str) -> float | None:
        r = table.get(experiment, {}).get(learner)
        return None if r is None else r["scores"][score]["mean"]

    out = []
    if "main" in table:
        got = [mean("main", "maml", str(s)) for s in PAPER]
        out.append((f"`neurenix train sine` at or below the paper's {' / '.join(map(str, PAPER.values()))}: "
                    + " / ".join(f"{v:.3f}" for v in got), all(v <= PAPER[s] for v, s in zip(got, PAPER))))
        reptile = mean("main", "reptile", "10")
        out.append((f"`--algo reptile` at most 0.5 after 10 steps: {reptile:.3f}", reptile <= 0.5))
    if "user" in table:
        for name, r in table["user"].items():
            ten, twenty = r["scores"]["10"]["mean"], r["scores"]["20"]["mean"]
            out.append((f"{NAMES[name]} (defaults): 20 steps within 10% of 10 steps: {twenty:.3f} against "
                        f"{ten:.3f}", twenty <= 1.1 * ten))
        maml = mean("user", "maml", "10")
        for name in ("metasgd", "anil"):
            v = mean("user", name, "10")
            if v is not None and maml is not None:
                out.append((f"{NAMES[name]} (defaults) at most MAML's 10-step error: {v:.3f} against {maml:.3f}",
                            v <= maml))
        for experiment, iterations in (("user", USER_ITERATIONS), ("long", LONG_ITERATIONS)):
            reptile = mean(experiment, "reptile", "10")
            if reptile is not None:
                out.append((f"Reptile (defaults, {iterations:,} meta-iterations) at most 0.5 after 10 steps: "
                            f"{reptile:.3f}", reptile <= 0.5))
    if "digits" in table:
        for name, goal in (("protonet", 0.90), ("maml", 0.85), ("relation", 0.80)):
            r = table["digits"].get(name)
            if r is None:
                continue
            acc = r["scores"]["accuracy"]
            spread = max(acc["values"]) - min(acc["values"])
            text = f"digits `{name}` at least {100 * goal:.0f}%: {100 * acc['mean']:.1f}%"
            ok = acc["mean"] >= goal
            if name == "maml":
                text += f", seeds within 5 points: {100 * spread:.1f}"
                ok = ok and spread < 0.05
            out.append((text, ok))
    return out


def markdown(table: dict, meta: dict) -> str:
    lines = ["# Learning quality", "",
             "Every number here comes from `bench/quality.py` (" + meta["command"] + "), run on " + meta["date"] +
             f" on {meta['machine']}. Each cell is the **mean** over seeds {meta['seeds']} ± the half-width of "
             "its 95% interval (Student's t), then the per-seed values. Each run is its own process on one "
             "thread; times are training only (no evaluation) and were taken with "
             f"{meta['jobs']} runs at once on this shared machine: ratios between rows mean more than the "
             "seconds.", ""]
    goals = targets(table)
    if goals:
        lines += ["## Against the goals (issue 22)", ""] + \
                 [f"- {'met' if ok else '**not met**'}: {text}" for text, ok in goals] + [""]
    if "main" in table:
        lines += ["## The main job: `neurenix train sine`", "",
                  "The command line's defaults: 10,000 meta-iterations of 25 tasks (K = 10), Adam from 0.01 "
                  "annealed to 0 by cosine; MAML with one inner step at 0.01 (Reptile: 8). 5-shot MSE on 1,000 "
                  "new tasks after 1 / 5 / 10 steps. The MAML paper, after 70,000 iterations: "
                  + " / ".join(str(v) for v in PAPER.values()) + ".", "",
                  "| `--algo` | after 1 step | after 5 steps | after 10 steps | training | ms / iteration | "
                  "peak memory |", "|---|---|---|---|---|---|---|"]
        rows = [(f"`{name}`", r) for name, r in table["main"].items()]
        rows += [("`maml`, `--lr-schedule constant --meta-lr 0.001` (the paper's rate)", r)
                 for r in table.get("schedule", {}).values()]
        for name, r in rows:
            lines.append(f"| {name} | " + " | ".join(fmt(r["scores"][str(s)]) for s in (1, 5, 10)) +
                         f" | {r['train_s']['mean']:.1f} s | {r['ms_per_iteration']['mean']:.2f} | "
                         f"{r['peak_rss_mb']:.0f} MB |")
        lines.append("")
    if "user" in table:
        lines += ["## Each regression learner with its defaults", "",
                  "Built as a user would: a 1-40-40-1 ReLU network, `Learner(model)` with the constructor's "
                  f"defaults and the default meta-optimizer (Adam at `meta_lr`), {USER_ITERATIONS:,} "
                  "meta-iterations of 25 new sine tasks (10 support and 10 query points), then 5-shot MSE on "
                  "1,000 new tasks after 1 / 5 / 10 / 20 steps of `adapt_to_task`.", "",
                  "| learner | 1 step | 5 steps | 10 steps | 20 steps | ms / iteration | peak memory |",
                  "|---|---|---|---|---|---|---|"]
        rows = [(NAMES[name], r) for name, r in table["user"].items()]
        rows += [(f"{NAMES[name]}, {LONG_ITERATIONS:,} meta-iterations", r)
                 for name, r in table.get("long", {}).items()]
        for name, r in rows:
            lines.append(f"| {name} | " + " | ".join(fmt(r["scores"][str(s)]) for s in STEPS) +
                         f" | {r['ms_per_iteration']['mean']:.2f} | {r['peak_rss_mb']:.0f} MB |")
        lines.append("")
    if "digits" in table:
        lines += ["## Few-shot digits: `neurenix train digits`", "",
                  "The command line's defaults per `--algo` (see [cli.md](cli.md#handwritten-digits-neurenix-train-"
                  "digits)): 5-way 5-shot accuracy (%) on 600 tasks of held-out digit classes.", "",
                  "| `--algo` | test accuracy | best validation | training | ms / iteration | peak memory |",
                  "|---|---|---|---|---|---|"]
        for name, r in table["digits"].items():
            val = fmt(r["scores"]["validation"], pct=True) if "validation" in r["scores"] else "-"
            lines.append(f"| `{name}` | {fmt(r['scores']['accuracy'], pct=True)} | {val} | "
                         f"{r['train_s']['mean']:.1f} s | {r['ms_per_iteration']['mean']:.2f} | "
                         f"{r['peak_rss_mb']:.0f} MB |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", nargs="+", choices=EXPERIMENTS, default=list(EXPERIMENTS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=2, help="runs at once (each on one thread)")
    ap.add_argument("--learners", nargs="+", help="run only these learners (names as in the tables' first column "
                                                  "keys: maml, imaml, r2d2...); --merge keeps the others' runs")
    ap.add_argument("--quick", action="store_true", help="a few iterations each: checks that the script runs")
    ap.add_argument("--out", help="JSON file for the runs and their summary")
    ap.add_argument("--merge", help="a JSON file of earlier runs whose other experiments are kept")
    ap.add_argument("--doc", help="markdown file to write (docs/quality.md)")
    args = ap.parse_args()
    todo = [j for j in jobs(args.experiments, args.seeds, args.quick)
            if not args.learners or j["learner"] in args.learners]
    runs = run_all(todo, args.jobs)
    if args.merge and Path(args.merge).exists():
        fresh = {(r["experiment"], r["learner"]) for r in runs}
        earlier = json.loads(Path(args.merge).read_text())["runs"]
        runs += [r for r in earlier if (r["experiment"], r["learner"]) not in fresh]
    meta = {"date": time.strftime("%Y-%m-%d"), "seeds": sorted({r["seed"] for r in runs}), "jobs": args.jobs,
            "machine": f"{os.cpu_count()} CPUs", "command": "`python bench/quality.py --out bench/results/"
            "quality.json --doc docs/quality.md`"}
    table = group(runs)
    if args.out:
        Path(args.out).write_text(json.dumps({"meta": meta, "runs": runs, "summary": table}, indent=1))
    if args.doc:
        Path(args.doc).write_text(markdown(table, meta))


if __name__ == "__main__":
    main()
