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
import tracegrad.nn.functional as F

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
    Case("diagonal", lambda x, k: tg.diagonal(x, k, -1, 0),
         lambda x, k: torch.diagonal(x, k, -1, 0),
         one(hnp.array_shapes(min_dims=2, max_dims=3, min_side=0, max_side=4),
             k=lambda s: st.integers(-3, 3))),
    Case("trace_diag", lambda x: x[0].trace() + (tg.diag(x[0, 0], 1) * 2).sum(0),
         lambda x: x[0].trace() + (torch.diag(x[0, 0], 1) * 2).sum(0),
         one(hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=4))),
    Case("diag_of_matrix", lambda x: tg.diag(x, -1), lambda x: torch.diag(x, -1),
         one(hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=4))),
    Case("log2_log10", lambda x: tg.log2(x.abs() + 0.5) + (x.abs() + 0.5).log10(),
         lambda x: torch.log2(x.abs() + 0.5) + (x.abs() + 0.5).log10(), one()),
    Case("exp2_sinh_cosh", lambda x: tg.exp2(x) + x.sinh() * tg.cosh(x),
         lambda x: torch.exp2(x) + x.sinh() * torch.cosh(x), one()),
    Case("logaddexp", lambda a, b: tg.logaddexp(a * 30, b), lambda a, b: torch.logaddexp(a * 30, b),
         two_broadcast()),
    Case("hypot_lerp", lambda a, b: tg.hypot(a, b) + a.lerp(b, 0.3),
         lambda a, b: torch.hypot(a, b) + a.lerp(b, 0.3), two_broadcast()),
    Case("addcmul_addcdiv", lambda a, b: a.addcmul(a, b, value=0.5) + tg.addcdiv(a, b, a * a + 1),
         lambda a, b: a.addcmul(a, b, value=0.5) + torch.addcdiv(a, b, a * a + 1),
         two_broadcast()),
    Case("addmm", lambda c, a, b: tg.addmm(c, a, b, beta=0.5, alpha=2.0),
         lambda c, a, b: torch.addmm(c, a, b, beta=0.5, alpha=2.0), matrices("p", "nm", "mp")),
    Case("logit_clamp_min_max", lambda x: (x.sigmoid().logit(1e-3) + x.clamp_min(0.1)
                                           + tg.clamp_max(x, 0.2)),
         lambda x: (x.sigmoid().logit(1e-3) + x.clamp_min(0.1) + torch.clamp_max(x, 0.2)),
         one()),
    Case("narrow_select", lambda x: x.narrow(0, 0, 1) + tg.select(x, 0, -1),
         lambda x: x.narrow(0, 0, 1) + torch.select(x, 0, -1), one(POSITIVE_SHAPES)),
]



# ---------------------------------------------------------------- torch.nn.functional


def _probabilities(rng, shape):
    return rng.uniform(0.05, 0.95, shape)


def two_same(kind_a=_normal, kind_b=_normal, shapes=SHAPES):
    def inputs(draw):
        s = draw(shapes)
        return (lambda rng: [kind_a(rng, s), kind_b(rng, s)]), {}
    return inputs


def classes_inputs(draw):
    n, c = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    extra = draw(st.sampled_from([(), (2,), (1, 3)]))

    def make(rng):
        logp = np.log(rng.dirichlet(np.ones(c), (n,) + extra))
        return [np.ascontiguousarray(np.moveaxis(logp, -1, 1)), rng.integers(0, c, (n,) + extra),
                rng.uniform(0.5, 2.0, c)]
    return make, {}


def attention_inputs(draw):
    b, h = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    lq, lk, e, ev = (draw(st.integers(1, 4)) for _ in range(4))
    kind = draw(st.sampled_from(["none", "causal", "bool", "float"]))

    def make(rng):
        arrays = [_normal(rng, (b, h, lq, e)), _normal(rng, (b, h, lk, e)),
                  _normal(rng, (b, h, lk, ev))]
        if kind == "bool":
            mask = rng.random((lq, lk)) < 0.7
            mask[:, 0] = True  # every query may attend somewhere
            arrays.append(mask)
        elif kind == "float":
            arrays.append(_normal(rng, (1, lq, lk)))
        return arrays
    return make, {"causal": kind == "causal"}


