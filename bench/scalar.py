"""The scalar engine: `tracegrad.Value` + `tracegrad.nn.scalar` against micrograd 0.1.0.

(a) **moons step.** micrograd's demo: ``make_moons(n_samples=100, noise=0.1)`` after
    ``np.random.seed(1337)``, y mapped to -1/+1, ``MLP(2, [16, 16, 1])`` built after
    ``random.seed(1337)`` (so both engines start from the same weights), the SVM max-margin
    loss ``(1 + -yi*scorei).relu()`` averaged plus ``1e-4 * sum(p*p)``, ``zero_grad``,
    ``backward``, SGD with ``lr = 1.0 - 0.9*k/100``. One timed step is all of that. The inputs
    are handed over as Python floats (``X.tolist()``): the same numbers, without NumPy scalars
    inside the graph. Both engines train on the same data from the same weights, so their
    losses must agree step by step; they are compared and printed.
(c) **compiled moons step.** The same step as (a), written once as ``step(lr)`` and
    compiled with ``tg.compile`` (``backend="numpy"``: vectorized by level; ``backend="c"``:
    the tape swept by one C loop), against the same step written by hand in NumPy (float64
    matrices, the backward pass derived by hand). Each compiled step's losses must equal
    eager's (it runs the same float64 operations in the same order). Also: compile time (in
    a new process with an empty disk cache, and again with that cache), and the memory a
    compiled call leaves allocated (tracemalloc over many calls: flat means ~0).
(b) **chain memory.** ``x = x * 1.000001`` N times under tracemalloc, then ``x.backward()``.
    A node is one Value object: x plus every constant, which both engines wrap into a Value,
    so the chain holds 2N+1 nodes (counted, not assumed).
"""

from __future__ import annotations

import gc
import random
import tracemalloc
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

from bench import common

# The goals.
SPEEDUP_GOAL = 3.0  # tracegrad's moons step at least 3x faster than micrograd's
BYTES_GOAL = 200.0  # at most 200 bytes per node of a long chain, gradients included

LOSS_RTOL, LOSS_ATOL = 1e-9, 1e-12  # the same float64 arithmetic in the same order


@dataclass
class Engine:
    name: str
    Value: type
    nn: ModuleType
    children: str  # the attribute holding a node's inputs
    recursive: bool  # backward() recurses once per level of the graph


def engines() -> tuple[list[Engine], dict[str, str]]:
    """The engines to compare: tracegrad, then every installed peer; and the missing ones."""
    import tracegrad
    import tracegrad.nn.scalar

    found = [Engine("tracegrad", tracegrad.Value, tracegrad.nn.scalar, "_children", False)]
    missing = {}
    engine, nn = common.import_peer("micrograd.engine"), common.import_peer("micrograd.nn")
    if engine is None or nn is None:
        missing["micrograd"] = common.missing_note("micrograd")
    else:
        found.append(Engine("micrograd", engine.Value, nn, "_prev", True))
    return found, missing


def count_nodes(root: Any, children: str) -> int:
    """Distinct nodes reachable from ``root`` (iteratively: chains are deep)."""
    seen = {id(root)}
    stack = [root]
    while stack:
        for child in getattr(stack.pop(), children):
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return len(seen)


# --------------------------------------------------------------------------------------
# (a) micrograd's moons demo, one training step


def moons_data() -> tuple[list[list[float]], list[int]]:
    import numpy as np
    from sklearn.datasets import make_moons

    np.random.seed(1337)
    random.seed(1337)
    X, y = make_moons(n_samples=100, noise=0.1)
    y = y * 2 - 1
    return X.tolist(), y.tolist()


def moons_loss(engine: Engine, model: Any, X: list, y: list) -> Any:
    """The demo's loss, written as in micrograd's notebook."""
    Value = engine.Value
    inputs = [list(map(Value, xrow)) for xrow in X]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores, strict=True)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = 1e-4 * sum(p * p for p in model.parameters())
    return data_loss + reg_loss


def moons_model(engine: Engine) -> Any:
    random.seed(1337)
    return engine.nn.MLP(2, [16, 16, 1])


def moons_step(engine: Engine, model: Any, X: list, y: list) -> Callable[[int], float]:
    def step(k: int) -> float:
        total_loss = moons_loss(engine, model, X, y)
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        return total_loss.data

    return step


def bench_moons(found: list[Engine], warmup: int, repeats: int) -> dict[str, Any]:
    X, y = moons_data()
    models = {e.name: moons_model(e) for e in found}
    nodes = {e.name: count_nodes(moons_loss(e, models[e.name], X, y), e.children) for e in found}
    steps = {e.name: moons_step(e, models[e.name], X, y) for e in found}
    timings = common.interleaved(steps, warmup, repeats)
    losses = {name: t.pop("outputs") for name, t in timings.items()}
    return {"nodes": nodes, "timings": timings, "losses": losses}


