"""``MetaLearningModel``: what every meta-learner shares (the training loop, adaptation, the inner loop)."""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

import neurenix as nx
from neurenix import Tensor
from neurenix.caches import remember
from neurenix.nn import Module
from neurenix.nn.utils import clip_grad_norm_
from neurenix.optim import Adam, Optimizer
from neurenix.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from . import checks
from . import resume as resuming
from .batchnorm import Plan, support_statistics, task_call
from .checkpoint import check_writable
from .distributed import DataParallel, distributed_section
from .inner_optimizers import SGD, InnerOptimizer
from .losses import LossFn, correct, task_losses
from .progress import progress_bar
from .tasks import Batch, Checked, batches, check_task, check_tasks, nonfinite, stack

log = logging.getLogger(__name__)


def inner_loop(model: Module, params: dict[str, Tensor], x: Tensor, y: Tensor, labels: Tensor | None,
               steps: int, lr: float, loss_fn: LossFn | None, create_graph: bool, classes: int = 0,
               indices: tuple = ()) -> dict[str, Tensor]:
    """``steps`` of gradient descent at ``lr`` on a batch of tasks: ``params`` carry a task axis, ``x``/``y``
    are (tasks, rows, ...); returns the adapted parameters. Each task's step uses only its own loss, since
    the losses are summed over tasks and task t's rows touch only task t's parameters.

    With ``create_graph`` the steps are differentiable (second-order MAML); without, each step's gradient
    is a constant, so the result still depends on ``params`` but only through the identity (first order).
    """
    names, ws = list(params), list(params.values())
    for _ in range(steps):
        ws = inner_step(model, names, ws, [lr] * len(ws), x, y, labels, loss_fn, create_graph, classes, indices)
    return dict(zip(names, ws))


def inner_step(model: Module, names: list[str], ws: list[Tensor], lrs: list, x: Tensor, y: Tensor,
               labels: Tensor | None, loss_fn: LossFn | None, create_graph: bool, classes: int = 0,
               indices: tuple = (), fixed: dict[str, Tensor] | None = None) -> list[Tensor]:
    """One inner step: ``w - lr * grad`` for each of ``ws`` (named ``names``, task axis in front), with
    its own ``lr`` (a number, or a tensor that broadcasts against ``w``: learned rates get gradients).
    ``fixed`` stand in for other parameters, not adapted. BatchNorm layers use each task's batch
    statistics (see ``batchnorm``)."""
    grads = support_grads(model, names, ws, x, y, labels, loss_fn, create_graph, classes, indices, fixed)
    return [w if g is None else w - lr * g for w, g, lr in zip(ws, grads, lrs)]


def support_grads(model: Module, names: list[str], ws: list[Tensor], x: Tensor, y: Tensor, labels: Tensor | None,
                  loss_fn: LossFn | None, create_graph: bool, classes: int = 0, indices: tuple = (),
                  fixed: dict[str, Tensor] | None = None, plan: Plan | None = None) -> tuple:
    """The gradient of the tasks' summed losses on ``x`` with respect to ``ws`` (None where unused): what an
    inner step follows (see ``inner_step``). ``plan``: how BatchNorm normalises (``batchnorm.task_call``)."""
    params = (fixed or {}) | dict(zip(names, ws))
    losses = task_losses(task_call(model, params, x, plan), y, labels, loss_fn, classes, indices)
    return nx.autograd.grad(losses.sum(), ws, create_graph=create_graph, allow_unused=True)


