"""How far each ported script in examples/ is from its original: lines changed, beyond the imports.

The originals are not in this repository (their code is theirs); give a checkout of each:

    python bench/port_diff.py --learn2learn ~/src/learn2learn --pytorch-examples ~/src/examples

A line counts as changed when it differs from the original once neurenix's marking comments (``# neurenix: ...``)
are taken off, or was added or removed; import lines, blank lines and comment-only lines do not count. Prints one
line per script, and with ``--markdown`` a table (docs/learn2learn.md shows it).
"""

from __future__ import annotations

import argparse
import difflib
import pathlib
import re

HERE = pathlib.Path(__file__).resolve().parents[1] / "examples"
ORIGINALS = {  # script here -> (checkout, path in it)
    "maml_sine.py": ("learn2learn", "examples/maml_sine.py"),
    "maml_toy.py": ("learn2learn", "examples/maml_toy.py"),
    "maml_omniglot.py": ("learn2learn", "examples/vision/maml_omniglot.py"),
    "protonet_miniimagenet.py": ("learn2learn", "examples/vision/protonet_miniimagenet.py"),
    "mnist_main.py": ("pytorch_examples", "mnist/main.py"),
}
MARK = re.compile(r"\s*#\s*(neurenix:|noqa).*$")


def code_lines(text: str) -> list[str]:
    """The lines that count: without marking comments, blank lines, comment-only lines and docstring prose is
    kept (it is code to a diff)."""
    out = []
    for line in text.splitlines():
        line = MARK.sub("", line).rstrip()
        if line.strip() and not line.lstrip().startswith("#"):
            out.append(line)
    return out


def is_import(line: str) -> bool:
    return bool(re.match(r"\s*(import|from)\s+\S+", line))


def changed_lines(original: str, port: str) -> dict[str, int]:
    """Lines of the original removed or changed, lines of the port added, imports apart."""
    a, b = code_lines(original), code_lines(port)
    counts = {"changed": 0, "imports": 0}
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        lines = a[i1:i2] + b[j1:j2]
        imports = sum(is_import(x) for x in lines)
        counts["imports"] += imports
        counts["changed"] += max(i2 - i1, j2 - j1) - min(imports, max(i2 - i1, j2 - j1))
    counts["original"] = len(a)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learn2learn", type=pathlib.Path, required=True)
    parser.add_argument("--pytorch-examples", type=pathlib.Path, required=True)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    roots = {"learn2learn": args.learn2learn, "pytorch_examples": args.pytorch_examples}
    rows = []
    for script, (repo, path) in ORIGINALS.items():
        counts = changed_lines((roots[repo] / path).read_text(), (HERE / script).read_text())
        rows.append((script, f"{repo.replace('_', '/')}: {path}", counts))
    if args.markdown:
        print("| script | original | code lines | changed beyond imports | import lines changed |")
        print("|---|---|---:|---:|---:|")
        for script, source, c in rows:
            print(f"| `{script}` | {source} | {c['original']} | {c['changed']} | {c['imports']} |")
    else:
        for script, source, c in rows:
            print(f"{script:<26} {c['changed']:4d} lines changed beyond imports ({c['imports']} import lines), "
                  f"of {c['original']} ({source})")


if __name__ == "__main__":
    main()
