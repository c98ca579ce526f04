"""The compiler: `tg.compile` against tracegrad eager, hand-written NumPy and PyTorch.

(a) **MLP training step.** 64-256-256-10, ReLU, cross-entropy, plain SGD (lr 0.1), batch 128,
    float32, scikit-learn's digits scaled to [0, 1]. The step is one function
    (``opt.zero_grad(); loss = F.cross_entropy(model(x), y); loss.backward(); opt.step();
    return loss``) run eagerly and through ``tg.compile`` (one graph: forward, backward and
    the update, the new weights written back). NumPy is the step written by hand, carefully:
    preallocated buffers, BLAS matmuls with ``out=``, the softmax/cross-entropy gradient in
    closed form, in-place updates. PyTorch runs the same step with ``torch.set_num_threads(1)``,
    eagerly and through ``torch.compile`` (probed first in a subprocess with a time limit: a
    machine without a working C++ toolchain reports "unavailable", not a crash). Every engine
    starts from the same weights and sees the same batches; losses and final weights are
    compared.
(b) **1,000-op elementwise chain** on a (4,) float32 tensor, forward and backward, the chains
    of `bench.tensor` (``y = y * c + d`` 500 times; ``y = (y * c + d).tanh() + d`` 250
    times), then ``y.sum().backward()``: pure per-op overhead, compiled vs eager.
(c) **GELU (exact, erf) + layer norm**, forward and backward, on a 1024x1024 float32 input:
    time, and peak memory (tracemalloc's peak during the call, which sees NumPy's
    allocations; for the compiled function plus its preallocated buffer pool, which lives
    between calls).
(d) **Compile time**: what the call that compiles spends tracing, optimizing and generating
    the program (``variant.compile_seconds``; cross-checked as that call minus a normal call).
(e) **Compile time against length**: chains of 1,000, 10,000 and 100,000 ops (``x * 0.999 +
    0.001``; with ``tanh``; forward and ``.backward()``), the compiling call timed (wall and
    CPU) with the time per op, which stays flat while compiling is linear.
(f) **CNN with a learning-rate scheduler**: a small conv net trained 4 epochs, StepLR halving
    a float lr after each; the whole run compiled against eager, and how many variants the
    compiled step made (each new float lr is a new constant today).
(g) **Per-call overhead**: a compiled call minus its generated program run directly, for
    ``x + 1`` on a (4,) tensor and for the MLP training step.

Engines are interleaved call by call in one process (`common.interleaved`); medians.
``python -m bench.compile --profile`` prints where the compiled MLP step spends its time,
statement by statement of the generated program, next to the hand-written NumPy step.
"""

from __future__ import annotations

import gc
import importlib
import math
import os
import statistics
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench import common, workloads
from bench.workloads import BATCH, CHAINS, N_OPS, SIZES, X0, C, D, batches, chain

# The issue's goals ("Compiler").
STEP_GOAL = 1.1  # compiled MLP step at most 1.1x the hand-written NumPy step
CHAIN_GOAL = 5.0  # compiled 1,000-op chain at least 5x faster than tracegrad eager
MEMORY_GOAL = 0.6  # compiled GELU+LN peak memory at most 0.6x eager's
COMPILE_STEP_GOAL = 0.3  # seconds to compile the MLP training step
COMPILE_CHAIN_GOAL = 1.0  # seconds to compile the 1,000-op chain (forward and backward)

LR = 0.1
LN_SIZE = 1024

TORCH_COMPILE_LIMIT = 120.0  # seconds the torch.compile probe may take

COMPILED, EAGER, NUMPY, TORCH, TORCH_COMPILE = (
    "tracegrad", "tg eager", "numpy", "torch", "torch.compile")
OPTIONAL = ("jax", "tinygrad")

ROOT = Path(__file__).resolve().parent.parent


def _max_diff(a: Any, b: Any) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def _compile_seconds(fn: Any) -> float:
    """What the call that compiled ``fn``'s current variant spent tracing, optimizing and
    generating code."""
    return fn.last_variant.compile_seconds


# --------------------------------------------------------------------------------------
# (a) the MLP training step


# A step factory returns (step(k) -> loss, params() -> list of arrays in PyTorch's order).
StepFactory = Callable[[list, list], tuple[Callable[[int], float], Callable[[], list]]]


def _mlp_steps(lib_name: str, compiled: bool) -> StepFactory:
    """The step factory of ``tracegrad`` or ``torch``, eager or through its ``compile``."""

    def factory(weights: list, data: list) -> tuple:
        lib = importlib.import_module(lib_name)
        step, model = workloads.sgd_steps(lib, weights, data, LR, compiled)
        return step, lambda: [p.detach().numpy().copy() for p in model.parameters()]

    return factory


mlp_compiled = _mlp_steps("tracegrad", compiled=True)
mlp_eager = _mlp_steps("tracegrad", compiled=False)
mlp_torch = _mlp_steps("torch", compiled=False)
mlp_torch_compile = _mlp_steps("torch", compiled=True)


