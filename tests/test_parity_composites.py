"""PyTorch's array functions that tracegrad builds from its other ops (tile, hstack, meshgrid,
diff, cross, tensordot, cdist, cov, ...): values, dtypes and gradients (first and second
order, float64) against torch 2.13 on shapes drawn by hypothesis; each compiled by
`tg.compile` against eager; int, bool and float32 results; errors; the creation functions.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from gradcheck import check_grads, compare_with_torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_parity_ops import (
    FEW,
    PAIRS,
    POSITIVE_SHAPES,
    Case,
    _normal,
    a_dim,
    check_compiled_agrees_with_eager,
    check_forward_mode,
    check_matches_torch,
    one,
    weighted,
)

import tracegrad as tg

torch = pytest.importorskip("torch")

ANY_SHAPE = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)
MATRICES = hnp.array_shapes(min_dims=2, max_dims=3, min_side=0, max_side=4)


def shaped(*shapes):
    """Inputs of fixed shapes, one example each (the shapes drawn by the caller's strategy)."""
    return lambda rng: [_normal(rng, s) for s in shapes]


def pair_same(shapes=ANY_SHAPE):
    def inputs(draw):
        s = draw(shapes)
        return shaped(s, s), {}
    return inputs


def pair_broadcast(draw):
    (sa, sb), _ = draw(PAIRS)
    return shaped(sa, sb), {}


def joined_along(dim_of):
    """Two tensors that agree except along one dimension (``dim_of(ndim)``)."""
    def inputs(draw):
        s = draw(hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=3))
        d = dim_of(len(s))
        t = s[:d] + (draw(st.integers(0, 3)),) + s[d + 1:]
        return shaped(s, t), {}
    return inputs


def tile_inputs(draw):
    s = draw(ANY_SHAPE)
    return shaped(s), {"reps": tuple(draw(st.lists(st.integers(0, 2), min_size=0, max_size=4)))}


def rot90_inputs(draw):
    s = draw(MATRICES)
    d0, d1 = draw(st.lists(st.integers(-len(s), len(s) - 1), min_size=2, max_size=2).filter(
        lambda ds: ds[0] % len(s) != ds[1] % len(s)))
    return shaped(s), {"k": draw(st.integers(-5, 5)), "dims": (d0, d1)}


def diff_inputs(draw):
    s = draw(POSITIVE_SHAPES)
    d = draw(a_dim(s)) % len(s)
    pre = s[:d] + (draw(st.integers(0, 2)),) + s[d + 1:]
    post = s[:d] + (draw(st.integers(0, 2)),) + s[d + 1:]
    return shaped(s, pre, post), {"n": draw(st.integers(0, 3)), "dim": d}


def take_inputs(draw):
    s = draw(POSITIVE_SHAPES)
    n = math.prod(s)
    k = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    return (lambda rng: [_normal(rng, s), rng.integers(-n, n, k)]), {}


def diag_embed_inputs(draw):
    s = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=3))
    nd = len(s) + 1
    d1, d2 = draw(st.lists(st.integers(-nd, nd - 1), min_size=2, max_size=2).filter(
        lambda ds: ds[0] % nd != ds[1] % nd))
    return shaped(s), {"offset": draw(st.integers(-2, 2)), "dim1": d1, "dim2": d2}


def block_diag_inputs(draw):
    # (torch's gradient is wrong after an empty vector block, a (1, 0) block: it reads the
    # gradient one row too high; see test_block_diag_after_an_empty_vector_by_finite_differences)
    v, (m, n) = draw(st.integers(1, 3)), (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    return shaped((), (v,), (m, n)), {}


def cross_inputs(draw):
    (sa, sb), _ = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2,
                                                         min_side=1, max_side=3))
    sa, sb = ((1,) * (len(sb) - len(s)) + s for s in (sa, sb))  # (torch: equal ndims)
    sa, sb = ((1,) * (len(sa) - len(s)) + s for s in (sa, sb))
    k = draw(st.integers(0, len(sa)))  # the 3 goes k dimensions from the end
    sa, sb = (s[:len(s) - k] + (3,) + s[len(s) - k:] for s in (sa, sb))
    return shaped(sa, sb), {"dim": -k - 1}


def kron_inputs(draw):
    return shaped(draw(ANY_SHAPE), draw(ANY_SHAPE)), {}


