"""The Optimizer base class: parameter groups, per-parameter state, zero_grad, state_dict."""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable

from ..autograd.grad_mode import enable_grad, no_grad
from ..errors import DeviceError
from ..ops.transfer import to_device
from ..tensor import Tensor, zeros_like


class Optimizer:
    """Base class: subclasses implement ``_update(group, params)`` for the params of one group that have
    gradients, all on one device. ``self.state[p]`` holds each parameter's state (tensors and counts): a
    ``collections.defaultdict(dict)``, as in PyTorch."""

    def __init__(self, params: Iterable, defaults: dict):
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise TypeError("optimizer params must be an iterable of Tensors or of parameter-group dicts, not a "
                            f"Tensor of shape {params.shape}; wrap it in a list")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: dict) -> None:
        """Add a group of parameters with its own hyper-parameters (the defaults fill the rest). Other keys are
        kept as they are, as PyTorch keeps them (a scheduler's ``initial_lr``, a user's tag)."""
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer params must be Tensors; item {i} is a {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"cannot optimize a non-leaf tensor (item {i}, shape {p.shape}); use .detach()")
            if not p.requires_grad:
                raise ValueError(f"parameter {i} (shape {p.shape}) does not require grad")
            if id(p) in seen:
                raise ValueError(f"parameter {i} (shape {p.shape}) appears in more than one parameter group")
            seen.add(id(p))
        group = {**self.defaults, **group, "params": params}
        self._check_hyper(group)
        self.param_groups.append(group)

    def _check_hyper(self, group: dict) -> None:
        """Raise a ValueError/TypeError naming a bad hyper-parameter of ``group`` (subclasses say which)."""

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    p.grad = None if set_to_none else zeros_like(p.grad)

    def step(self, closure: Callable | None = None):
        """Update every parameter that has a gradient; ``closure`` re-evaluates the loss if given."""
        self._opt_called = True  # a learning-rate scheduler checks that it steps after the optimizer
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                by_device: dict = {}
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if p.grad._device is not p._device or p.grad.shape != p.shape:
                        raise DeviceError(f"gradient of shape {p.grad.shape} on {p.grad.device} does not match its "
                                          f"parameter of shape {p.shape} on {p.device}")
                    by_device.setdefault(p._device, []).append(p)
                for params in by_device.values():
                    self._update(group, params)
        return loss

    def _update(self, group: dict, params: list[Tensor]) -> None:
        raise NotImplementedError

    def __capture__(self) -> tuple:
        """What ``neurenix.compile`` reads of this optimizer: its hyper-parameters, and the tensors of its
        state (which a step changes in place). Step counts are read and advanced by the step itself, at every
        replay, so they are not part of a compiled function's guards; the state dicts are, by identity."""
        return self.param_groups, [(id(s), [v for v in s.values() if isinstance(v, Tensor)])
                                   for s in self.state.values()]

    @staticmethod
    def _grad_buffer(p: Tensor):
        g = p.grad
        return g._data if g._data.dtype is p._data.dtype else g.to(p.dtype)._data

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``; tensors are copied."""
        index, groups = {}, []
        for g in self.param_groups:
            for p in g["params"]:
                index.setdefault(id(p), len(index))
            hyper = {k: v for k, v in g.items() if k != "params"}
            groups.append({**hyper, "params": [index[id(p)] for p in g["params"]]})
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: v.clone().detach() if isinstance(v, Tensor) else copy.deepcopy(v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyper-parameters and state saved by ``state_dict`` (same parameter layout). Everything is
        checked first: on an error, the optimizer is left as it was."""
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            raise ValueError("load_state_dict: expected a dict with 'state' and 'param_groups', as state_dict() makes")
        groups = state_dict["param_groups"]
        if not isinstance(groups, (list, tuple)) or len(groups) != len(self.param_groups) or any(
                not isinstance(a, dict) or len(a.get("params", ())) != len(b["params"])
                for a, b in zip(groups, self.param_groups)):
            raise ValueError("load_state_dict: the saved parameter groups do not match this optimizer's "
                             f"({[len(g.get('params', ())) if isinstance(g, dict) else g for g in groups]} vs "
                             f"{[len(g['params']) for g in self.param_groups]} parameters)")
        by_index, hypers = {}, []
        for saved, own in zip(groups, self.param_groups):
            for i, p in zip(saved["params"], own["params"]):
                by_index[i] = p
            hyper = {**own, **{k: v for k, v in saved.items() if k != "params"}}
            self._check_hyper(hyper)
            hypers.append(hyper)
        state: defaultdict = defaultdict(dict)
        for i, st in dict(state_dict["state"]).items():
            p = by_index.get(i if not isinstance(i, str) else int(i) if i.isdigit() else i)
            if p is None or not isinstance(st, dict):
                raise ValueError(f"load_state_dict: state for parameter {i!r}, which no parameter group holds")
            state[p] = {k: self._restored(k, v, p) for k, v in st.items()}
        for own, hyper in zip(self.param_groups, hypers):
            own.update(hyper)
        self.state = state

    @staticmethod
    def _restored(key: str, v, p: Tensor):
        """A saved state value for parameter ``p``: tensors checked against its shape and moved to its device."""
        if not isinstance(v, Tensor):
            return v
        if v.shape != p.shape and v.numel() != 1:
            raise ValueError(f"load_state_dict: state {key!r} of shape {v.shape} does not fit parameter "
                             f"of shape {p.shape}")
        return to_device(v.detach(), p._device).to(p.dtype).clone()

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params"]
        return "\n".join(lines) + "\n)"
