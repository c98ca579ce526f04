"""Every primitive in `tracegrad.ops.PRIMITIVES`, checked to second order.

Each test generates small shapes with hypothesis (broadcasting pairs, size-1 and size-0
dimensions included), fills them with values from a domain where finite differences are
meaningful (positive for log/sqrt/pow bases, away from kinks and ties), and calls the two
checkers of `gradcheck`: central finite differences, and PyTorch in float64.

A test declares the primitives it exercises with ``@covers(...)``; `test_every_primitive_is_covered`
fails when a primitive is added without a test.
"""

from __future__ import annotations

import inspect
import operator
import re

import numpy as np
import pytest
from gradcheck import check_grads, compare_with_torch
from helpers import strided_layouts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tracegrad as tg
from tracegrad import functional as F
from tracegrad.ops import PRIMITIVES
from tracegrad.tensor import _normalize_index, apply

F64 = np.float64

# ------------------------------------------------------------------------------ coverage

COVERED: set[str] = set()


def covers(*names: str):
    """Record that the decorated test exercises these primitives."""
    unknown = set(names) - set(PRIMITIVES)
    assert not unknown, f"covers(): no primitives named {sorted(unknown)}"
    COVERED.update(names)
    return lambda fn: fn


# ------------------------------------------------------------------------------ shape rules

# Every forward run by this module is checked against its primitive's shape/dtype rule
# (`infer`), which tracing and the compiler rely on but eager execution never consults.


def _checked_forward(prim, forward):
    def checked(*arrays, **attrs):
        out = forward(*arrays, **attrs)
        shape, dtype = prim.infer(*arrays, **attrs)
        arr = np.asarray(out)
        assert (tuple(shape), np.dtype(dtype)) == (arr.shape, arr.dtype), (
            f"{prim.name}: the shape rule says {tuple(shape)} {np.dtype(dtype)}, the forward "
            f"gives {arr.shape} {arr.dtype} (inputs {[(a.shape, a.dtype) for a in arrays]}, "
            f"attrs {attrs})"
        )
        return out

    return checked


@pytest.fixture(autouse=True, scope="module")
def _shape_rules_agree_with_forward():
    saved = {name: prim.forward for name, prim in PRIMITIVES.items()}
    for name, prim in PRIMITIVES.items():
        prim.forward = _checked_forward(prim, saved[name])
    try:
        yield
    finally:
        for name, prim in PRIMITIVES.items():
            prim.forward = saved[name]


# ------------------------------------------------------------------------------ strategies

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(FAST, max_examples=25)

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
nonempty_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
seeds = st.integers(0, 2**32 - 1)


def broadcast_pair() -> st.SearchStrategy:
    return hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0,
                                             max_side=4)


def real(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Values in +-[0.1, 2]: away from 0, where relu and sign have their kink."""
    return np.asarray(rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape))


def positive(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return np.asarray(rng.uniform(0.3, 2.0, size=shape))


def unit(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Values in +-[0.1, 0.9]: inside the domain of asin, acos, atanh, away from tan's poles."""
    return real(rng, shape) * 0.45


def above_one(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return np.asarray(rng.uniform(1.1, 3.0, size=shape))  # (acosh)


def distinct(rng: np.random.Generator, *shapes_: tuple) -> list[np.ndarray]:
    """Arrays whose values are all at least 0.1 apart (across the arrays too): no near-ties."""
    sizes = [int(np.prod(s)) for s in shapes_]
    n = sum(sizes)
    vals = (rng.permutation(n) - n / 2) * 0.25 + rng.uniform(-0.05, 0.05, size=n)
    out, start = [], 0
    for s, k in zip(shapes_, sizes):
        out.append(vals[start:start + k].reshape(s))
        start += k
    return out


def check_both(tg_fn, torch_fn, *arrays, order: int = 2, **kw) -> None:
    """Finite differences (when all inputs are float64), then PyTorch."""
    if all(np.asarray(a).dtype == F64 for a in arrays):
        check_grads(tg_fn, *arrays, order=order)
    compare_with_torch(tg_fn, torch_fn, *arrays, order=order, **kw)


def torch_mod():
    return pytest.importorskip("torch")


# ------------------------------------------------------------------------------ unary elementwise

# name -> (function on either library's tensors, value domain)
UNARY = {
    "neg": (lambda x: -x, real),
    "exp": (lambda x: x.exp(), real),
    "log": (lambda x: x.log(), positive),
    "sqrt": (lambda x: x.sqrt(), positive),
    "tanh": (lambda x: x.tanh(), real),
    "sin": (lambda x: x.sin(), real),
    "cos": (lambda x: x.cos(), real),
    "sigmoid": (lambda x: x.sigmoid(), real),
    "erf": (lambda x: x.erf(), real),
    "relu": (lambda x: x.relu(), real),
    "tan": (lambda x: x.tan(), unit),
    "asin": (lambda x: x.asin(), unit),
    "acos": (lambda x: x.acos(), unit),
    "atan": (lambda x: x.atan(), real),
    "asinh": (lambda x: x.asinh(), real),
    "acosh": (lambda x: x.acosh(), above_one),
    "atanh": (lambda x: x.atanh(), unit),
    "erfc": (lambda x: x.erfc(), real),
}


@covers(*UNARY)
@pytest.mark.parametrize("name", sorted(UNARY))
@FAST
@given(shape=shapes, seed=seeds)
def test_unary(name, shape, seed):
    fn, domain = UNARY[name]
    x = domain(np.random.default_rng(seed), shape)
    check_both(fn, fn, x)


@pytest.mark.parametrize("name", sorted(UNARY))
@FEW
@given(x=hnp.arrays(F64, hnp.array_shapes(min_dims=0, max_dims=2, max_side=4),
                    elements=st.floats(allow_nan=True, allow_infinity=True, width=64)))
def test_unary_forward_on_any_float(name, x):
    # Edge values (0, -0, tiny, huge, inf, nan) are hypothesis's favourites: forward only.
    fn, _ = UNARY[name]
    with np.errstate(all="ignore"):
        compare_with_torch(fn, fn, x, order=0)


def _torch_normal_cdf_tanh(x):
    torch = torch_mod()
    return (torch.tanh((x + x * x * x * 0.044715) * (2 / np.pi) ** 0.5) + 1) * 0.5


# GELU's gate, Phi(x) and its tanh approximation (F.gelu is x times it): torch.special.ndtr is
# Phi; the tanh form is written out in torch, differentiated by torch's chain rule
GATES = {
    "normal_cdf": (lambda x: torch_mod().special.ndtr(x)),
    "normal_cdf_tanh": _torch_normal_cdf_tanh,
}


@covers(*GATES)
@pytest.mark.parametrize("name", sorted(GATES))
@FAST
@given(shape=shapes, seed=seeds)
def test_gelu_gates(name, shape, seed):
    x = np.random.default_rng(seed).uniform(-4, 4, size=shape)
    check_both(lambda t: apply(PRIMITIVES[name], t), GATES[name], x)
    # (float32: u (1 - u) and torch's 1 - t^2 lose different bits to cancellation in the tails)
    check_both(lambda t: apply(PRIMITIVES[name], t), GATES[name], x.astype(np.float32),
               atol=1e-5)


@covers("sign")
@FAST
@given(shape=shapes, seed=seeds)
def test_sign(shape, seed):
    rng = np.random.default_rng(seed)
    x = real(rng, shape) * (rng.random(shape) < 0.8)  # some exact zeros
    compare_with_torch(lambda t: t.sign(), lambda t: t.sign(), x)  # zero gradient, as torch


@covers("abs")
@FAST
@given(shape=shapes, seed=seeds)
def test_abs(shape, seed):
    rng = np.random.default_rng(seed)
    x = real(rng, shape) * (rng.random(shape) < 0.8)  # exact zeros: gradient 0 there, as torch
    x = np.where(x == 0, -0.0, x)  # (-0.0: abs gives +0.0, as torch)
    compare_with_torch(lambda t: t.abs(), lambda t: t.abs(), x)
    assert not np.signbit(tg.tensor(x).abs().numpy()).any()
    x = real(rng, shape)
    check_grads(lambda t: t.sign() * t, x)  # sign's gradient (zero) composes


@covers("floor", "ceil", "round")
@FAST
@given(shape=shapes, seed=seeds)
def test_rounding(shape, seed):
    rng = np.random.default_rng(seed)
    x = real(rng, shape) * 3
    for name in ("floor", "ceil", "round"):
        fn = lambda t, name=name: getattr(t, name)()  # noqa: E731
        out = compare_with_torch(fn, fn, x, order=0)  # no gradient: the output must not need one
        assert not out.requires_grad


BITWISE = ["bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift",
           "bitwise_right_shift", "gcd", "lcm"]


@covers(*BITWISE, "bitwise_not")
@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "bool"])
def test_bitwise(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a = rng.integers(-20 if dtype[0] == "i" else 0, 20, (3, 4)).astype(dtype)
    b = rng.integers(-20 if dtype[0] == "i" else 0, 20, (4,)).astype(dtype)
    for name in BITWISE if dtype != "bool" else BITWISE[:3]:
        other = b % 5 if "shift" in name else b  # (shifts by 0..4 bits)
        out = compare_with_torch(lambda x, y, n=name: getattr(tg, n)(x, y),
                                 lambda x, y, n=name: getattr(torch, n)(x, y), a, other,
                                 order=0)
        assert not out.requires_grad
    compare_with_torch(lambda x: ~x, lambda x: ~x, a, order=0)
    if dtype != "bool":
        with pytest.raises(TypeError, match="bitwise_and: expects bool or integer tensors, "
                                            "got float32"):
            tg.bitwise_and(tg.tensor(a), tg.ones(4))


SPECIAL = {"lgamma": (0.2, 6.0), "digamma": (0.2, 6.0), "erfinv": (-0.95, 0.95),
           "i0": (-4.0, 4.0), "i1": (-4.0, 4.0)}


@covers(*SPECIAL, "polygamma")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_special_functions(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for name, (low, high) in SPECIAL.items():
        x = rng.uniform(low, high, (3, 4)).astype(dtype)
        ours = getattr(tg.special, name)
        theirs = getattr(torch.special, name, None) or getattr(torch, name)
        compare_with_torch(ours, theirs, x, order=2 if dtype == np.float64 else 1,
                           rtol=1e-9 if dtype == np.float64 else 3e-5)
        if dtype == np.float64:
            check_grads(ours, x)
    x = rng.uniform(0.3, 4.0, (5,)).astype(dtype)
    for n in (0, 1, 3):
        compare_with_torch(lambda t, n=n: tg.polygamma(n, t), lambda t, n=n: torch.polygamma(
            n, t), x, order=1, rtol=1e-9 if dtype == np.float64 else 3e-5)
    # at 0, i1's derivative is 1/2 (the limit of i0 - i1/x)
    z = tg.tensor([0.0], dtype=tg.float64, requires_grad=True)
    z.i1().sum().backward()
    assert z.grad.numpy()[0] == 0.5
    # integers are computed in the default float dtype, as in PyTorch
    assert tg.lgamma(tg.tensor([1, 4])).dtype == tg.float32
    with pytest.raises(ValueError, match="polygamma: the order n must be a non-negative int"):
        tg.polygamma(-1, tg.ones(2))


@covers("signbit")
def test_signbit():
    x = np.array([-2.0, -0.0, 0.0, 3.0, -np.inf, np.inf, np.nan, -np.nan])
    out = compare_with_torch(lambda t: t.signbit(), lambda t: t.signbit(), x, order=0)
    assert out.dtype == tg.bool and not out.requires_grad


@covers("argsort")
@FAST
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), seed=seeds,
       descending=st.booleans(), data=st.data())
