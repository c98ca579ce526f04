"""Demo section ``compiler``: the digits MLP's training step, eager against compiled (NumPy, C)."""

from __future__ import annotations

import gc
import time
from typing import Any, Callable, Sequence

import numpy as np

from .digits import DIGITS_SIZES, digits_data, digits_mlp
from .tour import Demo, _draw_svg_or_dot, _one_blas_thread

DIGITS_BATCH = 128


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


def section(demo: Demo) -> None:
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
    from ..compiler.backends.c import available as c_problem

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
        # Each compiled step computes what eager does to float32 rounding (both backends sum
        # in NumPy's order); over a hundred steps of training, rounding differences can grow,
        # so say how far apart the curves are rather than only "equal" or "not".
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
