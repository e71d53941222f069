"""learn2learn's functional style: ``learner = maml.clone()``, ``learner.adapt(loss)``, ``learner(x)``.

``clone_module(model)`` gives a copy of ``model`` whose parameters are non-leaf tensors computed from the
original ones (``p.clone()``), so that a loss of the copy backpropagates into the original parameters.
``ClonedLearner`` wraps such a copy: each ``adapt(loss)`` replaces its weights by ``w - lr * grad`` (a graph
through the gradient unless first order), and calling it runs the module on the current weights. The meta-
learners' ``clone()`` (``MAML``, ``ANIL``, ``MetaSGD``) returns one; ``meta_learn`` is the batched
equivalent (see docs/learn2learn.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from neurenix import Tensor
from neurenix.autograd import grad
from neurenix.nn import Module
from neurenix.nn.utils.stateless import copy_structure, swap_tensors_dict

from . import checks


def clone_module(module: Module) -> Module:
    """A copy of ``module`` (its submodules copied too) whose parameters are ``p.clone()`` of the originals:
    non-leaf tensors through which gradients reach ``module``'s parameters. Buffers (BatchNorm's running
    statistics) are shared with the original, as in learn2learn; a parameter or submodule used twice stays
    one. ``module`` itself is not changed."""
    return copy_structure(checks.module("module", module), lambda p: p.clone())


class ClonedLearner(Module):
    """A differentiable copy of a meta-learner's model that adapts in place (learn2learn's ``maml.clone()``).

    ``learner(x)`` runs the copy at its current weights; ``learner.adapt(loss)`` takes one inner step
    ``w <- w - lr * dloss/dw`` for each adapted parameter, with the meta-learner's rate for this step
    (``inner_lr``; MAML++'s per-step rates; Meta-SGD's per-element ones, which thereby get meta-gradients).
    Second order unless ``first_order``: the step keeps the gradient's graph, so a loss computed after
    adapting backpropagates through the steps into the meta-learner's parameters.

    Made by ``MAML.clone()`` (and ``ANIL``'s, ``MetaSGD``'s), not directly. Attributes the learner does not
    have are looked up on the wrapped ``module``, as in learn2learn.
    """

    first_order = checks.Validated(checks.flag)
    allow_unused = checks.Validated(checks.flag)
    allow_nograd = checks.Validated(checks.flag)

    def __init__(self, module: Module, rates: Callable[[int], list], names: Sequence[str], scope: Sequence[str],
                 first_order: bool, allow_unused: bool, allow_nograd: bool, steps_taken: int = 0):
        super().__init__()
        self.module = module
        self.first_order, self.allow_unused, self.allow_nograd = first_order, allow_unused, allow_nograd
        # not registered: the rates belong to the meta-learner (its parameters() has them)
        self.__dict__.update(_rates=rates, _names=tuple(names), _scope=tuple(scope), steps_taken=steps_taken)

    def __getattr__(self, name: str):
        module = self.__dict__.get("module")
        if module is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(module, name)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def clone(self, first_order: bool | None = None, allow_unused: bool | None = None,
              allow_nograd: bool | None = None) -> ClonedLearner:
        """A differentiable copy of this learner at its current (possibly adapted) weights."""
        return ClonedLearner(clone_module(self.module), self._rates, self._names, self._scope,
                             self.first_order if first_order is None else first_order,
                             self.allow_unused if allow_unused is None else allow_unused,
                             self.allow_nograd if allow_nograd is None else allow_nograd, self.steps_taken)

    def adapt(self, loss: Tensor, first_order: bool | None = None, allow_unused: bool | None = None,
              allow_nograd: bool | None = None) -> None:
        """One inner step on ``loss`` (a scalar computed with this learner), in place. The keyword arguments
        override the learner's settings for this step: ``first_order`` drops the gradient's graph,
        ``allow_unused`` leaves parameters that ``loss`` does not depend on as they are (otherwise an error),
        ``allow_nograd`` leaves parameters that do not require grad as they are (otherwise an error)."""
        first_order = self.first_order if first_order is None else checks.flag("first_order", first_order)
        allow_unused = self.allow_unused if allow_unused is None else checks.flag("allow_unused", allow_unused)
        allow_nograd = self.allow_nograd if allow_nograd is None else checks.flag("allow_nograd", allow_nograd)
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise TypeError(f"adapt: loss must be a scalar neurenix Tensor, got "
                            f"{getattr(loss, 'shape', type(loss).__name__)}")
        live = self._live(allow_nograd)
        grads = grad(loss, [w for _, w in live], create_graph=not first_order, allow_unused=True)
        unused = [name for (name, _), g in zip(live, grads) if g is None]
        if unused and not allow_unused:
            raise ValueError(f"adapt: the loss does not depend on parameters {unused}; pass allow_unused=True to "
                             "leave them unchanged")
        rates = dict(zip(self._names, self._rates(self.steps_taken)))
        steps = {name: w - rates[name] * g for (name, w), g in zip(live, grads) if g is not None}
        swap_tensors_dict(self.module, steps, tie_weights=True)  # a weight tied across layers stays tied
        self.steps_taken += 1

    def _live(self, allow_nograd: bool) -> list[tuple[str, Tensor]]:
        """The adapted parameters that require grad: (name, current tensor)."""
        current = dict(self.module.named_parameters())
        scoped = [n for n in current if not self._scope or any(n == s or n.startswith(s + ".") for s in self._scope)]
        frozen = [n for n in scoped if not current[n].requires_grad]
        if frozen and not allow_nograd:
            raise ValueError(f"adapt: parameters {frozen} do not require grad; pass allow_nograd=True to leave them "
                             "unchanged")
        stray = [n for n in scoped if n not in frozen and n not in self._names]
        if stray:
            raise ValueError(f"adapt: parameters {stray} did not require grad when the meta-learner was built, so "
                             "it has no inner learning rate for them; build it again after unfreezing them")
        return [(n, current[n]) for n in scoped if n not in frozen]
