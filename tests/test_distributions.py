"""tg.distributions against torch.distributions: log_prob, entropy, cdf/icdf, the moments
and kl_divergence, values and gradients (to second order) with respect to every parameter
and the value, in float64; shapes of draws, their statistics, the checks of parameters and
values, compiled log-likelihoods."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import compare_with_torch

import tracegrad as tg
import tracegrad.distributions as D

torch = pytest.importorskip("torch")
PD = torch.distributions

rng = np.random.default_rng(0)


def pos(*s):
    return rng.uniform(0.5, 2.0, s)


def real(*s):
    return rng.standard_normal(s)


def simplex(*s):
    a = rng.uniform(0.1, 1, s)
    return a / a.sum(-1, keepdims=True)


def spd(n):
    A = rng.standard_normal((n, n))
    return A @ A.T + n * np.eye(n)


def tril(n):
    L = np.tril(rng.standard_normal((n, n)))
    np.fill_diagonal(L, rng.uniform(0.5, 2, n))
    return L


# family, parameters, a value in the support, whether cdf/icdf exist
CASES = [
    ("Normal", dict(loc=real(3), scale=pos(3)), real(2, 3), True),
    ("Categorical", dict(probs=simplex(2, 4)), rng.integers(0, 4, (5, 2)), False),
    ("Categorical", dict(logits=real(2, 4)), rng.integers(0, 4, (2,)), False),
    ("Bernoulli", dict(probs=rng.uniform(0.1, 0.9, 3)), rng.integers(0, 2, 3) * 1.0, False),
    ("Bernoulli", dict(logits=real(3)), rng.integers(0, 2, (2, 3)) * 1.0, False),
    ("OneHotCategorical", dict(probs=simplex(2, 3)), np.eye(3)[[2, 0]], False),
    ("Uniform", dict(low=real(3) - 3, high=real(3) + 3), rng.uniform(-0.5, 0.5, 3), True),
    ("Exponential", dict(rate=pos(3)), pos(3), True),
    ("Laplace", dict(loc=real(3), scale=pos(3)), real(3), True),
    ("Gamma", dict(concentration=pos(3), rate=pos(3)), pos(3), False),
    ("Beta", dict(concentration1=pos(3), concentration0=pos(3)), rng.uniform(0.1, 0.9, 3),
     False),
    ("Dirichlet", dict(concentration=pos(2, 3)), simplex(2, 3), False),
    ("Poisson", dict(rate=pos(3)), rng.integers(0, 5, 3) * 1.0, False),
    ("MultivariateNormal", dict(loc=real(2, 3), covariance_matrix=spd(3)), real(2, 3), False),
    ("MultivariateNormal", dict(loc=real(3), scale_tril=tril(3)), real(4, 3), False),
    ("MultivariateNormal", dict(loc=real(3), precision_matrix=spd(3)), real(3), False),
    ("LogNormal", dict(loc=real(3), scale=pos(3)), pos(3), True),
    ("HalfNormal", dict(scale=pos(3)), pos(3), True),
    ("StudentT", dict(df=pos(3) + 2, loc=real(3), scale=pos(3)), real(3), False),
    ("Cauchy", dict(loc=real(3), scale=pos(3)), real(3), True),
    ("Gumbel", dict(loc=real(3), scale=pos(3)), real(3), True),
    ("Binomial", dict(total_count=np.array([3, 5, 4]), probs=rng.uniform(0.1, 0.9, 3)),
     np.array([1.0, 5.0, 0.0]), False),
    ("Binomial", dict(total_count=np.array([4, 4, 4]), logits=real(3)), np.array([1.0, 4.0, 0.0]),
     False),
    ("Geometric", dict(probs=rng.uniform(0.1, 0.9, 3)), np.array([0.0, 2.0, 5.0]), False),
    ("Geometric", dict(logits=real(3)), np.array([0.0, 2.0, 5.0]), False),
]
IDS = [f"{fam}-{'-'.join(p)}" for fam, p, _, _ in CASES]
# torch's trigamma (digamma's gradient) is accurate to about 1e-9 (tracegrad's agrees with
# SciPy's to 1e-16): the families whose entropy or KL have digamma compare to 1e-8
RTOL = {"Gamma": 1e-8, "Beta": 1e-8, "Dirichlet": 1e-8, "StudentT": 1e-8,
        "Binomial": 1e-8}


def both(fam, keys, what):
    """The same function of (parameters..., value) for tracegrad and for torch."""
    def make(lib):
        def fn(*arrays):
            d = getattr(lib, fam)(**dict(zip(keys, arrays[:len(keys)])))
            return what(d, *arrays[len(keys):])
        return fn
    return make(D), make(PD)


@pytest.mark.parametrize("fam,params,value,has_cdf", CASES, ids=IDS)
def test_log_prob_entropy_and_moments_match_torch(fam, params, value, has_cdf):
    keys, arrays = list(params), list(params.values())
    for what in (lambda d, v: d.log_prob(v), lambda d: d.entropy(), lambda d: d.mean,
                 lambda d: d.variance, lambda d: d.stddev):
        nargs = what.__code__.co_argcount
        if fam == "Categorical" and nargs == 1 and what(D.Categorical(tg.ones(2))).isnan().all():
            continue  # (Categorical's mean and variance are nan, checked below)
        extra = [value] if nargs == 2 else []
        try:
            both(fam, keys, what)[1](*[torch.tensor(a) for a in arrays + extra])
        except NotImplementedError:  # (Poisson's entropy, ...: neither library has it)
            with pytest.raises(NotImplementedError):
                both(fam, keys, what)[0](*[tg.tensor(a) for a in arrays + extra])
            continue
        compare_with_torch(*both(fam, keys, what), *arrays, *extra, rtol=RTOL.get(fam))
    if has_cdf:
        compare_with_torch(*both(fam, keys, lambda d, v: d.cdf(v)), *arrays, value)
        compare_with_torch(*both(fam, keys, lambda d, q: d.icdf(q)), *arrays,
                           np.array([0.1, 0.5, 0.9]))


@pytest.mark.parametrize("fam,params,value,has_cdf", CASES, ids=IDS)
def test_shapes_and_draws_match_torch(fam, params, value, has_cdf):
    ours = getattr(D, fam)(**{k: tg.tensor(v) for k, v in params.items()})
    theirs = getattr(PD, fam)(**{k: torch.tensor(v) for k, v in params.items()})
    assert (ours.batch_shape, ours.event_shape) == (tuple(theirs.batch_shape),
                                                     tuple(theirs.event_shape))
    assert ours.has_rsample == theirs.has_rsample
    for sample_shape in ((), (2,), (4, 1)):
        x = ours.sample(sample_shape)
        assert x.shape == tuple(theirs.sample(sample_shape).shape)
        assert x.dtype == np.dtype(str(theirs.sample().dtype).replace("torch.", ""))
        assert not x.requires_grad
        ours.log_prob(x)  # in the support: not refused
    if fam in ("Cauchy", "Categorical"):  # (no mean)
        return
    means = ours.sample((4000,)).numpy().mean(0)
    sd = ours.stddev.numpy()
    np.testing.assert_allclose(means, theirs.mean.numpy(),
                               atol=float(np.max(5 * sd / np.sqrt(4000))))


def test_categorical_mean_mode_support_and_draw_frequencies():
    probs = tg.tensor([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]])
    m, t = D.Categorical(probs), PD.Categorical(torch.tensor(probs.numpy()))
    assert m.mean.isnan().all() and m.mean.shape == (2,)
    np.testing.assert_array_equal(m.mode.numpy(), t.mode.numpy())
    np.testing.assert_array_equal(m.enumerate_support().numpy(), t.enumerate_support().numpy())
    np.testing.assert_array_equal(m.enumerate_support(False).numpy(),
                                  t.enumerate_support(False).numpy())
    tg.manual_seed(0)
    draws = m.sample((20000,)).numpy()
    assert draws.dtype == np.int64 and draws.shape == (20000, 2)
    freq = np.stack([(draws == k).mean(0) for k in range(3)], -1)
    np.testing.assert_allclose(freq, probs.numpy(), atol=0.02)


def test_rsample_is_differentiable_and_reparameterized():
    loc = tg.tensor([1.0, -2.0], requires_grad=True)
    scale = tg.tensor([0.5, 2.0], requires_grad=True)
    tg.manual_seed(1)
    x = D.Normal(loc, scale).rsample((3,))
    x.sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), [3.0, 3.0])
    eps = (x.detach() - loc.detach()) / scale.detach()
    np.testing.assert_allclose(scale.grad.numpy(), eps.sum(0).numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(NotImplementedError, match="concentration"):
        D.Gamma(tg.tensor(2.0, requires_grad=True), 1.0).rsample()


@pytest.mark.parametrize("fam,params,value,has_cdf", CASES, ids=IDS)
def test_kl_divergence_matches_torch(fam, params, value, has_cdf):
    other = {k: v * 0.7 + (0.1 if k in ("loc", "logits") else 0.0) if k != "probs"
             else simplex(*v.shape) for k, v in params.items()}
    if fam in ("Binomial", "Geometric", "Bernoulli") and "probs" in params:
        other["probs"] = rng.uniform(0.1, 0.9, params["probs"].shape)
    if "total_count" in params:
        other["total_count"] = params["total_count"]
    if "covariance_matrix" in params or "precision_matrix" in params:
        other[next(k for k in params if k.endswith("matrix"))] = spd(3)
    if fam == "Uniform":  # q's support must cover p's for a finite value
        other = dict(low=params["low"] - 1, high=params["high"] + 1)
    keys = list(params)
    n = len(keys)

    def kl(lib):
        def fn(*arrays):
            p = getattr(lib, fam)(**dict(zip(keys, arrays[:n])))
            q = getattr(lib, fam)(**dict(zip(keys, arrays[n:])))
            return lib.kl_divergence(p, q)
        return fn

    try:
        kl(PD)(*[torch.tensor(a) for a in (*params.values(), *other.values())])
    except NotImplementedError:  # neither library has this pair
        with pytest.raises(NotImplementedError, match="No KL"):
            kl(D)(*[tg.tensor(a) for a in (*params.values(), *other.values())])
        return
    compare_with_torch(kl(D), kl(PD), *params.values(), *other.values(), rtol=RTOL.get(fam))


def test_kl_of_independent_and_of_impossible_pairs():
    mu, sd = real(4, 2), pos(4, 2)
    p = D.Independent(D.Normal(tg.tensor(mu), tg.tensor(sd)), 1)
    q = D.Independent(D.Normal(tg.zeros(2, dtype=tg.float64), 1.0), 1)
    t = PD.kl_divergence(PD.Independent(PD.Normal(torch.tensor(mu), torch.tensor(sd)), 1),
                         PD.Independent(PD.Normal(torch.zeros(2, dtype=torch.float64), 1.0), 1))
    np.testing.assert_allclose(D.kl_divergence(p, q).numpy(), t.numpy(), rtol=1e-12)
    inf = D.kl_divergence(D.Categorical(tg.tensor([0.5, 0.5])),
                          D.Categorical(tg.tensor([1.0, 0.0])))
    assert inf.item() == float("inf")
    with pytest.raises(NotImplementedError, match="Normal and q of type Laplace"):
        D.kl_divergence(D.Normal(0.0, 1.0), D.Laplace(0.0, 1.0))


def test_register_kl_adds_a_pair_and_subclasses_dispatch_to_it():
    class MyNormal(D.Normal):
        pass

    assert D.kl_divergence(MyNormal(0.0, 1.0), D.Normal(1.0, 1.0)).item() == 0.5

    @D.register_kl(MyNormal, MyNormal)
    def _kl(p, q):
        return tg.tensor(42.0)

    assert D.kl_divergence(MyNormal(0.0, 1.0), MyNormal(1.0, 1.0)).item() == 42.0


def test_independent_shapes_log_prob_and_entropy():
    mu, sd = real(4, 3), pos(4, 3)
    for n in (0, 1, 2):
        ours = D.Independent(D.Normal(tg.tensor(mu), tg.tensor(sd)), n)
        theirs = PD.Independent(PD.Normal(torch.tensor(mu), torch.tensor(sd)), n)
        assert (ours.batch_shape, ours.event_shape) == (tuple(theirs.batch_shape),
                                                         tuple(theirs.event_shape))
        v = real(4, 3)
        np.testing.assert_allclose(ours.log_prob(tg.tensor(v)).numpy(),
                                   theirs.log_prob(torch.tensor(v)).numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours.entropy().numpy(), theirs.entropy().numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="reinterpreted_batch_ndims"):
        D.Independent(D.Normal(tg.zeros(3), 1.0), 2)


def test_expand_broadcasts_the_parameters():
    d = D.Normal(tg.tensor([0.0, 1.0]), 1.0).expand((3, 2))
    assert d.batch_shape == (3, 2) and d.sample().shape == (3, 2)
    np.testing.assert_allclose(d.log_prob(tg.zeros(3, 2)).numpy()[:, 1], [-1.4189385] * 3,
                               rtol=1e-6)
    c = D.Categorical(logits=tg.zeros(4)).expand((5,))
    assert c.batch_shape == (5,) and c.sample().shape == (5,)


@pytest.mark.filterwarnings("ignore:divide by zero", "ignore:invalid value")
@pytest.mark.parametrize("make,match", [
    (lambda: D.Normal(0.0, -1.0), "scale"),
    (lambda: D.Normal(tg.zeros(2), tg.tensor([1.0, 0.0])), "GreaterThan"),
    (lambda: D.Bernoulli(tg.tensor([1.5])), "probs"),
    (lambda: D.Categorical(tg.tensor([0.5, -0.5])), "simplex|probs"),
    (lambda: D.Categorical(), "Either `probs` or `logits`"),
    (lambda: D.Categorical(tg.ones(2), tg.ones(2)), "Either `probs` or `logits`"),
    (lambda: D.Exponential(tg.tensor([-1.0])), "rate"),
    (lambda: D.MultivariateNormal(tg.zeros(2), scale_tril=tg.ones(2, 2)), "scale_tril"),
    (lambda: D.MultivariateNormal(tg.zeros(2)), "Exactly one"),
])
def test_bad_parameters_raise_value_error_as_torch(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_values_outside_the_support_raise_unless_validation_is_off():
    with pytest.raises(ValueError, match="support"):
        D.Categorical(tg.ones(3)).log_prob(tg.tensor(3))
    with pytest.raises(ValueError, match="support"):
        D.Exponential(1.0).log_prob(tg.tensor(-1.0))
    with pytest.raises(ValueError, match="broadcastable"):
        D.Normal(tg.zeros(3), 1.0).log_prob(tg.zeros(2))
    assert D.Exponential(1.0, validate_args=False).log_prob(tg.tensor(-1.0)).item() == 1.0
    D.Distribution.set_default_validate_args(False)
    try:
        assert D.Normal(0.0, -1.0).scale.item() == -1.0
    finally:
        D.Distribution.set_default_validate_args(True)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_a_compiled_function_checks_every_calls_parameters_and_values(backend):
    nll = tg.compile(lambda s: -D.Normal(0.0, s).log_prob(tg.tensor(0.5)), backend=backend)
    with pytest.raises(ValueError, match="scale"):
        nll(tg.tensor(-1.0))
    for _ in range(3):  # (eager, traced, then the program)
        assert abs(nll(tg.tensor(1.0)).item() - 1.0439385) < 1e-6
    with pytest.raises(ValueError, match="Expected parameter scale .* GreaterThan"):
        nll(tg.tensor(-1.0))  # the program checks it too (it returned nan)
    lp = tg.compile(lambda p, a: D.Categorical(probs=p).log_prob(a), backend=backend)
    for _ in range(3):
        assert abs(lp(tg.tensor([0.25, 0.75]), tg.tensor(1)).item() - np.log(0.75)) < 1e-6
    with pytest.raises(ValueError, match="within the support"):
        lp(tg.tensor([0.25, 0.75]), tg.tensor(2))
    u = tg.compile(lambda lo, hi: D.Uniform(lo, hi).rsample((2,)), backend=backend)
    for _ in range(3):
        u(tg.zeros(1), tg.ones(1))
    with pytest.raises(ValueError, match="expects low < high"):
        u(tg.ones(1), tg.zeros(1))
    # (constructors that compare their parameters read them as the checks do)
    f = tg.compile(lambda lo, x: D.Uniform(lo, lo + 2).log_prob(x)
                   + D.Geometric(tg.tensor(0.3)).log_prob(tg.tensor(2.0)))
    for lo in (0.0, 0.5):
        assert abs(f(tg.tensor(lo), tg.tensor(1.0)).item() + 2.6105) < 1e-4


def test_constraints_check_values():
    C = D.constraints
    np.testing.assert_array_equal(C.positive.check(tg.tensor([1.0, 0.0, -1.0])).numpy(),
                                  [True, False, False])
    np.testing.assert_array_equal(C.simplex.check(tg.tensor([[0.5, 0.5], [0.5, 0.6]])).numpy(),
                                  [True, False])
    assert C.integer_interval(0, 2).check(tg.tensor(2)).item()
    assert repr(C.positive) == "GreaterThan(lower_bound=0.0)"


def test_a_compiled_log_likelihood_matches_eager():
    def nll(mu, log_sigma, logits, x, k):
        n = D.Normal(mu, log_sigma.exp()).log_prob(x).sum()
        return n + D.Categorical(logits=logits).log_prob(k).sum() - D.Categorical(
            logits=logits).entropy().sum()

    compiled = tg.compile(nll)
    for seed in range(3):
        r = np.random.default_rng(seed)
        arrays = [r.standard_normal(3), r.standard_normal(3), r.standard_normal((3, 4)),
                  r.standard_normal(3)]
        k = tg.tensor(r.integers(0, 4, 3))
        got = []
        for f in (nll, compiled):
            xs = [tg.tensor(a, requires_grad=True) for a in arrays]
            y = f(*xs, k)
            y.backward()
            got.append([y.item()] + [x.grad.numpy() for x in xs])
        for a, b in zip(got[1], got[0]):
            np.testing.assert_allclose(a, b, rtol=1e-12)


def test_solve_triangular_matches_torch():
    A, B = real(2, 3, 3) + 3 * np.eye(3), real(2, 3, 2)
    for upper in (False, True):
        for left in (True, False):
            for unit in (False, True):
                b = B if left else B.swapaxes(-1, -2)
                kw = dict(upper=upper, left=left, unitriangular=unit)
                compare_with_torch(lambda a, b, kw=kw: tg.linalg.solve_triangular(a, b, **kw),
                                   lambda a, b, kw=kw: torch.linalg.solve_triangular(a, b, **kw),
                                   A, b)
    with pytest.raises(tg.ShapeError, match="unsqueeze"):
        tg.linalg.solve_triangular(tg.eye(2), tg.ones(2), upper=False)


TRANSFORMS = [
    ("ExpTransform", ()), ("SigmoidTransform", ()), ("TanhTransform", ()),
    ("AffineTransform", (0.5, -2.0)), ("PowerTransform", (2.0,)),
]


@pytest.mark.parametrize("name,args", TRANSFORMS, ids=[t[0] for t in TRANSFORMS])
def test_transformed_distributions_match_torch(name, args):
    loc, scale = real(4), pos(4)
    base_value = real(4) * 0.5

    def make(lib):
        transforms = lib.transforms if lib is D else PD.transforms

        def fn(loc, scale, x):
            base = lib.Normal(loc, scale) if name != "PowerTransform" else lib.LogNormal(
                loc, scale)
            t = getattr(transforms, name)(*args)
            d = lib.TransformedDistribution(base, [t])
            y = t(x if name != "PowerTransform" else x.exp())
            return d.log_prob(y) + t.log_abs_det_jacobian(t.inv(y), y)
        return fn

    compare_with_torch(make(D), make(PD), loc, scale, base_value)


@pytest.mark.filterwarnings("ignore:divide by zero", "ignore:invalid value")
def test_tanh_transform_cache_inverts_the_draw_itself():
    tg.manual_seed(0)
    d = D.TransformedDistribution(D.Normal(tg.zeros(3), 4.0), D.TanhTransform(cache_size=1))
    y = d.rsample()
    y.data.copy_(y.data.sign())  # saturated: atanh(+-1) is infinite, the cached x is not
    assert y.abs().eq(1).all() and d.log_prob(y).isfinite().all()
    uncached = D.TransformedDistribution(D.Normal(tg.zeros(3), 4.0), D.TanhTransform())
    assert not uncached.log_prob(y).isfinite().any()


def test_compose_transform_and_inverse():
    t = D.ComposeTransform([D.AffineTransform(1.0, 2.0), D.ExpTransform()])
    tt = PD.ComposeTransform([PD.AffineTransform(1.0, 2.0), PD.ExpTransform()])
    x = real(3)
    y = t(tg.tensor(x))
    np.testing.assert_allclose(y.numpy(), tt(torch.tensor(x)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(t.inv(y).numpy(), x, rtol=1e-12)
    np.testing.assert_allclose(t.log_abs_det_jacobian(tg.tensor(x), y).numpy(),
                               tt.log_abs_det_jacobian(torch.tensor(x),
                                                       torch.tensor(y.numpy())).numpy(),
                               rtol=1e-12)
    assert t.inv.inv == t and D.ExpTransform() == D.ExpTransform()


def test_multinomial_matches_torch():
    probs, counts = simplex(2, 3), np.array([[2.0, 0.0, 3.0], [1.0, 1.0, 3.0]])
    compare_with_torch(lambda p, c: D.Multinomial(5, p).log_prob(c),
                       lambda p, c: PD.Multinomial(5, p).log_prob(c), probs, counts,
                       rtol=1e-8)
    draws = D.Multinomial(5, tg.tensor(probs)).sample((7,))
    assert draws.shape == (7, 2, 3) and (draws.sum(-1) == 5).all()


def test_mixture_same_family_matches_torch():
    logits, mu, sd, x = real(2, 3), real(2, 3, 2), pos(2, 3, 2), real(4, 2, 2)

    def make(lib):
        def mix(logits, mu, sd):
            return lib.MixtureSameFamily(lib.Categorical(logits=logits),
                                         lib.Independent(lib.Normal(mu, sd), 1))
        return mix

    for what in (lambda d, v: d.log_prob(v), lambda d, v: d.mean * 1.0,
                 lambda d, v: d.variance * 1.0):
        compare_with_torch(lambda a, b, c, v, what=what: what(make(D)(a, b, c), v),
                           lambda a, b, c, v, what=what: what(make(PD)(a, b, c), v),
                           logits, mu, sd, x)
    d = make(D)(tg.tensor(logits), tg.tensor(mu), tg.tensor(sd))
    assert (d.batch_shape, d.event_shape) == ((2,), (2,))
    assert d.sample((5,)).shape == (5, 2, 2)
    np.testing.assert_allclose(
        D.MixtureSameFamily(D.Categorical(tg.ones(2)), D.Normal(tg.tensor([-1.0, 1.0]), 1.0)
                            ).cdf(tg.tensor(0.0)).item(), 0.5, rtol=1e-6)


def test_relaxed_distributions_match_torch():
    import tracegrad.distributions.relaxed_bernoulli as RB
    import tracegrad.distributions.relaxed_categorical as RC

    PRB = torch.distributions.relaxed_bernoulli
    PRC = torch.distributions.relaxed_categorical
    logits, temp, v = real(2, 4), np.array(0.7), rng.dirichlet(np.ones(4), 2)
    pb, vb = rng.uniform(0.2, 0.8, 3), rng.uniform(0.1, 0.9, 3)
    for ours, theirs, args in [
        (lambda t, l, x: D.RelaxedOneHotCategorical(t, logits=l).log_prob(x),
         lambda t, l, x: PD.RelaxedOneHotCategorical(t, logits=l).log_prob(x), (logits, v)),
        (lambda t, p, x: D.RelaxedOneHotCategorical(t, probs=p).log_prob(x),
         lambda t, p, x: PD.RelaxedOneHotCategorical(t, probs=p).log_prob(x), (v, v)),
        (lambda t, l, x: RC.ExpRelaxedCategorical(t, logits=l).log_prob(x),
         lambda t, l, x: PRC.ExpRelaxedCategorical(t, logits=l).log_prob(x), (logits, np.log(v))),
        (lambda t, p, x: D.RelaxedBernoulli(t, probs=p).log_prob(x),
         lambda t, p, x: PD.RelaxedBernoulli(t, probs=p).log_prob(x), (pb, vb)),
        (lambda t, p, x: RB.LogitRelaxedBernoulli(t, logits=p).log_prob(x),
         lambda t, p, x: PRB.LogitRelaxedBernoulli(t, logits=p).log_prob(x), (pb, vb)),
    ]:
        compare_with_torch(ours, theirs, temp, *args)
    lg = tg.zeros(2, 3, requires_grad=True)
    draws = D.RelaxedOneHotCategorical(tg.tensor(0.5), logits=lg).rsample((5,))
    assert draws.shape == (5, 2, 3)
    np.testing.assert_allclose(draws.sum(-1).detach().numpy(), 1.0, rtol=1e-5)
    draws.pow(2).sum().backward()
    assert lg.grad is not None and np.isfinite(lg.grad.numpy()).all()
