"""Shared helpers: small float64 models, tasks, and references written without neurenix.meta."""

import copy
import itertools

import numpy as np

import neurenix as nx
from neurenix import nn
from neurenix.nn import functional as F


def mlp(seed=0, sizes=(1, 6, 6, 1)):
    """A small tanh MLP in float64 (smooth, so finite differences are exact to ~1e-9)."""
    nx.manual_seed(seed)
    layers = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.Tanh()]
    return nn.Sequential(*layers[:-1]).double()


def sine_tasks(n=4, rows=10, seed=1):
    from neurenix.meta import generate_regression_tasks
    return generate_regression_tasks(n, 2 * rows, seed=seed, dtype=nx.float64)


def class_tasks(n=3, ways=3, per_class=4, dim=5, seed=2, int_labels=False):
    from neurenix.meta import generate_classification_tasks
    tasks = generate_classification_tasks(n, ways, per_class, dim, seed=seed, dtype=nx.float64)
    if int_labels:
        tasks = [(sx, sy.argmax(dim=1), qx, qy.argmax(dim=1)) for sx, sy, qx, qy in tasks]
    return tasks


def ce(pred, y):
    """Cross-entropy with one-hot or index labels (the meta-learners' default for labels)."""
    return F.cross_entropy(pred, y.argmax(dim=1) if y.ndim == 2 else y)


def sgd_adapt(model, x, y, steps, lr, loss=F.mse_loss):
    """A plain training loop on a copy of ``model``: the independent reference for inner loops."""
    m = copy.deepcopy(model)
    for _ in range(steps):
        for p in m.parameters():
            p.grad = None
        loss(m(x), y).backward()
        with nx.no_grad():
            for p in m.parameters():
                p.sub_(lr * p.grad)
    for p in m.parameters():
        p.grad = None
    return m


def grads(module):
    return [p.grad.numpy().copy() for p in module.parameters()]


def meta_grad(learner, tasks, **kw):
    """The meta-gradient of ``tasks`` (each parameter's .grad after backward of meta_loss), as arrays."""
    learner.zero_grad()
    learner.meta_loss(tasks, **kw).backward()
    return grads(learner)


def finite_difference(f, params, eps=1e-6):
    """Central differences of the scalar f() with respect to every element of ``params`` (float64)."""
    out = []
    for p in params:
        g = np.zeros(p.shape)
        base = p.numpy().copy()
        for i in np.ndindex(*p.shape):
            for sign in (1, -1):
                v = base.copy()
                v[i] += sign * eps
                with nx.no_grad():
                    p.copy_(nx.tensor(v))
                g[i] += sign * f() / (2 * eps)
        with nx.no_grad():
            p.copy_(nx.tensor(base))
        out.append(g)
    return out


def snapshot(tasks):
    return [[(t, t.numpy().copy()) for t in task] for task in tasks]


def assert_unchanged(tasks, snap):
    for task, saved in zip(tasks, snap):
        for t, (t0, v) in zip(task, saved):
            assert t is t0
            np.testing.assert_array_equal(t.numpy(), v)


def conv_bn(seed=0, classes=3):
    """A tiny Conv + BatchNorm + tanh network in float64 for 1x5x5 images (smooth: exact finite differences)."""
    nx.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Tanh(), nn.Flatten(),
                         nn.Linear(18, classes)).double()


def image_tasks(n=3, ways=3, shots=2, queries=2, seed=3):
    """Few-shot tasks of 1x5x5 float64 images, int64 labels: a class is a noisy random template."""
    g = np.random.default_rng(seed)
    tasks = []
    for _ in range(n):
        templates = g.normal(size=(ways, 1, 5, 5))
        task = []
        for k in (shots, queries):
            y = np.repeat(np.arange(ways), k)
            task += [nx.tensor(templates[y] + 0.5 * g.normal(size=(len(y), 1, 5, 5)), dtype=nx.float64),
                     nx.tensor(y, dtype=nx.int64)]
        tasks.append(tuple(task))
    return tasks


def assert_close_lists(actual, expected, rtol=1e-6, atol=1e-8):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


# -- running on a chosen CPU backend (in a subprocess: the backend registry is process-wide) ------------
BACKENDS = ["cpu", "cpu-c"]  # core's NumPy kernels alone, and neurenix-backend-cpu's C kernels over them
_ON = """
import sys
import neurenix as nx
if {numpy_only!r}:  # core's NumPy kernels: take the C backend out if it is installed
    try:
        from neurenix_backend_cpu import plugin
    except ImportError:
        pass
    else:
        nx.backend.unregister(plugin)
assert ("cpu-c" in nx.Device("cpu").kernels.providers.values()) == {c_kernels!r}
"""


def python_on(backend):
    """argv that runs ``python -c CODE ARGS...`` with ``backend``'s kernels for device cpu: prepend it to
    [code, *args]. Skips when cpu-c is asked for and not installed (unless NEURENIX_REQUIRE_BACKENDS names it)."""
    import os
    import sys

    import pytest

    if backend == "cpu-c" and not any(s.name == "cpu-c" and s.available for s in nx.list_backends()):
        if "cpu-c" in os.environ.get("NEURENIX_REQUIRE_BACKENDS", ""):
            pytest.fail("NEURENIX_REQUIRE_BACKENDS names cpu-c, but it is not installed or cannot run")
        pytest.skip("neurenix-backend-cpu (cpu-c) is not installed")
    prelude = _ON.format(numpy_only=backend == "cpu", c_kernels=backend == "cpu-c")

    def argv(code, *args):
        return [sys.executable, "-c", prelude + code, *map(str, args)]
    return argv


CLI = "from neurenix.meta.cli import main\nsys.exit(main(sys.argv[1:]))\n"
