"""The C backend (issue 14): ``tg.compile(backend="c")`` against the NumPy backend,
hand-written NumPy and eager, one BLAS thread (``make bench`` sets it; else set
``OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1``).

(a) **GELU (tanh form) + layer norm**, forward and backward (cotangent r fixed), 1024x1024
    float32; hand-written NumPy is the same math with ``out=`` buffers allocated once.
(b) **Chain** ``x = x * 1.01 + 0.01`` 1,000 times on a (4,) float32 array, forward and
    backward (``x.grad``); NumPy: the loop by hand (2,000 ufunc calls, then the backward).
(c) **MLP 64-256-256-10 training step with Adam**, batch 128, float32; NumPy: the step by
    hand (BLAS matmuls with ``out=``, closed-form cross-entropy gradient, in-place Adam).
(d) **Compile time** of (c): the compiling call's trace + passes + code generation + the C
    compiler, in a new process with an empty disk cache (cold) and again in a new process
    with that cache (warm).

jax.jit runs (a) and (b) when jax is installed; torch.compile is measured by
`bench.compile`. Ratios against hand-written NumPy are of CPU time (the machine may be
shared); (a) also reports the bytes it moves against the memory bandwidth ``np.copyto``
measures. Engines interleave call by call (`common.interleaved`); medians.
Run: ``python -m bench.cbackend`` (``--quick``: a few calls, 256x256).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench import common, workloads

ROOT = Path(__file__).resolve().parent.parent
C, NP_BACKEND, NUMPY, EAGER, JAX = "tg C", "tg numpy", "numpy", "tg eager", "jax.jit"
C_COPY = "tg C, x copied"  # the measure before 2026-12 (`gelu_ln_tracegrad`'s copy_x)
ENGINES = [C, NP_BACKEND, NUMPY, EAGER, JAX]
S2PI = math.sqrt(2 / math.pi)
EPS = 1e-5
GELU_LN_GOAL, CHAIN_GOAL, MLP_GOAL, COLD_GOAL, WARM_GOAL = 0.5, 2.0, 0.95, 1.5, 0.1
BANDWIDTH_GOAL = 2.0  # GELU+LN on C: at most this many times the bytes' time at memory speed


# ---------------------------------------------------------------- (a) GELU + layer norm


def gelu_ln_data(n: int) -> dict:
    rng = np.random.default_rng(0)
    f32 = np.float32
    return {"x": rng.standard_normal((n, n)).astype(f32),
            "w": (1 + 0.1 * rng.standard_normal(n)).astype(f32),
            "b": (0.1 * rng.standard_normal(n)).astype(f32),
            "r": rng.standard_normal((n, n)).astype(f32)}


def gelu_ln_tracegrad(data: dict, backend: str | None, copy_x: bool = False) -> Callable:
    """tracegrad's step: x is made once, as the NumPy and jax steps take theirs, and its
    gradient reset each call like w's and b's (``copy_x``: a new tensor copied from the
    data each call, the measure before 2026-12: 4 MiB more read and written)."""
    import tracegrad as tg

    F = tg.nn.functional
    n = data["x"].shape[1]
    w = tg.tensor(data["w"], requires_grad=True)
    b = tg.tensor(data["b"], requires_grad=True)
    r = tg.tensor(data["r"])

    def f(x: Any) -> tuple:
        y = F.layer_norm(F.gelu(x, approximate="tanh"), (n,), w, b)
        (y * r).sum().backward()
        return y, x.grad, w.grad, b.grad

    fn = f if backend is None else tg.compile(f, backend=backend)

    x0 = tg.tensor(data["x"], requires_grad=True)

    def step(k: int) -> list:
        w.grad = b.grad = x0.grad = None
        x = tg.tensor(data["x"], requires_grad=True) if copy_x else x0
        return [o.numpy() for o in fn(x)]

    return step


def gelu_ln_numpy(data: dict) -> Callable:
    """The forward and backward by hand, buffers allocated once."""
    x, w, b, r = data["x"], data["w"], data["b"], data["r"]
    f32 = np.float32
    t, h, d, y, gx, tmp = (np.empty_like(x) for _ in range(6))
    mu, var, rstd, m1, m2 = (np.empty((x.shape[0], 1), f32) for _ in range(5))
    gw, gb = np.empty_like(w), np.empty_like(b)
    mul, add, tanh = np.multiply, np.add, np.tanh

    def step(k: int) -> list:
        # gelu (tanh form): h = 0.5 x (1 + tanh(s (x + 0.044715 x^3)))
        mul(x, x, out=tmp)
        mul(tmp, f32(0.044715), out=t)
        add(t, 1, out=t)
        mul(t, x, out=t)
        mul(t, f32(S2PI), out=t)
        tanh(t, out=t)
        add(t, 1, out=h)
        mul(h, x, out=h)
        mul(h, f32(0.5), out=h)
        # layer norm
        np.mean(h, axis=1, keepdims=True, out=mu)
        np.subtract(h, mu, out=d)
        mul(d, d, out=y)
        np.mean(y, axis=1, keepdims=True, out=var)
        add(var, f32(EPS), out=rstd)
        np.sqrt(rstd, out=rstd)
        np.divide(1, rstd, out=rstd)
        mul(d, rstd, out=d)  # d is now xhat
        mul(d, w, out=y)
        add(y, b, out=y)
        # backward: gw, gb; g_xhat = r * w; g_h = rstd (g_xhat - mean(g_xhat)
        #   - xhat mean(g_xhat xhat))
        mul(r, d, out=gx)
        gx.sum(axis=0, out=gw)
        r.sum(axis=0, out=gb)
        mul(r, w, out=gx)
        np.mean(gx, axis=1, keepdims=True, out=m1)
        mul(gx, d, out=h)
        np.mean(h, axis=1, keepdims=True, out=m2)
        mul(d, m2, out=h)
        np.subtract(gx, h, out=gx)
        np.subtract(gx, m1, out=gx)
        mul(gx, rstd, out=gx)
        # gelu backward: 0.5 (1 + t) + 0.5 x (1 - t^2) s (1 + 3 0.044715 x^2)
        mul(tmp, f32(3 * 0.044715), out=tmp)
        add(tmp, 1, out=tmp)
        mul(tmp, f32(S2PI * 0.5), out=tmp)
        mul(tmp, x, out=tmp)
        mul(t, t, out=h)
        np.subtract(1, h, out=h)
        mul(tmp, h, out=tmp)
        add(t, 1, out=t)
        mul(t, f32(0.5), out=t)
        add(t, tmp, out=t)
        mul(gx, t, out=gx)
        return [y, gx, gw, gb]

    return step


def gelu_ln_jax(data: dict) -> Callable | None:
    """The same forward and backward under ``jax.jit`` (None without jax)."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    n = data["x"].shape[1]

    def forward(x: Any, w: Any, b: Any) -> Any:
        h = 0.5 * x * (1 + jnp.tanh(S2PI * (x + 0.044715 * x ** 3)))
        mu = h.mean(axis=1, keepdims=True)
        d = h - mu
        var = (d * d).mean(axis=1, keepdims=True)
        return d / jnp.sqrt(var + EPS) * w + b

    @jax.jit
    def fwd_bwd(x: Any, w: Any, b: Any, r: Any) -> tuple:
        y, vjp = jax.vjp(forward, x, w, b)
        return (y, *vjp(r))

    args = [jax.device_put(data[k]) for k in ("x", "w", "b", "r")]
    assert n == args[0].shape[1]

    def step(k: int) -> list:
        return [np.asarray(o) for o in fwd_bwd(*args)]

    return step


