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

import contextlib
import gc
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
        f"Read how it works: docs/scalar.md, docs/tensors.md, docs/nn.md, docs/compiler.md."
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
"""
REFERENCE_BACKWARD = "g.backward()\n"


def reference_example(value_class: Any = Value, backward: bool = True) -> dict[str, Any]:
    """Run `REFERENCE_EXAMPLE` with ``value_class`` as ``Value`` (tracegrad's, or micrograd's
    for a comparison), then `REFERENCE_BACKWARD` if ``backward``; return its named Values,
    each labelled with its name.

    >>> v = reference_example()
    >>> round(v["g"].data, 4), round(v["a"].grad, 4), round(v["b"].grad, 4)
    (24.7041, 138.8338, 645.5773)
    """
    names: dict[str, Any] = {"Value": value_class}
    # constants of this module, never user input
    exec(REFERENCE_EXAMPLE + (REFERENCE_BACKWARD if backward else ""), names)
    values = {k: v for k, v in names.items() if isinstance(v, value_class)}
    for name, value in values.items():
        value.label = name  # so the drawing says which box is which
    return values


def _section_scalar(demo: Demo) -> None:
    demo.say("micrograd's README example, run on tracegrad.Value:")
    demo.say()
    for line in (REFERENCE_EXAMPLE + REFERENCE_BACKWARD).splitlines():
        demo.say(f"    {line}")
    v = reference_example()
    demo.say()
    demo.say(f"  g     = {v['g'].data:8.4f}   g.data, the forward pass")
    demo.say(f"  dg/da = {v['a'].grad:8.4f}   a.grad, from g.backward()")
    demo.say(f"  dg/db = {v['b'].grad:8.4f}   b.grad")
    demo.say("  The same three numbers as micrograd's README.")
    demo.say()

    nodes = len(all_nodes(v["g"]))
    _draw_svg_or_dot(demo, v["g"], "graph", f"the graph of g ({nodes} values)")


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
        from .compiler import compile as tg_compile

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


# --------------------------------------------------------------------------------------
# Section: the compiler on a real training step

DIGITS_SIZES = (64, 256, 256, 10)
DIGITS_BATCH = 128


def digits_data() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits: images float32 (1797, 64) scaled to [0, 1], labels int64."""
    digits = _need("sklearn.datasets").load_digits()
    return (digits.data / 16.0).astype(np.float32), digits.target.astype(np.int64)


def digits_step(sizes: Sequence[int] = DIGITS_SIZES, *, adam: bool = True,
                seed: int = 0) -> Callable[[Any, Any], Any]:
    """A fresh `digits_mlp` and its training step ``step(x, y)``:
    cross-entropy, backward, one Adam (or SGD) update; returns the loss. The same ``seed``
    gives the same initial weights, so two steps can be compared update by update.

    >>> step = digits_step((64, 32, 10), adam=False)
    >>> fast = tg.compile(digits_step((64, 32, 10), adam=False))  # doctest: +SKIP
    """
    import tracegrad as tg

    tg.manual_seed(seed)
    model = digits_mlp(sizes)
    if adam:
        opt = tg.optim.Adam(model.parameters(), lr=1e-3)
    else:
        opt = tg.optim.SGD(model.parameters(), lr=0.1)

    def step(x: Any, y: Any) -> Any:
        opt.zero_grad()
        loss = tg.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def _one_blas_thread() -> Any:
    # Small matmuls on a multithreaded BLAS time mostly the threads' handshakes (on a busy
    # machine 50x slower than one thread), which would drown what the compiler changes.
    # threadpoolctl comes with scikit-learn; without it, time as things are.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _draw_svg_or_dot(demo: Demo, root: Any, stem: str, what: str, **options: Any) -> Path:
    """Draw ``root`` to ``stem.svg``; without Graphviz write ``stem.dot`` and say why."""
    svg = demo.out / f"{stem}.svg"
    try:
        path = viz.draw(root, svg, **options)
    except (ImportError, RuntimeError) as e:  # the graphviz package, or its `dot` program
        path = viz.draw(root, demo.out / f"{stem}.dot", **options)
        demo.wrote(path, f"{what}, as Graphviz source")
        fix = (
            'pip install "tracegrad[viz]"'
            if isinstance(e, ImportError)
            else "install Graphviz (https://graphviz.org/download/)"
        )
        demo.say(f"  note: no {svg.name} without Graphviz; {fix}, then run again for the SVG")
    else:
        demo.wrote(path, what)
    return path


