"""Containers: Sequential, ModuleList and ModuleDict."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping

from .activation import ReLU
from .batchnorm import BatchNorm2d
from .module import Module
from .pooling import MaxPool2d


class Sequential(Module):
    """Runs modules in order. ``Sequential(a, b, c)``, ``Sequential([a, b, c])`` and
    ``Sequential(OrderedDict(name=module))`` all work; submodules are named "0", "1", ... otherwise."""

    stacks_tasks = True  # if its modules do (nn.task_axis.stacks_tasks checks them)

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            items = list(modules[0].items())
        else:
            if len(modules) == 1 and isinstance(modules[0], (list, tuple)):
                modules = tuple(modules[0])
            items = [(str(i), m) for i, m in enumerate(modules)]
        for name, m in items:
            if not isinstance(m, Module):
                raise TypeError(f"Sequential takes Modules; item {name} is a {type(m).__name__}")
            self.add_module(name, m)

    def forward(self, x):
        mods = list(self.children())
        i = 0
        while i < len(mods):
            if i + 2 < len(mods) and _norm_relu_pool(*mods[i:i + 3]):  # one fused op where it applies
                y = mods[i]._forward_relu_pool(x)
                if y is not None:
                    x, i = y, i + 3
                    continue
            x = mods[i](x)
            i += 1
        return x

    def __getitem__(self, i):
        mods = list(self.children())
        if isinstance(i, slice):
            return Sequential(OrderedDict(list(self.named_children())[i]))
        return mods[i]

    def __len__(self) -> int:
        return len(self._module_names)

    def __iter__(self) -> Iterator[Module]:
        return self.children()

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self


class ModuleList(Module):
    """A list of modules, registered so that their parameters are found."""

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        for m in modules or ():
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, i):
        mods = list(self.children())
        return ModuleList(mods[i]) if isinstance(i, slice) else mods[i]

    def __len__(self) -> int:
        return len(self._module_names)

    def __iter__(self) -> Iterator[Module]:
        return self.children()


class ModuleDict(Module):
    """Modules by name, registered so that their parameters are found; keys keep their insertion order."""

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        if key not in self._module_names:
            raise KeyError(key)
        return self.__dict__[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        self[key]  # a KeyError for a key that is not there
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._module_names)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._module_names))

    def __contains__(self, key) -> bool:
        return key in self._module_names

    def keys(self):
        return list(self._module_names)

    def values(self):
        return [self.__dict__[k] for k in self._module_names]

    def items(self):
        return [(k, self.__dict__[k]) for k in self._module_names]

    def pop(self, key: str) -> Module:
        module = self[key]
        del self[key]
        return module

    def clear(self) -> None:
        for key in self.keys():
            del self[key]

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Add or replace modules from a mapping or from (name, module) pairs, in their order."""
        items = modules.items() if isinstance(modules, Mapping) else modules
        for i, item in enumerate(items):
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise TypeError(f"ModuleDict.update: element #{i} should be a (name, module) pair, got {item!r:.60}")
            self[item[0]] = item[1]


def _norm_relu_pool(norm: Module, act: Module, pool: Module) -> bool:
    """Whether three layers in a row are BatchNorm2d, ReLU and a 2x2 MaxPool2d of stride 2 (Conv-4's and
    ResNet-12's block end), which BatchNorm2d can run as one op (exactly these classes: a subclass may
    change what its forward does)."""
    return type(norm) is BatchNorm2d and type(act) is ReLU and type(pool) is MaxPool2d and pool._halves()
