import collections
import copy

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn, optim
from neurenix.testing import reference

TOL = dict(rtol=1e-10, atol=1e-12)
SHAPES = [(3, 2), (2,)]


def _arrays(shapes=SHAPES, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


def _grads(steps, shapes=SHAPES, seed=1):
    return [_arrays(shapes, seed + i) for i in range(steps)]


def _params(arrays):
    return [nx.tensor(a.copy(), dtype=nx.float64, requires_grad=True) for a in arrays]


def _step_with(opt, params, grads):
    for p, g in zip(params, grads):
        p.grad = None if g is None else nx.tensor(g, dtype=nx.float64)
    opt.step()


def _run(make, init, grads_per_step):
    params = _params(init)
    opt = make(params)
    for grads in grads_per_step:
        _step_with(opt, params, grads)
    return [p.numpy() for p in params]


def _neg(grads_per_step):
    return [[-g for g in gs] for gs in grads_per_step]


SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.8, dampening=0.3),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, weight_decay=0.05),
    dict(lr=0.05, momentum=0.7, dampening=0.1, weight_decay=0.02),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01, maximize=True),
    dict(lr=0.1, maximize=True),
]

ADAM_CONFIGS = [
    dict(lr=0.01),
    dict(lr=0.05, betas=(0.8, 0.95), eps=1e-6),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, betas=(0.5, 0.9), weight_decay=0.05, maximize=True),
]


def _ref_sgd(init, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    return reference.sgd(init, _neg(grads) if maximize else grads, lr, momentum, dampening, weight_decay, nesterov)


def _ref_adam(init, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False, decoupled=False):
    return reference.adam(init, _neg(grads) if maximize else grads, lr, betas[0], betas[1], eps, weight_decay,
                          decoupled)


def _ref_adamw(init, grads, **cfg):
    return _ref_adam(init, grads, **{"weight_decay": 1e-2, **cfg}, decoupled=True)


REFERENCE_CASES = (
    [(optim.SGD, _ref_sgd, cfg) for cfg in SGD_CONFIGS]
    + [(optim.Adam, _ref_adam, cfg) for cfg in ADAM_CONFIGS]
    + [(optim.AdamW, _ref_adamw, cfg) for cfg in [*ADAM_CONFIGS, dict(lr=0.02, weight_decay=0.5)]]
)


@pytest.mark.parametrize(("cls", "ref", "cfg"), REFERENCE_CASES,
                         ids=[f"{cls.__name__}-{cfg}" for cls, _, cfg in REFERENCE_CASES])
def test_matches_the_published_update_rule(cls, ref, cfg):
    init, grads = _arrays(), _grads(6)
    got = _run(lambda ps: cls(ps, **cfg), init, grads)
    for g, w in zip(got, ref(init, grads, **cfg)):
        np.testing.assert_allclose(g, w, **TOL)


def test_adam_and_adamw_differ_only_with_weight_decay():
    init, grads = _arrays(), _grads(3)
    adam = _run(lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.1), init, grads)
    adamw = _run(lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1), init, grads)
    assert not np.allclose(adam[0], adamw[0])
    adamw0 = _run(lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.0), init, grads)
    np.testing.assert_allclose(adamw0[0], _run(lambda ps: optim.Adam(ps, lr=0.01), init, grads)[0], **TOL)


def test_defaults_follow_pytorch():
    p = _params(_arrays())
    assert optim.SGD(p).defaults == dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                                         maximize=False)
    assert optim.Adam(p).defaults == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                                          maximize=False)
    assert optim.AdamW(p).defaults["weight_decay"] == 1e-2


def test_gradients_from_backward():
    init = _arrays()
    params = _params(init)
    opt = optim.SGD(params, lr=0.1, momentum=0.5)
    for _ in range(3):
        opt.zero_grad()
        ((params[0] ** 2).sum() + (params[1] ** 3).sum()).backward()
        opt.step()
    w, b = init
    buf_w = buf_b = None
    for _ in range(3):
        gw, gb = 2 * w, 3 * b ** 2
        buf_w = gw if buf_w is None else 0.5 * buf_w + gw
        buf_b = gb if buf_b is None else 0.5 * buf_b + gb
        w, b = w - 0.1 * buf_w, b - 0.1 * buf_b
    np.testing.assert_allclose(params[0].numpy(), w, **TOL)
    np.testing.assert_allclose(params[1].numpy(), b, **TOL)


