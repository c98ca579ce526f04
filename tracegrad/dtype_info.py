"""PyTorch's questions about dtypes: ``tg.finfo``, ``tg.iinfo``, ``tg.promote_types``,
``tg.result_type``, ``tg.can_cast``, ``tg.is_complex``.

The answers come from NumPy (the dtypes are NumPy's) and the promotion rules of dtypes.py,
so they agree with what tracegrad's ops actually do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import dtypes


class _Info:
    """Numbers describing a dtype, printed as PyTorch prints them."""

    _fields: tuple = ()

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError(f"{type(self).__name__} is read-only")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        body = ", ".join(f"{f}={getattr(self, f):.6g}" if f != "dtype" else f"dtype={self.dtype}"
                         for f in self._fields)
        return f"{type(self).__name__}({body})"

    def __eq__(self, other: Any) -> bool:
        return type(other) is type(self) and other.dtype == self.dtype

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.dtype))


class finfo(_Info):
    """The limits of a float dtype, as ``torch.finfo``: ``bits``, ``eps``, ``max``, ``min``,
    ``tiny`` (= ``smallest_normal``), ``resolution``; ``dtype`` is its name, as there.
    Without an argument, the default float dtype.

    >>> tg.finfo(tg.float32).eps
    1.1920928955078125e-07
    """

    _fields = ("resolution", "min", "max", "eps", "smallest_normal", "tiny", "dtype")

    def __init__(self, type: Any = None) -> None:
        dt = dtypes.get_default_dtype() if type is None else _dtype_of(type, "finfo")
        if dt.kind != "f":
            raise TypeError(f"finfo: {dt} is not a floating point dtype; use tg.iinfo for "
                            f"integers")
        info = np.finfo(dt)
        self.bits, self.eps = int(info.bits), float(info.eps)
        self.max, self.min = float(info.max), float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution = 10.0 ** -int(info.precision)  # (exactly 1e-6, as PyTorch)
        self.dtype = dt.name
        self._frozen = True


class iinfo(_Info):
    """The limits of an integer (or bool) dtype, as ``torch.iinfo``: ``bits``, ``max``,
    ``min``; ``dtype`` is its name.

    >>> tg.iinfo(tg.int8).min
    -128
    """

    _fields = ("min", "max", "dtype")

    def __init__(self, type: Any) -> None:
        dt = _dtype_of(type, "iinfo")
        if dt.kind not in "iub":
            raise TypeError(f"iinfo: {dt} is not an integer dtype; use tg.finfo for floats")
        if dt.kind == "b":
            self.bits, self.min, self.max = 8, 0, 1
        else:
            info = np.iinfo(dt)
            self.bits, self.min, self.max = int(info.bits), int(info.min), int(info.max)
        self.dtype = dt.name if dt.kind != "b" else "bool"
        self._frozen = True

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"


def _dtype_of(value: Any, op: str) -> np.dtype:
    try:
        return dtypes.to_dtype(value)
    except TypeError as e:
        raise TypeError(f"{op}: {e}") from None


def promote_types(type1: Any, type2: Any) -> np.dtype:
    """The smallest dtype both cast to safely, as ``torch.promote_types`` (float32 with
    int64 is float32).

    >>> tg.promote_types(tg.uint8, tg.int8)
    dtype('int16')
    """
    return dtypes.promote(_dtype_of(type1, "promote_types"), _dtype_of(type2, "promote_types"))


def _operand_dtype(x: Any) -> tuple:
    """(dtype, rank): 0 for a 0-d tensor, 1 for a dimensioned one, -1 for a number."""
    if hasattr(x, "dtype") and hasattr(x, "shape") and not isinstance(x, np.generic):
        return np.dtype(x.dtype), int(len(x.shape) > 0)
    try:
        return dtypes.scalar_dtype(x), -1
    except TypeError:
        raise TypeError(f"result_type: expects tensors or numbers, got "
                        f"{type(x).__name__}") from None


def result_type(tensor1: Any, tensor2: Any) -> np.dtype:
    """The dtype ``tensor1 op tensor2`` would have, as ``torch.result_type``: numbers and
    0-d tensors cannot widen a dimensioned tensor of the same kind.

    >>> tg.result_type(tg.tensor([1, 2]), 1.0)
    dtype('float32')
    """
    (da, ra), (db, rb) = _operand_dtype(tensor1), _operand_dtype(tensor2)
    if ra != rb and dtypes.kind_rank(da if ra < rb else db) <= dtypes.kind_rank(
            db if ra < rb else da):
        return db if ra < rb else da
    return dtypes.promote(da, db)


def can_cast(from_: Any, to: Any) -> bool:
    """Whether PyTorch's type promotion allows casting ``from_`` to ``to``: never to a lower
    kind (float to int, int to bool), any width within a kind.

    >>> tg.can_cast(tg.float64, tg.int32)
    False
    """
    return dtypes.can_cast(_dtype_of(from_, "can_cast"), _dtype_of(to, "can_cast"))


def is_complex(input: Any) -> bool:
    """False: tracegrad has no complex dtypes (``torch.is_complex``)."""
    if not (hasattr(input, "dtype") and hasattr(input, "shape")):
        raise TypeError(f"is_complex: expects a tensor, got {type(input).__name__}")
    return np.dtype(input.dtype).kind == "c"
