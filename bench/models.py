"""Models: one training step of the digits CNN, tracegrad eager and compiled vs PyTorch eager.

The model of ``examples/digits_cnn.py``: 1x8x8 digits, ``Conv2d(1, 32, 3, padding=1) - ReLU -
MaxPool2d(2) - Conv2d(32, 64, 3, padding=1) - ReLU - MaxPool2d(2) - Flatten - Linear(256, 10)``,
cross-entropy with label smoothing 0.1, AdamW (lr 3e-3, weight decay 1e-2), batches of 128.
One step is what a user writes: zero_grad, forward, loss, backward, step, ``loss.item()``.
All engines start from the same weights and see the same batches, so their losses must agree
step by step (printed). Issue 18's targets: eager <= 1.5x PyTorch eager, compiled <= 1.0x.

    OPENBLAS_NUM_THREADS=1 python -m bench --only models
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from bench import common, workloads

BATCH = workloads.BATCH
LR, WEIGHT_DECAY, SMOOTHING = 3e-3, 1e-2, 0.1
CHANNELS = (32, 64)
EAGER, COMPILED, TORCH = "tracegrad", "tg compiled", "torch"
LOSS_RTOL = 1e-3


def cnn(lib: Any, state: dict[str, np.ndarray] | None = None, channels: tuple = CHANNELS
        ) -> Any:
    """The digits CNN in ``lib`` (``tracegrad`` or ``torch``), loaded with ``state``."""
    nn = lib.nn
    c1, c2 = channels
    model = nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c2 * 2 * 2, 10))
    if state is not None:
        model.load_state_dict({k: lib.tensor(v) for k, v in state.items()})
    return model


def cnn_state(channels: tuple = CHANNELS, seed: int = 0) -> dict[str, np.ndarray]:
    """Initial weights (tracegrad's PyTorch-style init after ``tg.manual_seed(seed)``)."""
    import tracegrad as tg

    tg.manual_seed(seed)
    return {k: v.numpy().copy() for k, v in cnn(tg, channels=channels).state_dict().items()}


def cnn_step(lib: Any, state: dict, data: list, compiled: bool = False,
             channels: tuple = CHANNELS) -> Callable[[int], float]:
    """``step(k)``: one AdamW step of the CNN on batch ``k`` (cyclically); returns the loss."""
    if lib.__name__ == "torch":
        lib.set_num_threads(1)
    model = cnn(lib, state, channels)
    opt = lib.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    cross_entropy = lib.nn.functional.cross_entropy

    def train_step(x: Any, y: Any) -> Any:
        opt.zero_grad()
        loss = cross_entropy(model(x), y, label_smoothing=SMOOTHING)
        loss.backward()
        opt.step()
        return loss

    fn = lib.compile(train_step) if compiled else train_step
    tensors = [(lib.from_numpy(x.reshape(-1, 1, 8, 8)), lib.from_numpy(y)) for x, y in data]

    def step(k: int) -> float:
        return fn(*tensors[k % len(tensors)]).item()

    return step


def run(quick: bool = False) -> dict[str, Any]:
    """Time the three engines step by step, interleaved in blocks of 5 steps.

    ``quick``: a smaller CNN (4 and 8 channels), 2 warm-up and 4 timed steps.
    """
    warmup, repeats, block = (2, 4, 2) if quick else (10, 100, 5)
    channels = (4, 8) if quick else CHANNELS
    names, missing, rows, notes, extra, targets = [EAGER, COMPILED], {}, [], [], [], []
    details: dict[str, Any] = {"warmup": warmup, "repeats": repeats, "channels": channels}
    result = common.result("models", "models: one training step of the digits CNN (AdamW)",
                           names, missing, rows, notes, extra, targets, details)
    torch = common.import_peer("torch")
    if torch is None:
        missing["torch"] = common.missing_note("torch")
    else:
        names.append(TORCH)
    if common.import_peer("sklearn.datasets") is None:
        notes.append("skipped: scikit-learn " + common.missing_note("scikit-learn"))
        return result

    import tracegrad as tg

    state = cnn_state(channels)
    data = workloads.batches(8, seed=3)
    libs = {EAGER: tg, COMPILED: tg, TORCH: torch}
    steps = {n: cnn_step(libs[n], state, data, n == COMPILED, channels) for n in names}
    timings = common.interleaved(steps, warmup, repeats, block=block)
    losses = {n: t.pop("outputs") for n, t in timings.items()}
    med = {n: common.median(t["seconds"]) for n, t in timings.items()}
    cpu = {n: common.median(t["cpu_seconds"]) for n, t in timings.items()}
    c1, c2 = channels
    rows.append(common.row(f"digits CNN ({c1}, {c2} channels): one step, batch {BATCH}", "s",
                           med))
    rows.append(common.row("digits CNN: one step, CPU time", "s", cpu))
    if TORCH in med:
        targets.append(common.target("eager / PyTorch eager", med[EAGER] / med[TORCH], 1.5,
                                     higher_is_better=False, unit="x"))
        targets.append(common.target("compiled / PyTorch eager", med[COMPILED] / med[TORCH],
                                     1.0, higher_is_better=False, unit="x"))
    notes.append(
        f"step: median [min .. max] of {repeats}: "
        + "; ".join(f"{n} {common.spread(t['seconds'], 1e3, ' ms')}"
                    for n, t in timings.items()))
    notes.append(
        "float32, one BLAS thread, torch.set_num_threads(1); engines interleaved in blocks of "
        f"{block} steps in one process, a full gc.collect() after each block (not timed); "
        "the compiled step's first call (the trace) is a warm-up step")
    agree = common.losses_agree(losses, LOSS_RTOL)
    extra.append(f"training loss per step ({'agree' if agree else 'DISAGREE'}, rel. tolerance "
                 f"{LOSS_RTOL:g}):\n"
                 + common.loss_table(losses, warmup, decimals=6,
                                     shown=range(min(6, warmup + repeats)), total="all steps"))
    details.update(timings=timings, losses=losses, losses_agree=agree)
    return result
