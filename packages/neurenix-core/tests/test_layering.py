"""Dependencies point one way (docs/design.md): no import cycle in neurenix-core, not even through an import
inside a function, the low layers import nothing above them, and every module imports alone."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

import neurenix

SRC = pathlib.Path(neurenix.__file__).parent


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, path: pathlib.Path) -> set[str]:
    """The neurenix modules ``name`` imports, anywhere in it (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            for alias in node.names:
                for target in (f"{base}.{alias.name}", base):
                    if target in MODULES:
                        found.add(target)
                        break
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in MODULES)
    # a module reaches its package's __init__ by being imported; importing it back is no cycle of its own
    return {m for m in found if m != name and not name.startswith(m + ".")}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in GRAPH:
        if root in index:
            continue
        work = [(root, iter(sorted(GRAPH[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(GRAPH[child]))))
                elif child in on:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_no_import_cycles():
    assert not _cycles(), "import cycles (each set imports itself round): " + "; ".join(map(str, _cycles()))


# layer -> what it must not import (a prefix matches the module and its submodules)
BELOW = {
    "neurenix.errors": ["neurenix."],
    "neurenix.caches": ["neurenix."],
    "neurenix.dtypes": ["neurenix."],
    "neurenix.arguments": ["neurenix.tensor", "neurenix.ops", "neurenix.nn", "neurenix.autograd"],
    "neurenix.backend": ["neurenix.tensor", "neurenix.ops", "neurenix.nn", "neurenix.optim", "neurenix.autograd"],
    "neurenix.autograd": ["neurenix.tensor", "neurenix.ops", "neurenix.nn", "neurenix.optim"],
    "neurenix.tensor": ["neurenix.ops", "neurenix.nn", "neurenix.optim", "neurenix.creation"],
    "neurenix.ops": ["neurenix.nn", "neurenix.optim", "neurenix.func", "neurenix.utils"],
    "neurenix.nn": ["neurenix.models"],
    # the backbones build on nn (and the tensor, creation and argument checks below it), nothing beside or above
    "neurenix.models": ["neurenix.ops", "neurenix.backend", "neurenix.optim", "neurenix.func", "neurenix.utils",
                        "neurenix.capture", "neurenix.serialization", "neurenix.distributed", "neurenix.onnx"],
}


@pytest.mark.parametrize("layer", BELOW)
def test_low_layers_import_nothing_above_them(layer):
    def within(module: str, prefix: str) -> bool:
        if prefix.endswith("."):
            return module.startswith(prefix)
        return module == prefix or module.startswith(prefix + ".")

    own = [m for m in GRAPH if within(m, layer)]
    bad = [f"{m} -> {t}" for m in own for t in sorted(GRAPH[m])
           if any(within(t, f) for f in BELOW[layer]) and not within(t, layer)]
    assert not bad, bad


# the parts of neurenix-core that need an optional dependency: package prefix -> (module, extra)
OPTIONAL = {"neurenix.onnx": ("onnx", "onnx")}


def test_every_module_imports_alone():
    """Each module imported first, in a process where no neurenix module is loaded yet (a half-initialised
    module from an import cycle would fail here). A part that needs an optional dependency which is not
    installed must raise an ImportError that names the extra to install."""
    script = (
        "import importlib, importlib.util, sys\n"
        "failed = []\n"
        f"optional = {OPTIONAL!r}\n"
        f"for name in {sorted(m for m in MODULES if not m.endswith('.__main__'))!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'neurenix' or m.startswith('neurenix.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as e:\n"
        "        needs = [v for p, v in optional.items() if name == p or name.startswith(p + '.')]\n"
        "        if needs and importlib.util.find_spec(needs[0][0]) is None and isinstance(e, ImportError) \\\n"
        "                and f'neurenix-core[{needs[0][1]}]' in str(e):\n"
        "            continue\n"
        "        failed.append(f'{name}: {e!r}')\n"
        "print('\\n'.join(failed))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert not out.stdout.strip(), out.stdout


def test_namespace_parts_load_on_first_use(monkeypatch):
    """``neurenix.<part>`` imports an installed part of the namespace on first use (PEP 562); a part that is not
    installed, or a name that is nothing, is an AttributeError that says so."""
    code = ("import sys, neurenix; assert 'neurenix.testing' not in sys.modules; "
            "assert neurenix.testing.gradcheck; assert 'neurenix.testing' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(AttributeError, match="no attribute 'no_such_thing'"):
        neurenix.no_such_thing  # noqa: B018
    monkeypatch.setitem(neurenix._PARTS, "not_installed_part", "neurenix-not-installed")
    with pytest.raises(AttributeError, match="comes with the neurenix-not-installed distribution"):
        neurenix.not_installed_part  # noqa: B018
    assert not hasattr(neurenix, "_private")