def test_argsort(shape, seed, descending, data):
    torch = torch_mod()
    rng = np.random.default_rng(seed)
    x = rng.permutation(int(np.prod(shape))).reshape(shape).astype(F64)  # no ties
    axis = data.draw(st.integers(0, len(shape) - 1))
    out = apply(PRIMITIVES["argsort"], tg.tensor(x, requires_grad=True), axis=axis,
                descending=descending)
    assert out.dtype == tg.int64 and not out.requires_grad
    want = torch.argsort(torch.tensor(x), dim=axis, descending=descending).numpy()
    np.testing.assert_array_equal(out.numpy(), want)


@covers("searchsorted")
@FAST
@given(lead=st.sampled_from([(), (2,), (2, 3)]), n=st.integers(1, 6), m=st.integers(0, 5),
       seed=seeds, right=st.booleans())
def test_searchsorted(lead, n, m, seed, right):
    """Eager (NumPy's binary search) and its decomposition (counting smaller entries, what a
    compiled function runs) against torch, ties included."""
    from tracegrad.ops.reduce import _searchsorted_decomposition

    torch = torch_mod()
    rng = np.random.default_rng(seed)
    seq = np.sort(rng.integers(0, 5, lead + (n,)), axis=-1).astype(F64)
    v = rng.integers(-1, 6, lead + (m,) if lead else (m,)).astype(F64)
    args = (tg.tensor(seq), tg.tensor(v))
    want = torch.searchsorted(torch.tensor(seq), torch.tensor(v), right=right).numpy()
    out = apply(PRIMITIVES["searchsorted"], *args, right=right)
    assert out.dtype == tg.int64
    np.testing.assert_array_equal(out.numpy(), want)
    np.testing.assert_array_equal(_searchsorted_decomposition(*args, right=right).numpy(), want)


@covers("check")
@pytest.mark.parametrize("test,args,good,bad,fields", [
    ("in_range", (0, 3), [0, 2, 1], [0, 3, -1], {"lo": -1, "hi": 3, "bad": -1}),
    ("in_range", (0, 3, -100), [0, -100, 2], [-100, 4], {"lo": 4, "hi": 4, "bad": 4}),
    ("in_range", (-4, 4), [-4, 3], [-5], {"lo": -5, "hi": -5, "bad": -5}),
    ("in_interval", (0, 1), [0.0, 1.0, 0.5], [0.5, np.nan], {"lo": 0.5, "hi": 0.5}),
    ("in_interval", (0, 1), [0.0], [-0.25, 2.0], {"lo": -0.25, "hi": 2.0}),
    ("not_below", (0,), [0.0, np.nan, 3.0], [1.0, -2.0], {"least": -2.0}),
    ("finite", (), [1.0, -1e30], [np.inf], {"value": np.inf}),
    ("finite", (), [], [1.0, np.nan], {"value": ""}),
    ("weights", (1,), [[0.0, 1.0]], [[1.0, -1.0]],
     {"problem": "weights must be finite and non-negative"}),
    ("weights", (1,), [[0.0, 1.0]], [[1.0, 1.0], [0.0, 0.0]],
     {"problem": "a row of weights sums to zero"}),
    ("weights", (2,), [[0.5, 1.0]], [[0.0, 1.0]],
     {"problem": "cannot draw 2 samples without replacement from 1 categories with nonzero "
                 "weight"}),
])
def test_check(test, args, good, bad, fields):
    """check passes its operand through (the same memory, its gradient unchanged) and raises
    the error named, its message filled with the test's fields."""
    from tracegrad.ops.validation import TESTS

    dtype = np.int64 if test == "in_range" else F64
    good_t = tg.tensor(np.array(good, dtype), requires_grad=dtype == F64)
    attrs = {"test": test, "args": args, "error": "ValueError", "message": "failed {}"}
    out = apply(PRIMITIVES["check"], good_t, **{**attrs, "message": "failed"})
    assert np.shares_memory(out.numpy(), good_t.numpy()) or not good_t.numel()
    np.testing.assert_array_equal(out.numpy(), good_t.numpy())
    if good_t.requires_grad:
        (out * tg.tensor(np.arange(out.numel(), dtype=F64)).reshape(out.shape)).sum().backward()
        np.testing.assert_array_equal(good_t.grad.numpy(),
                                      np.arange(good_t.numel()).reshape(good_t.shape))
    bad_a = np.array(bad, dtype)
    got = TESTS[test](bad_a, *args)
    assert got.keys() == fields.keys()
    for k, v in fields.items():
        assert got[k] == v or (isinstance(v, float) and np.isnan(v) and np.isnan(got[k])), k
    message = "; ".join(f"{k}={{{k}}}" for k in fields)
    with pytest.raises(IndexError, match="^" + re.escape(message.format(**got)) + "$"):
        apply(PRIMITIVES["check"], tg.tensor(bad_a),
              **{**attrs, "error": "IndexError", "message": message})


def test_relu_gradient_at_zero_is_zero_like_torch():
    x = np.array([-1.0, 0.0, 0.0, 2.0])
    compare_with_torch(lambda t: t.relu(), lambda t: t.relu(), x)


@pytest.mark.parametrize("dtype", ["int64", "int32"])
def test_relu_sign_neg_keep_int_dtypes(dtype):
    x = np.array([-2, 0, 3], dtype=dtype)
    for fn in (lambda t: t.relu(), lambda t: t.sign(), lambda t: -t):
        compare_with_torch(fn, fn, x, order=0)


@covers("softplus")
@FAST
@given(shape=shapes, seed=seeds)
def test_softplus(shape, seed):
    torch = torch_mod()
    x = real(np.random.default_rng(seed), shape) * 3  # +-[0.3, 6]
    check_both(lambda t: t.softplus(), lambda t: torch.nn.functional.softplus(t), x)
    check_both(lambda t: tg.nn.functional.softplus(t, beta=2.0),
               lambda t: torch.nn.functional.softplus(t, beta=2.0), x)
    check_grads(lambda t: apply(PRIMITIVES["softplus"], t), x)


@FEW
@given(x=hnp.arrays(F64, hnp.array_shapes(min_dims=0, max_dims=2, max_side=4),
                    elements=st.floats(allow_nan=True, allow_infinity=True, width=64)))
def test_softplus_forward_on_any_float(x):
    # no overflow at large inputs, no underflow to 0 at very negative ones; torch is linear
    # above its threshold (20), where log(1 + e^x) = x in float64 to 1e-9 relative
    torch = torch_mod()
    with np.errstate(all="ignore"):
        compare_with_torch(lambda t: t.softplus(), lambda t: torch.nn.functional.softplus(t),
                           x, order=0, rtol=1e-9, atol=0)


def test_softplus_is_stable_at_extreme_inputs():
    torch = torch_mod()
    x = np.array([-1000.0, -50.0, -1.0, 0.0, 1.0, 50.0, 1000.0])
    out = compare_with_torch(lambda t: t.softplus(), lambda t: torch.nn.functional.softplus(t),
                             x, rtol=1e-12, atol=0)
    assert out.numpy()[1] > 0  # log1p(e^-50) = 1.9e-22, not 0
    assert np.all(np.isfinite(out.numpy()))


# ------------------------------------------------------------------------------ binary elementwise


def _binary_values(name: str, rng: np.random.Generator, sa: tuple, sb: tuple):
    a, b = _binary_values_(name, rng, sa, sb)
    return np.asarray(a), np.asarray(b)  # 0-d: arrays, not NumPy scalars


def _binary_values_(name: str, rng: np.random.Generator, sa: tuple, sb: tuple):
    if name == "div":
        b = real(rng, sb)
        return real(rng, sa), b + np.sign(b) * 0.4  # |b| >= 0.5
    if name == "pow":
        return positive(rng, sa) + 0.2, np.asarray(rng.uniform(-2.0, 2.0, size=sb))
    if name == "maximum":
        return tuple(distinct(rng, sa, sb))
    if name == "xlogy":
        return real(rng, sa), positive(rng, sb)
    return real(rng, sa), real(rng, sb)


BINARY = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "pow": operator.pow,
    "maximum": lambda a, b: a.maximum(b),
    "atan2": lambda a, b: a.atan2(b),
    "xlogy": lambda a, b: a.xlogy(b),
}


@covers(*BINARY)
@pytest.mark.parametrize("name", sorted(BINARY))
@FAST
@given(shapes_=broadcast_pair(), seed=seeds)
def test_binary_broadcasting(name, shapes_, seed):
    sa, sb = shapes_.input_shapes
    a, b = _binary_values(name, np.random.default_rng(seed), sa, sb)
    check_both(BINARY[name], BINARY[name], a, b)


# One operand a Python number or a constant tensor: only the other side needs a gradient.
ONE_SIDED = {
    "rsub": lambda x: 2.0 - x,
    "rdiv": lambda x: 3.0 / x,
    "rpow": lambda x: 1.5 ** x,
    "pow_int": lambda x: x ** 3,
    "pow_half": lambda x: x ** 0.5,
    "mul_int": lambda x: x * 2,
    "div_scalar": lambda x: x / 4.0,
    "maximum_scalar": lambda x: x.maximum(0.05),
}
TORCH_ONE_SIDED = {"maximum_scalar": lambda x: x.clamp(min=0.05)}  # torch.maximum wants tensors