def tensordot_inputs(draw):
    sizes = [draw(st.integers(0, 3)) for _ in range(5)]
    a, b = tuple(sizes[:3]), tuple(sizes[1:3]) + tuple(sizes[3:])
    return shaped(a, b), {}


def inner_inputs(draw):
    k = draw(st.integers(0, 3))
    lead = [draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
            for _ in range(2)]
    return shaped(lead[0] + (k,), lead[1] + (k,)), {}


def vectors(count, min_side=0):
    def inputs(draw):
        return shaped(*[(draw(st.integers(min_side, 3)),) for _ in range(count)]), {}
    return inputs


def trapezoid_inputs(draw):
    s = draw(POSITIVE_SHAPES)
    d = draw(a_dim(s)) % len(s)

    def make(rng):
        points = np.cumsum(rng.uniform(0.1, 1.0, s[d]))
        return [_normal(rng, s), points, np.sort(_normal(rng, s), axis=d)]
    return make, {"dim": d}


def nan_normal(rng, shape):
    x = rng.standard_normal(shape)
    return np.where(rng.random(shape) < 0.3, np.nan, x)


def stats_inputs(draw):
    s = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4))
    dim = draw(st.one_of(st.none(), a_dim(s), st.just(tuple(range(len(s))))))
    return shaped(s), {"dim": dim, "correction": draw(st.integers(0, 1)),
                       "keepdim": draw(st.booleans())}


def cdist_inputs(draw):
    batch = draw(st.sampled_from([(), (2,)]))
    p, r, m = (draw(st.integers(1, 4)) for _ in range(3))
    return shaped(batch + (p, m), (r, m)), {"p": draw(st.sampled_from(
        [0.0, 1.0, 1.5, 2.0, 3.0, math.inf]))}


def cov_inputs(draw):
    n = draw(st.integers(2, 5))
    s = draw(st.sampled_from([(n,), (1, n), (3, n)]))

    def make(rng):
        return [_normal(rng, s), rng.integers(1, 4, n), rng.uniform(0.5, 2.0, n)]
    return make, {"correction": draw(st.integers(0, 1))}


def _stats(fn):
    return lambda x, dim, correction, keepdim: sum(weighted(fn(x, dim, correction=correction,
                                                              keepdim=keepdim)))


