"""Every row of the PyTorch compatibility table holds: a ``same`` construct runs (and, where PyTorch is installed,
gives PyTorch's value), a ``differs`` one is refused or gives another value while its neurenix spelling runs, a
``missing`` one raises; and docs/pytorch.md shows exactly the table these rows give."""

from __future__ import annotations

import ast
import importlib
import os
import sys
import warnings

import numpy as np
import pytest

import neurenix as nx

sys.path.insert(0, os.path.dirname(__file__))
import constructs  # a helper beside this file, imported by path
from constructs import CONSTRUCTS, Construct


def run(source: str, lib):
    """Execute ``source`` in a fresh namespace over ``lib``; the value of its last line if an expression. The
    default dtype and grad mode are restored after it; NumPy's RuntimeWarnings (``x / 0`` on the NumPy backend)
    are not errors here: the values are the contract, as in PyTorch."""
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    ns = constructs.namespace(lib)
    dtype, grad = lib.get_default_dtype(), lib.is_grad_enabled()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            exec(compile(tree, "<construct>", "exec"), ns)
            return None if last is None else eval(compile(ast.Expression(last.value), "<construct>", "eval"), ns)
    finally:
        lib.set_default_dtype(dtype)
        lib.set_grad_enabled(grad)


def plain(value):
    """``value`` as plain Python and NumPy (tensors to arrays, shapes to tuples, dtypes to names) to compare."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return np.asarray(value.detach().numpy())
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if type(value).__name__ in ("dtype", "DType"):
        return str(value).rpartition(".")[2]
    if type(value).__name__ == "device":
        return str(value)
    return value


def assert_same(got, want, where: str) -> None:
    got, want = plain(got), plain(want)
    if isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray), f"{where}: got {got!r}, PyTorch gives an array"
        assert got.shape == want.shape and got.dtype == want.dtype, f"{where}: {got.shape} {got.dtype} vs " \
                                                                     f"PyTorch's {want.shape} {want.dtype}"
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=where)
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: got {got!r}, PyTorch gives {want!r}"
        for g, w in zip(got, want):
            assert_same(g, w, where)
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-5, abs=1e-6), f"{where}: got {got!r}, PyTorch gives {want!r}"
    else:
        assert got == want, f"{where}: got {got!r}, PyTorch gives {want!r}"


def _outcome(source: str):
    """(value, None) or (None, the exception) of ``source`` over neurenix."""
    try:
        return run(source, nx), None
    except Exception as e:  # a construct that raises is what "missing" (or a refusal) means
        return None, e


def _torch():
    if os.environ.get("NEURENIX_REQUIRE_TORCH"):
        return importlib.import_module("torch")
    try:
        return importlib.import_module("torch")
    except ImportError:
        return None


def _id(c: Construct) -> str:
    return f"{c.outcome}:{c.source.splitlines()[-1][:60]}"


@pytest.mark.parametrize("c", CONSTRUCTS, ids=_id)
def test_outcome_holds(c: Construct):
    """``same`` runs; ``differs`` raises (or is told apart from PyTorch's value below) and its spelling runs;
    ``missing`` raises. A missing construct that starts to run must be moved to ``same`` in constructs.py."""
    _, err = _outcome(c.source)
    if c.outcome == "same":
        assert err is None, f"{c.source!r} is marked 'same' but raises {err!r}"
    elif c.outcome == "missing":
        assert err is not None, f"{c.source!r} is marked 'missing' but runs: mark it 'same' in constructs.py"
    else:
        _, instead_err = _outcome(c.instead)
        assert instead_err is None, f"the neurenix spelling {c.instead!r} raises {instead_err!r}"


@pytest.mark.parametrize("c", [c for c in CONSTRUCTS if c.outcome != "missing"], ids=_id)
def test_against_pytorch(c: Construct):
    """Where PyTorch is installed: a ``same`` construct gives PyTorch's value; a ``differs`` one that runs here
    gives another value, and its neurenix spelling gives PyTorch's value of the construct (where ``match``)."""
    torch = _torch()
    if torch is None:
        pytest.skip("PyTorch is not installed (test-only peer: tox -e peers installs it)")
    if c.outcome == "same":
        want = run(c.source, torch)
        assert_same(run(c.source, nx), want, c.source)
        return
    try:
        want = run(c.source, torch)
    except Exception as e:  # a differing construct PyTorch cannot run here (x.cuda() without a GPU)
        pytest.skip(f"PyTorch cannot run it here either: {e!r}")
    value, err = _outcome(c.source)
    if err is None:
        with pytest.raises(AssertionError):
            assert_same(value, want, c.source)
    if c.match:
        assert_same(run(c.instead, nx), want, c.instead)


def test_differs_rows_are_told_apart_without_pytorch():
    """A ``differs`` construct that runs here (giving another value than PyTorch) is one whose difference only
    the PyTorch comparison can see: such rows must not be ``match`` rows (their spelling would be the same)."""
    for c in CONSTRUCTS:
        if c.outcome == "differs" and _outcome(c.source)[1] is None:
            assert not c.match, c.source


def test_enough_constructs_and_every_area_shown():
    assert len(CONSTRUCTS) >= 150
    assert {c.area for c in CONSTRUCTS} == set(constructs.AREAS)
    assert all(c.why for c in CONSTRUCTS if c.outcome == "differs")
    assert len({(c.area, c.source) for c in CONSTRUCTS}) == len(CONSTRUCTS), "a construct is listed twice"


def test_page_shows_the_generated_table():
    """docs/pytorch.md holds exactly ``render()`` between its markers (python tests/compat/constructs.py writes it)."""
    text = constructs.PAGE.read_text()
    assert constructs.BEGIN in text and constructs.END in text
    assert constructs.page_with_table(text) == text, "docs/pytorch.md is stale: run python tests/compat/constructs.py"
