"""tg.nn.functional's PyTorch-parity composites against torch.nn.functional, in float64:
values, first gradients, and second gradients for a few (grad of grad through tg.grad)."""

from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RTOL, ATOL = 1e-10, 1e-12


def both(*arrays, constant=()):
    """The same float64 arrays as tracegrad and torch leaves (those at the indices in
    ``constant`` without grad)."""
    flags = [a.dtype.kind == "f" and i not in constant for i, a in enumerate(arrays)]
    ours = [tg.tensor(a, requires_grad=f) for a, f in zip(arrays, flags)]
    theirs = [torch.tensor(a, requires_grad=f) for a, f in zip(arrays, flags)]
    return ours, theirs


def check(fn_ours, fn_torch, *arrays, seed_grad=True, constant=()):
    """Values equal; gradients of sum(out * w) (w random) equal for every float input."""
    ours, theirs = both(*arrays, constant=constant)
    out, tout = fn_ours(*ours), fn_torch(*theirs)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=RTOL, atol=ATOL)
    if not seed_grad:
        return
    w = np.random.default_rng(1).standard_normal(tout.shape)
    (out * tg.tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    for a, b in zip(ours, theirs):
        if b.requires_grad:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-11)


rng = np.random.default_rng(0)
X = rng.standard_normal((4, 5)) * 3
Y = rng.standard_normal((4, 5)) * 3


@pytest.mark.parametrize("name, ours, theirs", [
    ("leaky_relu", lambda x: F.leaky_relu(x), lambda x: TF.leaky_relu(x)),
    ("leaky_relu 0.2", lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    ("elu", lambda x: F.elu(x), lambda x: TF.elu(x)),
    ("elu alpha", lambda x: F.elu(x, alpha=0.7), lambda x: TF.elu(x, alpha=0.7)),
    ("silu", F.silu, TF.silu),
    ("softplus", lambda x: F.softplus(x), lambda x: TF.softplus(x)),
    ("softplus beta", lambda x: F.softplus(x, beta=2.0, threshold=3.0),
     lambda x: TF.softplus(x, beta=2.0, threshold=3.0)),
    ("normalize", lambda x: F.normalize(x), lambda x: TF.normalize(x)),
    ("normalize p1 dim0", lambda x: F.normalize(x, p=1, dim=0),
     lambda x: TF.normalize(x, p=1, dim=0)),
])
def test_unary(name, ours, theirs):
    check(ours, theirs, X)


def test_elu_large_inputs_have_finite_gradients():
    x = tg.tensor([1000.0, -1000.0, 0.5], dtype=tg.float64, requires_grad=True)
    F.elu(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 0.0, 1.0])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name, ours, theirs", [
    ("smooth_l1", lambda r: lambda a, b: F.smooth_l1_loss(a, b, reduction=r),
     lambda r: lambda a, b: TF.smooth_l1_loss(a, b, reduction=r)),
    ("smooth_l1 beta", lambda r: lambda a, b: F.smooth_l1_loss(a, b, reduction=r, beta=2.5),
     lambda r: lambda a, b: TF.smooth_l1_loss(a, b, reduction=r, beta=2.5)),
    ("smooth_l1 beta0", lambda r: lambda a, b: F.smooth_l1_loss(a, b, reduction=r, beta=0.0),
     lambda r: lambda a, b: TF.smooth_l1_loss(a, b, reduction=r, beta=0.0)),
    ("huber", lambda r: lambda a, b: F.huber_loss(a, b, reduction=r),
     lambda r: lambda a, b: TF.huber_loss(a, b, reduction=r)),
    ("huber delta", lambda r: lambda a, b: F.huber_loss(a, b, reduction=r, delta=2.0),
     lambda r: lambda a, b: TF.huber_loss(a, b, reduction=r, delta=2.0)),
    ("l1", lambda r: lambda a, b: F.l1_loss(a, b, reduction=r),
     lambda r: lambda a, b: TF.l1_loss(a, b, reduction=r)),
    ("mse", lambda r: lambda a, b: F.mse_loss(a, b, reduction=r),
     lambda r: lambda a, b: TF.mse_loss(a, b, reduction=r)),
])
def test_regression_losses(name, ours, theirs, reduction):
    check(ours(reduction), theirs(reduction), X, Y)


@pytest.mark.filterwarnings("ignore:reduction. 'mean'")
@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    logp = np.log(np.random.default_rng(2).dirichlet(np.ones(5), size=4))
    q = np.random.default_rng(3).dirichlet(np.ones(5), size=4)
    q[0, 1] = 0.0  # 0 log 0 = 0
    target = np.log(q + 1e-3) if log_target else q
    check(lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=log_target),
          lambda a, b: TF.kl_div(a, b, reduction=reduction, log_target=log_target),
          logp, target, constant=() if log_target else (1,))
    # (torch's gradient for a target entry of exactly 0 is nan, ours finite: the target's
    # gradient is compared only where both are defined, i.e. with log_target.)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_with_weight_and_ignore_index(reduction):
    logp = np.log(np.random.default_rng(4).dirichlet(np.ones(5), size=6))
    target = np.array([0, 4, 2, -100, 1, 4])
    w = np.linspace(0.5, 2.0, 5)
    check(lambda a, t, w: F.nll_loss(a, t, weight=w, reduction=reduction),
          lambda a, t, w: TF.nll_loss(a, t, weight=w, reduction=reduction),
          logp, target, w, constant=(2,))


@pytest.mark.parametrize("shape1, shape2, dim", [((4, 5), (4, 5), 1), ((4, 5), (1, 5), 1),
                                                 ((3, 4, 5), (3, 4, 5), -1),
                                                 ((4, 5), (4, 5), 0)])
