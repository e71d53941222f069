"""MAML (Finn et al., 2017): learn an initialisation that a few gradient steps adapt to a new task.

With the training details of MAML++ (Antoniou et al., 2019) as options: learned per-step, per-layer
inner learning rates and the multi-step loss; and a bounded-memory second order: the inner loop
checkpointed, recomputed step by step in the backward pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import neurenix as nx
from neurenix import Tensor
from neurenix.nn import Module, Parameter
from neurenix.utils.checkpoint import checkpoint

from . import checks, inner_optimizers
from .base import MetaLearningModel, descent_steps, support_grads
from .batchnorm import MODES, Plan, norm_layers, task_call
from .learner import ClonedLearner, clone_module
from .losses import LossFn, task_losses
from .tasks import Batch


class _Default(float):
    """A default argument that can tell it was not given: it reads as its value."""


INNER_LR = _Default(0.01)  # inner_lr's default


def learn2learn_rate(learner: str, inner_lr: float, lr: float | None) -> float:
    """The inner learning rate from ``inner_lr`` or learn2learn's ``lr``, refusing both."""
    if lr is None:
        return float(inner_lr) if type(inner_lr) is _Default else inner_lr
    if type(inner_lr) is not _Default:
        raise TypeError(f"{learner}: got both lr={lr!r} (learn2learn's name) and inner_lr={inner_lr!r}; they name "
                        "the same inner learning rate, pass one of them")
    return lr


