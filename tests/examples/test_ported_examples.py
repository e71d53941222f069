"""The scripts in examples/ (learn2learn's and pytorch/examples' scripts ported to neurenix) run with --quick and
print what the originals print; each says what it ports, under which license, and marks its changes with
"neurenix:" comments."""

import math
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
NUMBER = r"([-+0-9.eE]+|nan|inf)"
EXPECTED = {  # what each script prints, with the numbers in it that must be finite
    "maml_sine.py": [rf"Iteration: 0 Meta Train Loss {NUMBER}"],
    "maml_omniglot.py": [rf"Meta Train Error {NUMBER}", rf"Meta Valid Accuracy {NUMBER}", rf"Meta Test Error {NUMBER}"],
    "protonet_miniimagenet.py": [rf"epoch 1, train, loss={NUMBER} acc={NUMBER}",
                                 rf"epoch 1, val, loss={NUMBER} acc={NUMBER}", rf"batch 2: {NUMBER}"],
    "maml_toy.py": [rf"^0 {NUMBER}$", rf"^2 {NUMBER}$"],
    "mnist_main.py": [rf"Train Epoch: 1 \[0/\d+ \(0%\)\]\tLoss: {NUMBER}",
                      rf"Test set: Average loss: {NUMBER}, Accuracy: \d+/\d+",
                      "Reloaded mnist_cnn.pt: same test accuracy"],
}
ARGS = {"mnist_main.py": ["--save-model"]}  # beyond --quick
# scripts ported with only their imports changed have no --quick: their constants are set smaller instead
CONSTANTS = {"maml_toy.py": {"TIMESTEPS": 3, "TASKS_PER_STEP": 4}}
L2L = ("learn2learn's examples/", "MIT license")
PORTED = {  # where each script comes from, and the license it is under
    "maml_sine.py": L2L, "maml_omniglot.py": L2L, "protonet_miniimagenet.py": L2L, "maml_toy.py": L2L,
    "mnist_main.py": ("pytorch/examples' mnist/main.py", "BSD 3-Clause License"),
}


def test_every_example_is_checked():
    assert sorted(p.name for p in EXAMPLES) == sorted(EXPECTED) == sorted(PORTED)


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_runs_quick(script, tmp_path):
    command = [sys.executable, str(script), "--quick", *ARGS.get(script.name, [])]
    if script.name in CONSTANTS:
        command = [sys.executable, "-c", "import importlib.util as u, sys\n"
                   f"spec = u.spec_from_file_location('port', {str(script)!r})\n"
                   "m = u.module_from_spec(spec); spec.loader.exec_module(m)\n"
                   f"m.__dict__.update({CONSTANTS[script.name]!r})\nm.main()"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)  # what a script writes goes to tmp_path
    assert run.returncode == 0, run.stderr[-3000:]
    for pattern in EXPECTED[script.name]:
        found = re.search(pattern, run.stdout, re.M)
        assert found, f"{script.name} did not print {pattern!r}:\n{run.stdout[-2000:]}"
        assert all(math.isfinite(float(v)) for v in found.groups()), found[0]


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_says_what_it_ports(script):
    text = script.read_text()
    source, license_name = PORTED[script.name]
    assert f"ported from {source}" in text and license_name in text
    assert text.count("neurenix:") >= 3
