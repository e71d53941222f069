"""An MPI job for test_distributed.py: ``mpiexec -n N python -m mpi4py mpi_job.py MODE OUT_DIR``.

``train``: every meta-learner meta-trains with ``distributed=True``; each rank saves its parameters and
history to OUT_DIR/rank{r}.npz, which the test compares with ``learners()`` trained in one process.
The other modes are the bad inputs: each must end the job with a clear error.
"""

import os
import pickle
import sys
import threading
import time

import numpy as np

import neurenix as nx
from meta_helpers import class_tasks, mlp, sine_tasks
from neurenix import distributed as dist
from neurenix import nn
from neurenix.meta import MAML, PrototypicalNetworks, RelationNetworks, Reptile
from neurenix.meta.distributed import DataParallel
from neurenix.optim import SGD

TASKS, PER_BATCH, EPOCHS = 7, 3, 2  # batches of 3, 3, 1: uneven shares, and an idle rank at 2 and 3 ranks


def learners():
    """name -> (learner, optimizer or None, tasks): float64, fixed seeds, the same on every rank."""
    sine, classes = sine_tasks(TASKS, rows=5), class_tasks(TASKS, ways=3, per_class=4, dim=5)
    maml = MAML(mlp(seed=0, sizes=(1, 8, 8, 1)), inner_lr=0.05, meta_lr=0.01, inner_steps=2)
    fomaml = MAML(mlp(seed=1, sizes=(1, 8, 8, 1)), inner_lr=0.05, meta_lr=0.01, inner_steps=2, first_order=True)
    reptile = Reptile(mlp(seed=2, sizes=(1, 8, 1)), inner_lr=0.05, inner_steps=3)
    nx.manual_seed(5)
    bn = nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3)).double()
    return {
        "maml": (maml, None, sine),
        "fomaml": (fomaml, SGD(fomaml.parameters(), lr=0.01, momentum=0.9), sine),
        "reptile": (reptile, SGD(reptile.parameters(), lr=0.5), sine),  # the interpolation
        "reptile_adam": (Reptile(mlp(seed=3, sizes=(1, 8, 1)), inner_steps=2, meta_lr=0.01), None, sine),  # default
        "protonets": (PrototypicalNetworks(mlp(seed=4, sizes=(5, 7, 4)), meta_lr=0.01), None, classes),
        "relation": (RelationNetworks(mlp(seed=6, sizes=(5, 7, 4)), mlp(seed=7, sizes=(8, 6, 1)), 0.01), None,
                     classes),
        "maml_batchnorm": (MAML(bn, inner_lr=0.05, meta_lr=0.01, inner_steps=1), None, classes),
    }


def train(distributed: bool, epochs: int = EPOCHS, restore=None) -> dict:
    """Meta-train every learner; returns name -> {"params" (flat), "history", "learner", "optimizer", "rng"}."""
    out = {}
    for name, (learner, opt, tasks) in learners().items():
        nx.manual_seed(11)  # the shuffling order (rank 0's is broadcast)
        if restore:
            restore(name, learner, opt)
        history = learner.meta_learn(tasks, opt, epochs=epochs, tasks_per_batch=PER_BATCH, distributed=distributed)
        out[name] = {"params": np.concatenate([p.numpy().ravel() for p in learner.parameters()]),
                     "history": history, "learner": learner, "optimizer": opt or learner.default_optimizer(),
                     "rng": nx.random.get_rng_state()}
    return out


def save_results(results: dict, path: str) -> None:
    arrays = {}
    for name, r in results.items():
        arrays[f"{name}.params"] = r["params"]
        arrays.update({f"{name}.{key}": np.array(v) for key, v in r["history"].items()})
    np.savez(path, **arrays)


def main(mode: str, out: str) -> None:
    r = dist.rank()
    if mode == "train":
        save_results(train(True), f"{out}/rank{r}.npz")
    elif mode == "checkpoint":  # one epoch, then rank 0 alone saves learner, optimizer and generator
        results = train(True, epochs=1)
        if r == 0:
            state = {name: (r["learner"].state_dict(), r["optimizer"].state_dict(), r["rng"])
                     for name, r in results.items()}
            with open(f"{out}/checkpoint.pkl", "wb") as f:
                pickle.dump(state, f)
    elif mode == "resume":  # rank 0 alone loads it; the others start from other weights, to be overwritten
        checkpoint = None
        if r == 0:
            with open(f"{out}/checkpoint.pkl", "rb") as f:
                checkpoint = pickle.load(f)

        def restore(name, learner, opt):
            if checkpoint is None:
                for p in learner.parameters():
                    p.data = p.data + 1.0
                return
            model, optimizer, rng = checkpoint[name]
            learner.load_state_dict(model)
            (opt or learner.default_optimizer()).load_state_dict(optimizer)
            nx.random.set_rng_state(rng)
        save_results(train(True, epochs=1, restore=restore), f"{out}/rank{r}.npz")
    elif mode in ("meta_checkpoint", "meta_resume"):  # meta_learn's own checkpoint=/resume=, one shared path
        learner, opt, tasks = learners()["maml"]
        nx.manual_seed(11)
        path = f"{out}/maml.safetensors"
        history = learner.meta_learn(tasks, opt, epochs=1 if mode == "meta_checkpoint" else 2,
                                     tasks_per_batch=PER_BATCH, distributed=True,
                                     **({"checkpoint": path} if mode == "meta_checkpoint" else {"resume": path}))
        save_results({"maml": {"params": np.concatenate([p.numpy().ravel() for p in learner.parameters()]),
                               "history": history}}, f"{out}/rank{r}.npz")
    elif mode == "too_many_ranks":
        learner, _, tasks = learners()["maml"]
        learner.meta_learn(tasks, epochs=1, tasks_per_batch=1, distributed=True)
    elif mode == "other_model":
        learner = MAML(mlp(sizes=(1, 8, 1) if r == 0 else (1, 9, 1)))
        learner.meta_learn(sine_tasks(TASKS, rows=5), epochs=1, tasks_per_batch=PER_BATCH, distributed=True)
    elif mode == "other_tasks":
        learner = MAML(mlp(sizes=(1, 8, 1)))
        learner.meta_learn(sine_tasks(TASKS, rows=5, seed=r), epochs=1, tasks_per_batch=PER_BATCH, distributed=True)
    elif mode == "other_shuffle":  # a loss that draws random numbers on rank 1 only: epoch 2 shuffles differently
        def mse_drawing(pred, y):
            if r == 1:
                nx.random.generator().random()
            return ((pred - y) ** 2).mean()
        learner = MAML(mlp(sizes=(1, 8, 1)))
        learner.meta_learn(sine_tasks(TASKS, rows=5), epochs=2, tasks_per_batch=PER_BATCH, loss_fn=mse_drawing,
                           distributed=True)
    elif mode == "resumed_on_rank_0_only":
        resumed_on_rank_0_only(r, out)
    elif mode in SETTINGS:
        SETTINGS[mode](r)
    elif mode in FAULTS:
        FAULTS[mode](r)
    elif mode == "diverged":
        learner, _, tasks = learners()["maml"]
        parallel = DataParallel(learner, learner.default_optimizer(), learner.check(tasks), PER_BATCH)
        if r == 1:
            with nx.no_grad():
                learner.model[2].bias.add_(1e-12)
        parallel.check_replicas()
    else:
        raise SystemExit(f"unknown mode {mode!r}")


