"""PyTorch parity for the ops added late: dtype queries and modes, the fused products
(addmv, addr, baddbmm, addbmm), the scatters (indexing.py) and the searching and order
statistics (searching.py). Values and dtypes against torch, gradients against torch and
float64 central finite differences (`gradcheck`), and each group compiled against eager.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_grads, compare_with_torch

import tracegrad as tg

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)


def _n(*shape):
    return RNG.standard_normal(shape)


def _distinct(*shape):
    """Values far apart (no ties), so that picks and their gradients are unambiguous."""
    return RNG.permutation(int(np.prod(shape))).reshape(shape) * 0.5 + RNG.random(shape) * 0.1


def _compiled_matches(fn, *arrays, grad=True):
    """``tg.compile(fn)`` gives eager's values and (through backward inside) gradients."""
    def run(f):
        xs = [tg.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
        out = f(*xs)
        outs = out if isinstance(out, tuple) else (out,)
        if grad:
            sum(o.sum() for o in outs if o.dtype.kind == "f").backward()
        # (an input the result does not depend on: eager leaves its grad None, a compiled
        # program writes zeros; see the report)
        return [o.numpy().copy() for o in outs] + [
            x.grad.numpy().copy() if x.grad is not None else np.zeros(x.shape)
            for x in xs if x.requires_grad]

    compiled = tg.compile(fn)
    want = run(fn)
    for _ in range(2):  # (the trace, then the compiled program)
        got = run(compiled)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, equal_nan=True)


# ------------------------------------------------------------------ dtype queries and modes


@pytest.mark.parametrize("name", ["float16", "float32", "float64"])
def test_finfo_matches_torch(name):
    got, want = tg.finfo(getattr(tg, name)), torch.finfo(getattr(torch, name))
    for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
        assert getattr(got, field) == getattr(want, field), field
    assert tg.finfo().dtype == "float32" and tg.finfo(tg.float64).eps == 2.0 ** -52
    assert "eps=1.19209e-07" in repr(tg.finfo(tg.float32))


@pytest.mark.parametrize("name", ["uint8", "int8", "int16", "int32", "int64"])
def test_iinfo_matches_torch(name):
    got, want = tg.iinfo(getattr(tg, name)), torch.iinfo(getattr(torch, name))
    assert (got.bits, got.min, got.max, got.dtype) == (want.bits, want.min, want.max,
                                                       want.dtype)


def test_info_refuses_the_other_kind():
    with pytest.raises(TypeError, match="finfo: int64 is not a floating point dtype"):
        tg.finfo(tg.int64)
    with pytest.raises(TypeError, match="iinfo: float32 is not an integer dtype"):
        tg.iinfo(tg.float32)


DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]


def test_promote_types_and_can_cast_match_torch():
    for a in DTYPES:
        for b in DTYPES:
            ta, tb = getattr(tg, a), getattr(tg, b)
            pa, pb = getattr(torch, a), getattr(torch, b)
            assert str(tg.promote_types(ta, tb)) == str(torch.promote_types(pa, pb)).replace(
                "torch.", ""), (a, b)
            assert tg.can_cast(ta, tb) == torch.can_cast(pa, pb), (a, b)


def test_result_type_matches_torch():
    def operands(lib):
        return [lib.tensor([1, 2], dtype=lib.int16), lib.tensor([1.0], dtype=lib.float16),
                lib.tensor(3, dtype=lib.int32), lib.tensor(2.0, dtype=lib.float64),
                lib.tensor([True]), lib.tensor([1], dtype=lib.uint8), 2.5, 3, True]

    for a, pa in zip(operands(tg), operands(torch)):
        for b, pb in zip(operands(tg), operands(torch)):
            want = str(torch.result_type(pa, pb)).replace("torch.", "")
            assert str(tg.result_type(a, b)) == want, (pa, pb)


def test_is_complex_and_is_nonzero():
    assert tg.is_complex(tg.ones(2)) is False
    assert tg.is_nonzero(tg.tensor([0.5])) is True and tg.is_nonzero(tg.tensor(0)) is False
    with pytest.raises(RuntimeError, match="is_nonzero: the tensor has 2 elements"):
        tg.is_nonzero(tg.ones(2))


