"""Every plan cache in core is bounded through one helper (neurenix.caches.remember): a program meeting ever
new shapes, dims or class counts keeps them small, and results stay right when a cache starts over."""

import ast
import pathlib

import numpy as np

import neurenix as nx
from neurenix import caches
from neurenix.autograd import graph
from neurenix.nn import functional
from neurenix.ops import _operands, shape

SRC = pathlib.Path(nx.__file__).parent
CACHES = [_operands._broadcast_cache, _operands._sum_to_cache, _operands._axes_cache, _operands._ALL,
          shape._reshape_cache, shape._perm_cache, shape._SWAP_LAST_TWO, functional._arange_cache, graph._changes]


def test_caches_stay_bounded_and_right(monkeypatch):
    monkeypatch.setattr(caches, "LIMIT", 8)
    for cache in CACHES:
        cache.clear()  # (earlier tests may have filled them with every key this one meets)
    for n in range(1, 40):
        x = nx.ones(n, 1, requires_grad=True)
        y = (x + nx.ones(3)).reshape(-1).permute(0).sum(dim=0) + x.mT.sum((0, 1)) + (x * 1).T.sum()
        y = y + nx.nn.functional.cross_entropy(nx.zeros(1, n + 1), nx.tensor([0]))
        y.backward()
        with nx.no_grad():
            x.add_(1)
        np.testing.assert_array_equal(x.grad.numpy(), np.full((n, 1), 5.0, np.float32))
    for cache in CACHES:
        assert 0 < len(cache) <= 8, cache


def test_no_cache_grows_outside_the_helper():
    """A module-level dict filled by item assignment (``cache[key] = value``) inside a function of core is a
    cache that bypasses ``remember``: there is none. (Tables filled once at import are not caches.)"""
    offenders = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text())
        module_dicts = {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                        if isinstance(t, ast.Name) and isinstance(getattr(node, "value", None), ast.Dict)}
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for node in (n for f in functions for n in ast.walk(f)):
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and t.value.id in module_dicts:
                        offenders.append(f"{path.relative_to(SRC)}:{node.lineno} {t.value.id}[...] = ...")
    assert not offenders, offenders
