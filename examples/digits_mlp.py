"""Train an MLP on scikit-learn's 8x8 handwritten digits with tracegrad tensors.

A 64-256-256-10 ReLU network (``tg.nn.Sequential`` of ``Linear`` and ``ReLU``) learns the
1797 digits of ``sklearn.datasets.load_digits``, pixels scaled to [0, 1], split 75/25 once
and for all (``train_test_split(test_size=0.25, random_state=0)``): cross-entropy with label
smoothing 0.1, AdamW (lr 2e-3, weight decay 1e-2) with a cosine schedule, shuffled batches of
128 from a ``tracegrad.data.DataLoader``. The full setting, 30 epochs, reaches >= 97% test
accuracy in a few seconds; ``--quick`` trains 8 epochs (about 95%).

The training loop is `tracegrad.demo.train_classifier` (``tracegrad demo`` runs this model
too); read it there. Needs the demo extras: pip install "tracegrad[demo]".

    python examples/digits_mlp.py --out digits_mlp_loss.png
"""

from __future__ import annotations

from typing import Sequence

from tracegrad.demo import (
    DIGITS_MLP_EPOCHS,
    DIGITS_MLP_QUICK_EPOCHS,
    TrainRun,
    digits_main,
    train_digits_mlp,
)


def train(epochs: int = DIGITS_MLP_EPOCHS, seed: int = 0, progress: bool = False) -> TrainRun:
    """Train the MLP from weights drawn after ``tg.manual_seed(seed)``; return the run."""
    return train_digits_mlp(epochs, seed=seed, progress=progress)


def main(argv: Sequence[str] | None = None) -> TrainRun:
    """Train and plot as the command line says: ``--quick``, ``--epochs``, ``--seed``, ``--out``."""
    return digits_main(argv, train, description=__doc__.split("\n\n")[0],
                       epochs=DIGITS_MLP_EPOCHS, quick_epochs=DIGITS_MLP_QUICK_EPOCHS,
                       out="digits_mlp_loss.png", title="digits, MLP 64-256-256-10")


if __name__ == "__main__":
    main()