CASES = [
    Case("tile", lambda x, reps: tg.tile(x, reps) * 2, lambda x, reps: torch.tile(x, reps) * 2,
         tile_inputs),
    Case("Tensor.tile", lambda x, reps: x.tile(reps), lambda x, reps: x.tile(reps),
         tile_inputs),
    Case("hstack", lambda a, b: tg.hstack(weighted([a, b])),
         lambda a, b: torch.hstack(weighted([a, b])), pair_same()),
    Case("hstack_widths", lambda a, b: tg.hstack([a, b * 2]),
         lambda a, b: torch.hstack([a, b * 2]), joined_along(lambda nd: 1)),
    Case("vstack", lambda a, b: tg.vstack(weighted([a, b])),
         lambda a, b: torch.vstack(weighted([a, b])), pair_same()),
    Case("vstack_heights", lambda a, b: tg.vstack((a, b * 2)),
         lambda a, b: torch.vstack((a, b * 2)), joined_along(lambda nd: 0)),
    Case("dstack", lambda a, b: tg.dstack(weighted([a, b])),
         lambda a, b: torch.dstack(weighted([a, b])), pair_same()),
    Case("column_stack", lambda a, b: tg.column_stack(weighted([a, b])),
         lambda a, b: torch.column_stack(weighted([a, b])),
         pair_same(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))),
    Case("concat", lambda a, b: tg.concat([a, b * 2], dim=-1) + tg.concatenate([a, b], -1),
         lambda a, b: torch.concat([a, b * 2], dim=-1) + torch.concatenate([a, b], -1),
         joined_along(lambda nd: nd - 1)),
    Case("broadcast_to", lambda a, b: tg.broadcast_to(a, tg.broadcast_shapes(a.shape, b.shape)),
         lambda a, b: torch.broadcast_to(a, torch.broadcast_shapes(a.shape, b.shape)),
         pair_broadcast),
    Case("Tensor.broadcast_to", lambda a, b: a.broadcast_to((2,) + (a + b).shape) * 1.5,
         lambda a, b: a.broadcast_to((2,) + (a + b).shape) * 1.5, pair_broadcast),
    Case("broadcast_tensors", lambda a, b: tg.stack(weighted(tg.broadcast_tensors(a, b))),
         lambda a, b: torch.stack(weighted(torch.broadcast_tensors(a, b))), pair_broadcast),
    Case("meshgrid_ij", lambda *xs: tg.stack(weighted(tg.meshgrid(*xs, indexing="ij"))),
         lambda *xs: torch.stack(weighted(torch.meshgrid(*xs, indexing="ij"))), vectors(3)),
    Case("meshgrid_xy", lambda *xs: tg.stack(weighted(tg.meshgrid(list(xs), indexing="xy"))),
         lambda *xs: torch.stack(weighted(torch.meshgrid(list(xs), indexing="xy"))),
         vectors(3)),
    Case("meshgrid_xy_two", lambda a, b: tg.stack(weighted(tg.meshgrid(a, b, indexing="xy"))),
         lambda a, b: torch.stack(weighted(torch.meshgrid(a, b, indexing="xy"))), vectors(2)),
    Case("atleast_1d", lambda x: tg.atleast_1d(x) * 2, lambda x: torch.atleast_1d(x) * 2,
         one(ANY_SHAPE)),
    Case("atleast_2d", lambda x: tg.atleast_2d(x) * 2, lambda x: torch.atleast_2d(x) * 2,
         one(ANY_SHAPE)),
    Case("atleast_3d", lambda x: tg.atleast_3d(x) * 2, lambda x: torch.atleast_3d(x) * 2,
         one(ANY_SHAPE)),
    Case("atleast_3d_many", lambda a, b: tg.cat([t.reshape(-1) for t in tg.atleast_3d(a, b)]),
         lambda a, b: torch.cat([t.reshape(-1) for t in torch.atleast_3d(a, b)]), pair_same()),
    Case("ravel", lambda x: x.movedim(0, -1).ravel() * 2 + tg.ravel(x).sum(),
         lambda x: x.movedim(0, -1).ravel() * 2 + torch.ravel(x).sum(), one()),
    Case("rot90", lambda x, k, dims: tg.rot90(x, k, dims), lambda x, k, dims: torch.rot90(x, k,
                                                                                        dims),
         rot90_inputs),
    Case("Tensor.rot90", lambda x, k, dims: x.rot90(), lambda x, k, dims: x.rot90(),
         rot90_inputs),
    Case("fliplr_flipud", lambda x: tg.fliplr(x) * 2 + x.flipud(),
         lambda x: torch.fliplr(x) * 2 + x.flipud(), one(MATRICES)),
    Case("diff", lambda x, p, q, n, dim: tg.diff(x, n, dim),
         lambda x, p, q, n, dim: torch.diff(x, n, dim), diff_inputs),
    Case("diff_prepend_append", lambda x, p, q, n, dim: x.diff(n, dim, prepend=p, append=q),
         lambda x, p, q, n, dim: x.diff(n, dim, prepend=p, append=q), diff_inputs),
    Case("take", lambda x, i: tg.take(x, i), lambda x, i: torch.take(x, i), take_inputs),
    Case("diag_embed", lambda x, offset, dim1, dim2: tg.diag_embed(x, offset, dim1, dim2),
         lambda x, offset, dim1, dim2: torch.diag_embed(x, offset, dim1, dim2),
         diag_embed_inputs),
    Case("diagflat", lambda x, k: tg.diagflat(x, k), lambda x, k: torch.diagflat(x, k),
         one(ANY_SHAPE, k=lambda s: st.integers(-2, 2))),
    Case("block_diag", lambda *xs: tg.block_diag(*weighted(xs)),
         lambda *xs: torch.block_diag(*weighted(xs)), block_diag_inputs),
    Case("cross", lambda a, b, dim: tg.cross(a, b, dim=dim),
         lambda a, b, dim: torch.cross(a, b, dim=dim), cross_inputs),
    Case("kron", lambda a, b: tg.kron(a, b), lambda a, b: torch.kron(a, b), kron_inputs),
    Case("tensordot", lambda a, b: tg.tensordot(a, b) + tg.tensordot(a, b, ([1, 2], [0, 1])),
         lambda a, b: torch.tensordot(a, b) + torch.tensordot(a, b, ([1, 2], [0, 1])),
         tensordot_inputs),
    Case("tensordot_one", lambda a, b: tg.tensordot(a, b, dims=([2], [1])),
         lambda a, b: torch.tensordot(a, b, dims=([2], [1])), tensordot_inputs),
    Case("tensordot_zero", lambda a, b: tg.tensordot(a, b, 0),
         lambda a, b: torch.tensordot(a, b, 0), tensordot_inputs),
    Case("inner", lambda a, b: tg.inner(a, b), lambda a, b: torch.inner(a, b), inner_inputs),
    Case("inner_number", lambda a, b: a[..., 0].sum().inner(b),
         lambda a, b: a[..., 0].sum().inner(b), joined_along(lambda nd: nd - 1)),
    Case("vdot", lambda a, b: tg.vdot(a, a * b), lambda a, b: torch.vdot(a, a * b),
         pair_same(hnp.array_shapes(min_dims=1, max_dims=1, min_side=0, max_side=4))),
    Case("trapezoid_dx",
         lambda y, x, X, dim: tg.trapezoid(y, dx=0.5, dim=dim) + tg.trapz(y, dim=dim),
         lambda y, x, X, dim: torch.trapezoid(y, dx=0.5, dim=dim) + torch.trapz(y, dim=dim),
         trapezoid_inputs),
    Case("trapezoid_x", lambda y, x, X, dim: tg.trapezoid(y, x, dim=dim),
         lambda y, x, X, dim: torch.trapezoid(y, x, dim=dim), trapezoid_inputs),
    Case("trapezoid_x_full", lambda y, x, X, dim: tg.trapezoid(y, X, dim=dim),
         lambda y, x, X, dim: torch.trapezoid(y, X, dim=dim), trapezoid_inputs),
    Case("cartesian_prod", lambda *xs: tg.cartesian_prod(*weighted(xs)),
         lambda *xs: torch.cartesian_prod(*weighted(xs)), vectors(3)),
    Case("cartesian_prod_one", lambda x: tg.cartesian_prod(x) * 2,
         lambda x: torch.cartesian_prod(x) * 2, vectors(1)),
    Case("combinations", lambda x, r, rep: tg.combinations(x, r, rep),
         lambda x, r, rep: torch.combinations(x, r, rep),
         one(hnp.array_shapes(min_dims=1, max_dims=1, min_side=0, max_side=4),
             r=lambda s: st.integers(0, 3), rep=lambda s: st.booleans())),
    Case("vander", lambda x, N, inc: tg.vander(x, N, inc), lambda x, N, inc: torch.vander(x, N,
                                                                                          inc),
         one(hnp.array_shapes(min_dims=1, max_dims=1, min_side=0, max_side=4),
             N=lambda s: st.one_of(st.none(), st.integers(0, 4)), inc=lambda s: st.booleans()),
         # (torch's backward of vander fails: "modified by an inplace operation"; see
         # test_vander_gradients_by_finite_differences)
         order=0),
    Case("nansum", lambda x, dim: tg.nansum(x, dim) * 2 + x.nansum(),
         lambda x, dim: torch.nansum(x, dim) * 2 + x.nansum(), one(kind=nan_normal, dim=a_dim)),
    # (values only: where a slice is all NaN, torch's gradient is NaN and ours 0, as for
    # every NaN element; see test_nanmean_gradients_match_torch_where_a_number_is_left)
    Case("nanmean", lambda x, dim: tg.nanmean(x, dim, keepdim=True),
         lambda x, dim: torch.nanmean(x, dim, keepdim=True), one(kind=nan_normal, dim=a_dim),
         order=0),
    Case("Tensor.nanmean", lambda x: x.nanmean(), lambda x: x.nanmean(), one(kind=nan_normal),
         order=0),
    Case("var_mean", _stats(tg.var_mean), _stats(torch.var_mean), stats_inputs),
    Case("std_mean", _stats(tg.std_mean), _stats(torch.std_mean), stats_inputs),
    Case("var_mean_unbiased", lambda x: sum(weighted(tg.var_mean(x, 0, False, True))),
         lambda x: sum(weighted(torch.var_mean(x, 0, False, True))), one(POSITIVE_SHAPES)),
    Case("count_nonzero", lambda x, dim: tg.count_nonzero(x.round(), dim),
         lambda x, dim: torch.count_nonzero(x.round(), dim),
         one(dim=lambda s: st.one_of(st.none(), a_dim(s), st.just(tuple(range(len(s))))))),
    Case("logcumsumexp", lambda x, dim: tg.logcumsumexp(x * 40, dim),
         lambda x, dim: torch.logcumsumexp(x * 40, dim), one(dim=a_dim),
         tol={"rtol": 1e-8, "atol": 1e-10}),
    # (torch has no double backward of cdist)
    Case("cdist", lambda a, b, p: tg.cdist(a, b, p), lambda a, b, p: torch.cdist(a, b, p),
         cdist_inputs, order=1),
    Case("cdist_zero_distance", lambda a, b, p: tg.cdist(a, a, p),
         lambda a, b, p: torch.cdist(a, a, p), cdist_inputs, order=1),
    Case("cov", lambda x, fw, aw, correction: tg.cov(x, correction=correction),
         lambda x, fw, aw, correction: torch.cov(x, correction=correction), cov_inputs),
    Case("cov_weights", lambda x, fw, aw, correction: x.cov(correction=correction, fweights=fw,
                                                             aweights=aw),
         lambda x, fw, aw, correction: x.cov(correction=correction, fweights=fw, aweights=aw),
         cov_inputs),
    Case("cov_fweights", lambda x, fw, aw, correction: tg.cov(x, fweights=fw),
         lambda x, fw, aw, correction: torch.cov(x, fweights=fw), cov_inputs),
    Case("corrcoef", lambda x, fw, aw, correction: tg.corrcoef(x),
         lambda x, fw, aw, correction: torch.corrcoef(x), cov_inputs),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@FEW
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_matches_torch_float64(case: Case, data, seed: int) -> None:
    check_matches_torch(case, data, seed)


