"""The scripts in examples/ (learn2learn's and pytorch/examples' scripts ported to neurenix with only their import
lines changed) run in seconds and print what the originals print; each says what it ports, under which license, and
marks its changed lines with "neurenix:" comments.

A script ported with only its imports changed has no --quick: the test calls its main() with small arguments or sets
its module constants smaller, or passes the original's own flags; NEURENIX_EXAMPLES_QUICK=1 makes the stand-in data
sets of examples/_stand_ins.py small."""

import math
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))  # not helpers
NUMBER = r"([-+0-9.eE]+|nan|inf)"
EXPECTED = {  # what each script prints, with the numbers in it that must be finite
    "maml_sine.py": [rf"Iteration: 0 Meta Train Loss {NUMBER}"],
    "maml_omniglot.py": [rf"Meta Train Error {NUMBER}", rf"Meta Valid Accuracy {NUMBER}", rf"Meta Test Error {NUMBER}"],
    "protonet_miniimagenet.py": [rf"epoch 1, train, loss={NUMBER} acc={NUMBER}",
                                 rf"epoch 1, val, loss={NUMBER} acc={NUMBER}", rf"batch 2: {NUMBER}"],
    "maml_toy.py": [rf"^0 {NUMBER}$", rf"^2 {NUMBER}$"],
    "mnist_main.py": [rf"Train Epoch: 1 \[0/\d+ \(0%\)\]\tLoss: {NUMBER}",
                      rf"Test set: Average loss: {NUMBER}, Accuracy: \d+/\d+"],
}
ARGS = {  # the originals' own flags, small
    "mnist_main.py": ["--epochs", "1", "--log-interval", "1", "--test-batch-size", "100", "--save-model"],
    "protonet_miniimagenet.py": ["--max-epoch", "1", "--train-way", "5", "--train-query", "2", "--test-query", "2"],
}
CALLS = {  # scripts whose main() takes its settings as arguments: called with small ones
    "maml_sine.py": "main(tasks_per_batch=4, num_tasks=16)",
    "maml_omniglot.py": "main(meta_batch_size=4, num_iterations=2, cuda=False)",
}
CONSTANTS = {"maml_toy.py": {"TIMESTEPS": 3, "TASKS_PER_STEP": 4}}  # module constants, set smaller
L2L = ("learn2learn's examples/", "MIT license")
PORTED = {  # where each script comes from, and the license it is under
    "maml_sine.py": L2L, "maml_omniglot.py": L2L, "protonet_miniimagenet.py": L2L, "maml_toy.py": L2L,
    "mnist_main.py": ("pytorch/examples' mnist/main.py", "BSD 3-Clause License"),
}


def test_every_example_is_checked():
    assert sorted(p.name for p in EXAMPLES) == sorted(EXPECTED) == sorted(PORTED)


def _module_code(script, then):
    """Python code that imports ``script`` as module ``m`` (examples/ on the path, for _stand_ins) and runs ``then``."""
    return ("import importlib.util as u, sys\n"
            f"sys.path.insert(0, {str(script.parent)!r})\n"
            f"spec = u.spec_from_file_location('port', {str(script)!r})\n"
            f"m = u.module_from_spec(spec); spec.loader.exec_module(m)\n{then}")


def _run(command, cwd):
    env = {**os.environ, "NEURENIX_EXAMPLES_QUICK": "1"}
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env,
                         cwd=cwd)  # what a script writes goes to cwd (tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_runs_quick(script, tmp_path):
    command = [sys.executable, str(script), *ARGS.get(script.name, [])]
    if script.name in CONSTANTS:
        constants = CONSTANTS[script.name]
        command = [sys.executable, "-c", _module_code(script, f"m.__dict__.update({constants!r})\nm.main()")]
    if script.name in CALLS:
        command = [sys.executable, "-c", _module_code(script, f"m.{CALLS[script.name]}")]
    stdout = _run(command, tmp_path)
    for pattern in EXPECTED[script.name]:
        found = re.search(pattern, stdout, re.M)
        assert found, f"{script.name} did not print {pattern!r}:\n{stdout[-2000:]}"
        assert all(math.isfinite(float(v)) for v in found.groups()), found[0]
    if script.name == "mnist_main.py":  # --save-model: the saved state dict, loaded into a new Net, scores the same
        scored = re.findall(r"Accuracy: (\d+)/(\d+)", stdout)[-1]
        reloaded = _run([sys.executable, "-c", _module_code(script, (
            "import neurenix\n"
            "model = m.Net(); model.load_state_dict(neurenix.load('mnist_cnn.pt'))\n"
            "t = m.transforms\n"
            "transform = t.Compose([t.ToTensor(), t.Normalize((0.1307,), (0.3081,))])\n"
            "data = m.datasets.MNIST('../data', train=False, transform=transform)\n"
            "m.test(model, m.torch.device('cpu'), m.torch.utils.data.DataLoader(data, batch_size=100))"))], tmp_path)
        assert re.findall(r"Accuracy: (\d+)/(\d+)", reloaded)[-1] == scored, reloaded


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_says_what_it_ports(script):
    text = script.read_text()
    source, license_name = PORTED[script.name]
    assert f"ported from {source}" in text and license_name in text
    assert text.count("neurenix:") >= 3