# --------------------------------------------------------------------------------------
# (c) the compiled moons step, against hand-written NumPy

COMPILED_GOALS = {"c": 10.0, "numpy": 100.0}  # at most this many times the NumPy step
COLD_GOAL, WARM_GOAL = 2.0, 0.2  # seconds to compile the step: empty C cache / warm cache


def compiled_step(model: Any, X: list, y: list) -> Callable[[float], tuple]:
    """micrograd's step, as a function of the learning rate (what tg.compile compiles)."""
    from tracegrad import Value

    def step(lr: float) -> tuple:
        inputs = [[Value(x) for x in row] for row in X]
        scores = [model(row) for row in inputs]
        losses = [(1 + -yi * s).relu() for yi, s in zip(y, scores)]
        loss = sum(losses) * (1.0 / len(losses)) + 1e-4 * sum(p * p for p in model.parameters())
        accuracy = sum((yi > 0) == (s.data > 0) for yi, s in zip(y, scores)) / len(y)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= lr * p.grad
        return loss.data, accuracy

    return step


def numpy_step(model: Any, X: list, y: list) -> Callable[[float], tuple]:
    """The same step on NumPy matrices, backward written by hand (weights taken from the
    scalar model, so the losses match)."""
    import numpy as np

    layers = [([n.w for n in layer.neurons], [n.b for n in layer.neurons])
              for layer in model.layers]
    params = []
    for w, b in layers:
        params += [np.array([[v.data for v in row] for row in w]),
                   np.array([v.data for v in b], dtype=np.float64)]
    Xa, ya = np.array(X), np.array(y, dtype=np.float64)
    n = len(ya)

    def step(lr: float) -> tuple:
        W1, b1, W2, b2, W3, b3 = params
        z1 = Xa @ W1.T + b1
        h1 = np.maximum(z1, 0)
        z2 = h1 @ W2.T + b2
        h2 = np.maximum(z2, 0)
        s = (h2 @ W3.T + b3)[:, 0]
        margin = 1 - ya * s
        loss = np.maximum(margin, 0).mean() + 1e-4 * sum((p * p).sum() for p in params)
        accuracy = float(((ya > 0) == (s > 0)).mean())
        ds = -ya * (margin > 0) / n
        dz2 = ds[:, None] * W3 * (z2 > 0)
        dz1 = (dz2 @ W2) * (z1 > 0)
        grads = [dz1.T @ Xa, dz1.sum(0), dz2.T @ h1, dz2.sum(0), ds[None, :] @ h2,
                 np.array([ds.sum()])]
        for p, g in zip(params, grads):
            p -= lr * (g + 2e-4 * p)
        return float(loss), accuracy

    return step


_COMPILE_CHILD = """
import json, sys, time
sys.path.insert(0, '.')
from bench import scalar
import tracegrad as tg
X, y = scalar.moons_data()
found, _ = scalar.engines()
model = scalar.moons_model(found[0])
step = tg.compile(scalar.compiled_step(model, X, y), backend=sys.argv[1])
step(1.0)
step(0.99)
info = step._scalar.last
print(json.dumps({"compile": info.compile_seconds, "cpu": info.compile_cpu_seconds,
                  "trace": info.records[0].seconds, "python": sys.version.split()[0],
                  "backend": step.cache_info().backend}))
"""


