"""Task generators: what they draw, how they split, and reproducibility."""

import numpy as np
import pytest

import neurenix as nx
from neurenix.meta import generate_classification_tasks, generate_regression_tasks


@pytest.mark.parametrize("samples", [20, 7])
def test_sine_tasks_follow_the_maml_paper(samples):
    tasks = generate_regression_tasks(num_tasks=50, num_samples_per_task=samples, seed=0)
    k = samples // 2
    for sx, sy, qx, qy in tasks:
        assert (sx.shape, sy.shape, qx.shape, qy.shape) == ((k, 1), (k, 1), (samples - k, 1), (samples - k, 1))
        assert sx.dtype == nx.float32 and str(sx.device) == str(nx.default_device())
    x = np.concatenate([np.concatenate([t[0].numpy(), t[2].numpy()]) for t in tasks]).ravel()
    y = np.concatenate([np.concatenate([t[1].numpy(), t[3].numpy()]) for t in tasks]).ravel()
    assert -5 <= x.min() < -4 and 4 < x.max() <= 5
    amplitudes = np.array([np.abs(np.concatenate([t[1].numpy(), t[3].numpy()])).max() for t in tasks])
    assert amplitudes.max() <= 5.0 and np.abs(y).max() > 3
    # every task is A sin(x - phi): fit A, phi by least squares on sin/cos features; residual ~ 0
    for sx, sy, qx, qy in tasks[:5]:
        xs, ys = np.concatenate([sx.numpy(), qx.numpy()]).ravel(), np.concatenate([sy.numpy(), qy.numpy()]).ravel()
        coef, *_ = np.linalg.lstsq(np.stack([np.sin(xs), np.cos(xs)], 1), ys, rcond=None)
        amplitude, phase = np.hypot(*coef), np.arctan2(-coef[1], coef[0])
        assert 0.1 <= amplitude <= 5.0 and -1e-4 <= phase <= np.pi + 1e-4
        np.testing.assert_allclose(ys, amplitude * np.sin(xs - phase), atol=1e-5)


def test_classification_tasks_are_balanced_one_hot_and_split_per_class():
    tasks = generate_classification_tasks(num_tasks=5, num_classes=4, num_samples_per_class=7, input_dim=12, seed=1)
    for sx, sy, qx, qy in tasks:
        assert (sx.shape, sy.shape, qx.shape, qy.shape) == ((12, 12), (12, 4), (16, 12), (16, 4))
        np.testing.assert_array_equal(sy.numpy().sum(0), [3] * 4)
        np.testing.assert_array_equal(qy.numpy().sum(0), [4] * 4)
        assert set(np.unique(sy.numpy())) == {0.0, 1.0} and np.all(sy.numpy().sum(1) == 1)


def test_nearest_class_mean_beats_chance():
    """The classes are separable enough for few-shot learning, not trivially so in the raw inputs."""
    accuracy = []
    for sx, sy, qx, qy in generate_classification_tasks(30, seed=2):
        s, q, ls, lq = sx.numpy(), qx.numpy(), sy.numpy().argmax(1), qy.numpy().argmax(1)
        means = np.stack([s[ls == c].mean(0) for c in range(5)])
        accuracy.append(np.mean(((q[:, None] - means) ** 2).sum(-1).argmin(1) == lq))
    assert 0.4 < np.mean(accuracy) < 0.98


@pytest.mark.parametrize("make", [lambda **k: generate_regression_tasks(3, 10, **k),
                                  lambda **k: generate_classification_tasks(3, **k)], ids=["sine", "classes"])
def test_reproducible_from_a_seed_or_manual_seed(make):
    def values(tasks):
        return [t.numpy() for task in tasks for t in task]

    for a, b in zip(values(make(seed=5)), values(make(seed=5))):
        np.testing.assert_array_equal(a, b)
    nx.manual_seed(3)
    first = values(make())
    nx.manual_seed(3)
    for a, b in zip(first, values(make())):
        np.testing.assert_array_equal(a, b)
    assert make(dtype=nx.float64)[0][0].dtype == nx.float64


def test_bad_counts():
    with pytest.raises(ValueError, match="num_samples_per_task must be an int >= 2"):
        generate_regression_tasks(3, 1)
    with pytest.raises(ValueError, match="num_classes must be an int >= 2"):
        generate_classification_tasks(3, num_classes=1)
    with pytest.raises(ValueError, match="num_tasks must be an int >= 1"):
        generate_regression_tasks(0, 10)
