"""In-place changes never give a silently wrong gradient or a silently ignored write (tensor.py, autograd/graph.py)."""

import numpy as np
import pytest

import neurenix as nx
from neurenix import InPlaceError
from neurenix.optim import SGD, Adam


def leaf(values=(1.0, 2.0, 3.0)):
    return nx.tensor(values, dtype=nx.float64, requires_grad=True)


# -- a tensor a graph saved, changed before backward ---------------------------------------------------

CHANGES = {
    "add_": lambda t: t.add_(10),
    "mul_": lambda t: t.mul_(2),
    "setitem": lambda t: t.__setitem__(0, 100.0),
    "copy_": lambda t: t.copy_(nx.ones(t.shape, dtype=t.dtype)),
    "zero_": lambda t: t.zero_(),
    "fill_": lambda t: t.fill_(3.0),
    "index_put": lambda t: t.__setitem__(nx.tensor([1]), 5.0),
    "data": lambda t: t.data.add_(1),
    "data =": lambda t: setattr(t, "data", t.detach() * 2),
}


@pytest.mark.parametrize("change", CHANGES)
def test_changed_saved_leaf_raises_naming_both_ops(change):
    x = leaf()
    z = (x * x).sum()
    with nx.no_grad():
        CHANGES[change](x)
    with pytest.raises(InPlaceError, match="Mul saved") as err:
        z.backward()
    assert "after it was saved" in str(err.value)
    assert x.grad is None


def test_changed_saved_intermediate_raises():
    x = leaf()
    y = x * 1
    z = (y * y).sum()
    y[0] = 100.0
    with pytest.raises(InPlaceError, match="__setitem__"):
        z.backward()


def test_changed_constant_operand_raises():
    """A tensor that needs no gradient but whose value the backward pass reads (the data in w * data)."""
    w, data = leaf(), nx.tensor([1.0, 2.0, 3.0], dtype=nx.float64)
    loss = (w * data).sum()
    data.add_(1)
    with pytest.raises(InPlaceError, match="add_"):
        loss.backward()


@pytest.mark.parametrize("step", [lambda p: SGD([p], lr=0.1), lambda p: Adam([p], lr=0.1)])
def test_optimizer_step_before_backward_raises(step):
    w = leaf()
    loss = (w * w).sum()
    (g,) = nx.autograd.grad(loss, w, retain_graph=True)
    w.grad = g
    step(w).step()
    with pytest.raises(InPlaceError, match=r"(SGD|Adam)\.step"):
        loss.backward()


def test_second_order_graph_sees_changes():
    x = leaf()
    (g,) = nx.autograd.grad((x ** 3).sum(), x, create_graph=True)
    with nx.no_grad():
        x.mul_(2)
    with pytest.raises(InPlaceError):
        nx.autograd.grad(g.sum(), x)


@pytest.mark.parametrize("op", ["add", "sub", "sum", "mean", "reshape", "scalar_mul", "cat", "expand", "softmax"])
def test_ops_that_save_nothing_allow_later_changes(op):
    """As in PyTorch: changing an input whose value the gradient does not read is fine."""
    x = leaf()
    fns = {"add": lambda: x + 1, "sub": lambda: 1 - x, "sum": lambda: x.sum(), "mean": lambda: x.mean(),
           "reshape": lambda: x.reshape(3, 1), "scalar_mul": lambda: x * 3, "cat": lambda: nx.cat([x, x]),
           "expand": lambda: x.reshape(1, 3).expand(2, 3), "softmax": lambda: x.softmax(0) * 1}
    y = fns[op]()
    with nx.no_grad():
        x.add_(5)
    y.sum().backward()
    expected = {"sub": -1.0, "scalar_mul": 3.0, "cat": 2.0, "expand": 2.0, "softmax": 0.0}.get(op, 1.0)
    if op == "mean":
        expected = 1 / 3
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, expected), atol=1e-12)


@pytest.mark.parametrize("fn, grad", [
    (lambda x: x.exp(), lambda v: np.exp(v)),
    (lambda x: x.sqrt(), lambda v: 0.5 / np.sqrt(v)),
    (lambda x: x.tanh(), lambda v: 1 - np.tanh(v) ** 2),
    (lambda x: x.sigmoid(), lambda v: np.exp(-v) / (1 + np.exp(-v)) ** 2),
    (lambda x: 1 / x, lambda v: -1 / v ** 2),
])
def test_changed_output_is_read_as_saved(fn, grad):
    """A vjp that reads its op's output reads the value the op computed, not the changed one."""
    x = leaf()
    y = fn(x)
    loss = (y * 1).sum()
    with nx.no_grad():
        y.mul_(7)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), grad(np.array([1.0, 2.0, 3.0])), rtol=1e-12)


