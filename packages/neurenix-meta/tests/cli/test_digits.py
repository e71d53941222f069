"""``neurenix train digits``: held-out classes, each algorithm, accuracy with a 95% interval, --plot."""

import re

import numpy as np
import pytest

from neurenix.meta.cli import digits, main, parser

FAST = ["--iterations", "3", "--test-tasks", "5", "--quiet"]


def report(capsys, *argv):
    assert main(["train", "digits", *argv]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("algo", ["protonet", "maml", "relation", "imaml", "r2d2"])
def test_each_algorithm_reports_accuracy_on_held_out_classes(capsys, algo):
    out = report(capsys, "--algo", algo, *FAST)
    train = set(re.search(r"training classes \[([\d, ]+)\] and their other turns", out).group(1).split(", "))
    test = set(re.search(r"held-out classes \[([\d, ]+)\]", out).group(1).split(", "))
    assert len(train) == len(test) == 5 and not train & test
    score = re.search(r"after meta-training: +([\d.]+)% ± ([\d.]+)% \(accuracy, 95% CI over 5 tasks\)", out)
    accuracy, ci = map(float, score.groups())
    assert 0 <= accuracy <= 100 and ci >= 0


def test_ways_and_shots_and_their_limits(capsys):
    out = report(capsys, "--ways", "3", "--shots", "1", "--queries", "2", "--test-classes", "4", "--no-rotate", *FAST)
    assert "3-way 1-shot test" in out and "other turns" not in out
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


def args_of(*argv):
    return parser().parse_args(["train", "digits", *argv])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("rotate", ["--rotate", "--no-rotate"])
def test_validation_classes_are_disjoint_from_training_and_test_classes(seed, rotate):
    d = digits.data(args_of("--seed", str(seed), rotate))
    train, validation, test = (set(np.unique(d[k][1]).tolist()) for k in ("train", "validation", "test"))
    assert len(validation) == 5 and not train & validation and not validation & test and not train & test
    assert {c % 10 for c in validation} <= set(d["train_digits"])  # turned training digits (label digit + 10 * turns)
    assert all(c >= 10 for c in validation) and test == set(d["test_classes"]) and len(test) == 5
    turnable = {digit for digit, _ in digits.rotations(d["train_digits"])}  # a 9 beside a 6 has no turns of its own
    assert len({c % 10 for c in validation}) == min(5, len(turnable))  # one turn of each digit before a second
    assert (rotate == "--rotate") == (len(train) > 5)
    # no class is another turned: a 6 turned by 180 degrees is a 9, and the 9 turned by 90 the 6 turned by 270
    shapes = [(c % 10, c // 10) if c % 10 != 9 else (6, (c // 10 + 2) % 4) for c in train | validation | test
              if c % 10 in (6, 9)]
    assert len(shapes) == len(set(shapes))


def test_validation_images_are_the_digits_turned():
    d = digits.data(args_of("--seed", "0"))
    x, y = d["validation"]
    digit, quarters = d["validation_classes"][0]
    upright = d["train"][0][d["train"][1] == digit]
    np.testing.assert_array_equal(x[y == digit + 10 * quarters], np.rot90(upright, quarters, axes=(-2, -1)))


def test_rotations_leave_out_turns_that_are_other_classes():
    assert digits.rotations([6, 9]) == [(6, 1), (6, 3)]
    assert digits.rotations([6, 2]) == [(2, 1), (2, 2), (2, 3), (6, 1), (6, 3)]
    assert digits.rotations([9]) == [(9, 1), (9, 3)]


def test_validation_reports_the_best_score_and_tests_its_weights(capsys):
    out = report(capsys, "--iterations", "6", "--validate-every", "2", "--validation-tasks", "3", "--test-tasks", "3",
                 "--quiet")
    m = re.search(r"validation on 3 tasks of classes (.*) \(turned training digits, not trained on\): best ([\d.]+)% "
                  r"after iteration (\d+), last ([\d.]+)%", out)
    assert m, out
    assert len(re.findall(r"\d \((?:90|180|270) deg\)", m.group(1))) == 5
    best, at, last = float(m.group(2)), int(m.group(3)), float(m.group(4))
    assert at in (2, 4, 6) and best >= last
    assert f"weights of iteration {at}:" in out  # keep_best: the test scores the best validation's weights
    out = report(capsys, "--iterations", "6", "--validate-every", "2", "--validation-tasks", "3", "--test-tasks", "3",
                 "--quiet", "--no-keep-best")
    assert "weights of iteration 6:" in out


@pytest.mark.parametrize("keep", ["--keep-best", "--no-keep-best"])
def test_the_test_scores_the_kept_weights(monkeypatch, keep):
    """With --keep-best the learner ends with the weights of its best validation score, else with its last."""
    from neurenix.meta import base

    saved, built = {}, []
    after_epoch, learner = base.Validation.after_epoch, digits.learner

    def spy(self, done, epochs, history):
        stop = after_epoch(self, done, epochs, history)
        if history.get("validation_epoch", [None])[-1] == done:
            saved[done] = {k: v.numpy().copy() for k, v in self.learner.named_parameters()}
        return stop

    monkeypatch.setattr(base.Validation, "after_epoch", spy)
    monkeypatch.setattr(digits, "learner", lambda args: built.append(learner(args)) or built[-1])
    r = digits.experiment(args_of("--iterations", "6", "--validate-every", "2", "--validation-tasks", "3",
                                  "--test-tasks", "3", "--quiet", "--algo", "relation", keep))
    scores = r["history"]["validation"]
    assert r["best"] == (max(scores), r["history"]["validation_epoch"][scores.index(max(scores))])
    assert r["kept"] == (r["best"][1] if keep == "--keep-best" else 6)
    final = {k: v.numpy() for k, v in built[0].named_parameters()}  # (the test's evaluate moves BatchNorm's
    # running statistics, which the learners do not use: each task is normalised by its own batch)
    for k, v in saved[r["kept"]].items():
        np.testing.assert_array_equal(final[k], v)


def test_the_plot_draws_validation_beside_the_training_accuracy(capsys, tmp_path, monkeypatch):
    drawn = []
    figure = digits.figure
    monkeypatch.setattr(digits, "figure", lambda n: drawn.append(figure(n)) or drawn[-1])
    out = report(capsys, "--iterations", "6", "--validate-every", "3", "--validation-tasks", "3", "--test-tasks", "3",
                 "--quiet", "--plot", str(tmp_path / "curve.png"))
    assert (tmp_path / "curve.png").read_bytes().startswith(b"\x89PNG")
    fig, _ = drawn[0]
    lines = {line.get_label(): line for ax in fig.axes for line in ax.get_lines()}
    validation, accuracy = lines["validation accuracy"], lines["training query accuracy"]
    assert validation.axes is accuracy.axes  # one scale for both accuracies
    assert list(validation.get_xdata()) == [3, 6]
    best = float(re.search(r"best ([\d.]+)%", out).group(1))
    assert any(k.startswith("best validation") for k in lines)
    assert max(validation.get_ydata()) == pytest.approx(best / 100, abs=1e-4)


@pytest.mark.parametrize("argv, message", [
    (["--validation-classes", "4"], "argument --validation-classes: 5-way validation tasks need 5 classes, got 4"),
    (["--validation-classes", "1"], "argument --validation-classes: must be >= 2, got 1"),
    (["--validation-classes", "16"], "argument --validation-classes: 16 asks for more than the"),
    (["--validation-tasks", "1"], "argument --validation-tasks: must be >= 2, got 1"),
    (["--validate-every", "-1"], "argument --validate-every: must be >= 0, got -1"),
    (["--inner-lr", "0.1"], "argument --inner-lr: only MAML and iMAML adapt with gradient steps, not --algo protonet"),
    (["--algo", "relation", "--inner-steps", "2"], "argument --inner-steps: only MAML and iMAML adapt"),
    (["--no-first-order"], "argument --first-order: only MAML and iMAML adapt with gradient steps"),
    (["--algo", "maml", "--inner-steps", "0"], "argument --inner-steps: must be >= 1, got 0"),
    (["--algo", "imaml", "--first-order"], "argument --first-order: is MAML's, not --algo imaml's"),
    (["--algo", "maml", "--lam", "1"], "argument --lam: is iMAML's, not --algo maml's"),
    (["--algo", "imaml", "--lam", "0"], "argument --lam: must be > 0, got 0"),
    (["--algo", "imaml", "--inner-optimizer", "adam"], "argument --inner-optimizer: only MAML takes another"),
    (["--meta-lr", "-1"], "argument --meta-lr: must be a finite number >= 0, got -1"),
])
def test_bad_flags_name_the_flag_and_the_problem(capsys, argv, message):
    try:
        code = main(["train", "digits", *FAST, *argv])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_defaults_follow_the_algorithm_and_flags_override_them():
    run = digits.settings(args_of("--algo", "maml"))
    assert run["--meta-lr"] == digits.DEFAULTS["maml"]["meta_lr"]
    assert run["--inner-steps"] == digits.DEFAULTS["maml"]["inner_steps"]
    assert digits.settings(args_of("--algo", "maml", "--inner-steps", "2", "--meta-lr", "0.5"))["--inner-steps"] == 2
    learner = digits.learner(args_of("--algo", "maml", "--inner-steps", "2", "--inner-lr", "0.05", "--meta-lr", "0.5"))
    assert (learner.inner_steps, learner.inner_lr, learner.meta_lr) == (2, 0.05, 0.5)
    assert learner.first_order == digits.DEFAULTS["maml"]["first_order"]
    assert not digits.learner(args_of("--algo", "maml", "--no-first-order")).first_order
    assert digits.learner(args_of("--algo", "relation")).meta_lr == digits.DEFAULTS["relation"]["meta_lr"]
    imaml = digits.learner(args_of("--algo", "imaml", "--lam", "0.5"))
    assert (imaml.lam, imaml.cg_steps, imaml.inner_lr) == (0.5, 5, digits.DEFAULTS["imaml"]["inner_lr"])
    adam = digits.learner(args_of("--algo", "maml", "--inner-optimizer", "adam"))
    assert adam.inner_optimizer.name == "adam"
    assert digits.settings(args_of("--algo", "maml", "--inner-optimizer", "adam"))["--inner-optimizer"] == "adam"


def test_maml_head_starts_at_zero_and_the_relation_module_compares():
    head = digits.learner(args_of("--algo", "maml")).model[-1]
    assert not head.weight.numpy().any() and not head.bias.numpy().any()
    import neurenix as nx

    pairs = nx.tensor(np.arange(2 * 6 * 4, dtype=np.float32).reshape(2, 6, 2, 2))
    np.testing.assert_array_equal(digits.PairDifference()(pairs).numpy(), np.full((2, 3, 2, 2), 12.0))


def test_maml_meta_trains_the_blocks_and_leaves_the_output_layer_at_zero(monkeypatch, tmp_path):
    """The meta-optimizer leaves MAML's output layer at zero (the inner steps alone learn it, on each task),
    trains the rest, and a run resumed from a checkpoint ends where an uninterrupted one does."""
    built = []
    learner = digits.learner
    monkeypatch.setattr(digits, "learner", lambda args: built.append(learner(args)) or built[-1])
    common = ("--algo", "maml", "--inner-steps", "2", "--validate-every", "2", "--validation-tasks", "2",
              "--test-tasks", "2", "--quiet", "--no-keep-best")
    start = {k: v.numpy().copy() for k, v in learner(args_of(*common)).named_parameters()}
    digits.experiment(args_of(*common, "--iterations", "4"))
    path = str(tmp_path / "maml.safetensors")
    digits.experiment(args_of(*common, "--iterations", "2", "--save", path))
    digits.experiment(args_of(*common, "--iterations", "4", "--resume", path))
    once, resumed = ({k: v.numpy() for k, v in b.named_parameters()} for b in (built[0], built[2]))
    head = [k for k in once if k.startswith(f"model.{len(built[0].model) - 1}.")]
    assert len(head) == 2 and not any(once[k].any() for k in head)
    assert any(not np.array_equal(once[k], start[k]) for k in once if k not in head)
    for k in once:
        np.testing.assert_array_equal(resumed[k], once[k])


@pytest.mark.parametrize("algo", ["protonet", "r2d2", "maml", "imaml", "relation"])
def test_conv4_backbone(capsys, algo):
    """--backbone conv4: neurenix.models.Conv4's layers (64 channels, three blocks to 64x1x1) under each learner, a
    run that trains and tests; the setting is saved only when chosen (earlier checkpoints stay resumable)."""
    from neurenix import nn

    args = args_of("--algo", algo, "--backbone", "conv4")
    net = digits.learner(args)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs[:3]] == [64, 64, 64]
    assert digits.settings(args)["--backbone"] == "conv4"
    assert "--backbone" not in digits.settings(args_of("--algo", algo))
    assert "after meta-training" in report(capsys, "--algo", algo, "--backbone", "conv4", "--validation-tasks", "2",
                                           *FAST)
