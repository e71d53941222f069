"""The graph keeps alive only what backward needs: edges go to nodes, not to the tensors themselves."""

import gc
import weakref

import numpy as np
import pytest

import neurenix as nx


def _alive_after(build):
    gc.disable()  # freed by reference counting, as soon as dropped: not left for the garbage collector
    try:
        kept = []
        out = build(kept)
        return out, [r() is not None for r in kept]
    finally:
        gc.enable()


def test_an_intermediate_no_vjp_saves_is_freed():
    x = nx.tensor(np.arange(4.0), requires_grad=True)

    def build(kept):
        a = x * 3.0  # sub saves nothing: a is needed by no backward
        kept.append(weakref.ref(a))
        b = a - 2.0
        r = b.relu()  # relu saves its input b
        kept.append(weakref.ref(b))
        return r.sum()

    out, alive = _alive_after(build)
    assert alive == [False, True]
    out.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 3.0, 3.0, 3.0])


@pytest.mark.parametrize("op", ["exp", "sqrt", "tanh", "sigmoid", "softmax", "log_softmax", "div"])
def test_a_vjp_that_reads_its_dropped_output_still_gives_second_order(op):
    """exp's gradient reads exp's output: dropped by the program, it is rebuilt from the kept buffer, on the
    same node, so gradients of gradients still flow through it."""
    fns = {"exp": lambda t: t.exp(), "sqrt": lambda t: t.sqrt(), "tanh": lambda t: t.tanh(),
           "sigmoid": lambda t: t.sigmoid(), "softmax": lambda t: nx.softmax(t, 0),
           "log_softmax": lambda t: nx.log_softmax(t, 0), "div": lambda t: 1.0 / t}
    f = fns[op]
    x0 = np.array([0.3, 0.7, 1.1])

    def second(drop):
        x = nx.tensor(x0, dtype=nx.float64, requires_grad=True)
        y = f(x * 1.5)
        loss = y.sum()  # sum saves nothing: once dropped, y lives on only in its node's buffer
        holder = [] if drop else [y]
        del y
        (g,) = nx.autograd.grad(loss, [x], create_graph=True)
        (h,) = nx.autograd.grad((g * g).sum(), [x])
        return g.detach().numpy(), h.numpy(), len(holder)

    dropped, held = second(True), second(False)
    for a, b in zip(dropped[:2], held[:2]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
