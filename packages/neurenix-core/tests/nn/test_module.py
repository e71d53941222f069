from collections import OrderedDict

import numpy as np
import pytest

import neurenix as nx
from neurenix import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.scale = nn.Parameter(nx.ones(4))
        self.register_buffer("offset", nx.zeros(4))
        self.register_buffer("cache", nx.zeros(2), persistent=False)

    def forward(self, x):
        return self.bn(self.fc(x)) * self.scale + self.offset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(4, 2))

    def forward(self, x):
        return self.head(self.block(x))


NET_PARAMS = ["block.scale", "block.fc.weight", "block.fc.bias", "block.bn.weight", "block.bn.bias",
              "head.1.weight", "head.1.bias"]
NET_STATE = ["block.scale", "block.offset", "block.fc.weight", "block.fc.bias", "block.bn.weight", "block.bn.bias",
             "block.bn.running_mean", "block.bn.running_var", "block.bn.num_batches_tracked", "head.1.weight",
             "head.1.bias"]


def _values(module):
    return {k: v.numpy().copy() for k, v in module.state_dict().items()}


def _seq():
    return nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))


def test_named_parameters_order_and_names():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == NET_PARAMS
    assert list(map(id, net.parameters())) == [id(p) for _, p in net.named_parameters()]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert [n for n, _ in net.named_parameters(prefix="m")] == ["m." + n for n in NET_PARAMS]
    assert [n for n, _ in net.block.named_parameters(recurse=False)] == ["scale"]


def test_shared_parameter_is_listed_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(seq.modules())) == 3


def test_children_and_named_modules():
    net = Net()
    assert [type(c) for c in net.children()] == [Block, nn.Sequential]
    assert [n for n, _ in net.named_children()] == ["block", "head"]
    assert [n for n, _ in net.named_modules()] == ["", "block", "block.fc", "block.bn", "head", "head.0", "head.1"]
    assert next(net.modules()) is net


def test_buffers_persistent_and_not():
    net = Net()
    names = [n for n, _ in net.named_buffers()]
    assert names == ["block.offset", "block.cache", "block.bn.running_mean", "block.bn.running_var",
                     "block.bn.num_batches_tracked"]
    assert "block.cache" not in net.state_dict()
    assert not any(b is p for b in net.buffers() for p in net.parameters())
    with pytest.raises(TypeError, match="buffer 'x'"):
        net.register_buffer("x", np.zeros(2))


def test_reregistering_a_buffer_updates_persistence():
    m = nn.Module()
    m.register_buffer("b", nx.zeros(1), persistent=False)
    m.register_buffer("b", nx.ones(1))
    assert list(m.state_dict()) == ["b"]


def test_assigning_a_tensor_to_a_buffer_keeps_it_a_buffer():
    net = Block()
    net.offset = nx.ones(4)
    assert list(net.state_dict())[:2] == ["scale", "offset"]
    np.testing.assert_array_equal(net.state_dict()["offset"].numpy(), np.ones(4))
    with pytest.raises(TypeError, match="offset"):
        net.offset = 3.0