def descent_steps(model: Module, names: list[str], ws: list[Tensor], step_lrs: Callable[[int], list], steps: int,
                  batch: Batch | Sequence[Batch], loss_fn: LossFn | None,
                  fixed: dict[str, Tensor] | None = None,
                  penalty: Callable[[list[Tensor]], Tensor] | None = None,
                  plans: Callable[[int], Plan | None] | None = None,
                  optimizer: InnerOptimizer | None = None) -> list[Tensor]:
    """``steps`` first-order inner steps on ``batch``'s support sets (``ws`` named ``names``, task axis in
    front; ``step_lrs(k)`` the rates of step k; ``optimizer`` the update rule, plain SGD by default, its
    state kept per task) that never raise a task's support loss: a step that would
    (or that makes it NaN) is not taken, and that task's later steps are halved until one decreases it.
    Given several batches (of the same tasks), step k takes the support sets of batch k modulo their number.
    ``penalty(weights)``, one value per task, is added to the support losses (iMAML's proximal term).
    ``plans(k)``: how BatchNorm normalises the forward passes at the weights of step k (None: per-task batch
    statistics; see ``batchnorm.task_call``).

    Plain steps at a fixed rate diverge once the rate passes 2 / (the loss's curvature), which adapting for
    more steps than in training, or a body whose features grew in meta-training (ANIL), reaches; while
    each step lowers the loss the result is exactly that of plain steps. On one batch the trial of a step is
    the next step's forward and backward (kept for the tasks that take it): one forward more in all than
    plain steps; with several batches, one more per step."""
    def losses_at(weights: list[Tensor], b: Batch, k: int) -> Tensor:
        plan = None if plans is None else plans(k)
        losses = task_losses(task_call(model, (fixed or {}) | dict(zip(names, weights)), b.support_x, plan),
                             b.support_y, b.support_labels, loss_fn, b.classes, b.indices)
        return losses if penalty is None else losses + penalty(weights)

    def with_grads(weights: list[Tensor], b: Batch, k: int) -> tuple[Tensor, list]:
        losses = losses_at(weights, b, k)
        return losses.detach(), list(nx.autograd.grad(losses.sum(), weights, allow_unused=True))

    cycle = (batch,) if isinstance(batch, Batch) else tuple(batch)
    optimizer = optimizer or SGD()
    state = optimizer.init(ws)
    scale = grads = None  # per task: the fraction of the rates the last step could take; the gradient at ws
    for k in range(steps):
        batch = cycle[k % len(cycle)]
        if grads is None:
            losses, grads = with_grads(ws, batch, k)
        scale = nx.ones_like(losses) if scale is None else scale
        # (s * lr) * g: the product plain steps always took, so that SGD's results stay bit for bit
        trial, tried_state = optimizer.step(k, ws, grads, [_per_task(scale, w) * lr for w, lr in zip(ws, step_lrs(k))],
                                            state)
        reuse = len(cycle) == 1 and k + 1 < steps  # the next step is on this batch: its gradient at the trial
        if reuse:
            tried, tried_grads = with_grads(trial, batch, k + 1)
        else:
            with nx.no_grad():
                tried = losses_at(trial, batch, k + 1)
        better = tried <= losses  # False for NaN
        ws = [nx.where(_per_task(better, w), t, w) for t, w in zip(trial, ws)]
        state = [nx.where(_per_task(better, s), t, s) for t, s in zip(tried_state, state)]
        scale = nx.where(better, scale, scale * 0.5)
        if reuse:
            losses = nx.where(better, tried, losses)
            grads = [None if g is None else nx.where(_per_task(better, g), tg, g) for tg, g in zip(tried_grads, grads)]
        else:
            grads = None
    return ws


def _shapes(stacked: Sequence[Batch]) -> tuple:
    """What tells compiled steps' shapes apart: each batch's tensor signatures and number of classes."""
    return tuple((b.support_x.signature, b.support_y.signature, b.query_x.signature, b.query_y.signature, b.classes)
                 for b in stacked)


def _per_task(v: Tensor, like: Tensor) -> Tensor:
    """``v`` (one value per task) shaped to broadcast against ``like`` (task axis in front)."""
    return v.reshape(-1, *[1] * (like.ndim - 1))