COMPILED = [c for c in CASES if c.compiles]


@pytest.mark.parametrize("case", COMPILED, ids=[c.name for c in COMPILED])
@settings(max_examples=3, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_compiled_agrees_with_eager(case: Case, data, seed: int) -> None:
    check_compiled_agrees_with_eager(case, data, seed)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@settings(max_examples=3, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_forward_mode_matches_central_differences(case: Case, data, seed: int) -> None:
    check_forward_mode(case, data, seed)


# ---------------------------------------------------------------- other dtypes

ints = np.array([[3, 0, -2], [1, 1, 4]], np.int64)
small = np.array([[3, 0, -2], [1, 1, 4]], np.int32)
bools = np.array([[True, False, False], [True, True, False]])
singles = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -3.0]], np.float32)

DTYPED = [
    ("tile", lambda m, x: m.tile(x, (2, 1, 2))),
    ("hstack", lambda m, x: m.hstack([x, x[:, :1]])),
    ("vstack", lambda m, x: m.vstack([x, x[0]])),
    ("dstack", lambda m, x: m.dstack([x, x])),
    ("column_stack", lambda m, x: m.column_stack([x[0], x[1]])),
    ("broadcast_to", lambda m, x: m.broadcast_to(x, (2, 2, 3))),
    ("meshgrid", lambda m, x: m.stack(m.meshgrid(x[0], x[1][:2], indexing="xy"))),
    ("atleast_3d", lambda m, x: m.atleast_3d(x)),
    ("rot90", lambda m, x: m.rot90(x, 3)),
    ("diff", lambda m, x: m.diff(x, 2, prepend=x[:, :1])),
    ("take", lambda m, x: m.take(x, m.tensor([[-1, 2], [0, 5]]))),
    ("diag_embed", lambda m, x: m.diag_embed(x, -1)),
    ("diagflat", lambda m, x: m.diagflat(x, 1)),
    ("block_diag", lambda m, x: m.block_diag(x, x[0], x[0, 0])),
    ("cross", lambda m, x: m.cross(x, m.flip(x, (1,)), dim=1)),
    ("kron", lambda m, x: m.kron(x, x[:1])),
    ("tensordot", lambda m, x: m.tensordot(x, x.T, 1)),
    ("inner", lambda m, x: m.inner(x, x)),
    ("trapezoid", lambda m, x: m.trapezoid(x, dim=0)),
    ("cartesian_prod", lambda m, x: m.cartesian_prod(x[0], x[1])),
    ("combinations", lambda m, x: m.combinations(x[0], 2, with_replacement=True)),
    ("vander", lambda m, x: m.vander(x[1], 3)),
    ("nansum", lambda m, x: m.nansum(x, 1)),
    ("count_nonzero", lambda m, x: m.count_nonzero(x, 0)),
    ("cov", lambda m, x: m.cov(x)),
]