def test_state_dict_keys():
    assert list(Net().state_dict()) == NET_STATE
    assert list(_seq().state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    sd = nn.BatchNorm2d(3).state_dict()
    assert list(sd) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert sd["num_batches_tracked"].dtype == nx.int64


def test_state_dict_values_are_detached():
    lin = nn.Linear(2, 3)
    sd = lin.state_dict()
    assert not sd["weight"].requires_grad
    np.testing.assert_array_equal(sd["weight"].numpy(), lin.weight.numpy())


def test_load_state_dict_copies_values_and_keeps_identity():
    nx.manual_seed(0)
    src, dst = Net(), Net()
    src.block.bn.running_mean.add_(nx.ones(4))
    params_before = list(dst.parameters())
    result = dst.load_state_dict(src.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert list(map(id, dst.parameters())) == list(map(id, params_before))
    assert all(p.requires_grad for p in dst.parameters())
    want = _values(src)
    for k, v in _values(dst).items():
        np.testing.assert_array_equal(v, want[k], err_msg=k)


def test_loaded_values_do_not_alias_the_source():
    src, dst = nn.Linear(2, 2), nn.Linear(2, 2)
    dst.load_state_dict(src.state_dict())
    before = dst.weight.numpy().copy()
    with nx.no_grad():
        src.weight.add_(1.0)
    np.testing.assert_array_equal(dst.weight.numpy(), before)


def test_load_state_dict_accepts_numpy_and_casts_to_the_module_dtype():
    lin = nn.Linear(2, 3).double()
    w = np.arange(6, dtype=np.float32).reshape(3, 2)
    lin.load_state_dict({"weight": w, "bias": np.zeros(3, np.float32)})
    assert lin.weight.dtype == nx.float64
    np.testing.assert_array_equal(lin.weight.numpy(), w)


def test_load_state_dict_strict_reports_missing_and_unexpected():
    seq = _seq()
    sd = seq.state_dict()
    del sd["2.bias"]
    sd["3.weight"] = nx.zeros(1)
    with pytest.raises(RuntimeError) as e:  # PyTorch's type and wording
        seq.load_state_dict(sd)
    assert str(e.value) == ('Error(s) in loading state_dict for Sequential:\n'
                            '\tMissing key(s) in state_dict: "2.bias".\n'
                            '\tUnexpected key(s) in state_dict: "3.weight".')
    with pytest.raises(TypeError, match="state_dict must be a dict of name -> tensor, got list"):
        seq.load_state_dict(list(sd.items()))


def test_load_state_dict_non_strict_returns_keys_and_loads_the_rest():
    seq = _seq()
    sd = {k: v + 1 for k, v in seq.state_dict().items()}
    del sd["0.bias"]
    sd["extra"] = nx.zeros(1)
    before = seq[0].bias.numpy().copy()
    result = seq.load_state_dict(sd, strict=False)  # PyTorch's named tuple
    assert result.missing_keys == ["0.bias"] and result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(seq[0].weight.numpy(), sd["0.weight"].numpy())
    np.testing.assert_array_equal(seq[0].bias.numpy(), before)


def test_load_state_dict_shape_mismatch_names_the_key():
    seq = _seq()
    sd = seq.state_dict()
    sd["2.weight"] = nx.zeros(3, 1)
    with pytest.raises(ValueError, match=r"2\.weight"):
        seq.load_state_dict(sd)


def test_non_persistent_buffer_is_neither_saved_nor_required():
    net = Net()
    net.load_state_dict(Net().state_dict())
    with pytest.raises(RuntimeError, match='Unexpected key\\(s\\) in state_dict: "block.cache"'):
        net.load_state_dict({**net.state_dict(), "block.cache": nx.zeros(2)})


def test_train_eval_propagate():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.block.train()
    assert net.block.bn.training and not net.training and not net.head.training
    net.train()
    assert all(m.training for m in net.modules())


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    seq = _seq()
    seq(nx.ones(4, 2)).sum().backward()
    assert all(p.grad is not None for p in seq.parameters())
    seq.zero_grad(set_to_none=set_to_none)
    for p in seq.parameters():
        if set_to_none:
            assert p.grad is None
        else:
            assert p.grad.shape == p.shape and not p.grad.numpy().any()


def test_zero_grad_keep_clears_non_finite_and_graph():
    lin = nn.Linear(2, 1)
    lin.weight.grad = nx.tensor([[np.inf, np.nan]])
    lin.bias.grad = (lin.bias * 3).detach().requires_grad_() * 2
    lin.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(lin.weight.grad.numpy(), [[0.0, 0.0]])
    assert lin.bias.grad.grad_fn is None


def test_to_dtype_keeps_identity_and_skips_int_buffers():
    bn = nn.BatchNorm1d(3)
    w = bn.weight
    bn.weight.grad = nx.ones(3)
    assert bn.to(nx.float64) is bn
    assert bn.weight is w and w.requires_grad
    assert {t.dtype for t in bn.parameters()} == {nx.float64}
    assert bn.running_mean.dtype == nx.float64 and bn.num_batches_tracked.dtype == nx.int64
    assert w.grad.dtype == nx.float64
    bn.float()
    assert bn.weight.dtype == nx.float32
    bn.to(dtype="float64")
    assert bn.running_var.dtype == nx.float64
    assert bn.to("cpu", nx.float32) is bn and bn.weight is w
    assert bn.weight.dtype == nx.float32 and bn.weight.device == nx.Device("cpu")


def test_requires_grad_():
    seq = _seq()
    assert seq.requires_grad_(False) is seq
    assert not any(p.requires_grad for p in seq.parameters())
    seq.requires_grad_()
    assert all(p.requires_grad for p in seq.parameters())


def test_assigning_plain_tensor_to_parameter_raises():
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="weight"):
        lin.weight = nx.zeros(2, 2)
    lin.weight = nn.Parameter(nx.zeros(2, 2))
    assert [n for n, _ in lin.named_parameters()] == ["weight", "bias"]


def test_assigning_none_to_parameter_drops_it():
    lin = nn.Linear(2, 2)
    lin.bias = None
    assert [n for n, _ in lin.named_parameters()] == ["weight"]
    assert "bias" not in lin.state_dict()


def test_reassigning_changes_kind_and_delattr_forgets():
    m = nn.Module()
    m.a = nn.Parameter(nx.zeros(1))
    m.a = nn.Linear(1, 1)
    assert [n for n, _ in m.named_parameters()] == ["a.weight", "a.bias"]
    del m.a
    assert list(m.named_parameters()) == [] and list(m.children()) == []


def test_assigning_before_super_init_raises():
    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)
            super().__init__()

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Bad()


