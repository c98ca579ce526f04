"""Dropout variants and distances against torch 2.13: channel dropout (F.dropout1d/2d/3d and
Dropout1d/2d/3d), alpha dropout (F.alpha_dropout, F.feature_alpha_dropout, AlphaDropout,
FeatureAlphaDropout), F.gumbel_softmax (soft and hard) -- random ones by statistical tests
with fixed seeds, identity in eval -- and F.bilinear/nn.Bilinear, F.pairwise_distance/
nn.PairwiseDistance, F.pdist: values and gradients; compiled against eager."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gradcheck import check_grads, compare_with_torch

import tracegrad as tg
from tracegrad import nn
from tracegrad.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

SAT = 1.7580993408473766  # SELU's scale * alpha


def _x(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def _within(count, n, p, sigmas=5):
    return abs(count - n * p) <= sigmas * np.sqrt(n * p * (1 - p))


# ---------------------------------------------------------------- channel dropout


@pytest.mark.parametrize("name,shape,channel_dims", [
    ("dropout1d", (40, 50, 3), 2), ("dropout1d", (50, 3), 1), ("dropout2d", (40, 50, 2, 3), 2),
    ("dropout3d", (20, 100, 2, 2, 2), 2), ("dropout3d", (100, 2, 2, 3), 1)])
@pytest.mark.parametrize("p", [0.2, 0.7])
def test_channel_dropout_drops_whole_channels(name, shape, channel_dims, p):
    x = tg.tensor(np.abs(_x(shape)) + 0.1, requires_grad=True)
    tg.manual_seed(0)
    y = getattr(F, name)(x, p)
    y.sum().backward()
    ratio = (y / x).detach().numpy().reshape(shape[:channel_dims] + (-1,))
    per_channel = ratio[..., 0]
    np.testing.assert_allclose(ratio, np.broadcast_to(per_channel[..., None], ratio.shape),
                               rtol=1e-12)  # one factor per channel
    assert set(np.unique(np.round(per_channel, 12))) <= {0.0, round(1 / (1 - p), 12)}
    assert _within((per_channel == 0).sum(), per_channel.size, p)
    np.testing.assert_allclose(x.grad.numpy(), (y / x).detach().numpy(), rtol=1e-12)
    tg.manual_seed(0)
    np.testing.assert_array_equal(getattr(F, name)(x, p).detach().numpy(), y.detach().numpy())
    # eval, p = 0: identity; p = 1: zeros
    np.testing.assert_array_equal(getattr(F, name)(x, p, training=False).detach().numpy(),
                                  x.detach().numpy())
    np.testing.assert_array_equal(getattr(F, name)(x, 0.0).detach().numpy(), x.detach().numpy())
    assert not getattr(F, name)(x, 1.0).detach().numpy().any()


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_channel_dropout_modules(nd):
    name = f"Dropout{nd}d"
    ours, theirs = getattr(nn, name)(0.3), getattr(torch.nn, name)(0.3)
    assert repr(ours) == repr(theirs)
    x = tg.tensor(_x((4, 6) + (3,) * nd))
    ours.eval()
    np.testing.assert_array_equal(ours(x).numpy(), x.numpy())
    ours.train()
    assert (ours(x).numpy() == 0).any()
    with pytest.raises(ValueError, match="between 0 and 1"):
        getattr(F, f"dropout{nd}d")(x, 1.5)


def test_channel_dropout_shape_rules():
    with pytest.raises(tg.ShapeError, match="dropout1d: expected a 2-d"):
        F.dropout1d(tg.ones(5))
    with pytest.warns(UserWarning, match=r"taken as \(N, C, L\)"):
        F.dropout2d(tg.ones(2, 3, 4))
    with pytest.warns(UserWarning, match="dropout3d: expects"):
        F.dropout3d(tg.ones(2, 3, 4))
    with pytest.raises(tg.ShapeError, match="at least 2 dimensions"):
        F.feature_alpha_dropout(tg.ones(5), training=True)


# ---------------------------------------------------------------- alpha dropout


@pytest.mark.parametrize("feature", [False, True])
@pytest.mark.parametrize("p", [0.1, 0.5])
def test_alpha_dropout_keeps_mean_and_variance(feature, p):
    fn = F.feature_alpha_dropout if feature else F.alpha_dropout
    shape = (200, 300, 4) if feature else (400, 600)
    x_np = _x(shape)
    x = tg.tensor(x_np, requires_grad=True)
    tg.manual_seed(1)
    y = fn(x, p, training=True)
    y.sum().backward()
    a = ((SAT ** 2 * p + 1) * (1 - p)) ** -0.5
    out = y.detach().numpy()
    kept = np.isclose(out, a * x_np + SAT * a * p, rtol=1e-12, atol=1e-12)
    dropped = np.isclose(out, -SAT * a + SAT * a * p, rtol=1e-12, atol=1e-12)
    assert (kept | dropped).all()
    assert _within(dropped.sum() / (4 if feature else 1), out.size / (4 if feature else 1), p)
    if feature:
        assert (kept == kept[..., :1]).all()  # whole channels
    np.testing.assert_allclose(x.grad.numpy(), kept * a, rtol=1e-12)
    # the point of alpha dropout: a standard normal input keeps mean 0 and variance 1
    assert abs(out.mean()) < 0.02 and abs(out.var() - 1) < 0.03
    # torch's kept and dropped values are the same affine map (its own draws)
    torch.manual_seed(1)
    theirs = getattr(TF, fn.__name__)(torch.tensor(x_np), p, training=True).numpy()
    assert (np.isclose(theirs, a * x_np + SAT * a * p, rtol=1e-12, atol=1e-12)
            | np.isclose(theirs, -SAT * a + SAT * a * p, rtol=1e-12, atol=1e-12)).all()
    # eval and the default training=False: identity
    np.testing.assert_array_equal(fn(x, p).detach().numpy(), x_np)


def test_alpha_dropout_modules_and_edges():
    for name in ("AlphaDropout", "FeatureAlphaDropout"):
        ours, theirs = getattr(nn, name)(0.2), getattr(torch.nn, name)(0.2)
        assert repr(ours) == repr(theirs)
        x = tg.tensor(_x((3, 4, 5)))
        ours.eval()
        np.testing.assert_array_equal(ours(x).numpy(), x.numpy())
        ours.train()
        assert not np.array_equal(ours(x).numpy(), x.numpy())
    x = _x((3, 4))
    compare_with_torch(lambda t: F.alpha_dropout(t, 1.0, True),
                       lambda t: TF.alpha_dropout(t, 1.0, True), x, order=1)
    with pytest.raises(ValueError, match="alpha_dropout: dropout probability"):
        F.alpha_dropout(tg.tensor(x), -0.1, True)


# ---------------------------------------------------------------- gumbel softmax


def test_gumbel_softmax_samples_the_softmax():
    logits_np = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    logits = tg.tensor(np.tile(logits_np, (20000, 1)), requires_grad=True)
    tg.manual_seed(2)
    soft = F.gumbel_softmax(logits, tau=0.5)
    s = soft.detach().numpy()
    np.testing.assert_allclose(s.sum(-1), 1.0, rtol=1e-12)
    assert (s > 0).all()
    tg.manual_seed(2)
    hard = F.gumbel_softmax(logits, tau=0.5, hard=True)
    h = hard.detach().numpy()
    assert set(np.unique(h)) == {0.0, 1.0} and (h.sum(-1) == 1).all()
    np.testing.assert_array_equal(h.argmax(-1), s.argmax(-1))  # the same draw
    # Gumbel-max: the argmax is distributed as softmax(logits), for any tau
    counts = h.sum(0)
    for c, prob in zip(counts, np.exp(logits_np)):
        assert _within(c, len(h), prob)
    # straight-through: the hard sample's gradient is the soft sample's
    w = tg.tensor(_x(h.shape, 3))
    (hard * w).sum().backward()
    g_hard = logits.grad.numpy().copy()
    logits.grad = None
    (soft * w).sum().backward()
    np.testing.assert_allclose(g_hard, logits.grad.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="tau must be positive"):
        F.gumbel_softmax(logits, tau=0.0)


def test_gumbel_softmax_soft_matches_torch_given_the_noise():
    # the soft sample is softmax((logits + g) / tau) with g = -log(E): with the uniform draw
    # replayed, torch's formula gives the same numbers and gradients
    logits = _x((3, 5))
    tg.manual_seed(4)
    u = tg.rand(3, 5, dtype=tg.float64).numpy()
    g = -np.log(-np.log1p(-u))
    compare_with_torch(lambda t: _seeded(lambda: F.gumbel_softmax(t, tau=0.7, dim=0)),
                       lambda t: torch.softmax((t + torch.tensor(g)) / 0.7, 0), logits,
                       order=1)


def _seeded(fn):
    tg.manual_seed(4)
    return fn()


# ---------------------------------------------------------------- compiled randomness


@pytest.mark.parametrize("fn", [
    lambda x: F.dropout2d(x, 0.4), lambda x: F.alpha_dropout(x, 0.3, True),
    lambda x: F.feature_alpha_dropout(x, 0.3, True), lambda x: F.gumbel_softmax(x, hard=True)],
    ids=["dropout2d", "alpha_dropout", "feature_alpha_dropout", "gumbel_softmax"])
def test_compiled_matches_eager_with_the_same_seed(fn):
    def step(x):
        y = fn(x * 1.0)
        return y, (y * y * x).sum()

    compiled = tg.compile(step)
    x_np = _x((4, 6, 3, 2))
    for seed in (0, 1):
        got = []
        for f in (step, compiled):
            tg.manual_seed(seed)
            x = tg.tensor(x_np, requires_grad=True)
            y, loss = f(x)
            loss.backward()
            got.append((y.detach().numpy(), x.grad.numpy()))
        np.testing.assert_allclose(got[1][0], got[0][0], rtol=1e-12)
        np.testing.assert_allclose(got[1][1], got[0][1], rtol=1e-12)
    assert not np.array_equal(compiled(tg.tensor(x_np))[0].numpy(),
                              compiled(tg.tensor(x_np))[0].numpy())


# ---------------------------------------------------------------- bilinear and distances


@pytest.mark.parametrize("lead", [(5,), (2, 3), ()])
@pytest.mark.parametrize("bias", [True, False])
def test_bilinear_matches_torch(lead, bias):
    arrays = [_x(lead + (3,), 1), _x(lead + (4,), 2), _x((2, 3, 4), 3)] + (
        [_x((2,), 4)] if bias else [])
    compare_with_torch(F.bilinear, TF.bilinear, *arrays)


def test_bilinear_module_and_errors():
    torch.manual_seed(0)
    theirs = torch.nn.Bilinear(3, 4, 2).double()
    ours = nn.Bilinear(3, 4, 2).double()
    assert repr(ours) == repr(theirs)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert np.abs(ours.weight.numpy()).max() <= 1 / np.sqrt(3)
    ours.load_state_dict({k: tg.tensor(v.detach().numpy()) for k, v in
                          theirs.state_dict().items()})
    a, b = _x((6, 3)), _x((6, 4), 1)
    np.testing.assert_allclose(ours(tg.tensor(a), tg.tensor(b)).detach().numpy(),
                               theirs(torch.tensor(a), torch.tensor(b)).detach().numpy(),
                               rtol=1e-12)
    assert nn.Bilinear(3, 4, 2, bias=False).bias is None
    with pytest.raises(tg.ShapeError, match="bilinear: expects"):
        F.bilinear(tg.tensor(a), tg.tensor(_x((5, 4))), ours.weight)
    with pytest.raises(tg.ShapeError, match="bilinear: expects"):
        F.bilinear(tg.tensor(a), tg.tensor(a), ours.weight)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.5, float("inf"), 0.0])
@pytest.mark.parametrize("shapes", [((5, 4), (5, 4)), ((5, 4), (4,)), ((4,), (4,)),
                                    ((2, 3, 4), (3, 4))])
@pytest.mark.parametrize("keepdim", [False, True])
def test_pairwise_distance_matches_torch(p, shapes, keepdim):
    arrays = [_x(shapes[0]), _x(shapes[1], 1)]
    compare_with_torch(lambda a, b: F.pairwise_distance(a, b, p, 1e-3, keepdim),
                       lambda a, b: TF.pairwise_distance(a, b, p, 1e-3, keepdim), *arrays,
                       order=1)
    ours, theirs = nn.PairwiseDistance(p, keepdim=keepdim), torch.nn.PairwiseDistance(
        p, keepdim=keepdim)
    assert repr(ours) == repr(theirs)
    np.testing.assert_allclose(ours(*map(tg.tensor, arrays)).numpy(),
                               theirs(*map(torch.tensor, arrays)).numpy(), rtol=1e-12)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.5, float("inf"), 0.0])
def test_pdist_matches_torch(p):
    x = _x((6, 3))
    x[4] = x[1]  # a zero distance: PyTorch's gradient there is 0
    compare_with_torch(lambda t: F.pdist(t, p), lambda t: TF.pdist(t, p), x, order=1)
    if p not in (0.0, float("inf")):
        check_grads(lambda t: F.pdist(t, p), tg.tensor(_x((4, 3))), order=1)
    with pytest.raises(tg.ShapeError, match="pdist: expects a 2-d"):
        F.pdist(tg.tensor(_x((3,))))
    with pytest.raises(ValueError, match="non-negative"):
        F.pdist(tg.tensor(x), -1.0)


def test_distances_compiled_match_eager():
    def step(a, b):
        y = F.pairwise_distance(a * 1.0, b) + F.pdist(a).sum() + F.bilinear(
            a, b, (a.T @ b).reshape(1, 3, 3)).sum(-1)
        return y, (y * y).sum()

    compiled = tg.compile(step)
    for seed in (0, 1):
        got = []
        for f in (step, compiled):
            a = tg.tensor(_x((4, 3), seed), requires_grad=True)
            b = tg.tensor(_x((4, 3), seed + 5), requires_grad=True)
            y, loss = f(a, b)
            loss.backward()
            got.append((y.detach().numpy(), a.grad.numpy(), b.grad.numpy()))
        for u, v in zip(got[1], got[0]):
            np.testing.assert_allclose(u, v, rtol=1e-10)


def test_no_warnings_from_the_quiet_paths():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.dropout2d(tg.ones(2, 3, 4, 5), 0.5)
        F.dropout3d(tg.ones(3, 2, 2, 2), 0.5)
        F.dropout1d(tg.ones(3, 4), 0.5)
