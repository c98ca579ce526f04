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
    (scaled to [0, 1]), batch 128, float32, plain SGD (lr 0.1). One step is zero_grad,
    forward, loss, backward and update. Every engine starts from the same weights
    (`workloads.mlp_weights`) and sees the same batches, so they must report the same loss at
    every step (checked and printed). NumPy is the step written by hand, the way a careful
    person writes it (BLAS matmuls, the softmax/cross-entropy gradient in closed form, in-place
    updates). PyTorch runs with ``torch.set_num_threads(1)``. Measured twice: in a training
    loop (the engines take turns of `MLP_BLOCK` consecutive steps; the target), and cold
    (each step right after a full ``gc.collect()``, as the chains are run).

Optional peers (HIPS ``autograd``, ``jax`` without jit, ``tinygrad``) run when installed; an
optional peer that raises is reported as failed, not a crash.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

import numpy as np

from bench import common, workloads
from bench.workloads import BATCH, CHAINS, N_OPS, SIZES, X0, C, D, chain

# The issue's goals ("Tensor engine").
PER_OP_GOAL = 5.0  # tracegrad's 1,000-op chain at most 5x the hand-written NumPy
STEP_GOAL = 1.3  # tracegrad's MLP training step at most 1.3x the hand-written NumPy step

LR = 0.1

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


def make_steps(impls: dict[str, Callable], names: list[str], failed: dict[str, str],
               *args: Any) -> dict[str, Callable[[int], Any]]:
    """``impls[name](*args)`` for every engine that has one (and does not return None). An
    optional peer that raises, now or in a later step, is recorded in ``failed``."""
    steps = {}
    for name in names:
        if name not in impls:
            continue
        try:
            step = impls[name](*args)
        except Exception as error:
            if name not in OPTIONAL:
                raise
            failed[name] = common.failure(error)
            continue
        if step is not None:
            steps[name] = common.guarded(name, step, failed) if name in OPTIONAL else step
    return steps


# --------------------------------------------------------------------------------------
# (a) the chain, one function per engine


def chain_tracegrad(reps: int, tanh: bool) -> ChainStep:
    import tracegrad

    return workloads.eager_chain_step(tracegrad, reps, tanh)


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

    return workloads.eager_chain_step(torch, reps, tanh)


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

    grad_f = autograd.grad(lambda x: anp.sum(chain(x, C, D, reps, tanh, anp.tanh)))

    def step(k: int) -> tuple:
        return None, None, np.asarray(grad_f(X0.copy()))

    return step


def chain_jax(reps: int, tanh: bool) -> ChainStep:
    import jax
    import jax.numpy as jnp

    c, d = jnp.asarray(C), jnp.asarray(D)
    # eager: no jit, every op dispatched one by one
    grad_f = jax.grad(lambda x: jnp.sum(chain(x, c, d, reps, tanh, jnp.tanh)))

    def step(k: int) -> tuple:
        g = grad_f(jnp.asarray(X0))
        return None, None, np.asarray(g.block_until_ready())

    return step


def chain_tinygrad(reps: int, tanh: bool) -> ChainStep:
    from tinygrad import Tensor

    c, d = Tensor(C.copy()), Tensor(D.copy())

    def step(k: int) -> tuple:
        x = Tensor(X0.copy(), requires_grad=True)
        chain(x, c, d, reps, tanh).sum().backward()
        return None, None, x.grad.numpy()

    return step


CHAIN_IMPLS = {
    "tracegrad": chain_tracegrad, "numpy": chain_numpy, "torch": chain_torch,
    "micrograd": chain_micrograd, "autograd": chain_autograd, "jax": chain_jax,
    "tinygrad": chain_tinygrad,
}


def bench_chain(names: list[str], reps: int, tanh: bool, warmup: int, repeats: int,
                failed: dict[str, str]) -> dict[str, Any]:
    steps = make_steps(CHAIN_IMPLS, names, failed, reps, tanh)
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


def mlp_tracegrad(weights: list, data: list) -> Callable[[int], float]:
    import tracegrad

    return workloads.sgd_steps(tracegrad, weights, data, LR)[0]


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

    return workloads.sgd_steps(torch, weights, data, LR)[0]


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


def _functional_sgd(value_and_grad: Callable, params: list, data: list) -> Callable:
    """SGD steps for the functional peers: ``value_and_grad(params, x, y)`` of `_functional_mlp`
    and new parameters from every step."""

    def step(k: int) -> float:
        nonlocal params
        x, y = data[k]
        loss, grads = value_and_grad(params, x, y)
        params = [(w - LR * gw, b - LR * gb) for (w, b), (gw, gb) in zip(params, grads)]
        return float(loss)

    return step


def mlp_autograd(weights: list, data: list) -> Callable[[int], float]:
    import autograd
    import autograd.numpy as anp

    value_and_grad = autograd.value_and_grad(lambda p, x, y: _functional_mlp(anp, p, x, y))
    return _functional_sgd(value_and_grad, [(w.copy(), b.copy()) for w, b in weights], data)


def mlp_jax(weights: list, data: list) -> Callable[[int], float]:
    import jax
    import jax.numpy as jnp

    value_and_grad = jax.value_and_grad(lambda p, x, y: _functional_mlp(jnp, p, x, y))
    return _functional_sgd(value_and_grad,
                           [(jnp.asarray(w), jnp.asarray(b)) for w, b in weights],
                           [(jnp.asarray(x), np.asarray(y)) for x, y in data])


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


