"""The rest of PyTorch's everyday tensor surface (t, norm, masked_fill, sort, topk, cumsum,
split, repeat, roll, rounding, in-place unary ops...), checked against PyTorch: values and,
where there is one, the gradient."""

from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 4))
POS = np.abs(X) + 0.5

# name, tracegrad fn, torch fn, input, has a gradient
CASES = [
    ("t", lambda x: x.t(), lambda x: x.t(), X, True),
    ("mT", lambda x: x.mT, lambda x: x.mT, X, True),
    ("square", lambda x: x.square(), lambda x: x.square(), X, True),
    ("reciprocal", lambda x: x.reciprocal(), lambda x: x.reciprocal(), POS, True),
    ("rsqrt", lambda x: x.rsqrt(), lambda x: x.rsqrt(), POS, True),
    ("log1p", lambda x: x.log1p(), lambda x: x.log1p(), POS, True),
    ("expm1", lambda x: x.expm1(), lambda x: x.expm1(), X, True),
    ("norm", lambda x: x.norm(), lambda x: x.norm(), X, True),
    ("norm_dim", lambda x: x.norm(dim=1), lambda x: x.norm(dim=1), X, True),
    ("norm_1", lambda x: x.norm(p=1, dim=0), lambda x: x.norm(p=1, dim=0), X, True),
    ("norm_inf", lambda x: x.norm(p=float("inf")), lambda x: x.norm(p=float("inf")), X, True),
    ("norm_3", lambda x: x.norm(p=3), lambda x: x.norm(p=3), X, True),
    ("masked_fill", lambda x: x.masked_fill(x > 0, 0.5),
     lambda x: x.masked_fill(x > 0, 0.5), X, True),
    ("any", lambda x: (x > 1).any(), lambda x: (x > 1).any(), X, False),
    ("all_dim", lambda x: (x > -2).all(dim=1), lambda x: (x > -2).all(dim=1), X, False),
    ("flip", lambda x: x.flip(0), lambda x: x.flip(0), X, True),
    ("flip2", lambda x: x.flip((0, 1)), lambda x: x.flip((0, 1)), X, True),
    ("roll", lambda x: x.roll(1, 1), lambda x: x.roll(1, 1), X, True),
    ("roll_flat", lambda x: x.roll(5), lambda x: x.roll(5), X, True),
    ("roll_neg", lambda x: x.roll(-1, 0), lambda x: x.roll(-1, 0), X, True),
    ("repeat", lambda x: x.repeat(2, 3), lambda x: x.repeat(2, 3), X, True),
    ("repeat_new_dim", lambda x: x.repeat(2, 1, 1), lambda x: x.repeat(2, 1, 1), X, True),
    ("cumsum0", lambda x: x.cumsum(0), lambda x: x.cumsum(0), X, True),
    ("cumsum1", lambda x: x.cumsum(1), lambda x: x.cumsum(1), X, True),
    ("sort_values", lambda x: x.sort(dim=1).values, lambda x: x.sort(dim=1).values, X, True),
    ("sort_desc", lambda x: x.sort(dim=0, descending=True).values,
     lambda x: x.sort(dim=0, descending=True).values, X, True),
    ("topk", lambda x: x.topk(2).values, lambda x: x.topk(2).values, X, True),
    ("topk_smallest", lambda x: x.topk(2, dim=0, largest=False).values,
     lambda x: x.topk(2, dim=0, largest=False).values, X, True),
    ("floor", lambda x: x.floor(), lambda x: x.floor(), X * 3, False),
    ("ceil", lambda x: x.ceil(), lambda x: x.ceil(), X * 3, False),
    ("round", lambda x: x.round(), lambda x: x.round(), X * 3, False),
]


@pytest.mark.parametrize("name, ours, theirs, data, has_grad", CASES, ids=[c[0] for c in CASES])
def test_matches_torch(name, ours, theirs, data, has_grad):
    x = tg.tensor(data, dtype=tg.float64, requires_grad=True)
    xt = torch.tensor(data, requires_grad=True)
    y, yt = ours(x), theirs(xt)
    np.testing.assert_allclose(y.numpy().astype(np.float64),
                               yt.detach().numpy().astype(np.float64), rtol=1e-12, atol=1e-12)
    if not has_grad:
        assert not y.requires_grad
        return
    cot = RNG.standard_normal(tuple(y.shape))
    (y * tg.tensor(cot)).sum().backward()
    (yt * torch.tensor(cot)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_sort_and_topk_indices_match_torch():
    x = tg.tensor(X)
    xt = torch.tensor(X)
    assert x.sort(dim=1).indices.tolist() == xt.sort(dim=1).indices.tolist()
    assert x.topk(3, dim=1).indices.tolist() == xt.topk(3, dim=1).indices.tolist()


def test_split_and_chunk_like_torch():
    x = tg.tensor(np.arange(10.0))
    xt = torch.arange(10.0, dtype=torch.float64)
    assert [p.tolist() for p in x.split(4)] == [p.tolist() for p in xt.split(4)]
    assert [p.tolist() for p in x.split([3, 7])] == [p.tolist() for p in xt.split([3, 7])]
    assert [p.tolist() for p in x.chunk(3)] == [p.tolist() for p in xt.chunk(3)]
    with pytest.raises(tg.ShapeError, match="split"):
        x.split([3, 3])


def test_dot_and_t_errors():
    assert tg.tensor([1.0, 2.0]).dot(tg.tensor([3.0, 4.0])).item() == 11.0
    with pytest.raises(tg.ShapeError, match="dot"):
        tg.ones(2, 2).dot(tg.ones(2))
    with pytest.raises(tg.ShapeError, match="t:"):
        tg.ones(2, 2, 2).t()


@pytest.mark.parametrize("name", ["exp", "tanh", "sigmoid", "relu", "abs", "neg", "square"])
def test_in_place_unary_ops(name):
    data = X.copy()
    x = tg.tensor(data)
    out = getattr(x, name + "_")()
    assert out is x
    expected = getattr(torch.tensor(data), name + "_")().numpy()
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-6)


def test_in_place_unary_on_a_leaf_that_requires_grad_refuses():
    w = tg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="in place"):
        w.exp_()


def test_new_ops_compile():
    f = tg.compile(lambda x: x.sort(dim=1).values.cumsum(1).norm() + x.roll(1, 0).square().sum())
    for _ in range(3):
        x = tg.tensor(RNG.standard_normal((3, 4)))
        want = (x.sort(dim=1).values.cumsum(1).norm() + x.roll(1, 0).square().sum()).item()
        assert f(x).item() == pytest.approx(want, rel=1e-6)
