"""The ``cpu-c`` backend: C kernels for device type ``cpu``, above core's NumPy backend.

Buffers are NumPy arrays, as in core's backend, so every kernel not in :data:`KERNELS` is NumPy's. Each
kernel takes the C path only where C is faster (the thresholds beside it, in its family's module) and
hands anything else to NumPy's kernel.
"""

from __future__ import annotations

import os

from neurenix.backend import Backend, hookimpl, numpy_backend, threads
from neurenix.backend.compositions import compose
from neurenix.backend.registry import follow_load

from . import compiler, conv, elementwise, linalg, native, norm, optim, quantized, reductions, softmax, windows

#: kernel name -> kernel, by family; bench/cpu_kernels.py times each against NumPy's
KERNELS = {
    "add": elementwise.add, "sub": elementwise.sub, "mul": elementwise.mul, "div": elementwise.div,
    "maximum": elementwise.maximum, "minimum": elementwise.minimum,
    "relu": elementwise.relu, "relu_backward": elementwise.relu_backward, "where": elementwise.where,
    "sum": reductions.reduce_sum, "max": reductions.reduce_max, "min": reductions.reduce_min, "mean": reductions.mean,
    "exp": softmax.exp, "softmax": softmax.softmax, "log_softmax": softmax.log_softmax,
    "softmax_backward": softmax.softmax_backward, "log_softmax_backward": softmax.log_softmax_backward,
    "cross_entropy": softmax.cross_entropy, "cross_entropy_backward": softmax.cross_entropy_backward,
    "batch_norm": norm.batch_norm, "batch_norm_backward": norm.batch_norm_backward,
    "batch_norm_relu_pool": norm.batch_norm_relu_pool,
    "batch_norm_relu_pool_backward": norm.batch_norm_relu_pool_backward,
    "unfold": windows.unfold, "fold": windows.fold, "unfold_batch": windows.unfold_batch,
    "fold_batch": windows.fold_batch, "max_pool2d": windows.max_pool2d,
    "max_pool2d_backward": windows.max_pool2d_backward,
    "matmul": linalg.matmul, "linear": linalg.linear, "linear_backward": linalg.linear_backward,
    "adam_step": optim.adam_step, "sgd_step": optim.sgd_step,
    "conv2d": conv.conv2d, "conv2d_input_grad": conv.conv2d_input_grad, "conv2d_weight_grad": conv.conv2d_weight_grad,
    "quantized_linear": quantized.quantized_linear, "quantized_conv2d": quantized.quantized_conv2d,
}
CONV = ("conv2d", "conv2d_input_grad", "conv2d_weight_grad")
conv.COMPOSED = compose({**numpy_backend.KERNELS, **{k: v for k, v in KERNELS.items() if k not in CONV}})


def _following_load(fn):
    """``fn``, looking at the load first (a clock read, except every half second): the default thread count of
    our kernels and BLAS drops while other processes keep the CPUs busy (see ``neurenix.backend.threads``)."""
    def kernel(*args, **kwargs):
        follow_load()
        return fn(*args, **kwargs)
    kernel.__name__, kernel.__qualname__, kernel.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
    return kernel


#: kernels every training step runs a few times: where the thread count looks at the load
FOLLOWING_LOAD = ("batch_norm", "batch_norm_backward", "batch_norm_relu_pool", "batch_norm_relu_pool_backward",
                  "softmax", "log_softmax", "cross_entropy", "adam_step", "sgd_step")
if threads.GOVERNOR.follow:  # (NEURENIX_THREADS_FOLLOW_LOAD=0 turns it off: then no extra call on these kernels)
    KERNELS |= {name: _following_load(KERNELS[name]) for name in FOLLOWING_LOAD}


class CpuBackend(Backend):
    """C kernels (cffi, OpenMP) for ``cpu``, overriding the NumPy reference where they are faster."""

    device_type = "cpu"
    name = "cpu-c"
    priority = 10
    dtypes = ("float32", "float64", "int64", "bool", "int8")

    def unavailable_reason(self) -> str | None:
        return native.IMPORT_ERROR

    def device_name(self, index: int) -> str:
        threads = f"OpenMP, {native.lib.nx_get_num_threads()} thread(s)" if native.lib.nx_has_openmp() else \
            "no OpenMP"
        return f"host CPU (C kernels for {native.TARGET}, {threads})"

    def preference(self, index: int) -> int:
        return 1

    def set_num_threads(self, n: int) -> None:
        """Run the C kernels on ``n`` threads (``neurenix.set_num_threads`` calls it); with one, same-shape
        elementwise ops stay on NumPy, where C is faster only with several."""
        native.set_num_threads(n)
        threads.BLAS.set_num_threads(n)  # one budget: BLAS runs between our kernels, never beside them

    def kernels(self):
        return KERNELS

    def compile_program(self, program):
        """With NEURENIX_CPU_FUSE=1, a runner fusing the program's elementwise chains into C generated for it
        (see ``compiler``). Off by default: on the MAML workloads it gains 3-6% over core's replay (their time
        is in matmul and linear kernels, not in elementwise chains), and a new program's first replay waits
        for the C compiler (0.1-3 s; cached on disk after)."""
        if os.environ.get("NEURENIX_CPU_FUSE") != "1":
            return None
        return compiler.compile_program(program)


@hookimpl
def neurenix_backends():
    return [CpuBackend()]
