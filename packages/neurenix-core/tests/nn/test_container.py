"""ModuleDict: modules by name, in insertion order, registered (parameters, state_dict, to()), with dict's methods."""

from collections import OrderedDict

import pytest

import neurenix as nx
from neurenix import nn


def test_registers_its_modules_in_order():
    d = nn.ModuleDict({"enc": nn.Linear(2, 3), "act": nn.ReLU()})
    d["dec"] = nn.Linear(3, 1)
    assert list(d) == d.keys() == ["enc", "act", "dec"] and len(d) == 3 and "act" in d and "x" not in d
    assert [n for n, _ in d.named_parameters()] == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    assert list(d.state_dict()) == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    assert d.values()[1] is d["act"] and d.items()[2] == ("dec", d["dec"])
    d.double()
    assert d["enc"].weight.dtype == nx.float64


def test_update_pop_delete_clear():
    d = nn.ModuleDict([("a", nn.ReLU()), ("b", nn.Tanh())])
    d.update(OrderedDict(c=nn.Sigmoid(), a=nn.GELU()))  # replacing keeps a's place, as PyTorch's
    assert d.keys() == ["a", "b", "c"] and isinstance(d["a"], nn.GELU)
    b = d.pop("b")
    assert isinstance(b, nn.Tanh) and d.keys() == ["a", "c"]
    del d["a"]
    assert d.keys() == ["c"] and not hasattr(d, "a")
    d.clear()
    assert len(d) == 0 and list(d.children()) == []
    with pytest.raises(KeyError):
        d["a"]
    with pytest.raises(KeyError):
        del d["a"]


def test_bad_entries():
    with pytest.raises(TypeError, match="must be a Module"):
        nn.ModuleDict({"a": 3})
    with pytest.raises(TypeError, match=r"element #0 should be a \(name, module\) pair"):
        nn.ModuleDict(["abc"])
    with pytest.raises(KeyError, match="'forward' already exists"):
        nn.ModuleDict({"forward": nn.ReLU()})
