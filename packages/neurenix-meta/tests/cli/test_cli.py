"""The ``neurenix`` command line: sub-commands, one-line errors with a non-zero exit, the console script."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from neurenix.meta.cli import main

FAST = ["--iterations", "3", "--test-tasks", "4", "--quiet"]


def run(capsys, *argv):
    """main(argv): (exit status, stdout, stderr); argparse's own exits included."""
    try:
        code = main(list(argv))
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_devices_lists_backends_with_reasons(capsys):
    code, out, _ = run(capsys, "devices")
    assert code == 0 and "installed backends" in out and "numpy" in out
    assert "cpu: " not in out  # the kernel listing is asked for with --kernels


def test_devices_lists_which_backend_serves_each_kernel(capsys):
    code, out, _ = run(capsys, "devices", "--kernels")
    assert code == 0 and "cpu: " in out and "kernels" in out
    served = {name.strip("*,") for line in out.splitlines() for name in line.split()}
    assert {"add", "matmul", "from_numpy"} <= served


@pytest.mark.parametrize("argv, message", [
    (["train", "sine", "--algo", "anil"], "argument --algo: invalid choice: 'anil'"),
    (["train", "digits", "--algo", "reptile"], "argument --algo: invalid choice: 'reptile'"),
    (["train", "sine", "--device", "tpu"], "unknown device type 'tpu'"),
    (["train", "sine", "--device", "cpu:7"], "device cpu:7 does not exist"),
    (["train", "sine", "--iterations", "0"], "--iterations: must be >= 1, got 0"),
    (["train", "mnist"], "invalid choice: 'mnist'"),
    ([], "the following arguments are required"),
])
def test_bad_arguments_are_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err and err.startswith("neurenix: error:")


def test_device_that_cannot_run_says_why(capsys):
    import neurenix as nx

    down = [s for s in nx.list_backends() if not s.available and s.device_type not in
            {t.device_type for t in nx.list_backends() if t.available}]
    if not down:
        pytest.skip("every installed device type can run here")
    code, _, err = run(capsys, "train", "sine", "--device", down[0].device_type)
    assert code == 2 and "cannot run" in err and err.count("\n") == 1


def test_runtime_errors_are_one_line_and_exit_1(capsys, tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"\x05\x00")
    code, _, err = run(capsys, "train", "sine", *FAST, "--resume", str(tmp_path / "bad.safetensors"))
    assert code == 1 and err.count("\n") == 1 and "not a valid safetensors file" in err
    code, _, err = run(capsys, "train", "sine", *FAST, "--resume", str(tmp_path / "missing.safetensors"))
    assert code == 1 and err.count("\n") == 1 and "No such file" in err


def test_an_incompatible_checkpoint_lists_the_differences(capsys, tmp_path):
    path = str(tmp_path / "digits.safetensors")
    assert run(capsys, "train", "digits", *FAST, "--save", path)[0] == 0
    code, out, err = run(capsys, "train", "sine", *FAST, "--resume", path)
    assert code == 1 and err.count("\n") == 1 and out == ""
    assert "was saved by a run with other settings: benchmark digits (now sine), --algo protonet (now maml)" in err


SINE = ["train", "sine", *FAST]
DIGITS = ["train", "digits", *FAST]