def _section_compiler(demo: Demo) -> None:
    import tracegrad as tg

    X, y = digits_data()
    sizes = "-".join(map(str, DIGITS_SIZES))
    demo.say(
        f"The digits MLP ({sizes}, ReLU) on sklearn's 8x8 digits: one training step on a\n"
        f"batch of {DIGITS_BATCH} is forward, cross-entropy, backward and an Adam update. "
        "tg.compile traces\nall of it into one static graph, optimizes it and runs "
        "generated code from then on: NumPy calls\n(backend='numpy'), or with fused kernels "
        "and row programs in C (backend='c', when a C\ncompiler works; 'auto' picks it)."
    )
    demo.say()
    repeats = 20 if demo.quick else 100
    batches = [
        (tg.from_numpy(X[i : i + DIGITS_BATCH]), tg.from_numpy(y[i : i + DIGITS_BATCH]))
        for i in range(0, len(X) - DIGITS_BATCH + 1, DIGITS_BATCH)
    ]  # full batches only: one shape, so the compiled step never retraces
    # the same initial weights in each
    steps = {"eager": digits_step(), "numpy": tg.compile(digits_step(), backend="numpy")}
    from .compiler.backends.c import available as c_problem

    why_no_c = c_problem()
    if why_no_c is None:
        steps["C"] = tg.compile(digits_step(), backend="c")
    times: dict[str, list[float]] = {name: [] for name in steps}
    losses: dict[str, list[float]] = {name: [] for name in steps}
    compile_seconds: dict[str, float] = {}
    with _one_blas_thread():
        for k in range(2 + repeats):  # 2 warm-up steps: the compiled one traces on its 2nd
            xb, yb = batches[k % len(batches)]
            for name, step in steps.items():  # interleaved
                gc.collect()  # not timed: the eager step's garbage is not the next one's cost
                start = time.perf_counter()
                loss = step(xb, yb).item()
                seconds = time.perf_counter() - start
                losses[name].append(loss)
                if k == 1 and name != "eager":
                    compile_seconds[name] = seconds
                if k >= 2:
                    times[name].append(seconds)
    _report_timings(demo, times, losses, compile_seconds)
    if why_no_c is not None:
        demo.say(f"  (no C backend here: {why_no_c.splitlines()[0]})")
        demo.say()

    demo.say("What each compiler pass did to that step (tg.explain):")
    demo.say()
    xb, yb = batches[0]
    with _one_blas_thread():  # the time column too
        table = tg.explain(steps["eager"], xb, yb).table()
    for line in table.splitlines():
        demo.say(f"  {line}")
    demo.say()

    small = digits_step((64, 32, 10), adam=False)
    graph = tg.explain(small, xb, yb).graph
    kernels = sum(1 for n in graph.nodes if n.op == "kernel")
    _draw_svg_or_dot(
        demo, graph, "compiled_graph",
        f"the optimized graph of a smaller step (64-32-10, SGD): "
        f"{len(graph.inputs) + len(graph.nodes)} IR nodes, {kernels} fused kernels (boxed)",
        rankdir="TB",
    )


