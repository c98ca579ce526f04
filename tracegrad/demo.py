"""``tracegrad demo``: a guided tour, one section per part of the library.

A section is a function that takes the `Demo` context, prints what it shows under its own
header and records the files it writes. `SECTIONS` lists them in order; adding a tour of a
new feature means writing one function and appending one `Section`, nothing else. The
command line (`tracegrad.cli`) only parses arguments and calls `run`.

The moons training (`train_moons`) and its plots live here rather than in ``examples/``
because the demo needs them and the installed package cannot import ``examples/``;
``examples/moons_scalar.py`` imports them from here.

>>> from tracegrad.demo import run
>>> run(out="tracegrad-demo", sections=["scalar"])  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Sequence, TextIO

import numpy as np

from . import viz
from .autograd import all_nodes
from .nn.scalar import MLP
from .scalar import Value

DEFAULT_OUT = Path("tracegrad-demo")

_INSTALL_HINT = 'pip install "tracegrad[demo]"'
# Import name -> the name pip knows it by, for the message when it is missing.
_PIP_NAMES = {"sklearn": "scikit-learn", "matplotlib": "matplotlib", "tqdm": "tqdm"}


class MissingExtraError(ImportError):
    """An optional package the demo (or an example) needs is not installed."""


def _need(module: str) -> ModuleType:
    """Import an optional dependency, or say in one line how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.partition(".")[0]
        raise MissingExtraError(
            f"this needs {_PIP_NAMES.get(top, top)}, which is not installed; "
            f"install the demo extras with: {_INSTALL_HINT}"
        ) from e


# --------------------------------------------------------------------------------------
# The framework: a context, a section, the list of sections, and `run`


