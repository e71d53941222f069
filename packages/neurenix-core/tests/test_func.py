import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix.autograd import grad
from neurenix.func import functional_call
from neurenix.nn import functional as F


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _t(a, requires_grad=False):
    return nx.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def _snapshot(module):
    return [(n, p, p.numpy().copy()) for n, p in [*module.named_parameters(), *module.named_buffers()]]


def _assert_unchanged(module, snapshot):
    now = [*module.named_parameters(), *module.named_buffers()]
    assert [n for n, _ in now] == [n for n, _, _ in snapshot]
    for (_, t), (name, before, values) in zip(now, snapshot):
        assert t is before, name
        np.testing.assert_array_equal(t.numpy(), values, err_msg=name)
    assert all(isinstance(p, nn.Parameter) and p.grad is None for p in module.parameters())


def _mlp():
    nx.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).double()


def _np_mlp(p, x):
    h = np.tanh(x @ p["0.weight"].T + p["0.bias"])
    return h @ p["2.weight"].T + p["2.bias"]


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(nx.ones(2, dtype=nx.float64))

    def forward(self, a, b, shift=0.0):
        return a * self.scale + b + shift


class Failing(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        self.fc(x)
        raise RuntimeError("boom")


def test_runs_with_substituted_params_and_leaves_module_untouched():
    model = _mlp()
    snap = _snapshot(model)
    new = {n: _t(_rand(*p.shape, seed=i + 10), requires_grad=True) for i, (n, p) in
           enumerate(model.named_parameters())}
    x = _rand(5, 2)
    out = functional_call(model, new, _t(x))
    np.testing.assert_allclose(out.numpy(), _np_mlp({n: v.numpy() for n, v in new.items()}, x), rtol=1e-12)
    out.sum().backward()
    assert all(v.grad is not None for v in new.values())
    _assert_unchanged(model, snap)
    own = {n: p.numpy() for n, p in model.named_parameters()}
    np.testing.assert_allclose(model(_t(x)).numpy(), _np_mlp(own, x), rtol=1e-12)


def test_names_not_given_keep_the_module_tensors():
    model = _mlp()
    own = {n: p.numpy().copy() for n, p in model.named_parameters()}
    w = _rand(1, 3, seed=5)
    x = _rand(4, 2)
    out = functional_call(model, {"2.weight": _t(w)}, _t(x))
    np.testing.assert_allclose(out.numpy(), _np_mlp({**own, "2.weight": w}, x), rtol=1e-12)


def test_gradients_reach_the_substituted_tensors():
    model = nn.Linear(3, 2).double()
    w, b, x = _rand(2, 3), _rand(2), _rand(4, 3)
    wt, bt = _t(w, requires_grad=True), _t(b, requires_grad=True)
    out = functional_call(model, {"weight": wt, "bias": bt}, _t(x))
    gw, gb = grad((out ** 2).sum(), [wt, bt])
    y = x @ w.T + b
    np.testing.assert_allclose(gw.numpy(), 2 * y.T @ x, rtol=1e-12)
    np.testing.assert_allclose(gb.numpy(), 2 * y.sum(0), rtol=1e-12)
    assert model.weight.grad is None


def test_module_restored_when_forward_raises():
    model = Failing()
    snap = _snapshot(model)
    with pytest.raises(RuntimeError, match="boom"):
        functional_call(model, {"fc.weight": nx.zeros(2, 2), "fc.bias": nx.zeros(2)}, nx.ones(1, 2))
    _assert_unchanged(model, snap)


@pytest.mark.parametrize("name", ["nope", "0.nope", "1.weight", "5.weight", "0", "0.weight.x"])
def test_unknown_names_raise_and_restore(name):
    # PyTorch raises RuntimeError for an unexpected key when strict (and, not strict, sets an attribute)
    model = _mlp()
    snap = _snapshot(model)
    with pytest.raises(RuntimeError, match="functional_call: '" + name.replace(".", r"\.")):
        functional_call(model, {"0.weight": nx.zeros(3, 2, dtype=nx.float64), name: nx.zeros(1)}, nx.ones(1, 2))
    _assert_unchanged(model, snap)


def test_buffers_can_be_substituted():
    bn = nn.BatchNorm1d(3).double().eval()
    snap = _snapshot(bn)
    mean, var, x = _rand(3), np.abs(_rand(3, seed=1)) + 0.5, _rand(4, 3, seed=2)
    out = functional_call(bn, {"running_mean": _t(mean), "running_var": _t(var)}, _t(x))
    np.testing.assert_allclose(out.numpy(), (x - mean) / np.sqrt(var + bn.eps), rtol=1e-12)
    _assert_unchanged(bn, snap)


def test_substituted_buffers_take_training_updates_instead_of_the_module():
    bn = nn.BatchNorm1d(3).double()
    snap = _snapshot(bn)
    mean, var = _t(np.zeros(3)), _t(np.ones(3))
    x = _rand(6, 3)
    functional_call(bn, {"running_mean": mean, "running_var": var, "num_batches_tracked": nx.tensor(0)}, _t(x))
    np.testing.assert_allclose(mean.numpy(), 0.1 * x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(var.numpy(), 0.9 + 0.1 * x.var(0, ddof=1), rtol=1e-12)
    _assert_unchanged(bn, snap)


def test_args_as_one_tuple_and_kwargs():
    model = Pair()
    a, b, s = _rand(2), _rand(2, seed=1), _rand(2, seed=2)
    want = a * s + b + 0.5
    params = {"scale": _t(s)}
    for got in (functional_call(model, params, _t(a), _t(b), shift=0.5),
                functional_call(model, params, (_t(a), _t(b)), shift=0.5)):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    np.testing.assert_array_equal(functional_call(_mlp(), {}, (_t(_rand(3, 2)),)).numpy(),
                                  _mlp()(_t(_rand(3, 2))).numpy())


# -- second-order MAML through functional_call ------------------------------------------------------


def _task():
    rng = np.random.default_rng(42)
    xs, xq = rng.standard_normal((5, 2)), rng.standard_normal((4, 2))
    return _t(xs), _t(np.sin(xs[:, :1])), _t(xq), _t(np.sin(xq[:, :1]))


def _adapt(model, names, theta, steps, create_graph, lr=0.4):
    xs, ys, _, _ = _task()
    fast = list(theta)
    for _ in range(steps):
        loss = F.mse_loss(functional_call(model, dict(zip(names, fast)), xs), ys)
        grads = grad(loss, fast, create_graph=create_graph)
        fast = [p - lr * g for p, g in zip(fast, grads)]
    return fast


def _query_loss(model, names, fast):
    _, _, xq, yq = _task()
    return F.mse_loss(functional_call(model, dict(zip(names, fast)), xq), yq)


def _flat(tensors):
    return np.concatenate([t.numpy().ravel() for t in tensors])


def _finite_difference(f, values, eps=1e-6):
    """Central differences of ``f(list of arrays) -> float`` over every element of ``values``."""
    flat = np.concatenate([v.ravel() for v in values])
    cuts = np.cumsum([v.size for v in values])[:-1]
    out = np.empty_like(flat)
    for i in range(flat.size):
        d = np.zeros_like(flat)
        d[i] = eps
        plus, minus = (f([a.reshape(v.shape) for a, v in zip(np.split(flat + s, cuts), values)]) for s in (d, -d))
        out[i] = (plus - minus) / (2 * eps)
    return out


def _setup():
    model = _mlp()
    names = [n for n, _ in model.named_parameters()]
    values = [p.numpy().copy() for p in model.parameters()]
    return model, names, values, [_t(v, requires_grad=True) for v in values]


@pytest.mark.parametrize("steps", [1, 2])
def test_maml_meta_gradient_matches_finite_differences(steps):
    model, names, values, theta = _setup()
    snap = _snapshot(model)
    meta_grad = _flat(grad(_query_loss(model, names, _adapt(model, names, theta, steps, True)), theta))

    def meta_loss(arrays):
        theta = [_t(a, requires_grad=True) for a in arrays]
        return _query_loss(model, names, _adapt(model, names, theta, steps, True)).item()

    want = _finite_difference(meta_loss, values)
    np.testing.assert_allclose(meta_grad, want, rtol=1e-6, atol=1e-9)

    adapted = [f.detach().requires_grad_() for f in _adapt(model, names, theta, steps, False)]
    first_order = _flat(grad(_query_loss(model, names, adapted), adapted))
    assert np.abs(first_order - want).max() > 100 * np.abs(meta_grad - want).max()
    _assert_unchanged(model, snap)


@pytest.mark.parametrize("steps", [1, 2])
def test_first_order_maml_gradient_is_the_query_gradient_at_the_adapted_params(steps):
    model, names, _, theta = _setup()
    fast = _adapt(model, names, theta, steps, False)
    adapted = [f.numpy().copy() for f in fast]
    got = _flat(grad(_query_loss(model, names, fast), theta))
    want = _finite_difference(lambda arrays: _query_loss(model, names, [_t(a) for a in arrays]).item(), adapted)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("strict", [True, False])
def test_strict_needs_every_parameter(strict):
    model = _mlp()
    snap = _snapshot(model)
    some = {"0.weight": _t(_rand(3, 2)), "0.bias": _t(_rand(3))}
    if strict:
        with pytest.raises(RuntimeError, match=r"functional_call: strict, .*2\.weight"):
            functional_call(model, some, _t(_rand(4, 2)), strict=True)
    else:
        assert functional_call(model, some, _t(_rand(4, 2)), strict=False).shape == (4, 1)
    _assert_unchanged(model, snap)