def mlp_numpy(weights: list, data: list) -> tuple:
    """The step by hand, as a careful NumPy programmer writes it: every intermediate in a
    buffer allocated once, ``out=`` everywhere, the cross-entropy gradient in closed form."""
    params = [a.copy() for w, b in weights for a in (w, b)]
    W1, b1, W2, b2, W3, b3 = params
    H, O = SIZES[1], SIZES[-1]
    f32 = np.float32
    h1, h2, g1, g2 = (np.empty((BATCH, H), f32) for _ in range(4))
    mask = np.empty((BATCH, H), bool)
    z, e = np.empty((BATCH, O), f32), np.empty((BATCH, O), f32)
    m, s = np.empty((BATCH, 1), f32), np.empty((BATCH, 1), f32)
    grads = [np.empty_like(p) for p in params]
    gW1, gb1, gW2, gb2, gW3, gb3 = grads
    rows = np.arange(BATCH)
    matmul, maximum, multiply, greater = np.matmul, np.maximum, np.multiply, np.greater
    add, subtract, divide = np.add, np.subtract, np.divide

    def step(k: int) -> float:
        x, y = data[k]
        # forward
        matmul(x, W1.T, out=h1)
        add(h1, b1, out=h1)
        maximum(h1, 0, out=h1)
        matmul(h1, W2.T, out=h2)
        add(h2, b2, out=h2)
        maximum(h2, 0, out=h2)
        matmul(h2, W3.T, out=z)
        add(z, b3, out=z)
        z.max(axis=1, keepdims=True, out=m)
        subtract(z, m, out=z)
        np.exp(z, out=e)
        e.sum(axis=1, keepdims=True, out=s)
        loss = float(np.log(s).mean() - z[rows, y].mean())
        # backward: d loss / d logits = (softmax - onehot) / n
        divide(e, s, out=e)
        e[rows, y] -= 1
        multiply(e, 1.0 / BATCH, out=e)
        matmul(e.T, h2, out=gW3)
        e.sum(axis=0, out=gb3)
        matmul(e, W3, out=g2)
        multiply(g2, greater(h2, 0, out=mask), out=g2)
        matmul(g2.T, h1, out=gW2)
        g2.sum(axis=0, out=gb2)
        matmul(g2, W2, out=g1)
        multiply(g1, greater(h1, 0, out=mask), out=g1)
        matmul(g1.T, x, out=gW1)
        g1.sum(axis=0, out=gb1)
        # SGD, in place
        for p, gp in zip(params, grads):
            gp *= LR
            p -= gp
        return loss

    return step, lambda: [p.copy() for p in params]


MLP_IMPLS: dict[str, StepFactory] = {
    COMPILED: mlp_compiled, EAGER: mlp_eager, NUMPY: mlp_numpy, TORCH: mlp_torch,
    TORCH_COMPILE: mlp_torch_compile,
}


def _torch_compile_probe() -> None:
    """Run in a subprocess by `probe_torch_compile`: compile and run the step twice."""
    data = batches(3)
    step, _ = mlp_torch_compile(workloads.mlp_weights(SIZES, seed=0), data)
    for k in range(3):
        loss = step(k)
    assert math.isfinite(loss)
    print("ok")


def probe_torch_compile() -> str | None:
    """None if torch.compile compiles and runs the step in a subprocess within the time
    limit (and warms its on-disk cache for this process); else why not."""
    env = dict(os.environ)
    env.update({name: "1" for name in common.BLAS_ENV})
    code = "import bench.compile as m; m._torch_compile_probe()"
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=TORCH_COMPILE_LIMIT)
    except subprocess.TimeoutExpired:
        return f"unavailable: compiling the step took more than {TORCH_COMPILE_LIMIT:.0f} s"
    if done.returncode != 0 or "ok" not in done.stdout:
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        return f"unavailable: {(lines[-1] if lines else 'exit code ' + str(done.returncode))[:200]}"
    return None


def bench_mlp(names: list[str], warmup: int, repeats: int, failed: dict[str, str]) -> dict:
    weights = workloads.mlp_weights(SIZES, seed=0)
    data = batches(warmup + repeats, seed=0)
    steps, params = {}, {}
    for name in names:
        step, get_params = MLP_IMPLS[name](weights, data)
        if name == TORCH_COMPILE:
            step = common.guarded(name, step, failed, verdict="unavailable")
        steps[name] = step
        params[name] = get_params
    first_seconds: dict[str, float] = {}

    def timed_first(name: str, step: Callable) -> Callable:
        def run(k: int) -> Any:
            t0 = time.perf_counter()
            out = step(k)
            if k < 2:
                first_seconds[f"{name} call {k}"] = time.perf_counter() - t0
            return out

        return run

    steps = {n: timed_first(n, s) for n, s in steps.items()}
    timings = common.interleaved(steps, warmup, repeats)
    timings = {n: t for n, t in timings.items() if n not in failed}
    losses = {n: t.pop("outputs") for n, t in timings.items()}
    final = {n: params[n]() for n in timings}
    return {"timings": timings, "losses": losses, "params": final, "first": first_seconds}