def test_as_tensor_shares_numpy_memory_like_torch():
    a = np.zeros(3)
    t, p = tg.as_tensor(a), torch.as_tensor(a)
    a[0] = 5.0
    assert t.dtype == tg.float64 and t.numpy()[0] == 5.0 and p[0].item() == 5.0
    t[1] = 7.0
    assert a[1] == 7.0
    copied = tg.as_tensor(a, dtype=tg.float32)
    a[2] = 1.0
    assert copied.dtype == tg.float32 and copied.numpy()[2] == 0.0
    x = tg.ones(2)
    assert tg.as_tensor(x) is x and tg.as_tensor([1, 2]).dtype == tg.int64
    assert tg.as_tensor([1.0]).dtype == tg.float32


def test_inference_mode_like_no_grad():
    x = tg.ones(2, requires_grad=True)
    assert not tg.is_inference_mode_enabled()
    with tg.inference_mode():
        assert tg.is_inference_mode_enabled() and not tg.is_grad_enabled()
        assert not (x * 2).requires_grad
        with tg.inference_mode(False):
            assert not tg.is_inference_mode_enabled()
    assert tg.is_grad_enabled() and not tg.is_inference_mode_enabled()

    @tg.inference_mode
    def bare(y):
        return y * 2, tg.is_inference_mode_enabled()

    @tg.inference_mode()
    def called(y):
        return y * 2

    out, inside = bare(x)
    assert inside and not out.requires_grad and not called(x).requires_grad
    assert (x * 2).requires_grad and not tg.is_inference_mode_enabled()


# ------------------------------------------------------------------ fused products

FUSED = [
    ("addmv", (3,), (3, 4), (4,)),
    ("addr", (3, 4), (3,), (4,)),
    ("baddbmm", (2, 3, 5), (2, 3, 4), (2, 4, 5)),
    ("addbmm", (3, 5), (2, 3, 4), (2, 4, 5)),
    ("addmm", (1, 5), (3, 4), (4, 5)),
]


@pytest.mark.parametrize("name,s0,s1,s2", FUSED, ids=[f[0] for f in FUSED])
@pytest.mark.parametrize("beta,alpha", [(1, 1), (0.5, -2.0), (0, 3)])
def test_fused_products_match_torch(name, s0, s1, s2, beta, alpha):
    arrays = _n(*s0), _n(*s1), _n(*s2)
    compare_with_torch(lambda a, b, c: getattr(tg, name)(a, b, c, beta=beta, alpha=alpha),
                       lambda a, b, c: getattr(torch, name)(a, b, c, beta=beta, alpha=alpha),
                       *arrays)
    check_grads(lambda a, b, c: getattr(a, name)(b, c, beta=beta, alpha=alpha), *arrays)


def test_fused_beta_zero_ignores_nan_and_inplace_forms():
    inp = np.full((3, 5), np.nan)
    b, c = _n(2, 3, 4), _n(2, 4, 5)
    got = tg.addbmm(tg.tensor(inp), tg.tensor(b), tg.tensor(c), beta=0)
    want = torch.addbmm(torch.tensor(inp), torch.tensor(b), torch.tensor(c), beta=0)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    x, px = tg.tensor(_n(2, 3, 5)), None
    px = torch.tensor(x.numpy().copy())
    assert x.baddbmm_(tg.tensor(b), tg.tensor(c), alpha=2) is x
    px.baddbmm_(torch.tensor(b), torch.tensor(c), alpha=2)
    np.testing.assert_allclose(x.numpy(), px.numpy(), rtol=1e-12)
    m, pm = tg.tensor(_n(3, 5)), None
    pm = torch.tensor(m.numpy().copy())
    m.addmm_(tg.tensor(b[0]), tg.tensor(c[0]), beta=2)
    pm.addmm_(torch.tensor(b[0]), torch.tensor(c[0]), beta=2)
    np.testing.assert_allclose(m.numpy(), pm.numpy(), rtol=1e-12)
    with pytest.raises(tg.ShapeError, match=r"addmv: input of shape \(4,\) does not "
                                            r"broadcast to the product's shape \(3,\)"):
        tg.addmv(tg.ones(4), tg.ones(3, 2), tg.ones(2))


def test_fused_products_compile():
    _compiled_matches(lambda a, b, c: tg.baddbmm(a, b, c, beta=0.5, alpha=2.0),
                      _n(2, 3, 5), _n(2, 3, 4), _n(2, 4, 5))
    _compiled_matches(lambda a, b, c: a.addr(b, c, alpha=3), _n(3, 4), _n(3), _n(4))


# ------------------------------------------------------------------ scatters (indexing.py)

