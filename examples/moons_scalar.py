"""micrograd's moons demo on tracegrad's scalar engine (``tracegrad.nn.scalar``).

An MLP(2, [16, 16, 1]) built from `tracegrad.Value`s learns to separate the two half-moons
of ``sklearn.datasets.make_moons``: SVM max-margin loss with a little L2, plain SGD with a
decaying learning rate, exactly as in micrograd's ``demo.ipynb``. With the default 100 steps
it reaches micrograd's numbers (loss 0.0110, 100% training accuracy) in about 20 s.

Everything is in this file: the data, the loss, the training loop and the plot. Needs
scikit-learn, matplotlib and tqdm: pip install "tracegrad[demo]".

    python examples/moons_scalar.py --steps 100 --out moons_loss.png
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tracegrad import Value
from tracegrad.nn.scalar import MLP


@dataclass
class MoonsRun:
    """What `train` returns: the model and the loss and accuracy before each step's update."""

    model: MLP
    losses: list[float]
    accuracies: list[float]
    final_loss: float  # after the last update
    final_accuracy: float


def loss_and_accuracy(model: MLP, X: list[list[float]], y: list[int]) -> tuple[Value, float]:
    """micrograd's loss: the mean SVM max-margin loss plus 1e-4 L2; and the accuracy."""
    scores = [model([Value(x) for x in row]) for row in X]
    losses = [(1 + -yi * score).relu() for yi, score in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = 1e-4 * sum(p * p for p in model.parameters())
    accuracy = sum((yi > 0) == (s.data > 0) for yi, s in zip(y, scores)) / len(y)
    return data_loss + reg_loss, accuracy


def train(steps: int = 100, seed: int = 1337, progress: bool = False) -> MoonsRun:
    """The same data, initial weights (Python's ``random`` after ``random.seed(seed)``), loss
    and learning-rate schedule as micrograd's notebook, so 100 steps reach its numbers."""
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=100, noise=0.1, random_state=seed)
    X, y = X.tolist(), (y * 2 - 1).tolist()  # plain Python numbers: the fastest for Values
    random.seed(seed)
    model = MLP(2, [16, 16, 1])
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc="  training", unit="step")
    losses, accuracies = [], []
    for k in range(steps):
        loss, accuracy = loss_and_accuracy(model, X, y)
        model.zero_grad()
        loss.backward()
        learning_rate = 1.0 - 0.9 * k / steps
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        losses.append(loss.data)
        accuracies.append(accuracy)
        if bar is not None:
            bar.set_postfix({"loss": f"{loss.data:.4f}", "acc": f"{accuracy:.0%}"}, refresh=False)
            bar.update()
    if bar is not None:
        bar.close()
    final_loss, final_accuracy = loss_and_accuracy(model, X, y)
    return MoonsRun(model, losses, accuracies, final_loss.data, final_accuracy)


def plot_loss(run: MoonsRun, path: str | Path) -> Path:
    """Save the loss and the accuracy at each step as a PNG."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = figure.add_subplot()
    steps = range(1, len(run.losses) + 1)
    ax.plot(steps, run.losses, color="tab:blue")
    ax.set_yscale("log")
    ax.set_xlabel("SGD step")
    ax.set_ylabel("loss (log scale)", color="tab:blue")
    ax.grid(True, which="both", alpha=0.3)
    acc = ax.twinx()
    acc.plot(steps, [100 * a for a in run.accuracies], color="tab:orange")
    acc.set_ylabel("training accuracy (%)", color="tab:orange")
    ax.set_title(f"moons: final loss {run.final_loss:.4f}, accuracy {run.final_accuracy:.0%}")
    figure.savefig(path, dpi=120)
    return Path(path)


def main(argv: Sequence[str] | None = None) -> MoonsRun:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="SGD steps (default: 100)")
    parser.add_argument("--seed", type=int, default=1337, help="data and weights (default: 1337)")
    parser.add_argument(
        "--out", default="moons_loss.png", help="the loss-curve PNG (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")

    run = train(args.steps, seed=args.seed, progress=True)
    print(f"after {args.steps} steps: loss {run.final_loss:.4f}, accuracy {run.final_accuracy:.0%}")
    print(f"wrote {plot_loss(run, args.out)}")
    return run


if __name__ == "__main__":
    main()