@pytest.mark.parametrize("name", sorted(ONE_SIDED))
@FEW
@given(shape=shapes, seed=seeds)
def test_binary_with_python_number(name, shape, seed):
    x = positive(np.random.default_rng(seed), shape)
    check_both(ONE_SIDED[name], TORCH_ONE_SIDED.get(name, ONE_SIDED[name]), x)


@pytest.mark.parametrize("name", sorted(BINARY))
@FEW
@given(shapes_=broadcast_pair(), seed=seeds, const_left=st.booleans())
def test_binary_with_constant_tensor_operand(name, shapes_, seed, const_left):
    torch = torch_mod()
    sa, sb = shapes_.input_shapes
    a, b = _binary_values(name, np.random.default_rng(seed), sa, sb)
    op = BINARY[name]
    if const_left:
        check_both(lambda y: op(tg.tensor(a, dtype=F64), y),
                   lambda y: op(torch.tensor(a), y), b)
    else:
        check_both(lambda x: op(x, tg.tensor(b, dtype=F64)),
                   lambda x: op(x, torch.tensor(b)), a)


def test_maximum_ties_split_the_gradient_like_torch():
    a = np.array([[1.0, 2.0, -3.0], [0.5, 0.5, 4.0]])
    b = np.array([[1.0, 1.0, -3.0], [0.5, 7.0, 4.0]])
    compare_with_torch(lambda x, y: x.maximum(y), lambda x, y: x.maximum(y), a, b)
    compare_with_torch(lambda x, y: x.maximum(y) * x, lambda x, y: x.maximum(y) * x, a, b)
    compare_with_torch(lambda x, y: x.maximum(y), lambda x, y: x.maximum(y),
                       a, np.array([0.5, 2.0, 4.0]))  # ties under broadcasting


def test_pow_exponent_gradient_at_zero_base_is_zero_like_torch():
    a = np.array([0.0, 0.0, 2.0])
    b = np.array([2.0, 0.5, 3.0])
    with np.errstate(all="ignore"):
        compare_with_torch(operator.pow, operator.pow, a, b, order=1)


# ------------------------------------------------------------------------------ comparisons

COMPARE = {
    "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
    "eq": operator.eq, "ne": operator.ne,
}


@covers(*COMPARE)
@pytest.mark.parametrize("name", sorted(COMPARE))
@FAST
@given(shapes_=broadcast_pair(), seed=seeds)
def test_comparison(name, shapes_, seed):
    sa, sb = shapes_.input_shapes
    rng = np.random.default_rng(seed)
    a = rng.integers(-2, 3, size=sa).astype(F64)  # small integers: plenty of ties
    b = rng.integers(-2, 3, size=sb).astype(F64)
    op = COMPARE[name]
    out = compare_with_torch(op, op, a, b, order=1)  # inputs require grad, output must not
    assert out.dtype == tg.bool
    compare_with_torch(lambda x: op(x, 1.0), lambda x: op(x, 1.0), a, order=1)
    compare_with_torch(lambda x: op(x, 1), lambda x: op(x, 1), a.astype(np.int64), order=0)


# ------------------------------------------------------------------------------ where


@covers("where")
@FAST
@given(shapes_=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3,
                                                 min_side=0, max_side=4),
       seed=seeds)
def test_where(shapes_, seed):
    torch = torch_mod()
    sc, sa, sb = shapes_.input_shapes
    rng = np.random.default_rng(seed)
    cond = rng.random(sc) < 0.5
    a, b = real(rng, sa), real(rng, sb)
    check_both(lambda x, y: tg.where(tg.tensor(cond), x, y),
               lambda x, y: torch.where(torch.tensor(cond), x, y), a, b)
    compare_with_torch(lambda c, x, y: tg.where(c, x, y), lambda c, x, y: torch.where(c, x, y),
                       cond, a, b)
    compare_with_torch(lambda x: tg.where(tg.tensor(cond), x, 0.5),
                       lambda x: torch.where(torch.tensor(cond), x, 0.5), a)


# ------------------------------------------------------------------------------ cast


@covers("cast")
@FEW
@given(shape=shapes, seed=seeds)
def test_cast_between_float_dtypes(shape, seed):
    rng = np.random.default_rng(seed)
    x32 = real(rng, shape).astype(np.float32)
    x64 = real(rng, shape)
    # float32 -> float64: the float32 leaf gets a float32 gradient.
    compare_with_torch(lambda t: t.double() * t.double().exp(),
                       lambda t: t.double() * t.double().exp(), x32)
    # float64 -> float32 and back.
    compare_with_torch(lambda t: t.float() * t.float(), lambda t: t.float() * t.float(), x64,
                       rtol=1e-5, atol=1e-6)
    # the cast VJP in float64, against finite differences (a same-dtype cast, so no rounding)
    check_grads(lambda t: apply(PRIMITIVES["cast"], t, dtype=np.dtype(F64)).exp(), x64)
    # The primitive itself.
    xt = tg.tensor(x32, requires_grad=True)
    y = apply(PRIMITIVES["cast"], xt, dtype=np.dtype(F64))
    assert y.dtype == F64 and y.requires_grad
    (y * 2.0).sum().backward()
    assert xt.grad.dtype == np.float32
    np.testing.assert_array_equal(xt.grad.numpy(), np.full(shape, 2.0, np.float32))


def test_cast_float_to_int_values_like_torch():
    x = np.array([-2.7, -0.5, 0.0, 1.5, 3.9])
    for fn in (lambda t: t.long(), lambda t: t.int(), lambda t: t.bool()):
        compare_with_torch(fn, fn, x, order=0)
    compare_with_torch(lambda t: t.double(), lambda t: t.double(), np.array([1, -2, 3]), order=0)


def test_cast_to_int_does_not_require_grad():
    x = tg.tensor([1.5, -2.0], dtype=tg.float64, requires_grad=True)
    assert not x.long().requires_grad
    assert not x.bool().requires_grad


def test_backward_through_int_cast_is_refused():
    x = tg.tensor([1.5, -2.0], dtype=tg.float64, requires_grad=True)
    with pytest.raises(RuntimeError):
        x.long().sum().backward()


# ------------------------------------------------------------------------------ reductions


@st.composite
def shape_and_dims(draw, min_side: int = 0):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=min_side, max_side=4))
    nd = len(shape)
    if nd == 0:
        dims = None  # an int dim on a 0-d tensor: see test_reduce_0d_tensor_over_dim_0
    else:
        dims = draw(st.one_of(
            st.none(),
            st.integers(-nd, nd - 1),
            st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True)
            .flatmap(lambda ds: st.tuples(*[st.sampled_from([d, d - nd]) for d in ds])),
        ))
    return shape, dims, draw(st.booleans())


def _torch_dims(dims, nd):
    if dims is None:
        return tuple(range(nd))
    return dims


@covers("sum")
@FAST
@given(sdk=shape_and_dims(), seed=seeds)
def test_sum(sdk, seed):
    shape, dims, keepdim = sdk
    x = real(np.random.default_rng(seed), shape)
    nd = len(shape)
    check_both(lambda t: t.sum(dims, keepdim), lambda t: t.sum(_torch_dims(dims, nd), keepdim)
               if nd else t.sum(), x)


@pytest.mark.parametrize("dtype", ["bool", "int32", "int64"])
def test_sum_of_ints_and_bools_is_int64_like_torch(dtype):
    x = np.array([[1, 0, 1], [1, 1, 0]]).astype(dtype)
    for fn in (lambda t: t.sum(), lambda t: t.sum(1), lambda t: t.sum(0, keepdim=True)):
        compare_with_torch(fn, fn, x, order=0)


@covers("max")
@FAST
@given(sdk=shape_and_dims(min_side=1), seed=seeds)
def test_max(sdk, seed):
    torch = torch_mod()
    shape, dims, keepdim = sdk
    (x,) = distinct(np.random.default_rng(seed), shape)
    nd = len(shape)
    check_both(lambda t: t.amax(dims, keepdim),
               lambda t: torch.amax(t, _torch_dims(dims, nd), keepdim), x)
    if dims is None:
        check_both(lambda t: t.max(), lambda t: t.max(), x)
    elif isinstance(dims, int):
        check_both(lambda t: t.max(dims, keepdim).values,
                   lambda t: t.max(dims, keepdim).values, x)


@FEW
@given(shape=hnp.array_shapes(min_dims=2, max_dims=3, min_side=0, max_side=3), seed=seeds)
def test_max_keeps_empty_dimensions_it_does_not_reduce(shape, seed):
    torch = torch_mod()
    shape = (shape[0], max(shape[1], 1)) + shape[2:]
    (x,) = distinct(np.random.default_rng(seed), shape)
    check_both(lambda t: t.amax(1), lambda t: torch.amax(t, 1), x)


@pytest.mark.parametrize("rows,cols", [(16, 2), (40, 7), (128, 10), (20, 64), (20, 65)])
def test_max_and_min_over_many_short_rows(rows, cols):
    # The layout that max/min reduce as a column-major copy (see ops/reduce.py): values,
    # nan, ties and the gradient, against NumPy and PyTorch.
    torch = torch_mod()
    rng = np.random.default_rng(rows * cols)
    x = rng.integers(-3, 4, size=(rows, cols)).astype(np.float64)  # many ties
    compare_with_torch(lambda t: t.amax(1) * 1.5, lambda t: torch.amax(t, 1) * 1.5, x)
    compare_with_torch(lambda t: t.amin(-1, keepdim=True),
                       lambda t: torch.amin(t, -1, keepdim=True), x)
    x32 = x.astype(np.float32)
    x32[1, 0] = np.nan
    got = tg.tensor(x32).amax(1).numpy()
    np.testing.assert_array_equal(got, x32.max(1))
    assert got.flags.c_contiguous and np.isnan(got[1])
    np.testing.assert_allclose(F.log_softmax(tg.tensor(x32), 1).numpy()[2:],
                               torch.log_softmax(torch.tensor(x32), 1).numpy()[2:], rtol=1e-6)


def test_max_over_an_empty_dimension_raises():
    x = tg.zeros(2, 0, dtype=tg.float64)
    with pytest.raises(tg.ShapeError):
        x.amax(1)
    with pytest.raises(tg.ShapeError):
        x.max()


@pytest.mark.parametrize("dims,keepdim", [(1, False), (0, True), ((0, 1), False), (None, False)])
def test_max_ties_split_the_gradient_like_torch_amax(dims, keepdim):
    torch = torch_mod()
    x = np.array([[3.0, 1.0, 3.0], [2.0, 2.0, 2.0], [-1.0, 5.0, 0.0]])
    compare_with_torch(lambda t: t.amax(dims, keepdim) * 1.5,
                       lambda t: torch.amax(t, _torch_dims(dims, 2), keepdim) * 1.5, x)
    compare_with_torch(lambda t: t.max(), lambda t: t.max(), x)  # torch splits here too