IDX = np.array([3, 0, 1])
SCATTER = [
    ("index_copy", lambda x, s: x.index_copy(0, tg.tensor(IDX), s),
     lambda x, s: x.index_copy(0, torch.tensor(IDX), s), (4, 5), (3, 5)),
    ("index_copy_dim1", lambda x, s: tg.index_copy(x, 1, tg.tensor([4, 1]), s),
     lambda x, s: torch.index_copy(x, 1, torch.tensor([4, 1]), s), (4, 5), (4, 2)),
    ("diagonal_scatter", lambda x, s: tg.diagonal_scatter(x, s, 1, 0, 2),
     lambda x, s: torch.diagonal_scatter(x, s, 1, 0, 2), (3, 4, 5), (4, 3)),
    ("diagonal_scatter_neg", lambda x, s: x.diagonal_scatter(s, -1, 2, 1),
     lambda x, s: x.diagonal_scatter(s, -1, 2, 1), (3, 4, 5), (3, 4)),
    ("select_scatter", lambda x, s: tg.select_scatter(x, s, 1, -1),
     lambda x, s: torch.select_scatter(x, s, 1, -1), (3, 4, 5), (3, 5)),
    ("slice_scatter", lambda x, s: x.slice_scatter(s, 2, 1, None, 2),
     lambda x, s: x.slice_scatter(s, 2, 1, None, 2), (3, 4, 5), (3, 4, 2)),
    ("masked_scatter", lambda x, s: x.masked_scatter(tg.tensor(MASK), s),
     lambda x, s: x.masked_scatter(torch.tensor(MASK), s), (4, 5), (3, 7)),
    ("put", lambda x, s: x.put(tg.tensor([0, -1, 7, 3]), s),
     lambda x, s: x.put(torch.tensor([0, -1, 7, 3]), s), (3, 4), (2, 2)),
    ("put_accumulate", lambda x, s: tg.put(x, tg.tensor([0, -1, 7, 7]), s, accumulate=True),
     lambda x, s: x.put(torch.tensor([0, -1, 7, 7]), s, accumulate=True), (3, 4), (4,)),
]
MASK = RNG.random((4, 5)) > 0.5


@pytest.mark.parametrize("case", SCATTER, ids=[c[0] for c in SCATTER])
def test_scatters_match_torch(case):
    _, tg_fn, torch_fn, s0, s1 = case
    arrays = _n(*s0), _n(*s1)
    compare_with_torch(tg_fn, torch_fn, *arrays)
    check_grads(tg_fn, *arrays)


def test_index_fill_matches_torch():
    for dim, idx in [(0, [1, 3]), (1, [0, 4, 4])]:
        compare_with_torch(lambda x, d=dim, i=idx: x.index_fill(d, tg.tensor(i), -1.5),
                           lambda x, d=dim, i=idx: x.index_fill(d, torch.tensor(i), -1.5),
                           _n(4, 5))
    x = RNG.integers(-5, 5, (3, 4))
    np.testing.assert_array_equal(tg.index_fill(tg.tensor(x), 1, tg.tensor([2]), 9).numpy(),
                                  torch.tensor(x).index_fill(1, torch.tensor([2]), 9).numpy())