def bench_mlp(names: list[str], warmup: int, repeats: int, failed: dict[str, str],
              block: int = 1) -> dict[str, Any]:
    """Every engine's training steps from the same weights on the same batches, in turns of
    ``block`` steps (`common.interleaved`)."""
    weights = workloads.mlp_weights(SIZES, seed=0)
    data = workloads.batches(warmup + repeats, seed=0)
    steps = make_steps(MLP_IMPLS, names, failed, weights, data)
    timings = common.interleaved(steps, warmup, repeats, block=block)
    timings = {n: t for n, t in timings.items() if n not in failed}
    losses = {name: t.pop("outputs") for name, t in timings.items()}
    return {"timings": timings, "losses": losses}


# --------------------------------------------------------------------------------------


def run(quick: bool = False) -> dict[str, Any]:
    """Measure (a) and (b) for tracegrad, NumPy and every installed peer.

    ``quick``: 1 warm-up and 2 timed runs of everything (for the smoke test).
    """
    chain_warmup, chain_repeats = (1, 2) if quick else (5, 41)
    # (b) in a training loop: turns of MLP_BLOCK steps per engine; and cold, each step right
    # after a full gc.collect()
    mlp_warmup, mlp_repeats = (2, 4) if quick else (MLP_BLOCK, 20 * MLP_BLOCK)
    cold_warmup, cold_repeats = (1, 2) if quick else (5, 41)
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
        m = bench_mlp(names, mlp_warmup, mlp_repeats, failed, block=2 if quick else MLP_BLOCK)
        t = m["timings"]
        med = per_engine(t, lambda r: common.median(r["seconds"]))
        rows.append(common.row(f"MLP step {'-'.join(map(str, SIZES))} batch {BATCH}, "
                               f"in a training loop", "s", med))
        rows.append(common.row("MLP step: multiple of NumPy", "x", times_numpy(med),
                               ratio=False))
        cpu = per_engine(t, lambda r: common.median(r["cpu_seconds"]))
        rows.append(common.row("MLP step, CPU time", "s", cpu))
        rows.append(common.row("MLP step, CPU time: multiple of NumPy", "x", times_numpy(cpu),
                               ratio=False))
        step_ratio = med["tracegrad"] / med["numpy"]
        cold = bench_mlp(names, cold_warmup, cold_repeats, failed)
        cold_med = per_engine(cold["timings"], lambda r: common.median(r["seconds"]))
        rows.append(common.row("MLP step, cold (after a full gc.collect)", "s", cold_med))
        rows.append(common.row("MLP step, cold: multiple of NumPy", "x", times_numpy(cold_med),
                               ratio=False))
        notes.append(
            f"MLP step in a training loop: ms, median [min .. max] of {mlp_repeats}: "
            + "; ".join(f"{n} {common.spread(r['seconds'], 1e3)}" for n, r in t.items())
        )
        notes.append(
            f"MLP step, cold: ms, median [min .. max] of {cold_repeats}: "
            + "; ".join(f"{n} {common.spread(r['seconds'], 1e3)}"
                        for n, r in cold["timings"].items())
        )
        notes.append(
            "MLP step: forward + cross-entropy + zero_grad + backward + SGD update; float32, "
            "one BLAS thread, torch.set_num_threads(1); same initial weights and batches. "
            f"In a training loop (the target): the engines take turns of {MLP_BLOCK} "
            "consecutive steps, a full gc.collect() (not timed) between turns. Cold: turns "
            "of one step, each right after a full gc.collect(), which walks every object of "
            "the process and leaves the caches cold; an engine that runs more Python code per "
            "step loses more there"
        )
        extra.append(loss_table(m["losses"], mlp_warmup))
        m["losses_agree"] = common.losses_agree(m["losses"], LOSS_RTOL, LOSS_ATOL) and \
            common.losses_agree(cold["losses"], LOSS_RTOL, LOSS_ATOL)
        m["cold_timings"] = cold["timings"]
        details["mlp"] = m

    for name, why in failed.items():
        missing[name] = why
    measured = [n for n in names if any(r["values"].get(n) is not None for r in rows)]
    targets = [
        *(common.target(f"chain {label} fwd+bwd, multiple of NumPy", ratio, PER_OP_GOAL,
                        higher_is_better=False, unit="x")
          for label, ratio in chain_ratio.items()),
        common.target("MLP step in a training loop, multiple of NumPy", step_ratio, STEP_GOAL,
                      higher_is_better=False, unit="x"),
    ]
    title = "tensor engine: tracegrad.Tensor eager vs hand-written NumPy and peers"
    return common.result("tensor", title, measured, missing, rows, notes, extra, targets, details)


# float32, a few hundred SGD steps from the same start: PyTorch's own BLAS sums in another
# order, and its losses drift apart by some 1e-5 (NumPy's and tracegrad's by 1e-7)
LOSS_RTOL, LOSS_ATOL = 1e-4, 2e-4
MLP_BLOCK = 10  # steps per turn in the training-loop measurement


def loss_table(losses: dict[str, list[float]], warmup: int) -> str:
    """Loss per step and engine (the first steps and the last), and the largest gap."""
    n = len(losses["tracegrad"])
    table = common.loss_table(losses, warmup, gap="max |{} - tracegrad|", decimals=7,
                              shown=range(n) if n <= 6 else [0, 1, 2, n - 2, n - 1],
                              total="all steps")
    verdict = "agree" if common.losses_agree(losses, LOSS_RTOL, LOSS_ATOL) else "DISAGREE"
    return (f"MLP step losses ({verdict}, tolerance rel. {LOSS_RTOL:g} or abs. {LOSS_ATOL:g}; "
            f"{n} steps on the same batches):\n" + table)