def test_max_with_dim_values_gradient_follows_indices_like_torch():
    x = np.array([[3.0, 1.0, 3.0], [2.0, 2.0, 2.0]])
    compare_with_torch(lambda t: t.max(1).values, lambda t: t.max(1).values, x, order=1)


@covers("min")
@FAST
@given(sdk=shape_and_dims(min_side=1), seed=seeds)
def test_min(sdk, seed):
    torch = torch_mod()
    shape, dims, keepdim = sdk
    (x,) = distinct(np.random.default_rng(seed), shape)
    nd = len(shape)
    check_both(lambda t: t.amin(dims, keepdim),
               lambda t: torch.amin(t, _torch_dims(dims, nd), keepdim), x)
    # the primitive itself, axes as the normalized tuple the methods pass
    axes = tuple(range(nd)) if dims is None else tuple(
        d % nd for d in ((dims,) if isinstance(dims, int) else dims))
    check_grads(lambda t: apply(PRIMITIVES["min"], t, axes=axes, keepdim=keepdim), x)
    if dims is None:
        check_both(lambda t: t.min(), lambda t: t.min(), x)
    elif isinstance(dims, int):
        check_both(lambda t: t.min(dims, keepdim).values,
                   lambda t: t.min(dims, keepdim).values, x)


def test_min_over_an_empty_dimension_raises():
    x = tg.zeros(2, 0, dtype=tg.float64)
    with pytest.raises(tg.ShapeError):
        x.amin(1)
    with pytest.raises(tg.ShapeError):
        x.min()


@pytest.mark.parametrize("dims,keepdim", [(1, False), (0, True), ((0, 1), False), (None, False)])
def test_min_ties_split_the_gradient_like_torch_amin(dims, keepdim):
    torch = torch_mod()
    x = np.array([[-3.0, 1.0, -3.0], [2.0, 2.0, 2.0], [1.0, -5.0, 0.0]])
    compare_with_torch(lambda t: t.amin(dims, keepdim) * 1.5,
                       lambda t: torch.amin(t, _torch_dims(dims, 2), keepdim) * 1.5, x)
    compare_with_torch(lambda t: t.min(), lambda t: t.min(), x)  # torch splits here too
    # x.min(dim).values sends it all to the returned index instead, as torch does
    compare_with_torch(lambda t: t.min(1).values, lambda t: t.min(1).values, x, order=1)


@pytest.mark.parametrize("dtype", ["uint8", "int32", "int64", "bool", "float32"])
def test_min_and_argmin_of_non_float_dtypes_like_torch(dtype):
    x = np.array([[0, 5, 3], [7, 0, 1]]).astype(dtype)
    fns = [lambda t: t.amin(), lambda t: t.amin(1), lambda t: t.min(),
           lambda t: t.min(0).values, lambda t: t.min(0).indices]
    if dtype != "bool":  # torch's argmin refuses bool input
        fns += [lambda t: t.argmin(), lambda t: t.argmin(1, keepdim=True)]
    for fn in fns:
        compare_with_torch(fn, fn, x, order=0)


@pytest.mark.parametrize("fn", [
    lambda t: t.sum(0), lambda t: t.sum(-1, keepdim=True), lambda t: t.amax(0),
    lambda t: t.amin(-1),
    lambda t: t.max(0).values,
], ids=["sum", "sum_keepdim", "amax", "amin", "max_values"])
def test_reduce_0d_tensor_over_dim_0(fn):
    compare_with_torch(fn, fn, np.array(2.5), order=1)


@covers("argmax", "argmin")
@FAST
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4), seed=seeds,
       keepdim=st.booleans(), data=st.data())
def test_argmax(shape, seed, keepdim, data):
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=shape).astype(F64)  # ties: the first index wins, as in torch
    nd = len(shape)
    dim = data.draw(st.none() | st.integers(-nd, nd - 1)) if nd else None
    for fn in (lambda t: t.argmax(dim, keepdim), lambda t: t.argmin(dim, keepdim)):
        out = compare_with_torch(fn, fn, x, order=1)  # input requires grad, output must not
        assert out.dtype == tg.int64


@covers("argmin")
@FAST
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), seed=seeds,
       keepdim=st.booleans(), data=st.data())
def test_argmin_primitive(shape, seed, keepdim, data):
    torch = torch_mod()
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=shape).astype(F64)  # ties: the first index wins
    nd = len(shape)
    axis = data.draw(st.none() | st.integers(0, nd - 1))
    out = apply(PRIMITIVES["argmin"], tg.tensor(x, requires_grad=True), axis=axis,
                keepdim=keepdim)
    want = torch.argmin(torch.tensor(x), axis, keepdim)
    assert out.dtype == tg.int64 and not out.requires_grad
    assert out.shape == tuple(want.shape)
    np.testing.assert_array_equal(out.numpy(), want.numpy())


def test_argmin_over_an_empty_dimension_raises():
    with pytest.raises(tg.ShapeError):
        tg.zeros(0, 3).argmin(0)
    with pytest.raises(tg.ShapeError):
        tg.zeros(0, 3).argmin()


def test_argmax_over_an_empty_dimension_raises():
    with pytest.raises(tg.ShapeError):
        tg.zeros(0, 3).argmax(0)


def test_argmax_of_empty_tensor_raises_shape_error():
    with pytest.raises(tg.ShapeError):
        tg.zeros(0, 3).argmax()


# ------------------------------------------------------------------------------ movement


@st.composite
def reshape_case(draw):
    shape = draw(shapes)
    sizes = list(shape)
    sizes = draw(st.permutations(sizes)) if sizes else []
    if len(sizes) >= 2 and draw(st.booleans()):  # merge two neighbours
        i = draw(st.integers(0, len(sizes) - 2))
        sizes[i:i + 2] = [sizes[i] * sizes[i + 1]]
    for _ in range(draw(st.integers(0, 2))):  # insert size-1 dims
        sizes.insert(draw(st.integers(0, len(sizes))), 1)
    if sizes and draw(st.booleans()):
        i = draw(st.integers(0, len(sizes) - 1))
        if int(np.prod(sizes[:i] + sizes[i + 1:])) != 0:
            sizes[i] = -1
    return shape, tuple(sizes)


@covers("reshape")
@FAST
@given(case=reshape_case(), seed=seeds)
def test_reshape(case, seed):
    shape, new = case
    x = real(np.random.default_rng(seed), shape)
    check_both(lambda t: t.reshape(new), lambda t: t.reshape(new), x)
    check_both(lambda t: t.reshape(new) * 2.0, lambda t: t.reshape(new) * 2.0, x)


@covers("permute")
@FAST
@given(shape=shapes, seed=seeds, data=st.data())
def test_permute(shape, seed, data):
    nd = len(shape)
    perm = data.draw(st.permutations(range(nd)))
    perm = tuple(data.draw(st.sampled_from([d, d - nd])) for d in perm)
    x = real(np.random.default_rng(seed), shape)
    check_both(lambda t: t.permute(perm) * 1.0, lambda t: t.permute(perm) * 1.0, x)
    if nd >= 2:
        check_both(lambda t: t.transpose(0, -1), lambda t: t.transpose(0, -1), x)
        # a direct primitive call, even when the permutation is the identity
        check_grads(lambda t: apply(PRIMITIVES["permute"], t, dims=tuple(range(nd))[::-1]), x)


@st.composite
def expand_case(draw):
    shape = draw(shapes)
    lead = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
    grown = tuple(draw(st.integers(0, 3)) if n == 1 else n for n in shape)
    target = lead + grown
    # PyTorch's -1 keeps a dimension as it is
    spelled = tuple(-1 if i >= len(lead) and draw(st.booleans()) else n
                    for i, n in enumerate(target))
    return shape, spelled


@covers("expand")
@FAST
@given(case=expand_case(), seed=seeds)
def test_expand(case, seed):
    shape, target = case
    x = real(np.random.default_rng(seed), shape)
    check_both(lambda t: t.expand(target) * 1.0, lambda t: t.expand(target) * 1.0, x)


@FAST
@given(case=expand_case(), seed=seeds, layout=st.sampled_from(["C", "F", "strided", "readonly"]))
def test_broadcast_view_is_numpys_broadcast_to(case, seed, layout):
    """expand's forward (and GradArray.expand) make the view themselves for C-ordered arrays;
    for every layout they must give what np.broadcast_to gives, read-only."""
    from tracegrad.ops.movement import broadcast_view

    shape, spelled = case
    target = tuple(n if n != -1 else shape[i - (len(spelled) - len(shape))]
                   for i, n in enumerate(spelled))
    x = real(np.random.default_rng(seed), shape)
    if layout == "F" and x.ndim:  # (asfortranarray makes a 0-d array 1-d)
        x = np.asfortranarray(x)
    elif layout == "strided":
        x = np.repeat(x, 2, axis=-1)[..., ::2] if x.ndim else x
    elif layout == "readonly":
        x.flags.writeable = False
    got, want = broadcast_view(x, target), np.broadcast_to(x, target)
    assert got.shape == want.shape and got.dtype == want.dtype and not got.flags.writeable
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError):
        broadcast_view(np.ones(3), (4,))


@covers("pad")
@FAST
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=3), seed=seeds,
       data=st.data())
def test_pad(shape, seed, data):
    torch = torch_mod()
    k = data.draw(st.integers(1, len(shape)))
    pads = tuple(data.draw(st.lists(st.integers(0, 2), min_size=2 * k, max_size=2 * k)))
    value = data.draw(st.sampled_from([0.0, -1.5]))
    x = real(np.random.default_rng(seed), shape)
    check_both(lambda t: tg.nn.functional.pad(t, pads, value=value) * 1.0,
               lambda t: torch.nn.functional.pad(t, pads, value=value) * 1.0, x)
    # the primitive itself, NumPy-style pads per dimension
    per_dim = tuple((pads[2 * i], pads[2 * i + 1]) if i < k else (0, 0)
                    for i in range(len(shape)))[::-1]
    check_grads(lambda t: apply(PRIMITIVES["pad"], t, pads=per_dim, value=value), x)


# ------------------------------------------------------------------------------ indexing


def _torch_index(index: tuple):
    torch = torch_mod()
    return tuple(torch.from_numpy(i) if isinstance(i, np.ndarray) else i for i in index)