REDUCES = ["sum", "prod", "mean", "amax", "amin"]


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_matches_torch(reduce, include_self):
    index = RNG.integers(0, 4, (6, 5))
    index2 = RNG.integers(0, 5, (3, 4))  # (smaller than the input outside dim)
    for dim, ix in [(0, index), (1, index2)]:
        def tg_fn(x, s, dim=dim, ix=ix):
            return x.scatter_reduce(dim, tg.tensor(ix), s, reduce, include_self=include_self)

        def torch_fn(x, s, dim=dim, ix=ix):
            return x.scatter_reduce(dim, torch.tensor(ix), s, reduce, include_self=include_self)

        src = _distinct(*ix.shape)  # (torch's backward refuses a larger src)
        compare_with_torch(tg_fn, torch_fn, _distinct(4, 5) + 40, src, order=1)
        check_grads(tg_fn, _distinct(4, 5), src, order=1)
    # ties among the scattered values and the input's own: amax/amin share the gradient.
    # (Without include_self PyTorch still counts, and pays, an input value that ties though
    # it took no part; tracegrad shares among the values that did.)
    x, src = np.zeros((2, 3)), np.zeros((4, 3))
    if include_self:
        compare_with_torch(
            lambda a, b: tg.scatter_reduce(a, 0, tg.tensor(index[:4, :3] % 2), b, reduce,
                                           include_self=include_self),
            lambda a, b: torch.scatter_reduce(a, 0, torch.tensor(index[:4, :3] % 2), b,
                                              reduce, include_self=include_self),
            x, src, order=1)
    ints = RNG.integers(-5, 5, (4, 5)), RNG.integers(-5, 5, (6, 5))
    got = tg.tensor(ints[0]).scatter_reduce(0, tg.tensor(index), tg.tensor(ints[1]), reduce,
                                            include_self=include_self)
    want = torch.tensor(ints[0]).scatter_reduce(0, torch.tensor(index), torch.tensor(ints[1]),
                                                reduce, include_self=include_self)
    assert got.dtype == tg.int64
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_scatter_inplace_forms_match_torch():
    x = _n(4, 5)
    for name, args in [("index_copy_", (0, IDX, _n(3, 5))), ("index_fill_", (1, [0, 2], 2.5)),
                       ("masked_scatter_", (MASK, _n(20))), ("put_", ([1, 2], _n(2))),
                       ("scatter_reduce_", (0, RNG.integers(0, 4, (2, 5)), _n(2, 5), "amax"))]:
        a, p = tg.tensor(x), torch.tensor(x)

        def conv(v, lib):
            return lib.tensor(v) if isinstance(v, (np.ndarray, list)) else v

        assert getattr(a, name)(*[conv(v, tg) for v in args]) is a
        getattr(p, name)(*[conv(v, torch) for v in args])
        np.testing.assert_allclose(a.numpy(), p.numpy(), rtol=1e-12, err_msg=name)


def test_scatter_errors_name_the_op_and_the_fix():
    x = tg.zeros(4, 5)
    with pytest.raises(tg.ShapeError, match=r"index_copy: source has shape \(2, 5\); for an "
                                            r"input \(4, 5\) and 3 indices"):
        x.index_copy(0, tg.tensor(IDX), tg.zeros(2, 5))
    with pytest.raises(ValueError, match="scatter_reduce: reduce must be one of"):
        x.scatter_reduce(0, tg.tensor([[0]]), tg.zeros(1, 1), "max")
    with pytest.raises(tg.ShapeError, match="masked_scatter: the mask selects 20 elements"):
        x.masked_scatter(tg.ones(4, 5, dtype=tg.bool), tg.zeros(3))
    with pytest.raises(IndexError, match="put: index 20 is out of range for a tensor of 20"):
        x.put(tg.tensor([20]), tg.zeros(1))
    with pytest.raises(TypeError, match="select_scatter: src is float64 but the input is "
                                        "float32"):
        x.select_scatter(tg.zeros(5, dtype=tg.float64), 0, 0)


def test_scatters_compile():
    ix = RNG.integers(0, 4, (6, 5))
    _compiled_matches(lambda x, s: x.scatter_reduce(0, tg.tensor(ix), s, "amax",
                                                    include_self=False), _n(4, 5), _n(6, 5))
    _compiled_matches(lambda x, s: x.scatter_reduce(0, tg.tensor(ix), s, "mean"),
                      _n(4, 5), _n(6, 5))
    _compiled_matches(lambda x, s: tg.diagonal_scatter(x, s[0], 1).index_copy(
        1, tg.tensor([2, 0]), s[:, :2] * 2), _n(4, 5), _n(4, 4))
    _compiled_matches(lambda x, s: x.masked_scatter(tg.tensor(MASK), s), _n(4, 5), _n(20))


# ------------------------------------------------------------------ searching (searching.py)


def _same(got, want):
    """tracegrad result(s) equal to torch's: values, dtypes, shapes."""
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w)
        return
    w = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    g = got.numpy()
    assert g.dtype == w.dtype and g.shape == w.shape, (g.dtype, w.dtype, g.shape, w.shape)
    tol = 2e-6 if g.dtype == np.float32 else 1e-12  # (float32: a rounding apart)
    np.testing.assert_allclose(g, w, rtol=tol, atol=tol, equal_nan=True)


