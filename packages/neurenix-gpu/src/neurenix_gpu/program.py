"""A program recorded by ``neurenix.compile``, run on one GPU with what eager works out per call worked out once.

:class:`ProgramRunner` is what :meth:`GpuBackend.compile_program` returns. Its first call runs the program as
core's replay would, kernel by kernel, with a :class:`Recorder` on the backend's devices that keeps every kernel
launch and BLAS call with a private copy of its arguments (their sizes read from the kernel's declaration,
``source.kernel_params``) and notes where each device address in them came from. From that it makes a plan,
a list of steps that later calls run in one loop:

- a launch: the kernel function, grid, block and packed ``void*[]`` as the first call made them; addresses that
  change between calls (the inputs', results of steps run as they are, new memory of outputs) are written into
  the packed arguments first, so issuing it is one driver call;
- a GEMM: the vendor call with its arguments, the changing pointers cast anew;
- a call of the instruction's kernel as it is: host steps (random draws, index checks), and kernels that
  cannot be repeated from their launches (advanced indexing reads its index on the host);
- a buffer: a result leaving the plan (for a call as it is, or as an output) made a GpuBuffer.

Memory that leaves (outputs, arguments of calls as they are) is allocated anew at each call, so a call never
overwrites what the last one returned. Intermediates get blocks held by the runner, planned once and shared by
intermediates whose uses do not overlap, as the caching allocator would reuse them eagerly; their addresses are
written into the packed arguments once. All work is on the device's one stream: a block is reused only after
its last reader, and the next call's writes follow this call's reads. A lock makes the calls of one runner one
at a time (they share the blocks and the packed arguments).
"""

from __future__ import annotations

import threading

from neurenix.capture.program import Const, Program, Value, replay, values

from .errors import GpuError
from .runtime import GpuBuffer, GpuDevice
from .source import ffi, kernel_params

LAUNCH, GEMM, CALL, BUFFER = range(4)  # step kinds
_planning = threading.Lock()  # recorders hook devices process-wide: one plan at a time
NEW, SLOT, HELD = range(3)  # where a buffer step's memory is: new at this call, a slot's buffer's, a constant's
_U64 = ffi.typeof("unsigned long long*")


class _Mem:
    """Memory allocated by a kernel of the first call: where its uses start and end in the steps, and whether
    it leaves the plan (then it is allocated anew at each call; else it gets one of the runner's blocks)."""

    __slots__ = ("address", "first", "fresh", "last", "leaves", "memory")

    def __init__(self, memory, first: int):
        self.memory, self.first, self.last, self.leaves = memory, first, first, False
        self.fresh = self.address = None  # its index among a call's new memory; or its block's address


