"""The ``neurenix`` command line: sub-commands, one-line errors with a non-zero exit, the console script."""

import subprocess
import sys
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


@pytest.mark.parametrize("argv, message", [
    (["train", "sine", "--algo", "anil"], "argument --algo: invalid choice: 'anil'"),
    (["train", "digits", "--algo", "reptile"], "argument --algo: invalid choice: 'reptile'"),
    (["train", "sine", "--device", "tpu"], "unknown device type 'tpu'"),
    (["train", "sine", "--device", "cpu:7"], "device cpu:7 does not exist"),
    (["train", "sine", "--iterations", "0"], "--iterations: must be >= 1"),
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
    code, _, err = run(capsys, "train", "sine", *FAST, "--resume", path)
    assert code == 1 and err.count("\n") == 1 and "does not fit this MAML" in err and "model.0.weight is" in err


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