def test_unique_matches_torch():
    x = RNG.integers(0, 4, (3, 5))
    rows = np.array([[1, 2], [0, 1], [1, 2], [0, 0]])
    for data, kwargs in [(x, {}), (x, {"return_inverse": True, "return_counts": True}),
                         (x.astype(np.float32), {"return_counts": True}),
                         (rows, {"dim": 0, "return_inverse": True, "return_counts": True}),
                         (rows, {"dim": 1, "return_inverse": True})]:
        _same(tg.unique(tg.tensor(data), **kwargs), torch.unique(torch.tensor(data), **kwargs))
        _same(tg.tensor(data).unique_consecutive(**kwargs) if "dim" not in kwargs else
              tg.unique_consecutive(tg.tensor(data), **kwargs),
              torch.unique_consecutive(torch.tensor(data), **kwargs))
    compiled = tg.compile(lambda t: tg.unique(t * 2, return_counts=True))
    for data in ([1.0, 2.0, 2.0], [3.0, 1.0, 3.0, 0.0]):  # (a TraceError or eager's result)
        try:
            got = compiled(tg.tensor(data))
        except tg.TraceError:
            continue
        _same(got, torch.unique(torch.tensor(data) * 2, return_counts=True))


def test_searchsorted_and_bucketize_match_torch():
    seq = np.sort(_n(6))
    seq2 = np.sort(_n(2, 6), axis=-1)
    values = np.concatenate([_n(7), seq[[0, 3]], [np.nan, np.inf, -np.inf]])
    for right in (False, True):
        _same(tg.searchsorted(tg.tensor(seq), tg.tensor(values), right=right),
              torch.searchsorted(torch.tensor(seq), torch.tensor(values), right=right))
        _same(tg.bucketize(tg.tensor(values), tg.tensor(seq), right=right),
              torch.bucketize(torch.tensor(values), torch.tensor(seq), right=right))
    v2 = _n(2, 3)
    _same(tg.searchsorted(tg.tensor(seq2), tg.tensor(v2), side="right", out_int32=True),
          torch.searchsorted(torch.tensor(seq2), torch.tensor(v2), side="right", out_int32=True))
    _same(tg.searchsorted(tg.tensor(seq), 0.1), torch.searchsorted(torch.tensor(seq), 0.1))
    order = RNG.permutation(6)
    shuffled = seq[order]
    sorter = np.argsort(shuffled)
    _same(tg.searchsorted(tg.tensor(shuffled), tg.tensor(values), sorter=tg.tensor(sorter)),
          torch.searchsorted(torch.tensor(shuffled), torch.tensor(values),
                             sorter=torch.tensor(sorter)))


def test_isin_and_mode_take_memory_linear_in_their_inputs():
    """isin and mode compared every pair (n * m booleans: isin of a million elements against
    ten thousand asked for 10 GB); they search sorted values now."""
    import tracemalloc

    rng = np.random.default_rng(0)
    elements = tg.tensor(rng.integers(0, 10**6, 200_000))
    test = tg.tensor(rng.integers(0, 10**6, 2_000))
    row = tg.tensor(rng.integers(0, 50, (1, 20_000)).astype(np.float32))
    tracemalloc.start()
    try:
        found = tg.isin(elements, test)
        values, indices = tg.mode(row)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 30 * 2**20, f"peak {peak / 2**20:.0f} MiB"  # pairwise: 400 MiB each
    np.testing.assert_array_equal(found.numpy(), np.isin(elements.numpy(), test.numpy()))
    # (torch's index for a long row is some place of the value, not always the last)
    assert values.item() == torch.mode(torch.tensor(row.numpy())).values.item()
    assert indices.item() == np.flatnonzero(row.numpy()[0] == values.item())[-1]