def test_forward_not_defined():
    with pytest.raises(NotImplementedError, match="Module"):
        nn.Module()(nx.ones(1))


def test_parameter_wraps_tensor():
    t = nx.tensor([1.0, 2.0])
    p = nn.Parameter(t)
    assert p.requires_grad and p.is_leaf and isinstance(p, nx.Tensor)
    np.testing.assert_array_equal(p.numpy(), t.numpy())
    assert not nn.Parameter(t, requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing:\n")


def test_repr():
    text = repr(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 1, bias=False))))
    assert text == ("Sequential(\n"
                    "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
                    "  (1): ReLU()\n"
                    "  (2): Sequential(\n"
                    "    (0): Linear(in_features=3, out_features=1, bias=False)\n"
                    "  )\n"
                    ")")


def test_apply_visits_every_module_children_first():
    seen = []
    net = Net()
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "BatchNorm1d", "Block", "ReLU", "Linear", "Sequential", "Net"]


# -- containers ------------------------------------------------------------------------------------


def _layers():
    return [nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)]


@pytest.mark.parametrize("build", [
    lambda ls: nn.Sequential(*ls),
    lambda ls: nn.Sequential(ls),
    lambda ls: nn.Sequential(tuple(ls)),
    lambda ls: nn.Sequential(OrderedDict((str(i), m) for i, m in enumerate(ls))),
], ids=["args", "list", "tuple", "ordereddict"])
def test_sequential_construction(build):
    layers = _layers()
    seq = build(layers)
    assert len(seq) == 3 and list(seq) == layers
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    x = np.random.default_rng(0).standard_normal((4, 2)).astype(np.float32)
    w0, b0, w2, b2 = (p.numpy() for p in seq.parameters())
    want = np.tanh(x @ w0.T + b0) @ w2.T + b2
    np.testing.assert_allclose(seq(nx.tensor(x)).numpy(), want, rtol=1e-5, atol=1e-6)


def test_sequential_ordereddict_names():
    seq = nn.Sequential(OrderedDict(enc=nn.Linear(2, 3), act=nn.ReLU(), dec=nn.Linear(3, 2)))
    assert list(seq.state_dict()) == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    assert seq.enc is seq[0] and seq.dec is seq[-1]


def test_sequential_indexing_slicing_append():
    layers = _layers()
    seq = nn.Sequential(*layers)
    assert seq[0] is layers[0] and seq[-1] is layers[2]
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and list(head) == layers[:2]
    assert list(seq[1:].state_dict()) == ["2.weight", "2.bias"]
    with pytest.raises(IndexError):
        seq[3]
    extra = nn.Linear(1, 1)
    assert seq.append(extra) is seq
    assert len(seq) == 4 and seq[3] is extra and "3.weight" in seq.state_dict()


def test_sequential_rejects_non_modules():
    with pytest.raises(TypeError, match="item 1"):
        nn.Sequential(nn.ReLU(), lambda x: x)


def test_module_list():
    layers = _layers()
    ml = nn.ModuleList(layers)
    assert len(ml) == 3 and list(ml) == layers and ml[-1] is layers[2]
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    sub = ml[1:]
    assert isinstance(sub, nn.ModuleList) and list(sub) == layers[1:]
    ml.append(nn.Linear(1, 1))
    assert len(ml) == 4 and "3.bias" in ml.state_dict()
    assert len(nn.ModuleList()) == 0


def test_module_list_extend_and_registration_in_a_model():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2)])
            self.layers.extend([nn.ReLU(), nn.Linear(2, 1)])

        def forward(self, x):
            for m in self.layers:
                x = m(x)
            return x

    model = Stack()
    assert len(model.layers) == 3
    assert list(model.state_dict()) == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"]
    assert model(nx.ones(5, 2)).shape == (5, 1)


def test_get_submodule_follows_dotted_paths_and_names_what_is_missing():
    inner = nn.Linear(2, 2)
    model = nn.Sequential(nn.Sequential(nn.ReLU(), inner))
    assert model.get_submodule("") is model and model.get_submodule("0.1") is inner
    for bad, missing in (("1", "'1'"), ("0.1.weight", "'weight'"), ("0.x.y", "'x'")):
        with pytest.raises(AttributeError, match=f"no submodule {missing}"):
            model.get_submodule(bad)
