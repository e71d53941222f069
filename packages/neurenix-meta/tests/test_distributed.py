"""meta_learn(distributed=True): real MPI jobs (mpi_job.py) against one process over the same meta-batches.

Same tasks, same initial weights, float64: every rank ends with the parameters and history of a single
process to 1e-6, with uneven shares (2 ranks) and an idle rank in the last meta-batch (3 ranks).
"""

import contextlib
import os
import pathlib
import re
import time

import numpy as np
import pytest

import mpi_job
from meta_helpers import mlp, sine_tasks
from neurenix import distributed as dist
from neurenix import nn
from neurenix.meta import MAML
from neurenix.meta.distributed import _differences, _signature
from neurenix.nn.functional import mse_loss
from neurenix.testing import mpi

JOB = pathlib.Path(mpi_job.__file__)


def needs_mpi():
    reason = mpi.unavailable()
    if reason and os.environ.get("NEURENIX_REQUIRE_MPI"):
        pytest.fail(f"NEURENIX_REQUIRE_MPI is set but {reason}")
    if reason:
        pytest.skip(reason)


BOUND_S = 20  # a failing job must end within this, start-up included (on a loaded 2-core machine)


def job(mode: str, ranks: int, out: pathlib.Path):
    return mpi.run(JOB, ranks, mode, str(out), timeout=120)


def timed_job(mode: str, ranks: int, out: pathlib.Path):
    start = time.perf_counter()
    r = mpi.run(JOB, ranks, mode, str(out), timeout=90)
    return r, time.perf_counter() - start


def single_process(epochs=mpi_job.EPOCHS) -> dict:
    return mpi_job.train(False, epochs)


def assert_matches(out: pathlib.Path, ranks: int, reference: dict) -> None:
    for r in range(ranks):
        got = np.load(out / f"rank{r}.npz")
        for name, ref in reference.items():
            np.testing.assert_allclose(got[f"{name}.params"], ref["params"], rtol=0, atol=1e-6,
                                       err_msg=f"{name}: rank {r}'s parameters")
            for key, values in ref["history"].items():
                np.testing.assert_allclose(got[f"{name}.{key}"], values, rtol=0, atol=1e-6,
                                           err_msg=f"{name}: rank {r}'s history[{key!r}]")


def test_distributed_in_one_process_is_the_plain_loop():
    """Without a launcher the job has one rank: distributed=True gives exactly the same training."""
    plain, parallel = mpi_job.train(False, 1), mpi_job.train(True, 1)
    for name in plain:
        np.testing.assert_allclose(parallel[name]["params"], plain[name]["params"], rtol=0, atol=1e-12, err_msg=name)


def test_differences_name_each_setting_and_each_ranks_value():
    every = [{"epochs": 2, "tasks_per_batch": 3}, {"epochs": 3, "tasks_per_batch": 3},
             {"epochs": 2, "tasks_per_batch": 3, "extra": 1}]
    assert _differences(every) == ["epochs: 2 on ranks 0, 2; 3 on rank 1", "extra: (absent) on ranks 0-1; 1 on rank 2"]
    assert _differences(every[:1] * 4) == []


def test_the_signature_covers_the_learner_its_modules_and_the_arguments():
    learner = MAML(nn.Sequential(nn.Linear(1, 4), nn.Dropout(0.25), nn.Linear(4, 1)), inner_lr=0.125)
    sig = _signature(learner, learner.default_optimizer(), None, 3, {"epochs": 5, "loss_fn": mse_loss})
    assert sig["learner"] == "neurenix.meta.maml.MAML"
    assert sig["learner setting 'inner_lr'"] == 0.125 and sig["module setting 'model.1.p'"] == 0.25
    assert sig["module setting 'model.0.training'"] is True
    assert sig["parameter 'model.0.weight'"] == "(4, 1) float32"
    assert (sig["epochs"], sig["loss_fn"], sig["tasks_per_batch"]) == (5, "neurenix.nn.functional.mse_loss", 3)
    assert sig["tasks (how many)"] == "a function of the epoch"


