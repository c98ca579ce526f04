"""The tensor engine: `tracegrad.Tensor` eager against plain NumPy, PyTorch eager and friends.

(a) **per-op overhead.** A chain of 1,000 elementwise ops on a (4,) float32 tensor, then
    ``y.sum().backward()``. With 4 numbers per op the arithmetic is nothing; what is measured
    is what an engine spends around each op (dispatch, graph recording, the backward walk).
    Two chains: ``y = y * c + d`` 500 times (mul/add), and ``y = (y * c + d).tanh() + d``
    250 times (mul/add/tanh/add). The NumPy column is the same work written by hand: the
    forward with one ufunc call per op, keeping what the backward needs, and the backward
    written out (``g = g * c`` for a mul, nothing for an add, ``g * (1 - t*t)`` for a tanh).
    micrograd runs 4 scalar ``Value``\\s instead of one (4,) tensor (it has no tanh, so only
    the mul/add chain). Reported: microseconds per op (total / 1,000) and multiples of NumPy.
(b) **MLP training step.** 64-256-256-10, ReLU, cross-entropy, on scikit-learn's digits
    (scaled to [0, 1]), batch 128, float32, plain SGD (lr 0.1). One step is forward, loss,
    zero_grad, backward and update. Every engine starts from the same weights
    (`common.mlp_weights`) and sees the same batches, so they must report the same loss at
    every step (checked and printed). NumPy is the step written by hand, the way a careful
    person writes it (BLAS matmuls, the softmax/cross-entropy gradient in closed form, in-place
    updates). PyTorch runs with ``torch.set_num_threads(1)``.

Optional peers (HIPS ``autograd``, ``jax`` without jit, ``tinygrad``) run when installed; an
optional peer that raises is reported as failed, not a crash.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable

import numpy as np

from bench import common

# The issue's goals ("Tensor engine").
PER_OP_GOAL = 5.0  # tracegrad's 1,000-op chain at most 5x the hand-written NumPy
STEP_GOAL = 1.3  # tracegrad's MLP training step at most 1.3x the hand-written NumPy step

N_OPS = 1000
SIZES = [64, 256, 256, 10]
BATCH = 128
LR = 0.1

# The chain's data: c near 1 and d small keep 500 steps finite and the gradient O(1).
X0 = np.array([0.5, -0.3, 0.8, 0.1], dtype=np.float32)
C = np.array([0.999, 1.001, 0.998, 1.0005], dtype=np.float32)
D = np.array([0.001, -0.002, 0.003, 0.0005], dtype=np.float32)

# name -> (ops per repetition, uses tanh)
CHAINS = {"mul/add": (2, False), "mul/add/tanh/add": (4, True)}

OPTIONAL = ("autograd", "jax", "tinygrad")

# A chain step returns (forward seconds or None, backward seconds or None, gradient of x).
ChainStep = Callable[[int], tuple[Any, Any, np.ndarray]]


def peers() -> tuple[dict[str, Any], dict[str, str]]:
    """Installed peers by name (their top module), and the missing ones with a pip hint."""
    found: dict[str, Any] = {"numpy": np}
    missing: dict[str, str] = {}
    for name in ("torch", "micrograd", *OPTIONAL):
        module = common.import_peer(name)
        if module is None:
            missing[name] = common.missing_note(name)
        else:
            found[name] = module
    return found, missing


def _guarded(name: str, step: Callable[[int], Any], failed: dict[str, str]) -> Callable:
    """An optional peer's step that records its first exception instead of raising."""

    def run(k: int) -> Any:
        if name in failed:
            return None
        try:
            return step(k)
        except Exception as error:  # an untested peer version: report, don't crash
            failed[name] = f"failed: {type(error).__name__}: {str(error)[:200]}"
            return None

    return run


# --------------------------------------------------------------------------------------
# (a) the chain, one function per engine