class MetaLearningModel(Module):
    """Base class of the meta-learners: wraps ``model`` and meta-trains it on tasks.

    A task is ``(support_x, support_y, query_x, query_y)``. Subclasses define ``task_objective``: the
    per-task query losses of a batch of tasks stacked on a leading task axis. The base class gives them
    ``meta_learn`` (the outer loop, batching tasks of equal shapes), ``meta_loss`` and ``adapt_to_task``.
    """

    # what the compiled steps never read (neurenix.compile leaves them out of its guards): the default
    # meta-optimizer, whose rate a scheduler changes between steps, and the compiled steps themselves
    __capture_unread__ = frozenset(("_default_optimizer", "_compiled_gradient", "_compiled_adaptation",
                                    "_compiled_shapes"))
    grad_reduction = "sum"  # how ranks combine meta_step's gradients: a sum over tasks ("mean": a mean over them)
    # checked whenever assigned, here or later: a NaN or negative rate would train silently to nonsense
    inner_lr = checks.Validated(checks.rate)
    meta_lr = checks.Validated(checks.rate)
    first_order = checks.Validated(checks.flag)

    def __init__(self, model: Module, inner_lr: float = 0.01, meta_lr: float = 0.001, first_order: bool = False):
        super().__init__()
        self.model = checks.module(self._model_argument, model)
        self.inner_lr, self.meta_lr, self.first_order = inner_lr, meta_lr, first_order
        self.__dict__["_default_optimizer"] = None

    _model_argument = "model"  # the constructor argument that names the model, for errors

    def __getstate__(self) -> dict:
        """What ``copy.deepcopy`` and pickle take: all but the compiled steps, caches bound to this learner (and
        holding locks) that a copy compiles again for itself."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_compiled_gradient", "_compiled_adaptation",
                                                                        "_compiled_shapes")}

    def hyperparameters(self) -> dict[str, Any]:
        """What defines this learner's training besides the model: resuming a checkpoint saved with other
        values is refused. Subclasses add theirs."""
        return {"learner": type(self).__name__, "inner_lr": self.inner_lr, "meta_lr": self.meta_lr,
                "first_order": self.first_order}

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def clone_model(self) -> Module:
        """A deep copy of the model: same architecture and values, parameters that are fresh leaves."""
        return copy.deepcopy(self.model)

    def trainable(self) -> dict[str, Tensor]:
        """The model's parameters that adapt (``requires_grad``), by name."""
        params = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        if not params:
            raise ValueError(f"{type(self).__name__}: the model has no parameters that require grad")
        return params

    # -- adaptation ------------------------------------------------------------------------------
    def adapt_to_task(self, support_x: Tensor, support_y: Tensor, steps: int | None = 5,
                      loss_fn: LossFn | None = None, compile: bool = True) -> Module:
        """A copy of the model after ``steps`` gradient steps at ``inner_lr`` on the support set; a step that
        would raise the support loss is not taken and the task's later steps are halved (``descent_steps``),
        so that adapting for many steps cannot diverge. With
        ``compile=True`` the steps replay a program captured at the first adaptation of these shapes
        (``neurenix.compile``); ``compile=False`` runs them op by op. The result is the same."""
        steps = 5 if steps is None else checks.count("steps", steps, 0)
        loss_fn, compile = checks.function("loss_fn", loss_fn), checks.flag("compile", compile)  # noqa: A001
        b = stack([check_task((support_x, support_y, support_x, support_y), 0, ("support_x", "support_y"))])
        clone = self.clone_model()  # adapted on the copy, so that its buffers (BatchNorm's) move, not ours
        adapt = self._compiled("_compiled_adaptation", self.adapted_parameters, (_shapes([b]), steps)) if compile \
            else self.adapted_parameters
        fast = adapt(clone, b, steps, loss_fn)
        with nx.no_grad():
            for name, p in clone.named_parameters():
                if name in fast:
                    p.copy_(fast[name][0])
        self.finish_adaptation(clone, support_x, steps)
        return clone

    def finish_adaptation(self, clone: Module, support_x: Tensor, steps: int) -> None:
        """Set what ``adapt_to_task``'s copy keeps besides its weights: by default the running statistics of its
        BatchNorm layers become its support set's, nothing else (see ``batchnorm``)."""
        support_statistics(clone, support_x)

    def adapted_parameters(self, model: Module, batch: Batch, steps: int,
                           loss_fn: LossFn | None) -> dict[str, Tensor]:
        """The trainable parameters after ``inner_adapt`` from this learner's, run on ``model`` (a copy of
        the learner's model), detached: what ``adapt_to_task`` compiles."""
        params = {n: p.detach().unsqueeze(0) for n, p in self.trainable().items()}
        with nx.enable_grad():
            params = {n: p.requires_grad_() for n, p in params.items()}
            fast = self.inner_adapt(model, params, batch, steps, loss_fn)
        return {n: w.detach() for n, w in fast.items()}

    def inner_adapt(self, model: Module, params: dict[str, Tensor], batch: Batch, steps: int,
                    loss_fn: LossFn | None) -> dict[str, Tensor]:
        """``steps`` first-order inner steps of ``model`` from ``params`` (task axis in front) on the
        support sets of ``batch``, none raising the support loss (``descent_steps``): what ``adapt_to_task``
        runs (MAML's family adds learned rates)."""
        names = list(params)
        ws = descent_steps(model, names, list(params.values()), lambda k: [self.inner_lr] * len(names), steps,
                           batch, loss_fn)
        return dict(zip(names, ws))

    # -- the meta-objective ----------------------------------------------------------------------
    def check(self, tasks: Sequence) -> list[Checked]:
        """Check tasks before use (meta-learners with further needs, such as labels, extend it)."""
        return check_tasks(tasks)

    def task_objective(self, batch: Batch, loss_fn: LossFn | None) -> tuple[Tensor, Tensor]:
        """The query loss of each task of ``batch`` (shape (tasks,)) after adaptation, and the query
        predictions (tasks, rows, ...). Meta-learners implement this."""
        raise NotImplementedError(f"{type(self).__name__} must implement task_objective(batch, loss_fn)")

    def meta_loss(self, tasks: Sequence, loss_fn: LossFn | None = None, batch_tasks: bool = True) -> Tensor:
        """The meta-objective of ``tasks``: the sum of their query losses after adaptation. Its
        gradient with respect to ``parameters()`` is the meta-gradient (the sum of the tasks')."""
        loss_fn, batch_tasks = checks.function("loss_fn", loss_fn), checks.flag("batch_tasks", batch_tasks)
        checked = self.check(tasks)
        return sum((self.task_objective(b, loss_fn)[0].sum() for b in batches(checked, batch_tasks)), start=0.0)

    def meta_gradient(self, tasks: list[Checked], loss_fn: LossFn | None,
                      batch_tasks: bool) -> tuple[Tensor, Tensor | None]:
        """Add the meta-gradient of ``tasks`` to each parameter's ``.grad``; returns (sum of query losses,
        number right or None), unread."""
        return self.stacked_gradient(batches(tasks, batch_tasks), loss_fn)

    def stacked_gradient(self, stacked: list[Batch], loss_fn: LossFn | None) -> tuple[Tensor, Tensor | None]:
        """``meta_gradient`` of tasks already stacked into batches (what meta-learners override)."""
        total, right = 0.0, None
        for b in stacked:
            losses, pred = self.task_objective(b, loss_fn)
            loss = losses.sum()
            loss.backward()
            total = total + loss.detach()
            if b.query_labels is not None:
                right = correct(pred.detach(), b.query_labels) + (0 if right is None else right)
        return total, right

    def meta_step(self, tasks: list[Checked], optimizer: Optimizer, loss_fn: LossFn | None,
                  batch_tasks: bool) -> tuple[Tensor, Tensor | None]:
        """One meta-update from ``tasks``, unchecked; returns (sum of query losses, number right or None),
        unread. ``meta_learn`` takes its steps through ``checked_step`` instead."""
        optimizer.zero_grad()
        total, right = self.meta_gradient(tasks, loss_fn, batch_tasks)
        optimizer.step()
        self.after_meta_step()
        return total, right

    def checked_step(self, tasks: list[Checked], optimizer: Optimizer, loss_fn: LossFn | None,
                     batch_tasks: bool, compile: bool = False, grad_clip: float | None = None) -> tuple[float, int]:
        """One meta-update, taken only if the loss and every gradient the optimizer would use are finite;
        otherwise nothing changes (parameters, buffers such as BatchNorm's running statistics, the
        optimizer's state) and a ``NotFiniteError`` says what was not. Returns (loss, number right), read
        from the device once. ``compile=True`` replays the gradient computation from a program captured at the
        first step of its kind (``neurenix.compile``); the result is the same. ``grad_clip``: see ``meta_learn``."""
        saved = [(b, b.clone()) for b in self.buffers()]  # the metric learners' forward pass moves them
        optimizer.zero_grad()
        stacked = batches(tasks, batch_tasks)
        if compile:  # renumbered: which tasks they are only shows in messages, and must not tell programs apart
            stacked = [dataclasses.replace(b, indices=tuple(range(b.size))) for b in stacked]
            step = self._compiled("_compiled_gradient", self.gradient_values, _shapes(stacked))
        else:
            step = self.gradient_values
        params = [p for g in optimizer.param_groups for p in g["params"]]  # (not the optimizer: its rate may vary)
        values = step(stacked, params, loss_fn).tolist()
        right = len(values) > 2
        if not math.isfinite(values[0]) or values[1]:
            what = self._what_failed(values[0], optimizer)
            with nx.no_grad():
                for b, old in saved:
                    b.copy_(old)
            optimizer.zero_grad()
            raise NotFiniteError(what)
        clip_meta_gradient(optimizer, grad_clip)
        optimizer.step()
        self.after_meta_step()
        return values[0], int(values[2]) if right else 0

    def _compiled(self, attribute: str, fn: Callable, key: tuple) -> Callable:
        """``fn`` compiled (kept as ``attribute``) for the first call and for calls whose shapes ``key`` came
        before; ``fn`` itself the first time other shapes come. A trace costs about three eager calls and pays
        only when its shapes come back, which episodes of varied ways and shots (``EpisodeSampler``) almost never
        do: traced at every step, they would run slower than eagerly until neurenix.compile gave up on them."""
        seen = self.__dict__.setdefault("_compiled_shapes", {}).setdefault(attribute, {})
        new = bool(seen) and key not in seen
        remember(seen, key, True)
        if new:
            return fn
        compiled = self.__dict__.get(attribute)
        if compiled is None:
            compiled = self.__dict__[attribute] = nx.compile(fn)
        return compiled

    def after_meta_step(self) -> None:
        """Called after every meta-update: learners whose parameters have bounds (Meta-SGD's rates) project
        them back."""

    def gradient_values(self, stacked: list[Batch], params: list[Tensor], loss_fn: LossFn | None) -> Tensor:
        """``stacked_gradient`` into the parameters' ``.grad`` (which must be None), and a tensor of (loss,
        number of non-finite elements among ``params``' gradients, number right if labelled): what
        ``checked_step`` compiles."""
        loss, right = self.stacked_gradient(stacked, loss_fn)
        grads = [p.grad for p in params if p.grad is not None]
        return nx.stack([v.to(loss.dtype) for v in (loss, finite_probe(grads, loss), right) if v is not None])

    def _what_failed(self, loss: float, optimizer: Optimizer) -> str:
        if not math.isfinite(loss):
            return f"the loss became {loss}"
        names = {id(p): n for n, p in self.named_parameters()}
        bad = [names.get(id(p), "a parameter") for g in optimizer.param_groups for p in g["params"]
               if p.grad is not None and finite_probe([p.grad], p.grad).item()]
        return f"the meta-gradient of {bad[0] if bad else 'a parameter'} became non-finite (loss {loss})"

    # -- the outer loop --------------------------------------------------------------------------
    def default_optimizer(self) -> Optimizer:
        """Adam at ``meta_lr`` over ``parameters()``, made once and kept across ``meta_learn`` calls."""
        if self._default_optimizer is None:
            self.__dict__["_default_optimizer"] = Adam(self.parameters(), lr=self.meta_lr)
        return self._default_optimizer

    @distributed_section
    def meta_learn(self, tasks: Sequence | Callable[[int], Sequence], meta_optimizer: Optimizer | None = None,
                   epochs: int = 10, tasks_per_batch: int = 4, loss_fn: LossFn | None = None, *,
                   shuffle: bool = True, batch_tasks: bool = True, verbose: bool = False,
                   checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 1,
                   resume: str | os.PathLike | None = None, distributed: bool = False,
                   settings: Mapping[str, Any] | None = None, compile: bool = True,
                   grad_clip: float | None = None, validation: Sequence | None = None, validate_every: int = 1,
                   keep_best: bool = False, patience: int | None = None,
                   scheduler: LRScheduler | None = None,
                   callback: Callable[[int, dict], None] | None = None) -> dict[str, list[float]]:
        """Meta-train on ``tasks`` for ``epochs`` passes, one meta-update per ``tasks_per_batch`` tasks.

        Each epoch visits every task once (in a random order drawn from neurenix's generator unless
        ``shuffle=False``); a last, smaller batch is used too. Tasks of equal shapes in a batch run as one
        stacked batch (``batch_tasks=False`` runs them one by one: same result, slower). Returns the
        history: per-epoch mean query loss (``"loss"``) and, when targets are labels, query accuracy
        (``"accuracy"``). ``meta_optimizer=None`` uses Adam at ``meta_lr``. The tasks are not modified.
        A meta-update whose loss or gradient is not finite is not taken: training stops with a
        FloatingPointError and the learner and optimizer are as they were before that update.

        ``tasks`` may also be a function of the epoch index returning that epoch's tasks (fresh tasks every
        epoch, as the MAML paper samples them). ``verbose=True`` shows a progress bar (tqdm, on stderr);
        otherwise nothing is printed. ``checkpoint=path`` saves the learner, the optimizer, the epoch, the
        history, neurenix's random state and the run's settings every ``checkpoint_every`` epochs and at the
        end (safetensors, atomically); ``resume=path`` starts from such a checkpoint, so that an interrupted
        run, resumed with the same arguments, ends where an uninterrupted one would, bit for bit (``epochs``
        counts from the start). ``settings`` (JSON-able) describe the run beyond the learner and the loop
        (data, seeds): a checkpoint saved with other settings, or another learner configuration,
        ``tasks_per_batch`` or ``shuffle``, is refused with the difference named.

        ``compile=True`` (the default) computes each meta-gradient by replaying a program captured at the first
        meta-batch of its shapes (``neurenix.compile``): the same result, without per-op Python dispatch. A step
        that cannot be captured runs eagerly, with a ``neurenix.CaptureWarning`` saying why; ``compile=False``
        runs every step eagerly.

        ``grad_clip=max_norm`` scales the meta-gradient (of all the optimizer's parameters together; Reptile's:
        theta - mean theta') to a 2-norm of at most ``max_norm`` before each meta-update, as
        ``neurenix.nn.utils.clip_grad_norm_`` (None, the default: no clipping).

        ``validation=tasks`` (tasks of classes or functions kept out of training) scores the learner every
        ``validate_every`` epochs and after the last, as ``neurenix.meta.evaluate`` does (adapted on each
        support set, scored on its query set: accuracy for class labels, else the query loss): the history
        gains ``"validation"`` (the mean scores) and ``"validation_epoch"`` (after how many epochs each was
        taken). ``keep_best=True`` ends with the weights of the best score (held in memory, not in
        checkpoints); ``patience=n`` stops once ``n`` scores in a row have not improved on the best.

        ``scheduler`` (a ``neurenix.optim.lr_scheduler`` scheduler of the meta-optimizer: of
        ``meta_optimizer``, or of ``default_optimizer()`` when that is None) is stepped after every epoch, as a
        PyTorch loop steps it (``ReduceLROnPlateau`` with the epoch's loss); checkpoints keep its state. The
        compiled meta-gradient does not read the rate, so a schedule does not make it trace again.

        ``callback(epochs_done, history)`` is called after every epoch (its validation done, before its checkpoint),
        on rank 0 only under MPI: to log metrics as they come, say (the command line's ``--log``).

        ``distributed=True`` shares each meta-batch out over the ranks of an MPI job (every rank passes the
        same tasks; see ``neurenix.meta.distributed``); the result equals one process's over the same tasks.
        """
        epochs, tasks_per_batch = checks.count("epochs", epochs), checks.count("tasks_per_batch", tasks_per_batch, 1)
        checkpoint_every = checks.count("checkpoint_every", checkpoint_every, 1)
        loss_fn, shuffle = checks.function("loss_fn", loss_fn), checks.flag("shuffle", shuffle)
        batch_tasks, verbose = checks.flag("batch_tasks", batch_tasks), checks.flag("verbose", verbose)
        distributed, compile = checks.flag("distributed", distributed), checks.flag("compile", compile)  # noqa: A001
        grad_clip, callback = checks.max_norm("grad_clip", grad_clip), checks.function("callback", callback)
        watch = Validation(self, validation, validate_every, keep_best, patience, loss_fn, compile)
        run = resuming.settings(self, tasks_per_batch, shuffle, settings)
        checked = None if callable(tasks) else self.check(tasks)
        optimizer = self._optimizer(meta_optimizer)
        scheduler = checks.scheduler("scheduler", scheduler, optimizer)
        labelled = checked is not None and checked[0].query_labels is not None
        history: dict[str, list[float]] = {"loss": []} | ({"accuracy": []} if labelled else {})
        lead = not distributed or nx.distributed.rank() == 0
        checkpoint = checkpoint if lead else None
        if checkpoint is not None:
            check_writable(checkpoint)  # now, not after the first epochs
        done = 0
        if resume is not None:
            done, saved = resuming.resume(resume, self, optimizer, epochs, run, scheduler)
            history = saved or history
        # under MPI rank 0's state is broadcast here (after resuming), and only rank 0 shows progress and saves
        parallel = DataParallel(self, optimizer, checked, tasks_per_batch, epochs=epochs, resumed_after=done,
                                shuffle=shuffle, batch_tasks=batch_tasks, loss_fn=loss_fn,
                                grad_clip=grad_clip) if distributed else None
        step = self._distributed_step(parallel) if distributed else \
            functools.partial(self.checked_step, compile=compile, grad_clip=grad_clip)
        rng = nx.random.generator()
        bar = progress_bar(range(done, epochs), type(self).__name__, epochs, done) if verbose and lead else None
        for epoch in bar if bar is not None else range(done, epochs):
            if callable(tasks):
                checked = self.check(tasks(epoch))
                labelled = checked[0].query_labels is not None
            if parallel is not None:  # the ranks check every meta-step against this epoch's index and tasks
                parallel.start_epoch(epoch, checked, fresh=callable(tasks))
            order = rng.permutation(len(checked)) if shuffle else np.arange(len(checked))
            loss_sum, right_sum, rows = 0.0, 0, 0
            for start in range(0, len(order), tasks_per_batch):
                batch = [checked[i] for i in order[start:start + tasks_per_batch]]
                try:
                    value, n_right = step(batch, optimizer, loss_fn, batch_tasks)
                except NotFiniteError as e:
                    raise FloatingPointError(_stopped(e, epoch, start // tasks_per_batch, batch, distributed)) from None
                loss_sum += value
                right_sum += n_right
                rows += sum(t.query_x.shape[0] for t in batch)
            history["loss"].append(loss_sum / len(checked))
            if labelled:
                history.setdefault("accuracy", []).append(right_sum / rows)
            if bar is not None:
                bar.set_postfix({k: f"{v[-1]:.4g}" for k, v in history.items()}, refresh=False)
            log.debug("epoch %d: loss %.6g", epoch, history["loss"][-1])
            if isinstance(scheduler, ReduceLROnPlateau):  # (a subclass whose step takes a metric)
                scheduler.step(history["loss"][-1])
            elif scheduler is not None:
                scheduler.step()
            stop = watch.after_epoch(epoch + 1, epochs, history)
            if callback is not None and lead:
                callback(epoch + 1, history)
            if checkpoint is not None and ((epoch + 1) % checkpoint_every == 0 or epoch + 1 == epochs or stop):
                resuming.save_progress(checkpoint, self, optimizer, epoch + 1, history, run, scheduler)
            if stop:
                break
        if bar is not None:
            bar.close()
        watch.restore_best()
        return history

    def _optimizer(self, given: Any) -> Optimizer:
        """The meta-optimizer: the default one, or ``given`` once checked to update this learner's parameters."""
        if given is None:
            return self.default_optimizer()
        if not all(callable(getattr(given, m, None)) for m in ("zero_grad", "step")) or \
                not isinstance(getattr(given, "param_groups", None), list):
            raise TypeError(f"meta_optimizer must be a neurenix.optim.Optimizer or None, got {given!r:.100}")
        own = {id(p) for p in self.parameters()}
        foreign = sum(id(p) not in own for g in given.param_groups for p in g["params"])
        if foreign:
            raise ValueError(f"meta_optimizer: {foreign} of its parameters are not this {type(self).__name__}'s "
                             f"(build it from {type(self).__name__.lower()}.parameters())")
        return given

    @staticmethod
    def _distributed_step(parallel: DataParallel) -> Callable:
        """DataParallel's meta_step (which refuses a non-finite update on every rank), its loss and right
        answers read."""
        def step(batch, optimizer, loss_fn, batch_tasks):
            loss, right = parallel.meta_step(batch, optimizer, loss_fn, batch_tasks)
            value, n_right = nx.stack([loss, right.to(loss.dtype)]).tolist() if right is not None else \
                (loss.item(), 0)
            return value, int(n_right)
        return step


class Validation:
    """``meta_learn``'s validation: scores on held-out tasks every ``every`` epochs, the best weights, early
    stopping (see ``meta_learn``)."""

    def __init__(self, learner: MetaLearningModel, tasks: Sequence | None, every: int, keep_best: bool,
                 patience: int | None, loss_fn: LossFn | None, compile: bool):
        self.learner, self.loss_fn, self.compile = learner, loss_fn, compile
        self.every = checks.count("validate_every", every, 1)
        self.keep_best = checks.flag("keep_best", keep_best)
        self.patience = None if patience is None else checks.count("patience", patience, 1)
        if tasks is None and (self.keep_best or self.patience is not None):
            raise ValueError("meta_learn: keep_best and patience need validation tasks (validation=...)")
        if tasks is not None:
            learner.check(tasks)  # a malformed validation set fails now, not after the first epoch
        self.tasks = tasks
        self.best: float | None = None
        self.best_state: dict | None = None
        self.since_best = 0

    def after_epoch(self, done: int, epochs: int, history: dict) -> bool:
        """Score the learner if this epoch is one to score; whether training should stop now."""
        if self.tasks is None or (done % self.every and done != epochs):
            return False
        from .evaluation import evaluate

        result = evaluate(self.learner, self.tasks, loss_fn=self.loss_fn, compile=self.compile)
        history.setdefault("validation", []).append(result.mean)
        history.setdefault("validation_epoch", []).append(done)
        better = self.best is None or (result.mean > self.best if result.metric == "accuracy" else
                                       result.mean < self.best)
        if better:
            self.best, self.since_best = result.mean, 0
            if self.keep_best:
                self.best_state = {k: v.detach().clone() for k, v in self.learner.state_dict().items()}
        else:
            self.since_best += 1
        return self.patience is not None and self.since_best >= self.patience

    def restore_best(self) -> None:
        if self.best_state is not None:
            self.learner.load_state_dict(self.best_state)


def clip_meta_gradient(optimizer: Optimizer, max_norm: float | None) -> None:
    """Scale the gradients of ``optimizer``'s parameters to a total 2-norm of at most ``max_norm`` (None: leave
    them), just before its step."""
    if max_norm is not None:
        clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], max_norm)