def test_bincount_histc_isin_match_torch():
    x = RNG.integers(0, 5, 12)
    w = _n(12)
    _same(tg.bincount(tg.tensor(x)), torch.bincount(torch.tensor(x)))
    _same(tg.tensor(x).bincount(minlength=8), torch.tensor(x).bincount(minlength=8))
    _same(tg.bincount(tg.tensor(x), tg.tensor(w.astype(np.float32))),
          torch.bincount(torch.tensor(x), torch.tensor(w.astype(np.float32))))
    _same(tg.bincount(tg.tensor(x), tg.tensor(x)), torch.bincount(torch.tensor(x),
                                                                  torch.tensor(x)))
    # (PyTorch has no gradient for the weights; tracegrad's is checked by finite differences)
    compare_with_torch(lambda t: tg.bincount(tg.tensor(x), t),
                       lambda t: torch.bincount(torch.tensor(x), t), w, order=0)
    check_grads(lambda t: tg.bincount(tg.tensor(x), t, minlength=7), w)
    data = _n(50).astype(np.float32)
    for kwargs in [{}, {"bins": 7}, {"bins": 4, "min": -1, "max": 1}, {"bins": 3, "min": 2,
                                                                          "max": 2}]:
        _same(tg.histc(tg.tensor(data), **kwargs), torch.histc(torch.tensor(data), **kwargs))
    _same(tg.tensor([1.0, 1.0]).histc(bins=4), torch.tensor([1.0, 1.0]).histc(bins=4))
    e, t = RNG.integers(0, 6, (3, 4)), RNG.integers(0, 6, 3)
    for invert in (False, True):
        _same(tg.isin(tg.tensor(e), tg.tensor(t), invert=invert),
              torch.isin(torch.tensor(e), torch.tensor(t), invert=invert))
    _same(tg.isin(tg.tensor(e), 2), torch.isin(torch.tensor(e), 2))
    _same(tg.isin(2, tg.tensor(t)), torch.isin(2, torch.tensor(t)))


@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_cummin_match_torch(name):
    x = np.array([[1.0, 3, 3, 2, np.nan, 5, np.nan], [4, 1, 0, 0, 2, -1, 7]])
    _same(tuple(getattr(tg, name)(tg.tensor(x), 1)), tuple(getattr(torch, name)(
        torch.tensor(x), 1)))
    ints = RNG.integers(-3, 3, (4, 5))
    _same(tuple(getattr(tg.tensor(ints), name)(0)),
          tuple(getattr(torch.tensor(ints), name)(0)))
    data = _distinct(3, 4)
    for dim in (0, 1, -1):
        compare_with_torch(lambda t, d=dim: getattr(t, name)(d).values,
                           lambda t, d=dim: getattr(t, name)(d).values, data)
        check_grads(lambda t, d=dim: getattr(tg, name)(t, d).values, data)


def test_order_statistics_match_torch():
    x = _distinct(3, 5)
    for k, dim, keepdim in [(1, -1, False), (3, 0, True), (5, 1, False)]:
        if k > x.shape[dim]:
            continue
        _same(tuple(tg.kthvalue(tg.tensor(x), k, dim, keepdim)),
              tuple(torch.kthvalue(torch.tensor(x), k, dim, keepdim)))
        compare_with_torch(lambda t, k=k, d=dim, kd=keepdim: t.kthvalue(k, d, kd).values,
                           lambda t, k=k, d=dim, kd=keepdim: t.kthvalue(k, d, kd).values, x)
    m = np.array([[3.0, 1, 3, 1, 2, 2, 5], [0, 0, 1, 1, 1, 0, 7]])
    for dim, keepdim in [(-1, False), (1, True)]:
        _same(tuple(tg.mode(tg.tensor(m), dim, keepdim)),
              tuple(torch.mode(torch.tensor(m), dim, keepdim)))
    _same(tuple(tg.tensor(m.T.copy()).mode(0)), tuple(torch.tensor(m.T.copy()).mode(0)))
    compare_with_torch(lambda t: t.mode(1).values, lambda t: t.mode(1).values, m, order=1)
    _same(tg.msort(tg.tensor(x)), torch.msort(torch.tensor(x)))
    compare_with_torch(lambda t: tg.msort(t), lambda t: torch.msort(t), x)
    for kwargs in [{}, {"dim": 1}, {"dim": 0, "keepdim": True}]:
        _same(tuple(tg.aminmax(tg.tensor(x), **kwargs)),
              tuple(torch.aminmax(torch.tensor(x), **kwargs)))
    check_grads(lambda t: tg.aminmax(t, dim=1).max * 2 + t.aminmax(dim=1).min, x)


@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "midpoint",
                                           "nearest"])
