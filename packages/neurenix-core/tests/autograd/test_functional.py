"""autograd.functional: jacobian and hessian against central finite differences and closed forms (float64), the
result structures PyTorch gives (tuple or tensor), vjp/jvp/vhp/hvp against the Jacobian and Hessian they
multiply, differentiable results with create_graph, strict mode, and argument errors."""

from __future__ import annotations

import numpy as np
import pytest

import neurenix as nx
from neurenix.autograd.functional import hessian, hvp, jacobian, jvp, vhp, vjp

RNG = np.random.default_rng(0)
TOL = dict(rtol=1e-6, atol=1e-8)  # central differences at h = 1e-6 in float64


def f64(a, requires_grad=False):
    return nx.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


# name -> (func, input shapes, whether inputs are a tuple); a function of tensors returning a tensor or a tuple
FUNCS = {
    "one-in-one-out": (lambda x: x.sin() * x.sum(), [(3,)], False),
    "matrix": (lambda x: x @ x.T, [(2, 3)], False),
    "zero-d": (lambda x: x.exp() * 2, [()], False),
    "tuple-in": (lambda a, b: a.exp() @ b, [(2, 3), (3,)], True),
    "tuple-out": (lambda a: (a.tanh(), (a * a).sum()), [(3,)], False),
    "tuple-both": (lambda a, b: (a * b.sum(), (a ** 2).sum() * b.cos()), [(2,), (3,)], True),
    "one-tuple": (lambda a: a * a, [(2,)], True),
}
# name -> (scalar func, input shapes, tuple)
SCALARS = {
    "one-in": (lambda x: (x.sin() * x * x).sum(), [(4,)], False),
    "matrix-in": (lambda x: (x @ x.T).tanh().sum(), [(2, 3)], False),
    "tuple-in": (lambda a, b: (a.exp() @ b).sin().sum() + (b ** 3).sum(), [(2, 3), (3,)], True),
}


def _draw(shapes):
    return [RNG.uniform(-1, 1, s) for s in shapes]


def _call(func, arrays, tuple_in):
    tensors = [f64(a) for a in arrays]
    out = func(*tensors) if tuple_in else func(tensors[0])
    return [o.numpy() for o in out] if isinstance(out, tuple) else [out.numpy()]


def _fd_jacobian(func, arrays, tuple_in, h=1e-6):
    """blocks[i][j] of shape out_i.shape + in_j.shape, by central differences."""
    outs = _call(func, arrays, tuple_in)
    blocks = [[np.zeros(o.shape + a.shape) for a in arrays] for o in outs]
    for j, a in enumerate(arrays):
        for k in np.ndindex(a.shape):
            hi, lo = [x.copy() for x in arrays], [x.copy() for x in arrays]
            hi[j][k] += h
            lo[j][k] -= h
            for i, (p, m) in enumerate(zip(_call(func, hi, tuple_in), _call(func, lo, tuple_in))):
                blocks[i][j][(...,) + k] = (p - m) / (2 * h)
    return blocks


def _as_blocks(result, tuple_out, tuple_in):
    """A jacobian's result as a list of lists of arrays, checking its structure against PyTorch's."""
    rows = result if tuple_out else (result,)
    assert isinstance(rows, tuple)
    out = []
    for row in rows:
        assert isinstance(row, tuple) == tuple_in
        out.append([t.numpy() for t in (row if tuple_in else (row,))])
    return out


def _inputs(arrays, tuple_in, requires_grad=False):
    ts = tuple(f64(a, requires_grad) for a in arrays)
    return ts if tuple_in else ts[0]


def _tuple_out(func, arrays, tuple_in):
    out = func(*[f64(a) for a in arrays]) if tuple_in else func(f64(arrays[0]))
    return isinstance(out, tuple)


@pytest.mark.parametrize("strategy", ["reverse-mode", "forward-mode"])
@pytest.mark.parametrize("name", FUNCS)
def test_jacobian_matches_finite_differences(name, strategy):
    func, shapes, tuple_in = FUNCS[name]
    arrays = _draw(shapes)
    got = jacobian(func, _inputs(arrays, tuple_in), vectorize=strategy == "forward-mode", strategy=strategy)
    blocks = _as_blocks(got, _tuple_out(func, arrays, tuple_in), tuple_in)
    for row, want_row in zip(blocks, _fd_jacobian(func, arrays, tuple_in), strict=True):
        for b, want in zip(row, want_row, strict=True):
            assert b.shape == want.shape
            np.testing.assert_allclose(b, want, **TOL)