# -- parameter groups -------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW])
def test_param_groups_with_own_hyper_parameters(cls):
    init, grads = _arrays(), _grads(4)
    params = _params(init)
    opt = cls([{"params": [params[0]], "lr": 0.2}, {"params": params[1:]}], lr=0.01)
    assert [g["lr"] for g in opt.param_groups] == [0.2, 0.01]
    for gs in grads:
        _step_with(opt, params, gs)
    for i, lr in enumerate([0.2, 0.01]):
        one = [[gs[i]] for gs in grads]
        if cls is optim.SGD:
            want = reference.sgd([init[i]], one, lr)
        else:
            want = reference.adam([init[i]], one, lr, weight_decay=0.01 if cls is optim.AdamW else 0.0,
                                  decoupled=cls is optim.AdamW)
        np.testing.assert_allclose(params[i].numpy(), want[0], **TOL)


def test_add_param_group_and_changing_lr():
    init, grads = _arrays(), _grads(2)
    params = _params(init)
    opt = optim.SGD(params[:1], lr=0.1)
    opt.add_param_group({"params": params[1], "lr": 0.3})
    _step_with(opt, params, grads[0])
    for g in opt.param_groups:
        g["lr"] *= 0.5
    _step_with(opt, params, grads[1])
    for i, lr in enumerate([0.1, 0.3]):
        want = init[i] - lr * grads[0][i] - lr / 2 * grads[1][i]
        np.testing.assert_allclose(params[i].numpy(), want, **TOL)


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam])
def test_params_without_grad_are_skipped(cls):
    init, grads = _arrays(), _grads(5)
    params = _params(init)
    opt = cls(params, lr=0.1, **({"momentum": 0.9} if cls is optim.SGD else {}))
    for t, gs in enumerate(grads):
        _step_with(opt, params, [gs[0], gs[1] if t >= 2 else None])
        if t < 2:
            np.testing.assert_array_equal(params[1].numpy(), init[1])
            assert params[1] not in opt.state
    late = [[gs[1]] for gs in grads[2:]]
    if cls is optim.SGD:
        want = reference.sgd([init[1]], late, 0.1, momentum=0.9)
    else:
        want = reference.adam([init[1]], late, 0.1)
    np.testing.assert_allclose(params[1].numpy(), want[0], **TOL)


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    params = _params(_arrays())
    opt = optim.SGD(params, lr=0.1)
    params[0].grad = nx.tensor(np.full((3, 2), np.nan))
    params[1].grad = nx.ones(2, dtype=nx.float64)
    opt.zero_grad(set_to_none=set_to_none)
    for p in params:
        if set_to_none:
            assert p.grad is None
        else:
            np.testing.assert_array_equal(p.grad.numpy(), np.zeros(p.shape))
    before = [p.numpy().copy() for p in params]
    opt.step()
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.numpy(), b)


def test_step_with_closure_returns_the_loss():
    params = _params(_arrays())
    opt = optim.SGD(params, lr=0.1)
    calls = []

    def closure():
        opt.zero_grad()
        loss = (params[0] ** 2).sum()
        loss.backward()
        calls.append(loss.item())
        return loss

    w = params[0].numpy().copy()
    with nx.no_grad():
        loss = opt.step(closure)
    assert calls == [loss.item()] and loss.item() == pytest.approx((w ** 2).sum(), rel=1e-12)
    np.testing.assert_allclose(params[0].numpy(), w - 0.1 * 2 * w, **TOL)
    np.testing.assert_array_equal(params[1].numpy(), _arrays()[1])
    assert opt.step() is None


# -- state_dict -------------------------------------------------------------------------------------

STATEFUL = {
    "sgd_momentum": lambda ps, lr: optim.SGD(ps, lr=lr, momentum=0.9, nesterov=True),
    "adam": lambda ps, lr: optim.Adam(ps, lr=lr, betas=(0.8, 0.9)),
    "adamw": lambda ps, lr: optim.AdamW(ps, lr=lr, weight_decay=0.1),
}


