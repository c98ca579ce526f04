"""Random programs compiled against eager mode, the way the bugs of 2026-12 were found:

- training steps of random models, optimizers and losses, called at changing batch sizes
  (so dynamic variants and the C backend's row programs run), optionally clipping the
  gradients: the loss and every parameter agree with eager after each step;
- random graphs of elementwise ops, row and column reductions, layer norms and casts over
  one matrix, with a backward pass: values and gradients agree.

(Scripts with the same generators ran thousands of programs; these keep a few dozen in
the suite.)
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracegrad as tg

nn, F = tg.nn, tg.nn.functional

LAYERS = ["linear", "relu", "tanh", "layer_norm", "gelu", "silu"]
OPTIMIZERS = {
    "sgd": lambda p: tg.optim.SGD(p, lr=0.05),
    "momentum": lambda p: tg.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True,
                                       weight_decay=0.01),
    "adam": lambda p: tg.optim.Adam(p, lr=0.01),
    "adamw": lambda p: tg.optim.AdamW(p, lr=0.01, weight_decay=0.1),
    "rmsprop": lambda p: tg.optim.RMSprop(p, lr=0.01, momentum=0.9),
}


def _model(kinds: list, din: int, dout: int) -> nn.Module:
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


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=st.lists(st.sampled_from(LAYERS), min_size=1, max_size=4),
       optimizer=st.sampled_from(sorted(OPTIMIZERS)),
       loss=st.sampled_from(["mse", "cross_entropy", "huber"]), clip=st.booleans(),
       batches=st.lists(st.sampled_from([2, 4, 5, 8, 33]), min_size=4, max_size=6),
       seed=st.integers(0, 2**16))
def test_random_training_steps_agree_with_eager(kinds, optimizer, loss, clip, batches, seed):
    tg.manual_seed(seed)
    models = [_model(kinds, 5, 3)]
    models.append(copy.deepcopy(models[0]))

    def make(model):
        opt = OPTIMIZERS[optimizer](model.parameters())

        def step(x, y):
            opt.zero_grad()
            out = model(x)
            value = {"mse": F.mse_loss, "huber": F.huber_loss,
                     "cross_entropy": F.cross_entropy}[loss](out, y)
            value.backward()
            if clip:
                nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            return value
        return step

    eager, compiled = make(models[0]), tg.compile(make(models[1]))
    rng = np.random.default_rng(seed)
    for batch in batches:
        x = tg.tensor(rng.standard_normal((batch, 5)).astype(np.float32))
        y = tg.tensor(rng.integers(0, 3, batch)) if loss == "cross_entropy" else \
            tg.tensor(rng.standard_normal((batch, 3)).astype(np.float32))
        want = eager(x, y).item()
        assert compiled(x, y).item() == pytest.approx(want, rel=1e-4, abs=1e-6)
        for (name, p), q in zip(models[0].named_parameters(), models[1].parameters()):
            np.testing.assert_allclose(q.numpy(), p.numpy(), rtol=1e-4, atol=1e-5,
                                       err_msg=name)


UNARY = {"tanh": lambda a: a.tanh(), "relu": lambda a: a.relu(), "abs": lambda a: a.abs(),
         "exp": lambda a: (a * 0.3).clamp(-5, 5).exp(), "sigmoid": lambda a: a.sigmoid(),
         "mask": lambda a: (a > 0.1).float() * a, "to64": lambda a: a.double(),
         "to32": lambda a: a.float(), "where": lambda a: tg.where(a > 0, a, a * 0.1)}
BINARY = {"add": lambda a, b: a + b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / (b.abs() + 1), "max": lambda a, b: tg.maximum(a, b)}
REDUCE = {"row_sum": lambda a: a - a.sum(1, keepdim=True) * 0.1,
          "row_max": lambda a: a - a.max(1, keepdim=True).values,
          "col_mean": lambda a: a - a.mean(0), "softmax": lambda a: a.softmax(1),
          "layer_norm": lambda a: F.layer_norm(a, (a.shape[1],)),
          "var": lambda a: a / (a.var(1, keepdim=True) + 1)}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.tuples(st.sampled_from(sorted(UNARY) + sorted(BINARY) + sorted(REDUCE)),
                              st.integers(0, 99), st.integers(0, 99)), min_size=2, max_size=10),
       shape=st.sampled_from([(64, 64), (100, 41), (33, 257), (128, 32)]),
       dtype=st.sampled_from([np.float32, np.float64]), transposed=st.booleans(),
       seed=st.integers(0, 2**16))
def test_random_row_programs_agree_with_eager(ops, shape, dtype, transposed, seed):
    rng = np.random.default_rng(seed)
    x0, w0 = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape[1]).astype(dtype)

    def f(xt, w):
        x = xt.T if transposed else xt
        values = [x, x * w]
        for op, i, j in ops:
            a, b = values[i % len(values)], values[j % len(values)]
            if op in BINARY:
                values.append(BINARY[op](a, b))
            else:
                values.append((UNARY.get(op) or REDUCE[op])(a))
        (values[-1] * 1.5).sum().backward()
        return values[-1].detach(), xt.grad, w.grad

    def call(fn):
        xt = tg.tensor(np.ascontiguousarray(x0.T) if transposed else x0, requires_grad=True)
        return [None if t is None else t.numpy()
                for t in fn(xt, tg.tensor(w0, requires_grad=True))]

    want = call(f)
    compiled = tg.compile(f, backend="c")
    tol = 1e-9 if dtype == np.float64 and not any(op == "to32" for op, *_ in ops) else 3e-4
    for _ in range(2):
        for got, expected in zip(call(compiled), want):
            assert (got is None) == (expected is None)
            if got is None:
                continue
            scale = max(1.0, float(np.abs(expected).max()))
            np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * scale)