def test_jacobian_of_a_linear_map_is_its_matrix():
    a = RNG.standard_normal((4, 3))
    got = jacobian(lambda x: f64(a) @ x, f64(RNG.standard_normal(3)))
    np.testing.assert_allclose(got.numpy(), a, rtol=1e-15)
    assert got.dtype == nx.float64 and not got.requires_grad


@pytest.mark.parametrize("name", SCALARS)
def test_hessian_matches_finite_differences_of_the_gradient(name):
    func, shapes, tuple_in = SCALARS[name]
    arrays = _draw(shapes)

    def gradient(*xs):
        xs = [x.detach().requires_grad_() for x in xs]
        return nx.autograd.grad(func(*xs), xs)

    got = _as_blocks(hessian(func, _inputs(arrays, tuple_in)), tuple_in, tuple_in)
    want = _fd_jacobian(gradient, arrays, True)
    for row, want_row in zip(got, want, strict=True):
        for b, w in zip(row, want_row, strict=True):
            np.testing.assert_allclose(b, w, **TOL)


def test_hessian_of_a_quadratic_form():
    a = RNG.standard_normal((3, 3))
    x = RNG.standard_normal(3)
    got = hessian(lambda t: t @ f64(a) @ t + t.sin().sum(), f64(x))
    np.testing.assert_allclose(got.numpy(), a + a.T - np.diag(np.sin(x)), rtol=1e-13, atol=1e-15)
    fwd = hessian(lambda t: t @ f64(a) @ t + t.sin().sum(), f64(x), vectorize=True,
                  outer_jacobian_strategy="forward-mode")
    np.testing.assert_allclose(fwd.numpy(), got.numpy(), rtol=1e-13, atol=1e-15)


def _flat_jacobian(func, arrays, tuple_in):
    """The whole Jacobian as one (outputs, inputs) matrix, from jacobian's blocks."""
    outs = _call(func, arrays, tuple_in)
    blocks = _as_blocks(jacobian(func, _inputs(arrays, tuple_in)), _tuple_out(func, arrays, tuple_in), tuple_in)
    return np.block([[b.reshape(o.size, a.size) for b, a in zip(row, arrays)] for row, o in zip(blocks, outs)])


def _flat(tensors):
    tensors = tensors if isinstance(tensors, tuple) else (tensors,)
    return np.concatenate([t.numpy().reshape(-1) for t in tensors])


def _vectors(shapes, tuple_):
    ts = tuple(f64(a) for a in _draw(shapes))
    return ts if tuple_ else ts[0]


