"""neurenix.nn.utils.stateless: tensors put into parameter/buffer slots, and copies of a module's structure."""

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn
from neurenix.autograd import grad
from neurenix.func import functional_call
from neurenix.nn.utils import copy_structure, reparametrize_module, swap_tensor, swap_tensors_dict


class Tied(nn.Module):
    """Two layers sharing one weight tensor (``b.weight`` is ``a.weight``), a BatchNorm and a nested block."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 3)
        self.b = nn.Linear(3, 3)
        self.b.weight = self.a.weight
        self.block = nn.Sequential(nn.BatchNorm1d(3), nn.Linear(3, 2))

    def forward(self, x):
        return self.block(self.b(self.a(x)))


def _model():
    nx.manual_seed(0)
    return Tied().double()


def _t(*shape, seed=0, requires_grad=False):
    a = np.random.default_rng(seed).standard_normal(shape)
    return nx.tensor(a, dtype=nx.float64, requires_grad=requires_grad)


def _slots(module):
    """Every slot's tensor by name, ties and all (named_parameters lists a tied tensor once)."""
    out = {}
    for prefix, m in module.named_modules():
        for name, t in [*m.named_parameters(recurse=False), *m.named_buffers(recurse=False)]:
            out[f"{prefix}.{name}" if prefix else name] = t
    return out


@pytest.mark.parametrize("name", ["a.bias", "block.1.weight", "block.0.running_mean", "block.0.weight"])
def test_swap_tensor_puts_a_computed_tensor_in_a_nested_slot(name):
    model = _model()
    before = _slots(model)[name]
    w = _t(*before.shape, requires_grad=True)
    computed = w * 2.0  # non-leaf: not a Parameter
    assert swap_tensor(model, name, computed) is before
    assert _slots(model)[name] is computed
    if name != "block.0.running_mean":
        assert dict(model.named_parameters())[name] is computed
    model.train(name != "block.0.running_mean")
    (g,) = grad(model(_t(4, 3, seed=1)).sum(), [w])
    assert g is not None
    assert swap_tensor(model, name, before) is computed
    assert _slots(model)[name] is before


@pytest.mark.parametrize("name", ["nope", "a.nope", "a", "c.weight", "block.5.weight", "block.0.weight.x",
                                  "a.bias.data"])
def test_an_unknown_name_raises_runtime_error_naming_it(name):
    model = _model()
    with pytest.raises(RuntimeError, match="swap_tensor: '" + name.replace(".", r"\.")):
        swap_tensor(model, name, nx.zeros(3))


def test_swap_tensor_refuses_a_non_tensor():
    with pytest.raises(TypeError, match="'weight'"):
        swap_tensor(nn.Linear(2, 2), "weight", [[1.0, 2.0], [3.0, 4.0]])


@pytest.mark.parametrize("tie_weights", [True, False])
def test_tie_weights_replaces_every_slot_of_a_tied_tensor(tie_weights):
    model = _model()
    shared = model.a.weight
    new = _t(3, 3)
    old = swap_tensors_dict(model, {"a.weight": new}, tie_weights=tie_weights)
    assert model.a.weight is new
    assert (model.b.weight is new) is tie_weights
    assert old["a.weight"] is shared and ("b.weight" in old) is tie_weights


@pytest.mark.parametrize("given", ["a.weight", "b.weight"])
def test_functional_call_ties_by_default_as_pytorch(given):
    model = _model().eval()
    w, x = _t(3, 3, seed=2), _t(4, 3, seed=3)
    out = functional_call(model, {given: w}, x)
    with reparametrize_module(model, {"a.weight": w, "b.weight": w}):
        expect = model(x)
    np.testing.assert_allclose(out.numpy(), expect.numpy(), rtol=1e-12)
    assert model.a.weight is model.b.weight and isinstance(model.a.weight, nn.Parameter)


def test_tied_names_given_different_values_are_an_error_and_change_nothing():
    model = _model()
    before = _slots(model)
    with pytest.raises(ValueError, match=r"'a\.weight' and 'b\.weight' are tied"):
        swap_tensors_dict(model, {"a.weight": _t(3, 3), "b.weight": _t(3, 3, seed=1)}, tie_weights=True)
    assert all(_slots(model)[n] is t for n, t in before.items())


