"""Elementwise primitives: unary math, binary arithmetic, comparisons, where, cast.

Binary primitives take operands of one dtype (the tensor layer promotes first, by PyTorch's
rules) and broadcast like NumPy; their gradients are summed back to each operand's shape here,
once, so the rules in the tables stay one line each.
"""

from __future__ import annotations

import math

import numpy as np

from .base import PRIMITIVES, broadcast_shapes, register, sum_to_shape

# ---------------------------------------------------------------- forward helpers


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp(-logaddexp(0, -x)) is 1/(1+exp(-x)) without overflow at large |x|.
    return np.exp(-np.logaddexp(0, -x))


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


try:  # SciPy's erf is fast and exact; NumPy has none.
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover - exercised only without SciPy
    _erf_vec = np.vectorize(math.erf, otypes=[np.float64])

    def _erf(x: np.ndarray) -> np.ndarray:
        return _erf_vec(x).astype(x.dtype, copy=False)


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


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

# name, forward, infer, vjp(g, out, x) -> (dx,)
UNARY = [
    ("neg", np.negative, _same_infer, lambda g, out, x: (-g,)),
    ("exp", np.exp, None, lambda g, out, x: (g * out,)),
    ("log", np.log, None, lambda g, out, x: (g / x,)),
    ("sqrt", np.sqrt, None, lambda g, out, x: (g / (out * 2),)),
    ("tanh", np.tanh, None, lambda g, out, x: (g * (1 - out * out),)),
    ("sin", np.sin, None, lambda g, out, x: (g * x.cos(),)),
    ("cos", np.cos, None, lambda g, out, x: (-(g * x.sin()),)),
    ("sigmoid", _sigmoid, None, lambda g, out, x: (g * out * (1 - out),)),
    # log(1 + exp(x)) in one stable NumPy call; the base of BCE-with-logits and log-sigmoid
    ("softplus", lambda x: np.logaddexp(0, x), None, lambda g, out, x: (g * x.sigmoid(),)),
    ("erf", _erf, None, lambda g, out, x: (g * (-(x * x)).exp() * _TWO_OVER_SQRT_PI,)),
    # (a mask product, not `where`: np.where is several times slower on random masks)
    ("relu", _relu, _same_infer, lambda g, out, x: (g * (out > 0),)),
    ("sign", np.sign, _same_infer, None),
    # rounding has no useful gradient (it is zero almost everywhere): no VJP, as comparisons
    ("floor", np.floor, _same_infer, None),
    ("ceil", np.ceil, _same_infer, None),
    ("round", np.round, _same_infer, None),
]


def _pow_exponent_grad(g, out, a, b):
    # d/db a**b = a**b * log(a); where a == 0 the limit (for b > 0) is 0, as in PyTorch.
    return g * (a == 0)._select(0, out * a.log())


def _maximum_grad(g, out, a, b):
    # Ties split the gradient evenly, as PyTorch does.
    return (a > b)._select(g, (a == b)._select(g * 0.5, 0))


# name, forward, d/da and d/db as functions of (g, out, a, b), before summing back to the
# operand shapes; a rule runs only for an operand that requires grad.
BINARY = [
    ("add", np.add, lambda g, out, a, b: g, lambda g, out, a, b: g),
    ("sub", np.subtract, lambda g, out, a, b: g, lambda g, out, a, b: -g),
    ("mul", np.multiply, lambda g, out, a, b: g * b, lambda g, out, a, b: g * a),
    ("div", np.true_divide, lambda g, out, a, b: g / b, lambda g, out, a, b: -(g * out) / b),
    ("pow", np.power, lambda g, out, a, b: g * b * a ** (b - 1), _pow_exponent_grad),
    ("maximum", np.maximum, _maximum_grad, lambda g, out, a, b: _maximum_grad(g, out, b, a)),
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
            if da.data.shape != a.data.shape:
                da = sum_to_shape(da, a.shape)
        if b.requires_grad:
            db = grad_b(g, out, a, b)
            if db.data.shape != b.data.shape:
                db = sum_to_shape(db, b.shape)
        return da, db

    rule.per_input = (grad_a, grad_b)  # what the backward learns from them: see rule_facts
    return rule


for _name, _fwd, _infer, _vjp in UNARY:
    register(_name, "elementwise", _fwd, _infer or _unary_float_infer(_name), _vjp)

for _name, _fwd, _da, _db in BINARY:
    register(_name, "elementwise", _fwd, _binary_infer(_name), _binary_vjp(_da, _db))

PRIMITIVES["add"].passes_gradient = True  # d(a + b)/da = d(a + b)/db = 1

for _name, _fwd in COMPARE:
    register(_name, "elementwise", _fwd, _binary_infer(_name, np.dtype(bool)), None)


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


register("where", "elementwise", np.where, _where_infer, _where_vjp)


def _cast_forward(x, *, dtype):
    return x.astype(dtype)


def _cast_infer(x, *, dtype):
    return tuple(x.shape), np.dtype(dtype)


def _cast_vjp(g, out, x, *, dtype):
    return (g.to(x.dtype),) if x.dtype.kind == "f" else (None,)


register("cast", "elementwise", _cast_forward, _cast_infer, _cast_vjp)



# ---------------------------------------------------------------- random numbers
# A primitive with no inputs, so a compiled program draws fresh numbers on every run.


def _rand_forward(*, shape, dtype, dist, low=0, high=1):
    from ..rng import generator

    g = generator()
    if dist == "integers":  # in [low, high)
        draw = g.integers(low, high, size=shape)
    else:
        draw = g.random(shape) if dist == "uniform" else g.standard_normal(shape)
    return draw.astype(dtype, copy=False)


def _rand_infer(*, shape, dtype, dist, low=0, high=1):
    if dist not in ("uniform", "normal", "integers"):
        raise ValueError(f"rand: dist must be 'uniform', 'normal' or 'integers', got {dist!r}")
    if dist == "integers" and not low < high:
        raise ValueError(f"randint: the range [{low}, {high}) is empty; give low < high")
    return tuple(shape), np.dtype(dtype)


register("rand", "random", _rand_forward, _rand_infer, None)