def _has_negative_step(index: tuple) -> bool:
    return any(isinstance(i, slice) and i.step is not None and i.step < 0 for i in index)


def check_getitem(x: np.ndarray, index) -> None:
    """Finite differences, the NumPy adjoint (scatter-add) and, where it indexes alike, torch."""
    index = index if isinstance(index, tuple) else (index,)
    fn = lambda t: t[index]  # noqa: E731
    check_grads(fn, x)
    # The gradient is NumPy's scatter-add of the cotangent: exact, no finite differences.
    xt = tg.tensor(x, requires_grad=True)
    out = xt[index]
    np.testing.assert_array_equal(out.numpy(), x[index])
    v = np.random.default_rng(0).standard_normal(out.shape)
    (out * tg.tensor(v)).sum().backward()
    expected = np.zeros_like(x)
    np.add.at(expected, index, v)
    np.testing.assert_allclose(xt.grad.numpy(), expected, rtol=1e-12, atol=1e-12)
    if not _has_negative_step(index):  # torch has no negative steps
        compare_with_torch(fn, lambda t: t[_torch_index(index)], x)


@covers("getitem")
@FAST
@given(shape=shapes, seed=seeds, data=st.data())
def test_getitem_basic(shape, seed, data):
    # ints (negative too), slices (negative steps too), None, Ellipsis
    index = data.draw(hnp.basic_indices(shape, min_dims=0, allow_newaxis=True,
                                        allow_ellipsis=True))
    check_getitem(real(np.random.default_rng(seed), shape), index)


@FAST
@given(shape=nonempty_shapes, seed=seeds, data=st.data())
def test_getitem_integer_arrays_with_repeats(shape, seed, data):
    index = data.draw(hnp.integer_array_indices(
        shape, result_shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=5)))
    check_getitem(real(np.random.default_rng(seed), shape), index)


@FAST
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4), seed=seeds,
       data=st.data())
def test_getitem_bool_mask(shape, seed, data):
    k = data.draw(st.integers(1, len(shape)))
    rng = np.random.default_rng(seed)
    mask = rng.random(shape[:k]) < 0.5
    check_getitem(real(rng, shape), mask)
    if len(shape) > k:
        check_getitem(real(rng, shape), (Ellipsis, rng.random(shape[-1]) < 0.5))


MIXED_INDICES = [
    (np.array([0, 0, 2, 0]),),
    (np.array([[1, 1], [0, 1]]), slice(None)),
    (slice(1, None), np.array([2, 2, -1])),
    (Ellipsis, np.array([0, 0])),
    (None, np.array([1, 0, 1]), None),
    (np.array([0, 1, 1]), np.array([2, 2, 0])),
    (np.array([0, 1, 1]), slice(None), np.array([1, 1, 0])),  # NumPy puts the array dims first
    (1, np.array([0, 0]), slice(None, None, -1)),
    (np.array([True, False, True]),),
    (np.array([True, False, True]), np.array([1, 0])),
    (np.zeros(3, bool),),
    (np.array([], dtype=np.int64),),
    (-1, Ellipsis, None, 0),
    (slice(None, None, -2), slice(3, 0, -1)),
]


@pytest.mark.parametrize("index", MIXED_INDICES, ids=range(len(MIXED_INDICES)))
def test_getitem_mixed(index):
    x = real(np.random.default_rng(1), (3, 4, 2))
    check_getitem(x, index)


def test_getitem_repeated_indices_scatter_add_exactly():
    x = tg.tensor([1.0, 2.0, 3.0], dtype=tg.float64, requires_grad=True)
    y = x[tg.tensor([0, 0, 2, 0])]
    (y * tg.tensor([1.0, 2.0, 3.0, 4.0], dtype=tg.float64)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [7.0, 0.0, 3.0])


@covers("as_strided")
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_as_strided(data):
    """Any layout within the operand, overlapping ones included, against torch.as_strided
    (whose gradient also sums the overlapping elements) and finite differences; of a
    C-ordered operand the result is a view."""
    n, shape, strides, offset = strided_layouts(data.draw)
    x = real(np.random.default_rng(n), (n,))
    fn = lambda t: apply(PRIMITIVES["as_strided"], t, shape=shape,  # noqa: E731
                         strides=strides, offset=offset)
    out = PRIMITIVES["as_strided"].forward(x, shape=shape, strides=strides, offset=offset)
    assert out.size == 0 or np.shares_memory(out, x)
    check_grads(lambda t: fn(t) * fn(t), x)
    compare_with_torch(fn, lambda t: t.as_strided(shape, strides, offset), x)


SCATTER_CASES = [
    ((slice(1, 3),), (4, 2)),
    ((slice(None, None, -1), 0), (3, 2)),
    ((None, Ellipsis, 1), (2, 3)),
    ((np.array([0, 0, 3, 0]),), (4, 2)),
    ((np.array([1, 1]), np.array([0, 0])), (2, 3)),
    ((slice(None), np.array([2, 0, 2])), (2, 3)),
    ((np.array([[True, False, True], [False, False, True]]),), (2, 3)),
    ((np.array([], dtype=np.int64),), (3,)),
]


@covers("scatter_add")
@pytest.mark.parametrize("index,shape", SCATTER_CASES, ids=range(len(SCATTER_CASES)))
def test_scatter_add(index, shape):
    torch = torch_mod()
    # the form the getitem VJP uses: a template, integer index arrays as operands
    template, ix = _normalize_index(index)
    gshape = np.empty(shape)[index].shape
    g = real(np.random.default_rng(2), gshape)
    fn = lambda t: t._scatter_add(template, shape, *ix)  # noqa: E731
    expected = np.zeros(shape)
    np.add.at(expected, index, g)
    with tg.no_grad():
        np.testing.assert_array_equal(fn(tg.tensor(g)).numpy(), expected)
    check_grads(fn, g)  # its VJP is getitem
    check_grads(lambda t: fn(t) * fn(t), g)  # and a second order that is not zero

    def torch_fn(t):  # torch's own adjoint of indexing, differentiable in t
        z = torch.zeros(shape, dtype=t.dtype, requires_grad=True)
        (grad,) = torch.autograd.grad((z[_torch_index(index)] * t).sum(), z, create_graph=True)
        return grad

    if not _has_negative_step(index):
        compare_with_torch(lambda t: fn(t) * fn(t), lambda t: torch_fn(t) * torch_fn(t), g)


def test_getitem_with_int_tensor_index_has_no_gradient_for_the_index():
    x = tg.tensor(real(np.random.default_rng(5), (4, 3)), requires_grad=True)
    idx = tg.tensor([3, 0, 3])
    y = x[idx, 1:]
    assert y.shape == (3, 2) and not idx.requires_grad
    (y * 2.0).sum().backward()
    expected = np.zeros((4, 3))
    np.add.at(expected, (np.array([3, 0, 3]), slice(1, None)), 2.0)
    np.testing.assert_array_equal(x.grad.numpy(), expected)
    check_getitem(real(np.random.default_rng(5), (4, 3)), (np.array([3, 0, 3]), slice(1, None)))


def _value_shape(draw, target: tuple, extra_dims: bool = True) -> tuple:
    """A value shape that broadcasts to ``target``: some dims 1 or fewer dims, or extra
    leading size-1 dims (PyTorch accepts both). Not both at once, and no extra dims for a
    single element: see the xfails below."""
    if extra_dims and target and draw(st.booleans()):
        return (1,) * draw(st.integers(1, 2)) + target
    shape = tuple(1 if draw(st.booleans()) else n for n in target)
    if shape and draw(st.booleans()):
        shape = shape[draw(st.integers(0, len(shape))):]
    return shape


def check_setitem(x: np.ndarray, index, v: np.ndarray) -> None:
    """``y = f(x); y[index] = v`` on a non-leaf that requires grad: finite differences in x and
    v (to second order, through a tanh so the second order is not zero) and torch's
    clone-and-assign (index_put).

    Finite differences only where no position is written twice: there only the last write
    counts, but the gradient goes to every written value, as in torch (see
    test_setitem_repeated_indices_last_write_wins_like_torch)."""
    index = index if isinstance(index, tuple) else (index,)
    writes = np.zeros(np.shape(x))
    np.add.at(writes, index, 1)
    fd = writes.size == 0 or writes.max() <= 1

    def ours(a, b):
        y = a * 1.5
        y[index] = b
        return y.tanh()

    def theirs(a, b):
        y = a * 1.5
        y[_torch_index(index)] = b
        return y.tanh()

    if fd:
        check_grads(ours, x, v)
    with tg.no_grad():  # the forward is NumPy's assignment
        expected = np.array(x * 1.5)  # (a 0-d x * 1.5 is a NumPy scalar)
        expected[index] = v
        np.testing.assert_allclose(ours(tg.tensor(x), tg.tensor(v)).numpy(), np.tanh(expected),
                                   rtol=1e-15)
    if not _has_negative_step(index):  # torch has no negative steps
        compare_with_torch(ours, theirs, x, v)


@covers("setitem")
@FAST
@given(shape=shapes, seed=seeds, data=st.data())
def test_setitem_basic(shape, seed, data):
    index = data.draw(hnp.basic_indices(shape, min_dims=0, allow_newaxis=True,
                                        allow_ellipsis=True))
    target = np.empty(shape)[index].shape
    rng = np.random.default_rng(seed)
    check_setitem(real(rng, shape), index, real(rng, _value_shape(data.draw, target)))


@FAST
@given(shape=nonempty_shapes, seed=seeds, data=st.data())
def test_setitem_integer_arrays(shape, seed, data):
    index = data.draw(hnp.integer_array_indices(
        shape, result_shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=4)))
    target = np.empty(shape)[index].shape
    rng = np.random.default_rng(seed)
    check_setitem(real(rng, shape), index, real(rng, _value_shape(data.draw, target)))


@FAST
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4), seed=seeds,
       data=st.data())
def test_setitem_bool_mask(shape, seed, data):
    k = data.draw(st.integers(1, len(shape)))
    rng = np.random.default_rng(seed)
    mask = rng.random(shape[:k]) < 0.5
    target = np.empty(shape)[mask].shape
    vshape = _value_shape(data.draw, target, extra_dims=k < len(shape))  # see the xfail below
    check_setitem(real(rng, shape), mask, real(rng, vshape))