def test_meta_learn_without_distributed_is_not_a_section(monkeypatch):
    """The section (and with it neurenix.distributed) is entered only for distributed=True."""
    entered = []
    monkeypatch.setattr(dist, "section", lambda what: entered.append(what) or contextlib.nullcontext())
    learner = MAML(mlp(sizes=(1, 4, 1)), inner_steps=1)
    learner.meta_learn(sine_tasks(2, rows=3), epochs=1, tasks_per_batch=2)
    assert entered == []
    learner.meta_learn(sine_tasks(2, rows=3), epochs=1, tasks_per_batch=2, distributed=True)
    assert entered == ["MAML.meta_learn"]


@pytest.mark.parametrize("ranks", [2, 3])
def test_every_learner_trains_as_one_process(tmp_path, ranks):
    needs_mpi()
    r = job("train", ranks, tmp_path)
    assert r.returncode == 0, r.stderr
    reference = single_process()
    assert_matches(tmp_path, ranks, reference)
    before = mpi_job.learners()
    for name, ref in reference.items():  # the test has teeth: training moved every learner
        start = np.concatenate([p.numpy().ravel() for p in before[name][0].parameters()])
        assert np.abs(ref["params"] - start).max() > 1e-3, name


def test_resuming_from_rank_0s_checkpoint(tmp_path):
    """Only rank 0 loads the checkpoint (the others hold other weights): the start-up broadcast resumes all."""
    needs_mpi()
    r = job("checkpoint", 2, tmp_path)
    assert r.returncode == 0, r.stderr
    r = job("resume", 2, tmp_path)
    assert r.returncode == 0, r.stderr
    reference = single_process(epochs=2)
    for ref in reference.values():
        ref["history"] = {k: v[1:] for k, v in ref["history"].items()}  # the resumed run saw the second epoch
    assert_matches(tmp_path, 2, reference)


def test_meta_learn_checkpoints_from_rank_0_and_resumes_on_every_rank(tmp_path):
    """meta_learn(checkpoint=..., distributed=True) writes one file (rank 0's); resume=... continues on every
    rank where one process running both epochs ends."""
    needs_mpi()
    r = job("meta_checkpoint", 2, tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".npz")) == ["maml.safetensors"]
    r = job("meta_resume", 2, tmp_path)
    assert r.returncode == 0, r.stderr
    reference = {"maml": single_process(epochs=2)["maml"]}
    assert_matches(tmp_path, 2, reference)