def chain_tracegrad(reps: int, tanh: bool) -> ChainStep:
    import tracegrad as tg

    c, d = tg.tensor(C), tg.tensor(D)

    def step(k: int) -> tuple:
        t0 = time.perf_counter()
        x = tg.tensor(X0, requires_grad=True)
        y = x
        if tanh:
            for _ in range(reps):
                y = (y * c + d).tanh() + d
        else:
            for _ in range(reps):
                y = y * c + d
        loss = y.sum()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, x.grad.numpy()

    return step


def chain_numpy(reps: int, tanh: bool) -> ChainStep:
    c, d = C, D
    multiply, add, tanh_ = np.multiply, np.add, np.tanh

    def step(k: int) -> tuple:
        t0 = time.perf_counter()
        y = X0.copy()
        saved = []
        if tanh:
            for _ in range(reps):
                t = tanh_(add(multiply(y, c), d))
                saved.append(t)
                y = add(t, d)
        else:
            for _ in range(reps):
                y = add(multiply(y, c), d)
        loss = y.sum()
        t1 = time.perf_counter()
        g = np.ones_like(y)
        if tanh:
            for t in reversed(saved):
                g = multiply(multiply(g, 1 - t * t), c)
        else:
            for _ in range(reps):
                g = multiply(g, c)
        t2 = time.perf_counter()
        assert np.isfinite(loss)
        return t1 - t0, t2 - t1, g

    return step


def chain_torch(reps: int, tanh: bool) -> ChainStep:
    import torch

    c, d = torch.from_numpy(C.copy()), torch.from_numpy(D.copy())

    def step(k: int) -> tuple:
        t0 = time.perf_counter()
        x = torch.tensor(X0, requires_grad=True)
        y = x
        if tanh:
            for _ in range(reps):
                y = (y * c + d).tanh() + d
        else:
            for _ in range(reps):
                y = y * c + d
        loss = y.sum()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, x.grad.numpy()

    return step


def chain_micrograd(reps: int, tanh: bool) -> ChainStep | None:
    if tanh:
        return None  # micrograd's Value has no tanh
    from micrograd.engine import Value

    cs, ds = C.tolist(), D.tolist()

    def step(k: int) -> tuple:
        t0 = time.perf_counter()
        xs = [Value(v) for v in X0.tolist()]
        ys = xs
        for _ in range(reps):
            ys = [y * ci + di for y, ci, di in zip(ys, cs, ds)]
        loss = sum(ys)
        t1 = time.perf_counter()
        # micrograd's build_topo recurses once per level: ~2 levels per op.
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 4 * N_OPS + 1000))
        try:
            loss.backward()
        finally:
            sys.setrecursionlimit(limit)
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, np.array([x.grad for x in xs], dtype=np.float32)

    return step


def chain_autograd(reps: int, tanh: bool) -> ChainStep:
    import autograd
    import autograd.numpy as anp

    def f(x: Any) -> Any:
        y = x
        if tanh:
            for _ in range(reps):
                y = anp.tanh(y * C + D) + D
        else:
            for _ in range(reps):
                y = y * C + D
        return anp.sum(y)

    grad_f = autograd.grad(f)

    def step(k: int) -> tuple:
        return None, None, np.asarray(grad_f(X0.copy()))

    return step


def chain_jax(reps: int, tanh: bool) -> ChainStep:
    import jax
    import jax.numpy as jnp

    c, d = jnp.asarray(C), jnp.asarray(D)

    def f(x: Any) -> Any:
        y = x
        if tanh:
            for _ in range(reps):
                y = jnp.tanh(y * c + d) + d
        else:
            for _ in range(reps):
                y = y * c + d
        return jnp.sum(y)

    grad_f = jax.grad(f)  # eager: no jit, every op dispatched one by one

    def step(k: int) -> tuple:
        g = grad_f(jnp.asarray(X0))
        return None, None, np.asarray(g.block_until_ready())

    return step


def chain_tinygrad(reps: int, tanh: bool) -> ChainStep:
    from tinygrad import Tensor

    c, d = Tensor(C.copy()), Tensor(D.copy())

    def step(k: int) -> tuple:
        x = Tensor(X0.copy(), requires_grad=True)
        y = x
        if tanh:
            for _ in range(reps):
                y = (y * c + d).tanh() + d
        else:
            for _ in range(reps):
                y = y * c + d
        y.sum().backward()
        return None, None, x.grad.numpy()

    return step