@pytest.mark.parametrize("name, fn", DTYPED, ids=[name for name, _ in DTYPED])
@pytest.mark.parametrize("array", [ints, small, bools, singles], ids=["int64", "int32", "bool",
                                                                      "float32"])
def test_other_dtypes_match_torch(name, fn, array) -> None:
    if array.dtype == np.bool_ and name in ("cross", "tensordot", "inner", "trapezoid",
                                            "cov"):
        with pytest.raises(RuntimeError):
            fn(torch, torch.tensor(array))
        if name in ("trapezoid", "cov"):
            with pytest.raises(TypeError, match=name):
                fn(tg, tg.tensor(array))
        return
    theirs = fn(torch, torch.tensor(array))
    ours = fn(tg, tg.tensor(array))
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", ""), name
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, err_msg=name)


def test_block_diag_after_an_empty_vector_by_finite_differences() -> None:
    rng = np.random.default_rng(0)
    check_grads(lambda a, e, b: tg.block_diag(a, e, b * 3), rng.standard_normal(()),
                np.zeros(0), rng.standard_normal((2, 1)))
    out = tg.block_diag(tg.tensor(1.0), tg.zeros(0), tg.tensor([[2.0]]))
    assert out.tolist() == [[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]]


def test_vander_gradients_by_finite_differences() -> None:
    x = np.array([0.5, -1.25, 0.0, 2.0])
    for n, increasing in [(None, False), (1, False), (3, True), (5, False)]:
        check_grads(lambda t, n=n, increasing=increasing: tg.vander(t, n, increasing), x)


