"""PyTorch's everyday tensor ops (issue 17 item 3) against PyTorch in float64, on shapes drawn
by hypothesis (broadcasting and size-0/size-1 dimensions included): values, first gradients
and second-order gradients (`gradcheck.compare_with_torch`); and each op compiled by
`tg.compile` against eager execution, values and gradients (forward and backward traced).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest
from gradcheck import check_grads, compare_with_torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_compile import assert_close, eager, forward_backward

import tracegrad as tg

torch = pytest.importorskip("torch")

FEW = settings(max_examples=12, deadline=None)
SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4)
POSITIVE_SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
PAIRS = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0,
                                          max_side=4)


def _normal(rng, shape):
    return rng.standard_normal(shape)


def _with_zeros(rng, shape):
    x = rng.standard_normal(shape)
    return np.where(rng.random(shape) < 0.25, 0.0, x)


@dataclass
class Case:
    """``inputs(draw) -> (make(rng) -> arrays, attributes)``; ``ours(*tensors, **attrs)``
    and ``theirs(*torch_tensors, **attrs)`` compute the same thing."""
    name: str
    ours: Callable
    theirs: Callable
    inputs: Callable
    order: int = 2
    compiles: bool = True
    tol: dict = field(default_factory=dict)


def one(shapes=SHAPES, kind=_normal, **attrs):
    def inputs(draw):
        s = draw(shapes)
        drawn = {k: (draw(v(s)) if callable(v) else v) for k, v in attrs.items()}
        return (lambda rng: [kind(rng, s)]), drawn
    return inputs


def two_broadcast(kind_b=_normal):
    def inputs(draw):
        (sa, sb), _ = draw(PAIRS)
        return (lambda rng: [_normal(rng, sa), kind_b(rng, sb)]), {}
    return inputs


def a_dim(s):
    return st.integers(-len(s), len(s) - 1)


def gather_inputs(draw):
    s = draw(SHAPES)
    d = draw(a_dim(s)) % len(s)
    idx = tuple(draw(st.integers(0, n)) if k != d else draw(st.integers(0, 4))
                for k, n in enumerate(s))
    if s[d] == 0:
        idx = idx[:d] + (0,) + idx[d + 1:]
    return (lambda rng: [_normal(rng, s), rng.integers(0, max(s[d], 1), idx)]), {"dim": d}


def scatter_inputs(with_src: bool, unique: bool, larger_src: bool = False):
    def inputs(draw):
        # (PyTorch's backward of a src larger than an empty index fails)
        s = draw(POSITIVE_SHAPES if larger_src else SHAPES)
        d = draw(a_dim(s)) % len(s)
        idx = tuple(draw(st.integers(1 if larger_src else 0, n)) for n in s)
        # (a src larger than the index: PyTorch's double backward of scatter fails on it)
        src = tuple(m + draw(st.integers(0, 1 if larger_src else 0)) for m in idx)

        def make(rng):
            if unique:  # distinct targets along dim: which write wins is then defined
                keys = rng.random(idx[:d] + (s[d],) + idx[d + 1:])
                index = np.argsort(keys, axis=d)[(slice(None),) * d + (slice(0, idx[d]),)]
            else:
                index = rng.integers(0, max(s[d], 1), idx)
            arrays = [_normal(rng, s), index.astype(np.int64)]
            return arrays + [_normal(rng, src)] if with_src else arrays
        return make, {"dim": d}
    return inputs


def vector_index_inputs(with_source: bool):
    def inputs(draw):
        s = draw(POSITIVE_SHAPES)
        d = draw(a_dim(s)) % len(s)
        k = draw(st.integers(0, 5))

        def make(rng):
            arrays = [_normal(rng, s), rng.integers(0, s[d], k)]
            if with_source:
                arrays.append(_normal(rng, s[:d] + (k,) + s[d + 1:]))
            return arrays
        return make, {"dim": d}
    return inputs


def matrices(*shapes_of: Callable):
    def inputs(draw):
        sizes = {c: draw(st.integers(0, 4)) for c in "bnmpk"}
        shapes = [tuple(sizes[c] for c in pattern) for pattern in shapes_of]
        return (lambda rng: [_normal(rng, s) for s in shapes]), {}
    return inputs


def einsum_inputs(equation: str, broadcast: bool = False):
    def inputs(draw):
        sizes = {c: draw(st.integers(1 if broadcast else 0, 4)) for c in "abcdhijklq"}
        terms = equation.split("->")[0].split(",")
        shapes = []
        for t in terms:
            dims = []
            for c in t.replace("...", "E"):
                if c == "E":
                    dims += [draw(st.sampled_from([1, sizes["a"]])), sizes["b"]]
                else:
                    dims.append(sizes[c])
            shapes.append(tuple(dims))
        return (lambda rng: [_normal(rng, s) for s in shapes]), {"eq": equation}
    return inputs


def split_inputs(draw):
    s = draw(POSITIVE_SHAPES)
    d = draw(a_dim(s)) % len(s)
    return (lambda rng: [_normal(rng, s)]), {"dim": d, "size": draw(st.integers(1, 3))}


def weighted(pieces):
    """One tensor from a tuple of them, each piece counted with its own weight."""
    return [p * (i + 1.0) for i, p in enumerate(pieces)]


def _dim(s):
    return a_dim(s)


def with_nonfinite(rng, shape):
    x = rng.standard_normal(shape)
    special = rng.choice(np.array([np.nan, np.inf, -np.inf, 0.0]), shape)
    return np.where(rng.random(shape) < 0.3, special, x)


CASES = [
    Case("gather", lambda x, i, dim: tg.gather(x, dim, i),
         lambda x, i, dim: torch.gather(x, dim, i), gather_inputs),
    Case("gather_method", lambda x, i, dim: x.gather(dim, i),
         lambda x, i, dim: x.gather(dim, i), gather_inputs),
    Case("scatter", lambda x, i, s, dim: tg.scatter(x, dim, i, s),
         lambda x, i, s, dim: torch.scatter(x, dim, i, s), scatter_inputs(True, True)),
    Case("scatter_value", lambda x, i, dim: x.scatter(dim, i, 2.5),
         lambda x, i, dim: x.scatter(dim, i, 2.5), scatter_inputs(False, False)),
    Case("scatter_", lambda x, i, s, dim: (x * 1.0).scatter_(dim, i, s),
         lambda x, i, s, dim: (x * 1.0).scatter_(dim, i, s), scatter_inputs(True, True)),
    Case("scatter_add", lambda x, i, s, dim: tg.scatter_add(x, dim, i, s),
         lambda x, i, s, dim: torch.scatter_add(x, dim, i, s), scatter_inputs(True, False)),
    Case("scatter_add_larger_src", lambda x, i, s, dim: x.scatter_add(dim, i, s),
         lambda x, i, s, dim: x.scatter_add(dim, i, s), scatter_inputs(True, False, True),
         order=0),  # (PyTorch's backward refuses a larger src: see the finite-difference test)
    Case("scatter_add_", lambda x, i, s, dim: (x * 2.0).scatter_add_(dim, i, s),
         lambda x, i, s, dim: (x * 2.0).scatter_add_(dim, i, s), scatter_inputs(True, False)),
    Case("index_select", lambda x, i, dim: tg.index_select(x, dim, i),
         lambda x, i, dim: torch.index_select(x, dim, i), vector_index_inputs(False)),
    Case("index_add", lambda x, i, s, dim: x.index_add(dim, i, s, alpha=1.5),
         lambda x, i, s, dim: x.index_add(dim, i, s, alpha=1.5), vector_index_inputs(True)),
    Case("index_add_", lambda x, i, s, dim: (x * 1.0).index_add_(dim, i, s),
         lambda x, i, s, dim: (x * 1.0).index_add_(dim, i, s), vector_index_inputs(True)),
    Case("masked_fill_", lambda x: (x * 1.0).masked_fill_(x > 0.3, -1.0),
         lambda x: (x * 1.0).masked_fill_(x > 0.3, -1.0), one()),
    Case("tg.masked_fill", lambda x: tg.masked_fill(x, x < 0, 0.5),
         lambda x: torch.masked_fill(x, x < 0, 0.5), one()),
    Case("where_broadcast", lambda a, b: tg.where(a > b, a, b * 2),
         lambda a, b: torch.where(a > b, a, b * 2), two_broadcast()),
    Case("bmm", lambda a, b: tg.bmm(a, b), lambda a, b: torch.bmm(a, b),
         matrices("bnm", "bmp")),
    Case("mm", lambda a, b: a.mm(b), lambda a, b: a.mm(b), matrices("nm", "mp")),
    Case("mv", lambda a, b: tg.mv(a, b), lambda a, b: torch.mv(a, b), matrices("nm", "m")),
    Case("outer", lambda a, b: tg.outer(a, b), lambda a, b: torch.outer(a, b),
         matrices("n", "m")),
    Case("tril", lambda x, k: tg.tril(x, k), lambda x, k: torch.tril(x, k),
         one(hnp.array_shapes(min_dims=2, max_dims=3, min_side=0, max_side=4),
             k=lambda s: st.integers(-3, 3))),
    Case("triu", lambda x, k: x.triu(diagonal=k), lambda x, k: x.triu(diagonal=k),
         one(hnp.array_shapes(min_dims=2, max_dims=3, min_side=0, max_side=4),
             k=lambda s: st.integers(-3, 3))),
    Case("prod", lambda x: tg.prod(x), lambda x: torch.prod(x), one(kind=_with_zeros)),
    Case("prod_dim", lambda x, dim: x.prod(dim), lambda x, dim: x.prod(dim),
         one(kind=_with_zeros, dim=_dim)),
    Case("prod_keepdim", lambda x, dim: tg.prod(x, dim, keepdim=True),
         lambda x, dim: torch.prod(x, dim, keepdim=True), one(kind=_with_zeros, dim=_dim)),
    Case("cumsum", lambda x, dim: tg.cumsum(x, dim), lambda x, dim: torch.cumsum(x, dim),
         one(dim=_dim)),
    Case("cumprod", lambda x, dim: tg.cumprod(x, dim), lambda x, dim: torch.cumprod(x, dim),
         one(kind=_with_zeros, dim=_dim)),
    Case("median", lambda x: tg.median(x), lambda x: torch.median(x), one(POSITIVE_SHAPES)),
    Case("median_dim", lambda x, dim: x.median(dim).values,
         lambda x, dim: x.median(dim).values, one(POSITIVE_SHAPES, dim=_dim)),
    Case("median_indices", lambda x, dim: tg.median(x, dim, keepdim=True).indices,
         lambda x, dim: torch.median(x, dim, keepdim=True).indices,
         one(POSITIVE_SHAPES, dim=_dim)),
    Case("sort", lambda x, dim: tg.sort(x, dim, descending=True).values,
         lambda x, dim: torch.sort(x, dim, descending=True).values, one(dim=_dim)),
    Case("sort_indices", lambda x, dim: tg.sort(x, dim=dim).indices,
         lambda x, dim: torch.sort(x, dim=dim).indices, one(dim=_dim)),
    Case("argsort", lambda x, dim: tg.argsort(x, dim), lambda x, dim: torch.argsort(x, dim),
         one(dim=_dim)),
    Case("topk", lambda x: tg.topk(x, 1).values, lambda x: torch.topk(x, 1).values,
         one(POSITIVE_SHAPES)),
    Case("flip", lambda x, dim: tg.flip(x, (dim,)), lambda x, dim: torch.flip(x, (dim,)),
         one(dim=_dim)),
    Case("roll", lambda x, dim: tg.roll(x, 2, dim), lambda x, dim: torch.roll(x, 2, dim),
         one(dim=_dim)),
    Case("round", lambda x: tg.round(x * 3), lambda x: torch.round(x * 3), one()),
    Case("round_decimals", lambda x: x.round(decimals=2), lambda x: x.round(decimals=2),
         one()),
    Case("floor_ceil", lambda x: tg.floor(x * 3) + tg.ceil(x * 2),
         lambda x: torch.floor(x * 3) + torch.ceil(x * 2), one()),
    Case("sign", lambda x: x.sign() * x, lambda x: x.sign() * x, one()),
    Case("trunc_frac", lambda x: tg.trunc(x * 3) + (x * 3).frac(),
         lambda x: torch.trunc(x * 3) + (x * 3).frac(), one()),
    Case("contiguous", lambda x: x.transpose(0, -1).contiguous().view(-1),
         lambda x: x.transpose(0, -1).contiguous().view(-1), one()),
    Case("view_as", lambda x: x.view_as(x.reshape(-1)) * 2,
         lambda x: x.view_as(x.reshape(-1)) * 2, one()),
    Case("reshape_as", lambda x: x.T.reshape_as(x.reshape(-1)),
         lambda x: x.T.reshape(-1).reshape_as(x.reshape(-1)), one()),
    Case("expand_as", lambda a, b: a.expand_as(a + b) * 1.5,
         lambda a, b: a.expand_as(a + b) * 1.5, two_broadcast()),
    Case("split", lambda x, dim, size: tg.cat(weighted(tg.split(x, size, dim)), dim),
         lambda x, dim, size: torch.cat(weighted(torch.split(x, size, dim)), dim),
         split_inputs),
    Case("split_sizes", lambda x, dim, size: tg.cat(weighted(x.split([1, x.shape[dim] - 1],
                                                                     dim)), dim),
         lambda x, dim, size: torch.cat(weighted(x.split([1, x.shape[dim] - 1], dim)), dim),
         split_inputs),
    Case("chunk", lambda x, dim, size: tg.cat(weighted(tg.chunk(x, size, dim)), dim),
         lambda x, dim, size: torch.cat(weighted(torch.chunk(x, size, dim)), dim),
         split_inputs),
    Case("unbind", lambda x, dim, size: tg.stack(weighted(tg.unbind(x, dim)), dim),
         lambda x, dim, size: torch.stack(weighted(torch.unbind(x, dim)), dim), split_inputs),
    Case("repeat", lambda x: x.repeat(2, *([1] * x.ndim)), lambda x: x.repeat(2, *([1] * x.ndim)),
         one()),
    Case("repeat_interleave", lambda x, dim: tg.repeat_interleave(x, 3, dim),
         lambda x, dim: torch.repeat_interleave(x, 3, dim), one(dim=_dim)),
    Case("repeat_interleave_flat", lambda x: x.repeat_interleave(2),
         lambda x: x.repeat_interleave(2), one()),
    Case("repeat_interleave_counts", lambda x: x.repeat_interleave(
        tg.arange(x.shape[0]) % 3, dim=0),
         lambda x: x.repeat_interleave(torch.arange(x.shape[0]) % 3, dim=0),
         one(POSITIVE_SHAPES)),
    Case("floordiv", lambda a, b: a // b, lambda a, b: a // b, two_broadcast(), order=0),
    Case("floordiv_number", lambda a, b: 3.5 // (a + 5) + a // 0.7,
         lambda a, b: 3.5 // (a + 5) + a // 0.7, two_broadcast(), order=0),
    Case("remainder", lambda a, b: a % b, lambda a, b: a % b, two_broadcast()),
    Case("remainder_number", lambda a, b: tg.remainder(a, 0.75) - a % -1.25,
         lambda a, b: torch.remainder(a, 0.75) - a % -1.25, two_broadcast()),
    # (PyTorch has no derivative for number % tensor)
    Case("rremainder", lambda a, b: 2.0 % (a + 5), lambda a, b: 2.0 % (a + 5),
         two_broadcast(), order=0),
    Case("int_floordiv_remainder", lambda a, b: (a * 4).long() // 3 + (a * 4).long() % -3,
         lambda a, b: (a * 4).long() // 3 + (a * 4).long() % -3, two_broadcast(), order=0),
    Case("fmod", lambda a, b: tg.fmod(a, b), lambda a, b: torch.fmod(a, b), two_broadcast()),
    Case("isclose", lambda a, b: tg.isclose(a, a + b * 1e-6),
         lambda a, b: torch.isclose(a, a + b * 1e-6), two_broadcast()),
    Case("isclose_nonfinite", lambda a, b: tg.isclose(a, b, equal_nan=True),
         lambda a, b: torch.isclose(a, b, equal_nan=True), two_broadcast(with_nonfinite)),
    Case("isnan", lambda x: tg.isnan(x), lambda x: torch.isnan(x),
         one(kind=with_nonfinite)),
    Case("isinf", lambda x: x.isinf(), lambda x: x.isinf(), one(kind=with_nonfinite)),
    Case("isfinite", lambda x: tg.isfinite(x), lambda x: torch.isfinite(x),
         one(kind=with_nonfinite)),
    Case("nan_to_num", lambda x: tg.nan_to_num(x, posinf=5.0) * 2,
         lambda x: torch.nan_to_num(x, posinf=5.0) * 2, one(kind=with_nonfinite)),
    Case("nan_to_num_default", lambda x: x.nan_to_num(), lambda x: x.nan_to_num(),
         one(kind=with_nonfinite)),
    Case("movedim", lambda x, dim: tg.movedim(x, dim, 0), lambda x, dim: torch.movedim(x, dim, 0),
         one(dim=_dim)),
    Case("narrow_select", lambda x: x.narrow(0, 0, 1) + tg.select(x, 0, -1),
         lambda x: x.narrow(0, 0, 1) + torch.select(x, 0, -1), one(POSITIVE_SHAPES)),
]

EINSUMS = ["ij,jk->ik", "bij,bjk->bik", "ii->i", "ij->ji", "ij->", "i,j->ij", "ij,ij->",
           "bhqd,bhkd->bhqk", "ij,jk", "ijk,ik->j", "i,i->", "iij->ji", "ij,jk,kl->il",
           "abc->ca", "ab,ab->b"]
CASES += [Case(f"einsum {eq}", lambda *xs, eq: tg.einsum(eq, *xs),
               lambda *xs, eq: torch.einsum(eq, *xs), einsum_inputs(eq)) for eq in EINSUMS]
CASES += [Case("einsum ...ij,...jk->...ik", lambda *xs, eq: tg.einsum(eq, list(xs)),
               lambda *xs, eq: torch.einsum(eq, *xs), einsum_inputs("...ij,...jk->...ik",
                                                                     broadcast=True))]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@FEW
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_matches_torch_float64(case: Case, data, seed: int) -> None:
    make, attrs = case.inputs(data.draw)
    arrays = make(np.random.default_rng(seed))
    compare_with_torch(lambda *xs: case.ours(*xs, **attrs),
                       lambda *xs: case.theirs(*xs, **attrs), *arrays, order=case.order)


COMPILED = [c for c in CASES if c.compiles]


@pytest.mark.parametrize("case", COMPILED, ids=[c.name for c in COMPILED])
@settings(max_examples=4, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_compiled_agrees_with_eager(case: Case, data, seed: int) -> None:
    make, attrs = case.inputs(data.draw)

    def fn(*xs):
        return case.ours(*xs, **attrs)

    rng = np.random.default_rng(seed)
    compiled = tg.compile(fn, backend="numpy")
    compiled_step = tg.compile(forward_backward(fn), backend="numpy")
    for call in range(3):
        arrays = make(rng)
        value, _ = eager(fn, arrays, None)
        cot = rng.standard_normal(value.shape) if value.dtype.kind == "f" else None
        value, grads = eager(fn, arrays, cot)
        leaves = [tg.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
        assert_close(compiled(*leaves), value, np.float64, f"{case.name} call {call}")
        if grads is None:
            continue
        outs = compiled_step(*[tg.tensor(cot)] + [
            tg.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays])
        assert_close(outs[0], value, np.float64, f"{case.name} call {call}: forward+backward")
        for i, (a, g) in enumerate(zip(outs[1:], grads)):
            assert_close(a, g, np.float64, f"{case.name} call {call}: grad of input {i}")


def test_scatter_add_from_a_larger_src_by_finite_differences() -> None:
    rng = np.random.default_rng(0)
    x, src = rng.standard_normal((3, 4)), rng.standard_normal((3, 5))
    index = tg.tensor([[0, 1, 1], [2, 2, 0]])
    check_grads(lambda a, b: a.scatter_add(1, index, b) * a, x, src)
