"""The vocabularies random programs are drawn from (one place: `fuzz.campaigns` and the
hypothesis tests in tests/test_compile_random_steps.py both use them)."""

from __future__ import annotations

from typing import Any, Callable

import tracegrad as tg

nn, F = tg.nn, tg.nn.functional

# ---------------------------------------------------------------- row programs: one matrix

UNARY: dict[str, Callable[[Any], Any]] = {
    "neg": lambda a: -a, "tanh": lambda a: a.tanh(), "relu": lambda a: a.relu(),
    "abs": lambda a: a.abs(), "exp": lambda a: (a * 0.3).clamp(-5, 5).exp(),
    "sigmoid": lambda a: a.sigmoid(), "square": lambda a: a * a,
    "gelu": lambda a: F.gelu(a, approximate="tanh"), "silu": lambda a: F.silu(a),
    "sqrt": lambda a: (a.abs() + 0.5).sqrt(), "reciprocal": lambda a: 1.0 / (a.abs() + 1.0),
    "log": lambda a: (a.abs() + 1).log(), "mask": lambda a: (a > 0.1).float() * a,
    "where": lambda a: tg.where(a > 0, a, a * 0.1), "clamp": lambda a: a.clamp(-0.5, 0.7),
    "bool_cast": lambda a: (a < 0).to(a.dtype) + a, "to32": lambda a: a.float(),
    "to64": lambda a: a.double(), "minus_total": lambda a: a - a.sum() * 0.01,
}
BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b.abs() + 1), "max": lambda a, b: tg.maximum(a, b),
    "min": lambda a, b: tg.minimum(a, b), "where2": lambda a, b: tg.where(a > b, a, b * 0.5),
}
REDUCE: dict[str, Callable[[Any], Any]] = {  # (each keeps the matrix's shape)
    "row_sum": lambda a: a - a.sum(1, keepdim=True) * 0.1,
    "row_mean": lambda a: a - a.mean(1, keepdim=True),
    "row_max": lambda a: a - a.max(1, keepdim=True).values,
    "row_min": lambda a: a - a.amin(1, keepdim=True),
    "col_sum": lambda a: a - a.sum(0) * 0.1, "col_mean": lambda a: a - a.mean(0),
    "col_max": lambda a: a - a.amax(0),
    "var": lambda a: a / (a.var(1, keepdim=True) + 1),
    "logsumexp": lambda a: a - a.logsumexp(1, keepdim=True),
    "softmax": lambda a: a.softmax(1), "layer_norm": lambda a: F.layer_norm(a, (a.shape[1],)),
}
ROW_OPS = sorted(UNARY) + sorted(BINARY) + sorted(REDUCE)
ROW_SHAPES = [(64, 64), (100, 41), (72, 128), (33, 257), (128, 32), (8, 512), (513, 8)]


def row_program(ops: list[tuple[str, int, int]], x: Any, w: Any) -> list:
    """The values of ``ops`` (name, operand index, operand index) applied to ``x`` (R, C)
    and ``w`` (C,): each op takes its operands among the values so far (indices wrap)."""
    values = [x, x * w]
    for op, i, j in ops:
        a, b = values[i % len(values)], values[j % len(values)]
        values.append(BINARY[op](a, b) if op in BINARY else (UNARY.get(op) or REDUCE[op])(a))
    return values


# ---------------------------------------------------------------- training steps

LAYERS = ["linear", "relu", "tanh", "layer_norm", "gelu", "silu"]
OPTIMIZERS: dict[str, Callable[[Any], Any]] = {
    "sgd": lambda p: tg.optim.SGD(p, lr=0.05),
    "momentum": lambda p: tg.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True,
                                       weight_decay=0.01),
    "adam": lambda p: tg.optim.Adam(p, lr=0.01),
    "adamw": lambda p: tg.optim.AdamW(p, lr=0.01, weight_decay=0.1),
    "rmsprop": lambda p: tg.optim.RMSprop(p, lr=0.01, momentum=0.9),
}
LOSSES = {"mse": F.mse_loss, "huber": F.huber_loss, "cross_entropy": F.cross_entropy}
BATCHES = [2, 4, 5, 8, 33]


