"""Recurrent layers as PyTorch's: RNN, LSTM, GRU (multi-layer, bidirectional, LSTM projections) and their cells.

Composed from differentiable ops with a Python loop over time steps, so every backend runs them and gradients of
any order flow (MAML differentiates through them). Each layer and direction projects the inputs of all its time
steps in one product before the loop; a step then costs one product with the hidden weights and the gate math.

Inside ``task_batch`` (see nn.task_axis) the tasks' sequences are rows of the batch axis (task-major) and a weight
with a leading task axis applies to its own task's rows, so a model holding an RNN runs in ``batched_call``.
PackedSequence inputs are not supported (pad the sequences to one length).
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable

from .. import creation
from ..arguments import boolean, choice, integer
from ..errors import DTypeError, ShapeError
from ..ops import cat, stack
from ..ops import expect_tensor as tensor
from ..tensor import Tensor
from . import functional as F
from . import init
from .linear import task_linear
from .module import Module, Parameter
from .task_axis import task_count

State = tuple  # (h,) for RNN and GRU, (h, c) for LSTM: each (batch, features)


# -- one time step of each kind: gi and gh are the input's and the hidden state's projections (batch, gates * H) --

def _rnn_tanh_cell(gi: Tensor, gh: Tensor, state: State) -> State:
    return ((gi + gh).tanh(),)


def _rnn_relu_cell(gi: Tensor, gh: Tensor, state: State) -> State:
    return ((gi + gh).relu(),)


def _lstm_cell(gi: Tensor, gh: Tensor, state: State) -> State:
    i, f, g, o = (gi + gh).chunk(4, -1)  # PyTorch's gate order: input, forget, cell, output
    c = f.sigmoid() * state[1] + i.sigmoid() * g.tanh()
    return o.sigmoid() * c.tanh(), c


def _gru_cell(gi: Tensor, gh: Tensor, state: State) -> State:
    (ir, iz, i_n), (hr, hz, h_n) = gi.chunk(3, -1), gh.chunk(3, -1)  # reset, update, new
    r, z = (ir + hr).sigmoid(), (iz + hz).sigmoid()
    n = (i_n + r * h_n).tanh()  # the reset gate scales the hidden projection with its bias, as PyTorch's
    return (n + z * (state[0] - n),)  # (1 - z) * n + z * h


_CELLS: dict[str, Callable] = {"RNN_TANH": _rnn_tanh_cell, "RNN_RELU": _rnn_relu_cell, "LSTM": _lstm_cell,
                               "GRU": _gru_cell}
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _steps(x: Tensor) -> list[Tensor]:
    """The time steps ``x[:, t]`` of a (batch, time, ...) tensor. The gradient of a slice is a zero-filled tensor
    of its source's shape, so slicing step by step would cost backward passes time quadratic in the sequence
    length: slicing blocks of about sqrt(L) steps first, then each block's steps, costs L * sqrt(L)."""
    n = x.shape[1]
    block = math.isqrt(n) if x.requires_grad else n
    return [b[:, t] for b in x.split(block, 1) for t in range(b.shape[1])]


def _run_layer(cell: Callable, x: Tensor, state: State, weights: tuple, reverse: bool,
               layer: str) -> tuple[Tensor, State]:
    """One layer in one direction over a batch-major (batch, time, features) input: (outputs (batch, time, H_out),
    final state). ``weights``: (w_ih, w_hh, b_ih, b_hh, w_hr), biases and w_hr None where absent."""
    w_ih, w_hh, b_ih, b_hh, w_hr = weights
    steps = _steps(task_linear(x, w_ih, b_ih, layer))  # every step's input projection in one product
    outs: list = [None] * len(steps)
    for t in reversed(range(len(steps))) if reverse else range(len(steps)):
        state = cell(steps[t], task_linear(state[0], w_hh, b_hh, layer), state)
        if w_hr is not None:  # LSTM with proj_size: the output and recurrent state is h projected
            state = (task_linear(state[0], w_hr, None, layer), *state[1:])
        outs[t] = state[0]
    return stack(outs, 1), state


def _check_tensor(value, name: str, layer: str) -> Tensor:
    if hasattr(value, "batch_sizes"):  # PyTorch's PackedSequence, or a look-alike
        raise NotImplementedError(f"{layer}: PackedSequence inputs are not supported; pad the sequences to one "
                                  "length and pass the padded tensor (sequences of different lengths: run them "
                                  "separately, or mask the padded steps' outputs)")
    return tensor(value, name, layer)


