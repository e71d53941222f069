"""The WebGPU runtime: one adapter and device, GPU buffers, lazily submitted work, cached pipelines.

Work is recorded, not run: every kernel appends a dispatch (pipeline, buffers, 32-bit parameters) to
a pending list. The list is encoded into one command buffer (one compute pass) and submitted when a
value is read back, when :func:`synchronize` is called, or when it grows past ``FLUSH_AT`` dispatches
(submitted without waiting). A compiled program's replay joins the list as one prepared item
(:meth:`Runtime.enqueue`: its bind groups made once), encoded in order with the dispatches around it.
The parameters of a whole batch go into one storage buffer, each
dispatch binding its own aligned slice, so recording an op never touches the queue. The host waits
only in :meth:`Runtime.read` (a buffer map), counted in ``stats["host_waits"]``.

Threads share one device, one pending list and one queue, behind one lock (:attr:`Runtime.lock`). A
dispatch must reach the queue before any read that may depend on it, whichever thread records it or
reads: appending to the pending list, encoding and submitting it, and submitting a read's copy are
therefore one critical section each. The wait for a mapped buffer is outside it, so one thread
reading does not stop the others from recording.

Kernels whose result can leave what the device holds (an int64 sum beyond 32 bits) raise a flag in a
small status buffer instead of writing a wrong number silently. Every read copies the flags along
with its data (no extra wait) and clears them; :meth:`Runtime.read` then raises the error they name,
as CUDA reports a device-side assert at the next synchronisation.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
import threading
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

# status flags (bits of word 0 of the status buffer) a kernel sets with atomicOr, and what each means
INT_OVERFLOW = 1
STATUS_WORDS = 4  # 16 bytes: copy offsets and sizes stay multiples of 4 (the words WGSL's atomics use)
STATUS_ERRORS = {INT_OVERFLOW: (OverflowError, "an int64 result left the webgpu backend's 32-bit integer range "
                                               f"[{I32_MIN}, {I32_MAX}] (int64 is held in 32 bits on webgpu: "
                                               "compute on cpu, or in float32, where values can exceed it)")}


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

    __slots__ = ("__weakref__", "dtype", "gpu", "shape", "size")  # (weak: a trace forgets dead ones)

    def __init__(self, gpu, shape: tuple, dtype: np.dtype):
        self.gpu, self.shape, self.dtype = gpu, tuple(shape), np.dtype(dtype)
        self.size = math.prod(self.shape)

    def __repr__(self) -> str:
        return f"WebGPUBuffer(shape={self.shape}, dtype={self.dtype}, device=webgpu:0)"


class KernelCompileError(RuntimeError):
    """A WGSL kernel failed to compile or validate: names the kernel and shows the WGSL error."""


@contextlib.contextmanager
def _without_wsi_noise():
    """Keep Mesa's "XDG_RUNTIME_DIR is invalid or not set" off the terminal: its window-system layer (which
    compute never uses) writes it to fd 2 when wgpu-native first enumerates adapters with the variable unset,
    as on servers and CI. Whatever else is written meanwhile passes through, after the call."""
    if os.environ.get("XDG_RUNTIME_DIR"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            rest = [line for line in caught.read().splitlines(keepends=True) if b"XDG_RUNTIME_DIR" not in line]
            if rest:
                os.write(2, b"".join(rest))


def probe():
    """(adapter, None) or (None, why no adapter can be used here)."""
    try:
        import wgpu
    except ImportError as e:
        return None, f"the wgpu package cannot be imported ({e}); pip install neurenix-backend-webgpu"
    try:
        with _without_wsi_noise():
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
        self.cpu = adapter.info.get("adapter_type") == "CPU"
        self.tile = 8 if self.cpu else 16
        self.pipelines: dict = {}
        self.layouts: dict = {}
        self.pending: list = []
        self.stats: Counter = Counter()
        self.usage = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST
        # not re-entrant (cheaper): only the public entry points take it, never a method called under it
        self.lock = threading.Lock()
        self.status = self.device.create_buffer(size=4 * STATUS_WORDS, usage=self.usage)  # zeroed at creation
        self._watch = threading.local()  # .items: where this thread's dispatches are also listed (see watching)

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
        gpu = self.device.create_buffer_with_data(data=data, usage=self.usage)  # written at creation: no queue
        with self.lock:
            self.stats["uploads"] += 1
        return WebGPUBuffer(gpu, array.shape, array.dtype)

    def read(self, buf: WebGPUBuffer) -> np.ndarray:
        """The buffer's values on the host: submits pending work and waits for it (one host wait).

        The status flags travel in the same staging buffer, after the data, and are cleared in the same
        submission; a flag raised by any kernel submitted so far is raised here as its error."""
        store = STORAGE[buf.dtype][1]
        nbytes = 4 * buf.size
        wgpu = self.wgpu
        staging = self.device.create_buffer(size=nbytes + 4 * STATUS_WORDS,
                                            usage=wgpu.BufferUsage.MAP_READ | wgpu.BufferUsage.COPY_DST)

        def copy(enc):
            if nbytes:
                enc.copy_buffer_to_buffer(buf.gpu, 0, staging, 0, nbytes)
            enc.copy_buffer_to_buffer(self.status, 0, staging, nbytes, 4 * STATUS_WORDS)
            enc.clear_buffer(self.status)

        with self.lock:
            self._flush(copy)
            self.stats["host_waits"] += 1
        # map_sync waits for the copy through the map callback (not queue.on_submitted_work_done,
        # which is broken in wgpu 0.32.0); outside the lock, so other threads keep recording meanwhile
        staging.map_sync(wgpu.MapMode.READ)
        raw = np.frombuffer(staging.read_mapped(), dtype=np.uint8).copy()
        staging.unmap()
        staging.destroy()
        raise_status(int(raw[nbytes:nbytes + 4].view(np.uint32)[0]))
        return raw[:nbytes].view(store).astype(buf.dtype, copy=False).reshape(buf.shape)

    # -- pipelines -------------------------------------------------------------------------------
    def layout(self, nbuf: int, status: bool = False):
        """Bind group layout for (params, out, inputs..., [status]): ``nbuf`` storage buffers in all, the
        last one the read-write status buffer when ``status``."""
        key = (nbuf, status)
        if key not in self.layouts:
            limit = self.limits["max-storage-buffers-per-shader-stage"]
            if nbuf > limit:
                raise RuntimeError(f"a kernel with {nbuf} storage buffers exceeds this adapter's "
                                   f"max-storage-buffers-per-shader-stage ({limit}): index with fewer index tensors")
            wgpu = self.wgpu
            writable = {1, nbuf - 1} if status else {1}
            entries = [{"binding": i, "visibility": wgpu.ShaderStage.COMPUTE,
                        "buffer": {"type": wgpu.BufferBindingType.storage if i in writable
                                   else wgpu.BufferBindingType.read_only_storage}} for i in range(nbuf)]
            bgl = self.device.create_bind_group_layout(entries=entries)
            self.layouts[key] = (bgl, self.device.create_pipeline_layout(bind_group_layouts=[bgl]))
        return self.layouts[key]

    def pipeline(self, key: tuple, nbuf: int, source, status: bool = False):
        """The compute pipeline for ``key`` (kernel name and specialisation), compiled once. ``status``:
        the kernel binds the status buffer last (``nbuf`` counts it)."""
        p = self.pipelines.get(key)  # the hot path: a dict lookup, atomic under the GIL
        if p is None:
            with self.lock:  # compiled once even when two threads miss at the same time
                p = self.pipelines.get(key)
                if p is None:
                    p = self.pipelines[key] = self._compile(key, nbuf, source, status)
                    self.stats["pipelines_compiled"] += 1
        return p

    def _compile(self, key: tuple, nbuf: int, source, status: bool):
        code = source()
        label = "/".join(map(str, key))
        try:
            module = self.device.create_shader_module(label=label, code=code)
            return self.device.create_compute_pipeline(label=label, layout=self.layout(nbuf, status)[1],
                                                       compute={"module": module, "entry_point": "main"})
        except Exception as e:
            numbered = "\n".join(f"{i + 1:4} {line}" for i, line in enumerate(code.splitlines()))
            raise KernelCompileError(f"WGSL kernel {label!r} failed to compile:\n{e}\n--- WGSL ---\n{numbered}") \
                from e

    # -- recording and submitting ----------------------------------------------------------------
    def groups(self, n: int, per_group: int) -> int:
        """Workgroups for ``n`` items: capped at the adapter's per-dimension count (kernels loop over the rest)."""
        return max(1, min(-(-n // per_group), self.max_groups))

    def dispatch(self, pipeline, nbuf: int, buffers: list, params, grid: tuple, status: bool = False) -> None:
        """Record one dispatch: ``buffers`` are the out buffer then the inputs (GPU buffers); with
        ``status`` the status buffer is bound after them."""
        if status:
            buffers = [*buffers, self.status]
        item = (pipeline, nbuf, status, buffers, np.asarray(params, dtype=np.uint32), grid)
        watched = getattr(self._watch, "items", None)
        if watched is not None:
            watched.append(item)
        with self.lock:
            self.pending.append(item)
            self.stats["dispatches"] += 1
            if len(self.pending) >= FLUSH_AT:
                self._flush()

    @contextlib.contextmanager
    def watching(self):
        """Lists the dispatches this thread records inside the block (they are still recorded as usual):
        how a compiled program learns the dispatches each of its kernels makes."""
        self._watch.items = items = []
        try:
            yield items
        finally:
            self._watch.items = None

    def enqueue(self, encode) -> None:
        """Record prepared work: ``encode(encoder)`` is called, in order with the dispatches around it, when
        the pending work is encoded (a compiled program's replay: copies and dispatches bound in advance)."""
        with self.lock:
            self.pending.append(encode)
            self.stats["replays_enqueued"] += 1
            if len(self.pending) >= FLUSH_AT:
                self._flush()

    def flush(self, extra=None) -> None:
        """Encode the pending dispatches into one compute pass and submit them (no wait); ``extra(encoder)``
        records more commands after the pass, in the same submission."""
        with self.lock:
            self._flush(extra)

    def _flush(self, extra=None) -> None:
        # the caller holds the lock: the list taken here is submitted before any other thread submits
        if not self.pending and extra is None:
            return
        pending, self.pending = self.pending, []
        enc = self.device.create_command_encoder()
        run: list = []  # consecutive dispatches share one compute pass; prepared work encodes itself between
        for item in pending:
            if type(item) is tuple:
                run.append(item)
                continue
            if run:
                self._encode(enc, run)
                run = []
            item(enc)
        if run:
            self._encode(enc, run)
        if extra is not None:
            extra(enc)
        self.device.queue.submit([enc.finish()])
        self.stats["submits"] += 1

    def _encode(self, enc, pending: list) -> None:
        """One compute pass over ``pending``; their parameters in one buffer, each dispatch its aligned slice."""
        offsets, chunks, at = [], [], 0
        for item in pending:
            params = item[4]
            size = -(-max(len(params), 1) // self.align) * self.align
            offsets.append(at)
            chunk = np.zeros(size, np.uint32)
            chunk[:len(params)] = params
            chunks.append(chunk)
            at += size
        pbuf = self.device.create_buffer_with_data(data=np.concatenate(chunks), usage=self.wgpu.BufferUsage.STORAGE)
        cpass = enc.begin_compute_pass()
        for (pipeline, nbuf, status, buffers, params, grid), off in zip(pending, offsets):
            entries = [{"binding": 0, "resource": {"buffer": pbuf, "offset": 4 * off, "size": 4 * max(len(params), 1)}}]
            entries += [{"binding": i + 1, "resource": {"buffer": b, "offset": 0, "size": b.size}}
                        for i, b in enumerate(buffers)]
            cpass.set_pipeline(pipeline)
            cpass.set_bind_group(0, self.device.create_bind_group(layout=self.layout(nbuf, status)[0], entries=entries))
            cpass.dispatch_workgroups(*grid)
        cpass.end()

    def synchronize(self) -> None:
        """Wait for all submitted work (a 4-byte read: one host wait; raises what the status flags name)."""
        self.read(self.alloc((1,), np.dtype(np.float32)))


def raise_status(flags: int) -> None:
    """Raise the error of the first status flag set in ``flags`` (a kernel found a result it cannot hold)."""
    for bit, (exc, message) in STATUS_ERRORS.items():
        if flags & bit:
            raise exc(f"webgpu: {message}; reported at this read, the first after the kernel that found it")