# ---------------------------------------------------------------- (b) the chain


def chain_tracegrad(n_steps: int, backend: str | None) -> Callable:
    import tracegrad as tg

    x0 = np.array([0.5, -1.0, 2.0, 0.25], np.float32)

    def f(x: Any) -> tuple:
        y = x
        for _ in range(n_steps):
            y = y * 1.01 + 0.01
        y.sum().backward()
        return y, x.grad

    fn = f if backend is None else tg.compile(f, backend=backend)

    def step(k: int) -> list:
        x = tg.tensor(x0, requires_grad=True)
        return [o.numpy().copy() for o in fn(x)]

    return step


def chain_numpy(n_steps: int) -> Callable:
    x0 = np.array([0.5, -1.0, 2.0, 0.25], np.float32)
    a, c = np.float32(1.01), np.float32(0.01)
    mul, add = np.multiply, np.add

    def step(k: int) -> list:
        y = x0.copy()
        for _ in range(n_steps):
            mul(y, a, out=y)
            add(y, c, out=y)
        g = np.ones_like(y)
        for _ in range(n_steps):
            mul(g, a, out=g)
        return [y, g]

    return step


def chain_jax(n_steps: int) -> Callable | None:
    """The chain and its gradient under ``jax.jit`` (None without jax)."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    x0 = np.array([0.5, -1.0, 2.0, 0.25], np.float32)

    def f(x: Any) -> Any:
        for _ in range(n_steps):
            x = x * 1.01 + 0.01
        return x

    @jax.jit
    def fwd_bwd(x: Any) -> tuple:
        y, vjp = jax.vjp(f, x)
        return y, vjp(jnp.ones_like(y))[0]

    def step(k: int) -> list:
        return [np.asarray(o).copy() for o in fwd_bwd(x0)]

    return step


def memory_bandwidth(mib: int = 64, repeats: int = 10) -> float:
    """Bytes per second that ``np.copyto`` of ``mib`` MiB float32 moves (read + written),
    the best of ``repeats``: the machine's memory bandwidth as one core sees it."""
    a = np.ones(mib << 18, np.float32)
    b = np.empty_like(a)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t0)
    return 2 * a.nbytes / best


