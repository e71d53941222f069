"""Exceptions neurenix raises. Each subclasses the built-in a PyTorch or NumPy user would catch."""


class ShapeError(ValueError):
    """Operand shapes do not fit the op (the message names the op and the shapes)."""


class DTypeError(TypeError):
    """An operand's dtype is not accepted by the op (the message names the dtypes)."""


class DeviceError(RuntimeError):
    """A device is unknown, unusable, or tensors on different devices were mixed."""


class BackendError(RuntimeError):
    """A backend plugin failed to load or run, where NEURENIX_REQUIRE_BACKENDS says it must."""


class InPlaceError(RuntimeError):
    """An in-place change that would give a wrong result: of a tensor a backward pass still needs, or of
    a view (which in PyTorch would write into the tensor it was made from)."""


class LinAlgError(RuntimeError):
    """A linear-algebra op could not complete: a singular matrix in ``linalg.solve``, one that is not
    positive-definite in ``linalg.cholesky`` (PyTorch's ``torch.linalg.LinAlgError``). The message names the
    op, the batch element and the problem."""
