"""The export rules: one function per module class, registered with ``register``.

A rule ``rule(graph, module, x, path)`` adds the nodes of ``module`` applied to the value ``x`` and returns the
name of its output value (or a ``Value``, where it ran submodules through ``graph.module``). A class whose
package cannot import this one at import time (``onnx`` is optional) defines ``__onnx_export__(self, graph, x,
path)`` instead, importing its rule when it is called (neurenix.meta's ``FewShotClassifier`` does).
"""

from __future__ import annotations

from collections.abc import Callable

from ..nn import Module, ModuleDict, ModuleList, MultiheadAttention

_RULES: dict[type, Callable] = {}


class UnsupportedModuleError(TypeError):
    """A module of the model has no ONNX export rule."""


def register(*classes: type) -> Callable:
    """Decorator: ``fn`` is the export rule of ``classes`` (and of their subclasses that keep their forward)."""
    def add(fn: Callable) -> Callable:
        _RULES.update(dict.fromkeys(classes, fn))  # a registry, not a cache: it holds one entry per class
        return fn
    return add


def supported() -> list[str]:
    """The names of the module classes with a registered rule."""
    return sorted(cls.__name__ for cls in _RULES)


def rule_for(m: Module, path: str) -> Callable:
    """The rule of ``m``'s class, or of the nearest base whose ``forward`` it keeps (a subclass that overrides
    forward computes something else), or its ``__onnx_export__``; else UnsupportedModuleError."""
    cls = type(m)
    for base in cls.__mro__:
        if base in _RULES and cls.forward is base.forward:
            return _RULES[base]
    hook = getattr(cls, "__onnx_export__", None)
    if hook is not None:
        return lambda graph, module, x, p: hook(module, graph, x, p)
    raise UnsupportedModuleError(_unsupported(m, path))


def unsupported_option(m: Module, path: str, option: str) -> UnsupportedModuleError:
    """The error for a supported class with an ``option`` its rule cannot write (``option``: "add_bias_kv=True")."""
    return UnsupportedModuleError(f"neurenix.onnx.export: {_where(path)} is a {_name(m)} with {option}, which has no "
                                  "ONNX export rule")


def _unsupported(m: Module, path: str) -> str:
    if isinstance(m, (ModuleList, ModuleDict)):
        hint = f"a {type(m).__name__} has no forward of its own: put its layers in a Sequential"
    elif isinstance(m, MultiheadAttention):
        hint = ("its forward takes query, key and value: it exports as the self-attention of a "
                "TransformerEncoderLayer")
    else:
        hint = ("a model of other modules exports where its layers are composed in a Sequential; register a rule "
                "for a layer of your own with neurenix.onnx.register")
    return (f"neurenix.onnx.export: {_where(path)} is a {_name(m)}, which has no ONNX export rule ({hint}). "
            f"Supported: {', '.join(supported())}")


def _where(path: str) -> str:
    return f"module {path!r}" if path else "the model"


def _name(m: Module) -> str:
    return f"{type(m).__module__}.{type(m).__qualname__}"
