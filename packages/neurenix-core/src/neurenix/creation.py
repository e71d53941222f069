"""Making tensors: from data, filled with a value, ranges, and random draws."""

from __future__ import annotations

import numpy as np

from . import arguments
from . import dtypes as _dt
from . import random as _random
from .arguments import int64, integer, number
from .arguments import shape as _shape
from .capture import recording
from .device import Device, as_device
from .tensor import Tensor, _wrap, full_like, ones_like, tensor, zeros_like


def _from_host(arr: np.ndarray, device, requires_grad: bool) -> Tensor:
    dev = as_device(device)
    t = _wrap(dev.kernels.from_numpy(_dt.canonical(np.asarray(arr, order="C")), dev.index), dev)
    return t.requires_grad_() if requires_grad else t


def _drawn(sample, device, requires_grad: bool, generator=None, op: str = "draw") -> Tensor:
    """A tensor of ``sample(rng)``, ``rng`` the NumPy generator of ``generator=`` (neurenix's if None): a host
    step, so that a compiled function draws fresh numbers at every replay, in the order eager would."""
    rng = _random.numpy_generator(generator, op)
    dev = as_device(device)
    t = _wrap(recording.host(_upload_draw, sample, dev, rng), dev)
    return t.requires_grad_() if requires_grad else t


def _upload_draw(sample, dev: Device, rng):
    return dev.kernels.from_numpy(_dt.canonical(np.asarray(_random.draw(sample, rng), order="C")), dev.index)


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of shape ``size`` filled with ``fill_value`` (dtype inferred from it if not given)."""
    fill_value = arguments.fill_value(fill_value, "full")
    dt = _dt.as_dtype(dtype) if dtype is not None else _dt.scalar_dtype(fill_value)
    dev = as_device(device)
    t = _wrap(dev.kernels.full(_shape((size,), "full"), fill_value, dt.np, dev.index), dev)
    return t.requires_grad_() if requires_grad else t


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros of ``dtype`` (by default the default float dtype: see ``set_default_dtype``)."""
    return full(_shape(size, "zeros"), 0.0, dtype or _dt.default_float, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones of ``dtype`` (by default the default float dtype: see ``set_default_dtype``)."""
    return full(_shape(size, "ones"), 1.0, dtype or _dt.default_float, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of the given shape; neurenix fills it with zeros."""
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive) by ``step``; int64 if all are ints, else the default float
    dtype (float32 unless ``set_default_dtype`` changed it)."""
    if end is None:
        start, end = 0, start
    lo, hi, by = (number(v, name, "arange") for v, name in ((start, "start"), (end, "end"), (step, "step")))
    if by == 0:
        raise ValueError("arange: step must be nonzero")
    if (hi - lo) * by < 0:
        raise ValueError(f"arange: the range from {start} to {end} does not go the way of step {step}")
    arr = np.arange(start, end, step)
    dt = _dt.as_dtype(dtype) if dtype is not None else _dt.from_numpy_kind(arr.dtype) if arr.dtype.kind != "f" \
        else _dt.default_float
    return _from_host(arr.astype(dt.np), device, requires_grad)


def linspace(start: float, end: float, steps: int, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    dt = _dt.as_dtype(dtype or _dt.default_float)
    start, end = (number(v, name, "linspace", finite=False) for v, name in ((start, "start"), (end, "end")))
    steps = integer(steps, "steps", "linspace", minimum=0)
    return _from_host(np.linspace(start, end, steps, dtype=dt.np), device, requires_grad)


def logspace(start: float, end: float, steps: int, base: float = 10.0, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` values from ``base ** start`` to ``base ** end``, evenly spaced on a log scale (exponents as
    ``linspace``'s)."""
    dt = _dt.as_dtype(dtype or _dt.default_float)
    start, end, base = (number(v, name, "logspace", finite=False) for v, name in ((start, "start"), (end, "end"),
                                                                                  (base, "base")))
    steps = integer(steps, "steps", "logspace", minimum=0)
    with np.errstate(over="ignore"):  # (a power beyond the dtype is inf, as in PyTorch)
        values = np.logspace(start, end, steps, base=base).astype(dt.np)
    return _from_host(values, device, requires_grad)


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """The identity matrix (n x m)."""
    dt = _dt.as_dtype(dtype or _dt.default_float)
    n = integer(n, "n", "eye", minimum=0)
    m = n if m is None else integer(m, "m", "eye", minimum=0)
    _shape((n, m), "eye")
    return _from_host(np.eye(n, m, dtype=dt.np), device, requires_grad)