class NotFiniteError(FloatingPointError):
    """A meta-update's loss or gradient was not finite (``meta_learn`` adds where it happened)."""


def finite_probe(tensors: list[Tensor], like: Tensor) -> Tensor:
    """How many elements of ``tensors`` are NaN or infinite, as a scalar of ``like``'s dtype, on the device:
    per dtype one concatenation, one comparison and one reduction (a few ops per meta-step, whatever the
    number of parameters), no host read, and no arithmetic on non-finite values (NumPy warns on inf * 0)."""
    by_dtype: dict = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t.reshape(-1))
    finite = [(nx.cat(flat) if len(flat) > 1 else flat[0]).abs() < math.inf for flat in by_dtype.values()]
    total = sum(t.numel() for t in tensors)
    bad = sum((f.sum() for f in finite), start=nx.zeros((), dtype=nx.int64, device=like.device))
    return (total - bad).to(like.dtype)


def _stopped(error: NotFiniteError, epoch: int, batch: int, tasks: list[Checked], distributed: bool) -> str:
    """Why and where meta_learn stopped, which tasks hold non-finite values, and what was kept."""
    where = f"meta_learn: {error} in epoch {epoch}, batch {batch} (tasks {[t.index for t in tasks]})"
    culprits = [f"task {t.index}'s {name}" for t in tasks for name in nonfinite(t)]
    if culprits:
        where += f"; {', '.join(culprits)} hold{'s' if len(culprits) == 1 else ''} NaN or infinite values"
    kept = "; the step was not taken, the learner and optimizer are as before it" + (
        " (on every rank)" if distributed else "")
    return f"{where}{kept}; try a smaller inner_lr or meta_lr" if not culprits else f"{where}{kept}"


