"""The campaigns: each takes a seed, builds one random program from it, runs it two ways,
and returns None when they agree or a description of how they differ."""

from __future__ import annotations

import random
import warnings
from typing import Any, Callable

import numpy as np

import tracegrad as tg

from . import programs as P


def _differ(got: list, want: list, tol: float) -> str | None:
    """Where two lists of arrays (or None) differ beyond ``tol`` (relative to each expected
    array's largest magnitude), or None."""
    for k, (g, w) in enumerate(zip(got, want)):
        if (g is None) != (w is None):
            return f"item {k}: {'None' if g is None else 'a value'} where eager has " \
                   f"{'None' if w is None else 'a value'}"
        if g is None:
            continue
        scale = max(1.0, float(np.nanmax(np.abs(w)))) if w.size else 1.0
        if g.shape != w.shape or not np.allclose(g, w, rtol=tol, atol=tol * scale,
                                                  equal_nan=True):
            err = np.nanmax(np.abs(g - w)) if g.shape == w.shape else "shape"
            return f"item {k} differs (max |difference| {err})"
    return None


def _compiled(fn: Callable, backend: str, call: Callable, want: list, tol: float,
              repeats: int = 2) -> str | None:
    compiled = tg.compile(fn, backend=backend)
    for _ in range(repeats):
        try:
            got = call(compiled)
        except tg.TraceError:
            return None  # (allowed: a compiled function may refuse, never differ)
        except Exception as e:  # noqa: BLE001 (any other error is a finding)
            return f"{backend}: {type(e).__name__}: {str(e)[:300]}"
        why = _differ(got, want, tol)
        if why:
            return f"{backend}: {why}"
    return None


def rows(seed: int) -> str | None:
    r = random.Random(seed)
    shape = r.choice(P.ROW_SHAPES)
    dtype = r.choice([np.float32, np.float64])
    layout = r.choice(["C", "transposed", "every other column"])
    ops = [(r.choice(P.ROW_OPS), r.randrange(100), r.randrange(100))
           for _ in range(r.randint(2, 12))]
    n_out = r.randint(1, 3)
    rng = np.random.default_rng(seed)
    x0, w0 = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape[1]).astype(dtype)

    def f(xt: Any, w: Any) -> list:
        x = xt.T if layout == "transposed" else xt[:, ::2] if layout != "C" else xt
        outs = P.row_program(ops, x, w)[-n_out:]
        sum((o * (k + 1.5)).sum() for k, o in enumerate(outs)).backward()
        return [o.detach() for o in outs] + [xt.grad, w.grad]

    def call(fn: Callable) -> list:
        if layout == "transposed":
            xt = np.ascontiguousarray(x0.T)
        elif layout == "C":
            xt = x0
        else:
            xt = np.zeros((shape[0], 2 * shape[1]), dtype)
            xt[:, ::2] = x0
        out = fn(tg.tensor(xt, requires_grad=True), tg.tensor(w0, requires_grad=True))
        return [None if t is None else t.numpy().copy() for t in out]

    want = call(f)
    tol = 1e-9 if dtype == np.float64 and not any(op == "to32" for op, *_ in ops) else 3e-4
    return _compiled(f, "c", call, want, tol) or _compiled(f, "numpy", call, want, tol)


def training(seed: int) -> str | None:
    r = random.Random(seed)
    kinds = [r.choice(P.LAYERS) for _ in range(r.randint(1, 4))]
    optimizer, loss = r.choice(sorted(P.OPTIMIZERS)), r.choice(sorted(P.LOSSES))
    clip, batches = r.random() < 0.5, [r.choice(P.BATCHES) for _ in range(r.randint(3, 6))]
    nets, eager, compiled = P.training_pair(kinds, optimizer, loss, clip, seed)
    rng = np.random.default_rng(seed)
    for k, batch in enumerate(batches):
        x, y = P.training_batch(rng, batch, loss)
        want = eager(x, y).item()
        try:
            got = compiled(x, y).item()
        except tg.TraceError:
            return None
        if not np.isclose(got, want, rtol=1e-4, atol=1e-6):
            return f"step {k} (batch {batch}): loss {got} where eager gives {want}"
        for (name, p), q in zip(nets[0].named_parameters(), nets[1].parameters()):
            if not np.allclose(q.numpy(), p.numpy(), rtol=1e-4, atol=1e-5):
                return f"step {k} (batch {batch}): parameter {name} differs"
    return None