def _float_dtype(dtype) -> _dt.DType:
    dt = _dt.as_dtype(dtype or _dt.default_float)
    if not dt.is_floating_point:
        raise TypeError(f"random draws from a continuous distribution need a float dtype, not {dt}")
    return dt


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from neurenix's seeded generator (see ``manual_seed``) or ``generator``."""
    dt = _float_dtype(dtype)
    shape = _shape(size, "randn")
    return _drawn(lambda g: g.standard_normal(shape, dtype=dt.np), device, requires_grad, generator, "randn")


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) from neurenix's seeded generator or ``generator``."""
    dt = _float_dtype(dtype)
    shape = _shape(size, "rand")
    return _drawn(lambda g: g.random(shape, dtype=dt.np), device, requires_grad, generator, "rand")


def randint(low: int, high: int | None = None, size=(), *, generator=None, dtype=None, device=None) -> Tensor:
    """Random integers in [low, high) (int64 unless ``dtype`` says otherwise). As in PyTorch,
    ``randint(high, size)`` draws from [0, high)."""
    if isinstance(high, (tuple, list)):  # randint(high, size)
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    low, high = int64(low, "low", "randint"), int64(high, "high", "randint")
    if low >= high:
        raise ValueError(f"randint: low ({low}) must be less than high ({high})")
    dt = _dt.as_dtype(dtype or _dt.int64)
    shape = _shape((size,), "randint")
    return _drawn(lambda g: g.integers(low, high, shape).astype(dt.np), device, False, generator, "randint")


def randperm(n: int, *, generator=None, device=None) -> Tensor:
    """A random permutation of ``0..n-1`` (int64)."""
    n = integer(n, "n", "randperm", minimum=0)
    _shape((n,), "randperm")
    return _drawn(lambda g: g.permutation(n).astype(np.int64), device, False, generator, "randperm")


def randn_like(x: Tensor, dtype=None, device=None) -> Tensor:
    return randn(x.shape, dtype=dtype or (x.dtype if x.is_floating_point() else None), device=device or x.device)


def rand_like(x: Tensor, dtype=None, device=None) -> Tensor:
    return rand(x.shape, dtype=dtype or (x.dtype if x.is_floating_point() else None), device=device or x.device)


def _like_draw(x: Tensor, sample, generator=None, op: str = "draw") -> Tensor:
    """A tensor of ``x``'s shape, dtype and device from ``sample(rng, shape)``."""
    shape, npd = x.shape, x._data.dtype
    return _drawn(lambda g: np.asarray(sample(g, shape), dtype=npd), x.device, False, generator, op)


