"""ONNX export: ``export(model, example_input, path)`` writes a model's inference graph, as torch.onnx.export.

The graph is built by walking the model's modules, one rule per module class (``register``); it needs the
``onnx`` package, an optional dependency: ``pip install 'neurenix-core[onnx]'``. Few-shot classifiers of
neurenix.meta (``adapt_to_task`` of Prototypical Networks and R2-D2) export too: see ``neurenix.meta.onnx``.
"""

try:
    import onnx  # noqa: F401
except ImportError as e:
    raise ImportError("neurenix.onnx needs the onnx package, an optional dependency: pip install "
                      "'neurenix-core[onnx]'") from e

# the rules register themselves on import
from . import activation, layers, models, norm, pooling, quantized, transformer  # noqa: F401
from .exporter import export
from .graph import Graph, Value
from .rules import UnsupportedModuleError, register, supported

__all__ = ["Graph", "UnsupportedModuleError", "Value", "export", "register", "supported"]