def test_quantile_matches_torch(interpolation):
    x = _distinct(3, 6)
    with_nan = x.copy()
    with_nan[0, 2] = with_nan[2, [0, 4]] = np.nan
    qs = [0.3, np.array([0.0, 0.25, 0.5, 0.9, 1.0])]
    for q in qs:
        for dim, keepdim in [(None, False), (None, True), (1, False), (0, True), (-1, True)]:
            def tq(t, q=q, dim=dim, keepdim=keepdim, fn="quantile"):
                qq = tg.tensor(q) if isinstance(q, np.ndarray) else q
                return getattr(tg, fn)(t, qq, dim, keepdim, interpolation=interpolation)

            def pq(t, q=q, dim=dim, keepdim=keepdim, fn="quantile"):
                qq = torch.tensor(q) if isinstance(q, np.ndarray) else q
                return getattr(torch, fn)(t, qq, dim, keepdim, interpolation=interpolation)

            compare_with_torch(tq, pq, x)
            compare_with_torch(lambda t: tq(t, fn="nanquantile"),
                               lambda t: pq(t, fn="nanquantile"), with_nan, order=0)
            compare_with_torch(tq, pq, with_nan, order=0)
    check_grads(lambda t: tg.quantile(t, tg.tensor([0.2, 0.7], dtype=tg.float64), 1,
                                      interpolation=interpolation), x)
    check_grads(lambda t: tg.nanquantile(t, 0.4, 1, interpolation=interpolation), x)


def test_nanmedian_matches_torch():
    x = _distinct(3, 6)
    x[0, 2] = x[2, [0, 4]] = np.nan
    _same(tg.nanmedian(tg.tensor(x)), torch.nanmedian(torch.tensor(x)))
    for dim, keepdim in [(1, False), (0, True)]:
        _same(tuple(tg.tensor(x).nanmedian(dim, keepdim)),
              tuple(torch.tensor(x).nanmedian(dim, keepdim)))
        compare_with_torch(lambda t, d=dim, k=keepdim: t.nanmedian(d, k).values,
                           lambda t, d=dim, k=keepdim: t.nanmedian(d, k).values, x)
    all_nan = np.full((2, 3), np.nan)
    assert np.isnan(tg.nanmedian(tg.tensor(all_nan), 1).values.numpy()).all()


def test_unravel_index_matches_torch():
    idx = np.array([[0, 5, 23], [-1, 7, 11]])
    _same(tg.unravel_index(tg.tensor(idx), (2, 3, 4)),
          torch.unravel_index(torch.tensor(idx), (2, 3, 4)))
    _same(tg.unravel_index(tg.tensor(5), 7), torch.unravel_index(torch.tensor(5), 7))
    with pytest.raises(ValueError, match=r"unravel_index: index 6 is out of range for a "
                                         r"tensor of shape \(2, 3\)"):
        tg.unravel_index(tg.tensor([6]), (2, 3))


def test_searching_compiles():
    seq = np.sort(_n(6))
    _compiled_matches(lambda s, v: tg.searchsorted(s, v).to(tg.float64) + v, seq, _n(5))
    _compiled_matches(lambda x: tg.cummax(x, 1).values * tg.cummin(x, 0).values, _distinct(3, 4))
    _compiled_matches(lambda x: tg.quantile(x, tg.tensor([0.2, 0.9], dtype=tg.float64), 1),
                      _distinct(3, 6))
    _compiled_matches(lambda x: tg.nanmedian(x, 1).values + tg.kthvalue(x, 2, 0).values.sum()
                      + x.mode(1).values, _distinct(3, 6))
    _compiled_matches(lambda x: tg.histc(x, 5).sum() + tg.isin(x, x[0]).to(x.dtype), _n(3, 4),
                      grad=False)


# ------------------------------------------------------------------ bits of integers


def test_bitwise_operators_match_torch():
    a = RNG.integers(-50, 50, (3, 4))
    for dtype in ("int64", "int32", "uint8"):
        ta = tg.tensor(a.astype(dtype) if dtype != "uint8" else np.abs(a).astype(dtype))
        pa = torch.tensor(ta.numpy())
        for f in [lambda x: x & 6, lambda x: 6 | x, lambda x: x ^ (x >> 1), lambda x: ~x,
                  lambda x: x << 2, lambda x: 1 << (x & 3), lambda x: x.bitwise_and(x.flip(0)),
                  lambda x: x.gcd(x.flip(1)), lambda x: x.lcm(x.flip(1) % 7 + 1)]:
            _same(f(ta), f(pa))
    mask = tg.tensor([True, False, True])
    _same(mask & ~mask.flip(0), torch.tensor([True, False, True]) & ~torch.tensor(
        [True, False, True]).flip(0))
    _same(tg.tensor([1, 2], dtype=tg.int32) & tg.tensor([3, 3]),
          torch.tensor([1, 2], dtype=torch.int32) & torch.tensor([3, 3]))
    x, p = tg.tensor(a), torch.tensor(a)
    assert x.bitwise_xor_(tg.tensor(5)) is x
    p.bitwise_xor_(torch.tensor(5))
    _same(x, p)
    with pytest.raises(TypeError, match="& works on bool tensors"):
        tg.ones(2) & 1