@pytest.mark.parametrize("mode, message", [
    ("too_many_ranks", r"2 ranks but tasks_per_batch=1"),
    ("other_model", r"the ranks disagree on 5 settings:\n  module setting 'model.0.out_features': 8 on rank 0; 9 on "
                    r"rank 1\n.*\n  parameter 'model.0.weight': \(8, 1\) float64 on rank 0; \(9, 1\) float64 on "
                    r"rank 1\n"),
    ("other_tasks", r"the ranks disagree on tasks \(hash of their data\): [0-9a-f]{16} on rank 0; [0-9a-f]{16} on "
                    r"rank 1\n.*generate the tasks with the same seed on every rank"),
    ("other_shuffle", r"at meta-step 4 the ranks disagree on meta-batch \(task indices\): \[\d, \d, \d\] on rank 0; "
                      r"\[\d, \d, \d\] on rank 1"),
    ("diverged", r"the replicas diverged: after 0 meta-steps 'model.2.bias' on rank 1 differs from rank 0's"),
    ("other_tasks_per_batch", r"the ranks disagree on tasks_per_batch: 3 on rank 0; 4 on rank 1\n\(every rank must "
                              r"call meta_learn with the same learner, model, tasks and arguments\)"),
    ("other_learner", r"the ranks disagree on \d+ settings:\n  learner: neurenix.meta.maml.MAML on rank 0; "
                      r"neurenix.meta.reptile.Reptile on rank 1\n"),
    ("other_inner_lr", r"the ranks disagree on learner setting 'inner_lr': 0.05 on rank 0; 0.1 on rank 1"),
    ("other_dropout", r"the ranks disagree on module setting 'model.1.p': 0.1 on rank 0; 0.5 on rank 1"),
    ("eval_mode_on_rank_1", r"the ranks disagree on 5 settings:\n  learner setting 'training': True on rank 0; False "
                            r"on rank 1\n  module setting 'model.training': True on rank 0; False on rank 1"),
    ("other_loss_fn", r"the ranks disagree on loss_fn: neurenix.nn.functional.mse_loss on rank 0; "
                      r"neurenix.nn.functional.l1_loss on rank 1"),
    ("resumed_on_rank_0_only", r"the ranks disagree on epochs already done \(resume=\): 1 on rank 0; 0 on rank 1"),
    ("fresh_tasks_other_seed", r"at meta-step 1 the ranks disagree on tasks of this epoch \(hash of the first and "
                               r"last\): [0-9a-f:]+ on rank 0; [0-9a-f:]+ on rank 1"),
    ("fresh_tasks_other_count", r"at meta-step 4 the ranks disagree on 2 settings:\n  tasks this epoch: 7 on rank 0; 6 "
                                r"on rank 1\n"),
])
def test_bad_input_ends_the_job_with_a_clear_error(tmp_path, mode, message):
    """Settings that must match but differ are named, with each rank's value, before anything hangs."""
    needs_mpi()
    r, elapsed = timed_job(mode, 2, tmp_path)
    assert r.returncode != 0
    assert re.search(message, r.stderr), r.stderr[-3000:]
    assert elapsed < BOUND_S, f"the job took {elapsed:.1f} s to end"


@pytest.mark.parametrize("mode, message", [
    ("other_epochs", r"the ranks disagree on epochs: 2 on ranks 0, 2; 3 on rank 1\n"),
    ("other_task_count", r"the ranks disagree on 2 settings:\n  tasks \(how many\): 7 on ranks 0-1; 6 on rank 2\n"),
])
def test_three_ranks_name_each_ranks_value(tmp_path, mode, message):
    needs_mpi()
    r, elapsed = timed_job(mode, 3, tmp_path)
    assert r.returncode != 0
    assert re.search(message, r.stderr), r.stderr[-3000:]
    assert elapsed < BOUND_S, f"the job took {elapsed:.1f} s to end"


@pytest.mark.parametrize("mode, message", [
    ("loss_raises", r"rank 1 left MAML.meta_learn with ValueError: the loss fails on rank 1 after \d+ collectives, so "
                    r"it will never join the all_reduce \(collective \d+ in MAML.meta_learn\) that rank 0 waits in"),
    ("loss_exits", r"rank 1 left MAML.meta_learn with SystemExit: 0 after \d+ collectives"),
    ("caught", r"rank 1 left MAML.meta_learn with ValueError: the loss fails on rank 1"),
    ("rank_1_alone", r"rank 1 exited \(its script ended, or called sys.exit\) after 0 collectives, so it will never "
                     r"join the all_gather \(collective 1 in MAML.meta_learn\) that rank 0 waits in"),
    ("loss_killed", r"signal 9|Killed"),  # MPICH's launcher ends the job and says so (on stdout)
    ("two_threads", r"collectives must come from one thread at a time|the ranks are in different collectives"),
])
def test_a_rank_that_leaves_meta_learn_ends_the_job_within_seconds(tmp_path, mode, message):
    """Rank 1 raises, exits with status 0, is killed, lives on after catching, trains alone, or runs two
    meta_learn at once: no rank waits for it; mpiexec returns non-zero, with the reason."""
    needs_mpi()
    r, elapsed = timed_job(mode, 2, tmp_path)
    assert r.returncode != 0
    assert re.search(message, r.stdout + r.stderr), r.stderr[-3000:]
    assert elapsed < BOUND_S, f"the job took {elapsed:.1f} s to end"
