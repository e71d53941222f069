"""autograd.functional's jacobian, hessian, vjp, jvp, vhp and hvp give torch.autograd.functional's values and
result structures (tuple or tensor, nesting, shapes), float64; differentiable results (create_graph) give
PyTorch's gradients; strict mode refuses what PyTorch's refuses."""

from __future__ import annotations

import numpy as np
import pytest

import neurenix as nx

RNG = np.random.default_rng(3)
# PyTorch's vectorized (vmap) path warns of its own use of torch.jit.script
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

# name -> (func over a library's tensors, input shapes, tuple inputs)
FUNCS = {
    "elementwise": (lambda x: x.sin() * x.exp(), [(3,)], False),
    "matrix": (lambda x: (x @ x.T).tanh(), [(2, 3)], False),
    "tuple-in": (lambda a, b: a @ b.exp(), [(2, 3), (3,)], True),
    "tuple-out": (lambda a: (a.cos(), (a * a).sum()), [(3,)], False),
    "tuple-both": (lambda a, b: (a * b.sum(), a.sum() * b.sin()), [(2,), (3,)], True),
    "unused-input": (lambda a, b: a * 2, [(2,), (2,)], True),
}
SCALARS = {
    "one-in": (lambda x: (x.sin() * x * x).sum(), [(4,)], False),
    "one-tuple": (lambda x: (x ** 3).sum(), [(3,)], True),
    "tuple-in": (lambda a, b: (a @ b).tanh().sum() + (b ** 4).sum(), [(2, 3), (3,)], True),
    "linear": (lambda x: x.sum() * 3, [(2,)], False),
}


def _inputs(lib, arrays, tuple_in, requires_grad=False):
    ts = tuple(lib.tensor(a, dtype=lib.float64, requires_grad=requires_grad) for a in arrays)
    return ts if tuple_in else ts[0]


def assert_same(ours, theirs, where=""):
    """Same structure (tuples where PyTorch gives tuples) and values. (PyTorch's forward-mode gives lists where
    its documentation, and its reverse mode, give tuples; neurenix gives tuples in both.)"""
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, tuple) and len(ours) == len(theirs), f"{where}: {type(ours)} vs a tuple"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{where}[{i}]")
        return
    assert not isinstance(ours, tuple), f"{where}: a tuple where PyTorch gives a tensor"
    assert tuple(ours.shape) == tuple(theirs.shape), where
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=where)


def _both(torch, fn_name, case, **kw):
    func, shapes, tuple_in = case
    arrays = [RNG.standard_normal(s) for s in shapes]
    return [getattr(lib.autograd.functional, fn_name)(func, _inputs(lib, arrays, tuple_in), **kw)
            for lib in (nx, torch)]


@pytest.mark.parametrize("kw", [{}, dict(vectorize=True, strategy="forward-mode")], ids=["reverse", "forward"])
@pytest.mark.parametrize("name", FUNCS)
def test_jacobian_matches_pytorch(torch, name, kw):
    assert_same(*_both(torch, "jacobian", FUNCS[name], **kw), name)


@pytest.mark.parametrize("kw", [{}, dict(vectorize=True, outer_jacobian_strategy="forward-mode")],
                         ids=["reverse", "forward"])
@pytest.mark.parametrize("name", SCALARS)
def test_hessian_matches_pytorch(torch, name, kw):
    assert_same(*_both(torch, "hessian", SCALARS[name], **kw), name)


def _vectors(lib, shapes, tuple_, seed):
    arrays = [np.random.default_rng(seed).standard_normal(s) for s in shapes]
    return _inputs(lib, arrays, tuple_)


@pytest.mark.parametrize("fn_name", ["vjp", "jvp"])
@pytest.mark.parametrize("name", FUNCS)
def test_vjp_and_jvp_match_pytorch(torch, name, fn_name):
    func, shapes, tuple_in = FUNCS[name]
    arrays = [RNG.standard_normal(s) for s in shapes]
    results = []
    for lib in (nx, torch):
        inputs = _inputs(lib, arrays, tuple_in)
        if fn_name == "vjp":
            out = func(*inputs) if tuple_in else func(inputs)
            outs = out if isinstance(out, tuple) else (out,)
            v = _vectors(lib, [tuple(o.shape) for o in outs], isinstance(out, tuple), 1)
        else:
            v = _vectors(lib, shapes, tuple_in, 1)
        results.append(getattr(lib.autograd.functional, fn_name)(func, inputs, v))
    assert_same(*results, f"{fn_name} {name}")


@pytest.mark.parametrize("fn_name", ["vhp", "hvp"])
@pytest.mark.parametrize("name", SCALARS)
def test_vhp_and_hvp_match_pytorch(torch, name, fn_name):
    func, shapes, tuple_in = SCALARS[name]
    arrays = [RNG.standard_normal(s) for s in shapes]
    results = [getattr(lib.autograd.functional, fn_name)(func, _inputs(lib, arrays, tuple_in),
                                                         _vectors(lib, shapes, tuple_in, 2)) for lib in (nx, torch)]
    assert_same(*results, f"{fn_name} {name}")


@pytest.mark.parametrize("fn_name", ["jacobian", "hessian", "vjp", "jvp", "vhp", "hvp"])
def test_create_graph_gives_pytorchs_gradients(torch, fn_name):
    x0 = RNG.standard_normal(3)
    grads = []
    for lib in (nx, torch):
        x = lib.tensor(x0, dtype=lib.float64, requires_grad=True)
        fn = getattr(lib.autograd.functional, fn_name)
        func = (lambda t: (t.sin() * t * t).sum()) if fn_name in ("hessian", "vhp", "hvp") else (lambda t: t.exp() * t)
        if fn_name in ("jacobian", "hessian"):
            out = fn(func, x, create_graph=True)
        else:
            out = fn(func, x, lib.tensor(x0[::-1].copy(), dtype=lib.float64), create_graph=True)[1]
        (g,) = lib.autograd.grad((out * out).sum(), x)
        grads.append(g)
    assert_same(*grads, fn_name)


@pytest.mark.parametrize("call", [
    lambda lib, x: lib.autograd.functional.jacobian(lambda a, b: a * 2, (x, x), strict=True),
    lambda lib, x: lib.autograd.functional.jacobian(lambda a: a * 2, x, strict=True, create_graph=True),
    lambda lib, x: lib.autograd.functional.hessian(lambda a: a.sum(), x, strict=True),
    lambda lib, x: lib.autograd.functional.vjp(lambda a: lib.ones(2), x, x, strict=True),
    lambda lib, x: lib.autograd.functional.jvp(lambda a, b: a * 2, (x, x), (x, x), strict=True),
    lambda lib, x: lib.autograd.functional.vjp(lambda a: a * 2, x),
    lambda lib, x: lib.autograd.functional.hessian(lambda a: a * 2, x),
], ids=["unused", "linear-create-graph", "hessian-linear", "constant", "jvp-unused", "v-none", "hessian-vector"])
def test_refused_as_pytorch_refuses(torch, call):
    for lib in (torch, nx):
        with pytest.raises(RuntimeError):
            call(lib, lib.tensor([1.0, 2.0], dtype=lib.float64))