def _sdpa(F):
    def fn(q, k, v, *mask, causal):
        if F is TF:  # PyTorch's math kernel: its fused CPU one has no double backward
            from torch.nn.attention import SDPBackend, sdpa_kernel

            with sdpa_kernel(SDPBackend.MATH):
                return F.scaled_dot_product_attention(
                    q, k, v, attn_mask=mask[0] if mask else None, is_causal=causal)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask[0] if mask else None,
                                              is_causal=causal)
    return fn


TF = torch.nn.functional
CASES += [
    Case("F.normalize", lambda x, dim: F.normalize(x, dim=dim),
         lambda x, dim: TF.normalize(x, dim=dim), one(dim=_dim),
         # (along a size-1 dim it is the sign, a constant: second gradients are rounding noise,
         # e.g. -3.6e-12 from torch and 0 from us on a (1, 4, 4) input along dim 0)
         tol={"rtol": 1e-8, "atol": 1e-8}),
    Case("F.normalize_p1", lambda x, dim: F.normalize(x, p=1.0, dim=dim),
         lambda x, dim: TF.normalize(x, p=1.0, dim=dim), one(POSITIVE_SHAPES, dim=_dim),
         # (along a size-1 dim it is the sign, a constant: second gradients are rounding noise)
         tol={"rtol": 1e-8, "atol": 1e-8}),
    Case("F.cosine_similarity", lambda a, b: F.cosine_similarity(a, b, dim=-1),
         lambda a, b: TF.cosine_similarity(a, b, dim=-1),
         two_same(shapes=POSITIVE_SHAPES),
         # (along a size-1 dim it is constant: both second gradients are rounding noise)
         tol={"rtol": 1e-8, "atol": 1e-8}),
    Case("F.one_hot", lambda x: F.one_hot((x.abs() * 2).long(), 6),
         lambda x: TF.one_hot((x.abs() * 2).long().clamp(max=5), 6), one(kind=lambda r, s:
                                                                        r.uniform(0, 2.9, s))),
    Case("F.leaky_relu", lambda x: F.leaky_relu(x, 0.1), lambda x: TF.leaky_relu(x, 0.1), one()),
    Case("F.elu", lambda x: F.elu(x, 0.7), lambda x: TF.elu(x, 0.7), one()),
    Case("F.silu", lambda x: F.silu(x), lambda x: TF.silu(x), one()),
    Case("F.softplus", lambda x: F.softplus(x * 5, beta=2.0, threshold=4.0),
         lambda x: TF.softplus(x * 5, beta=2.0, threshold=4.0), one()),
    Case("F.smooth_l1_loss", lambda a, b: F.smooth_l1_loss(a, b, beta=0.5),
         lambda a, b: TF.smooth_l1_loss(a, b, beta=0.5), two_same(shapes=POSITIVE_SHAPES)),
    Case("F.huber_loss", lambda a, b: F.huber_loss(a, b, reduction="sum", delta=0.7),
         lambda a, b: TF.huber_loss(a, b, reduction="sum", delta=0.7), two_same()),
    Case("F.l1_loss", lambda a, b: F.l1_loss(a, b, reduction="none"),
         lambda a, b: TF.l1_loss(a, b, reduction="none"), two_same()),
    Case("F.nll_loss", lambda logp, t, w: F.nll_loss(logp, t, weight=w.detach()),
         lambda logp, t, w: TF.nll_loss(logp, t, weight=w.detach()), classes_inputs),
    Case("F.kl_div", lambda a, b: F.kl_div(a, b, reduction="batchmean"),
         lambda a, b: TF.kl_div(a, b, reduction="batchmean"),
         two_same(kind_b=_probabilities, shapes=POSITIVE_SHAPES)),
    Case("F.binary_cross_entropy", lambda p, t: F.binary_cross_entropy(p, t),
         lambda p, t: TF.binary_cross_entropy(p, t),
         two_same(_probabilities, _probabilities, shapes=POSITIVE_SHAPES),
         # (PyTorch's backward is another formula, (x - y) / (x (1 - x)): rounding differs)
         tol={"rtol": 1e-8, "atol": 1e-10}),
    Case("F.scaled_dot_product_attention", _sdpa(F), _sdpa(TF), attention_inputs),
    Case("tensor_split sections",
         lambda x, k: tg.cat([p * (i + 1) for i, p in enumerate(x.tensor_split(k, -1))], -1),
         lambda x, k: torch.cat([p * (i + 1) for i, p in enumerate(x.tensor_split(k, -1))], -1),
         one(k=lambda s: st.integers(1, 5))),
    Case("tensor_split indices",
         lambda x: tg.cat([p * (i + 1) for i, p in enumerate(tg.tensor_split(x, [1, 3, 3]))]),
         lambda x: torch.cat([p * (i + 1) for i, p in enumerate(torch.tensor_split(x, [1, 3,
                                                                                     3]))]),
         one()),
    Case("hsplit, vsplit",
         lambda x: tg.cat([p * (i + 1) for i, p in enumerate(tg.hsplit(tg.vsplit(x, 2)[1], 2))],
                          1),
         lambda x: torch.cat([p * (i + 1) for i, p in enumerate(torch.hsplit(
             torch.vsplit(x, 2)[1], 2))], 1),
         one(hnp.array_shapes(min_dims=2, max_dims=3, min_side=2, max_side=2))),
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
    check_matches_torch(case, data, seed)


def check_matches_torch(case: Case, data, seed: int) -> None:
    """``case`` on inputs drawn from ``data``: values, dtypes and gradients as PyTorch's."""
    make, attrs = case.inputs(data.draw)
    arrays = make(np.random.default_rng(seed))
    compare_with_torch(lambda *xs: case.ours(*xs, **attrs),
                       lambda *xs: case.theirs(*xs, **attrs), *arrays, order=case.order,
                       **case.tol)


COMPILED = [c for c in CASES if c.compiles]


@pytest.mark.parametrize("case", COMPILED, ids=[c.name for c in COMPILED])
@settings(max_examples=4, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_compiled_agrees_with_eager(case: Case, data, seed: int) -> None:
    check_compiled_agrees_with_eager(case, data, seed)


def check_compiled_agrees_with_eager(case: Case, data, seed: int) -> None:
    """``case`` compiled by `tg.compile`, forward and forward+backward, equals eager."""
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


# ---------------------------------------------------------------- ops whose result's shape
# depends on the values: eager against PyTorch; compiled, a constant input works and a traced
# one raises TraceError (never a wrong shape)


@FEW
@given(shape=SHAPES, seed=st.integers(0, 2**16))
def test_nonzero_masked_select_and_one_argument_where(shape, seed) -> None:
    x = np.random.default_rng(seed).integers(-1, 2, shape).astype(np.float64)
    t, p = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    np.testing.assert_array_equal(tg.nonzero(t).numpy(), torch.nonzero(p).numpy())
    for a, b in zip(t.nonzero(as_tuple=True), p.nonzero(as_tuple=True)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(tg.where(t > 0), torch.where(p > 0)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(tg.argwhere(t).numpy(), torch.argwhere(p).numpy())
    ours, theirs = t.masked_select(t > 0) * 3, p.masked_select(p > 0) * 3
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), p.grad.numpy())


def test_masked_select_broadcasts_the_mask_as_pytorch() -> None:
    x = np.arange(6.0).reshape(2, 3)
    mask = np.array([True, False, True])
    np.testing.assert_array_equal(tg.masked_select(tg.tensor(x), tg.tensor(mask)).numpy(),
                                  torch.masked_select(torch.tensor(x), torch.tensor(mask)))


def test_value_dependent_shapes_compile_with_constants_and_refuse_traced_values() -> None:
    def fn(x):
        fixed = tg.tensor([0.0, 2.0, 0.0, 3.0])  # made in the function: a constant
        return x[tg.nonzero(fixed)[:, 0]] * 2 + x.masked_select(fixed > 0)

    f = tg.compile(fn)
    for _ in range(3):
        x = tg.randn(4)
        np.testing.assert_allclose(f(x).numpy(), x.numpy()[[1, 3]] * 3)
    for op in (lambda x: tg.nonzero(x), lambda x: x.masked_select(x > 0),
               lambda x: tg.where(x > 0)[0], lambda x: x.repeat_interleave((x > 0).long())):
        g = tg.compile(op)
        g(tg.randn(4))
        with pytest.raises(tg.TraceError, match="traced tensor"):
            g(tg.randn(4))


# ---------------------------------------------------------------- errors


def test_indices_out_of_range_raise_eagerly_and_compiled() -> None:
    x = tg.randn(3, 4)
    with pytest.raises(IndexError, match="gather: index 4 is out of range for a dimension of "
                                         "size 4"):
        x.gather(1, tg.tensor([[4]]))
    with pytest.raises(IndexError, match="index -1"):  # PyTorch refuses negatives too
        x.index_select(0, tg.tensor([-1]))
    with pytest.raises(tg.ShapeError, match="same number"):
        x.gather(1, tg.tensor([1]))
    with pytest.raises(TypeError, match="integer tensor"):
        x.scatter(0, tg.tensor([[0.5]]), 1.0)
    f = tg.compile(lambda x, i: x.gather(1, i))
    for _ in range(2):
        f(x, tg.tensor([[0], [1], [2]]))
    with pytest.raises(IndexError):  # a negative index is not wrapped around, compiled either
        f(x, tg.tensor([[0], [-1], [2]]))


def test_integer_division_by_zero_raises_in_eager_and_compiled_code() -> None:
    with pytest.raises(ZeroDivisionError, match="floor_divide"):
        tg.tensor([1, 2]) // tg.tensor([1, 0])
    with pytest.raises(ZeroDivisionError):
        tg.tensor([1, 2]) % 0
    f = tg.compile(lambda a, b: a // b)
    for _ in range(3):  # (a traced divisor was refused with a TraceError before)
        np.testing.assert_array_equal(f(tg.tensor([7, -8]), tg.tensor([2, 3])).numpy(),
                                      [3, -3])
    with pytest.raises(ZeroDivisionError, match="floor_divide: integer division by zero"):
        f(tg.tensor([7, 8]), tg.tensor([2, 0]))
    g = tg.compile(lambda a: a // 3 + a % 4)  # a number divisor is a constant: compiles
    for _ in range(3):
        a = tg.randint(-50, 50, (5,))
        np.testing.assert_array_equal(g(a).numpy(), a.numpy() // 3 + a.numpy() % 4)


def test_floor_divide_of_large_integers_is_exact() -> None:
    a = np.array([2**52 + 1, -(2**52) - 3, 10**15 + 7], dtype=np.int64)
    b = np.array([3, 7, -11], dtype=np.int64)
    np.testing.assert_array_equal((tg.tensor(a) // tg.tensor(b)).numpy(), a // b)
    np.testing.assert_array_equal((tg.tensor(a) % tg.tensor(b)).numpy(), a % b)


def test_binary_cross_entropy_rejects_probabilities_outside_0_1() -> None:
    import tracegrad.nn.functional as F

    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(tg.tensor([0.5, 1.5]), tg.tensor([1.0, 0.0]))
    with pytest.raises(RuntimeError):
        torch.nn.functional.binary_cross_entropy(torch.tensor([0.5, 1.5]),
                                                 torch.tensor([1.0, 0.0]))
    f = tg.compile(lambda p, t: F.binary_cross_entropy(p, t))
    for _ in range(2):  # (the first call runs eagerly, the second traces)
        f(tg.tensor([0.5, 0.5]), tg.tensor([1.0, 0.0]))
    for _ in range(3):  # compiled too, on every call's values
        with pytest.raises(RuntimeError, match="between 0 and 1"):
            f(tg.tensor([0.5, 1.5]), tg.tensor([1.0, 0.0]))
    np.testing.assert_allclose(f(tg.tensor([0.25, 0.5]), tg.tensor([1.0, 0.0])).item(),
                               (-np.log(0.25) - np.log(0.5)) / 2, rtol=1e-6)


def test_allclose_is_a_python_bool() -> None:
    a = tg.tensor([1.0, float("nan")])
    assert tg.allclose(a, a + 1e-9, equal_nan=True) is True
    assert a.allclose(a) is False
    assert tg.allclose(tg.tensor([1, 2]), tg.tensor([1, 3])) is False


# ---------------------------------------------------------------- random numbers


def test_multinomial_and_randperm_draw_the_right_distribution_and_compile() -> None:
    tg.manual_seed(0)
    p = tg.tensor([0.1, 0.0, 0.6, 0.3])
    draws = tg.multinomial(p, 20000, replacement=True)
    assert draws.dtype == tg.int64 and draws.shape == (20000,)
    freq = np.bincount(draws.numpy(), minlength=4) / 20000
    np.testing.assert_allclose(freq, [0.1, 0.0, 0.6, 0.3], atol=0.015)
    rows = tg.multinomial(tg.tensor([[1.0, 0.0, 3.0], [0.0, 2.0, 2.0]]), 2)
    for row, allowed in zip(rows.numpy(), ({0, 2}, {1, 2})):
        assert set(row) == allowed  # without replacement: each category once
    first = tg.multinomial(tg.tensor([1.0, 1.0, 8.0]).expand(5000, 3), 1)
    assert abs((first.numpy() == 2).mean() - 0.8) < 0.03
    with pytest.raises(ValueError, match="without replacement"):
        tg.multinomial(tg.tensor([1.0, 0.0]), 2)
    with pytest.raises(ValueError, match="non-negative"):
        tg.multinomial(tg.tensor([1.0, -1.0]), 1)
    perm = tg.randperm(10)
    assert perm.dtype == tg.int64 and sorted(perm.tolist()) == list(range(10))
    seeded = [tg.randperm(8, generator=tg.Generator().manual_seed(3)).tolist() for _ in "ab"]
    assert seeded[0] == seeded[1]
    f = tg.compile(lambda w: (tg.multinomial(w, 3, replacement=True), tg.randperm(6)))
    results = [f(tg.tensor([0.2, 0.8])) for _ in range(6)]
    assert len({tuple(r[1].tolist()) for r in results[2:]}) > 1  # fresh draws every call
    for draw, perm in results:
        assert set(draw.tolist()) <= {0, 1} and sorted(perm.tolist()) == list(range(6))


def test_in_place_random_fills_and_like_functions() -> None:
    tg.manual_seed(1)
    w = tg.empty(200, 300)
    assert w.shape == (200, 300) and w.dtype == tg.float32
    w.normal_(2.0, 0.5)
    assert abs(w.numpy().mean() - 2.0) < 0.01 and abs(w.numpy().std() - 0.5) < 0.01
    w.uniform_(-3, -1)
    assert w.numpy().min() >= -3 and w.numpy().max() < -1
    assert abs(w.numpy().mean() + 2) < 0.01
    assert w.zero_().numpy().sum() == 0 and (w.fill_(1.5).numpy() == 1.5).all()
    p = tg.nn.Parameter(tg.zeros(3))
    with pytest.raises(RuntimeError, match="leaf"):
        p.normal_()
    with tg.no_grad():
        p.normal_()
    x = tg.tensor([[1, 2]], dtype=tg.int32)
    for ours, theirs in [(tg.full_like(x, 7), torch.full_like(torch.tensor([[1, 2]],
                                                                           dtype=torch.int32), 7)),
                         (tg.empty_like(x, dtype=tg.float64), torch.zeros(1, 2,
                                                                          dtype=torch.float64)),
                         (tg.zeros_like(x), torch.zeros(1, 2, dtype=torch.int32))]:
        assert ours.shape == tuple(theirs.shape) and str(ours.dtype) == str(theirs.dtype)[6:]
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    y = tg.ones(2, 3, dtype=tg.float64)
    for fn in (tg.randn_like, tg.rand_like):
        r = fn(y)
        assert r.shape == (2, 3) and r.dtype == tg.float64
    assert tg.rand_like(y).numpy().min() >= 0
    r = tg.randint_like(y, 3, 5)
    assert r.dtype == tg.float64 and set(r.numpy().ravel()) <= {3.0, 4.0}
    assert y.new_zeros(4).dtype == tg.float64 and y.new_full((2,), 3).tolist() == [3.0, 3.0]
    assert y.new_tensor([1, 2]).dtype == tg.float64 and x.type_as(y).dtype == tg.float64


def test_every_method_op_is_also_a_function_where_pytorch_has_one() -> None:
    # (tg.trace is the compiler's trace; a matrix's trace is x.trace() or F.trace)
    assert tg.trace is tg.compiler.trace
    missing = [name for name in dir(tg.Tensor) if not name.startswith("_") and name != "trace"
               and callable(getattr(tg.Tensor, name)) and not name.endswith("_")
               and hasattr(torch, name) and callable(getattr(torch, name))
               and not hasattr(tg, name)]
    assert missing == []


def test_in_place_random_fills_compile_to_fresh_draws() -> None:
    w = tg.zeros(1000)

    @tg.compile
    def reinit(scale):
        with tg.no_grad():
            w.normal_(0.0, scale)
        return w.sum()

    sums = [reinit(2.0).item() for _ in range(4)]
    assert len(set(sums)) == 4  # new numbers on every call, compiled ones included
    assert abs(w.numpy().std() - 2.0) < 0.2
    reinit(0.5)
    assert abs(w.numpy().std() - 0.5) < 0.05  # the scale is an input, not a constant
    with pytest.raises(tg.TraceError, match="Generator.manual_seed .*pass one in as generator="):
        g = tg.compile(lambda x: x.uniform_(generator=tg.Generator().manual_seed(0)))
        for _ in range(2):
            g(tg.zeros(3))


# Forward mode comes with the primitives too: tg.jvp of each differentiable op against
# central differences (float64). Ops with jumps (rounding, remainders) are left out.
JUMPS = {"remainder", "remainder_number", "fmod", "trunc_frac", "round", "round_decimals",
         "floor_ceil", "floordiv", "floordiv_number", "rremainder", "int_floordiv_remainder"}
DETACHED = {"F.nll_loss"}  # (its class weights are detached: not a function of them)
FORWARD = [c for c in CASES if c.order > 0 and c.name not in JUMPS | DETACHED]


@pytest.mark.parametrize("case", FORWARD, ids=[c.name for c in FORWARD])
@settings(max_examples=4, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_forward_mode_matches_central_differences(case: Case, data, seed: int) -> None:
    check_forward_mode(case, data, seed)


def check_forward_mode(case: Case, data, seed: int) -> None:
    """``tg.jvp`` of ``case`` against central differences of its values."""
    make, attrs = case.inputs(data.draw)
    rng = np.random.default_rng(seed)
    arrays = make(rng)
    floats = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    tangents = [rng.standard_normal(arrays[i].shape) for i in floats]

    def at(values):
        xs = [tg.tensor(a) for a in arrays]
        for i, v in zip(floats, values):
            xs[i] = v
        return case.ours(*xs, **attrs)

    primals = tuple(tg.tensor(arrays[i]) for i in floats)
    out, tangent = tg.jvp(lambda *v: at(v), primals, tuple(tg.tensor(t) for t in tangents))
    if out.dtype.kind != "f":
        return
    h = 1e-6
    up = at([p + tg.tensor(t) * h for p, t in zip(primals, tangents)]).numpy()
    down = at([p - tg.tensor(t) * h for p, t in zip(primals, tangents)]).numpy()
    finite = np.isfinite(up) & np.isfinite(down)
    want = np.where(finite, (up - down) / (2 * h), 0.0)
    got = np.where(finite, tangent.numpy(), 0.0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=case.name)


def test_more_in_place_unary_methods_match_pytorch() -> None:
    """pow_, sin_, cos_, reciprocal_, rsqrt_, log1p_, expm1_ and sign_ were missing; through
    a view, and their gradients, they are PyTorch's."""
    for name, args in (("pow_", (3,)), ("sin_", ()), ("cos_", ()), ("reciprocal_", ()),
                       ("rsqrt_", ()), ("log1p_", ()), ("expm1_", ()), ("sign_", ())):
        got = []
        for lib in (tg, torch):
            x = lib.tensor([0.5, 1.5, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
            y = x * 1
            getattr(y[1:], name)(*args)
            (y * y).sum().backward()
            got.append((y.detach().numpy(), x.grad.numpy()))
        np.testing.assert_allclose(got[0][0], got[1][0], err_msg=name)
        np.testing.assert_allclose(got[0][1], got[1][1], err_msg=name)


@pytest.mark.parametrize("cuts", [[1, 5, 9], [3, 1], [-2], [0, 0, 7], [-9, 2], 8])
def test_tensor_split_at_unusual_indices_matches_pytorch(cuts) -> None:
    """Indices past the end, going back, or negative are Python slice bounds in PyTorch (a
    first version clamped them and gave [[], [5, 6]] for [-2])."""
    got = [p.tolist() for p in tg.arange(7.0).tensor_split(cuts)]
    assert got == [p.tolist() for p in torch.arange(7.0).tensor_split(cuts)]


def test_split_functions_refuse_uneven_parts_and_small_tensors() -> None:
    with pytest.raises(tg.ShapeError, match="hsplit: dimension 1 of size 3"):
        tg.hsplit(tg.zeros(2, 3), 2)
    with pytest.raises(tg.ShapeError, match="vsplit: needs a tensor of at least 2"):
        tg.vsplit(tg.zeros(4), 2)
    with pytest.raises(ValueError, match="at least 1"):
        tg.zeros(4).tensor_split(0)