def test_nanmean_gradients_match_torch_where_a_number_is_left() -> None:
    x = np.array([[np.nan, 1.5, -2.0], [0.5, np.nan, np.nan], [3.0, 1.0, -1.0]])
    for dim in (None, 0, 1, (0, 1)):
        compare_with_torch(lambda t, dim=dim: tg.nanmean(t, dim) * 2,
                           lambda t, dim=dim: torch.nanmean(t, dim) * 2, x)
    x[1] = np.nan  # a row of NaNs: NaN, and a gradient of 0 (torch's is NaN)
    t = tg.tensor(x, requires_grad=True)
    out = tg.nanmean(t, 1)
    assert np.isnan(out.numpy()[1])
    out[0].backward()
    assert np.isfinite(t.grad.numpy()).all()


def test_equal_is_a_python_bool_as_torch() -> None:
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    pairs = [(a, a), (a, a + 1e-9), (a, a[:1]), (a.astype(np.int64), a), (a, a.T)]
    for x, y in pairs:
        ours = tg.equal(tg.tensor(x), tg.tensor(y))
        assert ours is torch.equal(torch.tensor(x), torch.tensor(y))
    assert tg.tensor(a).equal(tg.tensor(a)) is True


def test_equal_compiles_to_the_eager_answer_or_refuses() -> None:
    def fn(x, y):
        return x * 2 if tg.equal(x, y) else x - y

    compiled = tg.compile(fn, backend="numpy")
    x = tg.tensor([1.0, 2.0])
    refused = 0
    for y in (tg.tensor([1.0, 2.0]), tg.tensor([1.0, 3.0]), tg.tensor([1.0, 2.0])):
        try:
            got = compiled(x, y)
        except tg.TraceError:
            refused += 1
            continue
        np.testing.assert_array_equal(got.numpy(), fn(x, y).numpy())
    assert refused  # (a Python bool of traced values cannot be compiled)


@FEW
@given(shapes=st.lists(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3),
                       min_size=1, max_size=3))
def test_broadcast_shapes_matches_torch(shapes) -> None:
    try:
        expected = tuple(torch.broadcast_shapes(*shapes))
    except RuntimeError:
        with pytest.raises(tg.ShapeError, match="broadcast_shapes"):
            tg.broadcast_shapes(*shapes)
        return
    assert tg.broadcast_shapes(*shapes) == expected
    assert tg.broadcast_shapes(3, (2, 1)) == (2, 3)


