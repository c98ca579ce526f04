"""Demo section ``moons``: micrograd's moons demo (Values, SVM loss, SGD), eager and compiled."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..nn.scalar import MLP
from ..scalar import Value
from .tour import Demo, _need


@dataclass
class MoonsRun:
    """The result of `train_moons`: the model, its data and the history of training."""

    model: MLP
    X: list[list[float]]  # 2-d points
    y: list[int]  # labels, -1 or +1
    losses: list[float]  # loss at each step, before that step's update
    accuracies: list[float]  # training accuracy at each step, likewise
    final_loss: float  # after the last update
    final_accuracy: float
    seconds: list[float] = field(default_factory=list)  # each step's time
    compile_seconds: float = 0.0  # with backend=: the time the one compile took

    def __repr__(self) -> str:
        return (
            f"MoonsRun(steps={len(self.losses)}, final_loss={self.final_loss:.4f}, "
            f"final_accuracy={self.final_accuracy:.0%})"
        )


def moons_loss(model: MLP, X: list[list[float]], y: list[int]) -> tuple[Value, Any]:
    """micrograd's loss: mean SVM max-margin loss + 1e-4 L2; and the accuracy.

    >>> loss, accuracy = moons_loss(MLP(2, [16, 16, 1]), [[0.5, 1.0]], [1])
    """
    inputs = [[Value(x) for x in row] for row in X]
    scores = [model(row) for row in inputs]
    losses = [(1 + -yi * score).relu() for yi, score in zip(y, scores, strict=True)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = 1e-4 * sum(p * p for p in model.parameters())
    accuracy = sum((yi > 0) == (s.data > 0) for yi, s in zip(y, scores, strict=True)) / len(y)
    return data_loss + reg_loss, accuracy


def moons_step(model: MLP, X: list[list[float]], y: list[int]) -> Callable[[float], tuple]:
    """One SGD step of micrograd's demo, as a function of the learning rate: what
    ``tg.compile`` compiles (the learning rate, a float argument, is an input of the
    program: its decay does not recompile).

    >>> step = moons_step(MLP(2, [16, 16, 1]), [[0.5, 1.0]], [1])
    >>> loss, accuracy = step(1.0)
    """

    def step(learning_rate: float) -> tuple:
        loss, accuracy = moons_loss(model, X, y)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        return loss.data, accuracy

    return step


def train_moons(
    steps: int = 100, *, seed: int = 1337, n_samples: int = 100, progress: bool = False,
    backend: str | None = None,
) -> MoonsRun:
    """micrograd's demo: an MLP(2, [16, 16, 1]) learns ``make_moons``, by SGD.

    Same data, same initial weights (drawn from Python's ``random`` after
    ``random.seed(seed)``), same loss and learning-rate schedule as micrograd's notebook,
    so 100 steps reach its numbers: loss 0.0110, 100% training accuracy. ``progress``
    shows a tqdm bar with the loss and the accuracy. With ``backend`` ("numpy", "c" or
    "auto"), the step runs through ``tg.compile(..., backend=backend)``: the same numbers.

    >>> run = train_moons(100)  # doctest: +SKIP
    >>> run.final_accuracy  # doctest: +SKIP
    1.0
    """
    make_moons = _need("sklearn.datasets").make_moons
    # random_state=seed draws the same points as micrograd's np.random.seed(1337), without
    # touching NumPy's global generator.
    X, y = make_moons(n_samples=n_samples, noise=0.1, random_state=seed)
    # Plain Python numbers: the scalar engine is a good deal faster on them than on np.float64.
    X, y = X.tolist(), (y * 2 - 1).tolist()
    random.seed(seed)
    model = MLP(2, [16, 16, 1])
    step = moons_step(model, X, y)
    if backend is not None:
        from ..compiler import compile as tg_compile

        step = tg_compile(step, backend=backend)

    bar = None
    if progress:
        bar = _need("tqdm").tqdm(total=steps, desc="  training", unit="step", leave=True)
    losses, accuracies, seconds = [], [], []
    for k in range(steps):
        start = time.perf_counter()
        loss, accuracy = step(1.0 - 0.9 * k / steps)
        seconds.append(time.perf_counter() - start)
        losses.append(loss)
        accuracies.append(accuracy)
        if bar is not None:
            bar.set_postfix({"loss": f"{loss:.4f}", "acc": f"{accuracy:.0%}"}, refresh=False)
            bar.update()
    if bar is not None:
        bar.close()
    final_loss, final_accuracy = moons_loss(model, X, y)
    compile_seconds = 0.0
    if backend is not None and steps > 1:
        compile_seconds = step._scalar.last.compile_seconds
    return MoonsRun(model, X, y, losses, accuracies, final_loss.data, final_accuracy,
                    seconds, compile_seconds)


def micrograd_step_seconds(X: list[list[float]], y: list[int], steps: int = 2) -> float | None:
    """The median time of a moons step on micrograd's own engine, when it is installed."""
    try:
        from micrograd.engine import Value as MValue
        from micrograd.nn import MLP as MMLP
    except ImportError:
        return None
    random.seed(1337)
    model = MMLP(2, [16, 16, 1])
    times = []
    for k in range(steps):
        start = time.perf_counter()
        inputs = [[MValue(x) for x in row] for row in X]
        scores = [model(row) for row in inputs]
        losses = [(1 + -yi * s).relu() for yi, s in zip(y, scores)]
        loss = sum(losses) * (1.0 / len(losses)) + 1e-4 * sum(p * p for p in model.parameters())
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= (1.0 - 0.9 * k / 100) * p.grad
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def plot_loss(run: MoonsRun, path: str | Path) -> Path:
    """Save the loss curve (log scale) and the accuracy, step by step, as a PNG."""
    figure = _need("matplotlib.figure").Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = figure.add_subplot()
    steps = range(len(run.losses))
    ax.plot(steps, run.losses, color="tab:blue", label="loss")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (log scale)", color="tab:blue")
    ax.grid(True, which="both", alpha=0.3)
    acc = ax.twinx()
    acc.plot(steps, [100 * a for a in run.accuracies], color="tab:orange", alpha=0.8)
    acc.set_ylabel("training accuracy (%)", color="tab:orange")
    acc.set_ylim(0, 105)
    ax.set_title(
        f"moons, MLP(2, [16, 16, 1]): final loss {run.final_loss:.4f}, "
        f"accuracy {run.final_accuracy:.0%}"
    )
    path = Path(path)
    figure.savefig(path, dpi=120)
    return path