@pytest.mark.parametrize("name", STATEFUL)
def test_state_dict_round_trip_continues_identically(name):
    make = STATEFUL[name]
    init, grads = _arrays(), _grads(6)
    a = _params(init)
    opt_a = make(a, 0.05)
    for gs in grads[:3]:
        _step_with(opt_a, a, gs)
    sd = opt_a.state_dict()
    saved = copy.deepcopy({k: {kk: vv.numpy().copy() if isinstance(vv, nx.Tensor) else vv for kk, vv in v.items()}
                           for k, v in sd["state"].items()})
    b = _params([p.numpy() for p in a])
    opt_b = make(b, 123.0)
    opt_b.load_state_dict(sd)
    assert opt_b.param_groups[0]["lr"] == 0.05
    for gs in grads[3:]:
        _step_with(opt_a, a, gs)
        _step_with(opt_b, b, gs)
    for pa, pb in zip(a, b):
        np.testing.assert_array_equal(pa.numpy(), pb.numpy())
    for i, st in saved.items():
        for k, v in st.items():
            got = sd["state"][i][k]
            np.testing.assert_array_equal(got.numpy() if isinstance(got, nx.Tensor) else got, v)


def test_state_dict_layout():
    params = _params(_arrays())
    opt = optim.Adam([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.1}])
    params[0].grad = nx.ones(3, 2, dtype=nx.float64)
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert [g["lr"] for g in sd["param_groups"]] == [1e-3, 0.1]
    assert list(sd["state"]) == [0] and set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert sd["state"][0]["step"] == 1


def test_load_state_dict_rejects_other_layouts():
    params = _params(_arrays())
    sd = optim.SGD(params, lr=0.1).state_dict()
    with pytest.raises(ValueError, match="parameter groups"):
        optim.SGD(params[:1], lr=0.1).load_state_dict(sd)


# -- invalid arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize("cls,kw", [
    (optim.SGD, dict(lr=-0.1)), (optim.SGD, dict(momentum=-0.5)), (optim.SGD, dict(weight_decay=-1e-3)),
    (optim.SGD, dict(nesterov=True)), (optim.SGD, dict(nesterov=True, momentum=0.9, dampening=0.1)),
    (optim.Adam, dict(lr=-1e-3)), (optim.Adam, dict(eps=-1e-8)), (optim.Adam, dict(weight_decay=-0.1)),
    (optim.Adam, dict(betas=(1.0, 0.999))), (optim.Adam, dict(betas=(0.9, -0.1))),
    (optim.AdamW, dict(betas=(0.9, 1.5))),
], ids=str)
def test_invalid_hyper_parameters(cls, kw):
    with pytest.raises(ValueError, match="(?i)" + next(iter(kw)).split("_")[0]):
        cls(_params(_arrays()), **kw)


def test_bad_params():
    p = nx.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match="does not require grad"):
        optim.SGD([p, nx.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([], lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        optim.Adam(iter([]), lr=0.1)
    with pytest.raises(ValueError, match="more than one"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="more than one"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(TypeError, match="item 1"):
        optim.SGD([p, np.ones(2)], lr=0.1)


def test_unknown_group_keys_are_kept_as_in_pytorch():
    p = nx.ones(2, requires_grad=True)
    opt = optim.SGD([{"params": [p], "name": "head", "initial_lr": 0.5}], lr=0.1)
    assert opt.param_groups[0]["name"] == "head" and opt.param_groups[0]["initial_lr"] == 0.5
    assert opt.state_dict()["param_groups"][0]["name"] == "head"


def test_state_is_a_defaultdict_of_dicts():
    p = nx.ones(2, requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    assert isinstance(opt.state, collections.defaultdict) and opt.state[p] == {}
    p.grad = nx.ones(2)
    opt.step()
    assert opt.state[p]["step"] == 1


def test_a_single_tensor_is_not_a_parameter_list():
    with pytest.raises(TypeError, match="iterable"):
        optim.SGD(nx.ones(3, 2, requires_grad=True), lr=0.1)


def test_accepts_module_parameters_generator():
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    assert list(map(id, opt.param_groups[0]["params"])) == list(map(id, model.parameters()))


# -- convergence ------------------------------------------------------------------------------------


@pytest.mark.parametrize("make,steps", [
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), 150),
    (lambda ps: optim.Adam(ps, lr=0.1), 300),
    (lambda ps: optim.AdamW(ps, lr=0.1, weight_decay=1e-4), 300),
], ids=["sgd", "adam", "adamw"])
def test_fits_a_line(make, steps):
    nx.manual_seed(0)
    x = nx.linspace(-1, 1, 32).reshape(32, 1)
    y = 3 * x - 2
    model = nn.Linear(1, 1)
    opt = make(model.parameters())
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < 1e-4
    assert model.weight.item() == pytest.approx(3, abs=0.02) and model.bias.item() == pytest.approx(-2, abs=0.02)