SETITEM_INDICES = [
    (np.array([[1, 1], [0, 2]]), slice(None)),
    (slice(1, None), np.array([2, 0, -1])),
    (Ellipsis, np.array([1, 0])),
    (np.array([0, 2]), np.array([3, 1])),
    (np.array([0, 1, 2]), slice(None), np.array([1, 1, 0])),  # the array dims go first
    (1, np.array([0, 3]), slice(None, None, -1)),
    (np.array([True, False, True]), np.array([1, 0])),
    (np.array([], dtype=np.int64),),
    (-1, Ellipsis, None, 0),
    (slice(None, None, -2), slice(3, 0, -1)),
]


@pytest.mark.parametrize("index", SETITEM_INDICES, ids=range(len(SETITEM_INDICES)))
def test_setitem_mixed(index):
    rng = np.random.default_rng(3)
    x = real(rng, (3, 4, 2))
    check_setitem(x, index, real(rng, np.empty((3, 4, 2))[index].shape))
    check_setitem(x, index, real(rng, ()))  # one value broadcast to every selected element


def test_setitem_repeated_indices_last_write_wins_like_torch():
    index = (np.array([0, 2, 0, 0]),)
    rng = np.random.default_rng(4)
    x, v = real(rng, (3, 2)), real(rng, (4, 2))
    y = tg.tensor(x) * 1
    y[index] = tg.tensor(v)
    np.testing.assert_array_equal(y.numpy()[0], v[3])
    # every written value gets the cotangent of its position, overwritten or not: torch's
    # index_put gradient, though only v[3] reaches the output
    check_setitem(x, index, v)


def _setitem_into_constant_case():
    torch = torch_mod()
    rng = np.random.default_rng(5)
    const, v = real(rng, (3, 4)), real(rng, (3,))

    def theirs(b):
        y = torch.tensor(const)
        y[:, 1] = b
        return y * y

    return const, v, theirs


def test_setitem_primitive_with_only_the_value_requiring_grad():
    const, v, theirs = _setitem_into_constant_case()
    template, ix = _normalize_index((slice(None), 1))

    def ours(b):  # the primitive, out of place
        y = tg.tensor(const)._setitem(template, b, *ix)
        return y * y

    check_both(ours, theirs, v)


def test_setitem_into_a_constant_with_a_value_that_requires_grad():
    const, v, theirs = _setitem_into_constant_case()

    def ours(b):
        y = tg.tensor(const)
        y[:, 1] = b
        return y * y

    check_both(ours, theirs, v)


def test_setitem_of_a_number_leaves_a_hole_in_the_gradient():
    x = tg.tensor(real(np.random.default_rng(5), (3, 4)), requires_grad=True)
    y = x * 1
    y[1:, 2] = 7.0
    assert y.requires_grad and np.all(y.numpy()[1:, 2] == 7.0)
    y.sum().backward()
    expected = np.ones((3, 4))
    expected[1:, 2] = 0
    np.testing.assert_array_equal(x.grad.numpy(), expected)


@pytest.mark.parametrize("shape,index,vshape", [
    ((2,), 0, (1,)), ((2, 3), (1, 2), (1, 1)), ((), (), (1,)),
    ((3,), np.array([True, False, True]), (1, 2)),
    ((2, 2), np.array([[True, False], [False, True]]), (1, 1, 2)),
], ids=["1d", "2d", "0d", "mask", "mask2d"])
def test_setitem_with_leading_unit_dims_like_torch(shape, index, vshape):
    torch = torch_mod()
    x = tg.zeros(*shape, dtype=tg.float64)
    x[index] = tg.ones(*vshape, dtype=tg.float64)
    t = torch.zeros(shape, dtype=torch.float64)
    t[_torch_index(index if isinstance(index, tuple) else (index,))] = torch.ones(
        vshape, dtype=torch.float64)
    np.testing.assert_array_equal(x.numpy(), t.numpy())


@pytest.mark.parametrize("xshape,index,vshape", [((3,), slice(None), (1, 1)),
                                                 ((2, 3), 0, (1, 1)),
                                                 ((0,), (), (1, 1))], ids=range(3))
def test_setitem_gradient_of_broadcast_value_with_leading_unit_dims(xshape, index, vshape):
    rng = np.random.default_rng(6)
    check_setitem(real(rng, xshape), index, real(rng, vshape))


def test_setitem_primitive_rejects_a_value_that_does_not_fit():
    x = tg.zeros(2, 3, dtype=tg.float64)
    with pytest.raises(tg.ShapeError, match="setitem"):
        x[0] = tg.zeros(2, dtype=tg.float64)
    with pytest.raises(tg.ShapeError, match="setitem"):
        x[0] = tg.zeros(2, 3, dtype=tg.float64)


@st.composite
def cat_case(draw):
    base = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=3))
    dim = draw(st.integers(-len(base), len(base) - 1))
    sizes = draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))
    out = []
    for n in sizes:
        s = list(base)
        s[dim] = n
        out.append(tuple(s))
    return out, dim


@covers("cat")
@FAST
@given(case=cat_case(), seed=seeds)
def test_cat(case, seed):
    torch = torch_mod()
    shapes_, dim = case
    rng = np.random.default_rng(seed)
    arrays = [real(rng, s) for s in shapes_]
    check_both(lambda *ts: tg.cat(ts, dim) * 1.0, lambda *ts: torch.cat(ts, dim) * 1.0, *arrays)
    # only some operands require grad
    const = real(rng, shapes_[0])
    check_both(lambda t: tg.cat([tg.tensor(const), t], dim).exp(),
               lambda t: torch.cat([torch.tensor(const), t], dim).exp(), arrays[-1])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_stack_is_cat_of_unsqueezed(dim):
    torch = torch_mod()
    a, b = real(np.random.default_rng(3), (2, 3)), real(np.random.default_rng(4), (2, 3))
    check_both(lambda x, y: tg.stack([x, y], dim), lambda x, y: torch.stack([x, y], dim), a, b)


# ------------------------------------------------------------------------------ random numbers


@covers("rand")
@pytest.mark.parametrize("dist", ["uniform", "normal"])
@pytest.mark.parametrize("dtype", [None, tg.float64])
def test_rand(dist, dtype):
    make = tg.rand if dist == "uniform" else tg.randn
    tg.manual_seed(123)
    a = make(40, 50, dtype=dtype)
    tg.manual_seed(123)
    b = make((40, 50), dtype=dtype)
    np.testing.assert_array_equal(a.numpy(), b.numpy())  # seeded: reproducible
    assert a.dtype == (dtype or tg.float32) and a.shape == (40, 50)
    assert not a.requires_grad and a.grad_fn is None
    assert not np.array_equal(make(40, 50, dtype=dtype).numpy(), a.numpy())  # fresh draws
    data = a.numpy().astype(F64)
    if dist == "uniform":
        assert data.min() >= 0 and data.max() < 1
        assert abs(data.mean() - 0.5) < 0.05 and abs(data.var() - 1 / 12) < 0.01
    else:
        assert abs(data.mean()) < 0.1 and abs(data.std() - 1) < 0.1
    assert make(0, 3, dtype=dtype).shape == (0, 3)
    # the primitive itself, with no inputs
    p = apply(PRIMITIVES["rand"], shape=(2, 3), dtype=np.dtype(F64), dist=dist)
    assert p.shape == (2, 3) and p.dtype == F64 and not p.requires_grad


@covers("poisson")
def test_poisson_counts_have_the_rates_mean_and_no_gradient():
    rates = np.array([0.0, 0.5, 3.0, 40.0])
    tg.manual_seed(5)
    x = tg.tensor(np.repeat(rates[:, None], 20000, 1), dtype=tg.float32, requires_grad=True)
    out = apply(PRIMITIVES["poisson"], x)
    assert out.dtype == tg.float32 and out.shape == x.shape and not out.requires_grad
    data = out.numpy().astype(F64)
    assert (data == np.round(data)).all() and data[0].max() == 0
    # mean and variance are both the rate; 20000 draws: within 5 standard errors
    np.testing.assert_allclose(data.mean(1), rates, atol=5 * np.sqrt(rates.max() / 20000))
    np.testing.assert_allclose(data.var(1), rates, rtol=0.05)
    with pytest.raises(ValueError, match="non-negative"):
        apply(PRIMITIVES["poisson"], tg.tensor([-1.0]))


def test_rand_leaf_can_require_grad():
    x = tg.randn(3, 2, dtype=tg.float64, requires_grad=True)
    assert x.is_leaf and x.requires_grad
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy())


def test_rand_shape_rule_rejects_an_unknown_distribution():
    # (Eager `apply` consults the shape rule only when the forward fails, so this is what
    # the compiler sees.)
    with pytest.raises(ValueError, match="dist"):
        PRIMITIVES["rand"].infer(shape=(2,), dtype=np.dtype(F64), dist="cauchy")


# ------------------------------------------------------------------------------ matmul


@st.composite
def matmul_case(draw):
    kind = draw(st.sampled_from(["1d@2d", "2d@1d", "2d@2d", "batched", "1d@nd", "nd@1d"]))
    n, k, m = (draw(st.integers(0, 3)) for _ in range(3))
    if kind == "1d@2d":
        return (k,), (k, m)
    if kind == "2d@1d":
        return (n, k), (k,)
    if kind == "2d@2d":
        return (n, k), (k, m)
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2,
                                                   min_side=0, max_side=3)).input_shapes
    if kind == "batched":
        return batch[0] + (n, k), batch[1] + (k, m)
    if kind == "1d@nd":
        return (k,), batch[1] + (1, k, m)
    return batch[0] + (1, n, k), (k,)


@covers("matmul")
@FAST
@given(case=matmul_case(), seed=seeds)
def test_matmul(case, seed):
    sa, sb = case
    rng = np.random.default_rng(seed)
    a, b = real(rng, sa), real(rng, sb)
    check_both(operator.matmul, operator.matmul, a, b)
    check_both(lambda x, y: (x @ y).tanh(), lambda x, y: (x @ y).tanh(), a, b)


def test_matmul_1d_dot_1d():
    a = np.array([1.0, 2.0, -0.5])
    b = np.array([0.3, -1.0, 2.0])
    check_both(operator.matmul, operator.matmul, a, b)


# ------------------------------------------------------------------------------ fused for eager
#
# linear and log_softmax are primitives so that eager execution runs them as one node; tracing
# records their declared decompositions (Primitive.decomposition). Both are checked against
# finite differences and PyTorch, and against each other; so is the eager cross-entropy's
# shortcut against its general path.


@st.composite
def linear_case(draw):
    batch = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    n_in, n_out = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    if not batch and n_in == 0:
        n_in = 1  # a 0-d input has no feature dimension: covered by the error tests
    bias = draw(st.sampled_from([(n_out,), (1,)]))  # (1,): one number for every output
    return batch + (n_in,), (n_out, n_in), bias