CHAIN_IMPLS = {
    "tracegrad": chain_tracegrad, "numpy": chain_numpy, "torch": chain_torch,
    "micrograd": chain_micrograd, "autograd": chain_autograd, "jax": chain_jax,
    "tinygrad": chain_tinygrad,
}


def bench_chain(names: list[str], reps: int, tanh: bool, warmup: int, repeats: int,
                failed: dict[str, str]) -> dict[str, Any]:
    steps = {}
    for name in names:
        if name in OPTIONAL:
            try:
                step = CHAIN_IMPLS[name](reps, tanh)
            except Exception as error:
                failed[name] = f"failed: {type(error).__name__}: {str(error)[:200]}"
                continue
            steps[name] = _guarded(name, step, failed)
        else:
            step = CHAIN_IMPLS[name](reps, tanh)
            if step is not None:
                steps[name] = step
    timings = common.interleaved(steps, warmup, repeats)
    out: dict[str, Any] = {}
    for name, t in timings.items():
        if name in failed:
            continue
        outputs = t["outputs"][warmup:]
        fwd = [o[0] for o in outputs]
        bwd = [o[1] for o in outputs]
        out[name] = {
            "seconds": t["seconds"],
            "cpu_seconds": t["cpu_seconds"],
            "forward": fwd if fwd[0] is not None else None,
            "backward": bwd if bwd[0] is not None else None,
            "grad": np.asarray(t["outputs"][-1][2], dtype=np.float64).tolist(),
        }
    return out


# --------------------------------------------------------------------------------------
# (b) the MLP training step, one function per engine


def batches(X: np.ndarray, y: np.ndarray, count: int, seed: int = 0) -> list[tuple]:
    """``count`` batches of BATCH rows, drawn without replacement epoch by epoch."""
    rng = np.random.default_rng(seed)
    out: list[tuple] = []
    while len(out) < count:
        order = rng.permutation(len(X))
        for i in range(0, len(X) - BATCH + 1, BATCH):
            idx = order[i:i + BATCH]
            out.append((np.ascontiguousarray(X[idx]), np.ascontiguousarray(y[idx])))
    return out[:count]


def mlp_tracegrad(weights: list, data: list) -> Callable[[int], float]:
    import tracegrad as tg

    layers: list[Any] = []
    for w, _ in weights:
        layers += [tg.nn.Linear(w.shape[1], w.shape[0]), tg.nn.ReLU()]
    model = tg.nn.Sequential(*layers[:-1])
    state = {}
    for i, (w, b) in enumerate(weights):
        state[f"{2 * i}.weight"], state[f"{2 * i}.bias"] = tg.tensor(w), tg.tensor(b)
    model.load_state_dict(state)
    opt = tg.optim.SGD(model.parameters(), lr=LR)
    cross_entropy = tg.nn.functional.cross_entropy
    batches = [(tg.from_numpy(x), tg.from_numpy(y)) for x, y in data]

    def step(k: int) -> float:
        x, y = batches[k]
        loss = cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def mlp_numpy(weights: list, data: list) -> Callable[[int], float]:
    params = [(w.copy(), b.copy()) for w, b in weights]
    (W1, b1), (W2, b2), (W3, b3) = params
    rows = np.arange(BATCH)

    def step(k: int) -> float:
        x, y = data[k]
        n = x.shape[0]
        # forward
        h1 = x @ W1.T
        h1 += b1
        np.maximum(h1, 0, out=h1)
        h2 = h1 @ W2.T
        h2 += b2
        np.maximum(h2, 0, out=h2)
        z = h2 @ W3.T
        z += b3
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        loss = np.log(s).mean() - z[rows, y].mean()
        # backward: d loss / d logits = (softmax - onehot) / n
        g = e
        g /= s
        g[rows, y] -= 1
        g /= n
        gW3, gb3 = g.T @ h2, g.sum(axis=0)
        g2 = g @ W3
        g2 *= h2 > 0
        gW2, gb2 = g2.T @ h1, g2.sum(axis=0)
        g1 = g2 @ W2
        g1 *= h1 > 0
        gW1, gb1 = g1.T @ x, g1.sum(axis=0)
        # SGD, in place
        for p, gp in ((W1, gW1), (b1, gb1), (W2, gW2), (b2, gb2), (W3, gW3), (b3, gb3)):
            gp *= LR
            p -= gp
        return float(loss)

    return step


