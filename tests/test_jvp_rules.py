"""Every primitive's forward-mode (JVP) rule, checked against float64 central finite
differences, against its own reverse mode (jacfwd == jacrev, through batched tangents), and
against ``torch.func.jvp`` on hypothesis-generated shapes.

The primitives come from the registry: every primitive with a VJP must have a JVP (its own,
or derived from being elementwise or linear), and an example call in test_op_facts.EXAMPLES.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_op_facts import EXAMPLES

import tracegrad as tg
from tracegrad.ops import PRIMITIVES as P
from tracegrad.tensor import apply

torch = pytest.importorskip("torch")
F64 = np.dtype(np.float64)

DIFFERENTIABLE = sorted(name for name, p in P.items() if p.vjp is not None)


def test_every_differentiable_primitive_has_a_jvp_rule_and_an_example():
    missing = [n for n in DIFFERENTIABLE if P[n].jvp is None and P[n].linear is None]
    assert not missing, (f"primitives with a VJP but no JVP: {missing}; give each jvp= or "
                         f"linear= in its register(...)")
    assert not [n for n in DIFFERENTIABLE if n not in EXAMPLES], "add an example to EXAMPLES"


# ops whose domain is not all of [0.5, 2]
DOMAINS = {"asin": (-0.9, 0.9), "acos": (-0.9, 0.9), "atanh": (-0.9, 0.9), "acosh": (1.1, 3.0),
           "erfinv": (-0.9, 0.9)}
# matrix functions of a symmetric (positive-definite) matrix: they read one triangle, and
# their derivative is the one along symmetric directions (tangents are symmetrized)
SYMMETRIC = {"eigh", "eigvalsh", "cholesky"}


def _symmetric(a):
    return (a + np.swapaxes(a, -1, -2)) / 2


def _operands(name, operands, attrs, rng):
    """float64 arrays for float operands (in a domain every rule is smooth on), valid
    indices for int ones, masks for bool ones."""
    arrays = []
    for shape, dt in operands:
        if dt.kind == "f":
            a = rng.uniform(*DOMAINS.get(name, (0.5, 2.0)), size=shape)
            if name in ("max", "min", "maximum"):  # no ties
                a = a + np.arange(a.size).reshape(shape) * 1e-3
            if name in SYMMETRIC:  # (distinct eigenvalues, positive-definite)
                a = a @ np.swapaxes(a, -1, -2) + np.diag(np.arange(1.0, shape[-1] + 1))
            arrays.append(a.astype(F64))
        elif dt.kind == "b":
            arrays.append(rng.random(shape) < 0.5)
        else:  # indices: below every dimension of the first operand, so valid for any
            bound = min(operands[0][0])
            arrays.append(rng.integers(0, bound, size=shape).astype(np.int64))
    return arrays


def _cases():
    for name in DIFFERENTIABLE:
        for k, (operands, attrs) in enumerate(EXAMPLES.get(name, [])):
            yield pytest.param(name, operands, attrs, id=f"{name}-{k}")


def _fn(name, arrays, attrs, floats):
    """The primitive as a function of its float operands (the others fixed)."""
    def f(*xs):
        it = iter(xs)
        args = [next(it) if i in floats else tg.tensor(a) for i, a in enumerate(arrays)]
        return apply(P[name], *args, **attrs)

    return f


def _numeric_jvp(f, xs, vs, h=1e-6):
    up = f(*[tg.tensor(x + h * v) for x, v in zip(xs, vs)]).numpy()
    down = f(*[tg.tensor(x - h * v) for x, v in zip(xs, vs)]).numpy()
    return (up - down) / (2 * h)


@pytest.mark.parametrize("name, operands, attrs", list(_cases()))
def test_jvp_matches_finite_differences_and_reverse_mode(name, operands, attrs):
    rng = np.random.default_rng(0)
    attrs = dict(attrs)
    if "dtype" in attrs:
        attrs["dtype"] = F64
    arrays = _operands(name, operands, attrs, rng)
    floats = [i for i, (_, dt) in enumerate(operands) if dt.kind == "f"]
    f = _fn(name, arrays, attrs, floats)
    xs = [arrays[i] for i in floats]
    vs = [rng.standard_normal(x.shape) for x in xs]
    if name in SYMMETRIC:
        vs = [_symmetric(v) for v in vs]
    out, tangent = tg.jvp(f, tuple(tg.tensor(x) for x in xs), tuple(tg.tensor(v) for v in vs))
    np.testing.assert_allclose(tangent.numpy(), _numeric_jvp(f, xs, vs), rtol=1e-6, atol=1e-7)
    assert tangent.shape == out.shape and tangent.dtype == out.dtype
    # each float operand alone (a None tangent for the others), then the whole Jacobian
    # both ways: jacfwd pushes a batch of tangents through the rule
    for k in range(len(xs)):
        def g(x, k=k):
            return f(*[x if j == k else tg.tensor(xs[j]) for j in range(len(xs))])

        _, tk = tg.jvp(g, (tg.tensor(xs[k]),), (tg.tensor(vs[k]),))
        only = [v if j == k else np.zeros_like(v) for j, v in enumerate(vs)]
        np.testing.assert_allclose(tk.numpy(), _numeric_jvp(f, xs, only), rtol=1e-6,
                                   atol=1e-7)
    args = tuple(tg.tensor(x) for x in xs)
    nums = tuple(range(len(xs)))
    fwd = tg.jacfwd(f, argnums=nums)(*args)
    rev = tg.jacrev(f, argnums=nums)(*args)
    for jf, jr in zip(fwd, rev):
        np.testing.assert_allclose(jf.numpy(), jr.numpy(), rtol=1e-9, atol=1e-12)


LINEAR = sorted(name for name in DIFFERENTIABLE if P[name].linear is not None)


@pytest.mark.parametrize("name", LINEAR)
def test_a_primitive_declared_linear_is_linear(name):
    """f(x + 2.5 y) == f(x) + 2.5 f(y) in the float operands (indices and masks fixed):
    what makes the primitive applied to tangents its JVP."""
    rng = np.random.default_rng(3)
    for operands, attrs in EXAMPLES[name]:
        attrs = {k: (F64 if k == "dtype" else v) for k, v in attrs.items()}
        if "value" in attrs:  # (pad: linear with a zero padding value)
            attrs["value"] = 0.0
        arrays = _operands(name, operands, attrs, rng)
        floats = [i for i, (_, dt) in enumerate(operands) if dt.kind == "f"]
        f = _fn(name, arrays, attrs, floats)
        xs = [rng.standard_normal(arrays[i].shape) for i in floats]
        ys = [rng.standard_normal(arrays[i].shape) for i in floats]
        lhs = f(*[tg.tensor(x + 2.5 * y) for x, y in zip(xs, ys)]).numpy()
        rhs = f(*map(tg.tensor, xs)).numpy() + 2.5 * f(*map(tg.tensor, ys)).numpy()
        np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- against torch.func.jvp

UNARY = {
    "neg": torch.neg, "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt,
    "tanh": torch.tanh, "sin": torch.sin, "cos": torch.cos, "sigmoid": torch.sigmoid,
    "softplus": torch.nn.functional.softplus, "erf": torch.erf, "relu": torch.relu,
    "tan": torch.tan, "asin": torch.asin, "acos": torch.acos, "atan": torch.atan,
    "asinh": torch.asinh, "acosh": torch.acosh, "atanh": torch.atanh, "erfc": torch.erfc,
    "lgamma": torch.lgamma, "digamma": torch.digamma, "erfinv": torch.erfinv, "i0": torch.i0,
    "i1": torch.special.i1,
}
BINARY = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
          "pow": torch.pow, "maximum": torch.maximum, "atan2": torch.atan2,
          "xlogy": torch.xlogy}

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


def _compare_with_torch(ours, theirs, arrays, seed=0):
    rng = np.random.default_rng(seed)
    vs = [rng.standard_normal(a.shape) for a in arrays]
    _, t = tg.jvp(ours, tuple(tg.tensor(a) for a in arrays), tuple(tg.tensor(v) for v in vs))
    _, tt = torch.func.jvp(theirs, tuple(torch.tensor(a) for a in arrays),
                           tuple(torch.tensor(v) for v in vs))
    np.testing.assert_allclose(t.numpy(), tt.numpy(), rtol=1e-7, atol=1e-9)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(UNARY)), shape=shapes, seed=st.integers(0, 2**16))
def test_unary_jvp_matches_torch(name, shape, seed):
    x = np.random.default_rng(seed).uniform(*DOMAINS.get(name, (0.5, 2.0)), size=shape)
    _compare_with_torch(lambda t: apply(P[name], t), UNARY[name], [x], seed)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(BINARY)),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4),
       seed=st.integers(0, 2**16))
def test_binary_jvp_matches_torch_with_broadcasting(name, shapes, seed):
    rng = np.random.default_rng(seed)
    a, b = (rng.uniform(0.5, 2.0, size=s) for s in shapes.input_shapes)
    _compare_with_torch(lambda x, y: apply(P[name], x, y), BINARY[name], [a, b], seed)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4),
       data=st.data())
def test_reductions_and_movement_jvp_match_torch(shape, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.standard_normal(shape) + np.arange(np.prod(shape)).reshape(shape) * 1e-3
    nd = len(shape)
    dim = data.draw(st.integers(0, nd - 1))
    keep = data.draw(st.booleans())
    perm = tuple(data.draw(st.permutations(range(nd))))
    cases = [
        (lambda t: t.sum(dim, keepdim=keep), lambda t: t.sum(dim, keepdim=keep)),
        (lambda t: t.amax(dim, keepdim=keep), lambda t: t.amax(dim, keepdim=keep)),
        (lambda t: t.amin(dim, keepdim=keep), lambda t: t.amin(dim, keepdim=keep)),
        (lambda t: tg.log_softmax(t, dim), lambda t: torch.log_softmax(t, dim)),
        (lambda t: t.permute(perm), lambda t: t.permute(perm)),
        (lambda t: t.reshape(-1), lambda t: t.reshape(-1)),
        (lambda t: t.unsqueeze(0).expand((3,) + shape), lambda t: t.unsqueeze(0).expand(
            (3,) + shape)),
        (lambda t: t[:1], lambda t: t[:1]),
        (lambda t: tg.cat([t, t * 2], dim), lambda t: torch.cat([t, t * 2], dim)),
    ]
    for ours, theirs in cases:
        _compare_with_torch(ours, theirs, [x])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=st.integers(1, 4), k=st.integers(1, 4), n=st.integers(1, 4),
       batch=st.sampled_from([(), (2,), (1, 3)]), seed=st.integers(0, 2**16))
def test_matmul_and_linear_jvp_match_torch(m, k, n, batch, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(batch + (m, k))
    b = rng.standard_normal((k, n))
    v = rng.standard_normal(k)
    _compare_with_torch(lambda x, y: x @ y, torch.matmul, [a, b], seed)
    _compare_with_torch(lambda x, y: x @ y, torch.matmul, [a, v], seed)
    _compare_with_torch(lambda x, y: x @ y, torch.matmul, [v, b], seed)
    w, bias = rng.standard_normal((n, k)), rng.standard_normal(n)
    _compare_with_torch(tg.nn.functional.linear, torch.nn.functional.linear, [a, w, bias], seed)


def test_indexing_jvps_match_torch():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4, 3))
    idx = np.array([0, 3, 3, 1])
    _compare_with_torch(lambda t: t[idx], lambda t: t[torch.tensor(idx)], [x])
    sep = np.array([0, 2, 2, 1])  # advanced indices apart: NumPy puts their dimension first
    _compare_with_torch(lambda t: t[idx, :, sep], lambda t: t[torch.tensor(idx), :,
                                                              torch.tensor(sep)], [x])
    _compare_with_torch(lambda t: t[1:4, ::2, None], lambda t: t[1:4, ::2, None], [x])
    mask = x[..., 0] > 0

    def ours(t, v):
        t = t * 1
        t[idx[:2]] = v
        return t

    def theirs(t, v):
        t = t * 1
        t[torch.tensor(idx[:2])] = v
        return t

    _compare_with_torch(ours, theirs, [x, rng.standard_normal((4, 3))])
    _compare_with_torch(lambda t: t[mask], lambda t: t[torch.tensor(mask)], [x])
    _compare_with_torch(lambda t: tg.nn.functional.pad(t, (1, 2)),
                        lambda t: torch.nn.functional.pad(t, (1, 2)), [x])


def test_nll_and_cross_entropy_jvp_match_torch():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((6, 5))
    target = rng.integers(0, 5, size=6)
    _compare_with_torch(lambda t: tg.nn.functional.cross_entropy(t, tg.tensor(target)),
                        lambda t: torch.nn.functional.cross_entropy(t, torch.tensor(target)),
                        [logits])