def _report_timings(demo: Demo, times: dict[str, list[float]], losses: dict[str, list[float]],
                    compile_seconds: dict[str, float]) -> None:
    # The median is the typical step; the fastest is the step nothing else interrupted (on
    # a busy machine the median can be mostly other programs' time slices).
    median = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
    fastest = {k: 1e3 * min(v) for k, v in times.items()}
    demo.say("                 median   fastest")
    for name in times:
        line = f"  {name:<13}{median[name]:6.2f}    {fastest[name]:6.2f}  ms/step"
        if name in compile_seconds:
            line += f"   (tracing and compiling took {1e3 * compile_seconds[name]:.0f} ms, once)"
        demo.say(line)
    for name in times:
        if name != "eager":
            demo.say(f"  speed-up {name:<4}{median['eager'] / median[name]:6.2f}x   "
                     f"{fastest['eager'] / fastest[name]:6.2f}x")
    demo.say(f"  ({len(times['eager'])} steps each, interleaved, one BLAS thread)")
    for name in times:
        if name == "eager":
            continue
        # Each compiled step computes what eager does to float32 rounding; over a hundred
        # steps of training, rounding differences grow (the C backend sums in double, so its
        # sums round differently from NumPy's), so the curves agree to about 1e-4, not 1e-7.
        eager, other = np.asarray(losses["eager"]), np.asarray(losses[name])
        apart = float(np.max(np.abs(other - eager) / np.maximum(np.abs(eager), 1e-6)))
        same = "the same numbers, step by step" if apart == 0 else \
            f"the same to float32 rounding: at most {apart:.0e} apart" if apart <= 1e-3 else \
            f"they DIFFER, by up to {apart:.0e}"
        demo.say(
            f"  loss after {len(losses['eager'])} steps: eager {losses['eager'][-1]:.4f}, "
            f"{name} {losses[name][-1]:.4f} ({same})"
        )
    demo.say()


# --------------------------------------------------------------------------------------
# Section: training a real model on tensors (also used by examples/digits_*.py)

DIGITS_TEST_SIZE = 0.25  # a fixed split: train_test_split(test_size=0.25, random_state=0)
DIGITS_MLP_EPOCHS = 30  # the full setting: >= 97% test accuracy
DIGITS_MLP_QUICK_EPOCHS = 8  # `tracegrad demo --quick`


@dataclass
class DigitsSplit:
    """The digits, split once and for all: 1347 training and 450 test samples."""

    X_train: np.ndarray  # float32 in [0, 1]: (N, 64), or (N, 1, 8, 8) as images
    y_train: np.ndarray  # int64 labels 0..9
    X_test: np.ndarray
    y_test: np.ndarray


def digits_split(images: bool = False) -> DigitsSplit:
    """`digits_data` split 75/25 with ``train_test_split(..., random_state=0)``; ``images``
    reshapes each sample to one 8x8 channel, (1, 8, 8), for a convolutional net."""
    X, y = digits_data()
    if images:
        X = X.reshape(-1, 1, 8, 8)
    split = _need("sklearn.model_selection").train_test_split
    X_train, X_test, y_train, y_test = split(X, y, test_size=DIGITS_TEST_SIZE, random_state=0)
    return DigitsSplit(X_train, y_train, X_test, y_test)


def digits_mlp(sizes: Sequence[int] = DIGITS_SIZES) -> Any:
    """``Linear - ReLU - ... - Linear`` with the given layer sizes (64-256-256-10)."""
    import tracegrad as tg

    layers: list[Any] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [tg.nn.Linear(n_in, n_out), tg.nn.ReLU()]
    return tg.nn.Sequential(*layers[:-1])


@dataclass
class TrainRun:
    """The result of `train_classifier`: the trained model and the history of training."""

    model: Any  # a tg.nn.Module, in eval mode
    losses: list[float]  # training loss of every batch, in order
    test_accuracies: list[float]  # after each epoch
    train_accuracy: float  # of the final model
    test_accuracy: float
    seconds: float  # the training loop, without data loading and the final evaluation

    @property
    def epochs(self) -> int:
        return len(self.test_accuracies)

    def __repr__(self) -> str:
        return (f"TrainRun(epochs={self.epochs}, train_accuracy={self.train_accuracy:.2%}, "
                f"test_accuracy={self.test_accuracy:.2%}, seconds={self.seconds:.1f})")


