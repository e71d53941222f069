"""``neurenix evaluate CHECKPOINT``: the learner rebuilt from the checkpoint's settings scores what training
reported on the same tasks; other tasks, steps and bad files on request."""

import pytest

from .test_cli import FAST, run


def _scores(out: str) -> list[str]:
    """The score lines' numbers ("mean ± ci (metric, ...)"), in order."""
    return [line.split(":", 1)[1].strip() for line in out.splitlines() if "95% CI over" in line]


@pytest.mark.parametrize("train", [["sine", "--validation-tasks", "2"], ["digits", "--algo", "protonet"],
                                   ["digits", "--algo", "maml", "--inner-steps", "1"]], ids=str)
def test_scores_what_training_reported(capsys, tmp_path, train):
    path = str(tmp_path / "run.safetensors")
    code, trained, err = run(capsys, "train", *train, *FAST, "--save", path)
    assert code == 0, err
    code, out, err = run(capsys, "evaluate", path, "--tasks", "4")
    assert code == 0, err
    assert _scores(out) == _scores(trained)[-len(_scores(out)):] and _scores(out)
    assert "(iteration 3, training seed 0): 4 new tasks drawn with seed 1000" in out


def test_other_tasks_and_steps_on_request(capsys, tmp_path):
    path = str(tmp_path / "run.safetensors")
    assert run(capsys, "train", "sine", *FAST, "--validation-tasks", "2", "--save", path)[0] == 0
    code, out, _ = run(capsys, "evaluate", path, "--tasks", "3", "--steps", "0", "2", "--seed", "7")
    assert code == 0 and "3 new tasks drawn with seed 7" in out
    assert "after 0 steps:" in out and "after 2 steps:" in out and len(_scores(out)) == 2


def test_files_that_are_no_training_checkpoint_are_one_line_errors(capsys, tmp_path):
    from neurenix.meta.checkpoint import save_checkpoint
    from neurenix.nn import Linear
    plain = str(tmp_path / "plain.safetensors")
    save_checkpoint(plain, Linear(2, 2))
    code, _, err = run(capsys, "evaluate", plain)
    assert code == 1 and "was not written by neurenix train --save" in err and len(err.splitlines()) == 1
    code, _, err = run(capsys, "evaluate", str(tmp_path / "missing.safetensors"))
    assert code == 1 and "missing.safetensors" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("algo", ["protonet", "relation", "r2d2"])
def test_int8_scores_the_quantized_learner_beside_the_float_one(capsys, tmp_path, algo):
    """--int8: a second score, of the learner with every Conv2d and Linear in int8 (calibrated on training tasks),
    on the same tasks; the float score is the one without --int8."""
    path = str(tmp_path / "run.safetensors")
    assert run(capsys, "train", "digits", "--algo", algo, *FAST, "--save", path)[0] == 0
    code, plain, err = run(capsys, "evaluate", path, "--tasks", "6")
    assert code == 0, err
    code, out, err = run(capsys, "evaluate", path, "--tasks", "6", "--int8")
    assert code == 0, err
    scores = _scores(out)
    assert len(scores) == 2 and scores[0] == _scores(plain)[0] and "int8 (quantized):" in out
    f, q = (float(s.split("%")[0]) for s in scores)
    assert abs(f - q) < 10  # (6 tasks: a loose bound; bench/int8.py measures it over 600 tasks and 3 seeds)


def test_int8_refuses_learners_that_adapt_by_gradient_steps(capsys, tmp_path):
    path = str(tmp_path / "run.safetensors")
    assert run(capsys, "train", "digits", "--algo", "maml", "--inner-steps", "1", *FAST, "--save", path)[0] == 0
    code, out, err = run(capsys, "evaluate", path, "--int8")
    assert code == 2 and not out and "argument --int8: int8 layers have no gradient" in err
