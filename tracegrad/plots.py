"""Plots of training runs (matplotlib, imported when a plot is made, not with tracegrad)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def training_curves(run: Any, path: str | Path, title: str) -> Path:
    """Save a classifier's training run as a PNG: the loss of every batch (log scale), its
    per-epoch mean, and the test accuracy after each epoch. ``run`` has ``losses`` (one per
    batch), ``epochs``, ``test_accuracies`` (one per epoch) and ``test_accuracy``."""
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("training_curves needs matplotlib: pip install matplotlib "
                          "(or the demo extras: pip install \"tracegrad[demo]\")") from e
    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = figure.add_subplot()
    per_epoch = len(run.losses) // run.epochs
    ends = per_epoch * np.arange(1, run.epochs + 1)
    means = np.asarray(run.losses[: per_epoch * run.epochs]).reshape(run.epochs, -1).mean(1)
    ax.plot(np.arange(1, len(run.losses) + 1), run.losses, color="tab:blue", alpha=0.35,
            linewidth=0.8, label="batch loss")
    ax.plot(ends, means, color="tab:blue", marker="o", markersize=3, label="epoch mean")
    ax.set_yscale("log")
    ax.set_xlabel(f"step (batch; {per_epoch} per epoch)")
    ax.set_ylabel("training loss (log scale)", color="tab:blue")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper center")
    acc = ax.twinx()
    acc.plot(ends, [100 * a for a in run.test_accuracies], color="tab:orange", marker="o",
             markersize=3)
    acc.set_ylabel("test accuracy (%)", color="tab:orange")
    acc.set_ylim(min(80.0, 100 * min(run.test_accuracies)) - 2, 100.5)
    ax.set_title(f"{title}: test accuracy {run.test_accuracy:.2%}")
    path = Path(path)
    figure.savefig(path, dpi=120)
    return path
