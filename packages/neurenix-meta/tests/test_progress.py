"""meta_learn prints nothing unless asked; verbose=True shows a progress bar; tasks can be drawn per epoch."""

import logging

import pytest

from meta_helpers import class_tasks, mlp, sine_tasks
from neurenix.meta import MAML, PrototypicalNetworks


def test_silent_by_default(capsys, caplog):
    with caplog.at_level(logging.WARNING):
        MAML(mlp(), inner_steps=1).meta_learn(sine_tasks(3), epochs=2)
    assert capsys.readouterr() == ("", "") and not caplog.records


@pytest.mark.parametrize("learner, tasks, keys", [
    (lambda: MAML(mlp(), inner_steps=1), sine_tasks, ["loss"]),
    (lambda: PrototypicalNetworks(mlp(sizes=(5, 6, 4))), class_tasks, ["loss", "accuracy"]),
], ids=["regression", "classification"])
def test_verbose_shows_a_bar_with_the_loss(capsys, learner, tasks, keys):
    learner().meta_learn(tasks(3), epochs=3, verbose=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert "3/3" in err and "epoch/s" in err and all(f"{k}=" in err for k in keys)


def test_tasks_per_epoch_and_logging(caplog, tmp_path):
    seen = []

    def tasks(epoch):
        seen.append(epoch)
        return sine_tasks(2, seed=epoch)

    with caplog.at_level(logging.DEBUG, logger="neurenix.meta"):
        history = MAML(mlp(), inner_steps=1).meta_learn(tasks, epochs=3, checkpoint=tmp_path / "c.safetensors")
    assert seen == [0, 1, 2] and len(history["loss"]) == 3
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("epoch 2: loss") for m in messages) and messages[-1].endswith("c.safetensors after epoch 3")
