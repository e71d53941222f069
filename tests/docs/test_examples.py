"""Every ```python block in README.md and docs/*.md runs as written (blocks of one file share a namespace)."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_python_blocks_run(path):
    blocks = BLOCK.findall(path.read_text())
    namespace = {"__name__": "__docs__"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{path.name}[block {i}]", "exec"), namespace)
        except Exception as e:
            pytest.fail(f"{path.name}, python block {i} fails: {e!r}\n{code}")


def test_backend_guide_documents_every_kernel():
    from neurenix.backend.kernels import KERNEL_API_VERSION, OPTIONAL, REQUIRED

    guide = (ROOT / "docs" / "backends.md").read_text()
    missing = [k for k in (*REQUIRED, *OPTIONAL) if f"`{k}`" not in guide]
    assert not missing, f"docs/backends.md does not document kernels {missing}"
    assert f"(version {KERNEL_API_VERSION})" in guide