class MAML(MetaLearningModel):
    """Model-Agnostic Meta-Learning, second order, or first order with ``first_order=True``.

    Inner loop: ``inner_steps`` of gradient descent at ``inner_lr`` on each task's support set, from the
    shared initialisation theta. Outer loop: the meta-optimizer steps theta along the gradient of the sum
    of the tasks' query losses at their adapted weights, differentiated through the inner loop (second
    order) or taking the inner gradients as constants (first order).

    Options (keyword-only):

    - ``checkpoint_inner_loop``: keep only each step's weights, not its graph, and recompute the steps
      one at a time in the backward pass (second order only): the same meta-gradient, with peak memory
      of one step's graph instead of ``inner_steps`` of them, for one more forward and backward pass per step.
    - ``per_step_lr``: learn an inner learning rate per step and per parameter tensor (MAML++'s LSLR),
      started at ``inner_lr``; they are parameters of this module, so the meta-optimizer trains them.
    - ``multi_step_weights``: MAML++'s multi-step loss: the meta-objective of a task is
      ``sum_k weights[k-1] * query_loss(after step k)`` over steps 1..inner_steps instead of the last
      step's alone. ``multi_step_weights(steps, epoch, anneal_epochs)`` gives MAML++'s annealing; assign
      the attribute between epochs to follow it.
    - ``inner_params``: names (or dotted prefixes) of the parameters the inner loop adapts; the others
      are shared by all tasks and trained only by the outer loop (ANIL is MAML adapting only the head).
    - ``inner_optimizer``: the inner steps' update rule, ``"sgd"`` (MAML's ``w - inner_lr * g``, the
      default), ``"momentum"``, ``"adam"`` or ``"rmsprop"`` with ``torch.optim``'s defaults, or an object of
      ``neurenix.meta.inner_optimizers`` with other settings (``Adam(betas=(0.5, 0.9))``). Every task has its
      own optimizer state; second order differentiates through the update and the state (see
      ``inner_optimizers`` on Adam's square root at 0). ``adapt_to_task`` takes the same optimizer's steps,
      none raising the support loss (``descent_steps``); ``clone()`` supports SGD only.
    - ``batch_norm``: how BatchNorm layers normalise. ``"transductive"`` (the default, the MAML paper's): every
      forward pass by each task's own batch statistics, running statistics never used. ``"inductive"``: the
      same in meta-training, where the query passes also move the layers' running statistics (by their
      momentum, over the tasks of a batch); adaptation and the adapted model (returned in eval mode)
      normalise with them, so that a query's prediction does not depend on the other queries.
      ``"per_step"`` (MAML++'s per-step statistics): a set of running statistics per inner step (and one for
      the query pass), moved by the passes of that step, used by the same step in adaptation.

    learn2learn's spelling works too: ``MAML(model, lr=0.5, first_order=False, allow_unused=None,
    allow_nograd=False)`` (``lr`` is ``inner_lr``; giving both is an error), ``maml.lr`` and ``maml.module``,
    and ``learner = maml.clone()``, ``learner.adapt(loss)``, ``learner(x)`` for writing the inner loop by
    hand (see ``clone``). ``allow_unused`` and ``allow_nograd`` only concern ``adapt``.
    """

    inner_steps = checks.Validated(checks.count, 0)
    checkpoint_inner_loop = checks.Validated(checks.flag)
    allow_unused = checks.Validated(checks.flag)
    allow_nograd = checks.Validated(checks.flag)

    def __init__(self, model: Module, inner_lr: float = INNER_LR, meta_lr: float = 0.001, first_order: bool = False,
                 inner_steps: int = 5, *, checkpoint_inner_loop: bool = False, per_step_lr: bool = False,
                 multi_step_weights: Sequence[float] | None = None, inner_params: Sequence[str] | None = None,
                 lr: float | None = None, allow_unused: bool | None = None, allow_nograd: bool = False,
                 inner_optimizer: str | inner_optimizers.InnerOptimizer = "sgd", batch_norm: str = "transductive"):
        super().__init__(model, learn2learn_rate(type(self).__name__, inner_lr, lr), meta_lr, first_order)
        self.allow_nograd = allow_nograd
        self.allow_unused = self.allow_nograd if allow_unused is None else allow_unused
        self.inner_steps = inner_steps
        self.checkpoint_inner_loop = checkpoint_inner_loop
        self.multi_step_weights = multi_step_weights
        self.inner_params = self._select(inner_params)
        self.inner_optimizer = inner_optimizers.make(inner_optimizer)
        self.batch_norm = checks.choice("batch_norm", batch_norm, MODES)
        if batch_norm != "transductive":
            self._check_running(batch_norm)
        self.step_statistics = StepStatistics(self.model, self.inner_steps + 1) if batch_norm == "per_step" else None
        per_step_lr = checks.flag("per_step_lr", per_step_lr)
        self.inner_lrs = LearnedRates(self, (max(self.inner_steps, 1),), self.inner_lr) if per_step_lr else None

    def hyperparameters(self) -> dict:
        extra = {} if self.plain_sgd else {"inner_optimizer": self.inner_optimizer.config()}  # (older files: SGD)
        extra |= {} if self.batch_norm == "transductive" else {"batch_norm": self.batch_norm}
        return super().hyperparameters() | {"inner_steps": self.inner_steps, "inner_params": list(self.inner_params),
                                            "learned_rates": self.inner_lrs is not None} | extra

    def _check_running(self, mode: str) -> None:
        layers = [m for m in norm_layers(self.model) if m.track_running_stats]
        if not layers:
            raise ValueError(f"batch_norm={mode!r}: the model has no BatchNorm layer with running statistics "
                             "(track_running_stats=True) to accumulate")
        if any(m.momentum is None for m in layers):
            raise ValueError(f"batch_norm={mode!r} moves running statistics by each layer's momentum; a layer has "
                             "momentum=None (a cumulative average), which the passes of several steps would mix")
        if mode == "per_step" and self.checkpoint_inner_loop:
            raise ValueError("batch_norm='per_step' with checkpoint_inner_loop=True: the recomputed steps would "
                             "move the statistics twice; choose one")

    def plan(self, root: Module, step: int, track: bool) -> Plan | None:
        """How the BatchNorm layers of ``root`` (this learner's model or a copy of it) normalise at inner step
        ``step`` (``inner_steps``: the query pass): None for per-task batch statistics, else the running
        statistics to use or (``track``) to move."""
        if self.batch_norm == "transductive":
            return None
        layers = [m for m in norm_layers(root) if m.track_running_stats]
        if self.step_statistics is not None:
            stats = self.step_statistics.at(step)
        else:  # inductive: the learner's own layers' buffers, whatever copy runs
            stats = [(m.running_mean, m.running_var) for m in norm_layers(self.model) if m.track_running_stats]
        return {id(m): st for m, st in zip(layers, stats)}, track

    def finish_adaptation(self, clone: Module, support_x: Tensor, steps: int) -> None:
        """Inductive and per-step: the copy keeps the running statistics of its last step and normalises with
        them (eval mode); transductive: as every learner (its support set's statistics)."""
        if self.batch_norm == "transductive":
            return super().finish_adaptation(clone, support_x, steps)
        stats, _ = self.plan(clone, steps, False)
        with nx.no_grad():
            for m in norm_layers(clone):
                if id(m) in stats:
                    m.running_mean.copy_(stats[id(m)][0])
                    m.running_var.copy_(stats[id(m)][1])
        clone.eval()

    @property
    def plain_sgd(self) -> bool:
        """Whether the inner steps are MAML's plain ``w - lr * g``."""
        return type(self.inner_optimizer) is inner_optimizers.SGD

    # -- learn2learn's names and its functional style ---------------------------------------------------
    @property
    def lr(self) -> float:
        """learn2learn's name for ``inner_lr`` (reading and assigning)."""
        return self.inner_lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.inner_lr = value

    @property
    def module(self) -> Module:
        """learn2learn's name for ``model``, the wrapped module."""
        return self.model

    def clone(self, first_order: bool | None = None, allow_unused: bool | None = None,
              allow_nograd: bool | None = None) -> ClonedLearner:
        """learn2learn's ``maml.clone()``: a copy of the model whose parameters are computed from this
        learner's (gradients flow back to them), with ``adapt(loss)`` taking one inner step in place.

        Each ``adapt`` uses the rate of its step (``inner_lr``, or the learned rates with ``per_step_lr``
        and in ``MetaSGD``) and changes only the adapted parameters (``inner_params``; ANIL's head).
        ``first_order``, ``allow_unused`` and ``allow_nograd`` default to this learner's. ``clone_model()``
        is different: a detached copy with fresh leaf parameters."""
        if not self.plain_sgd:
            raise ValueError(f"clone(): a cloned learner's adapt() takes plain SGD steps, but this learner's inner "
                             f"optimizer is {self.inner_optimizer!r}; use meta_loss / meta_learn / adapt_to_task")
        pick = [first_order, allow_unused, allow_nograd]
        own = [self.first_order, self.allow_unused, self.allow_nograd]
        return ClonedLearner(clone_module(self.model), self.step_lrs, self.inner_params, self._inner_scope,
                             *(o if p is None else p for p, o in zip(pick, own)))

    @property
    def multi_step_weights(self) -> list[float] | None:
        """MAML++'s multi-step loss weights, one per inner step (None: the last step's query loss only).
        Checked on assignment, so that an annealing schedule that goes wrong fails where it assigns."""
        return self.__dict__["_multi_step_weights"]

    @multi_step_weights.setter
    def multi_step_weights(self, weights: Sequence[float] | None) -> None:
        if weights is not None:
            if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
                raise TypeError(f"multi_step_weights must be a sequence of numbers or None, got {weights!r}")
            weights = [checks.rate(f"multi_step_weights[{k}]", w) for k, w in enumerate(weights)]
            if len(weights) != self.inner_steps:
                raise ValueError(f"multi_step_weights has {len(weights)} entries, expected one per inner step "
                                 f"({self.inner_steps})")
        self.__dict__["_multi_step_weights"] = weights

    def _select(self, wanted: Sequence[str] | None) -> tuple[str, ...]:
        names = list(self.trainable())
        if isinstance(wanted, str):
            wanted = [wanted]
        self.__dict__["_inner_scope"] = () if wanted is None else tuple(wanted)  # what clone() adapts
        if wanted is None:
            return tuple(names)
        chosen = [n for n in names if any(n == w or n.startswith(w + ".") for w in wanted)]
        missing = [w for w in wanted if not any(n == w or n.startswith(w + ".") for n in names)]
        if missing or not chosen:
            raise ValueError(f"inner_params {list(wanted)}: {missing or list(wanted)} name no trainable parameter "
                             f"of the model (it has {names})")
        return tuple(chosen)

    # -- the inner loop --------------------------------------------------------------------------
    def step_lrs(self, step: int) -> list:
        """The learning rate of each adapted parameter at inner step ``step`` (0-based)."""
        if self.inner_lrs is None:
            return [self.inner_lr] * len(self.inner_params)
        last = self.inner_lrs.shape[0] - 1  # adapting for longer than trained: the last step's rates
        return [self.inner_lrs[n][min(step, last)] for n in self.inner_params]

    def step_weights(self) -> list[float] | None:
        """The multi-step loss weights, checked (None: the last step's query loss only): ``inner_steps`` may
        have been changed since they were set."""
        w = self.multi_step_weights
        if w is not None and len(w) != self.inner_steps:
            raise ValueError(f"multi_step_weights has {len(w)} entries, expected one per inner step "
                             f"({self.inner_steps})")
        return w

    def inner_adapt(self, model: Module, params: dict[str, Tensor], batch: Batch, steps: int,
                    loss_fn: LossFn | None) -> dict[str, Tensor]:
        names = list(self.inner_params)
        ws = descent_steps(model, names, [params[n] for n in names], self.step_lrs, steps, batch, loss_fn,
                           plans=lambda k: self.plan(model, k, False), optimizer=self.inner_optimizer)
        return params | dict(zip(names, ws))

    def adapt_to_task(self, support_x: Tensor, support_y: Tensor, steps: int | None = None,
                      loss_fn: LossFn | None = None, compile: bool = True) -> Module:
        """A copy of the model after ``steps`` (default ``inner_steps``) inner steps on the support set."""
        return super().adapt_to_task(support_x, support_y, self.inner_steps if steps is None else steps, loss_fn,
                                     compile)

    def query_losses(self, model: Module, fast: dict[str, Tensor], query_x: Tensor, batch: Batch,
                     loss_fn: LossFn | None, plan: Plan | None = None) -> tuple[Tensor, Tensor]:
        """Each task's query loss with ``model`` at weights ``fast`` (task axis in front), and the predictions."""
        pred = task_call(model, fast, query_x, plan)
        return task_losses(pred, batch.query_y, batch.query_labels, loss_fn, batch.classes, batch.indices), pred

    def inner_inputs(self, batch: Batch) -> tuple[Module, Tensor, Tensor]:
        """What the inner loop runs: a module and its support and query inputs. MAML: the model on the
        tasks' inputs; ANIL: the head on the body's features, computed once."""
        return self.model, batch.support_x, batch.query_x

    def task_objective(self, batch: Batch, loss_fn: LossFn | None) -> tuple[Tensor, Tensor]:
        t, second, weights = batch.size, not self.first_order, self.step_weights()
        model, support_x, query_x = self.inner_inputs(batch)
        theta = {n: p for n, p in model.named_parameters() if p.requires_grad}
        names = list(self.inner_params)
        ws = [theta[n].expand(t, *theta[n].shape) for n in names]
        shared = {n: p for n, p in theta.items() if n not in self.inner_params}  # not adapted
        total = 0.0  # weighted query losses of the steps before the last (multi-step loss)
        opt, n = self.inner_optimizer, len(names)
        ws = ws + opt.init(ws)  # what the steps carry: the weights, then the optimizer's state (none for SGD)

        def step(k: int, carry: list[Tensor], lrs: list, shared: dict, sx: Tensor, qx: Tensor,
                 create: bool = second):
            plan = self.plan(model, k, True) if self.step_statistics is not None else None
            grads = support_grads(model, names, carry[:n], sx, batch.support_y, batch.support_labels, loss_fn, create,
                                  batch.classes, batch.indices, shared, plan)
            ws, state = opt.step(k, carry[:n], grads, lrs, carry[n:])
            if weights is None or k == self.inner_steps - 1 or weights[k] == 0:
                return ws + state, None
            return ws + state, self.query_losses(model, shared | dict(zip(names, ws)), qx, batch, loss_fn)[0]

        for k in range(self.inner_steps):
            lrs = self.step_lrs(k)
            if self.checkpoint_inner_loop and second:
                ws, q = self._checkpointed(step, k, ws, lrs, shared, support_x, query_x)
            else:
                ws, q = step(k, ws, lrs, shared, support_x, query_x)
            if q is not None:
                total = total + weights[k] * q
        losses, pred = self.query_losses(model, shared | dict(zip(names, ws[:n])), query_x, batch, loss_fn,
                                         self.plan(model, self.inner_steps, True))
        if weights is not None and self.inner_steps:
            losses = total + weights[-1] * losses
        return losses, pred

    @staticmethod
    def _checkpointed(step, k: int, ws: list[Tensor], lrs: list, shared: dict, sx: Tensor,
                      qx: Tensor) -> tuple[list[Tensor], Tensor | None]:
        """One inner step through ``autograd.checkpoint``: only its inputs and outputs are stored. Every
        tensor the meta-gradient reaches is an input (the checkpoint treats what it closes over as constant):
        the weights, learned rates, shared parameters and the inputs (ANIL's features depend on the body)."""
        n, learned, keys = len(ws), [i for i, lr in enumerate(lrs) if isinstance(lr, Tensor)], list(shared)
        m = n + len(learned)
        has_query = []

        def fn(*args):
            rates = list(lrs)
            for i, lr in zip(learned, args[n:m]):
                rates[i] = lr
            # the first call only needs values: its inner gradient is not recorded; recomputations record it
            new, q = step(k, list(args[:n]), rates, dict(zip(keys, args[m:-2])), *args[-2:], bool(has_query))
            has_query[:] = [q is not None]
            return [*new, q] if q is not None else new

        out = checkpoint(fn, *ws, *(lrs[i] for i in learned), *shared.values(), sx, qx)
        return (out[:n], out[n]) if has_query[0] else (out, None)