def plot_boundary(run: MoonsRun, path: str | Path, *, step: float = 0.1) -> Path:
    """Save the model's score over the plane, its zero line and the data, as a PNG.

    The score is computed by the scalar engine at every point of a grid ``step`` apart
    (a graph of about 600 Values per point; 0.1 means ~2,000 points, under a second).
    """
    figure = _need("matplotlib.figure").Figure(figsize=(7.2, 4.8), layout="constrained")
    X, y = np.array(run.X), np.array(run.y)
    x_min, x_max = X[:, 0].min() - 1, X[:, 0].max() + 1
    y_min, y_max = X[:, 1].min() - 1, X[:, 1].max() + 1
    xx, yy = np.meshgrid(np.arange(x_min, x_max, step), np.arange(y_min, y_max, step))
    points = np.c_[xx.ravel(), yy.ravel()].tolist()
    scores = np.array([run.model([Value(a), Value(b)]).data for a, b in points])
    # Beyond +-2 the colour says nothing more (the margin is 1); clipping keeps 0 central.
    Z = np.clip(scores, -2, 2).reshape(xx.shape)

    ax = figure.add_subplot()
    filled = ax.contourf(xx, yy, Z, levels=np.linspace(-2, 2, 17), cmap="Spectral", alpha=0.8)
    if Z.min() < 0 < Z.max():
        ax.contour(xx, yy, Z, levels=[0], colors="black", linewidths=1.5)
    ax.scatter(
        X[:, 0],
        X[:, 1],
        c=y,
        s=40,
        cmap="Spectral",
        vmin=-1.5,
        vmax=1.5,
        edgecolors="black",
        linewidths=0.6,
    )
    figure.colorbar(filled, ax=ax, shrink=0.8, label="score (clipped to ±2); black line: 0")
    ax.set_xlim(xx.min(), xx.max())
    ax.set_ylim(yy.min(), yy.max())
    ax.set_aspect("equal")
    ax.set_title(f"decision boundary: training accuracy {run.final_accuracy:.0%}")
    path = Path(path)
    figure.savefig(path, dpi=120)
    return path


def section(demo: Demo) -> None:
    steps = 10 if demo.quick else 100
    demo.say(
        "micrograd's moons demo: an MLP(2, [16, 16, 1]) of tracegrad.Values learns to\n"
        "separate 100 points of sklearn's make_moons (max-margin loss, plain SGD)."
    )
    demo.say()
    run = train_moons(steps, progress=True)
    n_params = len(run.model.parameters())
    correct = round(run.final_accuracy * len(run.y))
    demo.say(
        f"  {n_params} parameters, {steps} steps: final loss {run.final_loss:.4f}, "
        f"training accuracy {run.final_accuracy:.0%} ({correct}/{len(run.y)} points)"
    )
    demo.say()
    demo.wrote(plot_loss(run, demo.out / "moons_loss.png"), "the loss curve")
    boundary = plot_boundary(run, demo.out / "moons_boundary.png", step=0.25 if demo.quick else 0.1)
    demo.wrote(boundary, "the decision boundary")
    demo.say()
    demo.say(
        "The same step, compiled: tg.compile(step) traces it once into a static graph of\n"
        "scalar ops (forward, backward and update) and runs that from then on."
    )
    compiled = train_moons(steps, backend="auto")
    same = all(abs(a - b) <= 1e-12 for a, b in zip(run.losses, compiled.losses))
    eager_step = sorted(run.seconds)[len(run.seconds) // 2]
    fast_step = sorted(compiled.seconds[2:])[len(compiled.seconds[2:]) // 2] \
        if steps > 2 else compiled.seconds[-1]
    demo.say(f"  same losses at every step as eager: {same}; compiled once, in "
             f"{compiled.compile_seconds:.1f} s")
    micrograd = micrograd_step_seconds(run.X, run.y, 1 if demo.quick else 3)
    if micrograd is not None:
        demo.say(f"  micrograd:         {micrograd * 1e3:9.2f} ms per step")
    demo.say(f"  tracegrad eager:   {eager_step * 1e3:9.2f} ms per step")
    demo.say(f"  tracegrad compiled:{fast_step * 1e3:9.2f} ms per step "
             f"({eager_step / fast_step:,.0f}x faster than eager)")