class RNNBase(Module):
    """The multi-layer recurrent layer of ``mode`` "RNN_TANH", "RNN_RELU", "LSTM" or "GRU" (PyTorch's RNNBase):
    use RNN, LSTM or GRU. Parameters per layer ``k`` and direction (``_reverse`` for the second), in PyTorch's
    order: ``weight_ih_l{k}`` (gates * hidden_size, input features), ``weight_hh_l{k}`` (gates * hidden_size,
    H_out), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (gates * hidden_size,), and with ``proj_size`` ``weight_hr_l{k}``
    (proj_size, hidden_size); all uniform in ``±1/sqrt(hidden_size)``. H_out is ``proj_size`` or else
    ``hidden_size``."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None):
        super().__init__()
        self.mode = choice(mode, "mode", "RNNBase", tuple(_CELLS))
        name = self._name()
        self.input_size = integer(input_size, "input_size", name, minimum=1)
        self.hidden_size = integer(hidden_size, "hidden_size", name, minimum=1)
        self.num_layers = integer(num_layers, "num_layers", name, minimum=1)
        self.bias, self.batch_first = boolean(bias, "bias", name), boolean(batch_first, "batch_first", name)
        self.bidirectional = boolean(bidirectional, "bidirectional", name)
        self.dropout = _dropout_probability(dropout, name)
        if self.dropout > 0 and self.num_layers == 1:
            warnings.warn(f"{name}: dropout={self.dropout} applies between layers (to the outputs of all but the "
                          "last), so with num_layers=1 it does nothing", UserWarning,
                          stacklevel=2 if type(self) is RNNBase else 3)  # the caller of RNN(...), LSTM(...)
        self.proj_size = integer(proj_size, "proj_size", name, minimum=0)
        if self.proj_size and mode != "LSTM":
            raise ValueError(f"{name}: proj_size={self.proj_size} is only supported by LSTM")
        if self.proj_size >= self.hidden_size:
            raise ValueError(f"{name}: proj_size ({self.proj_size}) must be smaller than hidden_size "
                             f"({self.hidden_size})")
        self._make_parameters(device, dtype)
        self.reset_parameters()

    def _name(self) -> str:
        return type(self).__name__

    def _make_parameters(self, device, dtype) -> None:
        gates, h, out = _GATES[self.mode] * self.hidden_size, self.hidden_size, self._h_out()
        kw = dict(device=device, dtype=dtype)
        self._all_weights: list[list[str]] = []
        for layer in range(self.num_layers):
            n_in = self.input_size if layer == 0 else out * self._directions()
            for direction in range(self._directions()):
                shapes = {"weight_ih": (gates, n_in), "weight_hh": (gates, out)}
                if self.bias:
                    shapes |= {"bias_ih": (gates,), "bias_hh": (gates,)}
                if self.proj_size:
                    shapes["weight_hr"] = (self.proj_size, h)
                names = []
                for kind, shape in shapes.items():
                    names.append(f"{kind}_l{layer}{'_reverse' if direction else ''}")
                    setattr(self, names[-1], Parameter(creation.empty(*shape, **kw)))
                self._all_weights.append(names)

    def _directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _h_out(self) -> int:
        return self.proj_size or self.hidden_size

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def flatten_parameters(self) -> None:
        """Nothing to do (the weights are never packed into one buffer); there for PyTorch code that calls it."""

    @property
    def all_weights(self) -> list[list[Parameter]]:
        """The parameters of each layer and direction (forward, then reverse), in PyTorch's order."""
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def forward(self, input: Tensor, hx: Tensor | tuple[Tensor, Tensor] | None = None):
        """``(output, h_n)``, for LSTM ``(output, (h_n, c_n))``. ``input`` (L, N, input_size), (N, L, input_size)
        with ``batch_first``, or (L, input_size) unbatched; ``hx`` the initial state (zeros if None): (D *
        num_layers, N, H_out) (for LSTM a pair, c of (D * num_layers, N, hidden_size)), without N if unbatched.
        ``output`` holds the last layer's h at every step, both directions concatenated: (L, N, D * H_out)."""
        name = self._name()
        x = _check_tensor(input, "input", name)
        batched = self._check_input(x)
        states = self._initial_states(hx, x, batched)
        x = (x if self.batch_first else x.transpose(0, 1)) if batched else x.unsqueeze(0)  # (N, L, features)
        cell, finals = _CELLS[self.mode], []
        for layer in range(self.num_layers):
            if layer and self.dropout and self.training:
                x = F.dropout(x, self.dropout, True)
            outs = []
            for direction in range(self._directions()):
                k = layer * self._directions() + direction
                weights = [getattr(self, n, None) for n in self._weight_names(layer, direction)]
                out, final = _run_layer(cell, x, tuple(s[k] for s in states), tuple(weights), direction == 1,
                                        name)
                outs.append(out)
                finals.append(final)
            x = outs[0] if len(outs) == 1 else cat(outs, -1)
        return self._results(x, finals, batched)

    def _weight_names(self, layer: int, direction: int) -> tuple:
        suffix = f"_l{layer}{'_reverse' if direction else ''}"
        return tuple(kind + suffix for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"))

    def _check_input(self, x: Tensor) -> bool:
        """Whether ``x`` is batched; raises if its shape or dtype does not fit."""
        name = self._name()
        if x.ndim not in (2, 3):
            raise ShapeError(f"{name}: expected a 3-D (batched) or 2-D (unbatched) input, got shape {x.shape}")
        if x.shape[-1] != self.input_size:
            raise ShapeError(f"{name}: input of shape {x.shape} must have input_size={self.input_size} features "
                             "(its last axis)")
        if x.shape[-2 if x.ndim == 2 or self.batch_first else 0] == 0:
            raise ShapeError(f"{name}: the input of shape {x.shape} has no time steps")
        if x.ndim == 2 and task_count():
            raise ShapeError(f"{name}: inside task_batch the input needs a batch axis (the tasks' sequences are its "
                             f"rows), got unbatched shape {x.shape}")
        w = self.weight_ih_l0
        if x.dtype != w.dtype:
            raise DTypeError(f"{name}: input dtype {x.dtype} does not match the weights' {w.dtype}: convert the "
                             f"input (input.to({w.dtype})) or the model (model.to({x.dtype}))")
        return x.ndim == 3

    def _initial_states(self, hx, x: Tensor, batched: bool) -> list[Tensor]:
        """The initial states for ``x`` (the input as given) as a list of (D * num_layers, N, size) tensors: [h] or,
        for LSTM, [h, c]."""
        layers = self.num_layers * self._directions()
        n = 1 if not batched else x.shape[0 if self.batch_first else 1]
        sizes = {"h": self._h_out(), "c": self.hidden_size} if self.mode == "LSTM" else {"h": self.hidden_size}
        if hx is None:
            return [creation.zeros(layers, n, size, dtype=x.dtype, device=x.device) for size in sizes.values()]
        name = self._name()
        if self.mode == "LSTM" and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"{name}: hx must be a pair (h_0, c_0) of tensors, got {type(hx).__name__}")
        given = hx if self.mode == "LSTM" else (hx,)
        states = []
        for (what, size), h in zip(sizes.items(), given):
            what = f"{what}_0" if self.mode == "LSTM" else "hx"  # hx = (h_0, c_0) for LSTM
            h = tensor(h, what, name)
            want = (layers, n, size) if batched else (layers, size)
            if h.shape != want:
                axes = ("num_layers * num_directions", "batch" if batched else None,
                        "hidden_size" if size == self.hidden_size else "proj_size")
                raise ShapeError(f"{name}: expected {what} of shape {want} ({', '.join(a for a in axes if a)}) "
                                 f"for an input of shape {x.shape}, got {h.shape}")
            if h.dtype != x.dtype:
                raise DTypeError(f"{name}: {what} dtype {h.dtype} does not match the input's {x.dtype}")
            states.append(h if batched else h.unsqueeze(1))
        return states

    def _results(self, out: Tensor, finals: list, batched: bool):
        """The output and final states in the caller's layout."""
        h_n = [stack([f[i] for f in finals]) for i in range(len(finals[0]))]  # (D * num_layers, N, size) each
        if batched:
            out = out if self.batch_first else out.transpose(0, 1)
        else:
            out, h_n = out.squeeze(0), [h.squeeze(1) for h in h_n]
        return out, (tuple(h_n) if self.mode == "LSTM" else h_n[0])

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        for key, default in (("proj_size", 0), ("num_layers", 1), ("bias", True), ("batch_first", False),
                             ("dropout", 0.0), ("bidirectional", False)):
            if getattr(self, key) != default:
                s += f", {key}={getattr(self, key)}"
        return s


