"""Tensor hooks and retain_grad, with PyTorch's semantics (tests/compat compares the constructs with PyTorch)."""

import gc
import weakref

import pytest

import neurenix as nx
from neurenix.autograd import grad


def _leaf(values=(1.0, 2.0)):
    return nx.tensor(list(values), dtype=nx.float64, requires_grad=True)


def test_leaf_hook_changes_what_lands_in_grad_and_in_autograd_grad():
    w = _leaf()
    seen = []
    w.register_hook(lambda g: seen.append(g.tolist()))  # None: the gradient stays
    handle = w.register_hook(lambda g: g * 2)
    (w * 3).sum().backward()
    assert seen == [[3.0, 3.0]] and w.grad.tolist() == [6.0, 6.0]
    assert grad((w * w).sum(), w)[0].tolist() == [4.0, 8.0]
    handle.remove()
    handle.remove()  # a second remove does nothing
    assert grad((w * w).sum(), w)[0].tolist() == [2.0, 4.0]


def test_computed_tensor_hook_sees_its_whole_gradient_once_and_feeds_what_flows_back():
    x = _leaf()
    y = x * 2
    calls = []
    y.register_hook(lambda g: calls.append(g.tolist()) or g * 10)
    (y * 3 + y).sum().backward()  # two uses of y: the hook sees their sum, once
    assert calls == [[4.0, 4.0]] and x.grad.tolist() == [80.0, 80.0]


def test_hooks_run_in_registration_order_and_chain():
    x = _leaf()
    y = x * 1
    y.register_hook(lambda g: g + 1)
    y.register_hook(lambda g: g * 3)
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 6.0]


def test_handle_is_a_context_manager():
    x = _leaf()
    with x.register_hook(lambda g: g * 0):
        assert grad(x.sum(), x)[0].tolist() == [0.0, 0.0]
    assert grad(x.sum(), x)[0].tolist() == [1.0, 1.0]


def test_hook_on_a_computed_input_of_grad():
    x = _leaf()
    y = x * x
    y.register_hook(lambda g: g * 5)
    assert grad(y.sum(), y)[0].tolist() == [5.0, 5.0]  # y's node does not run (nothing behind it is asked for)
    assert grad((y * 2).sum(), [y, x])[0].tolist() == [10.0, 10.0]


def test_hook_ops_are_recorded_for_higher_orders():
    x = _leaf([0.5, -1.5])
    y = x ** 3
    y.register_hook(lambda g: g * x)  # d/dx of sum(x * 3x^2) ... through the hook's product
    (g,) = grad(y.sum(), x, create_graph=True)
    assert g.tolist() == pytest.approx([3 * 0.5 ** 3, 3 * 1.5 ** 3 * -1])
    (gg,) = grad(g.sum(), x)
    assert gg.tolist() == pytest.approx([9 * 0.5 ** 2, 9 * 1.5 ** 2])


def test_retain_grad_fills_and_accumulates_a_computed_tensors_grad():
    x = _leaf()
    y = x * 2
    assert not y.retains_grad
    y.retain_grad()
    y.retain_grad()  # twice is once
    assert y.retains_grad and not x.retains_grad
    (y * 3).sum().backward(retain_graph=True)
    assert y.grad.tolist() == [3.0, 3.0] and x.grad.tolist() == [6.0, 6.0]
    (y * 3).sum().backward()
    assert y.grad.tolist() == [6.0, 6.0]
    x.retain_grad()  # a leaf: nothing to do
    assert not x.retains_grad


def test_retain_grad_sees_hooked_gradient_also_in_autograd_grad():
    x = _leaf()
    y = x * 2
    y.retain_grad()
    y.register_hook(lambda g: g * 5)  # registered after retain_grad, still runs before it (as PyTorch 2)
    assert grad((y * 3).sum(), x)[0].tolist() == [30.0, 30.0]
    assert y.grad.tolist() == [15.0, 15.0] and x.grad is None


def test_retain_grad_follows_an_in_place_change():
    x = _leaf()
    y = x * 2
    y.retain_grad()
    y.add_(1)
    assert y.retains_grad
    (y * 3).sum().backward()
    assert y.grad.tolist() == [3.0, 3.0]


def test_retained_tensor_is_not_kept_alive_by_its_node():
    x = _leaf()
    y = x * 2
    y.retain_grad()
    z = y.sum()  # (a sum saves nothing: y's only holder is the program)
    ref = weakref.ref(y)
    del y
    gc.collect()
    assert ref() is None
    z.backward()  # the retained tensor is gone: nothing to fill
    assert x.grad.tolist() == [2.0, 2.0]


def test_bad_hooks_and_tensors_are_refused():
    with pytest.raises(RuntimeError, match="does not require grad"):
        nx.tensor([1.0]).register_hook(lambda g: g)
    with pytest.raises(RuntimeError, match="does not require grad"):
        nx.tensor([1.0]).retain_grad()
    x = _leaf()
    with pytest.raises(TypeError, match="must be callable, got int"):
        x.register_hook(3)
    x.register_hook(lambda g: g.sum())
    with pytest.raises(RuntimeError, match=r"changed the gradient from \(2,\) .* to \(\)"):
        (x * 2).sum().backward()
    y = _leaf()
    y.register_hook(lambda g: 2.0)
    with pytest.raises(TypeError, match="returned a float"):
        grad(y.sum(), y)