def compile_times_mlp(repeats: int) -> dict[str, list[float]]:
    """Compile the step ``repeats`` times afresh (new model, new `tg.compile`)."""
    import tracegrad as tg

    weights = workloads.mlp_weights(SIZES, seed=1)
    data = batches(5, seed=1)
    tensors = [(tg.from_numpy(x), tg.from_numpy(y)) for x, y in data]
    out: dict[str, list[float]] = {"compile": [], "call minus normal call": []}
    for _ in range(repeats):
        model = workloads.mlp_model(tg, weights)
        fn = tg.compile(workloads.train_step(tg, model, tg.optim.SGD(model.parameters(), lr=LR)))
        fn(*tensors[0])  # eager
        t0 = time.perf_counter()
        fn(*tensors[1])  # traces, optimizes, generates, runs
        second = time.perf_counter() - t0
        normal = []
        for k in (2, 3, 4):
            t0 = time.perf_counter()
            fn(*tensors[k])
            normal.append(time.perf_counter() - t0)
        out["compile"].append(_compile_seconds(fn))
        out["call minus normal call"].append(second - statistics.median(normal))
    return out


# --------------------------------------------------------------------------------------
# (b) the 1,000-op chain


def chain_fn(reps: int, tanh: bool) -> Callable:
    """The chain as a function of x (which requires grad): returns (loss, x.grad)."""
    import tracegrad as tg

    c, d = tg.tensor(C), tg.tensor(D)

    def chain_and_grad(x: Any) -> tuple:
        loss = chain(x, c, d, reps, tanh).sum()
        loss.backward()
        return loss, x.grad

    return chain_and_grad


def bench_chain(reps: int, tanh: bool, warmup: int, repeats: int,
                compile_repeats: int) -> dict:
    import tracegrad as tg

    eager = chain_fn(reps, tanh)
    compiled = tg.compile(chain_fn(reps, tanh))

    def runner(fn: Callable) -> Callable:
        def step(k: int) -> tuple:
            x = tg.tensor(X0, requires_grad=True)
            loss, grad = fn(x)
            return loss.item(), grad.numpy().copy()

        return step

    timings = common.interleaved({COMPILED: runner(compiled), EAGER: runner(eager)},
                                 max(warmup, 3), repeats)
    seconds = [_compile_seconds(compiled)]
    for _ in range(compile_repeats - 1):
        fresh = tg.compile(chain_fn(reps, tanh))
        for _ in range(2):  # eager, then the compiling call
            fresh(tg.tensor(X0, requires_grad=True))
        seconds.append(_compile_seconds(fresh))
    (lc, gc_), (le, ge) = timings[COMPILED]["outputs"][-1], timings[EAGER]["outputs"][-1]
    return {"timings": timings, "compile": seconds,
            "diff": {"loss": abs(lc - le), "x.grad": _max_diff(gc_, ge)},
            "kernels": sum(1 for n in compiled.graph.nodes if n.op == "kernel"),
            "nodes": len(compiled.graph.nodes)}


# --------------------------------------------------------------------------------------
# (c) GELU + layer norm


def gelu_ln_fn(n: int, seed: int = 0) -> tuple[Callable, list]:
    """GELU (erf) then layer norm over the last dim, then backward with a fixed cotangent r
    (``(y * r).sum()``: with ``y.sum()`` the input gradient of a layer norm is exactly 0)."""
    import tracegrad as tg

    F = tg.nn.functional
    rng = np.random.default_rng(seed)
    w = tg.tensor(1 + 0.1 * rng.standard_normal(n).astype(np.float32), requires_grad=True)
    b = tg.tensor(0.1 * rng.standard_normal(n).astype(np.float32), requires_grad=True)
    r = tg.tensor(rng.standard_normal((n, n)).astype(np.float32))

    def gelu_ln(x: Any) -> tuple:
        y = F.layer_norm(F.gelu(x), (n,), w, b)
        (y * r).sum().backward()
        return y, x.grad

    return gelu_ln, [w, b]


def bench_gelu_ln(n: int, warmup: int, repeats: int, compile_repeats: int) -> dict:
    import tracegrad as tg

    x_data = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    eager, eager_params = gelu_ln_fn(n)
    fn, compiled_params = gelu_ln_fn(n)
    compiled = tg.compile(fn)

    def runner(f: Callable, params: list) -> Callable:
        def step(k: int) -> list:
            for p in params:
                p.grad = None
            x = tg.tensor(x_data, requires_grad=True)
            y, gx = f(x)
            return [y.numpy(), gx.numpy()] + [p.grad.numpy() for p in params]

        return step

    steps = {COMPILED: runner(compiled, compiled_params), EAGER: runner(eager, eager_params)}
    timings = common.interleaved(steps, max(warmup, 3), repeats)
    names = ["y", "x.grad", "weight.grad", "bias.grad"]
    outs_c, outs_e = timings[COMPILED]["outputs"][-1], timings[EAGER]["outputs"][-1]
    diff = {k: _max_diff(a, b) for k, a, b in zip(names, outs_c, outs_e, strict=True)}
    for t in timings.values():
        t.pop("outputs")

    # Peak memory: tracemalloc's peak during one call (inputs made before it), measured
    # outside the timed runs because tracemalloc slows allocation down.
    pool = sum(a.nbytes for a in compiled.last_variant.program.pool)
    peaks: dict[str, list[int]] = {COMPILED: [], EAGER: []}
    for _ in range(3):
        for name, f, params in ((COMPILED, compiled, compiled_params),
                                (EAGER, eager, eager_params)):
            for p in params:
                p.grad = None
            x = tg.tensor(x_data, requires_grad=True)
            gc.collect()
            tracemalloc.start()
            out = f(x)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            del out
            peaks[name].append(peak)
    seconds = [_compile_seconds(compiled)]
    for _ in range(compile_repeats - 1):
        fresh_fn, params = gelu_ln_fn(n)
        fresh = tg.compile(fresh_fn)
        for _ in range(2):
            for p in params:
                p.grad = None
            fresh(tg.tensor(x_data, requires_grad=True))
        seconds.append(_compile_seconds(fresh))
    plan = compiled.last_variant.program.plan
    return {"timings": timings, "diff": diff, "pool_bytes": pool,
            "peak_during_call": {k: min(v) for k, v in peaks.items()},
            "peak": {COMPILED: min(peaks[COMPILED]) + pool, EAGER: min(peaks[EAGER])},
            "planned_peak_bytes": plan.peak_bytes, "compile": seconds,
            "nodes": len(compiled.graph.nodes),
            "kernels": sum(1 for n in compiled.graph.nodes if n.op == "kernel")}


