"""``neurenix train sine``: every algorithm trains and reports; --save/--resume; --plot."""

import random
import re
import signal
import subprocess
import time

import numpy as np
import pytest

from meta_helpers import BACKENDS, CLI, python_on
from neurenix.meta.checkpoint import read_checkpoint
from neurenix.meta.cli import main

FAST = ["--test-tasks", "4", "--quiet"]


def report(capsys, *argv):
    assert main(["train", "sine", *argv]) == 0
    return capsys.readouterr()


@pytest.mark.parametrize("algo", ["maml", "fomaml", "reptile", "imaml", "maml --inner-optimizer adam"])
def test_each_algorithm_reports_mse_after_1_5_10_steps(capsys, algo):
    out, err = report(capsys, "--algo", *algo.split(), "--iterations", "3", *FAST)
    assert err == ""
    assert "3 iterations in" in out and "seed 0" in out
    mse = [float(v) for v in re.findall(r"after \d+ steps?: +([\d.]+) ± ([\d.]+)", out) for v in v]
    assert len(mse) == 6 and all(v >= 0 for v in mse)


def test_progress_bar_shows_loss_and_speed(capsys):
    _, err = report(capsys, "--iterations", "3", "--test-tasks", "2")
    assert "3/3" in err and "loss=" in err and "/s" in err


def test_resume_continues_the_same_run(capsys, tmp_path):
    # a constant rate: a run can be continued past the iterations it asked for
    ckpt, constant = str(tmp_path / "run.safetensors"), ["--lr-schedule", "constant"]
    whole = report(capsys, "--iterations", "6", *constant, *FAST).out
    report(capsys, "--iterations", "4", "--save", ckpt, "--save-every", "2", *constant, *FAST)
    resumed = report(capsys, "--iterations", "6", "--resume", ckpt, *constant, *FAST).out
    assert "2 iterations in" in resumed and "resumed after iteration 4" in resumed
    scores = re.compile(r"after \d+ steps?: .*")
    assert scores.findall(resumed) == scores.findall(whole)


def test_a_cosine_schedule_resumes_only_with_its_own_length(capsys, tmp_path):
    ckpt = str(tmp_path / "run.safetensors")
    report(capsys, "--iterations", "4", "--save", ckpt, *FAST)  # the default schedule: cosine over 4 iterations
    assert main(["train", "sine", "--iterations", "6", "--resume", ckpt, *FAST]) == 1
    assert "other settings: --iterations 4 (now 6)" in capsys.readouterr().err


def test_the_cosine_schedule_anneals_the_meta_rate_to_zero(capsys, tmp_path):
    ckpt = tmp_path / "run.safetensors"
    report(capsys, "--iterations", "4", "--meta-lr", "0.02", "--save", str(ckpt), *FAST)
    groups = read_checkpoint(str(ckpt)).doc["optimizer"]["param_groups"]
    assert groups[0]["initial_lr"] == 0.02 and groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_plot_writes_a_png(capsys, tmp_path):
    out, _ = report(capsys, "--iterations", "3", "--plot", str(tmp_path / "sine.png"), *FAST)
    data = (tmp_path / "sine.png").read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000 and f"plot: {tmp_path / 'sine.png'}" in out


def _wait_for_save(path, after_ns, proc, timeout=60.0):
    """Wait until ``path`` was written after ``after_ns`` (a save of this run); False if the run ended first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.stat().st_mtime_ns > after_ns:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError(f"no checkpoint written to {path} within {timeout} s")


@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_at_random_moments_and_resumed_it_ends_bit_exact(tmp_path, backend):
    """SIGKILL at a random moment after a save (mid-iteration or mid-save), three times, then resume to the
    end: the same weights, optimizer state, history and test scores as one uninterrupted run."""
    on, argv = python_on(backend), ["train", "sine", "--iterations", "100", "--save-every", "5", "--test-tasks", "3",
                                    "--quiet"]
    straight = subprocess.run(on(CLI, *argv, "--save", tmp_path / "straight.st"), capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr
    path, rng, kills = tmp_path / "killed.st", random.Random(f"kill {backend}"), 0
    for _ in range(3):
        started = time.time_ns()
        proc = subprocess.Popen(on(CLI, *argv, "--save", path, *(["--resume", path] if path.exists() else [])),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if _wait_for_save(path, started, proc):
            time.sleep(rng.uniform(0.0, 0.1))
            proc.send_signal(signal.SIGKILL)
            kills += proc.wait() == -signal.SIGKILL
        proc.wait()
    assert kills, "every run ended before it could be killed: give it more iterations"
    done = read_checkpoint(path).metadata["epoch"]
    resumed = subprocess.run(on(CLI, *argv, "--save", path, "--resume", path), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed after iteration {done}" in resumed.stdout
    scores = re.compile(r"after \d+ steps?: .*")
    assert scores.findall(resumed.stdout) == scores.findall(straight.stdout)
    a, b = read_checkpoint(tmp_path / "straight.st"), read_checkpoint(path)
    assert a.tensors.keys() == b.tensors.keys() and all(np.array_equal(a.tensors[k], b.tensors[k]) for k in a.tensors)
    assert a.metadata["history"] == b.metadata["history"] and a.metadata["rng"] == b.metadata["rng"]


def test_validation_reports_the_best_iteration(capsys):
    out = report(capsys, "--iterations", "4", "--validate-every", "2", "--validation-tasks", "3", *FAST).out
    m = re.search(r"validation on 3 other new tasks .*best MSE ([\d.]+) after iteration (\d+), last ([\d.]+)", out)
    assert m and int(m.group(2)) in (2, 4) and float(m.group(1)) <= float(m.group(3))
