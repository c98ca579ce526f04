"""The margin, ranking, metric-learning and likelihood losses (tracegrad/nn/losses.py) against
torch 2.13: values and gradients in float64 for every reduction and option, the Modules with
torch's defaults, float64 finite differences, compiled against eager, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_grads

import tracegrad as tg
from tracegrad import nn
from tracegrad.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _sign(g, *shape):
    return np.where(g.random(shape) < 0.5, -1.0, 1.0)


def _multilabel_targets(g, n, c):
    t = np.full((n, c), -1, dtype=np.int64)
    for i in range(n):
        k = i % c  # rows with 0, 1, 2, ... targets; row 3 repeats a class
        t[i, :k] = g.permutation(c)[:k]
    t[3, :3] = [1, 1, 4]
    t[2, 3] = 2  # after the first -1: ignored
    return t


# function -> (arrays (the first `grads` of them differentiable), option sets)
def _cases():
    g = np.random.default_rng(0)
    x45 = g.standard_normal((4, 5))
    trip = [g.standard_normal((4, 6)) for _ in range(3)]
    rates = g.random((4, 5)) * 2 + 0.05
    counts = g.integers(0, 5, (4, 5)).astype(float)
    var = g.random((4, 3)) + 0.1
    var[0, 0] = 1e-9  # below eps: clamped for the value, not for the gradient
    return {
        "margin_ranking_loss": ([g.standard_normal(6), g.standard_normal(6), _sign(g, 6)], 2,
                                [{}, {"margin": 0.5}]),
        "hinge_embedding_loss": ([x45, _sign(g, 4, 5)], 1, [{}, {"margin": 0.3}]),
        "soft_margin_loss": ([x45 * 3, _sign(g, 4, 5)], 1, [{}]),
        "multilabel_soft_margin_loss": ([x45, (g.random((4, 5)) < 0.5) * 1.0], 1,
                                        [{}, {"weight": g.random(5) + 0.5}]),
        "cosine_embedding_loss": ([g.standard_normal((4, 6)), g.standard_normal((4, 6)),
                                   _sign(g, 4)], 2, [{}, {"margin": -0.2}, {"margin": 0.1}]),
        "triplet_margin_loss": (trip, 3, [{}, {"p": 1}, {"p": 3, "margin": 0.5},
                                          {"swap": True}, {"p": 1, "swap": True, "eps": 1e-3}]),
        "triplet_margin_with_distance_loss": (trip, 3, [{}, {"swap": True, "margin": 2.0}]),
        "multi_margin_loss": ([x45, np.array([0, 4, 2, 2])], 1,
                              [{}, {"p": 2}, {"margin": 0.4}, {"weight": g.random(5) + 0.5},
                               {"p": 2, "margin": 2.0, "weight": g.random(5)}]),
        "multilabel_margin_loss": ([x45, _multilabel_targets(g, 4, 5)], 1, [{}]),
        "poisson_nll_loss": ([x45, counts], 1, [{}, {"full": True}]),
        "poisson_nll_loss/rates": ([rates, counts], 1,
                                   [{"log_input": False}, {"log_input": False, "full": True,
                                                           "eps": 1e-3}]),
        "gaussian_nll_loss": ([g.standard_normal((4, 3)), var, g.standard_normal((4, 3))], 2,
                              [{}, {"full": True}, {"eps": 1e-3}]),
        "gaussian_nll_loss/homoscedastic": ([g.standard_normal((4, 3)), var[:, 0] + 0.5,
                                             g.standard_normal((4, 3))], 2, [{}]),
        "gaussian_nll_loss/one": ([g.standard_normal((4, 3)), var[:, :1] + 0.5,
                                   g.standard_normal((4, 3))], 2, [{"full": True}]),
    }


CASES = _cases()


def _call(lib, name, arrays, grads, options, reduction):
    fname = name.split("/")[0]
    t = (lambda a, req: torch.tensor(a, requires_grad=req)) if lib == "torch" else \
        (lambda a, req: tg.tensor(a, dtype=a.dtype, requires_grad=req))
    xs = [t(a, i < grads and a.dtype.kind == "f") for i, a in enumerate(arrays)]
    args = list(xs)
    if fname == "gaussian_nll_loss":  # (input, var, target) above: differentiable first
        args = [xs[0], xs[2], xs[1]]
    kw = {k: (t(v, False) if isinstance(v, np.ndarray) else v) for k, v in options.items()}
    fn = getattr(TF if lib == "torch" else F, fname)
    return fn(*args, **kw, reduction=reduction), xs[:grads]


def _params():
    return [(name, i) for name in CASES for i in range(len(CASES[name][2]))]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name,option", _params())
def test_values_and_gradients_match_torch(name, option, reduction):
    arrays, grads, options = CASES[name]
    opts = options[option]
    ours, ours_in = _call("tg", name, arrays, grads, opts, reduction)
    theirs, their_in = _call("torch", name, arrays, grads, opts, reduction)
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12,
                               atol=1e-14)
    v = np.random.default_rng(1).standard_normal(tuple(theirs.shape))
    (ours * tg.tensor(v)).sum().backward()
    (theirs * torch.tensor(v)).sum().backward()
    for a, b in zip(ours_in, their_in):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_match_finite_differences(name):
    arrays, grads, options = CASES[name]
    fixed = arrays[grads:]
    opts = options[-1]

    fname = name.split("/")[0]
    kw = {k: (tg.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in opts.items()}

    def direct(*xs):
        args = list(xs) + [tg.tensor(a, dtype=a.dtype) for a in fixed]
        if fname == "gaussian_nll_loss":
            args = [args[0], args[2], args[1]]
        return getattr(F, fname)(*args, **kw, reduction="none")

    if fname == "gaussian_nll_loss":  # (the clamped var's gradient is torch's, not the slope)
        arrays = [arrays[0], np.maximum(arrays[1], 0.05)]
    check_grads(direct, *arrays[:grads], order=1)


MODULES = {
    "MarginRankingLoss": ("margin_ranking_loss", {"margin": 0.5}),
    "HingeEmbeddingLoss": ("hinge_embedding_loss", {"margin": 0.3}),
    "SoftMarginLoss": ("soft_margin_loss", {}),
    "MultiLabelSoftMarginLoss": ("multilabel_soft_margin_loss", {}),
    "CosineEmbeddingLoss": ("cosine_embedding_loss", {"margin": 0.1}),
    "TripletMarginLoss": ("triplet_margin_loss", {"p": 1.0, "swap": True}),
    "TripletMarginWithDistanceLoss": ("triplet_margin_with_distance_loss", {"swap": True}),
    "MultiMarginLoss": ("multi_margin_loss", {"p": 2}),
    "MultiLabelMarginLoss": ("multilabel_margin_loss", {}),
    "PoissonNLLLoss": ("poisson_nll_loss", {"full": True}),
    "GaussianNLLLoss": ("gaussian_nll_loss", {"full": True}),
}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_match_torch(name):
    fname, options = MODULES[name]
    arrays = CASES[fname][0]
    if fname == "gaussian_nll_loss":
        arrays = [arrays[0], arrays[2], arrays[1]]
    for opts in ({}, options, {**options, "reduction": "sum"}):
        ours = getattr(nn, name)(**opts)(*[tg.tensor(a, dtype=a.dtype) for a in arrays])
        theirs = getattr(torch.nn, name)(**opts)(*[torch.tensor(a) for a in arrays])
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
    assert repr(getattr(nn, name)()) == f"{name}()"


KINKS = {  # every hinge exactly at its kink (and soft_margin at 0)
    "margin_ranking_loss": ([np.array([0.5, 1.0, -1.0]), np.array([0.5, 1.0, -1.0]),
                             np.array([1.0, -1.0, 1.0])], 2, {}),
    "hinge_embedding_loss": ([np.array([1.0, 0.5, 2.0]), np.array([-1.0, -1.0, 1.0])], 1, {}),
    "multi_margin_loss": ([np.array([[0.0, 1.0, 0.5]]), np.array([1])], 1, {}),
    "multilabel_margin_loss": ([np.array([[0.0, 1.0, 0.5]]), np.array([[1, -1, 0]])], 1, {}),
    "cosine_embedding_loss": ([np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]),
                               np.array([-1.0])], 2, {}),
    "soft_margin_loss": ([np.array([0.0, 0.0, 30.0]), np.array([1.0, -1.0, -1.0])], 1, {}),
    "triplet_margin_loss": ([np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]]),
                             np.array([[2.0, 0.0]])], 3, {"eps": 0.0}),
}


@pytest.mark.parametrize("name", sorted(KINKS))
def test_gradients_at_the_kinks_match_torch(name):
    arrays, grads, opts = KINKS[name]
    ours, ours_in = _call("tg", name, arrays, grads, opts, "sum")
    theirs, their_in = _call("torch", name, arrays, grads, opts, "sum")
    ours.backward()
    theirs.backward()
    for a, b in zip(ours_in, their_in):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_triplet_with_a_distance_function():
    a, p, n = CASES["triplet_margin_loss"][0]

    def ours_d(x, y):
        return 1 - F.cosine_similarity(x, y)

    def their_d(x, y):
        return 1 - TF.cosine_similarity(x, y)

    ours = nn.TripletMarginWithDistanceLoss(distance_function=ours_d, margin=0.7, swap=True)
    theirs = torch.nn.TripletMarginWithDistanceLoss(distance_function=their_d, margin=0.7,
                                                    swap=True)
    xs = [tg.tensor(v, requires_grad=True) for v in (a, p, n)]
    ts = [torch.tensor(v, requires_grad=True) for v in (a, p, n)]
    ours(*xs).backward()
    theirs(*ts).backward()
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_single_samples_match_torch():
    g = np.random.default_rng(3)
    x, c = g.standard_normal(5), np.array(3)
    got = F.multi_margin_loss(tg.tensor(x), tg.tensor(c), p=2, reduction="none")
    want = TF.multi_margin_loss(torch.tensor(x), torch.tensor(c), p=2, reduction="none")
    assert got.shape == tuple(want.shape) == ()
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    got = F.multi_margin_loss(tg.tensor(x), tg.tensor([3]), reduction="none")
    assert got.shape == (1,)  # torch: the target's shape
    np.testing.assert_allclose(got.numpy(), TF.multi_margin_loss(
        torch.tensor(x), torch.tensor([3]), reduction="none").numpy(), rtol=1e-12)
    a = g.standard_normal((2, 3, 4))
    got = F.triplet_margin_loss(tg.tensor(a), tg.tensor(a + 0.3), tg.tensor(a[::-1].copy()),
                                reduction="none")
    want = TF.triplet_margin_loss(torch.tensor(a), torch.tensor(a + 0.3),
                                  torch.tensor(a[::-1].copy()), reduction="none")
    assert got.shape == tuple(want.shape) == (2, 3)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    t = np.array([2, 0, -1, 1, 1])
    got = F.multilabel_margin_loss(tg.tensor(x), tg.tensor(t), reduction="none")
    want = TF.multilabel_margin_loss(torch.tensor(x), torch.tensor(t), reduction="none")
    assert got.shape == tuple(want.shape)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    x1, x2 = g.standard_normal(4), g.standard_normal(4)
    got = F.cosine_embedding_loss(tg.tensor(x1), tg.tensor(x2), tg.tensor(-1.0, dtype=tg.float64),
                                  margin=-0.5)
    want = TF.cosine_embedding_loss(torch.tensor(x1), torch.tensor(x2),
                                    torch.tensor(-1.0, dtype=torch.float64), margin=-0.5)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    got = F.gaussian_nll_loss(tg.tensor(x1), tg.tensor(x2), 0.5)
    want = TF.gaussian_nll_loss(torch.tensor(x1), torch.tensor(x2), 0.5)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)


COMPILED = ["margin_ranking_loss", "cosine_embedding_loss", "triplet_margin_loss",
            "multi_margin_loss", "multilabel_margin_loss", "poisson_nll_loss/rates",
            "gaussian_nll_loss", "multilabel_soft_margin_loss"]


@pytest.mark.parametrize("name", COMPILED)
def test_compiled_matches_eager(name):
    arrays, grads, options = CASES[name]
    opts = options[-1]
    fname = name.split("/")[0]
    kw = {k: (tg.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in opts.items()}

    def step(*xs):
        args = list(xs)
        if fname == "gaussian_nll_loss":
            args = [args[0], args[2], args[1]]
        return getattr(F, fname)(*args, **kw)

    compiled = tg.compile(step)
    for shift in (0.0, 0.3):  # a second call with other values (and other targets)
        got = []
        for f in (step, compiled):
            xs = [tg.tensor(a + shift if i < grads else a[::-1].copy(), dtype=a.dtype,
                            requires_grad=i < grads) for i, a in enumerate(arrays)]
            loss = f(*xs)
            loss.backward()
            got.append([loss.detach().numpy()] + [x.grad.numpy() for x in xs[:grads]])
        for a, b in zip(*got):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_errors():
    x = tg.randn(4, 5)
    with pytest.raises(ValueError, match="only p == 1 and p == 2"):
        F.multi_margin_loss(x, tg.tensor([0, 1, 2, 3]), p=3)
    with pytest.raises(IndexError, match="multi_margin_loss: target classes"):
        F.multi_margin_loss(x, tg.tensor([0, 1, 2, 5]))
    with pytest.raises(TypeError, match="integer class indices"):
        F.multi_margin_loss(x, tg.tensor([0.0, 1.0, 2.0, 3.0]))
    with pytest.raises(tg.ShapeError, match="weight must be one-dimensional"):
        F.multi_margin_loss(x, tg.tensor([0, 1, 2, 3]), weight=tg.ones(4))
    with pytest.raises(tg.ShapeError, match="multilabel_margin_loss: target must have"):
        F.multilabel_margin_loss(x, tg.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="margin must be greater than 0"):
        F.triplet_margin_loss(x, x, x, margin=0.0)
    with pytest.raises(tg.ShapeError, match="same number of dimensions"):
        F.triplet_margin_with_distance_loss(x, x, x[0])
    with pytest.raises(ValueError, match="var has negative"):
        F.gaussian_nll_loss(x, x, -tg.ones(4, 5))
    with pytest.raises(tg.ShapeError, match="var of shape"):
        F.gaussian_nll_loss(x, x, tg.ones(4, 2))
    with pytest.raises(ValueError, match="reduction must be"):
        F.poisson_nll_loss(x, x, reduction="avg")
    with pytest.raises(ValueError, match="reduction must be"):
        F.margin_ranking_loss(x, x, x, reduction="avg")
    with pytest.raises(tg.ShapeError, match="margin_ranking_loss: all inputs"):
        F.margin_ranking_loss(x, x, x[0])
    with pytest.raises(tg.ShapeError, match="cosine_embedding_loss"):
        F.cosine_embedding_loss(x, x, tg.ones(5))


def test_every_loss_is_exported():
    from tracegrad.nn import losses

    for name in losses.FUNCTIONS:
        assert name in F.__all__ and callable(getattr(F, name))
    for name in losses.__all__:
        assert name in nn.__all__ and hasattr(torch.nn, name)