# --------------------------------------------------------------------------------------
# (e) compile time against the length of a chain


# name -> (ops per repetition, builder of the chain's function of x)
def _chain_mul_add(reps: int) -> Callable:
    def f(x: Any) -> Any:
        for _ in range(reps):
            x = x * 0.999 + 0.001
        return x.sum()

    return f


def _chain_tanh(reps: int) -> Callable:
    def f(x: Any) -> Any:
        for _ in range(reps):
            x = (x * 0.999 + 0.001).tanh()
        return x.sum()

    return f


def _chain_backward(reps: int) -> Callable:
    def f(x: Any) -> tuple:
        y = x
        for _ in range(reps):
            y = y * 0.999 + 0.001
        loss = y.sum()
        loss.backward()
        return loss, x.grad

    return f


LONG_CHAINS = {
    "x*0.999+0.001": (2, _chain_mul_add, False),
    "tanh(x*0.999+0.001)": (3, _chain_tanh, False),
    "x*0.999+0.001, fwd+bwd": (2, _chain_backward, True),
}
LONG_SIZES = (1_000, 10_000, 100_000)
LONG_GOAL = 10.0  # seconds to compile a 100,000-op chain (issue 12)


def _arrays(out: Any) -> list[np.ndarray]:
    outs = out if isinstance(out, tuple) else (out,)
    return [np.asarray(o.numpy(), np.float64) for o in outs]