def model(kinds: list[str], din: int, dout: int) -> Any:
    """A Sequential of ``kinds`` (LAYERS), ending in a Linear to ``dout``."""
    layers, d = [], din
    for kind in kinds:
        if kind == "linear":
            layers.append(nn.Linear(d, 8))
            d = 8
        elif kind == "layer_norm":
            layers.append(nn.LayerNorm(d))
        else:
            layers.append({"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU,
                           "silu": nn.SiLU}[kind]())
    return nn.Sequential(*layers, nn.Linear(d, dout))


def training_step(net: Any, optimizer: str, loss: str, clip: bool) -> Callable:
    """``step(x, y)``: one step of ``net`` with a new optimizer, as a user writes it."""
    opt = OPTIMIZERS[optimizer](net.parameters())

    def step(x: Any, y: Any) -> Any:
        opt.zero_grad()
        value = LOSSES[loss](net(x), y)
        value.backward()
        if clip:
            nn.utils.clip_grad_norm_(net.parameters(), 0.5)
        opt.step()
        return value
    return step


def training_pair(kinds: list[str], optimizer: str, loss: str, clip: bool, seed: int) -> tuple:
    """(two copies of one random model, its eager step, the other's compiled step)."""
    import copy

    tg.manual_seed(seed)
    nets = [model(kinds, 5, 3)]
    nets.append(copy.deepcopy(nets[0]))
    return nets, training_step(nets[0], optimizer, loss, clip), \
        tg.compile(training_step(nets[1], optimizer, loss, clip))


def training_batch(rng: Any, batch: int, loss: str) -> tuple:
    """Inputs (batch, 5) and targets for ``loss`` (3 classes or 3 outputs)."""
    x = tg.tensor(rng.standard_normal((batch, 5)).astype("float32"))
    y = tg.tensor(rng.integers(0, 3, batch)) if loss == "cross_entropy" else \
        tg.tensor(rng.standard_normal((batch, 3)).astype("float32"))
    return x, y


# ---------------------------------------------------------------- state between calls

# What a training loop changes between two calls of a compiled step: (name, what it does to
# the model, its optimizer and the step's settings). Each is applied to the eager and the
# compiled copy alike; the compiled step must follow every one.
def _frozen(net: Any, flag: bool) -> None:
    net[0].requires_grad_(not flag)


def _scaled_(net: Any) -> None:
    with tg.no_grad():
        net[0].weight.mul_(0.9)


def _new_bias(net: Any) -> None:
    last = net[len(net) - 1]
    last.bias.data = last.bias.data * 0.5 + 0.1


def _lr(opt: Any) -> None:
    for g in opt.param_groups:
        g["lr"] = g["lr"] * 0.5


def _grads_set(net: Any) -> None:
    for p in net.parameters():
        if p.requires_grad:
            p.grad = tg.full(p.shape, 0.01)


STATE_EDITS: dict[str, Callable[[Any, Any, dict], None]] = {
    "freeze": lambda net, opt, cfg: _frozen(net, True),
    "unfreeze": lambda net, opt, cfg: _frozen(net, False),
    "train": lambda net, opt, cfg: net.train(),
    "eval": lambda net, opt, cfg: net.eval(),
    "reset_state": lambda net, opt, cfg: opt.state.clear(),
    "drop_first_param": lambda net, opt, cfg: opt.param_groups[0]["params"].pop(0)
    if len(opt.param_groups[0]["params"]) > 1 else None,
    "halve_lr": lambda net, opt, cfg: _lr(opt),
    "scale_weight_": lambda net, opt, cfg: _scaled_(net),
    "rebind_bias_data": lambda net, opt, cfg: _new_bias(net),
    "zero_grad_none": lambda net, opt, cfg: opt.zero_grad(set_to_none=True),
    "zero_grad_zeros": lambda net, opt, cfg: opt.zero_grad(set_to_none=False),
    "set_grads": lambda net, opt, cfg: _grads_set(net),
    "accumulate": lambda net, opt, cfg: cfg.update(zero=not cfg["zero"]),
    "scale_arg": lambda net, opt, cfg: cfg.update(k=cfg["k"] % 3 + 1),
    "batch": lambda net, opt, cfg: cfg.update(batch=cfg["batch"] % 7 + 2),
    "replace_weight": lambda net, opt, cfg: setattr(
        net[0], "weight", nn.Parameter(net[0].weight.detach() * 0.9)),
    "fail": lambda net, opt, cfg: cfg.update(fail=True),
}
STATE_LAYERS = ["relu", "tanh", "batch_norm", "dropout"]