class Recorder:
    """Installed on a backend's devices (and its BLAS) while the first call runs: on the planning thread, it
    keeps the launches, GEMMs and allocations of the current instruction, and notes what cannot be repeated
    (host transfers, another device, a kernel of unknown parameters). Other threads pass straight through."""

    def __init__(self, devices: list[GpuDevice], device: GpuDevice):
        self.devices, self.device, self.thread = devices, device, threading.get_ident()
        self.blas = device.driver.blas
        self.begin()

    def begin(self) -> None:
        self.issued: list = []   # ("launch", fn, grid, block, params, keep, pointers) / ("gemm", fn, args, failed)
        self.allocated: list = []
        self.problem: str | None = None

    def __enter__(self) -> Recorder:
        for dev in self.devices:
            dev.run = self._hook(dev, dev.run, self._launch)
            dev.upload = self._hook(dev, dev.upload, self._transfer)
            dev.download = self._hook(dev, dev.download, self._transfer)
            dev.allocator = _RecordingAllocator(dev.allocator, self)
        if self.blas is not None:
            self.blas.call = self._hook(None, self.blas.call, self._gemm)
        return self

    def __exit__(self, *exc) -> None:
        for dev in self.devices:
            del dev.run, dev.upload, dev.download  # the class's methods again
            dev.allocator = dev.allocator.real
        if self.blas is not None:
            del self.blas.call

    def _hook(self, dev, real, record):
        def hooked(*args):
            if threading.get_ident() == self.thread:
                record(dev, *args)
            return real(*args)
        return hooked

    def _launch(self, dev: GpuDevice, fn, grid, block, params) -> None:
        name = dev.kernel_name(fn)
        sig = kernel_params(name) if name else None
        if dev is not self.device or sig is None:
            self.problem = f"kernel {name} on {dev.name}"
            return
        keep = ffi.new("char[]", 8 * sum(-(-p.size // 8) for p in sig))
        cells, pointers, at = [], [], 0
        for k, p in enumerate(sig):
            cell = keep + at
            ffi.memmove(cell, params[k], p.size)
            cells.append(cell)
            if p.pointer:
                pointers.append((ffi.cast(_U64, cell), ffi.cast(_U64, params[k])[0], p.written))
            at += -(-p.size // 8) * 8
        self.issued.append(("launch", fn, grid, block, ffi.new("void*[]", cells), keep, pointers))

    def _gemm(self, dev, fn, args, failed, detail) -> None:
        self.issued.append(("gemm", fn, args, failed, detail))

    def _transfer(self, dev, *args) -> None:
        self.problem = "it copies between host and device"

    def allocate(self, memory) -> None:
        if threading.get_ident() == self.thread:
            self.allocated.append(memory)


class _RecordingAllocator:
    """A device's allocator while recording: hands out the same memory, and tells the recorder."""

    def __init__(self, real, recorder: Recorder):
        self.real, self.recorder = real, recorder

    def alloc(self, nbytes: int):
        memory = self.real.alloc(nbytes)
        self.recorder.allocate(memory)
        return memory

    def __getattr__(self, name):
        return getattr(self.real, name)


class _Plan:
    """What a later call runs: the steps, and where its buffers and addresses come from."""

    def __init__(self, device, steps, slots, inputs, fresh, nsources, outputs, blocks):
        self.device, self.steps, self.slots, self.inputs, self.fresh = device, steps, slots, inputs, fresh
        self.addresses, self.outputs, self.blocks = [0] * nsources, outputs, blocks


class ProgramRunner:
    """``run(inputs) -> outputs`` for a program on one device of ``backend``: the first call plans (see the
    module docstring), later calls run the plan. A program whose buffers are on several devices, or in which
    no kernel could be planned, is left to core's replay. ``launches``: the launches and GEMMs a later call
    issues from the plan."""

    def __init__(self, program: Program, backend):
        self.program, self.backend = program, backend
        self.lock = threading.Lock()
        self.plan: _Plan | None = None
        self.fallback = None  # core's replay, when there is nothing to plan
        self.launches = 0

    def __call__(self, inputs: list) -> list:
        with self.lock:
            if self.plan is not None:
                return _run(self.plan, inputs)
            if self.fallback is not None:
                return self.fallback(inputs)
            return self._first(inputs)

    def _first(self, inputs: list) -> list:
        buffers = [*inputs, *(c.buffer for ins in self.program.instructions for c in values(ins.args, Const))]
        devices = {id(b.device): b.device for b in buffers if type(b) is GpuBuffer}
        if len(devices) != 1:
            self.fallback = replay(self.program)
            return self.fallback(inputs)
        if not _planning.acquire(blocking=False):  # another runner is planning: this call replays, a later plans
            return replay(self.program)(inputs)
        try:
            planner = _Planner(self.program, next(iter(devices.values())))
            with Recorder(list(self.backend._devices.values()), planner.device) as recorder:
                outputs = planner.run(inputs, recorder)
        finally:
            _planning.release()
        if planner.launches:
            self.plan, self.launches = planner.finish(), planner.launches
        else:
            self.fallback = replay(self.program)
        return outputs


def _run(plan: _Plan, inputs: list) -> list:
    """A later call: one loop over the steps, with no Python call per launch but the driver's."""
    dev, slots, addresses = plan.device, [None] * plan.slots, plan.addresses
    driver, stream = dev.driver, dev.stream
    launch, alloc = driver.launch, dev.allocator.alloc
    driver.activate(dev.index)
    for (k, source), buf in zip(plan.inputs, inputs):
        slots[k] = buf
        if source is not None:
            addresses[source] = buf.ptr
    mems = []
    for size, source in plan.fresh:
        m = alloc(size)
        mems.append(m)
        addresses[source] = m.ptr
    for step in plan.steps:
        kind = step[0]
        if kind == LAUNCH:
            for cell, source in step[5]:
                cell[0] = addresses[source]
            launch(step[1], step[2], step[3], step[4], stream)
        elif kind == GEMM:
            _, fn, args, patches, cast, lock, failed, detail = step
            for k, source, ctype in patches:
                args[k] = cast(ctype, addresses[source])
            with lock:
                status = fn(*args)
            if status:
                raise GpuError(f"{failed}: status {status} {detail}")
        elif kind == BUFFER:
            _, k, shape, dtype, how, ref = step
            slots[k] = GpuBuffer(dev, shape, dtype, mems[ref] if how == NEW else slots[ref].mem if how == SLOT else ref)
        else:
            _, ins, updates = step
            _bind(ins.out, ins.fn(*_resolve(ins.args, slots)), slots)
            for k, source in updates:
                addresses[source] = slots[k].ptr
    out = []
    for k, const in plan.outputs:
        out.append(const if k is None else slots[k])
    return out


class _Planner:
    """Runs the program once under a recorder, and turns what it recorded into a plan.

    Where a buffer lives, while planning: a :class:`_Mem` (allocated by a planned kernel), ``("slot", k)`` (the
    buffer in slot k at each call: an input, a result of a call as it is), ``("const", memory)`` or
    ``("null",)``."""

    def __init__(self, program: Program, device: GpuDevice):
        self.program, self.device = program, device
        self.size = 1 + max([v.index for v in program.inputs]
                            + [v.index for ins in program.instructions for v in values(ins.out)], default=0)
        self.steps: list = []
        self.launches = 0
        self.mems: dict[int, _Mem] = {}     # address -> memory allocated by a planned kernel
        self.dynamic: dict[int, int] = {}   # address -> the slot of a buffer read from the slots at each call
        self.sources: dict[int, int] = {}   # slot -> its index in the addresses of a call
        self.held: dict[int, tuple] = {}    # slot -> (shape, dtype, where) of a planned kernel's result
        self.in_slots: set[int] = set()     # slots holding a buffer at a call (inputs, calls' results, buffers)
        self.keep: list = []                # all the first call made: no address is reused while planning
        self.consts = {c.buffer.ptr: c.buffer.mem for ins in program.instructions for c in values(ins.args, Const)
                       if type(c.buffer) is GpuBuffer}

    def run(self, inputs: list, recorder: Recorder) -> list:
        slots = [None] * self.size
        for v, buf in zip(self.program.inputs, inputs):
            slots[v.index] = buf
            self._dynamic(v.index, buf)
        for ins in self.program.instructions:
            recorder.begin()
            result = ins.fn(*_resolve(ins.args, slots))
            self.keep += [result, *recorder.allocated]
            _bind(ins.out, result, slots)
            if ins.host or not self._planned(ins, slots, recorder):
                self._call(ins, slots)
        for v in self.program.outputs:
            if isinstance(v, Value):
                self._leave(v.index)
        return [v.buffer if isinstance(v, Const) else slots[v.index] for v in self.program.outputs]

    def _dynamic(self, k: int, buf) -> None:
        self.in_slots.add(k)
        if type(buf) is GpuBuffer:
            self.dynamic.setdefault(buf.ptr, k)

    def _where(self, address: int, new: dict):
        mem = new.get(address) or self.mems.get(address)
        if mem is not None:
            return mem
        if address in self.dynamic:
            k = self.dynamic[address]
            self.sources.setdefault(k, len(self.sources))  # its address is written into the addresses per call
            return ("slot", k)
        if address in self.consts:
            return ("const", self.consts[address])
        return ("null",) if address == 0 else None

    def _planned(self, ins, slots, recorder: Recorder) -> bool:
        """Add the steps of a kernel that can be repeated from what it issued; False (nothing added) if not."""
        if recorder.problem is not None:
            return False
        new = {m.ptr: _Mem(m, len(self.steps)) for m in recorder.allocated}
        held = {}
        for v in values(ins.out):
            buf = slots[v.index]
            if type(buf) is not GpuBuffer or buf.device is not self.device:
                return False
            held[v.index] = (buf.shape, buf.dtype, self._where(buf.ptr, new))
            if held[v.index][2] is None:
                return False
        steps = []
        for item in recorder.issued:
            step = self._launch(item, new) if item[0] == "launch" else self._gemm(item, new)
            if step is None:
                return False
            steps.append(step)
        self.mems.update(new)
        self.held.update(held)
        self.steps += steps
        self.launches += len(steps)
        return True

    def _launch(self, item, new: dict):
        _, fn, grid, block, params, keep, pointers = item
        patches = []
        for cell, address, written in pointers:
            where = self._where(address, new)
            if where is None or (written and address not in new):  # kernels write only memory they allocate
                return None
            patches.append((cell, where))
        return [LAUNCH, fn, grid, block, params, patches, keep]

    def _gemm(self, item, new: dict):
        _, fn, args, failed, detail = item
        patches = []
        for k, a in enumerate(args):
            if isinstance(a, ffi.CData) and ffi.typeof(a).kind == "pointer":
                where = self._where(int(ffi.cast("uintptr_t", a)), new)
                if isinstance(where, _Mem) or (where is not None and where[0] == "slot"):
                    patches.append((k, where, ffi.typeof(a)))
        return [GEMM, fn, list(args), patches, failed, detail]

    def _call(self, ins, slots) -> None:
        """A step that calls the instruction's kernel as it is: its arguments made buffers, its results read."""
        for v in values(ins.args):
            self._leave(v.index)
        for v in values(ins.out):
            self._dynamic(v.index, slots[v.index])
        self.steps.append([CALL, ins, [v.index for v in values(ins.out)]])

    def _leave(self, k: int) -> None:
        """Slot ``k`` holds a buffer at each call from here on (for a call as it is, or an output)."""
        if k in self.in_slots:
            return
        self.in_slots.add(k)
        shape, dtype, where = self.held[k]
        if isinstance(where, _Mem):
            where.leaves = True
        self.steps.append([BUFFER, k, shape, dtype, where])

    # -- after the first call -----------------------------------------------------------------------------
    def finish(self) -> _Plan:
        """The plan: the runner's blocks allocated, every address resolved."""
        self._uses()
        blocks = self._blocks()
        leaving = list({id(m): m for m in self.mems.values() if m.leaves}.values())
        fresh = []
        for n, mem in enumerate(leaving):
            mem.fresh = n
            fresh.append((mem.memory.size, len(self.sources) + n))
        steps = [self._resolved(step) for step in self.steps]
        inputs = [(v.index, self.sources.get(v.index)) for v in self.program.inputs]
        outputs = [(None, v.buffer) if isinstance(v, Const) else (v.index, None) for v in self.program.outputs]
        return _Plan(self.device, steps, self.size, inputs, fresh, len(self.sources) + len(fresh), outputs, blocks)

    def _uses(self) -> None:
        """Each memory's last step."""
        for n, step in enumerate(self.steps):
            wheres = [p[1] for p in step[5]] if step[0] == LAUNCH else [p[1] for p in step[3]] \
                if step[0] == GEMM else []
            for w in wheres:
                if isinstance(w, _Mem):
                    w.last = max(w.last, n)

    def _blocks(self) -> list:
        """Blocks for the memory that stays in the plan, each reused once its last use has been issued."""
        free: dict[int, list] = {}
        busy: list = []
        blocks = []
        stays = {id(m): m for m in self.mems.values() if not m.leaves}.values()
        for mem in sorted(stays, key=lambda m: m.first):
            for done in [b for b in busy if b[0] < mem.first]:
                busy.remove(done)
                free.setdefault(done[1].size, []).append(done[1])
            pool = free.get(mem.memory.size)
            if pool:
                block = pool.pop()
            else:
                block = self.device.allocator.alloc(mem.memory.size)
                blocks.append(block)
            mem.address = block.ptr
            busy.append((mem.last, block))
        return blocks

    def _address(self, where):
        """(index in a call's addresses, None) for an address that changes; (None, address) for a fixed one;
        (None, None) for one that is right as the first call packed it (a constant's, null)."""
        if isinstance(where, _Mem):
            return (len(self.sources) + where.fresh, None) if where.leaves else (None, where.address)
        if where[0] == "slot":
            return self.sources[where[1]], None
        return None, None

    def _resolved(self, step) -> tuple:
        kind = step[0]
        if kind == LAUNCH:
            patches = []
            for cell, where in step[5]:
                source, fixed = self._address(where)
                if source is not None:
                    patches.append((cell, source))
                elif fixed is not None:
                    cell[0] = fixed  # a block of the runner: written once
            return (LAUNCH, step[1], step[2], step[3], step[4], tuple(patches), step[6])
        if kind == GEMM:
            blas = self.device.driver.blas
            args, patches = step[2], []
            for k, where, ctype in step[3]:
                source, fixed = self._address(where)
                if source is not None:
                    patches.append((k, source, ctype))
                else:
                    args[k] = blas.ffi.cast(ctype, fixed)
            return (GEMM, step[1], args, tuple(patches), blas.ffi.cast, blas.lock, step[4], step[5])
        if kind == BUFFER:
            _, k, shape, dtype, where = step
            if isinstance(where, _Mem):
                return (BUFFER, k, shape, dtype, NEW, where.fresh)
            return (BUFFER, k, shape, dtype, SLOT if where[0] == "slot" else HELD, where[1])
        _, ins, outs = step
        return (CALL, ins, tuple((k, self.sources[k]) for k in outs if k in self.sources))


def _resolve(tree, slots: list):
    """An instruction's arguments with its values' buffers in place."""
    t = type(tree)
    if t is Value:
        return slots[tree.index]
    if t is Const:
        return tree.buffer
    if t is tuple or t is list:
        return t([_resolve(x, slots) for x in tree])
    return tree


def _bind(out, result, slots: list) -> None:
    """Put an instruction's results in the slots its ``out`` names."""
    if type(out) is Value:
        slots[out.index] = result
    elif type(out) in (tuple, list):
        for o, r in zip(out, result):
            _bind(o, r, slots)
