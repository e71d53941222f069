"""Data-parallel meta-training over the ranks of ``neurenix.distributed`` (MPI): ``meta_learn(distributed=True)``.

Every rank holds the same tasks and model. Each meta-batch is dealt out round-robin; a rank computes the
meta-gradient of its share with the learner's own ``meta_step``, and one all-reduce per meta-step (every
gradient flattened into one contiguous float64 buffer, with the task count, loss and accuracy) gives every
rank the gradient of the whole meta-batch, so each takes the same optimizer step. Set-up broadcasts rank 0's
parameters, buffers, optimizer state and random generator (so a run resumed on rank 0 resumes everywhere);
the replicas are compared every ``check_every`` meta-steps, and a divergence is an error.

Before anything else the ranks compare what they are about to do (learner, its settings, model, optimizer,
tasks, epochs, ...): a difference is an error naming the setting and each rank's value, rather than a job
whose ranks wait for each other forever. ``meta_learn(distributed=True)`` runs as a
``neurenix.distributed.section``, so a rank that leaves it early makes the others stop within a second.
"""

from __future__ import annotations

import functools
import hashlib
import zlib
from collections.abc import Callable

import numpy as np

import neurenix as nx
from neurenix import Tensor
from neurenix import distributed as dist
from neurenix.nn import Module
from neurenix.nn.utils import clip_grad_norm_
from neurenix.optim import Optimizer

from .tasks import Checked