def dynamic(seed: int) -> str | None:
    r = random.Random(seed)
    width = r.choice(P.DYNAMIC_WIDTHS)
    dtype = r.choice([np.float32, np.float64])
    ops = [(r.choice(sorted(P.DYNAMIC)), r.randrange(100), r.randrange(100), r.random())
           for _ in range(r.randint(2, 10))]
    sizes = [r.choice(P.DYNAMIC_BATCHES) for _ in range(5)]
    rng = np.random.default_rng(seed)
    W0 = (rng.standard_normal((width, width)) * 0.3).astype(dtype)
    b0 = rng.standard_normal(width).astype(dtype)

    def f(x: Any, W: Any, b: Any) -> list:
        o1, o2 = P.dynamic_program(ops, x, W, b)
        ((o1 * o1).sum() + o2.sum() * 0.5).backward()
        return [o1.detach(), o2.detach(), x.grad, W.grad, b.grad]

    def call_at(batch: int) -> Callable:
        def call(fn: Callable) -> list:
            x = np.random.default_rng(seed * 100 + batch).standard_normal((batch, width))
            out = fn(tg.tensor(x.astype(dtype), requires_grad=True),
                     tg.tensor(W0, requires_grad=True), tg.tensor(b0, requires_grad=True))
            return [None if t is None else t.numpy().copy() for t in out]
        return call

    tol = 3e-4 if dtype == np.float32 else 1e-9
    compiled = {backend: tg.compile(f, backend=backend) for backend in ("c", "numpy")}
    for batch in sizes:
        want = call_at(batch)(f)
        for backend, fn in compiled.items():
            try:
                got = call_at(batch)(fn)
            except tg.TraceError:
                return None
            except Exception as e:  # noqa: BLE001
                return f"{backend}, batch {batch} of {sizes}: {type(e).__name__}: {e}"[:400]
            why = _differ(got, want, tol)
            if why:
                return f"{backend}, batch {batch} of {sizes}: {why}"
    return None


def state(seed: int) -> str | None:
    """A training step compiled against eager while the loop changes what it reads between
    calls (`programs.STATE_EDITS`: freezing, the optimizer's state and parameter lists,
    train/eval, learning rates, .grad, weights changed in place or replaced, int arguments,
    the batch size, a call that raises): the loss, every parameter, buffer and .grad after
    each call."""
    r = random.Random(seed)
    kind, optimizer = r.choice(P.STATE_LAYERS), r.choice(sorted(P.OPTIMIZERS))
    backend = r.choice(["c", "numpy"])
    edits = [r.sample(sorted(P.STATE_EDITS), r.randint(0, 2)) for _ in range(r.randint(4, 8))]
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((9, 5)).astype("float32") for _ in edits]
    runs = []
    for compiled in (False, True):
        tg.manual_seed(seed)
        net = P.state_net(kind)
        opt = P.OPTIMIZERS[optimizer](net.parameters())
        step = P.state_step(net, opt)
        run = tg.compile(step, backend=backend) if compiled else step
        cfg, seen = {"k": 1, "zero": True, "batch": 4}, []
        for i, names in enumerate(edits):
            cfg["fail"] = False
            for name in names:
                P.STATE_EDITS[name](net, opt, cfg)
            tg.manual_seed(seed + i)  # (the same dropout masks)
            try:
                loss = [run(tg.tensor(xs[i][:cfg["batch"]]), cfg["k"], cfg["zero"],
                            cfg["fail"]).detach().numpy().copy()]
            except tg.TraceError:
                return None
            except Exception as e:  # noqa: BLE001 (eager raising too is compared)
                seen.append(f"{type(e).__name__}")
                if not isinstance(e, ValueError):
                    break
                loss = []
            seen.append(loss + [t.numpy().copy() for t in net.state_dict().values()]
                        + [None if p.grad is None else p.grad.numpy().copy()
                           for p in net.parameters()])
        runs.append(seen)
    if len(runs[0]) != len(runs[1]):
        return f"{backend}, {kind}, {optimizer}: eager made {len(runs[0])} records, " \
               f"compiled {len(runs[1])}, after {edits}"
    for i, (want, got) in enumerate(zip(*runs)):
        if isinstance(want, str) or isinstance(got, str):
            if want != got:
                said = [w if isinstance(w, str) else "a result" for w in (want, got)]
                return f"record {i} after {edits}: eager {said[0]}, compiled {said[1]}"
            continue
        why = _differ(got, want, 1e-4) if len(got) == len(want) else "a different count"
        if why:
            return f"{backend}, {kind}, {optimizer}, record {i} after {edits}: {why}"
    return None


