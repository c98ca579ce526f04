"""PyTorch parity of op semantics found by a differential sweep (tracegrad vs torch 2.13 on
many ops, dtypes and argument forms): positional arguments as torch reads them, gradients at
the points where a formula is 0/0 (torch's masked choices), NaN ordering, dtype promotion.
Each test names the call that used to differ; values, dtypes and gradients are compared with
torch (`compare_with_torch`), and with float64 finite differences where the point is smooth.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_grads, compare_with_torch

import tracegrad as tg

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)


def same(fn, *arrays, order=1, **kw):
    """``fn(tg, *tensors)`` against ``fn(torch, *tensors)``: values, dtype, gradients."""
    return compare_with_torch(lambda *t: fn(tg, *t), lambda *t: fn(torch, *t), *arrays,
                              order=order, **kw)


# ---------------------------------------------------------------- var / std / norm / mean


@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("args", [(0, False), (1, True, True), (-1, False, True), (False,),
                                  ((0, 2), False)])
def test_var_std_positional_arguments_are_torchs(name, args):
    # var(x, dim, unbiased, keepdim): var(x, 0, False) was read as keepdim=False (unbiased)
    x = RNG.standard_normal((3, 4, 2))
    same(lambda M, t: getattr(t, name)(*args), x)
    same(lambda M, t: getattr(M, name)(t, *args), x)
    check_grads(lambda t: getattr(t, name)(*args), x)


@pytest.mark.parametrize("name", ["std", "std_mean"])
def test_std_gradient_of_a_constant_row_is_zero(name):
    # sqrt's gradient at a zero variance is inf, times the zero centered values: was nan
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [0.0, -1.0, 0.0]])
    first = (lambda r: r[0]) if name == "std_mean" else (lambda r: r)
    same(lambda M, t: first(getattr(M, name)(t, dim=1)), x)
    same(lambda M, t: first(getattr(M, name)(t[1])), x)


@pytest.mark.parametrize("p", [2, 3, "fro"])
def test_norm_gradient_at_a_zero_vector_is_zero(p):
    x = np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5]])
    same(lambda M, t: t.norm(p, dim=1), x)
    same(lambda M, t: t[0].norm(p), x)
    same(lambda M, t: M.nn.functional.normalize(t, dim=1), x)


@pytest.mark.parametrize("p", ["fro", float("-inf"), 0, -1, 2.5])
def test_norm_takes_torchs_orders(p):
    x = RNG.standard_normal((3, 4))
    same(lambda M, t: t.norm(p), x)
    same(lambda M, t: M.norm(t, p, dim=-1, keepdim=True), x)
    if p not in (0, float("-inf")):  # (piecewise constant, or a kink at the minimum)
        check_grads(lambda t: t.norm(p, dim=1), x)


def test_norm_nuc_and_dtype():
    x = RNG.standard_normal((3, 4))
    same(lambda M, t: t.norm(p="nuc"), x)
    same(lambda M, t: t.norm(dtype=M.float64), x.astype(np.float32), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("x", [np.arange(6).reshape(2, 3), np.arange(6).reshape(2, 3) > 2,
                               RNG.standard_normal((2, 3)).astype(np.float32)])
def test_mean_takes_dtype(dtype, x):
    same(lambda M, t: t.mean(dtype=getattr(M, dtype)), x, order=0, rtol=1e-6)
    same(lambda M, t: M.mean(t, 1, True, dtype=getattr(M, dtype)), x, order=0, rtol=1e-6)


# ---------------------------------------------------------------- sorting


NANS = np.array([[0.5, np.nan, -1.0, 2.0, np.nan, 0.5], [1.0, 1.0, -np.inf, np.inf, 0.0, -0.0]])


@pytest.mark.parametrize("descending", [False, True])
def test_sort_puts_nan_as_the_largest_value_and_is_stable(descending):
    # descending sorted -x: NaN came last, where torch puts it first
    same(lambda M, t: t.sort(dim=1, descending=descending, stable=True).values, NANS)
    same(lambda M, t: t.sort(dim=1, descending=descending, stable=True).indices, NANS)
    same(lambda M, t: t.argsort(dim=1, descending=descending, stable=True), NANS)
    same(lambda M, t: t.T.sort(dim=0, descending=descending, stable=True).values, NANS)


@pytest.mark.parametrize("largest", [False, True])
def test_topk_treats_nan_as_the_largest_value(largest):
    x = np.array([[0.5, np.nan, -1.0, 2.0, 3.0, 0.25], [1.0, 1.5, -np.inf, np.inf, 0.0, -0.5]])
    same(lambda M, t: t.topk(3, dim=1, largest=largest).values, x)  # (no ties: torch's topk
    same(lambda M, t: t.topk(3, dim=1, largest=largest).indices, x)  # is not stable)


@pytest.mark.parametrize("x", [np.array([[True, False, True, False]]),
                               np.array([[3, -2**63, 2**63 - 1, 3, 0]])])
def test_sort_descending_of_bools_and_extreme_ints(x):
    same(lambda M, t: t.sort(descending=True, stable=True).indices, x, order=0)
    same(lambda M, t: t.sort(descending=True).values, x, order=0)


# ---------------------------------------------------------------- arithmetic keywords, cat


def test_add_and_sub_take_alpha():
    x, y = RNG.standard_normal((2, 3)), RNG.standard_normal(3)
    same(lambda M, a, b: a.add(b, alpha=-0.5), x, y)
    same(lambda M, a, b: M.add(a, b, alpha=2), x, y)
    same(lambda M, a, b: a.sub(b, alpha=3) + M.sub(a, 1, alpha=2) + a.subtract(b, alpha=0.5),
         x, y)


@pytest.mark.parametrize("mode", ["floor", "trunc"])
def test_div_takes_rounding_mode(mode):
    x, y = RNG.standard_normal((2, 3)) * 5, RNG.standard_normal(3)
    i = np.array([[-7, 7, -6, 0], [5, -5, 9, -9]])
    same(lambda M, a, b: a.div(b, rounding_mode=mode), x, y)
    same(lambda M, a, b: M.divide(a, b, rounding_mode=mode) * a, x, y)  # (no gradient)
    same(lambda M, a: M.div(a, -2, rounding_mode=mode), i, order=0)
    same(lambda M, a: a.div(M.tensor([2, -3, 4, 1]), rounding_mode=mode), i, order=0)
    same(lambda M, a: a.div(2), i, order=0)  # (true division: float)


def test_cat_skips_empty_1d_tensors():
    # `out = torch.tensor([]); out = torch.cat([out, row])`: torch joins a (0,) tensor to
    # anything (it counts for the dtype)
    x = RNG.standard_normal((2, 3))
    same(lambda M, a: M.cat([M.tensor([], dtype=a.dtype), a]), x)
    same(lambda M, a: M.cat([a, M.tensor([], dtype=a.dtype)], dim=-1), x)
    same(lambda M, a: M.cat([M.tensor([]), a.long()]), x, order=0)  # float32
    same(lambda M, a: M.cat([M.tensor([]), M.tensor([])]), x, order=0)

    def grow(a):
        out = tg.tensor([], dtype=a.dtype)
        for k in range(3):
            out = tg.cat([out, a * k])
        return out

    x0 = tg.tensor(x[0])
    assert np.array_equal(tg.compile(grow, backend="numpy")(x0).numpy(), grow(x0).numpy())


# ---------------------------------------------------------------- in-place dtypes


@pytest.mark.parametrize("op", ["add_", "sub_", "mul_", "div_"])
def test_in_place_may_narrow_within_a_kind(op):
    # float32.add_(float64 tensor) runs in torch (computed in float64, stored as float32)
    x, y = RNG.standard_normal((2, 3)).astype(np.float32), RNG.standard_normal(3) + 3

    def f(M, a, b):
        out = a.detach().clone()
        getattr(out, op)(b.detach())
        return out

    same(f, x, y, order=0)
    same(f, x, np.array([1, 2, 3]), order=0)


def test_in_place_refuses_a_lower_kind_in_every_mode():
    # an int tensor cannot hold a float result (it was silently truncated when the operand
    # required grad)
    for other in (tg.tensor([1.5, 2.5], requires_grad=True), tg.tensor([1.5, 2.5]), 1.5):
        with pytest.raises(TypeError, match="cannot be stored"):
            tg.tensor([1, 2]).add_(other)
    with pytest.raises(TypeError, match="cannot be stored"):
        tg.tensor([True, False]).add_(tg.tensor([1, 2]))


# ---------------------------------------------------------------- pow at 0


def test_pow_gradients_at_a_zero_base_and_exponent():
    # d/da a**0 at a = 0 is 0 (0 * 0**-1 was nan); d/db 0**b is -inf for b < 0, 0 for b >= 0
    a = np.array([0.0, 0.0, 0.0, 1.5, 2.0])
    b = np.array([0.0, -1.0, 2.0, 0.0, -0.5])
    same(lambda M, x: x ** 0, a)
    same(lambda M, x: (x * x) ** 0.0, a)
    same(lambda M, x, y: x ** y, a, b)
    same(lambda M, x, y: x.detach() ** y, a, b)
    x, y = tg.tensor(a, requires_grad=True), tg.tensor(b, requires_grad=True)
    want = [g.numpy() for g in tg.autograd.grad((x ** y).sum(), (x, y))]
    for backend in ("numpy", "c"):
        f = tg.compile(lambda x, y: tg.autograd.grad((x ** y).sum(), (x, y)), backend=backend)
        for u, v in zip(f(x, y), want):
            np.testing.assert_array_equal(u.numpy(), v)


# ---------------------------------------------------------------- median


def test_median_is_nan_where_there_is_a_nan():
    # the nan sorted last, so median skipped it (torch.median propagates it)
    x = np.array([[1.0, np.nan, 2.0, 0.5], [3.0, 1.0, 2.0, 0.0], [np.nan, 1.0, np.nan, 2.0]])
    same(lambda M, t: t.median(dim=1).values, x)
    same(lambda M, t: t.median(dim=1, keepdim=True).indices, x, order=0)
    same(lambda M, t: t.median(), x)
    same(lambda M, t: t[1].median(), x)


@pytest.mark.parametrize("name", ["median", "nanmedian"])
def test_median_of_all_elements_shares_the_gradient_of_ties(name):
    x = np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 0.0]])
    same(lambda M, t: getattr(t, name)(), x)
    same(lambda M, t: getattr(M, name)(t * 2), x)
    f = tg.compile(lambda t: tg.autograd.grad(getattr(t, name)(), t)[0], backend="numpy")
    t = tg.tensor(x, requires_grad=True)
    np.testing.assert_array_equal(f(t).numpy(), np.array([[0, 1, 0], [1, 1, 0]]) / 3)


# ---------------------------------------------------------------- where's promotion


def test_where_promotes_a_0d_operand_as_a_number():
    # where promoted float32 with a 0-d float64 to float64 (torch: float32, as arithmetic)
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    same(lambda M, t: M.where(t > 0, t, M.tensor(2.5, dtype=M.float64)), x)
    same(lambda M, t: M.where(t > 0, M.tensor(2.5, dtype=M.float64), t), x)
    same(lambda M, t: M.where(t > 0, M.tensor([1, 2, 3]), M.tensor(0.5, dtype=M.float64)), x)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_compiled_where_and_clamp_with_a_float_argument_keep_float32(backend):
    # a float argument is a float64 input while tracing: it made the result float64
    x = tg.tensor(RNG.standard_normal((2, 3)).astype(np.float32))
    for fn in (lambda t, s: t.clamp(max=s), lambda t, s: tg.where(t > 0, t, s),
               lambda t, s: tg.tensor([1, -2, 3]).clamp(min=s)):
        f = tg.compile(fn, backend=backend)
        for s in (0.5, -0.25, 1.75):
            got, want = f(x, s), fn(x, s)
            assert got.dtype == want.dtype == np.float32
            np.testing.assert_array_equal(got.numpy(), want.numpy())


# ---------------------------------------------------------------- dtype= of reductions


@pytest.mark.parametrize("name", ["sum", "prod", "nansum", "cumsum", "cumprod"])
@pytest.mark.parametrize("dtype", ["int32", "int16", "float32"])
def test_reductions_compute_in_the_dtype_asked_for(name, dtype):
    # integer sums were int64 whatever dtype= said
    x = np.arange(1, 7, dtype=np.int32).reshape(2, 3)
    dim = {"cumsum": 0, "cumprod": 1}.get(name)
    args = () if dim is None else (dim,)
    same(lambda M, t: getattr(t, name)(*args, dtype=getattr(M, dtype)), x, order=0)
    same(lambda M, t: getattr(t, name)(*args), x, order=0)
    same(lambda M, t: t.bool().sum(dtype=M.bool) if name == "sum" else t.sum(), x, order=0)


# ---------------------------------------------------------------- argument forms


def test_flip_takes_dims_as_varargs_a_sequence_or_a_keyword():
    x = RNG.standard_normal((2, 3, 4))
    same(lambda M, t: t.flip(0, 2), x)
    same(lambda M, t: t.flip((0, -1)) + M.flip(t, dims=[1]) + M.flip(t, [2]), x)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin"])
def test_softmax_family_takes_dtype(name):
    # F.softmax(x, dim=-1, dtype=torch.float32), as transformer code writes it
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    same(lambda M, t: getattr(M.nn.functional, name)(t, dim=-1, dtype=M.float64), x,
         rtol=1e-6)
    if name != "softmin":  # (a function only, in torch too)
        same(lambda M, t: getattr(t, name)(0, dtype=M.float64), x, rtol=1e-6)


def test_maximum_and_minimum_gradients_at_nan_and_ties():
    # a nan operand: PyTorch sends the gradient to both sides (tracegrad sent it to neither)
    a = np.array([1.0, np.nan, 2.0, np.nan, 3.0])
    b = np.array([1.0, 0.5, np.nan, np.nan, -1.0])
    same(lambda M, x, y: M.maximum(x, y), a, b)
    same(lambda M, x, y: M.minimum(x, y), a, b)
    same(lambda M, x, y: x.max(y), a, b)