def bench_compile_scaling(sizes: tuple, repeats: dict[int, int]) -> dict:
    """Compile each long chain afresh ``repeats[n]`` times at each length ``n`` (ops): the
    first call of a `tg.compile`d function runs eagerly, the second traces, optimizes,
    generates the program and runs it: that second call is timed (wall clock and this
    process's CPU time), and its result compared with the eager call's."""
    import tracegrad as tg

    x0 = np.linspace(-1, 1, 4, dtype=np.float32)
    out: dict[str, dict] = {}
    for label, (per_rep, build, grad) in LONG_CHAINS.items():
        for n in sizes:
            wall, cpu, inside, diffs, nodes = [], [], [], [], 0
            for _ in range(repeats[n]):
                fn = tg.compile(build(n // per_rep))
                eager = _arrays(fn(tg.tensor(x0, requires_grad=grad)))
                x = tg.tensor(x0, requires_grad=grad)
                gc.collect()
                c0, t0 = time.process_time(), time.perf_counter()
                compiled = fn(x)
                wall.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                inside.append(_compile_seconds(fn))
                diffs.append(max(_max_diff(a, b) for a, b in
                                 zip(_arrays(compiled), eager, strict=True)))
                nodes = len(fn.graph.nodes)
                del fn, compiled
            out[f"{label} {n}"] = {
                "chain": label, "ops": n, "wall": wall, "cpu": cpu, "compile_seconds": inside,
                "diff": max(diffs), "nodes": nodes}
    return out


# --------------------------------------------------------------------------------------
# (f) a CNN trained with a learning-rate scheduler


def cnn_model(tg: Any, state: dict | None = None) -> Any:
    nn = tg.nn
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
    if state is not None:
        model.load_state_dict(state)
    return model


def cnn_training(epochs: int, per_epoch: int, compiled: bool, state: dict,
                 data: list) -> dict:
    """Train the CNN for ``epochs`` epochs of ``per_epoch`` batches (SGD with momentum,
    StepLR halving the float learning rate after every epoch), through ``tg.compile`` or
    eagerly. Returns the seconds (wall, CPU), the losses and the compiled step's cache."""
    import tracegrad as tg

    F = tg.nn.functional
    model = cnn_model(tg, state)
    opt = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = tg.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    def step(x: Any, y: Any) -> Any:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    fn = tg.compile(step) if compiled else step
    losses = []
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    for epoch in range(epochs):
        for x, y in data[epoch * per_epoch:(epoch + 1) * per_epoch]:
            losses.append(fn(x, y).item())
        sched.step()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    info = fn.cache_info() if compiled else None
    return {"wall": wall, "cpu": cpu, "losses": losses,
            "variants": None if info is None else info.variants,
            "misses": None if info is None else info.misses,
            "reasons": None if info is None else info.reasons}


def bench_cnn_scheduler(epochs: int, per_epoch: int, repeats: int) -> dict:
    """The whole training, compiled and eager in turns, ``repeats`` times each."""
    import tracegrad as tg

    tg.manual_seed(0)
    state = {k: v.detach() for k, v in cnn_model(tg).state_dict().items()}
    data = [(tg.from_numpy(x.reshape(-1, 1, 8, 8)), tg.from_numpy(y))
            for x, y in batches(epochs * per_epoch, seed=2)]
    runs: dict[str, list] = {COMPILED: [], EAGER: []}
    for _ in range(repeats):
        for name in runs:
            runs[name].append(cnn_training(epochs, per_epoch, name == COMPILED, state, data))
    return runs


# --------------------------------------------------------------------------------------
# (g) what a compiled call costs beyond its program


def _feeds(variant: Any, args: tuple) -> list:
    """What the variant's entry hands its program (see `tracegrad.compiler.variants.Variant`)."""
    feeds = []
    for kind, src in variant.feeders:
        if kind == "setting":  # a float the program takes as an input (a learning rate)
            d, (key, index) = src
            feeds.append(np.array(d[key] if index is None else d[key][index], dtype=np.float64))
        else:
            feeds.append(args[src]._data if kind == "arg" else
                         src[0]._data if kind == "data" else src[0]._grad._data)
    return feeds


def bench_call_overhead(warmup: int, repeats: int, block: int) -> dict:
    """Per call: a compiled function (guards, feeds, program, write-backs, result) against
    its generated program called directly on the same arrays, interleaved in blocks."""
    import tracegrad as tg

    out = {}
    step, _ = mlp_compiled(workloads.mlp_weights(SIZES, seed=3), batches(3, seed=3))
    for k in range(3):
        step(k)
    mlp = step.compiled  # type: ignore[attr-defined]
    data = batches(1, seed=4)[0]
    xy = (tg.from_numpy(data[0]), tg.from_numpy(data[1]))
    mlp(*xy)
    # After the model is made: making a module or an optimizer changes a counter that
    # every compiled function's guards read (even this one's, which uses no module).
    plus_one = tg.compile(lambda x: x + 1)
    x = tg.tensor(np.arange(4, dtype=np.float32))
    plus_one(x)
    plus_one(x)
    cases = {"x + 1 on a (4,) tensor": (plus_one, (x,)),
             f"MLP training step (batch {BATCH})": (mlp, xy)}
    for label, (fn, args) in cases.items():
        variant = fn.last_variant
        run = variant.program.run
        hits = fn.cache_info().hits
        steps = {"compiled call": lambda k, fn=fn, args=args: fn(*args),
                 "program alone": lambda k, run=run, variant=variant, args=args:
                 run(*_feeds(variant, args))}
        timings = common.interleaved(steps, warmup, repeats, block=block)
        calls = fn.cache_info().hits - hits
        med = {k: common.median(v["seconds"]) for k, v in timings.items()}
        out[label] = {"compiled": med["compiled call"], "program": med["program alone"],
                      "overhead": med["compiled call"] - med["program alone"],
                      "all_hits": calls == warmup + repeats,
                      "variants": fn.cache_info().variants}
    return out


# --------------------------------------------------------------------------------------


def run(quick: bool = False) -> dict[str, Any]:
    """Measure (a)-(g). ``quick``: a few runs, a 256x256 layer norm, no torch.compile (its
    first compile takes tens of seconds), chains of 100 and 1,000 ops, 2 CNN steps per
    epoch: checks that everything runs and agrees."""
    mlp_warmup, mlp_repeats = (3, 2) if quick else (5, 61)
    chain_warmup, chain_repeats = (3, 2) if quick else (5, 41)
    ln_warmup, ln_repeats = (3, 2) if quick else (3, 15)
    compile_repeats = 1 if quick else 5
    n = 256 if quick else LN_SIZE
    long_sizes = (100, 1_000) if quick else LONG_SIZES
    long_repeats = {100: 1, 1_000: 1 if quick else 5, 10_000: 3, 100_000: 1}
    cnn_epochs, cnn_per_epoch, cnn_repeats = (4, 2, 1) if quick else (4, 14, 3)
    overhead_warmup, overhead_repeats, overhead_block = (5, 20, 5) if quick else (20, 400, 20)

    missing: dict[str, str] = {}
    failed: dict[str, str] = {}
    names = [COMPILED, EAGER, NUMPY]
    if common.import_peer("torch") is None:
        missing[TORCH] = common.missing_note("torch")
        missing[TORCH_COMPILE] = "not installed (pip install torch)"
    else:
        names.append(TORCH)
        if quick:
            missing[TORCH_COMPILE] = "skipped in --quick (its first compile takes long)"
        else:
            why = probe_torch_compile()
            if why is None:
                names.append(TORCH_COMPILE)
            else:
                missing[TORCH_COMPILE] = why
    for name in OPTIONAL:
        if common.import_peer(name) is None:
            missing[name] = common.missing_note(name)
        else:
            missing[name] = "installed, not benchmarked here (see bench.tensor)"

    rows, notes, extra = [], [], []
    details: dict[str, Any] = {}

    def per(values: dict[str, float | None]) -> dict[str, float | None]:
        return {name: values.get(name) for name in names}

    # (b) and (c) are measured first: running torch.compile in this process, as (a) does,
    # slows what runs after it for a while, and (b) and (c) do not involve PyTorch.
    chain_results = {
        label: bench_chain(N_OPS // ops_per_rep, tanh, chain_warmup, chain_repeats,
                           compile_repeats)
        for label, (ops_per_rep, tanh) in CHAINS.items()
    }
    ln = bench_gelu_ln(n, ln_warmup, ln_repeats, compile_repeats)
    scaling = bench_compile_scaling(long_sizes, long_repeats)
    cnn = bench_cnn_scheduler(cnn_epochs, cnn_per_epoch, cnn_repeats)
    overhead = bench_call_overhead(overhead_warmup, overhead_repeats, overhead_block)

    # (a)
    m = bench_mlp(names, mlp_warmup, mlp_repeats, failed)
    missing.update(failed)
    t = m["timings"]
    med = per({k: common.median(v["seconds"]) for k, v in t.items()})
    rows.append(common.row(f"MLP step {'-'.join(map(str, SIZES))} batch {BATCH}", "s", med))
    base = med[NUMPY]
    rows.append(common.row("MLP step: multiple of NumPy", "x",
                           {k: v / base if v else None for k, v in med.items()}, ratio=False))
    cpu = per({k: common.median(v["cpu_seconds"]) for k, v in t.items()})
    rows.append(common.row("MLP step, CPU time", "s", cpu))
    step_ratio = med[COMPILED] / base
    notes.append("MLP step: ms, median [min .. max] of "
                 f"{mlp_repeats}: " + "; ".join(f"{k} {common.spread(v['seconds'], 1e3)}"
                                                for k, v in t.items()))
    losses, params = m["losses"], m["params"]
    ref_loss, ref_params = losses[EAGER], params[EAGER]
    lines = []
    for name in losses:
        if name == EAGER:
            continue
        lines.append([name, f"{_max_diff(losses[name], ref_loss):.1e}",
                      f"{max(_max_diff(a, b) for a, b in zip(params[name], ref_params)):.1e}"])
    steps_run = mlp_warmup + mlp_repeats
    extra.append(
        f"MLP step: max |difference| from tracegrad eager after the same {steps_run} steps "
        f"(loss {ref_loss[0]:.4f} -> {ref_loss[-1]:.4f}):\n"
        + common.format_table(["engine", "losses, all steps", "parameters at the end"], lines,
                              {1, 2}))
    details["mlp"] = {"losses": losses, "first_calls": m["first"],
                      "param_diff": {r[0]: float(r[2]) for r in lines}}

    # (b)
    chain_speedup, chain_compile = {}, {}
    for label, res in chain_results.items():
        tc = {k: common.median(v["seconds"]) * 1e6 for k, v in res["timings"].items()}
        rows.append(common.row(f"chain {label} ({N_OPS:,} ops) fwd+bwd", "us", tc))
        chain_speedup[label] = tc[EAGER] / tc[COMPILED]
        chain_compile[label] = common.median(res["compile"])
        notes.append(f"chain {label}: compiled to {res['nodes']} node(s), {res['kernels']} "
                     f"fused kernel(s); |loss difference| {res['diff']['loss']:.1e}, max "
                     f"|x.grad difference| {res['diff']['x.grad']:.1e} (compiled vs eager)")
        details[f"chain {label}"] = {"diff": res["diff"], "compile": res["compile"]}

    # (c)
    tl = {k: common.median(v["seconds"]) for k, v in ln["timings"].items()}
    rows.append(common.row(f"GELU+layer norm {n}x{n} fwd+bwd", "s", tl))
    mib = {k: v / 2**20 for k, v in ln["peak"].items()}
    rows.append(common.row("GELU+layer norm: peak memory", "MiB", mib))
    memory_ratio = ln["peak"][COMPILED] / ln["peak"][EAGER]
    notes.append(
        f"GELU+layer norm peak memory: tracemalloc's peak during a call (the input is made "
        f"before it); for the compiled function {ln['peak_during_call'][COMPILED] / 2**20:.1f}"
        f" MiB during the call + its buffer pool of {ln['pool_bytes'] / 2**20:.1f} MiB "
        f"(allocated once, kept between calls; plan_memory's planned peak "
        f"{ln['planned_peak_bytes'] / 2**20:.1f} MiB). Compiled to {ln['nodes']} node(s), "
        f"{ln['kernels']} fused kernel(s). Max |difference| compiled vs eager: "
        + ", ".join(f"{k} {v:.1e}" for k, v in ln["diff"].items()))
    details["gelu_ln"] = {k: ln[k] for k in ("diff", "peak", "peak_during_call", "pool_bytes",
                                             "compile")}

    # (d)
    ct = compile_times_mlp(compile_repeats)
    step_compile = common.median(ct["compile"])
    torch_compile_s = None
    if TORCH_COMPILE in t:
        first = m["first"]
        torch_compile_s = first[f"{TORCH_COMPILE} call 0"] - med[TORCH_COMPILE]
    rows.append(common.row("compile time: MLP training step", "s",
                           per({COMPILED: step_compile, TORCH_COMPILE: torch_compile_s})))
    for label in CHAINS:
        rows.append(common.row(f"compile time: chain {label}", "s",
                               per({COMPILED: chain_compile[label]})))
    rows.append(common.row(f"compile time: GELU+layer norm {n}x{n}", "s",
                           per({COMPILED: common.median(ln["compile"])})))
    notes.append(
        "compile time: tracegrad's is the compiling call's trace + passes + code generation "
        f"(median of {compile_repeats} fresh compiles; MLP step cross-checked as that call "
        f"minus a normal call: {common.spread(ct['call minus normal call'], 1e3, ' ms')}). "
        "It includes running the function once on real data while tracing, which dominates "
        "for GELU+layer norm. torch.compile's is its first call minus a normal call, in this "
        "process, after the probe in a subprocess warmed its on-disk cache (a cold compile "
        "takes longer)")
    notes.append(
        "engines interleaved call by call in one process, a full gc.collect() after every "
        "call (not timed); one BLAS thread; torch.set_num_threads(1); tracegrad = "
        "tg.compile(fn), tg eager = the same fn uncompiled")
    details["compile_mlp"] = ct

    # (e) compile time against chain length
    lines = []
    for res in scaling.values():
        wall, cpu = common.median(res["wall"]), common.median(res["cpu"])
        rows.append(common.row(f"compile: chain {res['chain']}, {res['ops']:,} ops", "s",
                               per({COMPILED: wall})))
        lines.append([res["chain"], f"{res['ops']:,}", f"{wall:.3f} s", f"{cpu:.3f} s",
                      f"{cpu / res['ops'] * 1e6:.1f} us", f"{len(res['wall'])}",
                      f"{res['nodes']}", f"{res['diff']:.1e}"])
    extra.append(
        textwrap.fill(
            "compile time against chain length: the compiling call (the second call of a "
            "fresh tg.compile: trace, passes, code generation, first run), median of the "
            "runs; CPU is this process's CPU time (the wall clock also counts other "
            "processes on a busy machine); per op = CPU / ops, flat when compile time is "
            "linear:", width=100) + "\n"
        + common.format_table(["chain", "ops", "wall", "CPU", "CPU per op", "runs",
                               "nodes after passes", "|compiled - eager|"], lines,
                              {1, 2, 3, 4, 5, 6, 7}))
    details["compile_scaling"] = scaling
    longest = max(long_sizes)
    longest_cpu = max(common.median(r["cpu"]) for r in scaling.values() if r["ops"] == longest)

    # (f) CNN with a learning-rate scheduler
    cnn_wall = {k: common.median([r["wall"] for r in v]) for k, v in cnn.items()}
    cnn_cpu = {k: common.median([r["cpu"] for r in v]) for k, v in cnn.items()}
    last = cnn[COMPILED][-1]
    rows.append(common.row(f"CNN + StepLR, {cnn_epochs} epochs x {cnn_per_epoch} steps", "s",
                           per(cnn_wall)))
    rows.append(common.row("CNN + StepLR: compiled variants", "count",
                           per({COMPILED: last["variants"]}), ratio=False))
    cnn_diff = max(abs(a - b) for a, b in zip(last["losses"], cnn[EAGER][-1]["losses"],
                                              strict=True))
    reasons = sorted(set(last["reasons"]))
    notes.append(
        f"CNN + StepLR: Conv2d(1, 8, 3) - ReLU - MaxPool2d(2) - Linear(128, 10) on the "
        f"digits as 1x8x8 images, batch {BATCH}, SGD (lr 0.1 as a float, momentum 0.9), "
        f"StepLR(step_size=1, gamma=0.5) stepped after every epoch; the whole training timed, "
        f"compile included, median of {cnn_repeats} (CPU: compiled "
        f"{cnn_cpu[COMPILED]:.3f} s, eager {cnn_cpu[EAGER]:.3f} s). The compiled step made "
        f"{last['variants']} variant(s) in {last['misses']} compile(s); why: "
        + "; ".join(reasons) + f". Max |loss difference| compiled vs eager {cnn_diff:.1e}")
    details["cnn"] = {"wall": cnn_wall, "cpu": cnn_cpu, "variants": last["variants"],
                      "misses": last["misses"], "reasons": last["reasons"],
                      "loss_diff": cnn_diff,
                      "losses": {k: v[-1]["losses"] for k, v in cnn.items()}}

    # (g) the per-call overhead of a compiled function
    lines = []
    for label, res in overhead.items():
        rows.append(common.row(f"compiled call: {label}", "us",
                               per({COMPILED: res["compiled"] * 1e6})))
        rows.append(common.row(f"its program alone: {label}", "us",
                               per({COMPILED: res["program"] * 1e6})))
        lines.append([label, f"{res['compiled'] * 1e6:,.1f}", f"{res['program'] * 1e6:,.1f}",
                      f"{res['overhead'] * 1e6:,.1f}"])
    extra.append(
        textwrap.fill(
            "per-call overhead of a compiled function (guards, reading the inputs, "
            "write-backs, wrapping the result): the compiled call minus its generated program "
            "called directly on the same arrays (compiled.last_variant.program.run, its "
            f"argument list built per call), us per call, medians of {overhead_repeats} calls "
            f"each, interleaved in blocks of {overhead_block}:", width=100) + "\n"
        + common.format_table(["function", "compiled call", "program alone", "overhead"],
                              lines, {1, 2, 3}))
    details["overhead"] = overhead

    measured = [name for name in names if name not in failed]
    targets = [
        common.target("compiled MLP step, multiple of hand-written NumPy", step_ratio,
                      STEP_GOAL, higher_is_better=False, unit="x"),
        *(common.target(f"chain {label}: compiled speed-up over eager", s, CHAIN_GOAL,
                        higher_is_better=True, unit="x")
          for label, s in chain_speedup.items()),
        common.target("GELU+layer norm: compiled peak memory / eager's", memory_ratio,
                      MEMORY_GOAL, higher_is_better=False, unit="x"),
        common.target("compile time, MLP training step", step_compile,
                      COMPILE_STEP_GOAL, higher_is_better=False, unit=" s"),
        *(common.target(f"compile time, chain {label}", s, COMPILE_CHAIN_GOAL,
                        higher_is_better=False, unit=" s")
          for label, s in chain_compile.items()),
    ]
    if longest >= 100_000:
        targets.append(common.target(f"compile time, {longest:,}-op chain (CPU, slowest chain)",
                                     longest_cpu, LONG_GOAL, higher_is_better=False,
                                     unit=" s"))
    title = "compiler: tg.compile vs tracegrad eager, hand-written NumPy and PyTorch"
    return common.result("compile", title, measured, missing, rows, notes, extra, targets, details)


# --------------------------------------------------------------------------------------
# ``python -m bench.compile --profile``: where the compiled MLP step spends its time


def profile_mlp(calls: int = 200) -> str:
    """Time every statement group of the compiled step's generated program (one group per
    IR node), and the work around the program (guards, write-backs, output copies)."""
    import re

    import tracegrad as tg

    weights = workloads.mlp_weights(SIZES, seed=0)
    data = batches(3, seed=0)
    step, _ = mlp_compiled(weights, data)
    for k in range(3):
        step(k)
    fn = step.compiled  # type: ignore[attr-defined]
    program = fn.last_variant.program
    # Re-generate the program with a clock read before every node's statements.
    lines = program.source().splitlines()
    out, labels = [], []
    for line in lines:
        hit = re.match(r"(\s*)# (%\d+:\S+ = \S+)", line)
        if hit:
            out.append(f"{hit.group(1)}_clock.append(_now())")
            labels.append(hit.group(2))
        if line.strip().startswith("return (") and line.startswith(" " * 8):
            out.append(f"{line[:len(line) - len(line.lstrip())]}_clock.append(_now())")
        out.append(line)
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(out), "<profiled>", "exec"), namespace)
    clock: list[float] = []
    env = dict(program._env)
    run = namespace["make"](**env)
    run.__globals__.update(_clock=clock, _now=time.perf_counter)
    variant = fn.last_variant
    x, y = tg.from_numpy(data[0][0]), tg.from_numpy(data[0][1])
    # Feed the program exactly what Variant.run feeds it.
    feeds = _feeds(variant, (x, y))
    samples = []
    for _ in range(calls):
        clock.clear()
        run(*feeds)
        samples.append(np.diff(clock))
    per_node = np.median(np.array(samples), axis=0)  # medians: a preempted call is noise
    whole = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn(x, y)
        whole.append(time.perf_counter() - t0)
    bare = []
    for _ in range(calls):
        t0 = time.perf_counter()
        program(*feeds)
        bare.append(time.perf_counter() - t0)
    np_step, _ = mlp_numpy(weights, data)
    np_times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        np_step(0)
        np_times.append(time.perf_counter() - t0)
    by_op: dict[str, float] = {}
    for label, s in zip(labels, per_node):
        op = label.split("= ")[1]
        by_op[op] = by_op.get(op, 0.0) + s
    report = [
        f"compiled MLP step, {len(labels)} IR nodes, median of {calls} calls:",
        f"  tg.compile'd call (guards, program, write-backs, copies): "
        f"{statistics.median(whole) * 1e6:8.1f} us",
        f"  the generated program alone:                              "
        f"{statistics.median(bare) * 1e6:8.1f} us",
        f"  sum of per-node medians (instrumented):                   "
        f"{per_node.sum() * 1e6:8.1f} us",
        f"  hand-written NumPy step:                                  "
        f"{statistics.median(np_times) * 1e6:8.1f} us",
        "",
        "by op (us per call, instrumented):",
    ]
    for op, s in sorted(by_op.items(), key=lambda kv: -kv[1]):
        count = sum(1 for label in labels if label.endswith("= " + op))
        report.append(f"  {op:12s} x{count:<3d} {s * 1e6:8.1f}")
    report += ["", "slowest nodes (us per call):"]
    for i in np.argsort(-per_node)[:15]:
        report.append(f"  {labels[i]:40s} {per_node[i] * 1e6:8.1f}")
    return "\n".join(report)


if __name__ == "__main__":
    # NumPy is already imported here, so the environment variables come too late: limit the
    # BLAS pools directly (or run with OPENBLAS_NUM_THREADS=1).
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        if os.environ.get("OPENBLAS_NUM_THREADS") != "1":
            print("note: threadpoolctl is not installed, so BLAS may use several threads; run "
                  "with OPENBLAS_NUM_THREADS=1 (as `make bench` does) or pip install "
                  "threadpoolctl", file=sys.stderr)
    if "--profile" in sys.argv:
        print(profile_mlp())
    else:
        print(common.render(run(quick="--quick" in sys.argv)))
