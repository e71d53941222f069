"""``neurenix train sine``: every algorithm trains and reports; --save/--resume; --plot."""

import re

import pytest

from neurenix.meta.cli import main

FAST = ["--test-tasks", "4", "--quiet"]


def report(capsys, *argv):
    assert main(["train", "sine", *argv]) == 0
    return capsys.readouterr()


@pytest.mark.parametrize("algo", ["maml", "fomaml", "reptile"])
def test_each_algorithm_reports_mse_after_1_5_10_steps(capsys, algo):
    out, err = report(capsys, "--algo", algo, "--iterations", "3", *FAST)
    assert err == ""
    assert "3 iterations in" in out and "seed 0" in out
    mse = [float(v) for v in re.findall(r"after \d+ steps?: +([\d.]+) ± ([\d.]+)", out) for v in v]
    assert len(mse) == 6 and all(v >= 0 for v in mse)


def test_progress_bar_shows_loss_and_speed(capsys):
    _, err = report(capsys, "--iterations", "3", "--test-tasks", "2")
    assert "3/3" in err and "loss=" in err and "/s" in err


def test_resume_continues_the_same_run(capsys, tmp_path):
    ckpt = str(tmp_path / "run.safetensors")
    whole = report(capsys, "--iterations", "6", *FAST).out
    report(capsys, "--iterations", "4", "--save", ckpt, "--save-every", "2", *FAST)
    resumed = report(capsys, "--iterations", "6", "--resume", ckpt, *FAST).out
    assert "2 iterations in" in resumed and "resumed after iteration 4" in resumed
    scores = re.compile(r"after \d+ steps?: .*")
    assert scores.findall(resumed) == scores.findall(whole)


def test_plot_writes_a_png(capsys, tmp_path):
    out, _ = report(capsys, "--iterations", "3", "--plot", str(tmp_path / "sine.png"), *FAST)
    data = (tmp_path / "sine.png").read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000 and f"plot: {tmp_path / 'sine.png'}" in out
