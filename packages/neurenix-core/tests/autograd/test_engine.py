import gc
import weakref

import numpy as np
import pytest

import neurenix as nx
from neurenix.autograd import grad


def test_backward_accumulates_into_leaf_grads():
    x = nx.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0] and not x.grad.requires_grad


def test_grad_returns_without_touching_dot_grad():
    x = nx.tensor([1.0, 2.0], requires_grad=True)
    (g,) = grad((x ** 2).sum(), x)
    assert g.tolist() == [2.0, 4.0] and x.grad is None


def test_derivatives_of_any_order():
    x = nx.tensor([0.7, -1.3], dtype=nx.float64, requires_grad=True)
    y = (x ** 4).sum()
    expected = [lambda v: 4 * v ** 3, lambda v: 12 * v ** 2, lambda v: 24 * v, lambda v: 24 + 0 * v]
    for f in expected:
        (y,) = grad(y, x, create_graph=True)
        np.testing.assert_allclose(y.numpy(), f(x.numpy()), rtol=1e-12)
        y = y.sum()


def test_grad_outputs_weight_non_scalar_outputs():
    x = nx.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (g,) = grad(x * x, x, grad_outputs=nx.tensor([1.0, 0.0, 2.0]))
    assert g.tolist() == [2.0, 0.0, 12.0]


def test_non_scalar_output_without_grad_outputs_is_an_error():
    x = nx.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"shape \(3,\).*grad_outputs"):
        grad(x * 2, x)
    with pytest.raises(RuntimeError, match=r"grad_outputs\[0\] has shape \(2,\)"):
        grad(x * 2, x, grad_outputs=nx.ones(2))


def test_backward_through_a_released_graph_is_an_error():
    x = nx.ones(2, requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="freed.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_pass():
    x = nx.ones(2, requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.e)


def test_unused_input_is_an_error_unless_allowed():
    x, z = nx.ones(2, requires_grad=True), nx.ones(3, requires_grad=True)
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match=r"input 1 \(shape \(3,\)\) is not used.*allow_unused=True"):
        grad(y, [x, z], retain_graph=True)
    gx, gz = grad(y, [x, z], allow_unused=True)
    assert gx.tolist() == [2.0, 2.0] and gz is None


def test_outputs_and_inputs_that_do_not_require_grad_are_errors():
    x = nx.ones(2)
    w = nx.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="output 0.*does not require grad"):
        grad(x.sum(), w)
    with pytest.raises(RuntimeError, match="input 1.*does not require grad"):
        grad((w * 2).sum(), [w, x])


def test_no_grad_enable_grad_and_set_grad_enabled():
    x = nx.ones(2, requires_grad=True)
    with nx.no_grad():
        assert not (x * 2).requires_grad
        with nx.enable_grad():
            assert (x * 2).requires_grad
    nx.set_grad_enabled(False)
    assert not (x * 2).requires_grad
    nx.set_grad_enabled(True)
    with nx.set_grad_enabled(False):
        assert not nx.is_grad_enabled()
    assert nx.is_grad_enabled()

    @nx.no_grad()
    def f():
        return (x * 2).requires_grad
    assert f() is False and nx.is_grad_enabled()


def test_diamond_graph_accumulates_both_paths():
    x = nx.tensor(3.0, requires_grad=True)
    a, b = x * 2, x * 5
    (g,) = grad(a * b, x)  # d/dx 10 x^2
    assert g.item() == 60.0


def test_grad_with_respect_to_nested_inputs_counts_every_path():
    a = nx.tensor(2.0, dtype=nx.float64, requires_grad=True)
    b = a * a          # b depends on a
    c = b * a + b      # c = a^3 + a^2
    ga, gb = grad(c, [a, b])
    assert ga.item() == pytest.approx(3 * 4 + 2 * 2) and gb.item() == pytest.approx(2 + 1)


def test_grad_with_respect_to_intermediate_tensors_stops_there():
    x = nx.tensor([1.0, 2.0], requires_grad=True)
    h = x.exp()
    (gh,) = grad((h * 3).sum(), h)
    assert gh.tolist() == [3.0, 3.0]


def test_deep_graphs_do_not_hit_the_recursion_limit():
    x = nx.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 5000, rel=1e-4)


def test_graph_is_freed_after_backward():
    x = nx.ones(100, requires_grad=True)
    h = x.exp()
    ref = weakref.ref(h)
    loss = (h * 2).sum()
    del h
    loss.backward()
    gc.collect()
    assert ref() is None, "the intermediate stayed alive after backward released the graph"


def test_create_graph_keeps_grads_differentiable_and_backward_accepts_inputs():
    x = nx.tensor([1.0, 2.0], dtype=nx.float64, requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    g = x.grad
    x.grad = None
    g.sum().backward(inputs=[x])
    assert x.grad.tolist() == [6.0, 12.0]


def test_detach_cuts_the_graph():
    x = nx.ones(2, requires_grad=True)
    y = (x * 2).detach()
    assert not y.requires_grad and y.grad_fn is None
    with pytest.raises(RuntimeError):
        grad((y * 3).sum(), x)


def test_grad_neither_runs_nor_frees_the_graph_behind_or_beside_its_inputs():
    a, b = nx.tensor([1.0], requires_grad=True), nx.tensor([2.0], requires_grad=True)
    fa, fb = a * 2, b * 3
    ga, gb = grad((fa * fb).sum(), [fa, fb])
    assert ga.tolist() == [6.0] and gb.tolist() == [2.0]
    (fa + fb).sum().backward()  # the nodes that made fa and fb are intact
    assert a.grad.tolist() == [2.0] and b.grad.tolist() == [3.0]