def predict(model: Any, X: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The model's class scores for ``X`` (a NumPy array), in eval mode, without a graph."""
    import tracegrad as tg

    model.eval()
    with tg.no_grad():
        parts = [model(tg.from_numpy(X[i : i + batch_size])).numpy()
                 for i in range(0, len(X), batch_size)]
    return np.concatenate(parts)


def accuracy(model: Any, X: np.ndarray, y: np.ndarray) -> float:
    """The fraction of ``X`` whose highest-scoring class is ``y``."""
    return float((predict(model, X).argmax(axis=1) == y).mean())


def train_classifier(model: Any, data: DigitsSplit, epochs: int, *, lr: float = 2e-3,
                     weight_decay: float = 1e-2, label_smoothing: float = 0.1,
                     batch_size: int = 128, seed: int = 0, progress: bool = False,
                     desc: str = "training") -> TrainRun:
    """Train ``model`` on ``data`` by cross-entropy: AdamW, a cosine learning-rate schedule
    over ``epochs``, shuffled batches; ``progress`` shows a tqdm bar with the loss.

    Label smoothing and weight decay keep the small net from growing overconfident on
    1347 images (each is worth about 0.5 % of test accuracy here). ``seed`` fixes the
    batch order; the initial weights are the model's (seed them with `tg.manual_seed`).

    >>> tg.manual_seed(0)
    >>> run = train_classifier(digits_mlp(), digits_split(), epochs=30)  # doctest: +SKIP
    >>> run.test_accuracy  # doctest: +SKIP
    0.9777777777777777
    """
    import tracegrad as tg
    from tracegrad.data import DataLoader, TensorDataset

    F = tg.nn.functional
    loader = DataLoader(TensorDataset(tg.from_numpy(data.X_train), tg.from_numpy(data.y_train)),
                        batch_size=batch_size, shuffle=True, seed=seed)
    opt = tg.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = tg.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    bar = None
    if progress:
        bar = _need("tqdm").tqdm(total=epochs * len(loader), desc=f"  {desc}", unit="batch")
    losses: list[float] = []
    test_accuracies: list[float] = []
    start = time.perf_counter()
    with _one_blas_thread():
        for epoch in range(epochs):
            model.train()
            for xb, yb in loader:
                loss = F.cross_entropy(model(xb), yb, label_smoothing=label_smoothing)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
                if bar is not None:
                    bar.set_postfix({"epoch": epoch + 1, "loss": f"{losses[-1]:.4f}"},
                                    refresh=False)
                    bar.update()
            schedule.step()
            test_accuracies.append(accuracy(model, data.X_test, data.y_test))
        seconds = time.perf_counter() - start
        train_accuracy = accuracy(model, data.X_train, data.y_train)
    if bar is not None:
        bar.close()
    return TrainRun(model, losses, test_accuracies, train_accuracy, test_accuracies[-1], seconds)


def train_digits_mlp(epochs: int = DIGITS_MLP_EPOCHS, *, seed: int = 0,
                     progress: bool = False) -> TrainRun:
    """The 64-256-256-10 ReLU MLP on the digits split; 30 epochs reach >= 97 % test accuracy
    in a few seconds.

    >>> train_digits_mlp(30).test_accuracy >= 0.97  # doctest: +SKIP
    True
    """
    import tracegrad as tg

    data = digits_split()
    tg.manual_seed(seed)
    return train_classifier(digits_mlp(), data, epochs, seed=seed, progress=progress,
                            desc="digits MLP")


def plot_training(run: TrainRun, path: str | Path, title: str) -> Path:
    """Save the training loss of every batch (log scale), its per-epoch mean and the test
    accuracy after each epoch, as a PNG."""
    figure = _need("matplotlib.figure").Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = figure.add_subplot()
    per_epoch = len(run.losses) // run.epochs
    steps = np.arange(1, len(run.losses) + 1)
    ax.plot(steps, run.losses, color="tab:blue", alpha=0.35, linewidth=0.8, label="batch loss")
    means = np.asarray(run.losses[: per_epoch * run.epochs]).reshape(run.epochs, -1).mean(1)
    ends = per_epoch * np.arange(1, run.epochs + 1)
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


def digits_main(argv: Sequence[str] | None, train: Callable[..., TrainRun], *,
                description: str, epochs: int, quick_epochs: int, out: str,
                title: str) -> TrainRun:
    """The command line of ``examples/digits_mlp.py`` and ``examples/digits_cnn.py``:
    ``--quick``, ``--epochs``, ``--seed``, ``--out``; runs ``train(epochs, seed,
    progress=True)``, prints the accuracies and saves `plot_training` titled ``title``."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help=f"{quick_epochs} epochs instead of {epochs}")
    parser.add_argument("--epochs", type=int, help="epochs (overrides --quick)")
    parser.add_argument("--seed", type=int, default=0, help="weights and batches (default: 0)")
    parser.add_argument("--out", default=out, help="the loss-curve PNG (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.epochs is not None:
        epochs = args.epochs
    elif args.quick:
        epochs = quick_epochs
    if epochs < 1:
        parser.error(f"--epochs must be at least 1, got {epochs}")

    run = train(epochs, args.seed, progress=True)
    print(f"after {epochs} epochs ({run.seconds:.1f} s): test accuracy {run.test_accuracy:.2%}, "
          f"training accuracy {run.train_accuracy:.2%}")
    print(f"wrote {plot_training(run, args.out, title)}")
    return run


def _section_tensor(demo: Demo) -> None:
    from tracegrad.io import load, save

    epochs = DIGITS_MLP_QUICK_EPOCHS if demo.quick else DIGITS_MLP_EPOCHS
    sizes = "-".join(map(str, DIGITS_SIZES))
    demo.say(
        f"A {sizes} MLP of tg.Tensors (tg.nn.Linear, ReLU) learns sklearn's 8x8 digits:\n"
        f"1347 training images, 450 held out; AdamW, batches of 128, {epochs} epochs."
    )
    demo.say()
    run = train_digits_mlp(epochs, progress=True)
    n_params = sum(p.numel() for p in run.model.parameters())
    data = digits_split()
    correct = round(run.test_accuracy * len(data.y_test))
    demo.say(
        f"  {n_params:,} parameters, {epochs} epochs in {run.seconds:.1f} s: "
        f"test accuracy {run.test_accuracy:.2%} ({correct}/{len(data.y_test)} images), "
        f"training accuracy {run.train_accuracy:.2%}"
    )
    demo.say()

    path = demo.out / "digits_mlp.safetensors"
    save(run.model.state_dict(), path)
    demo.wrote(path, "the trained weights (tg.save: safetensors, no pickle)")
    fresh = digits_mlp()  # new random weights ...
    fresh.load_state_dict(load(path))  # ... replaced by the saved ones
    before, after = predict(run.model, data.X_test), predict(fresh, data.X_test)
    same = np.array_equal(before, after)
    demo.say(
        f"  reloaded into a fresh model with tg.load: its {len(after)} test predictions "
        + ("match the trained model's exactly" if same else "DIFFER from the trained model's")
    )
    if not same:
        raise RuntimeError("the reloaded model predicts differently from the saved one")
    _onnx_round_trip(demo, run.model, data.X_test, before.argmax(1))
    demo.wrote(plot_training(run, demo.out / "digits_loss.png", f"digits, MLP {sizes}"),
               "the loss curve and the test accuracy per epoch")


def _onnx_round_trip(demo: Demo, model: Any, X: np.ndarray, labels: np.ndarray) -> None:
    """Export the model with tg.onnx.export and predict with ONNX Runtime, if installed."""
    try:
        import onnxruntime
    except ImportError:
        demo.say('  (with pip install "tracegrad[onnx]" it would also export the model to '
                 'ONNX and run it in ONNX Runtime)')
        return
    from . import onnx as tg_onnx
    from .tensor import Tensor

    path = demo.out / "digits_mlp.onnx"
    tg_onnx.export(model, Tensor(X[:2]), path, input_names=["images"],
                   output_names=["scores"], dynamic_axes={"images": {0: "batch"}})
    demo.wrote(path, "the model as ONNX (tg.onnx.export, batch axis dynamic)")
    (scores,) = onnxruntime.InferenceSession(str(path)).run(None, {"images": X})
    same = np.array_equal(scores.argmax(1), labels)
    demo.say(f"  ONNX Runtime's {len(X)} test predictions "
             + ("match tracegrad's exactly" if same else "DIFFER from tracegrad's"))
    if not same:
        raise RuntimeError("the ONNX model predicts differently from tracegrad")


SECTIONS: list[Section] = [
    Section("scalar", "micrograd's reference example, and its graph", _section_scalar),
    Section(
        "moons",
        "Training a tiny neural net: micrograd's moons demo",
        _section_moons,
        needs=("sklearn", "matplotlib", "tqdm"),
    ),
    Section(
        "tensor",
        "Training a real model on tensors: an MLP on sklearn's digits",
        _section_tensor,
        needs=("sklearn", "matplotlib", "tqdm", "safetensors"),
    ),
    Section(
        "compiler",
        "The compiler: a training step traced, optimized and fused",
        _section_compiler,
        needs=("sklearn",),
    ),
]
