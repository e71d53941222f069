"""Every numeric or flag argument of neurenix.meta's entry points, against a grid of hostile values: a valid
value is accepted, any other raises a TypeError or ValueError that names the argument, and nothing else
comes out (no ZeroDivisionError, IndexError or NumPy message from the insides)."""

import math
import numbers

import numpy as np
import pytest

import neurenix as nx
from meta_helpers import mlp, sine_tasks
from neurenix.meta import (
    ANIL,
    MAML,
    R2D2,
    EpisodeSampler,
    MetaSGD,
    PrototypicalNetworks,
    RelationNetworks,
    Reptile,
    TaskSampler,
    evaluate,
    generate_classification_tasks,
    generate_regression_tasks,
    iMAML,
    multi_step_weights,
)
from neurenix.meta.checks import Validated, count, rate

VALUES = [-1, 0, 1, 3, 2.5, -0.5, math.nan, math.inf, -math.inf, True, False, "3", None, [1], 1e300, np.int64(2),
          np.float32(0.5)]


def valid(kind: str, value) -> bool:
    """The oracle: which values each kind of argument accepts."""
    number = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if kind == "rate":
        return number and math.isfinite(value) and value >= 0
    if kind == "positive":
        return number and math.isfinite(value) and value > 0
    if kind == "flag":
        return isinstance(value, (bool, numbers.Integral)) and value in (0, 1)
    if kind in ("seed", "steps") and value is None:  # None: draw from neurenix's generator; the default steps
        return True
    least = 0 if kind in ("seed", "steps") else int(kind.removeprefix("count"))
    return number and isinstance(value, numbers.Integral) and value >= least


