"""dtypes are NumPy dtypes; promotion follows PyTorch. Imports nothing of ours.

``tg.float32 == np.float32`` holds. The rules that differ from NumPy's:

- Python floats make float32 tensors (NumPy: float64); Python ints make int64.
- A tensor combined with a Python number keeps the tensor's dtype, unless the number is of a
  higher kind (a float with an int tensor gives float32, the default float).
- Across kinds the higher kind wins and keeps its own width: float32 with int64 is float32
  (NumPy: float64). Within a kind the wider wins.
"""

from __future__ import annotations

import math
from typing import Any, NoReturn

import numpy as np

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
float16 = np.dtype(np.float16)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)

default_float = float32
default_int = int64

_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}
SUPPORTED = (float16, float32, float64, int8, uint8, int16, int32, int64, bool_)


def set_default_dtype(dtype: Any) -> None:
    """Make ``dtype`` (float16, float32 or float64) the dtype of tensors made from Python
    floats and of new layers' parameters, as ``torch.set_default_dtype``. Process-wide, as
    there; a compiled function traced under another default traces again."""
    global default_float
    dt = to_dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"set_default_dtype: only a floating point dtype can be the default "
                        f"(float16, float32, float64), got {dt}")
    default_float = dt


def get_default_dtype() -> np.dtype:
    """The default floating point dtype (float32 unless `set_default_dtype` changed it)."""
    return default_float


def kind_rank(dtype: np.dtype) -> int:
    try:
        return _KIND_RANK[dtype.kind]
    except KeyError:
        raise TypeError(
            f"dtype {dtype} is not supported; tracegrad handles bool, integer and float dtypes"
        ) from None


def is_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f"


def promote(a: np.dtype, b: np.dtype) -> np.dtype:
    """The dtype of ``a op b`` for two tensors, as PyTorch chooses it."""
    if a is b or a == b:
        return a
    ra, rb = kind_rank(a), kind_rank(b)
    if ra != rb:
        return a if ra > rb else b
    return np.promote_types(a, b)


def can_cast(from_: np.dtype, to: np.dtype) -> bool:
    """PyTorch's ``canCast``: any width within a kind (float64 to float32), never to a lower
    kind (a float to an int, an int to a bool). Whether an in-place op may store a result of
    dtype ``from_`` in a tensor of dtype ``to``; ``tg.can_cast``."""
    return kind_rank(from_) <= kind_rank(to)


def result_dtype(a: np.dtype, a_ndim: int, b: np.dtype, b_ndim: int) -> np.dtype:
    """The dtype of ``a op b`` for two operands with these dtypes and numbers of dimensions:
    `promote`, with PyTorch's rule that a 0-d operand acts like a number (it cannot widen a
    dimensioned operand of the same kind: float32[3] * float64[] is float32). The one
    promotion rule of `Tensor` and `GradArray`."""
    if (a_ndim == 0) != (b_ndim == 0):
        dim_dt, zero_dt = (b, a) if a_ndim == 0 else (a, b)
        if kind_rank(zero_dt) <= kind_rank(dim_dt):
            return dim_dt
    return promote(a, b)


def scalar_dtype(value: Any) -> np.dtype:
    """The dtype a Python number would have as a tensor of its own."""
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, (int, np.integer)):
        return default_int
    if isinstance(value, (float, np.floating)):
        return default_float
    not_an_operand(value, f"expected a number, got {type(value).__name__}")


def not_an_operand(value: Any, message: str) -> NoReturn:
    """Raise ``TypeError(message)`` for a value tracegrad cannot take as a number or tensor,
    unless the value carries its own error: what a traced ``t.item()`` stands for cannot be
    read while tracing, which is a ``TraceError`` (``value.__tg_operand_error__()``)."""
    own = getattr(type(value), "__tg_operand_error__", None)
    if own is not None:
        raise own(value)
    raise TypeError(message)


def sign_bit(value: Any) -> bool:
    """Whether a number's sign bit is set: tells -0.0 from 0.0 (equal, with equal hashes),
    for caches keyed by value."""
    return value < 0 or (value == 0 and math.copysign(1.0, value) < 0)


def promote_with_scalar(tensor_dtype: np.dtype, value: Any) -> np.dtype:
    """The dtype of ``tensor op number``: the tensor's unless the number is of a higher kind."""
    sd = scalar_dtype(value)
    if kind_rank(sd) > kind_rank(tensor_dtype):
        return sd
    return tensor_dtype


def to_dtype(dtype: Any) -> np.dtype:
    """Accepts tg/NumPy dtypes, their names (``"float32"``) and Python's float/int/bool."""
    if dtype is float:
        return default_float
    if dtype is int:
        return default_int
    if dtype is bool:
        return bool_
    try:
        d = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{dtype!r} is not a dtype; use e.g. tg.float32 or tg.int64") from None
    if d not in SUPPORTED:
        raise TypeError(
            f"dtype {d} is not supported; use one of "
            + ", ".join(str(s) for s in SUPPORTED)
        )
    return d


def short_name(dtype: np.dtype) -> str:
    """``f32``, ``i64``, ``bool``: the names the IR printer uses."""
    if dtype == bool_:
        return "bool"
    return {"f": "f", "i": "i", "u": "u"}[dtype.kind] + str(dtype.itemsize * 8)
