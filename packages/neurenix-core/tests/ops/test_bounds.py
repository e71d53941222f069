"""Index bounds (ops/bounds.py): out-of-range indices raise IndexError, at once on cpu, at the next
synchronisation on other devices (here a device type with core's NumPy kernels, registered at run time)."""

import numpy as np
import pytest

import neurenix as nx
from neurenix.backend import Backend, hookimpl, numpy_backend

F = nx.nn.functional


def _unchecked(kernel):
    """``kernel`` as a GPU runs it: an index out of range reads (or writes) somewhere else, without an error."""
    def run(x, key, *args):
        try:
            return kernel(x, key, *args)
        except IndexError:
            key = tuple(np.zeros_like(k) if isinstance(k, np.ndarray) else k for k in key)
            return kernel(x, key, *args)
    return run


class HostlessBackend(Backend):
    device_type, name = "deferred", "deferred-numpy"

    def kernels(self):
        k = dict(numpy_backend.KERNELS)
        k["getitem"], k["index_put"] = _unchecked(k["getitem"]), _unchecked(k["index_put"])
        return k


class Plugin:
    @hookimpl
    def neurenix_backends(self):
        return [HostlessBackend()]


@pytest.fixture(scope="module", params=["cpu", "deferred"])
def device(request):
    if request.param == "cpu":
        yield nx.Device("cpu")
        return
    plugin = Plugin()
    nx.backend.register(plugin, "test-deferred-indices")
    yield nx.Device("deferred")
    nx.backend.unregister(plugin)


BAD = {
    "getitem": (lambda d: nx.arange(3.0, device=d)[nx.tensor([0, 3], device=d)], "indexing axis 0 of size 3: index 3"),
    "getitem_negative": (lambda d: nx.arange(3.0, device=d)[nx.tensor([-4], device=d)], "index -4"),
    "getitem_0d": (lambda d: nx.arange(6.0, device=d).reshape(2, 3)[:, nx.tensor([[5]], device=d)], "index 5"),
    "setitem": (lambda d: nx.zeros(3, device=d).__setitem__(nx.tensor([7], device=d), 1.0), "index 7"),
    "index_put": (lambda d: nx.zeros(3, device=d).index_put((nx.tensor([3], device=d),), nx.tensor(1.0, device=d)),
                  "index 3"),
    "gather": (lambda d: nx.zeros(2, 3, device=d).gather(1, nx.tensor([[0], [3]], device=d)), "gather along dim 1"),
    "gather_negative": (lambda d: nx.zeros(3, device=d).gather(0, nx.tensor([-1], device=d)), "index -1"),
    "cross_entropy": (lambda d: F.cross_entropy(nx.zeros(2, 3, device=d), nx.tensor([0, 3], device=d)),
                      "3 classes: index 3"),
    "cross_entropy_negative": (lambda d: F.cross_entropy(nx.zeros(2, 3, device=d), nx.tensor([-1, 0], device=d)),
                               "index -1"),
    "nll_loss": (lambda d: F.nll_loss(nx.zeros(2, 3, device=d), nx.tensor([0, 9], device=d)), "index 9"),
    "one_hot": (lambda d: F.one_hot(nx.tensor([4], device=d), 3), "index 4"),
}


@pytest.mark.parametrize("case", BAD)
def test_out_of_range_raises_at_once_or_at_the_next_synchronisation(case, device):
    fn, message = BAD[case]
    with pytest.raises(IndexError, match=message):
        out = fn(device)
        assert device.type != "cpu", "cpu checks at once"
        (out if out is not None else nx.zeros(1, device=device)).numpy()
    assert not device.checks  # reported once, then cleared
    nx.zeros(1, device=device).numpy()


@pytest.mark.parametrize("sync", ["numpy", "item", "tolist", "synchronize", "to_cpu", "repr"])
def test_every_synchronisation_reports(sync):
    plugin = Plugin()
    nx.backend.register(plugin, "test-deferred-sync")
    try:
        d = nx.Device("deferred")
        nx.arange(3.0, device=d)[nx.tensor([5], device=d)]
        t = nx.zeros((), device=d)
        action = {"numpy": t.numpy, "item": t.item, "tolist": t.tolist, "synchronize": lambda: nx.synchronize(d),
                  "to_cpu": lambda: t.to("cpu"), "repr": lambda: repr(t)}[sync]
        with pytest.raises(IndexError, match="index 5"):
            action()
        action()  # reported once
    finally:
        nx.backend.unregister(plugin)


def test_in_range_indices_agree_with_numpy(device):
    a = np.arange(12.0).reshape(3, 4)
    x = nx.tensor(a, device=device)
    idx = np.array([[2, -1], [0, 1]])
    np.testing.assert_array_equal(x[nx.tensor(idx, device=device)].numpy(), a[idx])
    np.testing.assert_array_equal(x.gather(1, nx.tensor([[3], [0], [1]], device=device)).numpy(), [[3.0], [4.0], [9.0]])
    empty = x[nx.tensor(np.zeros(0, np.int64), device=device)]
    assert empty.shape == (0, 4)
    assert not device.checks or device.type != "cpu"
    nx.synchronize(device)  # nothing to report


def test_index_must_be_int64():
    with pytest.raises(IndexError, match="int64"):
        nx.zeros(3).gather(0, nx.tensor([0.0]))
    with pytest.raises(IndexError, match="int64 or bool"):
        nx.zeros(3)[nx.tensor([0.5])]


class CheckingBackend(Backend):
    """A non-host device whose kernels check indices themselves (NumPy's raise): reported once, at the op."""

    device_type, name = "selfchecked", "selfchecked-numpy"

    def kernels(self):
        return numpy_backend.KERNELS


class CheckingPlugin:
    @hookimpl
    def neurenix_backends(self):
        return [CheckingBackend()]


@pytest.mark.parametrize("case", ["getitem", "setitem", "index_put", "gather"])
def test_a_kernel_that_checks_itself_reports_once(case):
    plugin = CheckingPlugin()
    nx.backend.register(plugin, "test-selfchecked")
    try:
        d = nx.Device("selfchecked")
        with pytest.raises(IndexError):
            BAD[case][0](d)
        assert not d.checks  # nothing left to report a second time at the next read
        nx.zeros(1, device=d).numpy()
    finally:
        nx.backend.unregister(plugin)
