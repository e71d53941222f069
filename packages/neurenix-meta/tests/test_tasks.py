"""Checking tasks: labels are read as the docs say, and bad tasks fail with the task index and shapes."""

import numpy as np
import pytest

import neurenix as nx
from meta_helpers import class_tasks, sine_tasks
from neurenix.meta.tasks import batches, check_task, check_tasks


def test_labels_are_read_from_indices_and_one_hot_rows():
    (sx, sy, qx, qy), = class_tasks(1, ways=3, per_class=4)
    for task in [(sx, sy, qx, qy), (sx, sy.argmax(dim=1), qx, qy.argmax(dim=1))]:
        c = check_task(task, 0)
        assert c.classes == 3 and c.support_counts == (2, 2, 2)
        np.testing.assert_array_equal(c.support_labels.numpy(), sy.numpy().argmax(1))
    regression = check_task(sine_tasks(1)[0], 0)
    assert regression.support_labels is None and regression.classes == 0


def test_a_single_column_or_soft_targets_are_regression():
    x = nx.randn(4, 2)
    assert check_task((x, nx.ones(4, 1), x, nx.ones(4, 1)), 0).support_labels is None
    soft = nx.full((4, 2), 0.5)
    assert check_task((x, soft, x, soft), 0).support_labels is None


def test_batches_group_tasks_of_equal_shapes_in_order():
    small, big = sine_tasks(3, rows=4), sine_tasks(2, rows=6)
    tasks = check_tasks([small[0], big[0], small[1], big[1], small[2]])
    groups = batches(tasks)
    assert [g.indices for g in groups] == [(0, 2, 4), (1, 3)]
    assert groups[0].support_x.shape == (3, 4, 1) and groups[1].query_y.shape == (2, 6, 1)
    assert [g.indices for g in batches(tasks, batched=False)] == [(i,) for i in range(5)]


BAD = {
    "not a 4-tuple": (lambda t: t[:3], ValueError, r"task 1: expected a \(support_x, support_y, query_x, query_y\)"
                                                   r" tuple, got a tuple of 3"),
    "not a tensor": (lambda t: (t[0].numpy(), *t[1:]), TypeError, "task 1: support_x must be a neurenix Tensor"),
    "rows disagree": (lambda t: (t[0], t[1][:2], t[2], t[3]), nx.ShapeError,
                      r"task 1: inputs and targets disagree on the number of rows \(support_x \(5, 1\), "
                      r"support_y \(2, 1\)"),
    "feature shapes": (lambda t: (t[0], t[1], nx.cat([t[2], t[2]], dim=1), t[3]), nx.ShapeError,
                       r"task 1: support and query inputs have different feature shapes .*query_x \(5, 2\)"),
    "empty support": (lambda t: (t[0][:0], t[1][:0], t[2], t[3]), nx.ShapeError, "task 1: the support set is empty"),
    "scalar": (lambda t: (t[0], t[1], t[2], t[3].sum()), nx.ShapeError, "task 1: query_y must have a rows axis"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_tasks_are_named(case):
    make, error, message = BAD[case]
    tasks = sine_tasks(2, rows=5)
    with pytest.raises(error, match=message):
        check_tasks([tasks[0], make(tasks[1])])


def test_negative_labels_and_mixed_kinds():
    x = nx.randn(4, 2)
    with pytest.raises(ValueError, match="task 0: class labels must be non-negative"):
        check_task((x, nx.tensor([0, 1, -1, 0]), x, nx.tensor([0, 1, 1, 0])), 0)
    with pytest.raises(ValueError, match="tasks mix classification"):
        check_tasks([sine_tasks(1)[0], class_tasks(1)[0]])
    with pytest.raises(TypeError, match="got one task"):
        check_tasks(sine_tasks(1)[0])
    with pytest.raises(ValueError, match="no tasks given"):
        check_tasks([])
