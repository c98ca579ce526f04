"""Training real models: one epoch of the digits MLP, tracegrad eager vs PyTorch eager.

The model and data of ``examples/digits_mlp.py``: scikit-learn's 8x8 digits scaled to [0, 1],
a 75% training split (``train_test_split(..., train_size=0.75, random_state=0)``, 1,347 images),
``Linear(64, 256) - ReLU - Linear(256, 256) - ReLU - Linear(256, 10)``, cross-entropy, Adam
(lr 1e-3), batches of 128 (the last one smaller: 11 steps an epoch). One timed epoch is the
whole loop a user writes: shuffle, slice each batch, wrap it, zero_grad, forward, loss,
backward, step, ``loss.item()``. Both engines start from the same weights
(`workloads.mlp_weights`) and shuffle with the same permutations, so their mean training loss
must agree epoch by epoch (printed), and so must their test accuracy after the last epoch.
"""

from __future__ import annotations

import importlib
import math
from types import ModuleType
from typing import Any, Callable

import numpy as np

from bench import common, workloads

SIZES = workloads.SIZES
BATCH = workloads.BATCH
LR = 1e-3
TRAIN_SIZE = 0.75
SEED = 0


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    X, y = workloads.digits()
    return train_test_split(X, y, train_size=TRAIN_SIZE, random_state=SEED)


def order(epoch: int, n: int) -> np.ndarray:
    """The shuffle of epoch ``epoch``: the same for every engine."""
    return np.random.default_rng(SEED + 1 + epoch).permutation(n)


def engine(lib: ModuleType, weights: list, X: np.ndarray, y: np.ndarray
           ) -> tuple[Callable[[int], float], Callable[[np.ndarray, np.ndarray], float]]:
    """``epoch(k) -> mean training loss`` and ``accuracy(X, y)`` of the MLP in ``lib``
    (``tracegrad`` or ``torch``): the loop a user writes, the same code for both."""
    model = workloads.mlp_model(lib, weights)
    step = workloads.train_step(lib, model, lib.optim.Adam(model.parameters(), lr=LR))

    def epoch(k: int) -> float:
        perm = order(k, len(X))
        total = 0.0
        for i in range(0, len(X), BATCH):
            idx = perm[i:i + BATCH]
            loss = step(lib.from_numpy(X[idx]), lib.from_numpy(y[idx]))
            total += loss.item() * len(idx)
        return total / len(X)

    def accuracy(Xt: np.ndarray, yt: np.ndarray) -> float:
        with lib.no_grad():
            return float((model(lib.from_numpy(Xt)).numpy().argmax(1) == yt).mean())

    return epoch, accuracy


def run(quick: bool = False) -> dict[str, Any]:
    """Time epochs of both engines, interleaved epoch by epoch.

    ``quick``: 1 warm-up and 2 timed epochs (for the smoke test).
    """
    warmup, repeats = (1, 2) if quick else (2, 21)
    names, missing, rows, notes, extra = ["tracegrad"], {}, [], [], []
    details: dict[str, Any] = {"warmup": warmup, "repeats": repeats}
    result = common.result("train", "training: one epoch of the digits MLP (Adam)", names,
                           missing, rows, notes, extra, details=details)
    if common.import_peer("torch") is None:
        missing["torch"] = common.missing_note("torch")
    else:
        names.append("torch")
    if common.import_peer("sklearn.model_selection") is None:
        notes.append("skipped: scikit-learn " + common.missing_note("scikit-learn"))
        return result

    X, Xt, y, yt = data()
    weights = workloads.mlp_weights(SIZES, seed=SEED)
    engines = {name: engine(importlib.import_module(name), weights, X, y) for name in names}
    timings = common.interleaved({n: e[0] for n, e in engines.items()}, warmup, repeats)
    losses = {n: t.pop("outputs") for n, t in timings.items()}
    accuracy = {n: e[1](Xt, yt) for n, e in engines.items()}
    steps = math.ceil(len(X) / BATCH)

    med = {n: common.median(t["seconds"]) for n, t in timings.items()}
    rows.append(common.row(f"digits MLP: one epoch ({len(X):,} images, {steps} steps)", "s", med))
    rows.append(common.row("digits MLP: per step", "s", {n: v / steps for n, v in med.items()}))
    cpu = {n: common.median(t["cpu_seconds"]) for n, t in timings.items()}
    rows.append(common.row("digits MLP: one epoch, CPU time", "s", cpu))
    rows.append(common.row(f"test accuracy after {warmup + repeats} epochs", "%",
                           {n: 100 * a for n, a in accuracy.items()}, ratio=False))
    notes.append(
        f"epoch: median [min .. max] of {repeats}: "
        + "; ".join(f"{n} {common.spread(t['seconds'], 1e3, ' ms')}"
                    for n, t in timings.items())
    )
    notes.append(
        f"{'-'.join(map(str, SIZES))} ReLU, cross-entropy, Adam lr {LR:g}, batch {BATCH}, "
        "float32, one BLAS thread, torch.set_num_threads(1); engines interleaved epoch by "
        "epoch in one process, a full gc.collect() after each (not timed)"
    )
    extra.append(loss_table(losses, warmup))
    details.update(timings=timings, losses=losses, accuracy=accuracy, steps_per_epoch=steps,
                   losses_agree=common.losses_agree(losses, LOSS_RTOL))
    return result


LOSS_RTOL = 1e-3  # float32 Adam, a dozen epochs apart from the same start


def loss_table(losses: dict[str, list[float]], warmup: int) -> str:
    n = len(losses["tracegrad"])
    table = common.loss_table(losses, warmup, step="epoch", column="{} mean loss", decimals=6,
                              shown=range(n) if n <= 8 else [0, 1, 2, 3, n - 2, n - 1],
                              total="all epochs")
    if len(losses) == 1:
        return "training loss per epoch:\n" + table
    verdict = "agree" if common.losses_agree(losses, LOSS_RTOL) else "DISAGREE"
    return f"training loss per epoch ({verdict}, rel. tolerance {LOSS_RTOL:g}):\n" + table