@pytest.mark.parametrize("argv, message", [
    ([*SINE, "--inner-lr", "-1"], "argument --inner-lr: must be a finite number >= 0, got -1"),
    ([*SINE, "--inner-lr", "nan"], "argument --inner-lr: must be a finite number >= 0, got nan"),
    ([*SINE, "--inner-lr", "inf"], "argument --inner-lr: must be a finite number >= 0, got inf"),
    ([*SINE, "--inner-lr", "fast"], "argument --inner-lr: must be a number, got 'fast'"),
    ([*SINE, "--meta-lr", "-0.5"], "argument --meta-lr: must be a finite number >= 0, got -0.5"),
    ([*SINE, "--meta-batch", "0"], "argument --meta-batch: must be >= 1, got 0"),
    ([*SINE, "--meta-batch", "2.5"], "argument --meta-batch: must be an integer, got '2.5'"),
    ([*SINE, "--shots", "0"], "argument --shots: must be >= 1, got 0"),
    ([*SINE, "--test-shots", "0"], "argument --test-shots: must be between 1 and 50, got 0"),
    ([*SINE, "--test-shots", "51"], "argument --test-shots: must be between 1 and 50, got 51"),
    ([*SINE, "--inner-steps", "-1"], "argument --inner-steps: must be >= 0, got -1"),
    ([*SINE, "--algo", "reptile", "--inner-steps", "0"], "argument --inner-steps: Reptile takes at least 1 inner step"),
    ([*SINE, "--algo", "imaml", "--inner-steps", "0"], "argument --inner-steps: iMAML takes at least 1 inner step"),
    ([*SINE, "--algo", "imaml", "--lam", "0"], "argument --lam: must be > 0, got 0"),
    ([*SINE, "--lam", "1"], "argument --lam: is iMAML's, not --algo maml's"),
    ([*SINE, "--algo", "imaml", "--cg-steps", "0"], "argument --cg-steps: must be >= 1, got 0"),
    ([*SINE, "--algo", "reptile", "--inner-optimizer", "adam"], "argument --inner-optimizer: only MAML takes another"),
    ([*SINE, "--seed", "-1"], "argument --seed: must be >= 0, got -1"),
    (["train", "sine", "--test-tasks", "1"], "argument --test-tasks: must be >= 2, got 1"),
    ([*SINE, "--save-every", "0"], "argument --save-every: must be >= 1, got 0"),
    ([*DIGITS, "--ways", "1"], "argument --ways: must be between 2 and 9, got 1"),
    ([*DIGITS, "--ways", "6"], "argument --ways: 6-way tasks need 6 classes in both splits"),
    ([*DIGITS, "--test-classes", "0"], "argument --test-classes: must be between 1 and 9, got 0"),
    ([*DIGITS, "--queries", "0"], "argument --queries: must be >= 1, got 0"),
    ([*DIGITS, "--shots", "-3"], "argument --shots: must be >= 1, got -3"),
    # petabytes: more than any machine has (the 100000000 is 0.4 TB, which a large server could hold)
    ([*SINE, "--meta-batch", "1000000000000"], "argument --meta-batch: 1000000000000 needs about"),
    (["train", "sine", "--quiet", "--test-tasks", "1000000000000"], "argument --test-tasks: 1000000000000 needs"),
    ([*DIGITS, "--meta-batch", "100000000000"], "argument --meta-batch: 100000000000 needs about"),
    ([*SINE, "--plot", "curve.xyz"], "argument --plot: matplotlib cannot write .xyz files"),
], ids=lambda v: " ".join(v[2:]) if isinstance(v, list) else None)
def test_bad_numbers_are_refused_before_anything_runs(capsys, argv, message):
    start = time.perf_counter()
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err, err
    assert time.perf_counter() - start < 20  # the memory checks answer at once (they used to run for minutes)


@pytest.mark.parametrize("flag, message", [("--save", "cannot save a checkpoint as"),
                                           ("--plot", "cannot save the plot as")])
def test_an_unwritable_output_is_refused_before_training(capsys, tmp_path, flag, message):
    code, out, err = run(capsys, *SINE, flag, str(tmp_path / "missing" / "out.png"))
    assert code == 1 and out == "" and message in err and err.count("\n") == 1


@pytest.mark.parametrize("iterations", ["3", "2"])
def test_resuming_a_finished_run_says_so(capsys, tmp_path, iterations):
    path, constant = str(tmp_path / "run.safetensors"), ("--lr-schedule", "constant")  # (cosine: fixed --iterations)
    assert run(capsys, *SINE, *constant, "--save", path)[0] == 0
    code, out, err = run(capsys, "train", "sine", "--iterations", iterations, "--test-tasks", "4", "--quiet",
                         *constant, "--resume", path)
    assert code == 2 and out == "" and f"is already at iteration 3, so --iterations {iterations} leaves nothing" in err