@pytest.mark.parametrize("bad", ["block.1.nope", "zz"])
def test_a_bad_name_among_good_ones_changes_nothing(bad):
    model = _model()
    before = _slots(model)
    with pytest.raises(RuntimeError, match="swap_tensors_dict: '" + bad.replace(".", r"\.")):
        swap_tensors_dict(model, {"a.weight": _t(3, 3), bad: _t(3)})
    with pytest.raises(RuntimeError, match="reparametrize_module: '" + bad.replace(".", r"\.")), \
            reparametrize_module(model, {bad: _t(3)}):
        pass
    assert all(_slots(model)[n] is t for n, t in before.items())


@pytest.mark.parametrize("tie_weights", [True, False])
def test_strict_requires_every_parameter_and_buffer(tie_weights):
    model = _model()
    everything = {n: t.clone() for n, t in _slots(model).items() if not (tie_weights and n == "b.weight")}
    partial = {n: t for n, t in everything.items() if n != "block.0.running_var"}
    with pytest.raises(RuntimeError, match=r"swap_tensors_dict: strict, .*\['block\.0\.running_var'\]"):
        swap_tensors_dict(model, partial, strict=True, tie_weights=tie_weights)
    before = _slots(model)
    with reparametrize_module(model, everything, strict=True, tie_weights=tie_weights):
        assert all(_slots(model)[n] is not t for n, t in before.items())
    assert all(_slots(model)[n] is t for n, t in before.items())


def test_reparametrize_module_restores_after_an_exception():
    model = _model()
    before = _slots(model)
    new = {"a.weight": _t(3, 3), "block.0.running_mean": _t(3)}
    with pytest.raises(RuntimeError, match="inside"), reparametrize_module(model, new, tie_weights=True):
        assert model.b.weight is model.a.weight and not isinstance(model.a.weight, nn.Parameter)
        raise RuntimeError("inside")
    assert all(_slots(model)[n] is t for n, t in before.items())


def test_a_submodule_reached_by_two_names_is_restored():
    lin = nn.Linear(2, 2)
    model = nn.Sequential(lin, nn.Tanh(), lin)
    own = lin.weight
    with reparametrize_module(model, {"0.weight": nx.zeros(2, 2), "2.weight": nx.ones(2, 2)}):
        np.testing.assert_array_equal(lin.weight.numpy(), np.ones((2, 2)))
    assert lin.weight is own


def test_copy_structure_copies_modules_and_keeps_ties():
    model = _model()
    seen = []
    copy = copy_structure(model, lambda p: seen.append(p) or p.clone())
    assert type(copy) is Tied and copy is not model and copy.block[1] is not model.block[1]
    assert copy.a.weight is copy.b.weight and copy.a.weight is not model.a.weight
    assert len(seen) == len({id(p) for p in model.parameters()}) == len(seen)
    assert copy.block[0].running_mean is model.block[0].running_mean  # buffers are shared
    assert [n for n, _ in copy.named_parameters()] == [n for n, _ in model.named_parameters()]
    assert list(copy.state_dict()) == list(model.state_dict())


@pytest.mark.parametrize("parameter_fn", [None, "clone"])
def test_copy_structure_leaves_the_original_and_passes_gradients(parameter_fn):
    model = _model().eval()
    fn = None if parameter_fn is None else (lambda p: p.clone())
    copy = copy_structure(model, fn)
    swap_tensor(copy, "block.1.bias", copy.block[1].bias * 0.0)
    assert isinstance(model.block[1].bias, nn.Parameter)
    (g,) = grad(copy(_t(4, 3)).sum(), [model.a.weight])
    assert g is not None
    assert (copy.a.weight is model.a.weight) is (parameter_fn is None)


def test_copy_structure_keeps_a_shared_submodule_shared():
    lin = nn.Linear(2, 2)
    copy = copy_structure(nn.Sequential(lin, nn.Tanh(), lin))
    assert copy[0] is copy[2] and copy[0] is not lin and copy[0].weight is lin.weight


@pytest.mark.parametrize("args", [(nx.zeros(2),), (nn.Linear(2, 2), 3)])
def test_copy_structure_checks_its_arguments(args):
    with pytest.raises(TypeError, match="Module|callable"):
        copy_structure(*args)
