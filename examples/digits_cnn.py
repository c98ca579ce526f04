"""Train a small convolutional net on scikit-learn's 8x8 digits with tracegrad tensors.

The same data and split as ``digits_mlp.py``, each sample now one 8x8 channel, (1, 8, 8):

    conv 3x3, 32 channels, ReLU, 2x2 max-pool    1x8x8  -> 32x4x4
    conv 3x3, 64 channels, ReLU, 2x2 max-pool    32x4x4 -> 64x2x2
    flatten, Linear(256, 10)                     64x2x2 -> 10 class scores

(``tg.nn.Conv2d`` is im2col plus one matmul, ``tg.nn.MaxPool2d`` a max over gathered
windows; both are compositions of primitives, so they get gradients for free.) Trained
like the MLP: cross-entropy with label smoothing 0.1, AdamW (lr 3e-3, weight decay 1e-2),
a cosine schedule, batches of 128. The full setting, 20 epochs, reaches >= 98% test
accuracy; ``--quick`` trains 5 epochs.

The data, the training loop and the plot are ``digits_mlp.py``'s (this script imports them
from there: read that one first). Needs scikit-learn, matplotlib and tqdm:
pip install "tracegrad[demo]".

    python examples/digits_cnn.py --out digits_cnn_loss.png
"""

from __future__ import annotations

from typing import Sequence

from digits_mlp import TrainRun, command_line, digits_split, train_classifier

import tracegrad as tg

EPOCHS = 20  # the full setting: >= 98% test accuracy
QUICK_EPOCHS = 5


class DigitsCNN(tg.nn.Module):
    """Two conv-ReLU-pool stages and a linear head: 1x8x8 images -> 10 class scores."""

    def __init__(self, channels: tuple[int, int] = (32, 64)):
        super().__init__()
        c1, c2 = channels
        self.conv1 = tg.nn.Conv2d(1, c1, kernel_size=3, padding=1)
        self.conv2 = tg.nn.Conv2d(c1, c2, kernel_size=3, padding=1)
        self.pool = tg.nn.MaxPool2d(2)
        self.head = tg.nn.Linear(c2 * 2 * 2, 10)

    def forward(self, x: tg.Tensor) -> tg.Tensor:
        x = self.pool(self.conv1(x).relu())  # (N, 32, 4, 4)
        x = self.pool(self.conv2(x).relu())  # (N, 64, 2, 2)
        return self.head(x.flatten(1))  # (N, 10)


def train(epochs: int = EPOCHS, seed: int = 0, progress: bool = False) -> TrainRun:
    """Train `DigitsCNN` from weights drawn after ``tg.manual_seed(seed)``; return the run."""
    data = digits_split(images=True)
    tg.manual_seed(seed)
    return train_classifier(DigitsCNN(), data, epochs, lr=3e-3, seed=seed, progress=progress)


def main(argv: Sequence[str] | None = None) -> TrainRun:
    """Train and plot as the command line says: ``--quick``, ``--epochs``, ``--seed``, ``--out``."""
    return command_line(argv, __doc__, train, EPOCHS, QUICK_EPOCHS, "digits_cnn_loss.png",
                        "digits, CNN")


if __name__ == "__main__":
    main()
