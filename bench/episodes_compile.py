"""``meta_learn(compile=True)`` on Meta-Dataset episodes (``EpisodeSampler``), whose shapes change at almost
every meta-batch, against ``compile=False``; and on fixed-shape tasks (``TaskSampler``) for reference.

``neurenix.compile`` captures one program per guard key (the meta-batch's shapes among it). Traced at their
first sight ("compiled-every-shape", what ``MetaLearningModel`` did before it gated tracing), varied episodes
make every step a trace (an eager step plus recording) and none a replay, until past ``2 * max_programs + 2``
new keys neurenix.compile gives up, with a ``CaptureWarning``, and runs every later call eagerly. "compiled"
is the learner as it is: a meta-batch's shapes are traced at their second sight only (the first step's too).
Per learner, sampler and mode: seconds per meta-step (median over steps 2.., over steps 2-20 and over the
rest), the compiled step's stats (traces, replays, eager), the warnings, the distinct meta-batch shapes, and
the sizes of the shape-keyed caches at the end. The same pre-sampled tasks feed every mode.

    python bench/episodes_compile.py --out bench/results/episodes_compile.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

import neurenix as nx
from neurenix import nn
from neurenix.meta import MAML, EpisodeSampler, MetaLearningModel, PrototypicalNetworks, TaskSampler
from neurenix.meta import tasks as meta_tasks

DIM, CLASSES, PER_CLASS, WAYS = 32, 40, 30, 10


def data():
    g = np.random.default_rng(0)
    centres = g.normal(size=(CLASSES, DIM))
    y = np.repeat(np.arange(CLASSES), PER_CLASS)
    return (centres[y] + g.normal(size=(len(y), DIM))).astype(np.float32), y


def learner(name):
    nx.manual_seed(0)
    if name == "maml":
        return MAML(nn.Sequential(nn.Linear(DIM, 64), nn.ReLU(), nn.Linear(64, WAYS)), inner_lr=0.1, inner_steps=1)
    return PrototypicalNetworks(nn.Sequential(nn.Linear(DIM, 64), nn.ReLU(), nn.Linear(64, 32)))


def samplers(x, y):
    return {"episodes": EpisodeSampler(x, y, min_ways=5, max_ways=WAYS, max_support=60, max_query_per_class=5,
                                       seed=1),
            "fixed": TaskSampler(x, y, ways=5, shots=5, queries=5, seed=1)}


def shape_keys(meta_batch):
    """The meta-batch's stacks as neurenix.compile sees them: (shapes, classes) of each shape group."""
    checked = meta_tasks.check_tasks(meta_batch)
    return tuple((b.support_x.shape, b.query_x.shape, b.classes) for b in meta_tasks.batches(checked))


def every_shape(self, attribute, fn, key):
    """``MetaLearningModel._compiled`` without its gate: every new shape is traced at its first sight."""
    compiled = self.__dict__.get(attribute)
    if compiled is None:
        compiled = self.__dict__[attribute] = nx.compile(fn)
    return compiled


def run(name, tasks, mode):
    model = learner(name)
    gated = MetaLearningModel._compiled
    if mode == "compiled-every-shape":
        MetaLearningModel._compiled = every_shape
    times = []
    last = [time.perf_counter()]

    def tick(epoch, history):
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", nx.CaptureWarning)
        last[0] = time.perf_counter()
        try:
            model.meta_learn(lambda e: tasks[e], epochs=len(tasks), tasks_per_batch=len(tasks[0]),
                             compile=mode != "eager", callback=tick)
        finally:
            MetaLearningModel._compiled = gated
    compiled = model.__dict__.get("_compiled_gradient")
    out = {"median_s": statistics.median(times[1:]), "median_first20_s": statistics.median(times[1:20]),
           "median_after20_s": statistics.median(times[20:]), "total_s": sum(times),
           "warnings": sorted({str(w.message)[:200] for w in caught})}
    if compiled is not None:
        out |= {"stats": dict(compiled.stats), "programs_held": len(compiled.programs()),
                "gave_up": compiled._off is not None}
    return out


def caches():
    from neurenix.ops import _operands, shape
    sizes = {"meta.tasks._shapes_checked": len(meta_tasks._shapes_checked),
             "ops._broadcast_cache": len(_operands._broadcast_cache), "ops._reshape_cache": len(shape._reshape_cache)}
    try:
        from neurenix_backend_cpu import elementwise
        sizes["cpu-c elementwise._plans"] = len(elementwise._plans)
    except ImportError:
        pass
    return sizes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--tasks-per-batch", type=int, default=4)
    parser.add_argument("--learners", nargs="+", default=["maml", "protonets"])
    parser.add_argument("--out")
    args = parser.parse_args()
    x, y = data()
    result = {"machine": platform.processor() or platform.machine(), "backends": [b.name for b in nx.list_backends()
                                                                                  if b.available],
              "steps": args.steps, "tasks_per_batch": args.tasks_per_batch, "runs": {}}
    for kind, sampler in samplers(x, y).items():
        tasks = [sampler.sample(args.tasks_per_batch) for _ in range(args.steps)]
        keys = [shape_keys(t) for t in tasks]
        result["runs"][kind] = {"distinct_meta_batch_keys": len(set(keys)),
                                "shape_groups_per_meta_batch": statistics.mean(len(k) for k in keys)}
        for name in args.learners:
            for mode in ("eager", "compiled", "compiled-every-shape"):
                r = run(name, tasks, mode)
                result["runs"][kind][f"{name}/{mode}"] = r
                print(kind, name, mode, json.dumps(r)[:400], flush=True)
    result["caches_at_end"] = caches()
    print(json.dumps(result["caches_at_end"]))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