def _float_tensor(x, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{op}: needs a float tensor, not {x.dtype}")
    return x


def uniform_(x: Tensor, a: float = 0.0, b: float = 1.0, *, generator=None) -> Tensor:
    """Fill ``x`` in place with uniform samples in [a, b) from neurenix's seeded generator or ``generator``."""
    a, b = number(a, "a", "uniform_"), number(b, "b", "uniform_")
    if a > b:
        raise ValueError(f"uniform_: a ({a}) must not exceed b ({b})")
    new = _like_draw(_float_tensor(x, "uniform_"), lambda g, shape: g.uniform(a, b, shape), generator, "uniform_")
    return x._assign("uniform_", lambda old: new)


def normal_(x: Tensor, mean: float = 0.0, std: float = 1.0, *, generator=None) -> Tensor:
    """Fill ``x`` in place with normal samples (``mean``, ``std``) from neurenix's seeded generator or
    ``generator``."""
    mean, std = number(mean, "mean", "normal_"), number(std, "std", "normal_", minimum=0.0)
    new = _like_draw(_float_tensor(x, "normal_"), lambda g, shape: g.normal(mean, std, shape), generator,
                     "normal_")
    return x._assign("normal_", lambda old: new)


Tensor.uniform_ = uniform_  # in-place draws are Tensor methods, as in PyTorch (they need the random path here)
Tensor.normal_ = normal_


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    """Normal samples: ``normal(mean, std, size)`` with numbers, or ``normal(mean_tensor, std)`` (either may be a
    tensor; the result broadcasts them), as PyTorch's ``torch.normal``. Differentiable in tensor ``mean``/``std``
    (reparameterised: ``mean + std * eps``)."""
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        ref = mean if isinstance(mean, Tensor) else std
        shape = tuple(np.broadcast_shapes(getattr(mean, "shape", ()), getattr(std, "shape", ())))
        return mean + std * randn(shape, generator=generator, dtype=ref.dtype if ref.is_floating_point() else None,
                                  device=ref.device)
    if size is None:
        raise TypeError("normal: with number mean and std, give size")
    mean, std = number(mean, "mean", "normal"), number(std, "std", "normal", minimum=0.0)
    dt = _float_dtype(dtype)
    shape = _shape((size,), "normal")
    return _drawn(lambda g: g.normal(mean, std, shape).astype(dt.np), device, requires_grad, generator, "normal")


def bernoulli(p: Tensor, *, generator=None) -> Tensor:
    """1 with probability ``p`` (a float tensor of probabilities in [0, 1]), else 0; ``p``'s dtype. Not
    differentiable."""
    _float_tensor(p, "bernoulli")
    values = p.detach().numpy()  # (as multinomial: a probability outside [0, 1], or NaN, would draw nonsense)
    if values.size and not ((values >= 0) & (values <= 1)).all():
        nan = int(np.isnan(values).sum())
        raise ValueError(f"bernoulli: probabilities must be in [0, 1]; got {nan} NaN and "
                         f"{int(((values < 0) | (values > 1)).sum())} outside [0, 1]")
    return (rand(p.shape, generator=generator, dtype=p.dtype, device=p.device) < p.detach()).to(p.dtype)


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *, generator=None) -> Tensor:
    """Indices (int64) drawn from the categorical distributions in the rows of ``input`` (1-D or 2-D,
    non-negative weights, not necessarily normalised); without replacement unless ``replacement``."""
    _float_tensor(input, "multinomial")
    if input.ndim not in (1, 2):
        raise ValueError(f"multinomial: input must be 1-D or 2-D, got shape {input.shape}")
    n = integer(num_samples, "num_samples", "multinomial", minimum=1)
    if not replacement and n > input.shape[-1]:
        raise ValueError(f"multinomial: cannot draw {n} samples without replacement from {input.shape[-1]} categories")
    rows = np.asarray(input.detach().numpy(), dtype=np.float64).reshape(-1, input.shape[-1])
    if (rows < 0).any() or not np.isfinite(rows).all() or (rows.sum(1) <= 0).any():
        raise ValueError("multinomial: weights must be finite, non-negative, and not all zero in a row")
    if not replacement and ((rows > 0).sum(1) < n).any():
        raise ValueError(f"multinomial: a row has fewer than {n} nonzero weights to draw without replacement")
    probs = rows / rows.sum(1, keepdims=True)

    def sample(g):
        return np.stack([g.choice(len(p), n, replace=bool(replacement), p=p) for p in probs]).astype(np.int64)
    out = _drawn(sample, input.device, False, generator, "multinomial")
    return out.reshape((n,)) if input.ndim == 1 else out


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """``data`` as a tensor: a tensor itself when it already has that dtype and device (else converted), a
    NumPy array shared on host backends when its dtype allows, otherwise a copy."""
    if isinstance(data, Tensor):
        return data.to(device=device or data.device, dtype=dtype or data.dtype)
    if isinstance(data, np.ndarray) and dtype is None and data.flags.c_contiguous \
            and data.dtype == _dt.from_numpy_kind(data.dtype).np:
        return from_numpy(data, device)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray, device=None) -> Tensor:
    """A tensor sharing memory with ``array`` on host backends (copied elsewhere); the dtype is kept."""
    return _shared(array, device, "from_numpy")


def _shared(array: np.ndarray, device, name: str) -> Tensor:
    """``array`` as a tensor sharing its memory on host backends, or a TypeError from ``name`` saying why not."""
    dt = _dt.from_numpy_kind(array.dtype)
    if array.dtype != dt.np or not array.flags.c_contiguous:
        raise TypeError(f"{name} needs a C-contiguous array of float32, float64, int64, bool or int8, got "
                        f"{array.dtype} ({'contiguous' if array.flags.c_contiguous else 'non-contiguous'}); "
                        "use neurenix.tensor() to convert")
    dev = as_device(device)
    return _wrap(dev.kernels.from_numpy(_dt.canonical(array), dev.index), dev)


def from_dlpack(ext, device=None) -> Tensor:
    """A tensor from any object with ``__dlpack__`` on the host (a NumPy array, a PyTorch or JAX CPU tensor...),
    sharing its memory on host backends (as :func:`from_numpy`). As with ``from_numpy``, it must be C-contiguous
    and float32, float64, int64, bool or int8: neurenix tensors are contiguous, and a copy would silently break the
    sharing a PyTorch user expects (``neurenix.tensor(numpy.from_dlpack(ext))`` copies and converts)."""
    if not hasattr(ext, "__dlpack__"):
        raise TypeError(f"from_dlpack needs an object with __dlpack__ (an array or tensor), got {type(ext).__name__}")
    try:
        array = np.from_dlpack(ext)
    except (BufferError, RuntimeError) as e:
        raise BufferError(f"from_dlpack: the producer ({type(ext).__name__}) could not export to the host: {e}") \
            from None
    return _shared(array, device, "from_dlpack")


__all__ = [
    "Device",
    "arange",
    "as_tensor",
    "bernoulli",
    "empty",
    "eye",
    "from_dlpack",
    "from_numpy",
    "full",
    "full_like",
    "linspace",
    "multinomial",
    "normal",
    "normal_",
    "ones",
    "ones_like",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "randperm",
    "tensor",
    "uniform_",
    "zeros",
    "zeros_like",
]