# ---------------------------------------------------------------- (c) the MLP with Adam

LR, BETAS, ADAM_EPS = 1e-3, (0.9, 0.999), 1e-8


def mlp_tracegrad(data: list, backend: str | None) -> Callable:
    import tracegrad as tg

    model = workloads.mlp_model(tg, workloads.mlp_weights(workloads.SIZES))
    opt = tg.optim.Adam(model.parameters(), lr=LR)
    fn = workloads.train_step(tg, model, opt)
    if backend is not None:
        fn = tg.compile(fn, backend=backend)
    tensors = [(tg.from_numpy(x), tg.from_numpy(y)) for x, y in data]

    def step(k: int) -> float:
        return float(fn(*tensors[k % len(tensors)]))

    return step


def mlp_numpy(data: list) -> Callable:
    """The Adam step by hand: buffers once, out= everywhere, Adam in place."""
    f32 = np.float32
    params = [a.copy() for w, b in workloads.mlp_weights(workloads.SIZES) for a in (w, b)]
    W1, b1, W2, b2, W3, b3 = params
    B, H, O = workloads.BATCH, workloads.SIZES[1], workloads.SIZES[-1]
    h1, h2, g1, g2 = (np.empty((B, H), f32) for _ in range(4))
    mask = np.empty((B, H), bool)
    z, e = np.empty((B, O), f32), np.empty((B, O), f32)
    m, s = np.empty((B, 1), f32), np.empty((B, 1), f32)
    grads = [np.empty_like(p) for p in params]
    gW1, gb1, gW2, gb2, gW3, gb3 = grads
    ms = [np.zeros_like(p) for p in params]
    vs = [np.zeros_like(p) for p in params]
    tmps = [np.empty_like(p) for p in params]
    rows = np.arange(B)
    mm, mul, add = np.matmul, np.multiply, np.add
    state = {"t": 0}

    def step(k: int) -> float:
        x, y = data[k % len(data)]
        mm(x, W1.T, out=h1)
        add(h1, b1, out=h1)
        np.maximum(h1, 0, out=h1)
        mm(h1, W2.T, out=h2)
        add(h2, b2, out=h2)
        np.maximum(h2, 0, out=h2)
        mm(h2, W3.T, out=z)
        add(z, b3, out=z)
        z.max(axis=1, keepdims=True, out=m)
        np.subtract(z, m, out=z)
        np.exp(z, out=e)
        e.sum(axis=1, keepdims=True, out=s)
        loss = float(np.log(s).mean() - z[rows, y].mean())
        np.divide(e, s, out=e)
        e[rows, y] -= 1
        mul(e, f32(1.0 / B), out=e)
        mm(e.T, h2, out=gW3)
        e.sum(axis=0, out=gb3)
        mm(e, W3, out=g2)
        mul(g2, np.greater(h2, 0, out=mask), out=g2)
        mm(g2.T, h1, out=gW2)
        g2.sum(axis=0, out=gb2)
        mm(g2, W2, out=g1)
        mul(g1, np.greater(h1, 0, out=mask), out=g1)
        mm(g1.T, x, out=gW1)
        g1.sum(axis=0, out=gb1)
        state["t"] += 1
        t = state["t"]
        b1c, b2c = 1 - BETAS[0] ** t, 1 - BETAS[1] ** t
        step_size = f32(LR / b1c)
        for p, g, mo, v, tmp in zip(params, grads, ms, vs, tmps):
            mul(mo, f32(BETAS[0]), out=mo)
            mo += f32(1 - BETAS[0]) * g
            mul(v, f32(BETAS[1]), out=v)
            mul(g, g, out=tmp)
            tmp *= f32(1 - BETAS[1])
            v += tmp
            np.divide(v, f32(b2c), out=tmp)
            np.sqrt(tmp, out=tmp)
            tmp += f32(ADAM_EPS)
            np.divide(mo, tmp, out=tmp)
            tmp *= step_size
            p -= tmp
        return loss

    return step