@dataclass
class Demo:
    """What every section gets: where to write, how thorough to be, where to print."""

    out: Path
    quick: bool = False
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    written: list[Path] = field(default_factory=list)

    def say(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    def header(self, text: str) -> None:
        self.say()
        self.say(text)
        self.say("-" * len(text))

    def wrote(self, path: Path, what: str) -> None:
        self.written.append(path)
        self.say(f"  wrote {path.name}: {what}")


@dataclass(frozen=True)
class Section:
    name: str  # what --section takes
    title: str  # the header printed above it
    run: Callable[[Demo], None]
    needs: tuple[str, ...] = ()  # optional modules, checked before any section starts


def run(
    out: str | Path = DEFAULT_OUT,
    sections: Sequence[str] | None = None,
    *,
    quick: bool = False,
    stream: TextIO | None = None,
) -> list[Path]:
    """Run the demo's sections (all, or those named) and return the files written.

    ``quick`` trains for fewer steps and draws coarser plots, for tests; every section
    still runs all of its parts.
    """
    chosen = _choose(sections)
    for section in chosen:  # fail before the first section, not halfway through
        for module in section.needs:
            _need(module)
    demo = Demo(out=Path(out), quick=quick, stream=stream or sys.stdout)
    demo.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    title = "tracegrad demo" + (" (quick)" if quick else "")
    demo.say(title)
    demo.say("=" * len(title))
    for number, section in enumerate(chosen, 1):
        demo.header(f"{number}/{len(chosen)}  {section.title}")
        section.run(demo)

    demo.header("Files")
    for path in demo.written:
        demo.say(f"  {path}")
    demo.say()
    demo.say(
        f"Done in {time.perf_counter() - start:.1f} s. "
        f"The engine behind all of this is tracegrad/scalar.py: one screen of code."
    )
    return demo.written


def _choose(names: Sequence[str] | None) -> list[Section]:
    if not names:
        return list(SECTIONS)
    by_name = {s.name: s for s in SECTIONS}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(
            f"unknown demo section {', '.join(map(repr, unknown))}; "
            f"the sections are {', '.join(by_name)}"
        )
    # The tour's order, whatever order they were asked for in.
    return [s for s in SECTIONS if s.name in names]


# --------------------------------------------------------------------------------------
# Section: micrograd's reference example

# micrograd's README example, verbatim. It is printed and then executed from this one
# string, so what the reader sees is exactly what ran.
REFERENCE_EXAMPLE = """\
a = Value(-4.0)
b = Value(2.0)
c = a + b
d = a * b + b**3
c += c + 1
c += 1 + c + (-a)
d += d * 2 + (b + a).relu()
d += 3 * d + (b - a).relu()
e = c - d
f = e**2
g = f / 2.0
g += 10.0 / f
g.backward()
"""


def reference_example() -> dict[str, Value]:
    """Run `REFERENCE_EXAMPLE`; return its named Values, each labelled with its name.

    >>> v = reference_example()
    >>> round(v["g"].data, 4), round(v["a"].grad, 4), round(v["b"].grad, 4)
    (24.7041, 138.8338, 645.5773)
    """
    names: dict[str, Any] = {"Value": Value}
    exec(REFERENCE_EXAMPLE, names)  # a constant of this module, never user input
    values = {k: v for k, v in names.items() if isinstance(v, Value)}
    for name, value in values.items():
        value.label = name  # so the drawing says which box is which
    return values


def _section_scalar(demo: Demo) -> None:
    demo.say("micrograd's README example, run on tracegrad.Value:")
    demo.say()
    for line in REFERENCE_EXAMPLE.splitlines():
        demo.say(f"    {line}")
    v = reference_example()
    demo.say()
    demo.say(f"  g     = {v['g'].data:8.4f}   g.data, the forward pass")
    demo.say(f"  dg/da = {v['a'].grad:8.4f}   a.grad, from g.backward()")
    demo.say(f"  dg/db = {v['b'].grad:8.4f}   b.grad")
    demo.say("  The same three numbers as micrograd's README.")
    demo.say()

    nodes = len(all_nodes(v["g"]))
    svg = demo.out / "graph.svg"
    try:
        viz.draw(v["g"], svg)
    except (ImportError, RuntimeError) as e:  # the graphviz package, or its `dot` program
        dot = viz.draw(v["g"], demo.out / "graph.dot")
        demo.wrote(dot, f"the graph of g ({nodes} values), as Graphviz source")
        fix = (
            'pip install "tracegrad[viz]"'
            if isinstance(e, ImportError)
            else "install Graphviz (https://graphviz.org/download/)"
        )
        demo.say(f"  note: no graph.svg without Graphviz; {fix}, then run again for the SVG")
    else:
        demo.wrote(svg, f"the graph of g ({nodes} values)")


# --------------------------------------------------------------------------------------
# Section: micrograd's moons demo


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

    def __repr__(self) -> str:
        return (
            f"MoonsRun(steps={len(self.losses)}, final_loss={self.final_loss:.4f}, "
            f"final_accuracy={self.final_accuracy:.0%})"
        )


def moons_loss(model: MLP, X: list[list[float]], y: list[int]) -> tuple[Value, float]:
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


def train_moons(
    steps: int = 100, *, seed: int = 1337, n_samples: int = 100, progress: bool = False
) -> MoonsRun:
    """micrograd's demo: an MLP(2, [16, 16, 1]) learns ``make_moons``, by SGD.

    Same data, same initial weights (drawn from Python's ``random`` after
    ``random.seed(seed)``), same loss and learning-rate schedule as micrograd's notebook,
    so 100 steps reach its numbers: loss 0.0110, 100% training accuracy. ``progress``
    shows a tqdm bar with the loss and the accuracy.

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

    bar = None
    if progress:
        bar = _need("tqdm").tqdm(total=steps, desc="  training", unit="step", leave=True)
    losses, accuracies = [], []
    for k in range(steps):
        loss, accuracy = moons_loss(model, X, y)
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
    final_loss, final_accuracy = moons_loss(model, X, y)
    return MoonsRun(model, X, y, losses, accuracies, final_loss.data, final_accuracy)


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


def _section_moons(demo: Demo) -> None:
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


SECTIONS: list[Section] = [
    Section("scalar", "micrograd's reference example, and its graph", _section_scalar),
    Section(
        "moons",
        "Training a tiny neural net: micrograd's moons demo",
        _section_moons,
        needs=("sklearn", "matplotlib", "tqdm"),
    ),
]