X, Y = np.random.default_rng(0).normal(size=(12, 3)), np.repeat(np.arange(3), 4)
TASKS = sine_tasks(2, rows=3)
ENTRY_POINTS = {  # name: (call(**kwargs), {argument: kind})
    "MAML": (lambda **kw: MAML(mlp(), **kw), {"inner_lr": "rate", "meta_lr": "rate", "first_order": "flag",
                                              "inner_steps": "count0", "checkpoint_inner_loop": "flag",
                                              "per_step_lr": "flag"}),
    "MetaSGD": (lambda **kw: MetaSGD(mlp(), **kw), {"inner_lr": "rate", "meta_lr": "rate", "inner_steps": "count0"}),
    "ANIL": (lambda **kw: ANIL(mlp(), **kw), {"inner_lr": "rate", "first_order": "flag", "inner_steps": "count0"}),
    "iMAML": (lambda **kw: iMAML(mlp(), **kw), {"inner_lr": "rate", "meta_lr": "rate", "inner_steps": "count1",
                                                "lam": "positive", "cg_steps": "count1"}),
    "Reptile": (lambda **kw: Reptile(mlp(), **kw), {"inner_lr": "rate", "meta_lr": "rate", "inner_steps": "count1"}),
    "PrototypicalNetworks": (lambda **kw: PrototypicalNetworks(mlp(), **kw), {"meta_lr": "rate"}),
    "RelationNetworks": (lambda **kw: RelationNetworks(mlp(), mlp(sizes=(2, 1)), **kw), {"meta_lr": "rate"}),
    "R2D2": (lambda **kw: R2D2(mlp(), **kw), {"meta_lr": "rate", "learn_lambda": "flag"}),
    "generate_regression_tasks": (lambda **kw: generate_regression_tasks(**{"num_tasks": 1, "num_samples_per_task": 2}
                                                                         | kw),
                                  {"num_tasks": "count1", "num_samples_per_task": "count2", "input_dim": "count1",
                                   "seed": "seed"}),
    "generate_classification_tasks": (lambda **kw: generate_classification_tasks(**{"num_tasks": 1, "num_classes": 2,
                                                                                    "num_samples_per_class": 2,
                                                                                    "input_dim": 2} | kw),
                                      {"num_tasks": "count1", "num_classes": "count2",
                                       "num_samples_per_class": "count2", "input_dim": "count1", "seed": "seed"}),
    "TaskSampler": (lambda **kw: TaskSampler(X, Y, **{"ways": 2, "shots": 1, "queries": 1} | kw),
                    {"ways": "count2", "shots": "count1", "queries": "count1", "seed": "seed", "one_hot": "flag"}),
    "TaskSampler.sample": (lambda **kw: TaskSampler(X, Y, 2, 1, 1).sample(**kw), {"num_tasks": "count0"}),
    "EpisodeSampler": (lambda **kw: EpisodeSampler(X, Y, **{"min_ways": 2, "max_ways": 3} | kw),
                       {"min_ways": "count2", "max_ways": "count2", "max_query_per_class": "count1",
                        "max_support": "count3", "max_support_contribution": "count1", "seed": "seed",
                        "one_hot": "flag"}),
    "EpisodeSampler.sample": (lambda **kw: EpisodeSampler(X, Y, min_ways=2).sample(**kw), {"num_tasks": "count0"}),
    "multi_step_weights": (lambda **kw: multi_step_weights(**{"steps": 2, "epoch": 0, "anneal_epochs": 1} | kw),
                           {"steps": "count1", "epoch": "rate", "anneal_epochs": "count1"}),
    "meta_learn": (lambda **kw: MAML(mlp(), inner_steps=1).meta_learn(TASKS, **{"epochs": 1} | kw),
                   {"epochs": "count0", "tasks_per_batch": "count1", "checkpoint_every": "count1", "shuffle": "flag",
                    "batch_tasks": "flag"}),
    "adapt_to_task": (lambda **kw: MAML(mlp(), inner_steps=1).adapt_to_task(*TASKS[0][:2], **kw), {"steps": "steps"}),
    "evaluate": (lambda **kw: evaluate(MAML(mlp(), inner_steps=1), TASKS, **kw), {"steps": "steps"}),
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_valid_values_pass_and_others_raise_naming_the_argument(entry):
    call, arguments = ENTRY_POINTS[entry]
    for name, kind in arguments.items():
        for value in VALUES:
            if valid(kind, value):
                call(**{name: value})
                continue
            with pytest.raises((TypeError, ValueError)) as e:
                call(**{name: value})
            assert name in str(e.value) and type(e.value).__module__ in ("builtins", "neurenix.errors"), \
                f"{entry}({name}={value!r}): {type(e.value).__name__}: {e.value}"


def test_checked_attributes_are_checked_when_assigned_later():
    maml = MAML(mlp(), inner_steps=1)
    for name, value in (("inner_lr", math.nan), ("meta_lr", -1.0), ("inner_steps", -2), ("first_order", "yes"),
                        ("multi_step_weights", [math.inf])):
        with pytest.raises((TypeError, ValueError), match=name.replace("_", ".")):
            setattr(maml, name, value)
    protonet = PrototypicalNetworks(mlp())
    with pytest.raises(ValueError, match="distance_metric must be one of"):
        protonet.distance_metric = "manhattan"
    assert (maml.inner_lr, maml.inner_steps, protonet.distance_metric) == (0.01, 1, "euclidean")


def test_validated_is_a_plain_attribute_otherwise():
    class Holder:
        size = Validated(count, 1)
        speed = Validated(rate)

    h = Holder()
    with pytest.raises(AttributeError):
        _ = h.size
    h.size, h.speed = np.int64(3), 2
    assert (h.size, h.speed) == (3, 2.0) and type(h.size) is int and type(h.speed) is float
    assert isinstance(Holder.size, Validated)


def test_models_of_the_wrong_kind_are_named():
    with pytest.raises(TypeError, match="embedding_model must be a neurenix.nn.Module, got NoneType"):
        PrototypicalNetworks(None)
    with pytest.raises(TypeError, match="relation_model must be a neurenix.nn.Module, got function"):
        RelationNetworks(mlp(), lambda x: x)
    with pytest.raises(ValueError, match=r"head='nope' names no submodule of the model with trainable parameters"):
        ANIL(mlp(), head="nope")
    with pytest.raises(TypeError, match="learner must be a neurenix.meta meta-learner, got NoneType"):
        evaluate(None, TASKS)
    with pytest.raises(TypeError, match="dtype must be a floating-point dtype"):
        generate_regression_tasks(2, 4, dtype=nx.int64)
