"""Without the onnx package, importing neurenix.onnx says which extra to install (runs whether onnx is installed
or not: the test hides it)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("statement", ["import neurenix.onnx", "import neurenix; neurenix.onnx"])
def test_without_onnx_the_error_names_the_extra(statement):
    code = f"import sys; sys.modules['onnx'] = None; {statement}"  # None: the import fails as if not installed
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "ImportError: neurenix.onnx needs the onnx package, an optional dependency: pip install " \
           "'neurenix-core[onnx]'" in out.stderr, out.stderr


def test_neurenix_imports_without_onnx():
    code = "import sys; sys.modules['onnx'] = None; import neurenix, neurenix.nn; print(neurenix.nn.Linear(2, 2))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