@covers("linear")
@FAST
@given(case=linear_case(), seed=seeds)
def test_linear(case, seed):
    torch = torch_mod()
    rng = np.random.default_rng(seed)
    x, w, b = (real(rng, s) for s in case)
    check_both(F.linear, torch.nn.functional.linear, x, w, b)
    check_both(lambda *t: F.linear(*t).tanh(), lambda *t: torch.nn.functional.linear(*t).tanh(),
               x, w, b)
    assert F.linear(*(tg.tensor(a, requires_grad=True) for a in (x, w, b))).grad_fn == \
        "<LinearBackward>"


@st.composite
def softmax_case(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    return shape, draw(st.integers(-len(shape), len(shape) - 1))


@covers("log_softmax")
@FAST
@given(case=softmax_case(), seed=seeds, scale=st.sampled_from([1.0, 40.0]))
def test_log_softmax(case, seed, scale):
    torch = torch_mod()
    shape, dim = case
    x = real(np.random.default_rng(seed), shape) * scale  # 40: exp would overflow unshifted
    check_both(lambda t: F.log_softmax(t, dim), lambda t: torch.log_softmax(t, dim), x)
    assert F.log_softmax(tg.tensor(x, requires_grad=True), dim).grad_fn == "<LogSoftmaxBackward>"


@covers("softmax")
@FAST
@given(case=softmax_case(), seed=seeds, scale=st.sampled_from([1.0, 40.0]))
def test_softmax(case, seed, scale):
    torch = torch_mod()
    shape, dim = case
    x = real(np.random.default_rng(seed), shape) * scale
    check_both(lambda t: F.softmax(t, dim), lambda t: torch.softmax(t, dim), x)
    check_both(lambda t: F.softmax(t, dim).log(), lambda t: torch.softmax(t, dim).log(), x)
    assert F.softmax(tg.tensor(x, requires_grad=True), dim).grad_fn == "<SoftmaxBackward>"


@st.composite
def nll_case(draw):
    m, c = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    targets = draw(hnp.arrays(np.int64, (m,), elements=st.integers(0, c - 1)))
    return (m, c), targets, draw(st.sampled_from(["mean", "sum"]))


@covers("nll")
@FAST
@given(case=nll_case(), seed=seeds)
def test_eager_cross_entropy(case, seed):
    """The eager cross-entropy (log_softmax, then the nll primitive, whose gradient is a
    one-hot product) and nll_loss against PyTorch, to second order, with repeated classes."""
    torch = torch_mod()
    shape, targets, reduction = case
    x = real(np.random.default_rng(seed), shape)
    tt = torch.tensor(targets)
    check_both(lambda t: F.cross_entropy(t, tg.tensor(targets), reduction=reduction),
               lambda t: torch.nn.functional.cross_entropy(t, tt, reduction=reduction), x)
    check_both(lambda t: F.nll_loss(t.tanh(), tg.tensor(targets), reduction=reduction),
               lambda t: torch.nn.functional.nll_loss(t.tanh(), tt, reduction=reduction), x)


@FAST
@given(case=nll_case(), seed=seeds, ignored=st.lists(st.booleans(), min_size=5, max_size=5))
def test_nll_with_ignored_targets_eager_and_compiled(case, seed, ignored):
    """Rows whose target is ignore_index count for nothing (all of them: nan, gradient 0),
    eagerly (the nll primitive) and compiled (its decomposition), as in PyTorch."""
    torch = torch_mod()
    (m, c), targets, reduction = case
    targets = np.where(np.array(ignored[:m]), -100, targets)
    x = real(np.random.default_rng(seed), (m, c))
    tt = torch.tensor(targets)
    if reduction == "sum" or (targets != -100).any():  # (else: nan, checked below)
        check_both(lambda t: F.cross_entropy(t, tg.tensor(targets), reduction=reduction),
                   lambda t: torch.nn.functional.cross_entropy(t, tt, reduction=reduction), x)
    loss = tg.compile(lambda t: F.cross_entropy(t, tg.tensor(targets), reduction=reduction))
    for _ in range(2):
        xt = tg.tensor(x, requires_grad=True)
        got = loss(xt)
        got.backward()
    xe = tg.tensor(x, requires_grad=True)
    want = F.cross_entropy(xe, tg.tensor(targets), reduction=reduction)
    want.backward()
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(xt.grad.numpy(), xe.grad.numpy(), rtol=1e-12, atol=1e-15)
    if not (targets != -100).any():
        assert np.isnan(got.item()) == (reduction == "mean") and not xe.grad.numpy().any()


def _second_order(fn, arrays, v, w):
    """fn's value, the gradient of sum(fn * v) and the gradient of <that gradient, w>."""
    xs = [tg.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*xs)
    (out * tg.tensor(v)).sum().backward(create_graph=True)
    grads = [x.grad for x in xs]
    inner = sum((g * tg.tensor(wi)).sum() for g, wi in zip(grads, w))
    for x in xs:
        x.grad = None
    if inner.requires_grad:
        inner.backward()
    second = [x.grad.numpy() if x.grad is not None else np.zeros(x.shape) for x in xs]
    return [out.numpy(), *(g.numpy() for g in grads), *second]


@FEW
@given(lin=linear_case(), soft=softmax_case(), nll=nll_case(), seed=seeds)
def test_fused_primitives_agree_with_their_composites(lin, soft, nll, seed):
    rng = np.random.default_rng(seed)
    lin_dec, soft_dec = PRIMITIVES["linear"].decomposition, PRIMITIVES["log_softmax"].decomposition
    cases = [(F.linear, lin_dec, [real(rng, s) for s in lin]),
             (lambda t: F.log_softmax(t, soft[1]),
              lambda t: soft_dec(t, axis=soft[1]), [real(rng, soft[0])])]
    # the eager cross-entropy against the general path (class weights of 1 take it)
    (m, c), targets, reduction = nll
    tt = tg.tensor(targets)
    cases.append((lambda t: F.cross_entropy(t, tt, reduction=reduction),
                  lambda t: F.cross_entropy(t, tt, weight=tg.ones(c, dtype=tg.float64),
                                            reduction=reduction), [real(rng, (m, c))]))
    for fused, composite, arrays in cases:
        out_shape = fused(*(tg.tensor(a) for a in arrays)).shape
        v = rng.normal(size=out_shape)
        w = [rng.normal(size=a.shape) for a in arrays]
        got, want = _second_order(fused, arrays, v, w), _second_order(composite, arrays, v, w)
        for g, h in zip(got, want):
            np.testing.assert_allclose(g, h, rtol=1e-10, atol=1e-12)


def test_linear_and_log_softmax_errors_name_the_op_and_shapes():
    x, w, b = tg.ones(4, 3), tg.ones(5, 2), tg.ones(5)
    with pytest.raises(tg.ShapeError, match=r"linear: the input's last dimension \(3\) must "
                                         r"equal the weight's in_features \(2\)"):
        F.linear(x, w, b)
    with pytest.raises(tg.ShapeError, match=r"linear: weight must be \(out, in\) and bias "
                                         r"\(out,\).*bias \(4,\)"):
        F.linear(x, tg.ones(5, 3), tg.ones(4))
    with pytest.raises(TypeError, match="linear: input, weight and bias have dtypes float64, "
                                        "float32 and float32"):  # the rule, called directly
        PRIMITIVES["linear"].infer(tg.ones(4, 3, dtype=tg.float64), tg.ones(5, 3), b)
    # A bias that only broadcasts, as PyTorch allows: the composite runs.
    torch = torch_mod()
    rng = np.random.default_rng(0)
    for bias_shape in [(3, 5), ()]:
        check_both(F.linear, torch.nn.functional.linear, real(rng, (3, 4)), real(rng, (5, 4)),
                   real(rng, bias_shape))
    # Mixed dtypes raise, as in PyTorch (never NumPy's own promotion).
    for dt in (tg.int64, tg.float64):
        with pytest.raises(tg.DTypeError, match="linear: input, weight and bias have dtypes"):
            F.linear(tg.ones(4, 3, dtype=dt), tg.ones(5, 3), b)
    with pytest.raises(tg.ShapeError, match="log_softmax: dim 2 is out of range"):
        F.log_softmax(tg.ones(2, 3), 2)


def test_traced_functions_record_the_composites():
    model = tg.nn.Sequential(tg.nn.Linear(3, 4), tg.nn.ReLU(), tg.nn.Linear(4, 2))
    step = tg.compile(lambda x, y: F.cross_entropy(model(x), y))
    x, y = tg.randn(5, 3), tg.tensor([0, 1, 1, 0, 1])
    want = F.cross_entropy(model(x), y)  # eager: the fused primitives
    assert want.grad_fn == "<NllBackward>" and model[0](x).grad_fn == "<LinearBackward>"
    for _ in range(2):  # the first call runs eagerly, the second compiles
        got = step(x, y)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    ops = {node.op for node in step.graph.nodes}
    assert "matmul" in ops and not ops & {"linear", "log_softmax", "nll"}


# ------------------------------------------------------------------------------ dtypes


class _Lib:
    """Builds the same expression in tracegrad and in torch."""

    def __init__(self, name: str):
        self.name = name
        self.mod = tg if name == "tg" else torch_mod()

    def t(self, dtype: str, values=(1, 2, 3)):
        arr = np.asarray(values).astype(dtype)
        if self.name == "tg":
            return tg.tensor(arr)
        return self.mod.tensor(arr)

    def where(self, *args):
        return self.mod.where(*args)

    def cat(self, ts):
        return self.mod.cat(ts)


DTYPE_TABLE = [
    ("f32 * float", lambda L: L.t("float32") * 2.5),
    ("f64 * float", lambda L: L.t("float64") * 2.5),
    ("f32 * int", lambda L: L.t("float32") * 2),
    ("i64 * float", lambda L: L.t("int64") * 2.5),
    ("float - i64", lambda L: 2.5 - L.t("int64")),
    ("i64 * int", lambda L: L.t("int64") * 2),
    ("i32 + int", lambda L: L.t("int32") + 1),
    ("i32 * float", lambda L: L.t("int32") * 0.5),
    ("i64 * bool", lambda L: L.t("int64") * True),
    ("bool + int", lambda L: L.t("bool", (1, 0, 1)) + 1),
    ("bool + bool", lambda L: L.t("bool", (1, 0, 1)) + L.t("bool", (0, 0, 1))),
    ("f32 + f64", lambda L: L.t("float32") + L.t("float64")),
    ("f16 + f32", lambda L: L.t("float16") + L.t("float32")),
    ("i32 + i64", lambda L: L.t("int32") + L.t("int64")),
    ("i64 + f32", lambda L: L.t("int64") + L.t("float32")),
    ("i32 * f64", lambda L: L.t("int32") * L.t("float64")),
    ("u8 + i32", lambda L: L.t("uint8") + L.t("int32")),
    ("bool * f32", lambda L: L.t("bool", (1, 0, 1)) * L.t("float32")),
    ("f32 * np.float64", lambda L: L.t("float32") * np.float64(2.5)),
    ("i64.exp()", lambda L: L.t("int64").exp()),
    ("i32.sqrt()", lambda L: L.t("int32").sqrt()),
    ("bool.sigmoid()", lambda L: L.t("bool", (1, 0, 1)).sigmoid()),
    ("i64 / i64", lambda L: L.t("int64") / L.t("int64", (2, 4, 8))),
    ("i64 / int", lambda L: L.t("int64") / 2),
    ("int / i32", lambda L: 6 / L.t("int32")),
    ("f32 / int", lambda L: L.t("float32") / 2),
    ("i64 ** int", lambda L: L.t("int64") ** 2),
    ("i64 ** float", lambda L: L.t("int64") ** 0.5),
    ("f32 ** f64", lambda L: L.t("float32") ** L.t("float64")),
    ("float ** i64", lambda L: 2.0 ** L.t("int64")),
    ("maximum(i64, f32)", lambda L: L.t("int64").maximum(L.t("float32"))),
    ("f32 < f64", lambda L: L.t("float32") < L.t("float64")),
    ("i64 < float", lambda L: L.t("int64") < 2.5),
    ("i64 == int", lambda L: L.t("int64") == 2),
    ("f32 >= int", lambda L: L.t("float32") >= 2),
    ("where(f32, f64)", lambda L: L.where(L.t("bool", (1, 0, 1)), L.t("float32"),
                                          L.t("float64"))),
    ("where(i64, float)", lambda L: L.where(L.t("bool", (1, 0, 1)), L.t("int64"), 2.5)),
    ("cat(i64, f32)", lambda L: L.cat([L.t("int64"), L.t("float32")])),
    ("cat(f32, f64)", lambda L: L.cat([L.t("float32"), L.t("float64")])),
    ("i32.sum()", lambda L: L.t("int32").sum()),
    ("bool.sum()", lambda L: L.t("bool", (1, 0, 1)).sum()),
    ("f32.sum()", lambda L: L.t("float32").sum()),
    ("i32.relu()", lambda L: L.t("int32").relu()),
    ("-i32", lambda L: -L.t("int32")),
    ("i64.argmax()", lambda L: L.t("int64").argmax()),
    ("i64 @ i64", lambda L: L.t("int64") @ L.t("int64")),
    ("f32 @ f32", lambda L: L.t("float32") @ L.t("float32")),
    # a 0-d tensor of the same kind does not widen a dimensioned one (PyTorch's rule)
    ("f32 * 0-d f64", lambda L: L.t("float32") * L.t("float64", 2.5)),
    ("i32 + 0-d i64", lambda L: L.t("int32") + L.t("int64", 1)),
]


@pytest.mark.parametrize("case,expr", DTYPE_TABLE,
                         ids=[c.values[0] if hasattr(c, "values") else c[0] for c in DTYPE_TABLE])
def test_dtype_promotion_matches_torch(case, expr):
    ours, theirs = expr(_Lib("tg")), expr(_Lib("torch"))
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", ""), (
        f"{case}: tracegrad {ours.dtype}, torch {theirs.dtype}")
    np.testing.assert_allclose(ours.numpy().astype(F64), theirs.numpy().astype(F64),
                               rtol=1e-6)


