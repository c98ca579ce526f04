"""``tg.set_default_dtype`` / ``tg.get_default_dtype``, as PyTorch's: the dtype of tensors made
from Python floats and of new layers' parameters, compared with torch 2.13."""

from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg

torch = pytest.importorskip("torch")


@pytest.fixture
def float64_default():
    tg.set_default_dtype(tg.float64)
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        tg.set_default_dtype(tg.float32)
        torch.set_default_dtype(torch.float32)


def _made(lib):
    """A name for each tensor a program makes without naming a dtype."""
    nn = lib.nn
    return {
        "tensor([1.5])": lib.tensor([1.5]), "tensor(1.5)": lib.tensor(1.5),
        "zeros": lib.zeros(2), "ones": lib.ones(2), "full": lib.full((2,), 2.0),
        "rand": lib.rand(2), "randn": lib.randn(2), "arange(3.)": lib.arange(3.0),
        "arange(3)": lib.arange(3), "linspace": lib.linspace(0, 1, 3), "eye": lib.eye(2),
        "int * float": lib.tensor([1, 2]) * 0.5, "Linear": nn.Linear(2, 3).weight,
        "LayerNorm": nn.LayerNorm(3).weight, "BatchNorm1d": nn.BatchNorm1d(3).running_var,
        "Conv2d": nn.Conv2d(1, 2, 3).weight, "Embedding": nn.Embedding(4, 2).weight,
        "LSTM": nn.LSTM(2, 3).weight_ih_l0, "GRUCell": nn.GRUCell(2, 3).weight_hh,
        "MultiheadAttention": nn.MultiheadAttention(4, 2).in_proj_weight,
        "GroupNorm": nn.GroupNorm(1, 2).bias,
    }


def _names(made):
    return {k: str(v.dtype).replace("torch.", "") for k, v in made.items()}


def test_the_default_is_float32():
    assert tg.get_default_dtype() == tg.float32
    assert set(_names(_made(tg)).values()) == {"float32", "int64"}


def test_float64_default_matches_pytorch(float64_default):
    assert tg.get_default_dtype() == tg.float64 and torch.get_default_dtype() == torch.float64
    assert _names(_made(tg)) == _names(_made(torch))
    assert set(_names(_made(tg)).values()) == {"float64", "int64"}
    # a float32 tensor with a Python float stays float32, as in PyTorch
    assert (tg.ones(2, dtype=tg.float32) * 0.5).dtype == tg.float32


def test_a_model_trains_in_float64(float64_default):
    tg.manual_seed(0)
    model = tg.nn.Sequential(tg.nn.Linear(3, 4), tg.nn.Tanh(), tg.nn.Linear(4, 1))
    opt = tg.optim.Adam(model.parameters(), lr=0.01)
    x, y = tg.randn(8, 3), tg.randn(8, 1)
    for _ in range(3):
        opt.zero_grad()
        loss = tg.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    assert loss.dtype == tg.float64
    assert all(p.grad.dtype == tg.float64 for p in model.parameters())


def test_only_floating_point_dtypes_can_be_the_default():
    with pytest.raises(TypeError, match="only a floating point dtype"):
        tg.set_default_dtype(tg.int64)
    assert tg.get_default_dtype() == tg.float32


def test_a_compiled_function_traces_again_under_another_default():
    """A constant made from Python floats inside a compiled function has the default dtype
    of its trace: after set_default_dtype the call must not reuse that variant."""
    f = tg.compile(lambda x: x * tg.tensor(0.1) + tg.tensor([0.5, 0.25]))
    x = tg.ones(2, dtype=tg.float64)
    for _ in range(3):
        first = f(x)
    try:
        tg.set_default_dtype(tg.float64)
        for _ in range(3):
            second = f(x)
    finally:
        tg.set_default_dtype(tg.float32)
    eager = x * tg.tensor(0.1, dtype=tg.float64) + tg.tensor([0.5, 0.25], dtype=tg.float64)
    np.testing.assert_array_equal(second.numpy(), eager.numpy())
    assert first.dtype == second.dtype == tg.float64
    assert not np.array_equal(first.numpy(), second.numpy())  # 0.1 in float32, then float64
    assert f.cache_info().misses == 2
