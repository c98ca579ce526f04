"""Parametric and random activations against torch 2.13: F.prelu and PReLU (one slope or one
per channel; values and gradients, weight's too), F.rrelu and RReLU (eval: the mean slope;
training: slopes drawn from U(lower, upper), statistically, reproducible by tg.manual_seed),
the in-place F variants (relu_, elu_, leaky_relu_, hardtanh_, selu_, celu_, threshold_,
rrelu_), Softmax2d; compiled against eager."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_grads, compare_with_torch
from helpers import compiled_steps_match

import tracegrad as tg
from tracegrad import nn
from tracegrad.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _x(shape, seed=0):
    x = np.random.default_rng(seed).normal(size=shape)
    x.flat[:2] = 0.0  # (the gradient at 0 is the negative side's, as in PyTorch)
    return x


@pytest.mark.parametrize("shape,slopes", [((4, 3), 1), ((4, 3), 3), ((2, 3, 5), 3),
                                          ((2, 3, 4, 5), 3), ((5,), 1), ((), 1)])
def test_prelu_matches_torch(shape, slopes):
    w = np.random.default_rng(1).uniform(-0.5, 0.5, slopes)
    compare_with_torch(F.prelu, TF.prelu, _x(shape), w, order=1)
    compare_with_torch(F.prelu, TF.prelu, _x(shape), w[0].reshape(()) + 0.0, order=1)


def test_prelu_module_and_errors():
    ours, theirs = nn.PReLU(3, init=0.1), torch.nn.PReLU(3, init=0.1).double()
    ours.double()
    assert repr(ours) == repr(theirs) and list(ours.state_dict()) == ["weight"]
    np.testing.assert_array_equal(ours.weight.numpy(), theirs.weight.detach().numpy())
    x_np = _x((2, 3, 4))
    (ours(tg.tensor(x_np)) ** 2).sum().backward()
    (theirs(torch.tensor(x_np)) ** 2).sum().backward()
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-12)
    check_grads(F.prelu, tg.tensor(_x((2, 3)) + 0.1), tg.tensor([0.2, -0.3, 0.5], dtype=tg.float64))
    with pytest.raises(tg.ShapeError, match="prelu: weight has 2 slopes .* 3 channels"):
        F.prelu(tg.tensor(_x((2, 3))), tg.ones(2))
    with pytest.raises(tg.ShapeError, match="scalar or 1-d"):
        F.prelu(tg.tensor(_x((2, 3))), tg.ones(1, 3))


def test_rrelu_eval_is_the_mean_slope():
    compare_with_torch(lambda t: F.rrelu(t, 0.1, 0.4), lambda t: TF.rrelu(t, 0.1, 0.4),
                       _x((3, 4)))
    ours, theirs = nn.RReLU(), torch.nn.RReLU()
    assert repr(ours) == repr(theirs)
    ours.eval()
    theirs.eval()
    np.testing.assert_allclose(ours(tg.tensor(_x((3, 4)))).numpy(),
                               theirs(torch.tensor(_x((3, 4)))).numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="lower=0.5 must be at most upper=0.2"):
        F.rrelu(tg.tensor(_x(3)), 0.5, 0.2, training=True)


def test_rrelu_training_draws_slopes_uniformly():
    lower, upper = 0.1, 0.4
    x = tg.tensor(-np.abs(_x((200, 100))) - 0.01, requires_grad=True)
    tg.manual_seed(3)
    y = F.rrelu(x, lower, upper, training=True)
    y.sum().backward()
    slope = (y / x).detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), slope, rtol=1e-12)  # d y / d x is the slope
    assert lower <= slope.min() and slope.max() <= upper
    # U(lower, upper): mean (l+u)/2, sd (u-l)/sqrt(12); the mean of 20000 within 5 sigma
    sigma = (upper - lower) / np.sqrt(12) / np.sqrt(slope.size)
    assert abs(slope.mean() - (lower + upper) / 2) < 5 * sigma
    assert abs(slope.std() - (upper - lower) / np.sqrt(12)) < 0.01
    hist = np.histogram(slope, bins=10, range=(lower, upper))[0]
    assert hist.min() > 0.9 * slope.size / 10  # (each bin's count is within 4% sd of 2000)
    pos = tg.tensor(np.abs(_x((50,))) + 0.01)
    np.testing.assert_array_equal(F.rrelu(pos, training=True).numpy(), pos.numpy())
    tg.manual_seed(3)
    again = F.rrelu(x, lower, upper, training=True)
    np.testing.assert_array_equal(again.detach().numpy(), y.detach().numpy())


def test_rrelu_compiled_matches_eager_with_the_same_seed():
    layer = nn.RReLU(0.1, 0.3)
    compiled = tg.compile(lambda x: layer(x * 1.0))
    x = tg.tensor(_x((4, 6)))
    for _ in range(2):
        tg.manual_seed(5)
        eager = layer(x).numpy()
        tg.manual_seed(5)
        np.testing.assert_array_equal(compiled(x).numpy(), eager)
    a, b = compiled(x).numpy(), compiled(x).numpy()
    assert not np.array_equal(a, b)  # a new draw each call
    layer.eval()
    np.testing.assert_array_equal(compiled(x).numpy(), F.leaky_relu(x, 0.2).numpy())


INPLACE = {
    "relu_": {}, "elu_": {"alpha": 0.7}, "leaky_relu_": {"negative_slope": 0.2},
    "hardtanh_": {"min_val": -0.5, "max_val": 0.8}, "selu_": {}, "celu_": {"alpha": 0.6},
    "threshold_": {"threshold": 0.1, "value": -3.0}, "rrelu_": {"lower": 0.2, "upper": 0.3},
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_variants_match_torch(name):
    kw = INPLACE[name]
    x_np = _x((3, 5))
    # on a non-leaf, so the in-place change is recorded and differentiated through
    a = tg.tensor(x_np, requires_grad=True)
    ta = torch.tensor(x_np, requires_grad=True)
    x, tx = a * 1.0, ta * 1.0
    out, tout = getattr(F, name)(x, **kw), getattr(TF, name)(tx, **kw)
    assert out is x
    np.testing.assert_allclose(x.detach().numpy(), tx.detach().numpy(), rtol=1e-12)
    w = _x((3, 5), 1)
    (out * tg.tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-6)  # (CELU: float32 1/a)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        getattr(F, name)(tg.tensor(x_np, requires_grad=True), **kw)


def test_softmax2d_matches_torch():
    for shape in ((2, 3, 4, 5), (3, 4, 5)):
        compare_with_torch(lambda t: nn.Softmax2d()(t), lambda t: torch.nn.Softmax2d()(t),
                           _x(shape))
    assert repr(nn.Softmax2d()) == repr(torch.nn.Softmax2d())
    with pytest.raises(tg.ShapeError, match="Softmax2d: expected input to be 3D or 4D"):
        nn.Softmax2d()(tg.tensor(_x((2, 3))))


@pytest.mark.parametrize("make", [lambda: nn.PReLU(3), nn.Softmax2d],
                         ids=["PReLU", "Softmax2d"])
def test_compiled_matches_eager(make):
    compiled_steps_match(make(), [_x((2, 3, 4, 5)) * scale for scale in (1.0, -2.0)])