@pytest.mark.parametrize("data", [0.1, [0.1, 1 / 3], [[0.1]], np.float64(0.1)],
                         ids=["float", "list", "nested", "np.float64"])
def test_tensor_with_float64_dtype_keeps_full_precision(data):
    t = tg.tensor(data, dtype=tg.float64)
    np.testing.assert_array_equal(t.numpy(), np.asarray(data, dtype=F64))


@pytest.mark.parametrize("scalar", [np.float64(0.5), np.int32(3), np.float16(1.5)],
                         ids=["float64", "int32", "float16"])
def test_tensor_from_numpy_scalar_keeps_its_dtype(scalar):
    assert tg.tensor(scalar).dtype == np.asarray(scalar).dtype


# ------------------------------------------------------------------------------ im2col, col2im
#
# The windows of a convolution, (C, H, W, N) -> (K, C, oh, ow, N), and their adjoint; against
# PyTorch's unfold and fold, which lay the same numbers out as (N, C * K, oh * ow).


@st.composite
def window_case(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    size = tuple(d * (k - 1) + 1 + draw(st.integers(0, 4))
                 for k, d in zip(kernel, dilation))
    c, n = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return (c,) + size + (n,), kernel, stride, dilation


def _torch_windows(torch, x, kernel, stride, dilation):
    c, h, w, n = x.shape
    cols = torch.nn.functional.unfold(x.permute(3, 0, 1, 2), kernel, dilation=dilation,
                                      stride=stride)  # (N, C * K, L)
    oh, ow = ((s - d * (k - 1) - 1) // st + 1
              for s, k, st, d in zip((h, w), kernel, stride, dilation))
    k = kernel[0] * kernel[1]
    return cols.reshape(n, c, k, oh, ow).permute(2, 1, 3, 4, 0)


@covers("im2col", "col2im")
@FAST
@given(case=window_case(), seed=seeds)
def test_im2col_and_col2im(case, seed):
    torch = torch_mod()
    shape, kernel, stride, dilation = case
    rng = np.random.default_rng(seed)
    x = real(rng, shape)
    check_both(lambda t: t._im2col(kernel, stride, dilation),
               lambda t: _torch_windows(torch, t, kernel, stride, dilation), x)
    cols = real(rng, PRIMITIVES["im2col"].forward(x, kernel=kernel, stride=stride,
                                         dilation=dilation).shape)

    def torch_fold(t):
        k, c, oh, ow, n = t.shape
        flat = t.permute(4, 1, 0, 2, 3).reshape(n, c * k, oh * ow)
        return torch.nn.functional.fold(flat, shape[1:3], kernel, dilation=dilation,
                                        stride=stride).permute(1, 2, 3, 0)

    check_both(lambda t: t._col2im(kernel, stride, dilation, shape), torch_fold, cols)


# ------------------------------------------------------------------------------ tg.linalg
#
# The factorizations on random (batches of) well-conditioned matrices; functions of the
# vectors of eigh and svd are sign-free (squares), since each vector is unique only up to
# sign. tests/test_linalg.py has the rest (float32, torch's API, errors, compiled).


def _linalg_cases(lib, is_tg):
    def mT(x):
        return x.transpose(-1, -2)

    def flat(*parts):
        return lib.cat([p.reshape(-1) for p in parts])

    def spd(x):
        return x @ mT(x) + lib.eye(x.shape[-1], dtype=x.dtype) * x.shape[-1]

    def cofactor(x):
        if is_tg:
            return x._prim("cofactor")
        return lib.linalg.det(x).unsqueeze(-1).unsqueeze(-1) * mT(lib.linalg.inv(x))

    return {
        "inv": lambda x, y: lib.linalg.inv(x),
        "solve": lambda x, y: lib.linalg.solve(x, y),
        "det": lambda x, y: lib.linalg.det(x),
        "cofactor": lambda x, y: cofactor(x),
        "slogdet": lambda x, y: lib.linalg.slogdet(x)[1],
        "cholesky": lambda x, y: lib.linalg.cholesky(spd(x)),
        "eigh": lambda x, y: flat(*[p ** 2 for p in lib.linalg.eigh(spd(x))]),
        "eigvalsh": lambda x, y: lib.linalg.eigvalsh(x + mT(x)),
        "svd": lambda x, y: flat(*[p ** 2 for p in lib.linalg.svd(y, full_matrices=False)]),
        "svdvals": lambda x, y: lib.linalg.svdvals(y),
        "qr": lambda x, y: flat(*lib.linalg.qr(y)),
        "pinv": lambda x, y: lib.linalg.pinv(y),
        "matrix_exp": lambda x, y: lib.linalg.matrix_exp(x),
    }


@covers("inv", "solve", "det", "cofactor", "slogdet", "cholesky", "eigh", "eigvalsh", "svd",
        "svdvals", "qr", "pinv", "matrix_exp")
@pytest.mark.parametrize("name", sorted(_linalg_cases(np, False)))
@settings(FAST, max_examples=6)
@given(batch=st.sampled_from([(), (2,)]), n=st.integers(1, 3), k=st.integers(1, 3),
       seed=seeds)
def test_linalg(name, batch, n, k, seed):
    torch = torch_mod()
    rng = np.random.default_rng(seed)
    # square: well-conditioned; y: (n, k) with distinct singular values (a scaled
    # orthonormal frame: eigenvalues and singular values apart, no near-ties)
    x = real(rng, batch + (n, n)) * 0.3 + np.eye(n) * 2
    q = np.linalg.qr(rng.standard_normal(batch + (max(n, k), max(n, k))))[0]
    y = (q[..., :n, :k] * np.arange(1.0, k + 1)) + 0.05 * real(rng, batch + (n, k))
    check_both(lambda a, b: _linalg_cases(tg, True)[name](a, b),
               lambda a, b: _linalg_cases(torch, False)[name](a, b), x, y)


# ------------------------------------------------------------------------------ coverage


def test_every_primitive_is_covered():
    missing = set(PRIMITIVES) - COVERED
    assert not missing, f"primitives without a test in test_primitives.py: {sorted(missing)}"
    assert COVERED == set(PRIMITIVES)


def test_a_primitive_with_a_decomposition_is_traced_as_it_and_runs_as_one_node_eagerly():
    x, w, b = tg.ones(4, 3), tg.ones(2, 3), tg.ones(2)
    eager = F.log_softmax(F.linear(x, w, b), dim=1)
    assert eager._op is None or eager._op.name == "log_softmax"  # one node, not the parts
    ops = [n.op for n in tg.trace(lambda x: F.log_softmax(F.linear(x, w, b), dim=1),
                                  tg.TensorSpec((4, 3))).nodes]
    assert "linear" not in ops and "log_softmax" not in ops  # the decompositions
    assert {"matmul", "add", "max", "exp", "log"} <= set(ops)
    assert "_tracer" not in inspect.getsource(F)  # one path: nothing branches on tracing
