"""The activation functions and modules that PyTorch has and tracegrad gained last (Hardtanh,
ReLU6, Hardsigmoid, Hardswish, SELU, CELU, Softsign, Tanhshrink, Hardshrink, Softshrink,
Threshold, Mish, LogSigmoid, GLU, Softmin): values and gradients against torch 2.13 (float64),
at the ends of their pieces too, modules with torch's defaults, and compiled against eager."""

from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg
from tracegrad import nn

torch = pytest.importorskip("torch")

# name -> (module arguments, extra keyword arguments of the function)
CASES = {
    "Hardtanh": ({"min_val": -0.5, "max_val": 1.5}, "hardtanh"),
    "ReLU6": ({}, "relu6"),
    "Hardsigmoid": ({}, "hardsigmoid"),
    "Hardswish": ({}, "hardswish"),
    "SELU": ({}, "selu"),
    "CELU": ({"alpha": 0.7}, "celu"),
    "Softsign": ({}, "softsign"),
    "Tanhshrink": ({}, "tanhshrink"),
    "Hardshrink": ({"lambd": 0.3}, "hardshrink"),
    "Softshrink": ({"lambd": 0.3}, "softshrink"),
    "Threshold": ({"threshold": 0.2, "value": -2.0}, "threshold"),
    "Mish": ({}, "mish"),
    "LogSigmoid": ({}, "logsigmoid"),
    "GLU": ({"dim": 1}, "glu"),
    "Softmin": ({"dim": 1}, "softmin"),
}
# the ends of every piece above, and values around them
EDGES = [-6.0, -3.0, -1.0, -0.5, -0.3, -0.0, 0.0, 0.2, 0.3, 1.0, 1.5, 3.0, 6.0, 7.5, -40.0, 40.0]


def _input():
    rng = np.random.default_rng(0)
    return np.concatenate([np.array(EDGES), rng.normal(scale=3.0, size=16)]).reshape(4, 8)


@pytest.mark.parametrize("name", sorted(CASES))
def test_module_and_function_match_torch_with_gradients(name):
    args, fname = CASES[name]
    x_np = _input()
    x = tg.tensor(x_np, requires_grad=True)
    tx = torch.tensor(x_np, requires_grad=True)
    ours, theirs = getattr(nn, name)(**args)(x), getattr(torch.nn, name)(**args)(tx)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12,
                               atol=1e-15)
    weight = np.random.default_rng(1).normal(size=tuple(theirs.shape))
    (ours * tg.tensor(weight)).sum().backward()
    (theirs * torch.tensor(weight)).sum().backward()
    # (PyTorch's float64 backward of these two uses float32 constants: 1/6, 1/alpha)
    rtol = {"Hardsigmoid": 1e-7, "CELU": 1e-6}.get(name, 1e-12)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=rtol, atol=1e-15)
    f = getattr(tg.nn.functional, fname)
    np.testing.assert_array_equal(f(tg.tensor(x_np), **args).numpy(), ours.detach().numpy())


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_matches_eager(name):
    args, _ = CASES[name]
    layer = getattr(nn, name)(**args)

    def step(x):
        y = layer(x * 1.0)
        return y, (y * y).sum()

    compiled = tg.compile(step)
    for scale in (1.0, 2.0):
        got = []
        for f in (step, compiled):
            x = tg.tensor(_input() * scale, requires_grad=True)
            y, loss = f(x)
            loss.backward()
            got.append((y.detach().numpy(), x.grad.numpy()))
        np.testing.assert_allclose(got[1][0], got[0][0], rtol=1e-12)
        np.testing.assert_allclose(got[1][1], got[0][1], rtol=1e-12)


def test_bad_arguments_are_refused():
    with pytest.raises(tg.ShapeError, match="glu"):
        tg.nn.functional.glu(tg.ones(2, 3), dim=1)
    with pytest.raises(ValueError, match="lambd"):
        tg.nn.functional.softshrink(tg.ones(2), -1.0)
    with pytest.raises(TypeError, match="dim"):
        tg.nn.functional.softmin(tg.ones(2, 3))