@pytest.mark.parametrize("name", FUNCS)
def test_vjp_and_jvp_multiply_the_jacobian(name):
    func, shapes, tuple_in = FUNCS[name]
    arrays = _draw(shapes)
    jac = _flat_jacobian(func, arrays, tuple_in)
    tuple_out = _tuple_out(func, arrays, tuple_in)
    out_shapes = [o.shape for o in _call(func, arrays, tuple_in)]
    u = _vectors(out_shapes, tuple_out)
    value, got = vjp(func, _inputs(arrays, tuple_in), u)
    assert isinstance(got, tuple) == tuple_in and isinstance(value, tuple) == tuple_out
    np.testing.assert_allclose(_flat(got), _flat(u) @ jac, rtol=1e-12, atol=1e-14)
    v = _vectors(shapes, tuple_in)
    value, got = jvp(func, _inputs(arrays, tuple_in), v)
    assert isinstance(got, tuple) == tuple_out
    np.testing.assert_allclose(_flat(got), jac @ _flat(v), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(_flat(value), np.concatenate([o.reshape(-1) for o in _call(func, arrays, tuple_in)]))


@pytest.mark.parametrize("name", SCALARS)
def test_hvp_and_vhp_multiply_the_hessian(name):
    func, shapes, tuple_in = SCALARS[name]
    arrays = _draw(shapes)
    blocks = _as_blocks(hessian(func, _inputs(arrays, tuple_in)), tuple_in, tuple_in)
    sizes = [a.size for a in arrays]
    h = np.block([[b.reshape(m, n) for b, n in zip(row, sizes)] for row, m in zip(blocks, sizes)])
    v = _vectors(shapes, tuple_in)
    for fn in (hvp, vhp):
        value, got = fn(func, _inputs(arrays, tuple_in), v)
        assert isinstance(got, tuple) == tuple_in and value.shape == ()
        np.testing.assert_allclose(_flat(got), h @ _flat(v), rtol=1e-12, atol=1e-14)


def test_v_defaults_to_one_for_single_elements():
    x = f64([0.3])
    value, g = vjp(lambda t: (t * t).sum(), x)
    np.testing.assert_allclose([value.item(), *g.numpy()], [0.09, 0.6])
    value, g = jvp(lambda t: t.exp(), x)
    np.testing.assert_allclose([value.item(), *g.numpy()], np.exp([0.3, 0.3]))
    for fn in (hvp, vhp):
        np.testing.assert_allclose(fn(lambda t: (t ** 3).sum(), x)[1].numpy(), [1.8])


def test_results_are_detached_without_create_graph():
    x = f64([0.5, -1.0], requires_grad=True)
    for fn in (vjp, jvp, hvp, vhp):
        value, g = fn(lambda t: (t ** 3).sum(), x, f64([1.0, 1.0]) if fn is not vjp else None)
        assert not value.requires_grad and not g.requires_grad, fn.__name__
    assert not jacobian(lambda t: t ** 3, x).requires_grad
    assert not hessian(lambda t: (t ** 3).sum(), x).requires_grad
    with nx.no_grad():  # computed with recording on inside, as in PyTorch
        np.testing.assert_allclose(jacobian(lambda t: t ** 3, x).numpy(), np.diag(3 * x.numpy() ** 2))


def test_create_graph_makes_results_differentiable():
    x0 = np.array([0.7, -1.3, 0.4])
    x = f64(x0, requires_grad=True)
    hess = hessian(lambda t: (t ** 4).sum(), x, create_graph=True)  # diag(12 x^2)
    (third,) = nx.autograd.grad(hess.sum(), x)
    np.testing.assert_allclose(third.numpy(), 24 * x0, rtol=1e-13)
    jac = jacobian(lambda t: t.sin() * t.sum(), x, create_graph=True)
    (g,) = nx.autograd.grad(jac.sum(), x)

    def jac_sum(a):
        return jacobian(lambda t: t.sin() * t.sum(), f64(a)).numpy().sum()

    fd = [(jac_sum(x0 + h) - jac_sum(x0 - h)) / 2e-6 for h in np.eye(3) * 1e-6]
    np.testing.assert_allclose(g.numpy(), fd, **TOL)
    for fn, v in ((vjp, None), (jvp, f64(x0)), (hvp, f64(x0)), (vhp, f64(x0))):
        value, out = fn(lambda t: (t ** 4).sum(), x, v, create_graph=True)
        assert value.requires_grad and out.requires_grad, fn.__name__


def test_an_input_passed_twice_has_two_gradients():
    x = f64([1.0, 2.0], requires_grad=True)
    for create_graph in (False, True):
        ja, jb = jacobian(lambda a, b: a * 2, (x, x), create_graph=create_graph)
        np.testing.assert_allclose(ja.numpy(), 2 * np.eye(2))
        np.testing.assert_allclose(jb.numpy(), np.zeros((2, 2)))


def test_forward_mode_with_create_graph():
    x = f64([0.2, 0.9], requires_grad=True)
    jac = jacobian(lambda t: t ** 3, x, create_graph=True, vectorize=True, strategy="forward-mode")
    (g,) = nx.autograd.grad(jac.sum(), x)
    np.testing.assert_allclose(g.numpy(), 6 * x.numpy(), rtol=1e-13)


def test_unused_inputs_and_constant_outputs_give_zeros():
    x = f64([1.0, 2.0])
    _, jb = jacobian(lambda a, b: a * 2, (x, x))
    assert jb.numpy().tolist() == [[0, 0], [0, 0]]
    assert jacobian(lambda a: nx.ones(3, dtype=nx.float64), x).numpy().tolist() == [[0, 0]] * 3
    assert hessian(lambda a: a.sum() * 3, x).numpy().tolist() == [[0, 0], [0, 0]]
    assert vjp(lambda a: nx.ones(2, dtype=nx.float64), x, x)[1].numpy().tolist() == [0, 0]
    assert jvp(lambda a, b: (a * b, nx.ones(1)), (x, x), (x, x))[1][1].numpy().tolist() == [0]


@pytest.mark.parametrize("call, match", [
    (lambda x: jacobian(lambda a, b: a * 2, (x, x), strict=True), "output 0 .*independent of input 1"),
    (lambda x: jacobian(lambda a: nx.ones(2), x, strict=True), "does not require grad"),
    (lambda x: jacobian(lambda a: a * 2, x, strict=True, create_graph=True), "Jacobian .*independent of input 0"),
    (lambda x: vjp(lambda a, b: a * 2, (x, x), x, strict=True), "independent of input 1"),
    (lambda x: vjp(lambda a: nx.ones(2), x, x, strict=True), "output 0 .*does not require grad"),
    (lambda x: jvp(lambda a, b: a * 2, (x, x), (x, x), strict=True), "independent of input 1"),
    (lambda x: hessian(lambda a: a.sum(), x, strict=True), "Hessian.*input 0"),
    (lambda x: hvp(lambda a: a.sum(), x, x, strict=True), "Hessian.*input 0"),
    (lambda x: vhp(lambda a: a.sum(), x, x, strict=True), "Hessian.*input 0"),
], ids=["jac-unused", "jac-constant", "jac-linear-cg", "vjp-unused", "vjp-constant", "jvp-unused", "hessian-linear",
        "hvp-linear", "vhp-linear"])
def test_strict_mode_names_what_is_independent(call, match):
    with pytest.raises(RuntimeError, match=match):
        call(f64([1.0, 2.0]))


@pytest.mark.parametrize("call, error, match", [
    (lambda x: jacobian(lambda a, b: a * b, [x, x]), TypeError, "inputs must be a Tensor or a tuple"),
    (lambda x: jacobian(lambda a: [a], x), TypeError, "outputs of the user-provided function must be"),
    (lambda x: jacobian(3, x), TypeError, "func must be callable"),
    (lambda x: jacobian(lambda: x, ()), ValueError, "empty tuple"),
    (lambda x: jacobian(lambda a: a, nx.arange(2)), RuntimeError, r"inputs\[0\] is .*int64"),
    (lambda x: jacobian(lambda a: a, x, strategy="backward"), ValueError, "'reverse-mode' or 'forward-mode'"),
    (lambda x: jacobian(lambda a: a, x, strategy="forward-mode"), ValueError, "needs vectorize=True"),
    (lambda x: jacobian(lambda a: a, x, strict=True, vectorize=True), RuntimeError, "cannot be combined"),
    (lambda x: jacobian(lambda a: a, x, create_graph="yes"), TypeError, "create_graph must be True or False"),
    (lambda x: hessian(lambda a: a * 2, x), RuntimeError, "single element"),
    (lambda x: hvp(lambda a: (a, a), x, x), RuntimeError, "single tensor with a single element"),
    (lambda x: vjp(lambda a: a * 2, x), RuntimeError, "v can be None only"),
    (lambda x: vjp(lambda a: a * 2, x, nx.ones(3)), RuntimeError, r"v\[0\] has shape \(3,\) but output 0"),
    (lambda x: vjp(lambda a: a * 2, x, [x]), TypeError, "v must be a Tensor or a tuple"),
    (lambda x: jvp(lambda a, b: a * b, (x, x), (x,)), RuntimeError, "v has 1 tensors but there are 2 inputs"),
    (lambda x: jvp(lambda a: a * 2, x), RuntimeError, "v can be None only"),
    (lambda x: vhp(lambda a: a.sum(), x, nx.ones(1)), RuntimeError, r"v\[0\] has shape \(1,\) but input 0"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_arguments_name_the_problem(call, error, match):
    with pytest.raises(error, match=match):
        call(f64([1.0, 2.0]))