class DataParallel:
    """The distributed side of ``meta_learn``: ``meta_step`` has the learner's ``meta_step`` signature and
    returns the loss and right answers of the whole meta-batch, summed over ranks.

    How the ranks' gradients combine is the learner's ``grad_reduction``: ``"sum"`` (a meta-gradient is a
    sum over tasks: MAML, the metric learners) or ``"mean"`` (Reptile's mean parameter difference), each
    rank's mean weighted by its task count so that uneven shares count right. BatchNorm's running
    statistics are averaged over ranks the same way (weighted by task count) after every meta-step.
    """

    check_every = 100

    def __init__(self, learner: Module, optimizer: Optimizer, tasks: list[Checked] | None, tasks_per_batch: int,
                 **settings):
        """Agree with the other ranks and take rank 0's state. ``tasks``: the whole task list, compared by hash
        (None when it is not known up front); ``settings``: the rest of what ``meta_learn`` was given that must
        match (epochs, shuffle, loss_fn, ...), compared by value. Every meta-step checks that all ranks deal
        from the same meta-batch of the same epoch (``start_epoch``)."""
        dist.init()
        self.learner, self.optimizer = learner, optimizer
        self.rank, self.size = dist.rank(), dist.world_size()
        self.mean = getattr(learner, "grad_reduction", "sum") == "mean"
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        self.buffers = [b for _, b in learner.named_buffers() if b.is_floating_point()]
        self.grad_clip = settings.get("grad_clip")  # meta_learn's, checked there
        self.steps = 0
        self.epoch: dict = {}  # what this epoch's meta-steps must agree on (start_epoch)
        self._epoch_key = 0
        self._agree(_signature(learner, optimizer, tasks, tasks_per_batch, settings))
        if self.size > tasks_per_batch:
            raise ValueError(f"distributed meta_learn: {self.size} ranks but tasks_per_batch={tasks_per_batch}, so "
                             f"some ranks would have no task: use at most {tasks_per_batch} ranks or more tasks per "
                             "batch")
        self._broadcast_state()

    # -- set-up ------------------------------------------------------------------------------------
    def _agree(self, mine: dict) -> None:
        """Every rank must run the same learner, settings, model, optimizer and tasks: differences are named."""
        lines = _differences(dist.all_gather(mine))
        if lines:
            hint = ("every rank must call meta_learn with the same learner, model, tasks and arguments" +
                    ("; generate the tasks with the same seed on every rank (each takes its share itself)"
                     if any(line.startswith("tasks (") for line in lines) else ""))
            raise ValueError(f"distributed meta_learn: the ranks disagree on {_listed(lines)}\n({hint})")

    def start_epoch(self, epoch: int, tasks: list[Checked], fresh: bool) -> None:
        """An epoch starts: its index, task count and, for tasks made afresh each epoch (``fresh``), a hash of a
        sample of their data go into every meta-step's fingerprint, so ranks that disagree stop at once."""
        self.epoch = {"epoch": epoch, "tasks this epoch": len(tasks)}
        if fresh:
            self.epoch["tasks of this epoch (hash of the first and last)"] = _sample_hash(tasks)
        self._epoch_key = zlib.crc32(repr(sorted(self.epoch.items())).encode())

    def _broadcast_state(self) -> None:
        state = {"model": self.learner.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "rng": nx.random.get_rng_state()} if self.rank == 0 else None
        state = _from_host(dist.broadcast(_to_host(state)))
        if self.rank != 0:
            self.learner.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            nx.random.set_rng_state(state["rng"])

    # -- a meta-step -------------------------------------------------------------------------------
    def meta_step(self, tasks: list[Checked], optimizer: Optimizer, loss_fn: Callable | None,
                  batch_tasks: bool) -> tuple[Tensor, Tensor | None]:
        """This rank's share of ``tasks`` through the learner's meta_step, then the all-reduce and the step."""
        share = tasks[self.rank::self.size]
        loss = right = None
        before = [b.clone() for b in self.buffers]  # (BatchNorm statistics move in the forward pass)
        if share:
            loss, right = self.learner.meta_step(share, _DeferredStep(optimizer), loss_fn, batch_tasks)
        else:  # the last, short meta-batch of an epoch can leave a rank without a task: it adds zeros
            optimizer.zero_grad()
        buffer = dist.all_reduce(self._pack(loss, right, len(share), self._fingerprint(tasks)))
        if not (np.isfinite(buffer[:-6]).all() and np.isfinite(buffer[-4])):  # the same sums on every rank:
            self._refuse(buffer, before, optimizer)  # all of them stop here, together, with nothing changed
        loss, right = self._unpack(buffer, tasks)
        if self.grad_clip is not None:  # the all-reduced gradient, the same on every rank
            clip_grad_norm_(self.params, self.grad_clip)
        optimizer.step()
        self.learner.after_meta_step()
        self.steps += 1
        if self.steps % self.check_every == 0:
            self.check_replicas()
        return loss, right

    def _refuse(self, buffer: np.ndarray, before: list[Tensor], optimizer: Optimizer) -> None:
        """Put the buffers back, drop the gradients and raise: a meta-update with a non-finite loss or gradient
        is not taken (the reduced loss and gradients are the same on every rank, so every rank raises)."""
        from .base import NotFiniteError

        with nx.no_grad():
            for b, old in zip(self.buffers, before):
                b.copy_(old)
        optimizer.zero_grad()
        loss = buffer[-4]
        raise NotFiniteError(f"the loss became {loss}" if not np.isfinite(loss) else
                             f"the meta-gradient became non-finite (loss {loss})")

    def _pack(self, loss: Tensor | None, right: Tensor | None, n: int, fingerprint: int) -> np.ndarray:
        """One contiguous buffer: gradients (times n for a mean), which have one, buffers times n, then
        the meta-batch's fingerprint and its square, loss, right answers, whether there are labels, task count."""
        scale = n if self.mean else 1
        grads = [np.zeros(p.numel()) if p.grad is None else p.grad.numpy().ravel() * scale for p in self.params]
        has = [float(p.grad is not None) for p in self.params]
        bufs = [b.numpy().ravel() * n for b in self.buffers]
        tail = [float(fingerprint), float(fingerprint) ** 2, 0.0 if loss is None else float(loss.item()),
                0.0 if right is None else float(right.item()), float(right is not None), float(n)]
        return np.concatenate([*grads, has, *bufs, tail], dtype=np.float64)

    def _unpack(self, buffer: np.ndarray, tasks: list[Checked]) -> tuple[Tensor, Tensor | None]:
        total, squares, loss, right, labelled, n = buffer[-6:]
        if self.size * squares != total * total:  # zero variance: every rank had the same meta-batch (exact)
            self._disagree(tasks)
        at = sum(p.numel() for p in self.params)
        has = buffer[at:at + len(self.params)]
        at = 0
        for p, h in zip(self.params, has):  # a gradient no rank has stays None, as on a single process
            g = buffer[at:at + p.numel()].reshape(p.shape) / (n if self.mean else 1)
            p.grad = nx.tensor(g, dtype=p.dtype, device=p.device) if h else None
            at += p.numel()
        at += len(self.params)
        with nx.no_grad():
            for b in self.buffers:
                b.copy_(nx.tensor(buffer[at:at + b.numel()].reshape(b.shape) / n, dtype=b.dtype, device=b.device))
                at += b.numel()
        like = self.params[0]
        return (nx.tensor(loss, dtype=like.dtype, device=like.device),
                nx.tensor(round(right), dtype=nx.int64, device=like.device) if labelled else None)

    def _fingerprint(self, tasks: list[Checked]) -> int:
        """16 bits of the epoch's key and the meta-batch's task indices (not devices: ranks may use different
        GPUs), small enough that rank count x sums of squares stay exact in float64 up to about a thousand ranks."""
        return zlib.crc32(repr((self._epoch_key, [t.index for t in tasks])).encode()) & 0xFFFF

    def _disagree(self, tasks: list[Checked]) -> None:
        """The fingerprints differ (every rank sees it in the same sum): say how, on every rank."""
        mine = {**self.epoch, "meta-batch (task indices)": [t.index for t in tasks]}
        lines = _differences(dist.all_gather(mine))
        raise RuntimeError(f"distributed meta_learn: at meta-step {self.steps + 1} the ranks disagree on "
                           f"{_listed(lines)}\n(every rank must call meta_learn with the same tasks and arguments, "
                           "and draw the same random numbers: code that draws on some ranks only makes their "
                           "shuffling differ)")

    # -- agreement ---------------------------------------------------------------------------------
    def check_replicas(self) -> None:
        """Compare every parameter and buffer with rank 0's (a short hash of their bytes); raise if they differ."""
        names = [n for n, _ in self.learner.named_parameters()] + [n for n, b in self.learner.named_buffers()
                                                                      if b.is_floating_point()]
        tensors = [p for _, p in self.learner.named_parameters()] + self.buffers
        mine = [hashlib.blake2b(np.ascontiguousarray(t.numpy()).tobytes(), digest_size=8).digest() for t in tensors]
        every = dist.all_gather(mine)
        for r, theirs in enumerate(every[1:], 1):
            bad = next((name for name, a, b in zip(names, every[0], theirs) if a != b), None)
            if bad is not None:
                raise RuntimeError(f"distributed meta_learn: the replicas diverged: after {self.steps} meta-steps "
                                   f"{bad!r} on rank {r} differs from rank 0's (a rank whose code, data or "
                                   "kernels differ)")


