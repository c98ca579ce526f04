"""Argument helpers: PyTorch's spellings of shapes, dims, indices and ``.to(...)``, in one form.

``reshape(2, 3)`` or ``reshape((2, 3))``, ``dim=``/``axis=``, NumPy-style indices with integer
tensors in them, ``.to(device, dtype)``: the Tensor methods and functional.py read their
arguments through these, so every op accepts the same forms.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from . import dtypes
from .ops.movement import SLOT
from .ops.validation import run_check as _run_check

# The tensor module (Tensor, _leaf, _tracer), read at call time: it imports this one. (Not
# `from . import tensor`: once tracegrad is imported, tg.tensor is the creation function.)
_tensor = importlib.import_module(__package__ + ".tensor")

if TYPE_CHECKING:
    from .tensor import Tensor


def _shape_arg(shape: tuple) -> tuple:
    """``reshape(2, 3)`` and ``reshape((2, 3))`` both mean (2, 3)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _dim_args(dim: Any, keepdim: bool, axis: Any, keepdims: bool | None) -> tuple:
    if axis is not None:
        if dim is not None:
            raise TypeError("pass dim= or axis=, not both")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    if isinstance(dim, list):
        dim = tuple(dim)
    return dim, bool(keepdim)


def _normalize_index(index: Any) -> tuple[tuple, tuple]:
    """A NumPy-style index as (template, integer index tensors).

    Integer arrays (lists, ndarrays, int tensors) become operands, standing in the template
    as ``SLOT``; bool masks stay in the template as ndarrays (their result's shape depends
    on their values, so they are always static).
    """
    if not isinstance(index, tuple):
        index = (index,)
    template, operands = [], []
    for i in index:
        if isinstance(i, _tensor.Tensor):
            if i._data.dtype.kind in "iu" and i.ndim > 0:
                template.append(SLOT)
                operands.append(i)
                continue
            i = _static_data(i, "indexing with a bool mask or a 0-d tensor (x[mask])")
        elif isinstance(i, list):
            i = np.asarray(i)
        if isinstance(i, np.ndarray):
            if i.dtype.kind not in "biu":
                raise IndexError(f"getitem: index arrays must be integers or bools, got {i.dtype}")
            if i.dtype.kind in "iu":
                if i.ndim == 0:
                    template.append(int(i))
                else:
                    template.append(SLOT)
                    operands.append(_tensor._leaf(i.astype(np.int64, copy=False)))
                continue
        elif isinstance(i, np.integer):
            i = int(i)
        elif not (i is None or i is Ellipsis or isinstance(i, (int, slice))):
            raise IndexError(
                f"getitem: {type(i).__name__} is not a valid index; use ints, slices, None, "
                f"..., bool masks or integer arrays/tensors"
            )
        template.append(i)
    return tuple(template), tuple(operands)


def _static_data(t: "Tensor", why: str) -> np.ndarray:
    """``t``'s values where Python code needs them now (a shape, a mask); while tracing,
    refused for values that would differ from call to call."""
    if _tensor._tracer is not None:
        _tensor._tracer.check_static(t, why)
    return t._data


def require(condition: Any, message: Callable[[bool], str], error: type = ValueError) -> None:
    """Raise ``error(message(True))`` unless ``condition`` (a bool tensor, or a bool) is all
    True: `checked` for a condition computed with tensor ops. Eager code tests it now, and the
    message may show the values (``message(True)``); while traced, the test is a check op of
    the graph, so a compiled function tests every call's values, with the message that shows
    none (``message(False)``: the values of the trace would be wrong for a later call)."""
    if not isinstance(condition, _tensor.Tensor):
        if not np.all(condition):
            raise error(message(True))
    elif _tensor._tracer is None:
        if not np.all(condition._data):
            raise error(message(True))
    else:
        text = message(False).replace("{", "{{").replace("}", "}}")
        checked(condition, "in_range", (1, 2), error, text)


def checked(t: "Tensor", test: str, args: tuple, error: type, message: str) -> "Tensor":
    """``t``, after raising ``error(message.format(...))`` if its values fail ``test`` (a test
    of `tracegrad.ops.validation.TESTS`, with ``args``). Use the result in place of ``t``: while
    tracing, the test is an op of the graph, so a compiled function runs it on every call's
    values, as eager code does (reading ``t._data`` would test only the traced call's)."""
    attrs = {"test": test, "args": args, "error": error.__name__, "message": message}
    if _tensor._tracer is None:
        _run_check(t._data, **attrs)
        return t
    return _tensor.apply(_tensor.P["check"], t, **attrs)



def _to_args(op: str, args: tuple, kwargs: dict) -> Any:
    """The dtype that ``.to(...)``'s arguments ask for (None: keep it), PyTorch's forms: a
    dtype, a device (checked: only the CPU), a tensor (its dtype), or keywords."""
    from .device import check_device

    dtype = kwargs.pop("dtype", None)
    check_device(kwargs.pop("device", None))
    kwargs.pop("non_blocking", None)
    kwargs.pop("copy", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"{op}: unexpected keyword(s) {sorted(kwargs)}")
    for a in args:
        if isinstance(a, _tensor.Tensor):
            dtype = a._data.dtype
        elif isinstance(a, str) or type(a).__name__ == "device":
            check_device(a)
        elif a is not None and not isinstance(a, bool):  # (non_blocking given by position)
            dtype = a
    return None if dtype is None else dtypes.to_dtype(dtype)
