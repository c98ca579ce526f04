"""``tg.detect_anomaly()`` covers in-place ops and optimizer steps, and is per thread (issue 12,
item 9, eager part)."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

import tracegrad as tg

IN_PLACE = {
    "mul_ inf": lambda t: t.mul_(math.inf),
    "add_ nan": lambda t: t.add_(math.nan),
    "div_ 0": lambda t: t.div_(0.0),
    "sub_ tensor": lambda t: t.sub_(tg.tensor([math.inf, 0.0, 0.0]), alpha=2.0),
    "add_ same-shape tensor": lambda t: t.add_(tg.tensor([0.0, math.nan, 0.0])),
    "setitem": lambda t: t.__setitem__(1, math.nan),
    "copy_": lambda t: t.copy_(tg.tensor([0.0, math.inf, 1.0])),
    "through a view": lambda t: t[1:].mul_(math.inf),
}


@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
@pytest.mark.parametrize("name", list(IN_PLACE))
def test_in_place_ops_that_make_nan_or_inf_raise(name, grad):
    op = IN_PLACE[name]
    if grad:
        t = tg.tensor([1.0, 2.0, 3.0], requires_grad=True) * 1
    else:
        t = tg.tensor([1.0, 2.0, 3.0])
    op(t.detach().clone())  # outside the block: quietly, as PyTorch
    with tg.detect_anomaly(), pytest.raises(FloatingPointError, match=r"(nan|inf).*test_anom"):
        with (tg.enable_grad() if grad else tg.no_grad()):
            op(t)


@pytest.mark.parametrize("make", [
    lambda p: tg.optim.SGD([p], lr=0.1, momentum=0.9),
    lambda p: tg.optim.SGD([p], lr=0.1),
    lambda p: tg.optim.Adam([p], lr=0.1),
    lambda p: tg.optim.AdamW([p], lr=0.1),
], ids=["SGD-momentum", "SGD", "Adam", "AdamW"])
def test_an_optimizer_step_that_makes_a_parameter_nan_raises_naming_it(make):
    p = tg.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    opt = make(p)
    name = type(opt).__name__
    p.grad = tg.tensor([[1.0, math.nan, 0.0]])
    with tg.detect_anomaly():
        with pytest.raises(FloatingPointError,
                           match=rf"{name}\.step .*parameter of shape \(1, 3\).*gradient"):
            opt.step()
    q = tg.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    opt = make(q)
    q.grad = tg.tensor([[1.0, math.nan, 0.0]])
    opt.step()  # outside the block: no check
    assert np.isnan(q.numpy()).any()


def test_a_finite_optimizer_step_passes_under_detect_anomaly():
    p = tg.tensor([1.0, 2.0], requires_grad=True)
    opt = tg.optim.Adam([p], lr=0.1)
    (p * p).sum().backward()
    with tg.detect_anomaly():
        opt.step()
    assert np.all(np.isfinite(p.numpy()))


def test_detect_anomaly_is_per_thread():
    inside, done = threading.Event(), threading.Event()
    seen = {}

    def worker():
        with tg.detect_anomaly():
            inside.set()
            try:
                tg.tensor([-1.0]).log()
            except FloatingPointError:
                seen["worker raised"] = True
            done.wait(10)

    th = threading.Thread(target=worker)
    th.start()
    try:
        assert inside.wait(10)
        x = tg.tensor([-1.0, 1.0], requires_grad=True)
        y = x.log()  # this thread is not in the block: no error
        y.mul_(math.inf)
        assert np.isnan(y.numpy()[0])
    finally:
        done.set()
        th.join(10)
    assert seen == {"worker raised": True}
    with tg.detect_anomaly(), pytest.raises(FloatingPointError):
        tg.tensor([-1.0]).log()
