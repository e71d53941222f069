"""meta_learn(distributed=True): real MPI jobs (mpi_job.py) against one process over the same meta-batches.

Same tasks, same initial weights, float64: every rank ends with the parameters and history of a single
process to 1e-6, with uneven shares (2 ranks) and an idle rank in the last meta-batch (3 ranks).
"""

import os
import pathlib
import re

import numpy as np
import pytest

import mpi_job
from neurenix.testing import mpi

JOB = pathlib.Path(mpi_job.__file__)


def needs_mpi():
    reason = mpi.unavailable()
    if reason and os.environ.get("NEURENIX_REQUIRE_MPI"):
        pytest.fail(f"NEURENIX_REQUIRE_MPI is set but {reason}")
    if reason:
        pytest.skip(reason)


def job(mode: str, ranks: int, out: pathlib.Path):
    return mpi.run(JOB, ranks, mode, str(out), timeout=120)


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
    ("other_model", r"rank 1's model differs from rank 0's: parameter 'model.0.weight' is \(8, 1\) float64 on "
                    r"rank 0 but \(9, 1\) float64 on rank 1"),
    ("other_tasks", r"rank 1's tasks \(7\) differ from rank 0's \(7\)"),
    ("other_shuffle", r"the ranks disagree on meta-batch 3 \(tasks \[\d, \d, \d\] here\)"),
    ("diverged", r"the replicas diverged: after 0 meta-steps 'model.2.bias' on rank 1 differs from rank 0's"),
])
def test_bad_input_ends_the_job_with_a_clear_error(tmp_path, mode, message):
    needs_mpi()
    r = job(mode, 2, tmp_path)
    assert r.returncode != 0
    assert re.search(message, r.stderr), r.stderr[-3000:]
