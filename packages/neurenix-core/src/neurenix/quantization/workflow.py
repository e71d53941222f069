"""quantize_dynamic, prepare, convert and quantize: float models in, int8 models out."""

from __future__ import annotations

import copy
from collections.abc import Callable

from .. import dtypes as _dt
from ..nn import quantized as nnq
from ..nn.conv import Conv2d
from ..nn.linear import Linear
from ..nn.module import Module
from .fuse import fuse_conv_bn
from .observer import MinMaxObserver

#: float layer -> its static int8 counterpart
STATIC = {Conv2d: nnq.Conv2d, Linear: nnq.Linear}


def quantize_dynamic(model: Module, qconfig_spec=None, dtype=_dt.int8, inplace: bool = False) -> Module:
    """``model`` (a copy unless ``inplace``) with its ``Linear`` layers as ``nn.quantized.dynamic.Linear``: int8
    weights per output channel, inputs quantized per call from their range. ``qconfig_spec``: a set of layer types
    (only ``Linear`` has a dynamic form) or of module names (``"encoder.3"``) to quantize; None: every Linear."""
    if _dt.as_dtype(dtype) is not _dt.int8:
        raise ValueError(f"quantize_dynamic: dtype must be neurenix.int8 (int8 weights are what it makes), got {dtype}")
    wanted = _wanted(qconfig_spec, {Linear}, "quantize_dynamic")
    model = model if inplace else copy.deepcopy(model)
    return _swap(model, wanted, (Linear,), lambda name, m: nnq.dynamic.Linear.from_float(m))


def prepare(model: Module, inplace: bool = False, modules=None, fuse: bool = True) -> Module:
    """The calibration model: ``model`` (a copy unless ``inplace``) in evaluation mode, batch norms folded into the
    convolutions before them (``fuse``, :func:`fuse_conv_bn`), each ``Conv2d`` and ``Linear`` (or the types or names
    in ``modules``) wrapped to record its input's range. Run calibration inputs through it, then :func:`convert`."""
    wanted = _wanted(modules, set(STATIC), "prepare")
    model = model if inplace else copy.deepcopy(model)
    model.eval()
    if fuse:
        fuse_conv_bn(model, inplace=True)
    prepared = _swap(model, wanted, tuple(STATIC), lambda name, m: Observed(m))
    if not any(isinstance(m, Observed) for m in prepared.modules()):
        raise ValueError("prepare: the model has no Conv2d or Linear layer to quantize (modules="
                         f"{modules!r})")
    return prepared


def convert(model: Module, inplace: bool = False) -> Module:
    """The int8 model of a prepared and calibrated one: every wrapped layer as ``nn.quantized.Conv2d`` or
    ``nn.quantized.Linear`` with its input quantized over the range calibration saw."""
    if not any(isinstance(m, Observed) for m in model.modules()):
        raise ValueError("convert: the model has no layer prepare() wrapped: call prepare(model) and run calibration "
                         "data through its result first")
    model = model if inplace else copy.deepcopy(model)
    return _swap(model, None, (Observed,), lambda name, m: m.quantized(name))


def quantize(model: Module, run_fn: Callable, run_args=(), inplace: bool = False, modules=None) -> Module:
    """:func:`prepare`, ``run_fn(prepared, *run_args)`` (which runs calibration data through it), :func:`convert`:
    PyTorch's ``torch.ao.quantization.quantize``."""
    prepared = prepare(model, inplace=inplace, modules=modules)
    run_fn(prepared, *run_args)
    return convert(prepared, inplace=True)


class Observed(Module):
    """A float layer that ``prepare`` wrapped: it records its input's range (``observer``), then runs ``module``."""

    def __init__(self, module: Module):
        super().__init__()
        self.module, self.observer = module, MinMaxObserver()

    def forward(self, x):
        return self.module(self.observer(x))

    def quantized(self, name: str) -> Module:
        try:
            scale, zero_point = self.observer.calculate_qparams()
        except RuntimeError as e:
            raise RuntimeError(f"convert: layer {name!r} saw no calibration input ({e})") from None
        return STATIC[type(self.module)].from_float(self.module, scale, zero_point)


def _wanted(spec, allowed: set, op: str):
    """``spec`` as a predicate (name, module) -> bool over the layer types in ``allowed``."""
    if spec is None:
        return lambda name, m: True
    spec = set(spec)  # (a dict's keys, as PyTorch's qconfig_spec may be)
    types = {s for s in spec if isinstance(s, type)}
    names = {s for s in spec if isinstance(s, str)}
    bad = [s for s in spec if not isinstance(s, (type, str)) or (isinstance(s, type) and s not in allowed)]
    if bad:
        raise ValueError(f"{op}: cannot quantize {bad}: it takes layer types among "
                         f"{sorted(t.__name__ for t in allowed)} or module names")
    return lambda name, m: type(m) in types or name in names


def _swap(model: Module, wanted, kinds: tuple, make) -> Module:
    """Replace each submodule of exactly a type in ``kinds`` that ``wanted`` picks by ``make(name, module)``."""
    if type(model) in kinds:
        raise ValueError(f"quantize the model that holds the {type(model).__name__}, not the layer itself (the "
                         "layer is replaced in its parent)")
    targets = [(name, m) for name, m in model.named_modules() if name and type(m) in kinds
               and (wanted is None or wanted(name, m))]
    for name, m in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, make(name, m).train(m.training))  # (a new layer would be in training mode)
    return model