def test_cosine_similarity(shape1, shape2, dim):
    g = np.random.default_rng(5)
    check(lambda a, b: F.cosine_similarity(a, b, dim=dim),
          lambda a, b: TF.cosine_similarity(a, b, dim=dim),
          g.standard_normal(shape1), g.standard_normal(shape2))


def test_cosine_similarity_shape_error_is_also_a_runtime_error():
    with pytest.raises(RuntimeError, match="cosine_similarity"):
        F.cosine_similarity(tg.ones(3, 4), tg.ones(2, 4))


@pytest.mark.parametrize("kind", ["plain", "causal", "bool mask", "float mask", "scale",
                                  "cross"])
def test_scaled_dot_product_attention(kind):
    g = np.random.default_rng(6)
    L, S = 4, (6 if kind == "cross" else 4)
    q, k, v = g.standard_normal((2, 3, L, 8)), g.standard_normal((2, 3, S, 8)), \
        g.standard_normal((2, 3, S, 5))
    kwargs: dict = {}
    arrays = [q, k, v]
    if kind == "causal":
        kwargs["is_causal"] = True
    if kind == "scale":
        kwargs["scale"] = 0.3
    if kind == "bool mask":
        m = g.random((L, S)) > 0.3
        m[:, 0] = True  # every query sees at least one key (else both give nan)
        arrays.append(m)
    if kind == "float mask":
        arrays.append(g.standard_normal((2, 1, L, S)))
    if len(arrays) == 4:
        ours = lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m)  # noqa
        theirs = lambda q, k, v, m: TF.scaled_dot_product_attention(q, k, v, attn_mask=m)  # noqa
    else:
        ours = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kwargs)  # noqa
        theirs = lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, **kwargs)  # noqa
    check(ours, theirs, *arrays)


def test_scaled_dot_product_attention_names_the_shapes():
    with pytest.raises(tg.ShapeError, match=r"scaled_dot_product_attention.*\(2, 4, 8\)"):
        F.scaled_dot_product_attention(tg.ones(2, 4, 8), tg.ones(2, 4, 7), tg.ones(2, 4, 7))


@pytest.mark.parametrize("groups", [1, 2, 6])
def test_group_norm(groups):
    g = np.random.default_rng(7)
    x, w, b = g.standard_normal((2, 6, 3, 4)), g.standard_normal(6), g.standard_normal(6)
    check(lambda x, w, b: F.group_norm(x, groups, w, b),
          lambda x, w, b: TF.group_norm(x, groups, w, b), x, w, b)


@pytest.mark.parametrize("size", [(1, 1), (2, 3), 3, (5, 7), (None, 2), (4, 6)])
def test_adaptive_avg_pool2d(size):
    x = np.random.default_rng(8).standard_normal((2, 3, 8, 12))
    if size == (5, 7) or size == (4, 6):
        x = x[:, :, :7, :9]  # windows that overlap / do not divide
    check(lambda x: F.adaptive_avg_pool2d(x, size), lambda x: TF.adaptive_avg_pool2d(x, size),
          np.ascontiguousarray(x))


def test_unflatten_and_one_hot():
    x = tg.arange(24).reshape(2, 12)
    assert F.unflatten(x, 1, (3, -1)).shape == (2, 3, 4)
    np.testing.assert_array_equal(
        F.unflatten(x, -1, (3, 4)).numpy(), torch.arange(24).reshape(2, 12).unflatten(
            -1, (3, 4)).numpy())
    idx = np.array([0, 3, 1])
    np.testing.assert_array_equal(F.one_hot(tg.tensor(idx), 5).numpy(),
                                  TF.one_hot(torch.tensor(idx), 5).numpy())


# ---------------------------------------------------------------- second order


@pytest.mark.parametrize("name, ours, theirs", [
    ("elu", lambda x: F.elu(x, 0.7), lambda x: TF.elu(x, 0.7)),
    ("softplus", lambda x: F.softplus(x, beta=2.0), lambda x: TF.softplus(x, beta=2.0)),
    ("normalize", lambda x: F.normalize(x), lambda x: TF.normalize(x)),
    ("huber", lambda x: F.huber_loss(x, tg.tensor(Y), reduction="none", delta=2.0),
     lambda x: TF.huber_loss(x, torch.tensor(Y), reduction="none", delta=2.0)),
])
def test_second_order(name, ours, theirs):
    """d/dx sum(w * d/dx sum(f(x)^3)): tg.grad nested, against torch's create_graph."""
    w = np.random.default_rng(9).standard_normal(X.shape)

    def inner(x):
        return (ours(x) ** 3).sum()

    def outer(x):
        return (tg.grad(inner)(x) * tg.tensor(w)).sum()

    ours_g2 = tg.grad(outer)(tg.tensor(X))
    tx = torch.tensor(X, requires_grad=True)
    (g1,) = torch.autograd.grad((theirs(tx) ** 3).sum(), tx, create_graph=True)
    (g2,) = torch.autograd.grad((g1 * torch.tensor(w)).sum(), tx)
    np.testing.assert_allclose(ours_g2.numpy(), g2.numpy(), rtol=1e-9, atol=1e-10)
    assert np.abs(g2.numpy()).max() > 0.1  # the check is not vacuous


def test_shape_error_is_a_runtime_error_and_a_value_error():
    assert issubclass(tg.ShapeError, RuntimeError) and issubclass(tg.ShapeError, ValueError)
    caught = []
    for exc in (RuntimeError, ValueError):
        try:
            tg.ones(2, 3) @ tg.ones(2, 3)
        except exc as e:  # ported PyTorch code catches RuntimeError
            caught.append(str(e))
    assert len(caught) == 2 and "(2, 3)" in caught[0]
    with pytest.raises(RuntimeError, match="mse_loss"):
        F.mse_loss(tg.ones(3), tg.ones(4))
