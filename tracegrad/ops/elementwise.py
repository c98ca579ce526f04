"""Elementwise primitives: unary math, binary arithmetic, comparisons, where, cast.

Binary primitives take operands of one dtype (the tensor layer promotes first, by PyTorch's
rules) and broadcast like NumPy; their gradients are summed back to each operand's shape here,
once, so the rules in the tables stay one line each.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .base import broadcast_shapes, register, sum_to_shape

# ---------------------------------------------------------------- forward helpers


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp(-logaddexp(0, -x)) is 1/(1+exp(-x)) without overflow at large |x|.
    return np.exp(-np.logaddexp(0, -x))


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def erf_ufunc() -> Any:
    """erf shaped like a ufunc, ``erf(x, out=None)`` (float32 by `_erf_float32`, other
    dtypes by SciPy's exact erf ufunc), or None without SciPy. SciPy is imported at the
    first erf, not with tracegrad: its ``special`` takes longer to import than all of
    tracegrad."""
    global _ERF
    if _ERF is False:
        try:
            from scipy.special import erf
        except ImportError:  # pragma: no cover - exercised only without SciPy
            erf = None
        _ERF = erf
    return None if _ERF is None else _erf_into


_ERF: Any = False  # SciPy's erf ufunc; False: not looked up yet
_erf_vec = np.vectorize(math.erf, otypes=[np.float64])


def _erf_into(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if x.dtype == np.float32:
        return _erf_float32(x, out)
    return _ERF(x, out=out)


def _erfc(x: np.ndarray) -> np.ndarray:
    # 1 - erf(x) is 0 in float32 from x = 4 on, where erfc is still 1.5e-8 (PyTorch's
    # erfc keeps those digits), so erfc is its own function: SciPy's, imported here for the
    # reason erf_ufunc gives.
    try:
        from scipy.special import erfc
    except ImportError:  # pragma: no cover - exercised only without SciPy
        return _erfc_vec(x).astype(x.dtype, copy=False)
    return erfc(x)


_erfc_vec = np.vectorize(math.erfc, otypes=[np.float64])


def _erf(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.float32:
        return _erf_float32(x)
    if erf_ufunc() is None:  # pragma: no cover - exercised only without SciPy
        return _erf_vec(x).astype(x.dtype, copy=False)
    return _ERF(x)


# erf in float32 as Eigen (and so PyTorch's vectorized CPU kernel) computes it: x * P(x^2) /
# Q(x^2) on x clamped to [-4, 4] (beyond, erf rounds to +-1 in float32), within 8 ulp of the
# exact value. A dozen NumPy passes, most in place: several times faster than SciPy's
# scalar loop, which made erf (GELU's core) the slowest op of a GPT's training step.
ERF32_P = np.array([-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
                     -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
                     -1.60960333262415e-02], dtype=np.float32)
ERF32_Q = np.array([-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
                     -7.37332916720468e-03, -1.42647390514189e-02], dtype=np.float32)


def _horner(x2: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    acc = x2 * coefficients[0]
    acc += coefficients[1]
    for c in coefficients[2:]:
        acc *= x2
        acc += c
    return acc


def _erf_float32(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if x.ndim == 0:  # (NumPy returns scalars for 0-d operands, and `out=` needs an array)
        return _erf_float32(x.reshape(1), None if out is None else out.reshape(1)).reshape(())
    x = np.clip(x, np.float32(-4.0), np.float32(4.0))
    x2 = x * x
    p = _horner(x2, ERF32_P)
    p *= x
    return np.divide(p, _horner(x2, ERF32_Q), out=p if out is None else out)


_LOG_TWO_OVER_SQRT_PI = math.log(2.0 / math.sqrt(math.pi))

# GELU(x) = x * Phi(x), Phi the standard normal CDF: 0.5 (1 + erf(x / sqrt 2)), or its tanh
# approximation 0.5 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Phi is the primitive (F.gelu
# multiplies by x): its derivative is a short function of Phi's own value, so the backward
# computes no second tanh (a GELU primitive would have to: its output does not give tanh's
# back), and GELU's backward is ten operations per element where the chain rule through x^3
# and tanh took sixteen.
INV_SQRT_2 = 1 / math.sqrt(2.0)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_KAPPA = 0.044715
_LOG_INV_SQRT_2PI = -0.5 * math.log(2 * math.pi)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    # (the operations of the composite F.gelu was before, in its order: x times this gives
    # its values bit for bit, barring overflow in x (1 + erf))
    return (_erf(x * INV_SQRT_2) + 1) * 0.5


def _normal_cdf_tanh(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # (x^3 beyond the float range: tanh is 1 there)
        return (np.tanh((x + x * x * x * GELU_KAPPA) * SQRT_2_OVER_PI) + 1) * 0.5


# ---------------------------------------------------------------- shape/dtype rules


def _unary_float_infer(name: str):
    def infer(x):
        if x.dtype.kind != "f":
            raise TypeError(f"{name}: expects a float tensor, got {x.dtype}; cast it with .float()")
        return tuple(x.shape), x.dtype

    return infer


def _same_infer(x):
    return tuple(x.shape), x.dtype


def _binary_infer(name: str, out_dtype=None):
    def infer(a, b):
        dtype = a.dtype
        if a.dtype != b.dtype:
            # One exception: `mul` by a bool mask (the compiler's simplify writes x * mask
            # without a cast; NumPy multiplies a float by a bool directly).
            if name == "mul" and b.dtype == np.bool_ and a.dtype.kind == "f":
                dtype = a.dtype
            else:
                raise TypeError(
                    f"{name}: operands have dtypes {a.dtype} and {b.dtype}; cast one")
        shape = broadcast_shapes(name, tuple(a.shape), tuple(b.shape))
        return shape, (out_dtype if out_dtype is not None else dtype)

    return infer


# ---------------------------------------------------------------- the tables

# The facts (ops.base.FACTS) of elementwise math that a fused kernel may hold and that a
# backend may compute over its operand when that dies there.
KERNEL = "fusible overwrites"

# name, forward, vjp(g, out, x) -> (dx,), what the VJP reads besides g, facts.
# A float op ("float") checks its operand is a float; the others keep its dtype.
UNARY = [
    ("neg", np.negative, lambda g, out, x: (-g,), "",
     KERNEL + " ufunc arithmetic into_g"),
    ("exp", np.exp, lambda g, out, x: (g * out,), "out",
     KERNEL + " ufunc float method arithmetic into_g"),
    ("log", np.log, lambda g, out, x: (g / x,), "x",
     KERNEL + " ufunc float method arithmetic into_g"),
    ("sqrt", np.sqrt, lambda g, out, x: (g / (out * 2),), "out",
     KERNEL + " ufunc float method arithmetic into_g"),
    ("tanh", np.tanh, lambda g, out, x: (g * (1 - out * out),), "out",
     KERNEL + " ufunc float method arithmetic into_g"),
    ("sin", np.sin, lambda g, out, x: (g * x.cos(),), "x",
     KERNEL + " ufunc float method"),
    ("cos", np.cos, lambda g, out, x: (-(g * x.sin()),), "x",
     KERNEL + " ufunc float method"),
    # tan' = 1 + tan^2; the inverse functions' derivatives are powers of 1 -+ x^2 (at the
    # ends of a domain, such as asin at +-1, they are inf, as in PyTorch)
    ("tan", np.tan, lambda g, out, x: (g * (1 + out * out),), "out",
     KERNEL + " ufunc float method arithmetic into_g"),
    ("asin", np.arcsin, lambda g, out, x: (g * (1 - x * x) ** -0.5,), "x",
     KERNEL + " ufunc float method arithmetic into_g"),
    ("acos", np.arccos, lambda g, out, x: (-g * (1 - x * x) ** -0.5,), "x",
     KERNEL + " ufunc float method arithmetic into_g"),
    ("atan", np.arctan, lambda g, out, x: (g / (1 + x * x),), "x",
     KERNEL + " ufunc float method arithmetic into_g"),
    ("asinh", np.arcsinh, lambda g, out, x: (g * (x * x + 1) ** -0.5,), "x",
     KERNEL + " ufunc float method arithmetic into_g"),
    ("acosh", np.arccosh, lambda g, out, x: (g * (x * x - 1) ** -0.5,), "x",
     KERNEL + " ufunc float method arithmetic into_g"),
    ("atanh", np.arctanh, lambda g, out, x: (g / (1 - x * x),), "x",
     KERNEL + " ufunc float method arithmetic into_g"),
    # (g is not alone on the left of the last product: g * out, then * (1 - out))
    ("sigmoid", _sigmoid, lambda g, out, x: (g * out * (1 - out),), "out",
     "fusible float method arithmetic"),
    # log(1 + exp(x)) in one stable NumPy call; the base of BCE-with-logits and log-sigmoid
    ("softplus", lambda x: np.logaddexp(0, x), lambda g, out, x: (g * x.sigmoid(),), "x",
     KERNEL + " float method"),
    # (2/sqrt(pi) * exp(-x^2) as exp(log(2/sqrt(pi)) - x^2): one pass fewer over x)
    ("erf", _erf, lambda g, out, x: (g * (_LOG_TWO_OVER_SQRT_PI - x * x).exp(),), "x",
     KERNEL + " float method"),
    ("erfc", _erfc, lambda g, out, x: (-(g * (_LOG_TWO_OVER_SQRT_PI - x * x).exp()),), "x",
     KERNEL + " float method"),
    # Phi(x) and its tanh approximation u (GELU's gate, see above): exp(-x^2/2) / sqrt(2 pi),
    # and u' = s (1 + 3 k x^2) (1 - t^2) / 2 with t = 2u - 1, so (1 - t^2) / 2 = 2 u (1 - u)
    ("normal_cdf", _normal_cdf,
     lambda g, out, x: (g * (_LOG_INV_SQRT_2PI - x * x * 0.5).exp(),), "x",
     KERNEL + " float"),
    ("normal_cdf_tanh", _normal_cdf_tanh,
     lambda g, out, x: (g * (out * (1 - out) * (x * x * (6 * GELU_KAPPA * SQRT_2_OVER_PI)
                                                + 2 * SQRT_2_OVER_PI)),), "out x",
     KERNEL + " float arithmetic into_g"),
    # (a mask product, not `where`: np.where is several times slower on random masks)
    ("relu", _relu, lambda g, out, x: (g * (out > 0),), "out",
     KERNEL + " method arithmetic into_g"),
    ("sign", np.sign, None, "", KERNEL + " ufunc method"),
    # (np.abs clears the sign bit: abs(-0.0) is +0.0, as in PyTorch; x * sign(x) kept it)
    ("abs", np.abs, lambda g, out, x: (g * x.sign(),), "x", KERNEL + " ufunc"),
    # rounding has no useful gradient (it is zero almost everywhere): no VJP, as comparisons
    ("floor", np.floor, None, "", "method"),
    ("ceil", np.ceil, None, "", "method"),
    ("round", np.round, None, "", "method"),
]


def _pow_exponent_grad(g, out, a, b):
    # d/db a**b = a**b * log(a); where a == 0 and b >= 0 the limit is 0, as in PyTorch
    # (for b < 0 it is inf * -inf, -inf, as there).
    d = out * a.log()
    return g * (a == 0)._select((b >= 0)._select(0, d), d)


def _xlogy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # a log(b), and 0 where a is 0 unless b is nan (an entropy's p log p at p = 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((a == 0) & (b == b), 0, a * np.log(b))


def _xlogy_grad_a(g, out, a, b):
    # log(b), but 0 where a is 0 and b <= 0 (PyTorch's rule: log(0) would make it -inf)
    d = g * b.log()
    return (a == 0)._select((b <= 0)._select(0, d), d)


def _inverse_square_radius(a, b):
    # 1 / (a^2 + b^2), and 0 where that is 0 (at the origin, or where it underflows): atan2
    # has no derivative there, and PyTorch's gradient is 0
    r2 = a * a + b * b
    return (r2 == 0)._select(0, 1 / r2)


def _maximum_grad(g, out, a, b):
    # Ties split the gradient evenly, as PyTorch does; a nan on either side sends it whole to
    # both (PyTorch's rule: zero only where the operand is the smaller one).
    return (a < b)._select(0, (a == b)._select(g * 0.5, g))


# name, forward, facts, then for each operand: its gradient as a function of (g, out, a, b)
# before summing back to the operand's shape, what that reads besides g, and whether it is
# plain arithmetic (FACTS["arithmetic"]). A gradient runs only for an operand that requires
# grad.
BINARY = [
    ("add", np.add, KERNEL + " ufunc passes_gradient",
     (lambda g, out, a, b: g, "", False),
     (lambda g, out, a, b: g, "", False)),  # (g itself, no new memory: not "arithmetic")
    ("sub", np.subtract, KERNEL + " ufunc",
     (lambda g, out, a, b: g, "", False),
     (lambda g, out, a, b: -g, "", True)),
    ("mul", np.multiply, KERNEL + " ufunc",
     (lambda g, out, a, b: g * b, "b", True),
     (lambda g, out, a, b: g * a, "a", True)),
    ("div", np.true_divide, KERNEL + " ufunc float",
     (lambda g, out, a, b: g / b, "b", True),
     (lambda g, out, a, b: -(g * out) / b, "out b", True)),
    ("pow", np.power, KERNEL + " ufunc",
     # (b a^(b-1) is 0 where b is 0, also at a = 0 where a^-1 is inf: as PyTorch, not nan)
     (lambda g, out, a, b: g * b * a ** ((b - 1) * (b != 0)), "a b", True),
     (_pow_exponent_grad, "out a b", False)),
    # atan2(a, b), the angle of the point (b, a): d/da = b / r^2, d/db = -a / r^2
    ("atan2", np.arctan2, KERNEL + " ufunc float",
     (lambda g, out, a, b: g * b * _inverse_square_radius(a, b), "a b", False),
     (lambda g, out, a, b: g * -a * _inverse_square_radius(a, b), "a b", False)),
    ("xlogy", _xlogy, KERNEL + " float",
     (_xlogy_grad_a, "a b", False),
     (lambda g, out, a, b: g * a / b, "a b", True)),
    ("maximum", np.maximum, KERNEL + " ufunc",
     (_maximum_grad, "a b", False),
     (lambda g, out, a, b: _maximum_grad(g, out, b, a), "a b", False)),
]

# name, forward: comparisons give bool and have no gradient
COMPARE = [
    ("lt", np.less),
    ("le", np.less_equal),
    ("gt", np.greater),
    ("ge", np.greater_equal),
    ("eq", np.equal),
    ("ne", np.not_equal),
]


def _binary_vjp(grad_a, grad_b):
    def rule(g, out, a, b):
        da = db = None
        if a.requires_grad:
            da = grad_a(g, out, a, b)
            if da._data.shape != a._data.shape:
                da = sum_to_shape(da, a.shape)
        if b.requires_grad:
            db = grad_b(g, out, a, b)
            if db._data.shape != b._data.shape:
                db = sum_to_shape(db, b.shape)
        return da, db

    return rule


for _name, _fwd, _vjp, _reads, _facts in UNARY:
    register(_name, "elementwise", _fwd,
             _unary_float_infer(_name) if "float" in _facts.split() else _same_infer,
             _vjp, reads=_reads, facts=_facts)

for _name, _fwd, _facts, (_da, _ra, _aa), (_db, _rb, _ab) in BINARY:
    register(_name, "elementwise", _fwd, _binary_infer(_name), _binary_vjp(_da, _db),
             inputs="a b", reads={"a": _ra, "b": _rb}, per_input=(_da, _db),
             arithmetic=" ".join(n for n, yes in (("a", _aa), ("b", _ab)) if yes), facts=_facts)

for _name, _fwd in COMPARE:
    register(_name, "elementwise", _fwd, _binary_infer(_name, np.dtype(bool)), None,
             inputs="a b", facts="ufunc")

# Integer (and bool) bit operations: no gradient (their results are integers), as PyTorch.
# name, forward, whether bools are allowed (and, or, xor and not of bools are logical ones)
INTEGER = [
    ("bitwise_and", np.bitwise_and, True),
    ("bitwise_or", np.bitwise_or, True),
    ("bitwise_xor", np.bitwise_xor, True),
    ("bitwise_left_shift", np.left_shift, False),
    ("bitwise_right_shift", np.right_shift, False),
    ("gcd", np.gcd, False),
    ("lcm", np.lcm, False),
]


def _integer_infer(name: str, bools: bool):
    allowed = "biu" if bools else "iu"

    def infer(*xs):
        for x in xs:
            if x.dtype.kind not in allowed:
                raise TypeError(f"{name}: expects {'bool or ' if bools else ''}integer tensors, "
                                f"got {x.dtype}; cast with .long()")
        if len(xs) == 1:
            return tuple(xs[0].shape), xs[0].dtype
        return _binary_infer(name)(*xs)

    return infer


for _name, _fwd, _bools in INTEGER:
    register(_name, "elementwise", _fwd, _integer_infer(_name, _bools), None, inputs="a b",
             facts="ufunc")
register("bitwise_not", "elementwise", np.invert, _integer_infer("bitwise_not", True), None,
         facts="ufunc")

# The sign bit, as a bool: True for -0.0 and a negative nan too, which no comparison sees
# (copysign reads it). No gradient, as the comparisons.
register("signbit", "elementwise", np.signbit, lambda x: (tuple(x.shape), np.dtype(bool)),
         None, facts="ufunc")


# ---------------------------------------------------------------- special functions
# log-gamma, its derivatives (digamma, polygamma), erf's inverse, modified Bessel functions of
# order 0 and 1: SciPy's ufuncs, imported at first use (as erf's). Without SciPy lgamma and
# i0 still work (math.lgamma, np.i0); the others say what to install. Each derivative is
# another of them, so gradients of any order come from the same table.


def _scipy_special(fn: str, op: str, fallback: Any = None) -> Callable:
    def forward(x: np.ndarray, **attrs: Any) -> np.ndarray:
        try:
            from scipy import special
        except ImportError:  # pragma: no cover - exercised only without SciPy
            if fallback is None:
                raise ImportError(f"{op} needs SciPy (its special functions): "
                                  f"pip install scipy") from None
            return np.asarray(fallback(x, **attrs), dtype=x.dtype)
        out = getattr(special, fn)(*attrs.values(), x) if attrs else getattr(special, fn)(x)
        return np.asarray(out, dtype=x.dtype)

    forward.__name__ = op
    return forward


_lgamma_vec = np.vectorize(math.lgamma, otypes=[np.float64])
_SQRT_PI_OVER_2 = math.sqrt(math.pi) / 2


def _polygamma_forward(x: np.ndarray, *, n: int) -> np.ndarray:
    if n == 0:  # (SciPy's polygamma(0, x) is psi, slower and through float64)
        return _scipy_special("psi", "digamma")(x)
    return _scipy_special("polygamma", "polygamma")(x, n=n)


def _polygamma_infer(x, *, n):
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"polygamma: the order n must be a non-negative int, got {n!r}")
    return _unary_float_infer("polygamma")(x)


def _i1_grad(g, out, x):
    # i1' = i0 - i1 / x, which is 1/2 at 0
    at_zero = x == 0
    return (g * at_zero._select(0.5, x.i0() - out / at_zero._select(1, x)),)


# name, forward, vjp, reads, facts (as UNARY's)
SPECIAL = [
    ("lgamma", _scipy_special("gammaln", "lgamma", lambda x: _lgamma_vec(x)),
     lambda g, out, x: (g * x._polygamma(0),), "x", "float method"),
    ("digamma", _scipy_special("psi", "digamma"),
     lambda g, out, x: (g * x._polygamma(1),), "x", "float method"),
    # erfinv' = sqrt(pi)/2 exp(erfinv(x)^2)
    ("erfinv", _scipy_special("erfinv", "erfinv"),
     lambda g, out, x: (g * (out * out).exp() * _SQRT_PI_OVER_2,), "out", "float method"),
    ("i0", _scipy_special("i0", "i0", np.i0),
     lambda g, out, x: (g * x.i1(),), "x", "float method"),
    ("i1", _scipy_special("i1", "i1"), _i1_grad, "out x", "float method"),
]

for _name, _fwd, _vjp, _reads, _facts in SPECIAL:
    register(_name, "elementwise", _fwd, _unary_float_infer(_name), _vjp, reads=_reads,
             facts=_facts)
register("polygamma", "elementwise", _polygamma_forward, _polygamma_infer,
         lambda g, out, x, *, n: (g * x._polygamma(n + 1),), reads="x")


# ---------------------------------------------------------------- where, cast


def _where_infer(cond, a, b):
    if cond.dtype != np.bool_:
        raise TypeError(f"where: the condition must be a bool tensor, got {cond.dtype}")
    if a.dtype != b.dtype:
        raise TypeError(f"where: the two branches have dtypes {a.dtype} and {b.dtype}; cast one")
    return broadcast_shapes("where", tuple(cond.shape), tuple(a.shape), tuple(b.shape)), a.dtype


def _where_vjp(g, out, cond, a, b):
    return (
        None,
        sum_to_shape(cond._select(g, 0), tuple(a.shape)) if a.requires_grad else None,
        sum_to_shape(cond._select(0, g), tuple(b.shape)) if b.requires_grad else None,
    )


register("where", "elementwise", np.where, _where_infer, _where_vjp, inputs="cond a b",
         reads={"a": "cond", "b": "cond"}, linear=True)


def _cast_forward(x, *, dtype):
    return x.astype(dtype)


def _cast_infer(x, *, dtype):
    return tuple(x.shape), np.dtype(dtype)


def _cast_vjp(g, out, x, *, dtype):
    return (g.to(x.dtype),) if x.dtype.kind == "f" else (None,)


# (reads only x's dtype)
register("cast", "elementwise", _cast_forward, _cast_infer, _cast_vjp,
         facts="overwrites", linear=True)



# ---------------------------------------------------------------- random numbers
# Primitives that draw, so a compiled program draws fresh numbers on every run, from the
# generator (attribute ``generator``: a tg.Generator; left out for the global one) as eager
# code does (rng.numpy_rng: copies while tracing).


def _rand_forward(*, shape, dtype, dist, low=0, high=1, generator=None):
    from ..rng import numpy_rng

    g = numpy_rng(generator, "rand")
    if dist == "integers":  # in [low, high)
        return g.integers(low, high, size=shape).astype(dtype, copy=False)
    if dist == "normal":
        return g.standard_normal(shape).astype(dtype, copy=False)
    draw = g.random(shape)
    out = draw.astype(dtype, copy=False)
    if out is not draw:  # [0, 1) still: a float64 just below 1 rounds up to a float32 1.0
        np.minimum(out, np.nextafter(out.dtype.type(1), out.dtype.type(0)), out=out)
    return out


def _rand_infer(*, shape, dtype, dist, low=0, high=1, generator=None):
    if dist not in ("uniform", "normal", "integers"):
        raise ValueError(f"rand: dist must be 'uniform', 'normal' or 'integers', got {dist!r}")
    if dist == "integers" and not low < high:
        raise ValueError(f"randint: the range [{low}, {high}) is empty; give low < high")
    return tuple(shape), np.dtype(dtype)


register("rand", "random", _rand_forward, _rand_infer, None, inputs="", facts="random")


def _poisson_forward(rate, *, generator=None):
    from ..rng import numpy_rng

    if not (rate >= 0).all():  # (checked when it runs: in compiled code too)
        raise ValueError("poisson: invalid Poisson rate, expected rate to be non-negative")
    return numpy_rng(generator, "poisson").poisson(rate).astype(rate.dtype, copy=False)


def _poisson_infer(rate, *, generator=None):
    if rate.dtype.kind != "f":
        raise TypeError(f"poisson: expects a float tensor of rates, got {rate.dtype}")
    return tuple(rate.shape), rate.dtype


# (no gradient: PyTorch's is zero)
register("poisson", "random", _poisson_forward, _poisson_infer, None, inputs="rate",
         facts="random")
