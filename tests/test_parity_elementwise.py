"""PyTorch's elementwise math that tracegrad gained: tan, the inverse trigonometric and
hyperbolic functions, atan2, erfc (primitives), xlogy, sinc, heaviside, copysign, fmax, fmin,
signbit, float_power, deg2rad, rad2deg, logaddexp2, positive (composites) and NumPy's names
for them (arcsin, arctan2, absolute, not_equal, sgn...).

Each is checked against torch: values in float32 and float64 at edge values (0, -0, +-inf,
nan, the ends of its domain) and random ones, the dtype of integer inputs, gradients (and
float64 finite differences, to second order), and ``tg.compile`` on the NumPy and C
backends and ONNX export against eager.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from gradcheck import check_grads, compare_with_torch

import tracegrad as tg
from tracegrad.compiler.backends import c as cbackend

torch = pytest.importorskip("torch")
needs_c = pytest.mark.skipif(cbackend.available() is not None,
                             reason=f"no C backend here: {cbackend.available()}")
BACKENDS = ["numpy", pytest.param("c", marks=needs_c)]
DTYPES = [np.float32, np.float64]
INF, NAN = math.inf, math.nan


# ---------------------------------------------------------------- the functions

def _real(rng, shape):
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape)


def _unit(rng, shape):  # +-[0.05, 0.9]: asin, acos, atanh, and tan away from its poles
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.05, 0.9, size=shape)


def _above_one(rng, shape):
    return rng.uniform(1.1, 3.0, size=shape)


def _positive(rng, shape):
    return rng.uniform(0.2, 3.0, size=shape)


def _distinct(rng, shape):  # no ties between the two operands
    a = _real(rng, shape)
    return a + np.where(a >= 0, 0.3, -0.3)


# name -> (torch function, domain of each operand for gradients). tracegrad's function is
# tg.<name>, torch's torch.<name> unless given; one domain per operand.
UNARY = {
    "tan": (_unit,), "asin": (_unit,), "acos": (_unit,), "atan": (_real,),
    "asinh": (_real,), "acosh": (_above_one,), "atanh": (_unit,), "erfc": (_real,),
    "sinc": (_real,), "deg2rad": (_real,), "rad2deg": (_real,), "positive": (_real,),
}
BINARY = {
    "atan2": (_real, _real), "xlogy": (_real, _positive), "copysign": (_real, _real),
    "fmax": (_real, _distinct), "fmin": (_real, _distinct), "float_power": (_positive, _real),
    "logaddexp2": (_real, _real),
}
DOMAINS = {**UNARY, **BINARY}
# composites whose result differs from torch's in the last bits (a few float32 roundings
# in a row, where torch has one function)
LOOSE = {"logaddexp2", "sinc"}

EDGE = [0.0, -0.0, 1e-30, -1e-30, 1e-8, -1e-8, 0.5, -0.5, 0.9999, -0.9999, 1.0, -1.0, 1.5,
        -1.5, 2.0, -2.0, 3.0, 10.0, -10.0, 30.0, -30.0, 1e10, -1e10, INF, -INF, NAN]
SPECIAL = [0.0, -0.0, 1.0, -1.0, 2.5, -2.5, 0.5, INF, -INF, NAN]


def tg_fn(name):
    return getattr(tg, name)


def torch_fn(name):
    return getattr(torch, name)


def _edge_operands(name, dtype):
    rng = np.random.default_rng(0)
    if name in UNARY:
        return [np.concatenate([EDGE, rng.uniform(-4, 4, 40)]).astype(dtype)]
    a, b = np.meshgrid(SPECIAL, SPECIAL, indexing="ij")
    a = np.concatenate([a.ravel(), rng.uniform(-4, 4, 40)]).astype(dtype)
    b = np.concatenate([b.ravel(), rng.uniform(-4, 4, 40)]).astype(dtype)
    return [a, b]


def _assert_same_values(got, want, dtype, name):
    assert got.dtype == want.dtype, (name, got.dtype, want.dtype)
    if got.dtype.kind != "f":
        np.testing.assert_array_equal(got, want)
        return
    loose = name in LOOSE
    if got.dtype == np.float32:
        rtol, atol = (4e-6, 1e-6) if loose else (5e-7, 1e-7)
    else:
        rtol, atol = (1e-14, 1e-15) if loose else (1e-15, 1e-300)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=name)
    # the same infinities, nans and signed zeros
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{name}: nan")
    zeros = (got == 0) & (want == 0)
    np.testing.assert_array_equal(np.signbit(got[zeros]), np.signbit(want[zeros]),
                                  err_msg=f"{name}: the sign of a zero")


# ---------------------------------------------------------------- values


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_values_match_torch_at_edges(name, dtype):
    operands = _edge_operands(name, dtype)
    with np.errstate(all="ignore"):
        got = tg_fn(name)(*map(tg.tensor, operands)).numpy()
    want = torch_fn(name)(*map(torch.tensor, operands)).numpy()
    _assert_same_values(got, want, dtype, name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_domain_edges(dtype):
    x = tg.tensor(np.array([1.5, -1.5, 1.0, -1.0, 0.5, 2.0], dtype))
    with np.errstate(all="ignore"):
        got = {n: tg_fn(n)(x).numpy() for n in ("asin", "acos", "acosh", "atanh")}
    pi = np.float64(np.pi).astype(dtype)
    np.testing.assert_array_equal(got["asin"][:4], np.array([NAN, NAN, pi / 2, -pi / 2], dtype))
    np.testing.assert_array_equal(got["acos"][:4], np.array([NAN, NAN, 0, pi], dtype))
    np.testing.assert_array_equal(got["acosh"][2:5], np.array([0, NAN, NAN], dtype))
    np.testing.assert_array_equal(got["atanh"][2:4], np.array([INF, -INF], dtype))
    # atan2 of signed zeros: the four quadrants' +-0 and +-pi, as torch (and C)
    y = tg.tensor(np.array([0.0, -0.0, 0.0, -0.0], dtype))
    xs = tg.tensor(np.array([0.0, 0.0, -0.0, -0.0], dtype))
    got = tg.atan2(y, xs).numpy()
    np.testing.assert_array_equal(got, np.array([0.0, -0.0, pi, -pi], dtype))
    assert list(np.signbit(got)) == [False, True, False, True]


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_integer_inputs_promote_as_torch(name):
    a = np.array([-3, -1, 0, 1, 2, 5], np.int64)
    operands = [a] if name in UNARY else [a, np.array([2, 0, 0, -1, 3, 1], np.int64)]
    try:
        want = torch_fn(name)(*map(torch.tensor, operands)).numpy()
    except (RuntimeError, NotImplementedError):  # (logaddexp2 of ints: torch refuses)
        want = torch_fn(name)(*[torch.tensor(o, dtype=torch.float32) for o in operands])
        want = want.numpy()
    with np.errstate(all="ignore"):
        got = tg_fn(name)(*map(tg.tensor, operands)).numpy()
    _assert_same_values(got, want, got.dtype, name)


def test_erfc_keeps_its_tail_where_one_minus_erf_is_zero():
    for dtype in DTYPES:
        x = np.array([3.0, 4.0, 5.0, 9.0, 10.0, 26.0, -5.0], dtype)
        got = tg.erfc(tg.tensor(x)).numpy()
        want = torch.erfc(torch.tensor(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=2e-6 if dtype == np.float32 else 1e-14)
        assert got[2] > 0  # erfc(5) is 1.5e-12 (1 - erf(5) is 0 in float32)


def test_signbit_and_copysign_read_the_sign_bit():
    x = np.array([-2.0, -0.0, 0.0, 3.0, -INF, INF, NAN, -NAN], np.float32)
    got = tg.signbit(tg.tensor(x))
    assert got.dtype == tg.bool
    np.testing.assert_array_equal(got.numpy(), torch.signbit(torch.tensor(x)).numpy())
    np.testing.assert_array_equal(got.numpy(), [1, 1, 0, 0, 1, 0, 0, 1])
    mag = np.full(8, 1.5, np.float32)
    np.testing.assert_array_equal(tg.copysign(tg.tensor(mag), tg.tensor(x)).numpy(),
                                  torch.copysign(torch.tensor(mag), torch.tensor(x)).numpy())
    np.testing.assert_array_equal(tg.signbit(tg.tensor([-1, 0, 2])).numpy(), [1, 0, 0])
    assert tg.copysign(tg.tensor([1.0, 2.0]), -2).tolist() == [-1.0, -2.0]


def test_fmax_fmin_ignore_nan_and_send_ties_to_the_first_operand():
    a = np.array([1.0, NAN, NAN, 2.0, 3.0, -0.0], np.float64)
    b = np.array([NAN, 1.0, NAN, 2.0, 1.0, 0.0], np.float64)
    for name in ("fmax", "fmin"):
        ta = tg.tensor(a, requires_grad=True)
        tb = tg.tensor(b, requires_grad=True)
        out = tg_fn(name)(ta, tb)
        (out * tg.tensor(np.arange(1.0, 7.0))).sum().backward()
        pa = torch.tensor(a, requires_grad=True)
        pb = torch.tensor(b, requires_grad=True)
        want = torch_fn(name)(pa, pb)
        (want * torch.arange(1.0, 7.0, dtype=torch.float64)).sum().backward()
        np.testing.assert_array_equal(out.detach().numpy(), want.detach().numpy())
        np.testing.assert_array_equal(ta.grad.numpy(), pa.grad.numpy())
        np.testing.assert_array_equal(tb.grad.numpy(), pb.grad.numpy())
    # ints stay ints
    assert tg.fmax(tg.tensor([1, 5]), tg.tensor([3, 2])).tolist() == [3, 5]


def test_xlogy_is_zero_where_x_is_zero_with_torchs_gradients():
    # (not at y = inf, where torch's gradient for x is inf, though xlogy(0, inf) is 0)
    x = np.array([0.0, 0.0, 1.0, 0.0, 2.0, -0.0], np.float64)
    y = np.array([0.0, NAN, 0.0, 1.0, 3.0, 2.0], np.float64)
    tx, ty = tg.tensor(x, requires_grad=True), tg.tensor(y, requires_grad=True)
    out = tg.xlogy(tx, ty)
    out.sum().backward()
    px, py = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    want = torch.xlogy(px, py)
    want.sum().backward()
    np.testing.assert_array_equal(out.detach().numpy(), want.detach().numpy())
    np.testing.assert_array_equal(tx.grad.numpy(), px.grad.numpy())
    np.testing.assert_array_equal(ty.grad.numpy(), py.grad.numpy())
    # a Python number on either side
    np.testing.assert_allclose(tg.xlogy(2, tg.tensor([3.0])).numpy(), [2 * math.log(3)],
                               rtol=1e-6)
    np.testing.assert_allclose(tg.tensor([3.0]).xlogy(2.0).numpy(), [3 * math.log(2)],
                               rtol=1e-6)


def test_sinc_is_one_at_zero_with_gradient_zero():
    x = np.array([0.0, -0.0, 1.0, 0.5, -2.5, 1e-20], np.float64)
    compare_with_torch(lambda t: tg.sinc(t), lambda t: torch.sinc(t), x, order=1)
    t = tg.tensor(x, requires_grad=True)
    tg.sinc(t).sum().backward()
    assert t.grad.numpy()[0] == 0 and t.grad.numpy()[1] == 0


def test_heaviside_and_positive():
    x = np.array([NAN, -0.0, 0.0, 1.0, -1.0, INF, -INF], np.float32)
    v = np.array([0.5], np.float32)
    got = tg.heaviside(tg.tensor(x), tg.tensor(v)).numpy()
    np.testing.assert_array_equal(got, torch.heaviside(torch.tensor(x),
                                                       torch.tensor(v)).numpy())
    assert tg.heaviside(tg.tensor([0, 3, -2]), tg.tensor([7])).tolist() == [7, 1, 0]
    # no gradient (zero almost everywhere), as the rounding ops
    assert not tg.heaviside(tg.tensor(x, requires_grad=True), tg.tensor(v)).requires_grad
    t = tg.tensor([1.0, -2.0])
    assert tg.positive(t) is t and t.positive() is t
    with pytest.raises(TypeError, match="bool"):
        tg.positive(tg.tensor([True]))


def test_float_power_computes_in_float64():
    got = tg.float_power(tg.tensor([2.0, 3.0]), 0.5)
    want = torch.float_power(torch.tensor([2.0, 3.0]), 0.5)
    assert got.dtype == tg.float64
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert tg.float_power(tg.tensor([2]), 2).dtype == tg.float64
    x = tg.tensor([2.0, 3.0], requires_grad=True)
    tg.float_power(x, 3).sum().backward()
    assert x.grad.dtype == tg.float32
    np.testing.assert_allclose(x.grad.numpy(), [12.0, 27.0])


# ---------------------------------------------------------------- names


ALIASES = {"arcsin": "asin", "arccos": "acos", "arctan": "atan", "arcsinh": "asinh",
           "arccosh": "acosh", "arctanh": "atanh", "arctan2": "atan2", "absolute": "abs",
           "not_equal": "ne", "sgn": "sign"}


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_aliases_are_the_same_op_as_function_and_method(alias):
    name = ALIASES[alias]
    x = tg.tensor(np.array([-0.75, -0.0, 0.25, 0.5], np.float32))
    y = tg.tensor(np.array([0.5, -0.5, 0.25, 2.0], np.float32))
    args = (x, y) if name in ("atan2", "ne") else (x + 2.0,) if name == "acosh" else (x,)
    want = getattr(tg, name)(*args).numpy()
    for got in (getattr(tg, alias)(*args), getattr(args[0], alias)(*args[1:])):
        np.testing.assert_array_equal(got.numpy(), want)
    theirs = getattr(torch, alias)(*[torch.tensor(a.numpy()) for a in args]).numpy()
    np.testing.assert_allclose(want, theirs, rtol=5e-7)


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_every_function_is_a_method_too(name):
    x = tg.tensor([0.25, 1.5])
    args = [x + 1.0 if name == "acosh" else x] + ([tg.tensor([0.5, -2.0])]
                                                    if name in BINARY else [])
    np.testing.assert_array_equal(getattr(args[0], name)(*args[1:]).numpy(),
                                  tg_fn(name)(*args).numpy())


# ---------------------------------------------------------------- gradients


def _domain_operands(name, shape=(3, 4), seed=0):
    rng = np.random.default_rng(seed)
    return [np.asarray(d(rng, shape)) for d in DOMAINS[name]]


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_gradients_match_finite_differences_and_torch(name):
    arrays = _domain_operands(name)
    check_grads(tg_fn(name), *arrays, order=2)
    compare_with_torch(tg_fn(name), torch_fn(name), *arrays, order=2)
    # float32: float_power's gradient comes back to float32 through the cast to float64
    compare_with_torch(tg_fn(name), torch_fn(name), *[a.astype(np.float32) for a in arrays],
                       order=1, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["asin", "acos", "acosh", "atanh", "atan2"])
def test_gradients_at_the_ends_of_the_domain_match_torch(name):
    # inf at asin(+-1), acosh(1), atanh(+-1); nan outside; atan2 at the origin
    if name == "atan2":
        arrays = [np.array([0.0, 1.0, -0.0]), np.array([0.0, 0.0, -1.0])]
    else:
        arrays = [np.array([1.0, -1.0, 1.5, 0.0] if name != "acosh" else [1.0, 0.5, 2.0])]
    with np.errstate(all="ignore"):
        compare_with_torch(tg_fn(name), torch_fn(name), *arrays, order=1)


# ---------------------------------------------------------------- compiled and exported


def _step(name):
    def step(*xs):
        out = tg_fn(name)(*xs)
        (out * out).sum().backward()
        # (copysign's second operand gets no gradient: its sign bit is not differentiable)
        return (out,) + tuple(x.grad for x in xs if x.grad is not None)

    return step


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_compiled_matches_eager(name, dtype, backend, tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    # forward and backward on the domain
    arrays = [a.astype(dtype) for a in _domain_operands(name, (5, 7), seed=1)]
    step = _step(name)
    compiled = tg.compile(step, backend=backend)
    for _ in range(3):  # (the first call traces, the later ones run the compiled program)
        got = [o.numpy() for o in compiled(*[tg.tensor(a, requires_grad=True)
                                             for a in arrays])]
    want = [o.numpy() for o in step(*[tg.tensor(a, requires_grad=True) for a in arrays])]
    # (float32: libm's exp, log, tan... in C against NumPy's, within an ulp or two each,
    # and a composite such as logaddexp2 chains several)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)
    # forward at the edge values (inf, nan, signed zeros)
    edges = _edge_operands(name, dtype)
    fwd = tg.compile(lambda *xs: tg_fn(name)(*xs) * 1.0, backend=backend)
    with np.errstate(all="ignore"):
        for _ in range(2):
            got = fwd(*map(tg.tensor, edges)).numpy()
        want = tg_fn(name)(*map(tg.tensor, edges)).numpy()
    np.testing.assert_allclose(got, want, rtol=tol, atol=0)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("name", sorted(DOMAINS) + ["signbit", "heaviside"])
def test_onnx_export_matches_eager(name):
    if name in ("signbit", "heaviside"):
        operands = [np.array([-2.0, -0.0, 0.0, 3.0, -INF, INF, NAN], np.float32)]
        if name == "heaviside":
            operands.append(np.array([0.5], np.float32))
    else:
        edges = _edge_operands(name, np.float32)
        domain = [a.astype(np.float32) for a in _domain_operands(name, (40,))]
        operands = [np.concatenate([e, d]) for e, d in zip(edges, domain)]
    buf = io.BytesIO()
    with np.errstate(all="ignore"):
        tg.onnx.export(lambda *xs: tg_fn(name)(*xs), tuple(map(tg.tensor, operands)), buf)
        want = tg_fn(name)(*map(tg.tensor, operands)).numpy()
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {f"input{k}": a for k, a in enumerate(operands)})
    assert got.dtype == want.dtype
    if want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want)
        return
    finite = np.isfinite(want)
    np.testing.assert_array_equal(got[~finite], want[~finite])
    # erfc exports as 1 - erf: absolute, not relative, accuracy in its tail
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-5, atol=1e-6)


@needs_c
@pytest.mark.parametrize("name", ["tan", "asin", "acos", "atan", "asinh", "acosh", "atanh",
                                  "erfc", "atan2", "xlogy"])
def test_c_kernels_hold_the_new_primitives(name, tmp_path, monkeypatch):
    # each one is a line of the C lowering table, so it fuses into a C loop
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    n = 2 if name in BINARY else 1
    f = tg.compile(lambda *xs: tg_fn(name)(*xs) * 2.0, backend="c")
    args = [tg.tensor(np.full((5, 7), 0.5 if name != "acosh" else 1.5, np.float32))] * n
    for _ in range(2):
        got = f(*args)
    np.testing.assert_allclose(got.numpy(), (tg_fn(name)(*args) * 2.0).numpy(), rtol=1e-6)
    assert f"/* t0 = {name} %0" in f.source()