def sine_learn(r, learner=None, tasks=None, **kw):
    """MAML on the sine tasks, with ``kw`` over the defaults of the bad-input modes."""
    learner = learner or MAML(mlp(sizes=(1, 8, 1)), inner_lr=0.05)
    args = {"epochs": 2, "tasks_per_batch": PER_BATCH, "distributed": True} | kw
    return learner.meta_learn(sine_tasks(TASKS, rows=5) if tasks is None else tasks, **args)


def resumed_on_rank_0_only(r, out):
    path = f"{out}/resume.safetensors"
    learner = MAML(mlp(sizes=(1, 8, 1)))
    sine_learn(r, learner, epochs=1, checkpoint=path)  # rank 0 writes the checkpoint
    sine_learn(r, learner, **({"resume": path} if r == 0 else {}))


# settings that differ between ranks: the start-up comparison names them (last rank differs)
SETTINGS = {
    "other_epochs": lambda r: sine_learn(r, epochs=2 + (r == 1)),
    "other_task_count": lambda r: sine_learn(r, tasks=sine_tasks(TASKS - (r == 2), rows=5)),
    "other_tasks_per_batch": lambda r: sine_learn(r, tasks_per_batch=PER_BATCH + (r == 1)),
    "other_learner": lambda r: sine_learn(r, (Reptile if r == 1 else MAML)(mlp(sizes=(1, 8, 1)), inner_steps=1)),
    "other_inner_lr": lambda r: sine_learn(r, MAML(mlp(sizes=(1, 8, 1)), inner_lr=0.05 * (1 + r))),
    "other_dropout": lambda r: sine_learn(r, MAML(nn.Sequential(nn.Linear(1, 8), nn.Dropout(0.1 + 0.4 * r),
                                                                nn.Linear(8, 1)).double())),
    "eval_mode_on_rank_1": lambda r: sine_learn(r, MAML(mlp(sizes=(1, 8, 1))).train(r == 0)),
    "other_loss_fn": lambda r: sine_learn(r, loss_fn=nn.functional.mse_loss if r == 0 else nn.functional.l1_loss),
    "fresh_tasks_other_seed": lambda r: sine_learn(r, tasks=lambda e: sine_tasks(TASKS, rows=5, seed=e + 10 * r)),
    "fresh_tasks_other_count": lambda r: sine_learn(r, tasks=lambda e: sine_tasks(TASKS - e * r, rows=5, seed=e)),
}


def loss_fails_on_rank_1(r, then):
    """A loss that does ``then`` on rank 1 in its second epoch (after a few meta-steps together)."""
    calls = []

    def loss(pred, y):
        calls.append(1)
        if r == 1 and len(calls) > 6:
            then()
        return ((pred - y) ** 2).mean()
    return loss


def raise_it():
    raise ValueError("the loss fails on rank 1")


def catch_and_live_on(r):
    try:
        sine_learn(r, loss_fn=loss_fails_on_rank_1(r, raise_it))
    except ValueError:
        time.sleep(120)  # rank 1 goes on with something else: the others must not wait for it


def two_threads(r):
    learners = [MAML(mlp(seed=s, sizes=(1, 8, 1))) for s in (0, 1)]
    threads = [threading.Thread(target=sine_learn, args=(r, learner), kwargs={"epochs": 50}) for learner in learners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# a rank that goes away in the middle of meta_learn: the job must end within seconds, non-zero
FAULTS = {
    "loss_raises": lambda r: sine_learn(r, loss_fn=loss_fails_on_rank_1(r, raise_it)),
    "loss_exits": lambda r: sine_learn(r, loss_fn=loss_fails_on_rank_1(r, lambda: sys.exit(0))),
    "loss_killed": lambda r: sine_learn(r, loss_fn=loss_fails_on_rank_1(r, lambda: os.kill(os.getpid(), 9))),
    "caught": catch_and_live_on,
    "rank_1_alone": lambda r: sine_learn(r, distributed=r != 1),  # rank 1 trains by itself, then exits
    "two_threads": two_threads,
}


if __name__ == "__main__":
    main(*sys.argv[1:])