class _DeferredStep:
    """The optimizer as a learner's meta_step sees it: ``step()`` waits until the gradients are all-reduced."""

    def __init__(self, optimizer: Optimizer):
        self._optimizer = optimizer

    def step(self, closure=None) -> None:
        if closure is not None:
            raise ValueError("distributed meta_learn: a meta_step cannot pass a closure to optimizer.step()")

    def __getattr__(self, name: str):
        return getattr(self._optimizer, name)


# -- what ranks compare and send ---------------------------------------------------------------------
def distributed_section(meta_learn: Callable) -> Callable:
    """``meta_learn`` as a ``neurenix.distributed.section`` when ``distributed=True``: a rank that leaves it
    early (an exception, even ``sys.exit(0)``) tells the others, which would otherwise wait for it forever."""
    @functools.wraps(meta_learn)
    def run(self, *args, **kwargs):
        if not kwargs.get("distributed"):
            return meta_learn(self, *args, **kwargs)
        with dist.section(f"{type(self).__name__}.meta_learn"):
            return meta_learn(self, *args, **kwargs)
    return run


_ABSENT = "(absent)"
_LABELS = {"resumed_after": "epochs already done (resume=)"}
_SCALARS = (bool, int, float, str, type(None))


def _signature(learner: Module, optimizer: Optimizer, tasks: list[Checked] | None, tasks_per_batch: int,
               settings: dict) -> dict:
    """What must be the same on every rank, as {setting: printable value}."""
    sig = {"learner": f"{type(learner).__module__}.{type(learner).__qualname__}"}
    for prefix, module in learner.named_modules():  # the learner's settings, and its modules' (Dropout's p, ...)
        for k, v in sorted(vars(module).items()):
            if _plain(k, v):
                sig[f"module setting '{prefix}.{k}'" if prefix else f"learner setting {k!r}"] = v
    sig |= {f"parameter {n!r}": f"{tuple(p.shape)} {p.dtype.name}" for n, p in learner.named_parameters()}
    sig |= {f"buffer {n!r}": f"{tuple(b.shape)} {b.dtype.name}" for n, b in learner.named_buffers()}
    sig["optimizer"] = f"{type(optimizer).__name__} over {[len(g['params']) for g in optimizer.param_groups]} " \
                       "parameters"
    sig["tasks_per_batch"] = tasks_per_batch
    sig |= {_LABELS.get(k, k): _name(v) if callable(v) else v for k, v in settings.items()}
    sig["tasks (how many)"] = "a function of the epoch" if tasks is None else len(tasks)
    sig["tasks (hash of their data)"] = None if tasks is None else _tasks_hash(tasks)
    return sig