def test_creation_functions_match_torch() -> None:
    for args, kwargs in [((0, 2, 5), {}), ((-1, 1, 3), {"base": 2.0}),
                         ((0, 3, 4), {"dtype": torch.float64}), ((0, 2, 3), {"dtype": torch.int64}),
                         ((1, 0, 1), {})]:
        ours = tg.logspace(*args, **{k: (getattr(tg, str(v).split(".")[1]) if k == "dtype"
                                         else v) for k, v in kwargs.items()})
        theirs = torch.logspace(*args, **kwargs)
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    for row, col, offset in [(3, 4, 0), (4, 3, 1), (3, 3, -1), (0, 2, 0), (2, 5, -3), (3, 3, 7)]:
        for name in ("tril_indices", "triu_indices"):
            ours, theirs = getattr(tg, name)(row, col, offset), getattr(torch, name)(row, col,
                                                                                     offset)
            assert ours.dtype == tg.int64 and ours.shape == tuple(theirs.shape)
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert tg.tril_indices(3, 3, dtype=tg.int32).dtype == tg.int32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for args in [(1, 4), (0, 1, 0.3), (5, 1, -1.5), (2, 2)]:
            ours, theirs = tg.range(*args), torch.range(*args)
            assert ours.dtype == tg.float32
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
        assert tg.range(1, 3, dtype=tg.int64).tolist() == [1, 2, 3]
    with pytest.warns(UserWarning, match="deprecated"):
        tg.range(0, 1)


def test_stacks_accept_tuples_and_lists_and_nothing_else_empty() -> None:
    a, b = tg.tensor([1, 2]), tg.tensor([3, 4])
    assert tg.hstack((a, b)).tolist() == [1, 2, 3, 4]
    assert tg.atleast_2d([a, b])[1].shape == (1, 2)
    assert isinstance(tg.atleast_1d(a, b), tuple) and tg.atleast_1d(a) is a
    for fn in (tg.hstack, tg.vstack, tg.dstack, tg.column_stack):
        with pytest.raises(ValueError, match=fn.__name__):
            fn([])


