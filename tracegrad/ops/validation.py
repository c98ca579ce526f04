"""``check``: a test of an operand's values that raises the error eager code raises.

Code that validates values (class labels in range, probabilities in [0, 1], a finite norm)
must validate every call's values. Reading ``t._data`` in Python checks only the values at
hand, which in a compiled function are those of the call that traced it: later calls would
skip the test and return a number where eager code raises. ``check`` is the test as an op of
the graph instead: its result is its operand, unchanged (the same memory), and computing it
runs the test, on each call's values. Code uses the result in place of the operand
(`tracegrad.arguments.checked`); a check whose result nothing reads is kept all the same (the
"raises" fact), since eager code raises whether or not it goes on to use the values.

A test is named by ``test`` (a function of `TESTS`) with arguments ``args``; when the values
fail it, the test returns the fields that ``message`` (a ``str.format`` template) is filled
with, and ``error`` (a name of `ERRORS`) is raised. The gradient and the tangent pass
through unchanged.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import ValueRangeError
from .base import register


def _in_range(x: np.ndarray, low: int, high: int, ignore: Any = None) -> dict | None:
    """Integers in [low, high), except those equal to ``ignore``; fields lo and hi: the least
    and largest value tested, bad: one outside."""
    if not x.size:
        return None
    lo, hi = x.min(), x.max()
    if low <= lo and hi < high:
        return None
    if ignore is not None:
        x = x[x != ignore]
        if not x.size:
            return None
        lo, hi = x.min(), x.max()
        if low <= lo and hi < high:
            return None
    return {"lo": lo, "hi": hi, "bad": lo if lo < low else hi}


def _in_interval(x: np.ndarray, low: float, high: float) -> dict | None:
    """Numbers in [low, high] (nan is not); fields lo and hi: the least and largest value."""
    if not x.size or ((x >= low) & (x <= high)).all():
        return None
    return {"lo": np.nanmin(x) if not np.isnan(x).all() else np.nan,
            "hi": np.nanmax(x) if not np.isnan(x).all() else np.nan}


def _not_below(x: np.ndarray, low: float) -> dict | None:
    """No number below ``low`` (nan passes); field least: the least."""
    if not (x < low).any():
        return None
    return {"least": x.min()}


def _nonzero(x: np.ndarray) -> dict | None:
    """No zero (an integer divisor); no fields."""
    return {} if (x == 0).any() else None


def _finite(x: np.ndarray) -> dict | None:
    """Every number finite; field value: the value, for a single number (else "")."""
    if np.isfinite(x).all():
        return None
    return {"value": x.item() if x.size == 1 else ""}


def _weights(x: np.ndarray, least: int) -> dict | None:
    """Rows (the last axis) of finite, non-negative weights, each with at least ``least``
    positive ones; field problem: what is wrong."""
    if (x < 0).any() or not np.isfinite(x).all():
        return {"problem": "weights must be finite and non-negative"}
    positive = (x > 0).sum(-1)
    if (positive == 0).any():
        return {"problem": "a row of weights sums to zero"}
    if (positive < least).any():
        return {"problem": f"cannot draw {least} samples without replacement from "
                           f"{int(positive.min())} categories with nonzero weight"}
    return None


TESTS: dict[str, Callable[..., dict | None]] = {
    "in_range": _in_range,
    "in_interval": _in_interval,
    "not_below": _not_below,
    "nonzero": _nonzero,
    "finite": _finite,
    "weights": _weights,
}

ERRORS: dict[str, type] = {
    "IndexError": IndexError,
    "ValueError": ValueError,
    "ValueRangeError": ValueRangeError,
    "RuntimeError": RuntimeError,
    "ZeroDivisionError": ZeroDivisionError,
    "NotImplementedError": NotImplementedError,
}


def run_check(x: np.ndarray, *, test: str, args: tuple, error: str, message: str) -> np.ndarray:
    """``x``, after raising ``error`` if its values fail ``test``."""
    failed = TESTS[test](x, *args)
    if failed is not None:
        raise ERRORS[error](message.format(**failed))
    return x


def _check_infer(x: Any, *, test: str, args: tuple, error: str, message: str) -> tuple:
    if test not in TESTS or error not in ERRORS:
        raise ValueError(f"check: unknown test {test!r} or error {error!r}; the tests are "
                         f"{sorted(TESTS)}, the errors {sorted(ERRORS)}")
    return tuple(x.shape), x.dtype


register("check", "check", run_check, _check_infer,
         lambda g, out, x, **attrs: (g,),
         jvp=lambda tangents, out, x, **attrs: tangents[0],
         facts="view passes_gradient raises")
