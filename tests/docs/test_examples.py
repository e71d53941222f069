"""Every ```python block in README.md and docs/**/*.md runs as written (blocks of one file share a namespace).

A line ``--8<-- "path"`` in a block stands for the file at ``path`` (from the repository root), as the
site's snippets extension includes it: the block then runs that file. (The pages show files in full
instead, read as Markdown too; ``test_file_blocks_equal_their_files`` keeps them equal.)
"""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
SNIPPET = re.compile(r'^--8<-- "([^"]+)"$', re.M)


def _name(path: pathlib.Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", DOCS, ids=_name)
def test_python_blocks_run(path):
    blocks = BLOCK.findall(path.read_text())
    namespace = {"__name__": "__docs__"}
    for i, code in enumerate(blocks):
        code = SNIPPET.sub(lambda m: (ROOT / m[1]).read_text(), code)
        try:
            exec(compile(code, f"{path.name}[block {i}]", "exec"), namespace)
        except Exception as e:
            pytest.fail(f"{_name(path)}, python block {i} fails: {e!r}\n{code}")


FILE_BLOCK = re.compile(r"^```\w*\n# ([\w./-]+)\n(.*?)^```", re.S | re.M)


@pytest.mark.parametrize("path", DOCS, ids=_name)
def test_file_blocks_equal_their_files(path):
    """A block whose first line is ``# some/path`` of a file in the repository shows that whole file, as it is
    (the third-party walkthrough shows the toy plugin so: read as Markdown, on a code host, it has the code)."""
    for name, body in FILE_BLOCK.findall(path.read_text()):
        source = ROOT / name
        if source.is_file():
            assert body.rstrip("\n") == source.read_text().rstrip("\n"), f"{_name(path)}: the block of {name} differs"


def test_backend_guide_documents_every_kernel():
    from neurenix.backend.kernels import KERNEL_API_VERSION, OPTIONAL, REQUIRED

    guide = (ROOT / "docs" / "backends.md").read_text()
    missing = [k for k in (*REQUIRED, *OPTIONAL) if f"`{k}`" not in guide]
    assert not missing, f"docs/backends.md does not document kernels {missing}"
    assert f"(version {KERNEL_API_VERSION})" in guide


def test_getting_started_gives_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    commands = [line for block in re.findall(r"^```sh\n(.*?)^```", readme, re.S | re.M) for line in block.splitlines()]
    page = (ROOT / "docs" / "getting-started.md").read_text()
    missing = [c for c in commands if c not in page]
    assert commands and not missing, f"docs/getting-started.md lacks the README's commands {missing}"


def test_api_reference_lists_every_public_name():
    """The pages that list names by hand (the others render whole modules) miss none."""
    import neurenix as nx
    from neurenix.ops.methods import METHODS, PROPERTIES

    def missing(page, names):
        text = (ROOT / "docs" / "api" / page).read_text()
        return [n for n in names if f"`{n}`" not in text and f"neurenix.{n}" not in text]

    assert not missing("neurenix.md", nx.__all__), f"docs/api/neurenix.md misses {missing('neurenix.md', nx.__all__)}"
    methods = [*METHODS, *PROPERTIES]
    assert not missing("tensor.md", methods), f"docs/api/tensor.md misses methods {missing('tensor.md', methods)}"