class StepStatistics(Module):
    """Running statistics per inner step (``batch_norm="per_step"``): for each BatchNorm layer of ``model``
    that tracks them, ``sets`` pairs of buffers (mean, var), one per inner step and the last for the query
    pass, started as the layer's own."""

    def __init__(self, model: Module, sets: int):
        super().__init__()
        self.__dict__["_size"] = (len([m for m in norm_layers(model) if m.track_running_stats]), sets)
        for i, m in enumerate(m for m in norm_layers(model) if m.track_running_stats):
            for s in range(sets):
                self.register_buffer(f"mean{i}_{s}", m.running_mean.detach().clone())
                self.register_buffer(f"var{i}_{s}", m.running_var.detach().clone())

    def at(self, step: int) -> list[tuple[Tensor, Tensor]]:
        """Each layer's (mean, var) of inner step ``step`` (the last set beyond the steps trained)."""
        layers, sets = self._size
        s = min(step, sets - 1)
        return [(getattr(self, f"mean{i}_{s}"), getattr(self, f"var{i}_{s}")) for i in range(layers)]


class LearnedRates(Module):
    """Learned inner learning rates, one tensor of ``shape`` per adapted parameter of a meta-learner,
    started at ``value``: ``rates[name]``. A shape of ``None`` means the parameter's own shape."""

    def __init__(self, learner: MAML, shape: tuple | None, value: float):
        super().__init__()
        params = learner.trainable()
        self.__dict__["_keys"] = {n: n.replace(".", "_") for n in learner.inner_params}
        for name, key in self._keys.items():
            p = params[name]
            setattr(self, key, Parameter(nx.full(p.shape if shape is None else shape, value, dtype=p.dtype,
                                                 device=p.device)))

    @property
    def shape(self) -> tuple:
        return getattr(self, next(iter(self._keys.values()))).shape

    def __getitem__(self, name: str) -> Tensor:
        return getattr(self, self._keys[name])


def multi_step_weights(steps: int, epoch: float, anneal_epochs: int) -> list[float]:
    """MAML++'s multi-step loss weights at ``epoch`` (>= 0, fractions allowed): uniform (1/steps) at epoch
    0; the weights of the steps before the last fall linearly to 0.03/steps by ``anneal_epochs`` while the
    last step's grows, so that they always sum to one."""
    steps, anneal_epochs = checks.count("steps", steps, 1), checks.count("anneal_epochs", anneal_epochs, 1)
    epoch = checks.rate("epoch", epoch)
    floor = 0.03 / steps
    early = max(1.0 / steps - epoch * (1.0 / steps - floor) / anneal_epochs, floor)
    return [early] * (steps - 1) + [1.0 - early * (steps - 1)]