@pytest.mark.parametrize("argv, difference", [
    (["--seed", "1"], "--seed 0 (now 1)"),
    (["--meta-batch", "5"], "--meta-batch 25 (now 5)"),
    (["--algo", "fomaml"], "--algo maml (now fomaml)"),
    (["--inner-lr", "0.02"], "--inner-lr 0.01 (now 0.02)"),
])
def test_resuming_with_other_settings_names_the_difference(capsys, tmp_path, argv, difference):
    path = str(tmp_path / "run.safetensors")
    assert run(capsys, *SINE, "--save", path)[0] == 0
    code, out, err = run(capsys, "train", "sine", "--iterations", "5", "--test-tasks", "4", "--quiet", "--resume", path,
                         *argv)
    assert code == 1 and out == "" and f"was saved by a run with other settings: {difference}" in err


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's kernels note the overflow on the way
def test_training_that_diverges_stops_with_the_reason(capsys):
    code, out, err = run(capsys, *SINE, "--inner-lr", "1e30")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "became" in err and "the step was not taken" in err


def test_the_console_script_is_installed():
    script = Path(sys.executable).with_name("neurenix")
    bad = subprocess.run([str(script), "train", "sine", "--algo", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice: 'nope'" in bad.stderr and bad.stdout == ""
    ok = subprocess.run([str(script), "train", "sine", *FAST], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "after 10 steps" in ok.stdout


def test_python_dash_m_runs_the_same_command():
    run = subprocess.run([sys.executable, "-m", "neurenix.meta.cli", "devices"], capture_output=True, text=True)
    assert run.returncode == 0 and "installed backends" in run.stdout


def test_threads_flag_sets_one_budget_for_kernels_and_blas(capsys, monkeypatch):
    import neurenix as nx
    from neurenix.backend import threads

    told = []
    monkeypatch.setattr(nx, "set_num_threads", lambda n: told.append(n))
    assert run(capsys, *SINE, "--threads", "1")[0] == 0
    assert told == [1]
    before = nx.get_num_threads()
    try:
        nx.backend.set_num_threads(1)  # what the flag calls, for real: BLAS follows
        if threads.blas_backend() is not None:
            assert threads.BLAS.get_num_threads() == 1
    finally:
        nx.backend.set_num_threads(before)


def test_threads_flag_refuses_zero(capsys):
    code, _out, err = run(capsys, *SINE, "--threads", "0")
    assert code == 2 and "--threads: must be >= 1, got 0" in err and err.count("\n") == 1


def test_version_names_every_installed_distribution(capsys):
    from importlib import metadata

    import neurenix
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith(f"neurenix {neurenix.__version__} (neurenix-meta ")
    for entry in metadata.entry_points(group="neurenix.backends"):  # whichever backends this env installs
        assert f"{entry.dist.name} {entry.dist.version}" in out


@pytest.mark.parametrize("argv", [["-v", "--threads", "2", "devices"], ["devices", "--threads", "2", "-v"],
                                  ["--threads", "1", "devices", "-v", "--threads", "2"]])
def test_global_flags_go_before_or_after_the_command(argv, monkeypatch):
    """-v and --threads are taken anywhere; given twice, the last counts."""
    import logging

    import neurenix as nx
    told, levels = [], []
    monkeypatch.setattr(nx, "set_num_threads", told.append)
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: levels.append(kw["level"]))
    assert main(argv) == 0
    assert told == [2] and levels == [logging.INFO]


def test_help_says_each_default_once(capsys):
    code, out, _ = run(capsys, "train", "sine", "--help")
    text = " ".join(out.split())
    assert code == 0 and text.count("(default:") == text.count("default:")
    assert "(default: maml 1, fomaml 1, reptile 8, imaml 20)" in text and "(default: None)" not in text
    assert "(default: 25)" in text  # --meta-batch: argparse's own default text where the help has none
