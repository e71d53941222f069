"""RMSprop, Adagrad, Adadelta and AMSGrad against their published update rules (written here in NumPy,
float64), state dicts, and argument checks."""

import numpy as np
import pytest

import neurenix as nx
from neurenix import optim

TOL = dict(rtol=1e-10, atol=1e-12)


def _ref_rmsprop(p, grads, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    v, gavg, buf = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for g in grads:
        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        if centered:
            gavg = alpha * gavg + (1 - alpha) * g
            avg = np.sqrt(v - gavg ** 2) + eps
        else:
            avg = np.sqrt(v) + eps
        if momentum:
            buf = momentum * buf + g / avg
            p = p - lr * buf
        else:
            p = p - lr * g / avg
    return p


def _ref_adagrad(p, grads, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    total = np.full_like(p, initial_accumulator_value)
    for t, g in enumerate(grads, 1):
        g = g + weight_decay * p
        total = total + g * g
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(total) + eps)
    return p


def _ref_adadelta(p, grads, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
    v, u = np.zeros_like(p), np.zeros_like(p)
    for g in grads:
        g = g + weight_decay * p
        v = rho * v + (1 - rho) * g * g
        d = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * d * d
        p = p - lr * d
    return p


def _ref_amsgrad(p, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    (b1, b2), m, v, vmax = betas, np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        p = p - lr / (1 - b1 ** t) * m / (np.sqrt(vmax) / np.sqrt(1 - b2 ** t) + eps)
    return p


CASES = [
    (optim.RMSprop, _ref_rmsprop, dict()),
    (optim.RMSprop, _ref_rmsprop, dict(lr=0.05, alpha=0.9, momentum=0.8)),
    (optim.RMSprop, _ref_rmsprop, dict(lr=0.02, centered=True, weight_decay=0.1)),
    (optim.RMSprop, _ref_rmsprop, dict(lr=0.02, centered=True, momentum=0.5, eps=1e-4)),
    (optim.Adagrad, _ref_adagrad, dict()),
    (optim.Adagrad, _ref_adagrad, dict(lr=0.1, lr_decay=0.3, initial_accumulator_value=0.5)),
    (optim.Adagrad, _ref_adagrad, dict(lr=0.1, weight_decay=0.2, eps=1e-3)),
    (optim.Adadelta, _ref_adadelta, dict()),
    (optim.Adadelta, _ref_adadelta, dict(lr=0.5, rho=0.5, eps=1e-3, weight_decay=0.1)),
    (optim.Adam, _ref_amsgrad, dict(amsgrad=True)),
    (optim.Adam, _ref_amsgrad, dict(amsgrad=True, lr=0.05, betas=(0.5, 0.9), weight_decay=0.1)),
    (optim.AdamW, _ref_amsgrad, dict(amsgrad=True, lr=0.05, weight_decay=0.1)),
]


def _grads(steps, shape, seed):
    rng = np.random.default_rng(seed)
    # the sign flips now and then and the size changes, so AMSGrad's running maximum matters
    return [rng.standard_normal(shape) * (3.0 if i % 3 == 0 else 0.2) for i in range(steps)]


@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize(("cls", "ref", "cfg"), CASES, ids=[f"{c.__name__}-{cfg}" for c, _, cfg in CASES])
def test_matches_the_published_update_rule(cls, ref, cfg, maximize):
    init = np.random.default_rng(0).standard_normal((3, 2))
    grads = _grads(7, init.shape, 1)
    p = nx.tensor(init.copy(), dtype=nx.float64, requires_grad=True)
    opt = cls([p], **cfg, maximize=maximize)
    for g in grads:
        p.grad = nx.tensor(g, dtype=nx.float64)
        opt.step()
    hyper = {k: v for k, v in cfg.items() if k != "amsgrad"}
    if cls is optim.AdamW:
        hyper = dict(decoupled=True, **{"weight_decay": 1e-2, **hyper})
    want = ref(init, [-g if maximize else g for g in grads], **hyper)
    np.testing.assert_allclose(p.numpy(), want, **TOL)


@pytest.mark.parametrize(("cls", "cfg"), [(optim.RMSprop, dict(momentum=0.9, centered=True)),
                                          (optim.Adagrad, dict(lr_decay=0.1)), (optim.Adadelta, {}),
                                          (optim.Adam, dict(amsgrad=True))])
def test_state_dict_round_trip_continues_the_same_trajectory(cls, cfg):
    def make():
        return nx.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=nx.float64, requires_grad=True)

    grads = _grads(6, (2, 2), 5)
    a = make()
    opt_a = cls([a], **cfg)
    for g in grads[:3]:
        a.grad = nx.tensor(g, dtype=nx.float64)
        opt_a.step()
    b = nx.tensor(a.numpy().copy(), dtype=nx.float64, requires_grad=True)
    opt_b = cls([b], **cfg)
    opt_b.load_state_dict(opt_a.state_dict())
    assert opt_b.state[b]["step"] == 3
    for g in grads[3:]:
        for p, opt in ((a, opt_a), (b, opt_b)):
            p.grad = nx.tensor(g, dtype=nx.float64)
            opt.step()
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_adagrad_state_exists_from_construction():
    p = nx.ones(2, requires_grad=True)
    opt = optim.Adagrad([p], initial_accumulator_value=0.25)
    assert opt.state[p]["step"] == 0 and opt.state[p]["sum"].numpy().tolist() == [0.25, 0.25]
    assert list(opt.state_dict()["state"]) == [0]


def test_parameters_without_gradients_are_left_alone():
    p, q = nx.ones(2, requires_grad=True), nx.ones(2, requires_grad=True)
    opt = optim.RMSprop([p, q], lr=0.1)
    p.grad = nx.ones(2)
    opt.step()
    assert q.numpy().tolist() == [1.0, 1.0] and q not in opt.state


@pytest.mark.parametrize(("make", "match"), [
    (lambda ps: optim.RMSprop(ps, lr=-1.0), "lr"),
    (lambda ps: optim.RMSprop(ps, alpha=-0.1), "alpha"),
    (lambda ps: optim.RMSprop(ps, momentum=-0.1), "momentum"),
    (lambda ps: optim.Adagrad(ps, lr_decay=-1.0), "lr_decay"),
    (lambda ps: optim.Adagrad(ps, initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (lambda ps: optim.Adadelta(ps, rho=1.5), "rho"),
    (lambda ps: optim.Adadelta(ps, eps=-1.0), "eps"),
])
def test_bad_hyper_parameters_name_themselves(make, match):
    with pytest.raises(ValueError, match=match):
        make([nx.ones(2, requires_grad=True)])


def test_amsgrad_must_be_a_bool():
    with pytest.raises(TypeError, match="amsgrad"):
        optim.Adam([nx.ones(2, requires_grad=True)], amsgrad="yes")