def state_net(kind: str) -> Any:
    """Linear(5, 8), ``kind``, Linear(8, 3)."""
    middle = {"relu": nn.ReLU, "tanh": nn.Tanh, "batch_norm": lambda: nn.BatchNorm1d(8),
              "dropout": lambda: nn.Dropout(0.3)}[kind]()
    return nn.Sequential(nn.Linear(5, 8), middle, nn.Linear(8, 3))


def state_step(net: Any, opt: Any) -> Callable:
    """``step(x, k, zero, fail)``: a training step as users write it, whose int ``k`` scales
    the loss, whose flag ``zero`` says whether it clears the gradients first, and which
    raises ``ValueError`` after its update when ``fail``."""
    def step(x: Any, k: int, zero: bool, fail: bool) -> Any:
        if zero:
            opt.zero_grad()
        loss = (net(x) ** 2).mean() * k
        loss.backward()
        opt.step()
        if fail:
            raise ValueError("a bad batch")
        return loss
    return step


# ---------------------------------------------------------------- dynamic programs


def _slice_add(a: Any, c: Any) -> Any:
    v = a * 1.0
    v[:, 1:3] += c[:, :2]
    return v


def _mul_(a: Any, c: Any) -> Any:
    v = a * 1.0
    v.mul_(c.tanh())
    return v


def _clamp_(a: Any, c: Any) -> Any:
    v = a.clone()
    v.clamp_(-0.5, 0.5)
    return v


def _neg_view(a: Any, c: Any) -> Any:
    v = a * 1.0
    v.T[1:].neg_()
    return v