# ---------------------------------------------------------------- (d) compile time

_COMPILE_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np, tracegrad as tg
from bench import workloads
imported = time.perf_counter() - t0
model = workloads.mlp_model(tg, workloads.mlp_weights(workloads.SIZES))
fn = tg.compile(workloads.train_step(tg, model, tg.optim.Adam(model.parameters(), lr=1e-3)),
                backend="c")
data = workloads.batches(2)
for x, y in data:
    fn(tg.from_numpy(x), tg.from_numpy(y))
print(json.dumps({"compile": fn.last_variant.compile_seconds, "import": imported,
                  "backend": fn.cache_info().backend}))
"""


def compile_times() -> dict:
    """Compile the MLP Adam step in a new process with an empty cache, then again in a new
    process with that cache."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, TRACEGRAD_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
        for label in ("cold", "warm"):
            done = subprocess.run([sys.executable, "-c", _COMPILE_CHILD], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise RuntimeError(done.stderr[-2000:])
            out[label] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


# ---------------------------------------------------------------- the run


def _max_diff(a: list, b: list) -> float:
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
               for x, y in zip(a, b))


def run(quick: bool = False) -> dict[str, Any]:
    n = 256 if quick else 1024
    warmup, repeats = (3, 3) if quick else (3, 15)
    rows, notes, targets = [], [], []

    data = gelu_ln_data(n)
    steps = {C: gelu_ln_tracegrad(data, "c"), NP_BACKEND: gelu_ln_tracegrad(data, "numpy"),
             NUMPY: gelu_ln_numpy(data), EAGER: gelu_ln_tracegrad(data, None),
             C_COPY: gelu_ln_tracegrad(data, "c", copy_x=True)}
    jax_step = gelu_ln_jax(data)
    if jax_step is not None:
        steps[JAX] = jax_step
    t = common.interleaved(steps, warmup, repeats)
    med = {k: common.median(v["seconds"]) for k, v in t.items()}
    cpu = {k: common.median(v["cpu_seconds"]) for k, v in t.items()}
    rows.append(common.row(f"GELU(tanh)+layer norm {n}x{n} fwd+bwd", "s",
                           {k: v for k, v in med.items() if k != C_COPY}))
    notes.append("GELU+LN, ms, median [min .. max]: " + "; ".join(
        f"{k} {common.spread(v['seconds'], 1e3)}" for k, v in t.items()))
    # (CPU time: on a shared machine a call the scheduler preempts is slow on the wall clock)
    ratio = cpu[C] / cpu[NUMPY]
    targets.append(common.target("GELU+LN: C backend / hand-written NumPy (CPU time)", ratio,
                                 GELU_LN_GOAL, False, "x"))
    if JAX in cpu:
        targets.append(common.target("GELU+LN: C backend / jax.jit (CPU time)",
                                     cpu[C] / cpu[JAX], 1.0, False, "x"))
    ref = t[EAGER]["outputs"][-1]
    notes.append(f"GELU+LN: max |C - eager| {_max_diff(t[C]['outputs'][-1], ref):.1e}, "
                 f"|numpy backend - eager| {_max_diff(t[NP_BACKEND]['outputs'][-1], ref):.1e}"
                 f", |hand NumPy - eager| {_max_diff(t[NUMPY]['outputs'][-1], ref):.1e}; "
                 f"C/NumPy {ratio:.2f}x, numpy backend/NumPy {med[NP_BACKEND] / med[NUMPY]:.2f}x")
    # The same calls back to back, without the collection between calls: the steady state
    # of a loop (a full collection after every call makes the next one page-fault its fresh
    # outputs back in; hand-written NumPy allocates nothing)
    loop = {}
    for k in (C, NP_BACKEND, NUMPY):
        best = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            steps[k](0)
            best.append(time.perf_counter() - t0)
        loop[k] = min(best)
    notes.append(f"GELU+LN, {repeats} calls back to back, fastest: " + ", ".join(
        f"{k} {v * 1e3:.2f} ms" for k, v in loop.items())
        + f" (C/NumPy {loop[C] / loop[NUMPY]:.2f}x)")
    targets.append(common.target("GELU+LN back to back: C / hand-written NumPy",
                                 loop[C] / loop[NUMPY], GELU_LN_GOAL, False, "x"))
    # bytes: the least a fused forward and backward moves: x and r read, y and x.grad
    # written (n*n float32 each), w and b read, w.grad and b.grad written (n each)
    least = 4 * n * n * 4 + 4 * n * 4
    bandwidth = memory_bandwidth()
    floor = least / bandwidth
    notes.append(f"GELU+LN: a fused forward and backward moves at least {least / 2**20:.2f} "
                 f"MiB per call (x, r read, y, x.grad written, {n}x{n} float32 each; w, b, "
                 f"w.grad, b.grad); C: {cpu[C] * 1e3:.2f} ms CPU, "
                 f"{least / cpu[C] / 2**30:.2f} GiB/s; np.copyto of 64 MiB moves "
                 f"{bandwidth / 2**30:.1f} GiB/s (read + written) here, so those bytes take at "
                 f"least {floor * 1e3:.2f} ms: C is {cpu[C] / floor:.2f}x that (the target's "
                 f"figure: C's median against the fastest of the copies; C's fastest call, "
                 f"{min(t[C]['cpu_seconds']) * 1e3:.2f} ms, is "
                 f"{min(t[C]['cpu_seconds']) / floor:.2f}x)")
    targets.append(common.target("GELU+LN: C backend / the bytes' time at memory bandwidth",
                                 cpu[C] / floor, BANDWIDTH_GOAL, False, "x"))
    notes.append(f"GELU+LN, the step as measured before 2026-12 ({C_COPY}: a new x tensor "
                 f"copied from the data each call, which the NumPy and jax steps do not do): "
                 f"{cpu[C_COPY] * 1e3:.2f} ms CPU, {cpu[C_COPY] / cpu[NUMPY]:.2f}x NumPy, "
                 f"{cpu[C_COPY] / floor:.2f}x the bytes' time")
    del t, steps

    chain_steps = 100 if quick else 1000
    steps = {C: chain_tracegrad(chain_steps, "c"),
             NP_BACKEND: chain_tracegrad(chain_steps, "numpy"),
             NUMPY: chain_numpy(chain_steps), EAGER: chain_tracegrad(chain_steps, None)}
    jax_step = chain_jax(chain_steps)
    if jax_step is not None:
        steps[JAX] = jax_step
    t = common.interleaved(steps, warmup, repeats * 3)
    med = {k: common.median(v["seconds"]) for k, v in t.items()}
    if JAX in med:
        targets.append(common.target(f"chain x{chain_steps}: C backend / jax.jit",
                                     med[C] / med[JAX], CHAIN_GOAL, False, "x"))
    rows.append(common.row(f"chain x*1.01+0.01 x{chain_steps} on (4,) fwd+bwd", "s", med))
    notes.append("chain, us, median [min .. max]: " + "; ".join(
        f"{k} {common.spread(v['seconds'], 1e6)}" for k, v in t.items()))
    notes.append(f"chain: max |C - eager| "
                 f"{_max_diff(t[C]['outputs'][-1], t[EAGER]['outputs'][-1]):.1e}; C "
                 f"{med[C] * 1e6:.0f} us, numpy backend {med[NP_BACKEND] * 1e6:.0f} us, hand "
                 f"NumPy {med[NUMPY] * 1e6:.0f} us, "
                 + (f"jax.jit {med[JAX] * 1e6:.0f} us" if JAX in med else
                    f"jax.jit: not installed, so the goal 'within {CHAIN_GOAL}x of jax.jit' is "
                    f"not measured"))

    batches = workloads.batches(warmup + repeats * 4, seed=0)
    steps = {C: mlp_tracegrad(batches, "c"), NP_BACKEND: mlp_tracegrad(batches, "numpy"),
             NUMPY: mlp_numpy(batches), EAGER: mlp_tracegrad(batches, None)}
    t = common.interleaved(steps, warmup, repeats * 4)
    med = {k: common.median(v["seconds"]) for k, v in t.items()}
    rows.append(common.row("MLP 64-256-256-10 Adam step, batch 128", "s", med))
    notes.append("MLP, ms, median [min .. max]: " + "; ".join(
        f"{k} {common.spread(v['seconds'], 1e3)}" for k, v in t.items()))
    cpu = {k: common.median(v["cpu_seconds"]) for k, v in t.items()}
    ratio = cpu[C] / cpu[NUMPY]
    targets.append(common.target("MLP Adam step: C backend / hand-written NumPy (CPU time)",
                                 ratio, MLP_GOAL, False, "x"))
    losses = {k: v["outputs"] for k, v in t.items()}
    notes.append(f"MLP: max |loss C - loss eager| over the steps "
                 f"{max(abs(a - b) for a, b in zip(losses[C], losses[EAGER])):.1e}, "
                 f"|hand NumPy - eager| "
                 f"{max(abs(a - b) for a, b in zip(losses[NUMPY], losses[EAGER])):.1e}; "
                 f"C/NumPy {ratio:.2f}x, numpy backend/NumPy "
                 f"{med[NP_BACKEND] / med[NUMPY]:.2f}x")

    ct = compile_times()
    rows.append(common.row("compile MLP Adam step, empty disk cache (new process)", "s",
                           {C: ct["cold"]["compile"]}))
    rows.append(common.row("compile MLP Adam step, warm disk cache (new process)", "s",
                           {C: ct["warm"]["compile"]}))
    targets.append(common.target("compile time, cold", ct["cold"]["compile"], COLD_GOAL,
                                 False, "s"))
    targets.append(common.target("compile time, warm", ct["warm"]["compile"], WARM_GOAL,
                                 False, "s"))
    notes.append(f"compile: cold {ct['cold']['backend']}; warm {ct['warm']['backend']}")
    missing = {"torch.compile": "measured by bench.compile"}
    if chain_jax(1) is None:
        missing[JAX] = "not installed"
    return common.result("cbackend", "the C backend (issue 14)", ENGINES, missing,
                         rows, notes, targets=targets)


if __name__ == "__main__":
    print(common.render(run(quick="--quick" in sys.argv)))
