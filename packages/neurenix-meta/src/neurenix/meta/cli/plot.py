"""Figures for ``--plot`` (matplotlib, drawn without pyplot so that no window or global state is involved)."""

from __future__ import annotations

import numpy as np

from .common import need


def figure(panels: int):
    """A matplotlib Figure with ``panels`` axes side by side."""
    mpl = need("matplotlib.figure")
    fig = mpl.Figure(figsize=(5.5 * panels, 4.2), layout="constrained")
    return fig, [fig.add_subplot(1, panels, i + 1) for i in range(panels)]


def learning_curve(ax, history: dict[str, list[float]]) -> None:
    """Per-iteration query loss (and accuracy), with a moving average over 1% of the run."""
    for key, axis, color in (("loss", ax, "tab:blue"), ("accuracy", None, "tab:green")):
        if key not in history:
            continue
        if axis is None:
            axis = ax.twinx()
            axis.set_ylim(0, 1)
        values = np.asarray(history[key])
        width = max(1, len(values) // 100)
        smooth = np.convolve(values, np.ones(width) / width, mode="valid")
        axis.plot(np.arange(1, len(values) + 1), values, color=color, alpha=0.25, lw=0.8)
        axis.plot(np.arange(width, len(values) + 1), smooth, color=color, label=f"query {key}")
        axis.set_ylabel(f"query {key}", color=color)
    if "validation" in history:  # scores of held-out tasks: MSE on the loss axis, accuracy on its own
        axis = ax if "accuracy" not in history else ax.twinx()
        axis.plot(history["validation_epoch"], history["validation"], "o-", color="tab:orange", ms=3,
                  label="validation")
    if "accuracy" not in history:
        ax.set_yscale("log")
    ax.set_xlabel("meta-iteration")
    ax.set_title("learning curve")