DYNAMIC: dict[str, Callable[..., Any]] = {  # (a, c, W, b, u): a and c are (B, H)
    "add": lambda a, c, W, b, u: a + c, "mul": lambda a, c, W, b, u: a * c,
    "div": lambda a, c, W, b, u: a / (c.abs() + 1), "tanh": lambda a, c, W, b, u: a.tanh(),
    "exp": lambda a, c, W, b, u: (a * 0.2).clamp(-5, 5).exp(),
    "matmul": lambda a, c, W, b, u: (a @ W).tanh(),
    "row_sum": lambda a, c, W, b, u: a - a.sum(1, keepdim=True) / a.shape[1],
    "col_mean": lambda a, c, W, b, u: a - a.mean(0),
    "softmax": lambda a, c, W, b, u: a.softmax(-1),
    "slice_add_": lambda a, c, W, b, u: _slice_add(a, c),
    "transpose": lambda a, c, W, b, u: (a.T * b[:, None]).T,
    "cat": lambda a, c, W, b, u: tg.cat([a[:, :a.shape[1] // 2], c[:, a.shape[1] // 2:]], 1),
    "where": lambda a, c, W, b, u: tg.where(a > c, a, c * u),
    "row_max": lambda a, c, W, b, u: a - a.max(1, keepdim=True).values,
    "layer_norm": lambda a, c, W, b, u: F.layer_norm(a, (a.shape[1],), b, None),
    "mul_": lambda a, c, W, b, u: _mul_(a, c), "clamp_": lambda a, c, W, b, u: _clamp_(a, c),
    "gather_columns": lambda a, c, W, b, u: a[:, [0, 2, 1] + list(range(3, a.shape[1]))],
    "expand": lambda a, c, W, b, u: a + a[:, :1].expand(*a.shape),
    "casts": lambda a, c, W, b, u: a.float().double() if a.dtype == tg.float64
    else a.double().float(),
    "detach": lambda a, c, W, b, u: a * c.detach(),
    "std": lambda a, c, W, b, u: a / (a.std(1, keepdim=True) + 1),
    "cumsum": lambda a, c, W, b, u: a.cumsum(1) * 0.1,
    "neg_view_": lambda a, c, W, b, u: _neg_view(a, c),
}
DYNAMIC_WIDTHS = [4, 5, 8, 16, 33]
DYNAMIC_BATCHES = [2, 3, 5, 7, 8, 16, 64, 100]


def dynamic_program(ops: list[tuple[str, int, int, float]], x: Any, W: Any, b: Any) -> tuple:
    """Two results of ``ops`` over ``x`` (B, H), ``W`` (H, H), ``b`` (H,)."""
    values = [x, x * 0.5]
    for op, i, j, u in ops:
        a, c = values[i % len(values)], values[j % len(values)]
        values.append(DYNAMIC[op](a, c, W, b, u))
    return values[-1], values[len(values) // 2 + 1] if len(values) > 3 else values[-1]


# ---------------------------------------------------------------- views and in-place ops
# (the same calls in tracegrad and torch: ``lib`` is either module)

def view_ops(t: Any, r: Any) -> list[tuple[str, Callable]]:
    """Views of ``t`` (``r``: a random.Random choosing their bounds)."""
    shape, nd = tuple(t.shape), len(t.shape)
    ops = [("unsqueeze", lambda t: t.unsqueeze(0)), ("detach", lambda t: t.detach())]
    if nd >= 1:  # (not reshape or flatten: whether they copy is left open, in torch too)
        ops += [("view", lambda t: t.view(-1)),
                ("squeeze", lambda t: t.unsqueeze(0).squeeze(0)),
                ("expand", lambda t: t.unsqueeze(0).expand(2, *shape))]
    if nd >= 1 and shape[0] > 1:
        a = r.randrange(shape[0])
        b = r.randrange(a + 1, shape[0] + 1)
        step = r.choice([1, 2])
        ops += [("slice", lambda t: t[a:b]), ("select", lambda t: t.select(0, a)),
                ("narrow", lambda t: t.narrow(0, a, b - a)), ("step", lambda t: t[::step])]
    if nd >= 2:
        ops += [("transpose", lambda t: t.transpose(0, 1)), ("diagonal", lambda t: t.diagonal()),
                ("columns", lambda t: t[:, 1:] if shape[1] > 1 else t),
                ("permute", lambda t: t.permute(*reversed(range(nd)))),
                ("select1", lambda t: t.select(1, 0)),
                ("narrow1", lambda t: t.narrow(1, 0, max(1, shape[1] // 2))),
                ("movedim", lambda t: t.movedim(0, -1)),
                ("index_none", lambda t: t[None, ..., 0])]
    return ops


def in_place_ops(t: Any, r: Any, pool: list) -> list[tuple[str, Callable]]:
    """In-place changes of ``t`` (some reading another tensor of ``pool``)."""
    c = r.choice([0.5, 2.0, -1.5])
    other = pool[r.randrange(len(pool))]
    return [
        ("add_", lambda t: t.add_(c)), ("mul_", lambda t: t.mul_(c)),
        ("fill_", lambda t: t.fill_(c)), ("zero_", lambda t: t.zero_()),
        ("set_all", lambda t: t.__setitem__(Ellipsis, c)),
        ("clamp_", lambda t: t.clamp_(-0.5, 0.5)), ("tanh_", lambda t: t.tanh_()),
        ("neg_", lambda t: t.neg_()), ("div_", lambda t: t.div_(c)),
        ("pow_", lambda t: t.pow_(2)), ("masked_fill_", lambda t: t.masked_fill_(t > 0, c)),
        ("set_first", lambda t: t.__setitem__((slice(0, 1),), c) if len(t.shape) else
         t.fill_(c)),
        ("copy_", lambda t: t.copy_(other * 0.5 if tuple(other.shape) == tuple(t.shape)
                                    else t * 0.25)),
        ("add_sum_", lambda t: t.add_(other.detach().sum() * 0.1)),
    ]


OUT_OF_PLACE: list[tuple[str, Callable]] = [  # (C-ordered results: torch keeps a permuted
    # input's layout, tracegrad does not, and a later view would differ by that alone)
    ("mul", lambda t: (t * 1.5).contiguous()), ("exp", lambda t: (t * 0.3).exp().contiguous()),
    ("tanh", lambda t: t.tanh().contiguous()),
    ("sum", lambda t: t.sum(0, keepdim=True).contiguous() if len(t.shape) else t * 1),
]