def mlp_torch(weights: list, data: list) -> Callable[[int], float]:
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
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    cross_entropy = torch.nn.functional.cross_entropy
    batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in data]

    def step(k: int) -> float:
        x, y = batches[k]
        loss = cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def _functional_mlp(xp: Any, params: list, x: Any, y: Any) -> Any:
    """The loss, written once for the functional peers (HIPS autograd, JAX)."""
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w.T + b
        if i < len(params) - 1:
            h = xp.maximum(h, 0)
    z = h - xp.max(h, axis=1, keepdims=True)
    logp = z - xp.log(xp.sum(xp.exp(z), axis=1, keepdims=True))
    onehot = (y[:, None] == np.arange(SIZES[-1])[None, :]).astype(np.float32)
    return -xp.sum(logp * onehot) / x.shape[0]


def mlp_autograd(weights: list, data: list) -> Callable[[int], float]:
    import autograd
    import autograd.numpy as anp

    params = [(w.copy(), b.copy()) for w, b in weights]
    value_and_grad = autograd.value_and_grad(lambda p, x, y: _functional_mlp(anp, p, x, y))

    def step(k: int) -> float:
        nonlocal params
        x, y = data[k]
        loss, grads = value_and_grad(params, x, y)
        params = [(w - LR * gw, b - LR * gb) for (w, b), (gw, gb) in zip(params, grads)]
        return float(loss)

    return step


def mlp_jax(weights: list, data: list) -> Callable[[int], float]:
    import jax
    import jax.numpy as jnp

    params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in weights]
    value_and_grad = jax.value_and_grad(lambda p, x, y: _functional_mlp(jnp, p, x, y))
    batches = [(jnp.asarray(x), np.asarray(y)) for x, y in data]

    def step(k: int) -> float:
        nonlocal params
        x, y = batches[k]
        loss, grads = value_and_grad(params, x, y)
        params = [(w - LR * gw, b - LR * gb) for (w, b), (gw, gb) in zip(params, grads)]
        return float(loss)

    return step