def test_changed_where_condition_does_not_reach_the_gradient():
    x = leaf((-1.0, 2.0, 3.0))
    cond = x.detach() > 0  # a comparison result: a value of its own, changeable
    y = nx.where(cond, x, 0.0).sum()
    cond[0] = True
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 1.0])


def test_changes_after_backward_and_new_graphs_are_fine():
    w = leaf()
    opt = SGD([w], lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
    np.testing.assert_allclose(w.detach().numpy(), np.zeros(3), atol=1e-12)  # 1 - 0.5 * 2 = 0 after a step


# -- .data: an alias outside autograd ----------------------------------------------------------------


def test_data_in_place_lands_in_tensor():
    p = leaf()
    p.data.add_(1)
    p.data.mul_(2)
    p.data[0] = -1.0
    np.testing.assert_array_equal(p.detach().numpy(), [-1.0, 6.0, 8.0])
    assert p.is_leaf and p.requires_grad


def test_grad_data_scaling_lands_in_grad():
    """learn2learn's gradient averaging: ``p.grad.data.mul_(1.0 / n)``."""
    p = leaf()
    (p * p).sum().backward()
    p.grad.data.mul_(0.5)
    np.testing.assert_array_equal(p.grad.numpy(), [1.0, 2.0, 3.0])


def test_init_and_copy_through_data():
    lin = nx.nn.Linear(4, 3)
    nx.manual_seed(0)
    nx.nn.init.xavier_uniform_(lin.weight.data)
    nx.manual_seed(0)
    expected = nx.nn.init.xavier_uniform_(nx.zeros(3, 4)).numpy()
    np.testing.assert_array_equal(lin.weight.detach().numpy(), expected)
    lin.bias.data.mul_(0)
    assert not lin.bias.detach().numpy().any()
    lin.bias.data.copy_(nx.ones(3))
    np.testing.assert_array_equal(lin.bias.detach().numpy(), np.ones(3, np.float32))


def test_data_reads_follow_the_tensor():
    p = leaf()
    alias = p.data
    with nx.no_grad():
        p.add_(1)
    np.testing.assert_array_equal(alias.numpy(), [2.0, 3.0, 4.0])
    assert not alias.requires_grad and alias.grad_fn is None


def test_data_changes_are_not_recorded():
    p, q = leaf(), leaf()
    p.data.add_(q)  # q requires grad, but a change through .data is outside autograd
    assert p.is_leaf and p.grad_fn is None
    np.testing.assert_array_equal(p.detach().numpy(), [2.0, 4.0, 6.0])


def test_data_of_data_and_pickle():
    import copy
    import pickle

    p = leaf()
    p.data.data.add_(1)
    np.testing.assert_array_equal(p.detach().numpy(), [2.0, 3.0, 4.0])
    for c in (copy.deepcopy(p.data), pickle.loads(pickle.dumps(p.data))):
        assert type(c) is nx.Tensor
        c.add_(1)  # a copy of its own
    np.testing.assert_array_equal(p.detach().numpy(), [2.0, 3.0, 4.0])


# -- views refuse in-place changes -----------------------------------------------------------------

VIEWS = {
    "index": lambda t: t[0],
    "slice": lambda t: t[:, 1],
    "view": lambda t: t.view(-1),
    "reshape": lambda t: t.reshape(3, 2),
    "T": lambda t: t.T,
    "transpose": lambda t: t.transpose(0, 1),
    "permute": lambda t: t.permute(1, 0),
    "expand": lambda t: t[None].expand(2, 2, 3),
    "unsqueeze": lambda t: t.unsqueeze(0),
    "squeeze": lambda t: t[None].squeeze(0),
    "flatten": lambda t: t.flatten(),
    "detach": lambda t: t.detach(),
}
WRITES = {
    "fill_": lambda v: v.fill_(1.0),
    "setitem": lambda v: v.__setitem__(0, 5.0),
    "add_": lambda v: v.add_(1.0),
    "iadd": lambda v: v.__iadd__(1.0),
    "zero_": lambda v: v.zero_(),
    "copy_": lambda v: v.copy_(nx.ones(v.shape)),
}


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("write", WRITES)
def test_in_place_on_views_raises_and_changes_nothing(view, write):
    t = nx.arange(6.0).reshape(2, 3).clone()
    v = VIEWS[view](t)
    before_t, before_v = t.numpy().copy(), v.numpy().copy()
    with pytest.raises(InPlaceError, match="view"):
        WRITES[write](v)
    np.testing.assert_array_equal(t.numpy(), before_t)
    np.testing.assert_array_equal(v.numpy(), before_v)


def test_optimizer_refuses_a_view_parameter():
    base = nx.ones(3)
    w = base.detach().requires_grad_()
    w.grad = nx.ones(3)
    with pytest.raises(InPlaceError, match="SGD.step"):
        SGD([w], lr=0.1).step()
    del base  # now no one else sees w's value: the step is w's own, as in PyTorch
    SGD([w], lr=0.1).step()
    np.testing.assert_allclose(w.numpy(), [0.9] * 3)


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("write", WRITES)
def test_a_view_whose_tensor_is_gone_changes_in_place(view, write):
    """``nx.zeros(6).view(2, 3)[0] = 1``: the tensor the view came from is gone, so nothing else could see the
    change in PyTorch either; the view is then a tensor of its own."""
    v = VIEWS[view](nx.arange(6.0).reshape(2, 3).clone())
    want = v.numpy().copy()
    WRITES[write](v)
    w = {"fill_": lambda a: np.full_like(a, 1.0), "add_": lambda a: a + 1, "iadd": lambda a: a + 1,
         "zero_": np.zeros_like, "copy_": np.ones_like}.get(write)
    if w is None:
        want[0] = 5.0
    np.testing.assert_array_equal(v.numpy(), want if w is None else w(want))
    v.add_(1.0)  # and stays one


def test_a_view_with_a_live_sibling_view_refuses_in_place_changes():
    base = nx.zeros(4)
    a, b = base.view(2, 2), base[1:]
    c = a.t()  # a view of a view: the same value as base, a and b
    del base
    for v in (a, b, c):
        with pytest.raises(InPlaceError, match="view"):
            v.add_(1.0)
    del a, b
    c.add_(1.0)  # the last one standing
    np.testing.assert_array_equal(c.numpy(), np.ones((2, 2), np.float32))


def test_a_view_of_data_is_a_view_of_its_tensor():
    t = nx.zeros(3)
    with pytest.raises(InPlaceError, match="view"):
        t.data.view(3, 1).add_(1.0)


def test_advanced_index_is_a_copy_as_in_pytorch():
    t = nx.arange(6.0)
    c = t[nx.tensor([0, 2])]
    c.fill_(-1.0)
    np.testing.assert_array_equal(t.numpy(), np.arange(6.0, dtype=np.float32))
    np.testing.assert_array_equal(c.numpy(), [-1.0, -1.0])


def test_same_shape_view_is_the_tensor_itself():
    """``t.view(t.shape)`` and ``t.permute(0, 1)`` return ``t``: changing them changes ``t``, as in PyTorch."""
    t = nx.zeros(2, 3)
    t.view(2, 3).fill_(1.0)
    t.permute(0, 1).add_(1.0)
    np.testing.assert_array_equal(t.numpy(), np.full((2, 3), 2.0, np.float32))


def test_clone_of_a_view_is_changeable():
    t = nx.zeros(2, 3)
    c = t[0].clone()
    c.fill_(1.0)
    assert not t.numpy().any() and c.numpy().all()



NEW_TENSORS = {
    "repeat": lambda t: t.repeat(2, 1),
    "logsumexp": lambda t: t.logsumexp(1),
    "topk.indices": lambda t: t.topk(2).indices,
    "median.values": lambda t: t.median(1).values,
    "0-d repeat": lambda t: t[0, 0].repeat(),
    "0-d bool mask": lambda t: t[nx.tensor(True)],
}


@pytest.mark.parametrize("op", NEW_TENSORS)
def test_new_tensors_of_view_ops_change_in_place_and_leave_the_input(op):
    """Results PyTorch gives as new tensors (made here by reshapes and slices) are not views of the input."""
    t = nx.arange(6.0).reshape(2, 3).clone()
    out = NEW_TENSORS[op](t)
    before = out.numpy().copy()
    out.add_(1)
    np.testing.assert_array_equal(out.numpy(), before + 1)
    np.testing.assert_array_equal(t.numpy(), np.arange(6.0, dtype=np.float32).reshape(2, 3))


def test_zero_d_bool_mask_indexes_as_pytorch():
    t = nx.arange(6.0).reshape(2, 3).clone()
    assert t[nx.tensor(True)].shape == (1, 2, 3) and t[nx.tensor(False)].shape == (0, 2, 3)
    t[nx.tensor(False)] = 7.0
    assert t.numpy().max() == 5.0
    t[nx.tensor(True)] = 7.0
    assert (t.numpy() == 7.0).all()
    with pytest.raises(IndexError, match="0-d bool index is supported on its own"):
        t[0, nx.tensor(True)]