def _plain(name: str, value) -> bool:
    """A learner's public setting held as plain values (inner_lr, inner_steps, first_order, training, ...)."""
    if name.startswith("_"):
        return False
    return isinstance(value, _SCALARS) or (isinstance(value, (tuple, list)) and all(isinstance(x, _SCALARS)
                                                                                    for x in value))


def _name(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', None)}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"


def _tasks_hash(tasks: list[Checked]) -> str:
    digest = hashlib.blake2b(digest_size=8)
    for t in tasks:
        for x in (t.support_x, t.support_y, t.query_x, t.query_y):
            digest.update(repr((x.shape, str(x.dtype))).encode())
            digest.update(np.ascontiguousarray(x.numpy()).tobytes())
    return digest.hexdigest()


def _sample_hash(tasks: list[Checked]) -> str:
    """Every task's shapes and the data of the first and the last: enough to tell tasks drawn with another
    seed, at the cost of two tasks an epoch."""
    digest = hashlib.blake2b(repr([(t.support_x.shape, t.query_x.shape) for t in tasks]).encode(), digest_size=8)
    return f"{digest.hexdigest()}:{_tasks_hash(tasks[:1] + tasks[-1:])}"


def _differences(every: list[dict]) -> list[str]:
    """The settings on which the ranks' dicts differ, each with every rank's value."""
    keys = list(dict.fromkeys(k for d in every for k in d))
    lines = []
    for k in keys:
        values = [d.get(k, _ABSENT) for d in every]
        if any(v != values[0] for v in values[1:]):
            lines.append(f"{k}: {dist.by_rank(values)}")
    return lines


def _listed(lines: list[str], most: int = 8) -> str:
    """One difference inline, several one per line (at most ``most``)."""
    if len(lines) == 1:
        return lines[0]
    more = f"\n  ... and {len(lines) - most} more" if len(lines) > most else ""
    return f"{len(lines)} settings:\n  " + "\n  ".join(lines[:most]) + more


class _Host:
    """A tensor's values in transit between ranks (NumPy), so no rank needs another's device."""

    def __init__(self, array: np.ndarray):
        self.array = array


def _to_host(obj):
    if isinstance(obj, Tensor):
        return _Host(np.array(obj.numpy()))
    if isinstance(obj, dict):
        return {k: _to_host(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_host(v) for v in obj)
    return obj


def _from_host(obj):
    if isinstance(obj, _Host):
        return nx.tensor(obj.array)
    if isinstance(obj, dict):
        return {k: _from_host(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_from_host(v) for v in obj)
    return obj
