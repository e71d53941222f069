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
    """Per-iteration query loss (and accuracy), with a moving average over 1% of the run, and the validation
    scores (``history["validation"]`` at ``history["validation_epoch"]``) beside them, their best one marked:
    on the accuracy axis when the scores are accuracies (the history has ``"accuracy"``), else on the loss's."""
    axes = {"loss": ax}
    for key, color in (("loss", "tab:blue"), ("accuracy", "tab:green")):
        if key not in history:
            continue
        if key == "accuracy":
            axes[key] = ax.twinx()
            axes[key].set_ylim(0, 1.02)
        axis = axes[key]
        values = np.asarray(history[key])
        width = max(1, len(values) // 100)
        smooth = np.convolve(values, np.ones(width) / width, mode="valid")
        axis.plot(np.arange(1, len(values) + 1), values, color=color, alpha=0.25, lw=0.8)
        axis.plot(np.arange(width, len(values) + 1), smooth, color=color, label=f"training query {key}")
        axis.set_ylabel(f"query {key}", color=color)
    if history.get("validation"):  # scores of held-out tasks: accuracy beside the training accuracy, else MSE
        accuracy = "accuracy" in axes
        axis = axes["accuracy" if accuracy else "loss"]
        at, scores = history["validation_epoch"], history["validation"]
        best = (max if accuracy else min)(range(len(scores)), key=scores.__getitem__)
        axis.plot(at, scores, "o-", color="tab:orange", ms=3, label=f"validation {'accuracy' if accuracy else 'MSE'}")
        axis.plot([at[best]], [scores[best]], "*", color="tab:red", ms=11,
                  label=f"best validation: {scores[best]:.4g} at {at[best]}")
    if "accuracy" not in history:
        ax.set_yscale("log")
    handles = [h for a in axes.values() for h in a.get_legend_handles_labels()[0]]
    if handles:
        axes.get("accuracy", ax).legend(handles=handles, fontsize=8, loc="center right")
    ax.set_xlabel("meta-iteration")
    ax.set_title("learning curve")
