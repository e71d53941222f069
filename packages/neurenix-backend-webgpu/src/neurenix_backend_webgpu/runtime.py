"""The WebGPU runtime: one adapter and device, GPU buffers, lazily submitted work, cached pipelines.

Work is recorded, not run: every kernel appends a dispatch (pipeline, buffers, 32-bit parameters) to
a pending list. The list is encoded into one command buffer (one compute pass) and submitted when a
value is read back, when :func:`synchronize` is called, or when it grows past ``FLUSH_AT`` dispatches
(submitted without waiting). The parameters of a whole batch go into one storage buffer, each
dispatch binding its own aligned slice, so recording an op never touches the queue. The host waits
only in :meth:`Runtime.read` (a buffer map), counted in ``stats["host_waits"]``.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from neurenix.errors import DTypeError

FLUSH_AT = 512  # pending dispatches before a submit without waiting (bounds host memory, never waits)

# numpy dtype -> (WGSL storage type, numpy storage dtype). WGSL has no 64-bit types: int64 is stored as
# i32 (values range-checked on the way in), bool as u32 (0 or 1, one per element).
STORAGE = {np.dtype(np.float32): ("f32", np.dtype(np.float32)),
           np.dtype(np.int64): ("i32", np.dtype(np.int32)),
           np.dtype(bool): ("u32", np.dtype(np.uint32))}
I32_MIN, I32_MAX = -(2 ** 31), 2 ** 31 - 1


def wgsl_type(dtype: np.dtype) -> str:
    """The WGSL storage type of a supported dtype; a clear error for the others (float64)."""
    try:
        return STORAGE[np.dtype(dtype)][0]
    except KeyError:
        raise DTypeError(f"the webgpu backend has no {np.dtype(dtype)} (WGSL has no 64-bit floats): "
                         "use float32 on webgpu, or move the tensor to cpu") from None


def check_int_range(values, what: str) -> None:
    """int64 lives in 32 bits on webgpu: refuse values that do not fit rather than wrap them."""
    lo, hi = (int(np.min(values)), int(np.max(values))) if np.size(values) else (0, 0)
    if lo < I32_MIN or hi > I32_MAX:
        raise OverflowError(f"{what}: int64 value {lo if lo < I32_MIN else hi} does not fit the webgpu backend's "
                            f"32-bit integers [{I32_MIN}, {I32_MAX}]")


class WebGPUBuffer:
    """A tensor's values in a GPU storage buffer: C-contiguous, ``size`` elements of 4 bytes.

    Buffers are immutable values, so ``reshape`` returns a new WebGPUBuffer sharing ``gpu``."""

    __slots__ = ("dtype", "gpu", "shape", "size")

    def __init__(self, gpu, shape: tuple, dtype: np.dtype):
        self.gpu, self.shape, self.dtype = gpu, tuple(shape), np.dtype(dtype)
        self.size = math.prod(self.shape)

    def __repr__(self) -> str:
        return f"WebGPUBuffer(shape={self.shape}, dtype={self.dtype}, device=webgpu:0)"


class KernelCompileError(RuntimeError):
    """A WGSL kernel failed to compile or validate: names the kernel and shows the WGSL error."""


def probe():
    """(adapter, None) or (None, why no adapter can be used here)."""
    try:
        import wgpu
    except ImportError as e:
        return None, f"the wgpu package cannot be imported ({e}); pip install neurenix-backend-webgpu"
    try:
        adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
    except Exception as e:
        return None, (f"wgpu-native found no WebGPU adapter ({e}); it needs a Vulkan, Metal, D3D12 or GL driver: "
                      "on Debian/Ubuntu `apt-get install mesa-vulkan-drivers libvulkan1` gives lavapipe (CPU)")
    if adapter is None:
        return None, "wgpu-native found no WebGPU adapter (no Vulkan, Metal, D3D12 or GL device)"
    return adapter, None


def describe(adapter) -> str:
    """'name (GPU|CPU, Vulkan|Metal|D3D12|OpenGL, driver)' for the listing."""
    info = adapter.info
    kind = {"DiscreteGPU": "discrete GPU", "IntegratedGPU": "integrated GPU", "CPU": "CPU"}.get(
        info.get("adapter_type"), info.get("adapter_type") or "unknown type")
    return f"{info.get('device') or info.get('vendor')} ({kind}, {info.get('backend_type')}, {info.get('description')})"


_LIMITS = ("max-storage-buffer-binding-size", "max-buffer-size", "max-compute-workgroups-per-dimension",
           "max-compute-invocations-per-workgroup", "max-compute-workgroup-size-x", "max-compute-workgroup-size-y",
           "max-compute-workgroup-storage-size", "max-storage-buffers-per-shader-stage")


class Runtime:
    """The device, its limits, the pending dispatches and the pipeline cache."""

    def __init__(self, adapter):
        import wgpu
        self.wgpu = wgpu
        self.adapter = adapter
        limits = dict(adapter.limits)
        self.device = adapter.request_device_sync(required_limits={k: limits[k] for k in _LIMITS})
        self.limits = dict(self.device.limits)
        self.max_binding = self.limits["max-storage-buffer-binding-size"]
        self.max_groups = self.limits["max-compute-workgroups-per-dimension"]
        self.align = self.limits["min-storage-buffer-offset-alignment"] // 4  # in 32-bit words
        # matmul tile edge: 16 x 16 on GPUs; 8 x 8 on CPU adapters (lavapipe), where workgroup
        # barriers cost per invocation and small workgroups measured twice as fast
        self.tile = 8 if adapter.info.get("adapter_type") == "CPU" else 16
        self.pipelines: dict = {}
        self.layouts: dict = {}
        self.pending: list = []
        self.stats: Counter = Counter()
        self.usage = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST

    # -- memory ----------------------------------------------------------------------------------
    def check_size(self, nbytes: int, what: str) -> None:
        if nbytes > self.max_binding:
            raise MemoryError(f"{what} needs {nbytes} bytes in one buffer, more than this adapter's "
                              f"max-storage-buffer-binding-size ({self.max_binding} bytes): split the tensor")

    def alloc(self, shape: tuple, dtype: np.dtype) -> WebGPUBuffer:
        wgsl_type(dtype)
        n = math.prod(shape)
        self.check_size(4 * n, f"a {np.dtype(dtype)} tensor of shape {tuple(shape)}")
        return WebGPUBuffer(self.device.create_buffer(size=max(4, 4 * n), usage=self.usage), shape, dtype)

    def upload(self, array: np.ndarray) -> WebGPUBuffer:
        _, store = STORAGE.get(array.dtype, (None, None))
        if store is None:
            wgsl_type(array.dtype)  # raises the dtype error
        if array.dtype.kind == "i":
            check_int_range(array, "from_numpy")
        data = np.ascontiguousarray(array, dtype=store).reshape(-1)
        self.check_size(data.nbytes, f"a {array.dtype} tensor of shape {array.shape}")
        if data.size == 0:
            return self.alloc(array.shape, array.dtype)
        gpu = self.device.create_buffer_with_data(data=data, usage=self.usage)
        self.stats["uploads"] += 1
        return WebGPUBuffer(gpu, array.shape, array.dtype)

    def read(self, buf: WebGPUBuffer) -> np.ndarray:
        """The buffer's values on the host: submits pending work and waits for it (one host wait)."""
        store = STORAGE[buf.dtype][1]
        nbytes = 4 * buf.size
        if nbytes == 0:
            return np.zeros(buf.shape, buf.dtype)
        wgpu = self.wgpu
        staging = self.device.create_buffer(size=nbytes, usage=wgpu.BufferUsage.MAP_READ | wgpu.BufferUsage.COPY_DST)
        self.flush(lambda enc: enc.copy_buffer_to_buffer(buf.gpu, 0, staging, 0, nbytes))
        # map_sync waits for the copy through the map callback (not queue.on_submitted_work_done,
        # which is broken in wgpu 0.32.0)
        staging.map_sync(wgpu.MapMode.READ)
        raw = np.frombuffer(staging.read_mapped(), dtype=store).copy()
        staging.unmap()
        staging.destroy()
        self.stats["host_waits"] += 1
        return raw.astype(buf.dtype, copy=False).reshape(buf.shape)

    # -- pipelines -------------------------------------------------------------------------------
    def layout(self, nbuf: int):
        """Bind group layout for (params, out, inputs...): ``nbuf`` storage buffers in all."""
        if nbuf not in self.layouts:
            limit = self.limits["max-storage-buffers-per-shader-stage"]
            if nbuf > limit:
                raise RuntimeError(f"a kernel with {nbuf} storage buffers exceeds this adapter's "
                                   f"max-storage-buffers-per-shader-stage ({limit}): index with fewer index tensors")
            wgpu = self.wgpu
            entries = [{"binding": i, "visibility": wgpu.ShaderStage.COMPUTE,
                        "buffer": {"type": wgpu.BufferBindingType.storage if i == 1
                                   else wgpu.BufferBindingType.read_only_storage}} for i in range(nbuf)]
            bgl = self.device.create_bind_group_layout(entries=entries)
            self.layouts[nbuf] = (bgl, self.device.create_pipeline_layout(bind_group_layouts=[bgl]))
        return self.layouts[nbuf]

    def pipeline(self, key: tuple, nbuf: int, source):
        """The compute pipeline for ``key`` (kernel name and specialisation), compiled once."""
        p = self.pipelines.get(key)
        if p is None:
            code = source()
            label = "/".join(map(str, key))
            try:
                module = self.device.create_shader_module(label=label, code=code)
                p = self.device.create_compute_pipeline(label=label, layout=self.layout(nbuf)[1],
                                                        compute={"module": module, "entry_point": "main"})
            except Exception as e:
                numbered = "\n".join(f"{i + 1:4} {line}" for i, line in enumerate(code.splitlines()))
                raise KernelCompileError(f"WGSL kernel {label!r} failed to compile:\n{e}\n--- WGSL ---\n{numbered}") \
                    from e
            self.pipelines[key] = p
            self.stats["pipelines_compiled"] += 1
        return p

    # -- recording and submitting ----------------------------------------------------------------
    def groups(self, n: int, per_group: int) -> int:
        """Workgroups for ``n`` items: capped at the adapter's per-dimension count (kernels loop over the rest)."""
        return max(1, min(-(-n // per_group), self.max_groups))

    def dispatch(self, pipeline, nbuf: int, buffers: list, params, grid: tuple) -> None:
        """Record one dispatch: ``buffers`` are the out buffer then the inputs (GPU buffers)."""
        self.pending.append((pipeline, nbuf, buffers, np.asarray(params, dtype=np.uint32), grid))
        self.stats["dispatches"] += 1
        if len(self.pending) >= FLUSH_AT:
            self.flush()

    def flush(self, extra=None) -> None:
        """Encode the pending dispatches into one compute pass and submit them (no wait)."""
        if not self.pending and extra is None:
            return
        pending, self.pending = self.pending, []
        enc = self.device.create_command_encoder()
        if pending:
            offsets, chunks, at = [], [], 0
            for _, _, _, params, _ in pending:
                size = -(-max(len(params), 1) // self.align) * self.align
                offsets.append(at)
                chunk = np.zeros(size, np.uint32)
                chunk[:len(params)] = params
                chunks.append(chunk)
                at += size
            pbuf = self.device.create_buffer_with_data(data=np.concatenate(chunks), usage=self.wgpu.BufferUsage.STORAGE)
            cpass = enc.begin_compute_pass()
            for (pipeline, nbuf, buffers, params, grid), off in zip(pending, offsets):
                entries = [{"binding": 0, "resource": {"buffer": pbuf, "offset": 4 * off,
                                                       "size": 4 * max(len(params), 1)}}]
                entries += [{"binding": i + 1, "resource": {"buffer": b, "offset": 0, "size": b.size}}
                            for i, b in enumerate(buffers)]
                cpass.set_pipeline(pipeline)
                cpass.set_bind_group(0, self.device.create_bind_group(layout=self.layout(nbuf)[0], entries=entries))
                cpass.dispatch_workgroups(*grid)
            cpass.end()
        if extra is not None:
            extra(enc)
        self.device.queue.submit([enc.finish()])
        self.stats["submits"] += 1

    def synchronize(self) -> None:
        """Wait for all submitted work (a 4-byte read: one host wait)."""
        self.read(self.alloc((1,), np.dtype(np.float32)))
