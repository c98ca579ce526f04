"""Training real models: one epoch of the digits MLP, tracegrad eager vs PyTorch eager.

The model and data of ``examples/digits_mlp.py``: scikit-learn's 8x8 digits scaled to [0, 1],
a 75% training split (``train_test_split(..., train_size=0.75, random_state=0)``, 1,347 images),
``Linear(64, 256) - ReLU - Linear(256, 256) - ReLU - Linear(256, 10)``, cross-entropy, Adam
(lr 1e-3), batches of 128 (the last one smaller: 11 steps an epoch). One timed epoch is the
whole loop a user writes: shuffle, slice each batch, wrap it, forward, loss, zero_grad,
backward, step, ``loss.item()``. Both engines start from the same weights
(`common.mlp_weights`) and shuffle with the same permutations, so their mean training loss
must agree epoch by epoch (printed), and so must their test accuracy after the last epoch.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from bench import common

SIZES = [64, 256, 256, 10]
BATCH = 128
LR = 1e-3
TRAIN_SIZE = 0.75
SEED = 0


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    X, y = common.digits()
    return train_test_split(X, y, train_size=TRAIN_SIZE, random_state=SEED)


def order(epoch: int, n: int) -> np.ndarray:
    """The shuffle of epoch ``epoch``: the same for every engine."""
    return np.random.default_rng(SEED + 1 + epoch).permutation(n)


def tracegrad_engine(weights: list, X: np.ndarray, y: np.ndarray) -> tuple[Callable, Callable]:
    import tracegrad as tg

    layers: list[Any] = []
    for w, _ in weights:
        layers += [tg.nn.Linear(w.shape[1], w.shape[0]), tg.nn.ReLU()]
    model = tg.nn.Sequential(*layers[:-1])
    state = {}
    for i, (w, b) in enumerate(weights):
        state[f"{2 * i}.weight"], state[f"{2 * i}.bias"] = tg.tensor(w), tg.tensor(b)
    model.load_state_dict(state)
    opt = tg.optim.Adam(model.parameters(), lr=LR)
    cross_entropy = tg.nn.functional.cross_entropy

    def epoch(k: int) -> float:
        perm = order(k, len(X))
        total = 0.0
        for i in range(0, len(X), BATCH):
            idx = perm[i:i + BATCH]
            xb, yb = tg.from_numpy(X[idx]), tg.from_numpy(y[idx])
            loss = cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        return total / len(X)

    def accuracy(Xt: np.ndarray, yt: np.ndarray) -> float:
        with tg.no_grad():
            return float((model(tg.from_numpy(Xt)).numpy().argmax(1) == yt).mean())

    return epoch, accuracy


def torch_engine(weights: list, X: np.ndarray, y: np.ndarray) -> tuple[Callable, Callable]:
    import torch

    torch.set_num_threads(1)
    layers: list[Any] = []
    for w, _ in weights:
        layers += [torch.nn.Linear(w.shape[1], w.shape[0]), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    with torch.no_grad():
        for i, (w, b) in enumerate(weights):
            model[2 * i].weight.copy_(torch.from_numpy(w))
            model[2 * i].bias.copy_(torch.from_numpy(b))
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    cross_entropy = torch.nn.functional.cross_entropy

    def epoch(k: int) -> float:
        perm = order(k, len(X))
        total = 0.0
        for i in range(0, len(X), BATCH):
            idx = perm[i:i + BATCH]
            xb, yb = torch.from_numpy(X[idx]), torch.from_numpy(y[idx])
            loss = cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        return total / len(X)

    def accuracy(Xt: np.ndarray, yt: np.ndarray) -> float:
        with torch.no_grad():
            return float((model(torch.from_numpy(Xt)).numpy().argmax(1) == yt).mean())

    return epoch, accuracy


def run(quick: bool = False) -> dict[str, Any]:
    """Time epochs of both engines, interleaved epoch by epoch.

    ``quick``: 1 warm-up and 2 timed epochs (for the smoke test).
    """
    warmup, repeats = (1, 2) if quick else (2, 21)
    names, missing, rows, notes, extra = ["tracegrad"], {}, [], [], []
    details: dict[str, Any] = {"warmup": warmup, "repeats": repeats}
    result = {"name": "train", "title": "training: one epoch of the digits MLP (Adam)",
              "engines": names, "missing": missing, "rows": rows, "notes": notes,
              "extra": extra, "targets": [], "details": details}
    if common.import_peer("torch") is None:
        missing["torch"] = common.missing_note("torch")
    else:
        names.append("torch")
    if common.import_peer("sklearn.model_selection") is None:
        notes.append("skipped: scikit-learn " + common.missing_note("scikit-learn"))
        return result

    X, Xt, y, yt = data()
    weights = common.mlp_weights(SIZES, seed=SEED)
    makers = {"tracegrad": tracegrad_engine, "torch": torch_engine}
    engines = {name: makers[name](weights, X, y) for name in names}
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
                   losses_agree=losses_agree(losses))
    return result


LOSS_RTOL = 1e-3  # float32 Adam, a dozen epochs apart from the same start


def losses_agree(losses: dict[str, list[float]]) -> bool:
    ours = losses["tracegrad"]
    return all(math.isclose(a, b, rel_tol=LOSS_RTOL)
               for n, theirs in losses.items() if n != "tracegrad"
               for a, b in zip(ours, theirs, strict=True))


def loss_table(losses: dict[str, list[float]], warmup: int) -> str:
    names = list(losses)
    headers = ["epoch"] + [f"{n} mean loss" for n in names] + [
        f"|{p} - tracegrad|" for p in names[1:]]
    lines = []
    n = len(losses["tracegrad"])
    for k in range(n) if n <= 8 else [0, 1, 2, 3, n - 2, n - 1]:
        ours = losses["tracegrad"][k]
        line = [f"{k}{' (warm-up)' if k < warmup else ''}"]
        line += [f"{losses[n][k]:.6f}" for n in names]
        line += [f"{abs(losses[p][k] - ours):.1e}" for p in names[1:]]
        lines.append(line)
    if len(names) > 1:
        lines.append(["all epochs", *([""] * len(names))] + [
            f"{max(abs(a - b) for a, b in zip(losses[p], losses['tracegrad'])):.1e}"
            for p in names[1:]])
    table = common.format_table(headers, lines, set(range(1, len(headers))))
    if len(names) == 1:
        return "training loss per epoch:\n" + table
    verdict = "agree" if losses_agree(losses) else "DISAGREE"
    return f"training loss per epoch ({verdict}, rel. tolerance {LOSS_RTOL:g}):\n" + table
