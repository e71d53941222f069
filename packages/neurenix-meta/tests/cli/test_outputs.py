"""--log (JSON lines or CSV, a row per iteration as it comes, appended to when resuming) and --out (a run's
outputs in one folder)."""

import csv
import json

from .test_cli import FAST, run

SINE = ["train", "sine", *FAST, "--validation-tasks", "2"]


def test_log_as_json_lines(capsys, tmp_path):
    path = tmp_path / "run.jsonl"
    assert run(capsys, *SINE, "--log", str(path))[0] == 0
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2, 3]
    assert all(r["loss"] > 0 and r["seconds"] >= 0 and "accuracy" not in r for r in rows)
    assert "validation" not in rows[0] and rows[-1]["validation"] > 0  # validated after the last only


def test_log_as_csv_with_accuracy(capsys, tmp_path):
    path = tmp_path / "run.csv"
    assert run(capsys, "train", "digits", *FAST, "--log", str(path))[0] == 0
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["iteration", "loss", "accuracy", "validation", "seconds"]
    assert [r["iteration"] for r in rows] == ["1", "2", "3"] and 0 <= float(rows[0]["accuracy"]) <= 1


def test_a_resumed_run_appends_to_its_log(capsys, tmp_path):
    log, ck = tmp_path / "run.jsonl", tmp_path / "run.safetensors"
    constant = [*SINE, "--lr-schedule", "constant"]  # (a cosine schedule is fixed by its length)
    assert run(capsys, *constant, "--log", str(log), "--save", str(ck))[0] == 0
    more = [a if a != "3" else "5" for a in constant]  # --iterations 5
    assert run(capsys, *more, "--log", str(log), "--resume", str(ck))[0] == 0
    assert [json.loads(line)["iteration"] for line in log.read_text().splitlines()] == [1, 2, 3, 4, 5]


def test_log_suffix_names_its_format(capsys, tmp_path):
    code, _, err = run(capsys, *SINE, "--log", str(tmp_path / "run.txt"))
    assert code == 2 and "argument --log" in err and ".jsonl or .csv" in err


def test_out_gathers_the_outputs(capsys, tmp_path):
    out = tmp_path / "a" / "b"
    code, stdout, _ = run(capsys, *SINE, "--out", str(out))
    assert code == 0
    assert (out / "checkpoint.safetensors").is_file() and (out / "log.jsonl").is_file()
    assert ((out / "plot.png").is_file()) == ("plot:" in stdout)
    mine = tmp_path / "mine.jsonl"
    assert run(capsys, *SINE, "--out", str(out), "--log", str(mine))[0] == 0 and mine.is_file()


def test_tensorboard_events_beside_the_log(capsys, tmp_path):
    import pytest
    pytest.importorskip("tensorboard", reason="the tensorboard package is optional (the meta tox env installs it)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    assert run(capsys, *SINE, "--log", str(tmp_path / "run.jsonl"))[0] == 0
    events = EventAccumulator(str(tmp_path / "run.tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss")] == [1, 2, 3]
    assert [e.step for e in events.Scalars("validation")] == [3]
