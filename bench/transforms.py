"""Forward mode, Jacobians and Hessians (issue 16).

(a) ``tg.jvp`` of an MLP's forward pass against the forward pass alone, eager and compiled
    (goals: at most 3x eager, at most 2x compiled);
(b) a tall Jacobian (R^10 -> R^10000) and a wide one (R^10000 -> R^10), each by
    ``tg.jacfwd``, ``tg.jacrev`` and a Python loop of ``tg.grad`` calls, one per output
    (goal: the right mode beats the other and the loop, on each shape);
(c) ``tg.hessian`` of a 200-parameter tanh MLP's loss against ``torch.func.hessian``
    (goal: the same matrix, at most 2x torch's time).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from bench import common

ENGINES = ["tracegrad", "torch"]


def _median(timings: dict, name: str) -> float:
    return common.median(timings[name]["seconds"])


# --------------------------------------------------------------------------------------
# (a) jvp of an MLP


def mlp_jvp(quick: bool) -> dict:
    import tracegrad as tg

    rng = np.random.default_rng(0)
    batch, sizes = (64, (32, 64, 10)) if quick else (256, (64, 256, 256, 10))
    ws = [tg.tensor((rng.standard_normal((o, i)) / np.sqrt(i)).astype(np.float32))
          for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [tg.tensor(np.zeros(o, dtype=np.float32)) for o in sizes[1:]]
    x = tg.tensor(rng.standard_normal((batch, sizes[0])).astype(np.float32))
    v = tg.tensor(rng.standard_normal((batch, sizes[0])).astype(np.float32))

    def forward(x: Any) -> Any:
        h = x
        for k, (w, b) in enumerate(zip(ws, bs)):
            h = tg.nn.functional.linear(h, w, b)
            if k < len(ws) - 1:
                h = h.tanh()
        return h

    def directional(x: Any, v: Any) -> Any:
        return tg.jvp(forward, (x,), (v,))

    compiled_forward, compiled_jvp = tg.compile(forward), tg.compile(directional)
    steps = {
        "forward (eager)": lambda k: forward(x),
        "jvp (eager)": lambda k: directional(x, v),
        "forward (compiled)": lambda k: compiled_forward(x),
        "jvp (compiled)": lambda k: compiled_jvp(x, v),
    }
    repeats = 5 if quick else 50
    timings = common.interleaved(steps, 3, repeats, block=repeats // 5 or 1)
    _, t_eager = timings["jvp (eager)"]["outputs"][-1]
    _, t_comp = timings["jvp (compiled)"]["outputs"][-1]
    agree = float(np.max(np.abs(t_eager.numpy() - t_comp.numpy())))
    return {"timings": timings, "shape": f"batch {batch}, layers {sizes}", "diff": agree}


# --------------------------------------------------------------------------------------
# (b) tall and wide Jacobians


def jacobians(quick: bool) -> dict:
    import tracegrad as tg

    rng = np.random.default_rng(1)
    small, big = 10, (1000 if quick else 10000)
    a = tg.tensor(rng.standard_normal((big, small)) / np.sqrt(small))
    b = tg.tensor(rng.standard_normal((small, big)) / np.sqrt(big))
    x_small = tg.tensor(rng.standard_normal(small))
    x_big = tg.tensor(rng.standard_normal(big))

    def tall(x: Any) -> Any:  # R^10 -> R^big
        return (a @ x.sin()).tanh()

    def wide(x: Any) -> Any:  # R^big -> R^10
        return (b @ x.sin()).tanh()

    def loop(f: Callable, x: Any, n_out: int) -> Any:
        rows = [tg.grad(lambda y, i=i: f(y)[i])(x) for i in range(n_out)]
        return tg.stack(rows)

    steps = {
        "tall: jacfwd": lambda k: tg.jacfwd(tall)(x_small),
        "tall: jacrev": lambda k: tg.jacrev(tall)(x_small),
        "tall: loop of tg.grad": lambda k: loop(tall, x_small, big),
        "wide: jacfwd": lambda k: tg.jacfwd(wide)(x_big),
        "wide: jacrev": lambda k: tg.jacrev(wide)(x_big),
        "wide: loop of tg.grad": lambda k: loop(wide, x_big, small),
    }
    repeats = 2 if quick else 5
    timings = common.interleaved(steps, 1, repeats)
    ref_tall = timings["tall: loop of tg.grad"]["outputs"][-1].numpy()
    ref_wide = timings["wide: loop of tg.grad"]["outputs"][-1].numpy()
    diff = max(float(np.max(np.abs(timings[f"tall: {m}"]["outputs"][-1].numpy() - ref_tall)))
               for m in ("jacfwd", "jacrev"))
    diff = max(diff, *(float(np.max(np.abs(
        timings[f"wide: {m}"]["outputs"][-1].numpy() - ref_wide))) for m in ("jacfwd", "jacrev")))
    return {"timings": timings, "big": big, "diff": diff}


# --------------------------------------------------------------------------------------
# (c) the Hessian of a 200-parameter MLP loss


SIZES = (8, 18, 2)  # 8*18 + 18 + 18*2 + 2 = 200 parameters


def _unpack(lib: Any, theta: Any) -> list:
    out, k = [], 0
    for i, o in zip(SIZES[:-1], SIZES[1:]):
        out.append(theta[k:k + o * i].reshape(o, i))
        k += o * i
        out.append(theta[k:k + o])
        k += o
    return out


def _loss(lib: Any, F: Any, x: Any, y: Any) -> Callable:
    def loss(theta: Any) -> Any:
        w1, b1, w2, b2 = _unpack(lib, theta)
        h = F.linear(x, w1, b1).tanh()
        return ((F.linear(h, w2, b2) - y) ** 2).mean()

    return loss


def hessians(quick: bool) -> dict:
    import tracegrad as tg

    rng = np.random.default_rng(2)
    n = sum(i * o + o for i, o in zip(SIZES[:-1], SIZES[1:]))
    theta = rng.standard_normal(n) * 0.3
    x = rng.standard_normal((32, SIZES[0]))
    y = rng.standard_normal((32, SIZES[-1]))
    ours = _loss(tg, tg.nn.functional, tg.tensor(x), tg.tensor(y))
    steps: dict[str, Callable] = {"tracegrad": lambda k: tg.hessian(ours)(tg.tensor(theta))}
    missing, failed = {}, {}
    torch = common.import_peer("torch")
    if torch is None:
        missing["torch"] = common.missing_note("torch")
    else:
        theirs = _loss(torch, torch.nn.functional, torch.tensor(x), torch.tensor(y))
        steps["torch"] = common.guarded(
            "torch", lambda k: torch.func.hessian(theirs)(torch.tensor(theta)), failed)
    repeats = 3 if quick else 20
    timings = common.interleaved(steps, 2, repeats)
    diff = None
    if "torch" in timings and "torch" not in failed:
        diff = float(np.max(np.abs(timings["tracegrad"]["outputs"][-1].numpy() -
                                   timings["torch"]["outputs"][-1].detach().numpy())))
    return {"timings": timings, "n": n, "diff": diff, "missing": {**missing, **failed}}


# --------------------------------------------------------------------------------------


def run(quick: bool = False) -> dict:
    a, b, c = mlp_jvp(quick), jacobians(quick), hessians(quick)
    ta, tb, tc = a["timings"], b["timings"], c["timings"]
    eager = _median(ta, "jvp (eager)") / _median(ta, "forward (eager)")
    compiled = _median(ta, "jvp (compiled)") / _median(ta, "forward (compiled)")
    rows = [common.row(f"MLP {name} ({a['shape']})", "s", {"tracegrad": _median(ta, name)},
                       ratio=False) for name in ta]
    rows += [common.row(f"Jacobian, {name} (big = {b['big']})", "s",
                        {"tracegrad": _median(tb, name)}, ratio=False) for name in tb]
    torch_h = _median(tc, "torch") if "torch" in tc and "torch" not in c["missing"] else None
    rows.append(common.row(f"hessian of a {c['n']}-parameter tanh MLP loss", "s",
                           {"tracegrad": _median(tc, "tracegrad"), "torch": torch_h}))
    tall_best = min(_median(tb, "tall: jacrev"), _median(tb, "tall: loop of tg.grad"))
    wide_best = min(_median(tb, "wide: jacfwd"), _median(tb, "wide: loop of tg.grad"))
    targets = [
        common.target("jvp / forward, eager", eager, 3.0, False, "x"),
        common.target("jvp / forward, compiled", compiled, 2.0, False, "x"),
        common.target("tall: (best other) / jacfwd", tall_best / _median(tb, "tall: jacfwd"),
                      1.0, True, "x"),
        common.target("wide: (best other) / jacrev", wide_best / _median(tb, "wide: jacrev"),
                      1.0, True, "x"),
        common.target("hessian: tracegrad / torch.func", None if torch_h is None else
                      _median(tc, "tracegrad") / torch_h, 2.0, False, "x"),
    ]
    notes = [
        f"jvp and forward agree eager vs compiled to {a['diff']:.2g}; jacfwd and jacrev "
        f"agree with the loop of tg.grad to {b['diff']:.2g}",
        "hessian: jacfwd(jacrev(loss)), forward over reverse, float64; "
        + (f"max |ours - torch.func.hessian| = {c['diff']:.2g}" if c["diff"] is not None
           else "torch not measured"),
    ]
    details = {"jvp eager vs compiled": a["diff"], "jacobians vs loop": b["diff"],
               "hessian vs torch": c["diff"]}
    return common.result("transforms", "forward mode, Jacobians and Hessians (issue 16)",
                         ENGINES, c["missing"], rows, notes, targets=targets, details=details)