def _views_program(lib: Any, seed: int, x0: np.ndarray) -> tuple:
    """Eight random views, in-place and out-of-place ops from ``x0`` in ``lib`` (torch or
    tracegrad): (what each op did, the tensors made, the loss over them, x)."""
    r = random.Random(seed)
    x = lib.tensor(x0, requires_grad=True)
    pool, log = [x * 1.0], []
    for _ in range(8):
        kind = r.choice(["view", "view", "in place", "in place", "out of place"])
        t = pool[r.randrange(len(pool))]
        ops = P.view_ops(t, r) if kind == "view" else \
            P.in_place_ops(t, r, pool) if kind == "in place" else P.OUT_OF_PLACE
        name, op = ops[r.randrange(len(ops))]
        try:
            made = op(t)
            log.append((name, "ok"))
            if kind != "in place":
                pool.append(made)
        except Exception:  # noqa: BLE001 (both libraries must raise alike)
            log.append((name, "raised"))
    loss = sum((t * (j + 1)).sum() for j, t in enumerate(pool) if t.requires_grad)
    return log, pool, loss, x


_DETACHING = {"detach", "add_sum_"}  # (ops of `programs` that cut the graph)


def views(seed: int) -> str | None:
    """Eager views and in-place ops against torch (float64, a 2-d or 3-d tensor). Where
    tracegrad refuses a backward torch runs, that is allowed (docs/tensors.md lists the
    patterns); where it runs one torch refuses, its gradient must match finite
    differences of its own forward."""
    try:
        import torch
    except ImportError:
        return None
    shape = [(3, 4), (4, 3), (2, 3, 4)][seed % 3]
    x0 = np.random.default_rng(seed).normal(size=shape)
    runs = {}
    for lib in (torch, tg):
        log, pool, loss, x = _views_program(lib, seed, x0)
        try:
            loss.backward()
            grad = None if x.grad is None else np.array(x.grad.numpy())
        except Exception:  # noqa: BLE001
            grad = "raised"
        runs[lib.__name__] = (log, [np.array(t.detach().numpy()) for t in pool], grad)
    (log_t, values_t, grad_t), (log_g, values_g, grad_g) = runs["torch"], runs["tracegrad"]
    if log_t != log_g:
        first = next(k for k, (a, b) in enumerate(zip(log_t, log_g)) if a != b)
        if log_g[first] in (("set_all", "ok"), ("set_first", "ok")):
            return None  # (`t[i] = c` where t[i] is expanded: one value for each location,
            # which tracegrad writes and PyTorch refuses, though its t[i].fill_(c) runs)
        return f"ops raise differently: torch {log_t}, tracegrad {log_g}"
    for j, (a, b) in enumerate(zip(values_t, values_g)):
        if a.shape != b.shape or not np.allclose(a, b, atol=1e-9):
            return f"tensor {j} differs after {log_g}"
    if isinstance(grad_g, str):
        return None
    if isinstance(grad_t, str):  # torch refuses: check tracegrad against its own forward
        if grad_g is None or any(name in _DETACHING and what == "ok" for name, what in log_g):
            return None  # (finite differences see through detach(); gradients do not)
        h, fd = 1e-6, np.zeros_like(x0)
        for idx in np.ndindex(x0.shape):
            e = np.zeros_like(x0)
            e[idx] = h
            up, down = (float(_views_program(tg, seed, x0 + s * e)[2].item()) for s in (1, -1))
            fd[idx] = (up - down) / (2 * h)
        err = float(np.abs(grad_g - fd).max()) / max(1.0, float(np.abs(fd).max()))
        return None if err < 1e-5 else \
            f"x.grad off finite differences by {err:.1e} (relative) after {log_g}"
    if (grad_t is None) != (grad_g is None) or grad_t is not None and \
            not np.allclose(grad_t, grad_g, atol=1e-9):
        return f"x.grad differs after {log_g}"
    return None


CAMPAIGNS: dict[str, Callable[[int], str | None]] = {
    "rows": rows, "training": training, "dynamic": dynamic, "views": views, "state": state}


def run(name: str, seed: int) -> str | None:
    """One program of campaign ``name``; a crash of the harness itself is a finding too."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return CAMPAIGNS[name](seed)
        except Exception as e:  # noqa: BLE001
            return f"{type(e).__name__}: {str(e)[:300]}"
