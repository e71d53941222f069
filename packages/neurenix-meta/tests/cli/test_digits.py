"""``neurenix train digits``: held-out classes, each algorithm, accuracy with a 95% interval, --plot."""

import re

import pytest

from neurenix.meta.cli import main

FAST = ["--iterations", "3", "--test-tasks", "5", "--quiet"]


def report(capsys, *argv):
    assert main(["train", "digits", *argv]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("algo", ["protonet", "maml", "relation"])
def test_each_algorithm_reports_accuracy_on_held_out_classes(capsys, algo):
    out = report(capsys, "--algo", algo, *FAST)
    train = set(re.search(r"training classes \[([\d, ]+)\] and their rotations", out).group(1).split(", "))
    test = set(re.search(r"held-out classes \[([\d, ]+)\]", out).group(1).split(", "))
    assert len(train) == len(test) == 5 and not train & test
    score = re.search(r"after meta-training: +([\d.]+)% ± ([\d.]+)% \(accuracy, 95% CI over 5 tasks\)", out)
    accuracy, ci = map(float, score.groups())
    assert 0 <= accuracy <= 100 and ci >= 0


def test_ways_and_shots_and_their_limits(capsys):
    out = report(capsys, "--ways", "3", "--shots", "1", "--queries", "2", "--test-classes", "4", "--no-rotate", *FAST)
    assert "3-way 1-shot test" in out and "rotations" not in out
    assert main(["train", "digits", "--ways", "6", *FAST]) == 2
    assert "argument --ways: 6-way tasks need 6 classes in both splits" in capsys.readouterr().err


def test_accuracy_before_and_after_meta_training_is_far_above_chance(capsys):
    """Chance is 20%: far above it, the data, the splits and the test are wired right."""
    out = report(capsys, "--iterations", "10", "--test-tasks", "20", "--quiet")
    before, after = (float(v) for v in re.findall(r"meta-training: +([\d.]+)% ±", out))
    assert before > 50 and after > 40


def test_plot_writes_a_png(capsys, tmp_path):
    report(capsys, *FAST, "--plot", str(tmp_path / "curve.png"))
    assert (tmp_path / "curve.png").read_bytes().startswith(b"\x89PNG")