def _dropout_probability(p, layer: str) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:  # PyTorch refuses a bool too
        raise ValueError(f"{layer}: dropout must be a probability, a number in [0, 1], got {p!r:.60}")
    return float(p)


class RNN(RNNBase):
    """An Elman RNN, ``h_t = nonlinearity(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` with ``nonlinearity``
    "tanh" or "relu", as PyTorch's ``nn.RNN``; see RNNBase for parameters and ``forward``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None):
        nonlinearity = choice(nonlinearity, "nonlinearity", "RNN", ("tanh", "relu"))
        super().__init__(f"RNN_{nonlinearity.upper()}", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, 0, device, dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """A long short-term memory RNN, as PyTorch's ``nn.LSTM`` (gates input, forget, cell, output in that order
    in the weights' rows); ``proj_size > 0`` projects h by ``weight_hr_l{k}`` at each step. ``forward(input,
    hx=None)`` returns ``(output, (h_n, c_n))``; see RNNBase."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device, dtype)


class GRU(RNNBase):
    """A gated recurrent unit RNN, as PyTorch's ``nn.GRU`` (gates reset, update, new in the weights' rows; the
    reset gate scales ``h W_hn^T + b_hn``); see RNNBase."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
                         device, dtype)


class RNNCellBase(Module):
    """One time step of a recurrent layer (PyTorch's RNNCellBase): use RNNCell, LSTMCell or GRUCell. Parameters
    ``weight_ih`` (gates * hidden_size, input_size), ``weight_hh`` (gates * hidden_size, hidden_size), ``bias_ih``,
    ``bias_hh`` (gates * hidden_size,), uniform in ``±1/sqrt(hidden_size)``."""

    mode = ""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        self.input_size = integer(input_size, "input_size", name, minimum=1)
        self.hidden_size = integer(hidden_size, "hidden_size", name, minimum=1)
        self.bias = boolean(bias, "bias", name)
        kw, gates = dict(device=device, dtype=dtype), integer(num_chunks, "num_chunks", name, minimum=1) * hidden_size
        self.weight_ih = Parameter(creation.empty(gates, self.input_size, **kw))
        self.weight_hh = Parameter(creation.empty(gates, self.hidden_size, **kw))
        for b in ("bias_ih", "bias_hh"):
            self.register_parameter(b, Parameter(creation.empty(gates, **kw)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _step(self, input: Tensor, hx, names: tuple) -> tuple[State, bool]:
        """The cell's new state for ``input`` (N, input_size) or (input_size,), and whether it is batched."""
        layer = type(self).__name__
        x = _check_tensor(input, "input", layer)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ShapeError(f"{layer}: expected an input of shape (N, {self.input_size}) or ({self.input_size},) "
                             f"(input_size={self.input_size}), got {x.shape}")
        batched = x.ndim == 2
        x = x if batched else x.unsqueeze(0)
        if hx is None:
            zeros = creation.zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
            state = (zeros,) * len(names)
        else:
            state = tuple(self._check_state(h, n, x, batched) for h, n in zip(hx, names))
        gi = task_linear(x, self.weight_ih, self.bias_ih, layer)
        new = _CELLS[self.mode](gi, task_linear(state[0], self.weight_hh, self.bias_hh, layer), state)
        return (new if batched else tuple(s.squeeze(0) for s in new)), batched

    def _check_state(self, h, what: str, x: Tensor, batched: bool) -> Tensor:
        layer = type(self).__name__
        h = tensor(h, what, layer)
        want = (x.shape[0], self.hidden_size) if batched else (self.hidden_size,)
        if h.shape != want:
            raise ShapeError(f"{layer}: expected {what} of shape {want} (hidden_size={self.hidden_size}) for an "
                             f"input of shape {x.shape if batched else x.shape[1:]}, got {h.shape}")
        return h if batched else h.unsqueeze(0)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s


class RNNCell(RNNCellBase):
    """One step of an Elman RNN, as PyTorch's ``nn.RNNCell``: ``forward(input, hx=None)`` returns h' (N,
    hidden_size), or (hidden_size,) for an unbatched input; ``hx`` zeros if None."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None):
        nonlinearity = choice(nonlinearity, "nonlinearity", "RNNCell", ("tanh", "relu"))
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity, self.mode = nonlinearity, f"RNN_{nonlinearity.upper()}"

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(input, None if hx is None else (hx,), ("hx",))[0][0]


class LSTMCell(RNNCellBase):
    """One LSTM step, as PyTorch's ``nn.LSTMCell``: ``forward(input, hx=None)`` with ``hx`` a pair (h, c) (zeros
    if None) returns ``(h', c')``, each (N, hidden_size) or (hidden_size,) for an unbatched input."""

    mode = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"LSTMCell: hx must be a pair (h, c) of tensors, got {type(hx).__name__}")
        return self._step(input, hx, ("h", "c"))[0]


class GRUCell(RNNCellBase):
    """One GRU step, as PyTorch's ``nn.GRUCell``: ``forward(input, hx=None)`` returns h' (N, hidden_size), or
    (hidden_size,) for an unbatched input; ``hx`` zeros if None."""

    mode = "GRU"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(input, None if hx is None else (hx,), ("hx",))[0][0]
