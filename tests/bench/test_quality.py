"""bench/quality.py reads what the command line prints (so a change of its output cannot silently empty the
quality report), and summarises runs over seeds with a Student-t interval."""

from __future__ import annotations

import pathlib
import sys

import pytest

from neurenix.meta.cli import main

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "bench"))

import quality


def test_reads_the_sine_command_output(capsys):
    assert main(["train", "sine", "--iterations", "2", "--test-tasks", "4", "--validation-tasks", "2", "--quiet"]) == 0
    r = quality.read("sine", capsys.readouterr().out)
    assert r["iterations"] == 2 and r["seconds"] >= 0
    assert sorted(r["scores"], key=int) == ["1", "5", "10"] and all(v > 0 for v in r["scores"].values())


def test_reads_the_digits_command_output(capsys):
    pytest.importorskip("sklearn")
    assert main(["train", "digits", "--iterations", "2", "--test-tasks", "4", "--quiet"]) == 0
    r = quality.read("digits", capsys.readouterr().out)
    assert r["iterations"] == 2 and 0 <= r["scores"]["accuracy"] <= 1 and 0 <= r["scores"]["validation"] <= 1


def test_summary_over_seeds_is_a_student_t_interval():
    s = quality.summary([1.0, 2.0, 3.0])
    assert s["mean"] == 2.0 and s["ci95"] == pytest.approx(4.303 * 1.0 / 3 ** 0.5)
    runs = [{"experiment": "user", "learner": "maml", "seed": seed, "scores": {"1": v}, "seconds": 2.0,
             "iterations": 1000, "peak_rss_mb": 50.0 + seed} for seed, v in enumerate([0.5, 0.7, 0.6])]
    table = quality.group(runs)
    assert table["user"]["maml"]["scores"]["1"]["values"] == [0.5, 0.7, 0.6]
    assert table["user"]["maml"]["ms_per_iteration"]["mean"] == 2.0 and table["user"]["maml"]["peak_rss_mb"] == 52.0