def compile_times(backend: str) -> dict:
    """Compile the moons step in a new process with an empty disk cache (cold: the C
    compiler, the passes and the layout run), then again in a new process with that cache
    (warm: the trace and the guards run, the layout is read back)."""
    import json
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, TRACEGRAD_CACHE_DIR=cache, PYTHONPATH=str(root))
        for label in ("cold", "warm"):
            done = subprocess.run([sys.executable, "-c", _COMPILE_CHILD, backend], cwd=root,
                                  env=env, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise RuntimeError(done.stderr[-2000:])
            out[label] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def call_memory(step: Callable[[float], Any], calls: int) -> float:
    """Bytes still allocated per call after ``calls`` more calls of a warmed-up step (the
    first calls under tracemalloc replace the Values' floats made before it started: they
    are not counted)."""
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(3):
            step(0.5)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for k in range(calls):
            step(0.5 - k * 1e-4)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (after - before) / calls


def _with_schedule(step: Callable[[float], Any]) -> Callable[[int], Any]:
    """Step k with micrograd's learning rate for step k."""
    return lambda k: step(1.0 - 0.9 * k / 100)


def bench_compiled(warmup: int, repeats: int, quick: bool) -> dict[str, Any]:
    import tracegrad as tg
    from tracegrad.compiler.backends.toolchain import compiler_problem

    X, y = moons_data()
    found, _ = engines()
    backends = ["numpy"] + ([] if compiler_problem() else ["c"])
    steps: dict[str, Callable[[int], Any]] = {}
    compiled = {}
    for backend in ["eager"] + backends:
        model = moons_model(found[0])
        fn = compiled_step(model, X, y)
        if backend != "eager":
            fn = compiled[backend] = tg.compile(fn, backend=backend)
            fn(1.0), fn(1.0)  # the eager first call, then the trace; then back to the start
            for p, q in zip(model.parameters(), moons_model(found[0]).parameters()):
                p.data = q.data
        steps[backend] = _with_schedule(fn)
    steps["hand-written NumPy"] = _with_schedule(numpy_step(moons_model(found[0]), X, y))
    timings = common.interleaved(steps, warmup, repeats, block=repeats)
    out = {"timings": timings, "backends": backends,
           "compile_seconds": {b: compiled[b]._scalar.last.compile_seconds for b in backends},
           "variants": {b: compiled[b].cache_info().variants for b in backends},
           "explain": compiled[backends[-1]].cache_info().backend}
    out["memory"] = {b: call_memory(compiled[b], 20 if quick else 200) for b in backends}
    out["compile"] = None if quick else {b: compile_times(b) for b in backends}
    return out


# --------------------------------------------------------------------------------------
# (b) memory per node of a long chain


def chain_memory(engine: Engine, n: int) -> dict[str, float]:
    """Bytes held by the chain after building it and after backward, and backward's peak."""
    Value = engine.Value
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        x = Value(1.0)
        for _ in range(n):
            x = x * 1.000001
        built = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.reset_peak()
        if engine.recursive:
            common.run_deep(x.backward, depth=2 * n)
        else:
            x.backward()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    nodes = count_nodes(x, engine.children)
    del x
    gc.collect()
    return {"nodes": nodes, "built": built, "backward": after - base, "peak": peak - base}


# --------------------------------------------------------------------------------------


def run(quick: bool = False) -> dict[str, Any]:
    """Measure (a) and (b) for tracegrad and every installed peer; return the result dict.

    ``quick``: 1 warm-up and 2 timed steps, a chain of 2,000 (for the smoke test).
    """
    warmup, repeats, n = (1, 2, 2_000) if quick else (3, 7, 100_000)
    found, missing = engines()
    names = [e.name for e in found]
    rows, notes, extra, targets = [], [], [], []
    details: dict[str, Any] = {"warmup": warmup, "repeats": repeats, "chain_n": n}

    def per_engine(fn: Callable[[str], float | None]) -> dict[str, float | None]:
        return {name: fn(name) for name in names}

    speedup = None
    if common.import_peer("sklearn.datasets") is None:
        notes.append("moons step skipped: scikit-learn " + common.missing_note("scikit-learn"))
    else:
        m = bench_moons(found, warmup, repeats)
        t = m["timings"]
        med = per_engine(lambda e: common.median(t[e]["seconds"]))
        in_gc = per_engine(lambda e: common.median(t[e]["gc_seconds"]))
        cleanup = per_engine(lambda e: common.median(t[e]["cleanup_seconds"]))
        total = per_engine(lambda e: common.median(
            [a + b for a, b in zip(t[e]["seconds"], t[e]["cleanup_seconds"], strict=True)]))
        rows.append(common.row("moons: graph nodes per step", "count", m["nodes"], ratio=False))
        rows.append(common.row(f"moons: step, fwd+bwd+SGD (median of {repeats})", "s", med))
        rows.append(common.row("moons:   of which the cyclic gc ran", "s", in_gc))
        rows.append(common.row("moons: gc.collect() after the step", "s", cleanup))
        rows.append(common.row("moons: step + that gc.collect()", "s", total))
        notes.append(
            "moons: engines interleaved step by step in one process, gc enabled (CPython "
            "defaults); a full gc.collect() after every step, timed apart, so each step "
            "starts from the same heap and an engine's cyclic garbage is billed to it"
        )
        if "micrograd" in med:
            speedup = med["micrograd"] / med["tracegrad"]
        extra.append(loss_table(m["losses"], warmup))
        details["moons"] = m
        details["moons"]["losses_agree"] = common.losses_agree(m["losses"], LOSS_RTOL, LOSS_ATOL)

        c = bench_compiled(warmup, repeats, quick)
        details["compiled"] = c
        ct = c["timings"]
        cmed = {k: common.median(v["cpu_seconds"]) for k, v in ct.items()}
        hand = cmed["hand-written NumPy"]
        rows.append(common.row("moons: step written by hand in NumPy (CPU)", "s",
                               {"tracegrad": hand}))
        for b in c["backends"]:
            label = f"tg.compile(step, backend={b!r})"
            rows.append(common.row(f"moons: {label} step (CPU)", "s", {"tracegrad": cmed[b]}))
            ratio = cmed[b] / hand
            targets.append(common.target(f"moons: {label} / hand-written NumPy", ratio,
                                         COMPILED_GOALS[b], higher_is_better=False, unit="x"))
            rows.append(common.row(f"moons: {label} bytes left per call", "B",
                                   {"tracegrad": max(c["memory"][b], 0.01)}))
            if c["compile"] is not None:
                for label2, goal in (("cold", COLD_GOAL), ("warm", WARM_GOAL)):
                    seconds = c["compile"][b][label2]["compile"]
                    cpu = c["compile"][b][label2]["cpu"]
                    rows.append(common.row(f"moons: compile ({b}), {label2} disk cache, CPU",
                                           "s", {"tracegrad": cpu}))
                    rows.append(common.row(f"moons: compile ({b}), {label2}: trace (wall)",
                                           "s", {"tracegrad": c["compile"][b][label2]["trace"]}))
                    targets.append(common.target(f"moons: compile ({b}), {label2} disk cache",
                                                 seconds, goal, higher_is_better=False,
                                                 unit=" s"))
                notes.append(f"moons compile ({b}): in a new process each, Python "
                             f"{c['compile'][b]['cold']['python']}; cold: empty "
                             f"TRACEGRAD_CACHE_DIR (C compiler runs, passes and layout run); "
                             f"warm: the same directory again (trace, guards, cached layout); "
                             f"the code the trace runs is seen by sys.monitoring (3.12+) or "
                             f"tracegrad's C hook (3.10, 3.11; without a C compiler "
                             f"sys.setprofile, the trace about 3x slower)")
            agree = all(abs(u[0] - v[0]) <= 1e-12 and u[1] == v[1] for u, v in
                        zip(ct["eager"]["outputs"], ct[b]["outputs"], strict=True))
            details["compiled"][f"agree_{b}"] = agree
            notes.append(f"moons compiled ({b}): losses equal eager's at every step: {agree}; "
                         f"compiled once ({c['variants'][b]} variant) in "
                         f"{c['compile_seconds'][b]:.2f} s in this process")
        rows.append(common.row("moons: eager step (CPU, same loop)", "s",
                               {"tracegrad": cmed["eager"]}))
        notes.append(f"moons compiled: {c['explain']}")

    mem = {e.name: chain_memory(e, n) for e in found}
    details["chain"] = mem
    label = f"chain x*1.000001 N={n:,}"
    rows.append(common.row(f"{label}: nodes (Value objects)", "count",
                           per_engine(lambda e: mem[e]["nodes"]), ratio=False))
    for key, what in (("built", "bytes/node, graph built"),
                      ("backward", "bytes/node, after backward"),
                      ("peak", "bytes/node, peak during backward")):
        rows.append(common.row(f"{label}: {what}", "B",
                               per_engine(lambda e, key=key: mem[e][key] / mem[e]["nodes"])))
    notes.append(
        "chain: a node is one Value object; both engines wrap the constant into a Value, so "
        "N steps make 2N+1 nodes. Bytes are tracemalloc's (all Python allocations: objects, "
        "children tuples/sets, closures, floats), 'after backward' includes the gradients"
    )
    bytes_per_node = mem["tracegrad"]["backward"] / mem["tracegrad"]["nodes"]

    targets[:0] = [
        common.target("moons step speed-up over micrograd", speedup, SPEEDUP_GOAL,
                      higher_is_better=True, unit="x"),
        common.target("tracegrad bytes/node after backward", bytes_per_node, BYTES_GOAL,
                      higher_is_better=False, unit=" B"),
    ]
    return common.result("scalar", "scalar engine: tracegrad.Value vs micrograd.engine.Value",
                         names, missing, rows, notes, extra, targets, details)


def loss_table(losses: dict[str, list[float]], warmup: int) -> str:
    """The loss of every step, per engine, and the largest difference to tracegrad's."""
    table = common.loss_table(losses, warmup, decimals=15)
    if len(losses) == 1:
        return "moons losses:\n" + table
    verdict = "agree" if common.losses_agree(losses, LOSS_RTOL, LOSS_ATOL) else "DISAGREE"
    return f"moons losses ({verdict}, rel. tolerance 1e-9):\n" + table