ERRORS = [
    (lambda: tg.broadcast_to(tg.ones(2, 3), (3, 3)), tg.ShapeError, r"broadcast_to.*\(2, 3\)"),
    (lambda: tg.broadcast_to(tg.ones(2, 3), (3,)), tg.ShapeError, "broadcast_to.*fewer"),
    (lambda: tg.broadcast_tensors(tg.ones(2), tg.ones(3)), tg.ShapeError, "broadcast_shapes"),
    (lambda: tg.meshgrid(tg.ones(2, 2)), tg.ShapeError, "meshgrid.*0-d or 1-d"),
    (lambda: tg.meshgrid(tg.ones(2), tg.tensor([1])), tg.DTypeError, "meshgrid.*dtype"),
    (lambda: tg.meshgrid(tg.ones(2), indexing="ji"), ValueError, "meshgrid.*indexing"),
    (lambda: tg.rot90(tg.ones(2, 2), 1, (0, 0)), tg.ShapeError, "rot90.*differ"),
    (lambda: tg.rot90(tg.ones(2), 1), tg.ShapeError, r"rot90.*\(2,\)"),
    (lambda: tg.rot90(tg.ones(2, 2), 1, (0, 1, 2)), tg.ShapeError, "rot90.*two"),
    (lambda: tg.fliplr(tg.ones(2)), tg.ShapeError, "fliplr"),
    (lambda: tg.flipud(tg.ones(())), tg.ShapeError, "flipud"),
    (lambda: tg.diff(tg.ones(())), tg.ShapeError, "diff"),
    (lambda: tg.diff(tg.ones(3), prepend=tg.ones(())), tg.ShapeError, "diff.*prepend"),
    (lambda: tg.diff(tg.ones(3), -1), ValueError, "diff.*non-negative"),
    (lambda: tg.take(tg.ones(2, 2), tg.tensor([4])), IndexError, r"take.*4.*\(2, 2\)"),
    (lambda: tg.take(tg.ones(2, 2), tg.tensor([-5])), IndexError, "take.*-5"),
    (lambda: tg.take(tg.ones(2, 2), tg.tensor([1.0])), TypeError, "take.*integer"),
    (lambda: tg.diag_embed(tg.ones(2), 0, 0, -2), tg.ShapeError, "diag_embed.*differ"),
    (lambda: tg.block_diag(tg.ones(2, 2, 2)), tg.ShapeError, r"block_diag.*\(2, 2, 2\)"),
    (lambda: tg.cross(tg.ones(2, 4), tg.ones(2, 4)), tg.ShapeError, "cross.*size 3"),
    (lambda: tg.cross(tg.ones(3, 4), tg.ones(3, 4), dim=1), tg.ShapeError, "cross.*size 3"),
    (lambda: tg.tensordot(tg.ones(2, 3), tg.ones(4, 2), 1), tg.ShapeError, "tensordot.*match"),
    (lambda: tg.tensordot(tg.ones(2), tg.ones(2), 2), tg.ShapeError, "tensordot"),
    (lambda: tg.tensordot(tg.ones(2, 3), tg.ones(3, 2), ([0, 1], [1])), tg.ShapeError,
     "tensordot.*as many"),
    (lambda: tg.inner(tg.ones(2, 3), tg.ones(2)), tg.ShapeError, "inner.*last"),
    (lambda: tg.tensordot(tg.ones(2), tg.tensor([1, 2]), 1), tg.DTypeError, "tensordot.*dtype"),
    (lambda: tg.diag_embed(tg.tensor(1.0)), tg.ShapeError, "diag_embed.*0-d"),
    (lambda: tg.trapezoid(tg.tensor(1.0)), tg.ShapeError, "trapezoid.*0-d"),
    (lambda: tg.vdot(tg.ones(2), tg.ones(2, dtype=tg.float64)), tg.DTypeError, "vdot"),
    (lambda: tg.vdot(tg.ones(2, 2), tg.ones(2, 2)), tg.ShapeError, "dot"),
    (lambda: tg.trapezoid(tg.ones(3), tg.ones(4)), tg.ShapeError, "trapezoid.*4 points"),
    (lambda: tg.trapezoid(tg.ones(3), tg.ones(3), dx=1.0), ValueError, "trapezoid.*not both"),
    (lambda: tg.cartesian_prod(tg.ones(2, 2)), tg.ShapeError, "cartesian_prod"),
    (lambda: tg.combinations(tg.ones(2, 2)), tg.ShapeError, "combinations.*1-d"),
    (lambda: tg.combinations(tg.ones(2), -1), ValueError, "combinations"),
    (lambda: tg.vander(tg.ones(2, 2)), tg.ShapeError, "vander"),
    (lambda: tg.nanmean(tg.tensor([1, 2])), TypeError, "nanmean.*float"),
    (lambda: tg.var_mean(tg.ones(3), unbiased=True, correction=0), ValueError, "var_mean"),
    (lambda: tg.logcumsumexp(tg.tensor([1, 2]), 0), TypeError, "logcumsumexp"),
    (lambda: tg.cdist(tg.ones(2, 3), tg.ones(2, 4)), tg.ShapeError, r"cdist.*\(2, 4\)"),
    (lambda: tg.cdist(tg.ones(2, 3), tg.ones(2, 3), -1.0), ValueError, "cdist.*non-negative"),
    (lambda: tg.cov(tg.ones(2, 2, 2)), tg.ShapeError, "cov"),
    (lambda: tg.cov(tg.ones(2, 3), fweights=tg.tensor([1, 2])), tg.ShapeError, "cov.*fweights"),
    (lambda: tg.cov(tg.ones(2, 3), fweights=tg.ones(3)), TypeError, "cov.*integers"),
    (lambda: tg.tril_indices(-1, 2), ValueError, "tril_indices"),
    (lambda: tg.range(0, 1, -1), ValueError, "range"),
]


@pytest.mark.parametrize("call, error, message", ERRORS)
def test_errors_name_the_function_and_the_shapes(call, error, message) -> None:
    with pytest.raises(error, match=message):
        call()


def test_every_name_is_a_function_and_the_torch_methods_are_methods() -> None:
    names = ["tile", "hstack", "vstack", "dstack", "column_stack", "concat", "concatenate",
             "broadcast_to", "broadcast_tensors", "broadcast_shapes", "meshgrid", "atleast_1d",
             "atleast_2d", "atleast_3d", "ravel", "rot90", "fliplr", "flipud", "diff", "take",
             "diag_embed", "diagflat", "block_diag", "tril_indices", "triu_indices", "cross",
             "kron", "tensordot", "inner", "vdot", "trapezoid", "trapz", "cartesian_prod",
             "combinations", "vander", "nansum", "nanmean", "std_mean", "var_mean",
             "count_nonzero", "equal", "logcumsumexp", "cdist", "cov", "corrcoef", "logspace",
             "range"]
    assert [n for n in names if not callable(getattr(tg, n, None))] == []
    assert [n for n in names if hasattr(torch.Tensor, n) and not hasattr(tg.Tensor, n)] == []
    assert set(names) <= set(tg.__all__)