def mlp_tinygrad(weights: list, data: list) -> Callable[[int], float]:
    from tinygrad import Tensor
    from tinygrad.nn.optim import SGD

    params = [(Tensor(w.copy(), requires_grad=True), Tensor(b.copy(), requires_grad=True))
              for w, b in weights]
    opt = SGD([p for pair in params for p in pair], lr=LR)
    batches = [(Tensor(x), Tensor(y)) for x, y in data]

    def step(k: int) -> float:
        x, y = batches[k]
        with Tensor.train():
            h = x
            for i, (w, b) in enumerate(params):
                h = h.linear(w.T, b)
                if i < len(params) - 1:
                    h = h.relu()
            loss = h.sparse_categorical_crossentropy(y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return loss.item()

    return step


MLP_IMPLS = {
    "tracegrad": mlp_tracegrad, "numpy": mlp_numpy, "torch": mlp_torch,
    "autograd": mlp_autograd, "jax": mlp_jax, "tinygrad": mlp_tinygrad,
}


def bench_mlp(names: list[str], warmup: int, repeats: int,
              failed: dict[str, str]) -> dict[str, Any]:
    X, y = common.digits()
    weights = common.mlp_weights(SIZES, seed=0)
    data = batches(X, y, warmup + repeats, seed=0)
    steps = {}
    for name in names:
        if name not in MLP_IMPLS:
            continue
        if name in OPTIONAL:
            try:
                step = MLP_IMPLS[name](weights, data)
            except Exception as error:
                failed[name] = f"failed: {type(error).__name__}: {str(error)[:200]}"
                continue
            steps[name] = _guarded(name, step, failed)
        else:
            steps[name] = MLP_IMPLS[name](weights, data)
    timings = common.interleaved(steps, warmup, repeats)
    timings = {n: t for n, t in timings.items() if n not in failed}
    losses = {name: t.pop("outputs") for name, t in timings.items()}
    return {"timings": timings, "losses": losses}


# --------------------------------------------------------------------------------------


def run(quick: bool = False) -> dict[str, Any]:
    """Measure (a) and (b) for tracegrad, NumPy and every installed peer.

    ``quick``: 1 warm-up and 2 timed runs of everything (for the smoke test).
    """
    chain_warmup, chain_repeats = (1, 2) if quick else (5, 41)
    mlp_warmup, mlp_repeats = (1, 2) if quick else (5, 61)
    found, missing = peers()
    failed: dict[str, str] = {}
    names = ["tracegrad", *found]
    rows, notes, extra = [], [], []
    details: dict[str, Any] = {"chain": {}, "n_ops": N_OPS}

    def per_engine(data: dict, fn: Callable[[Any], float | None]) -> dict[str, float | None]:
        return {name: fn(data[name]) if name in data else None for name in names}

    def times_numpy(values: dict[str, float | None]) -> dict[str, float | None]:
        base = values["numpy"]
        return {n: (v / base if v is not None else None) for n, v in values.items()}

    # (a)
    us = 1e6 / N_OPS  # seconds per run -> microseconds per op
    chain_ratio = {}
    for label, (ops_per_rep, tanh) in CHAINS.items():
        reps = N_OPS // ops_per_rep
        res = bench_chain(names, reps, tanh, chain_warmup, chain_repeats, failed)
        details["chain"][label] = res
        total = per_engine(res, lambda r: common.median(r["seconds"]) * us)
        fwd = per_engine(res, lambda r: r["forward"] and common.median(r["forward"]) * us)
        bwd = per_engine(res, lambda r: r["backward"] and common.median(r["backward"]) * us)
        rows.append(common.row(f"chain {label}: fwd+bwd per op", "us", total))
        rows.append(common.row(f"chain {label}:   forward per op", "us", fwd))
        rows.append(common.row(f"chain {label}:   backward per op", "us", bwd))
        rows.append(common.row(f"chain {label}: fwd+bwd, multiple of NumPy", "x",
                               times_numpy(total), ratio=False))
        cpu = per_engine(res, lambda r: common.median(r["cpu_seconds"]) * us)
        rows.append(common.row(f"chain {label}: fwd+bwd per op, CPU time", "us", cpu))
        rows.append(common.row(f"chain {label}: CPU time, multiple of NumPy", "x",
                               times_numpy(cpu), ratio=False))
        chain_ratio[label] = total["tracegrad"] / total["numpy"]
        reference = np.array(res["numpy"]["grad"])
        diffs = {n: float(np.max(np.abs(np.array(r["grad"]) - reference)
                                 / (np.abs(reference) + 1e-6)))
                 for n, r in res.items() if n != "numpy"}
        details["chain_grad_rel_diff"] = {**details.get("chain_grad_rel_diff", {}),
                                          label: diffs}
        notes.append(
            f"chain {label}: fwd+bwd us/op, median [min .. max] of {chain_repeats}: "
            + "; ".join(f"{n} {common.spread(r['seconds'], us)}" for n, r in res.items())
            + ". Max relative difference of x.grad to NumPy's: "
            + ", ".join(f"{n} {d:.1e}" for n, d in diffs.items())
        )
    notes.append(
        "wall clock vs CPU time: the targets use wall-clock medians; on a busy machine the "
        "scheduler preempts some runs for a whole time slice (a few ms), which the wall clock "
        "counts and this process's CPU time (time.process_time) does not"
    )
    notes.append(
        f"chain: {N_OPS:,} ops per run, a (4,) float32 tensor; micrograd runs 4 scalar Values "
        "per op (4,000 Value ops); engines interleaved run by run in one process, a full "
        "gc.collect() after every run (not timed); 'forward' includes creating x and the sum"
    )

    # (b)
    step_ratio = None
    if common.import_peer("sklearn.datasets") is None:
        notes.append("MLP step skipped: scikit-learn " + common.missing_note("scikit-learn"))
    else:
        m = bench_mlp(names, mlp_warmup, mlp_repeats, failed)
        t = m["timings"]
        med = per_engine(t, lambda r: common.median(r["seconds"]))
        rows.append(common.row(f"MLP step {'-'.join(map(str, SIZES))} batch {BATCH}", "s", med))
        rows.append(common.row("MLP step: multiple of NumPy", "x", times_numpy(med),
                               ratio=False))
        cpu = per_engine(t, lambda r: common.median(r["cpu_seconds"]))
        rows.append(common.row("MLP step, CPU time", "s", cpu))
        rows.append(common.row("MLP step, CPU time: multiple of NumPy", "x", times_numpy(cpu),
                               ratio=False))
        step_ratio = med["tracegrad"] / med["numpy"]
        notes.append(
            f"MLP step: ms, median [min .. max] of {mlp_repeats}: "
            + "; ".join(f"{n} {common.spread(r['seconds'], 1e3)}" for n, r in t.items())
        )
        notes.append(
            "MLP step: forward + cross-entropy + zero_grad + backward + SGD update; float32, "
            "one BLAS thread, torch.set_num_threads(1); same initial weights and batches"
        )
        extra.append(loss_table(m["losses"], mlp_warmup))
        m["losses_agree"] = losses_agree(m["losses"])
        details["mlp"] = m

    for name, why in failed.items():
        missing[name] = why
    measured = [n for n in names if any(r["values"].get(n) is not None for r in rows)]
    return {
        "name": "tensor",
        "title": "tensor engine: tracegrad.Tensor eager vs hand-written NumPy and peers",
        "engines": measured,
        "missing": missing,
        "rows": rows,
        "notes": notes,
        "extra": extra,
        "targets": [
            *(common.target(f"chain {label} fwd+bwd, multiple of NumPy", ratio, PER_OP_GOAL,
                            higher_is_better=False, unit="x")
              for label, ratio in chain_ratio.items()),
            common.target("MLP step, multiple of NumPy", step_ratio, STEP_GOAL,
                          higher_is_better=False, unit="x"),
        ],
        "details": details,
    }


LOSS_RTOL = 1e-4  # float32, a few dozen SGD steps apart from the same start


def losses_agree(losses: dict[str, list[float]]) -> bool:
    ours = losses["tracegrad"]
    return all(
        math.isclose(a, b, rel_tol=LOSS_RTOL)
        for name, theirs in losses.items() if name != "tracegrad"
        for a, b in zip(ours, theirs, strict=True)
    )


def loss_table(losses: dict[str, list[float]], warmup: int) -> str:
    """Loss per step and engine (the first steps and the last), and the largest gap."""
    names = list(losses)
    peers_ = names[1:]
    n = len(losses["tracegrad"])
    shown = list(range(n)) if n <= 6 else [0, 1, 2, n - 2, n - 1]
    headers = ["step"] + [f"{name} loss" for name in names] + [
        f"max |{p} - tracegrad|" for p in peers_]
    lines = []
    for k in shown:
        line = [f"{k}{' (warm-up)' if k < warmup else ''}"]
        line += [f"{losses[name][k]:.7f}" for name in names]
        line += [f"{abs(losses[p][k] - losses['tracegrad'][k]):.1e}" for p in peers_]
        lines.append(line)
    worst = ["all steps", *([""] * len(names))] + [
        f"{max(abs(a - b) for a, b in zip(losses[p], losses['tracegrad'])):.1e}"
        for p in peers_]
    lines.append(worst)
    table = common.format_table(headers, lines, set(range(1, len(headers))))
    verdict = "agree" if losses_agree(losses) else "DISAGREE"
    return (f"MLP step losses ({verdict}, rel. tolerance {LOSS_RTOL:g}; "
            f"{n} steps on the same batches):\n" + table)