def test_bitwise_compiles():
    def f(x, y):
        bits = (x.long() & 6) ^ (x.long() << 1) | ~tg.tensor([3, 4])
        return y * bits.to(y.dtype) + tg.gcd(bits, tg.tensor([4, 6])).to(y.dtype)

    _compiled_matches(f, np.array([3.0, 9.0]), _n(2))


# ------------------------------------------------------------------ tg.special


SPECIAL_ALIASES = [
    ("expit", (-3, 3)), ("logit", (0.05, 0.95)), ("erf", (-2, 2)), ("erfc", (-2, 2)),
    ("erfinv", (-0.9, 0.9)), ("gammaln", (0.2, 5)), ("digamma", (0.2, 5)), ("psi", (0.2, 5)),
    ("entr", (0.05, 3)), ("i0", (-3, 3)), ("i1", (-3, 3)), ("ndtr", (-3, 3)),
    ("log1p", (0, 3)), ("expm1", (-2, 2)), ("exp2", (-2, 2)), ("sinc", (-2, 2)),
]


@pytest.mark.parametrize("name,domain", SPECIAL_ALIASES, ids=[s[0] for s in SPECIAL_ALIASES])
def test_special_namespace_matches_torch(name, domain):
    x = RNG.uniform(*domain, (3, 4))
    # (PyTorch's trigamma, the gradient of digamma, is good to about 5e-10 relative; SciPy's
    # polygamma, tracegrad's, to about 1e-15)
    rtol = 1e-8 if name in ("gammaln", "digamma", "psi") else None
    compare_with_torch(getattr(tg.special, name), getattr(torch.special, name), x, rtol=rtol)
    ints = np.array([1, 2, 3])
    if name not in ("logit", "erfinv", "entr"):
        _same(getattr(tg.special, name)(tg.tensor(ints)),
              getattr(torch.special, name)(torch.tensor(ints)))


def test_special_reductions_and_entr_edges_match_torch():
    x = _n(3, 4)
    for name, args in [("log_softmax", (1,)), ("softmax", (0,)), ("logsumexp", (1,))]:
        compare_with_torch(lambda t, n=name, a=args: getattr(tg.special, n)(t, *a),
                           lambda t, n=name, a=args: getattr(torch.special, n)(t, *a), x)
    y = np.abs(_n(4)) + 0.1
    compare_with_torch(lambda a, b: tg.special.xlogy(a, b),
                       lambda a, b: torch.special.xlogy(a, b), x[0], y)
    edges = np.array([0.0, -1.0, 2.0])
    _same(tg.special.entr(tg.tensor(edges)), torch.special.entr(torch.tensor(edges)))


def test_special_compiles():
    _compiled_matches(lambda x: tg.special.gammaln(x) * tg.special.digamma(x)
                      + tg.polygamma(2, x) + x.erfinv().sum(), RNG.uniform(0.2, 0.9, (3, 4)))


def test_searching_errors_name_the_op_and_the_fix():
    with pytest.raises(ValueError, match=r"kthvalue: k=4 is out of range for dimension 1 of "
                                         r"size 3; give 1 <= k <= 3"):
        tg.kthvalue(tg.ones(2, 3), 4, 1)
    with pytest.raises(ValueError, match=r"quantile: q must lie in \[0, 1\], got values from 1.5 "):
        tg.quantile(tg.ones(3), tg.tensor([1.5]))
    with pytest.raises(TypeError, match="quantile: expects a float tensor, got int64"):
        tg.quantile(tg.tensor([1, 2]), 0.5)
    with pytest.raises(ValueError, match="quantile: interpolation must be one of"):
        tg.quantile(tg.ones(3), 0.5, interpolation="cubic")
    with pytest.raises(tg.ShapeError, match=r"searchsorted: a sequence of shape \(2, 3\) needs "
                                            r"values with the same leading dimensions"):
        tg.searchsorted(tg.ones(2, 3), tg.ones(3, 1))
    with pytest.raises(ValueError, match="bincount: input has a negative value"):
        tg.bincount(tg.tensor([1, -1]))
    with pytest.raises(TypeError, match=r"bincount: input must be a 1-d int tensor, got "
                                        r"float32 of shape \(2,\)"):
        tg.bincount(tg.ones(2))
