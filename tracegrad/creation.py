"""Creating tensors: ``tg.tensor``, ``zeros``, ``ones``, ``arange``, ``rand``... PyTorch's names
and dtype rules (floats are float32 unless asked otherwise)."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import numpy as np

from . import dtypes
from .device import on_cpu
from .ops import PRIMITIVES as P
from .rng import generator_attrs, manual_seed  # noqa: F401  (public through tracegrad)
from .tensor import Tensor, _as_array, _leaf, _shape_arg, apply

_tensor_module = importlib.import_module("tracegrad.tensor")  # for its _tracer



@on_cpu
def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A new leaf tensor (copies the data). Floats -> float32, ints -> int64, bools -> bool.

    >>> tg.tensor([[1.0, 2.0]], requires_grad=True)
    """
    arr = _as_array(data, dtype)
    if isinstance(data, (np.ndarray, Tensor)) and arr is (data._data if isinstance(data, Tensor)
                                                           else data):
        arr = arr.copy()
    t = _leaf(arr, requires_grad)
    tracer = _tensor_module._tracer
    if tracer is not None and isinstance(data, Tensor):
        tracer.alias(t, data if arr.dtype == data.dtype else data.to(arr.dtype))
    return t


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``array`` (its dtype kept)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects an ndarray, got {type(array).__name__}")
    return _leaf(_as_array(array))


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """``data`` as a tensor, sharing its memory where it can, as ``torch.as_tensor``: a
    tensor of the asked dtype is returned as it is, a NumPy array of it is shared (a write
    to one shows in the other); anything else is copied (converted to ``dtype``).

    >>> a = np.zeros(2); t = tg.as_tensor(a); a[0] = 5; t
    tensor([5., 0.], dtype=torch.float64)
    """
    from .device import check_device

    check_device(device)
    want = None if dtype is None else dtypes.to_dtype(dtype)
    if isinstance(data, Tensor):
        return data if want is None or data.dtype == want else data.to(want)
    if isinstance(data, np.ndarray) and (want is None or data.dtype == want) \
            and data.dtype in dtypes.SUPPORTED:
        return from_numpy(data)
    return tensor(data, dtype=want)


def _shape_from(args: tuple) -> tuple:
    return _shape_arg(args)


def _float_dtype(dtype: Any) -> np.dtype:
    return dtypes.default_float if dtype is None else dtypes.to_dtype(dtype)


@on_cpu
def zeros(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _leaf(np.zeros(_shape_from(shape), _float_dtype(dtype)), requires_grad)


@on_cpu
def ones(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _leaf(np.ones(_shape_from(shape), _float_dtype(dtype)), requires_grad)


@on_cpu
def full(shape: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    shape = _shape_arg((shape,)) if isinstance(shape, (tuple, list)) else (int(shape),)
    dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.scalar_dtype(fill_value)
    return _leaf(np.full(shape, fill_value, dt), requires_grad)


@on_cpu
def zeros_like(x: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _leaf(np.zeros(x.shape, dtype or x.dtype), requires_grad)


@on_cpu
def ones_like(x: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _leaf(np.ones(x.shape, dtype or x.dtype), requires_grad)


@on_cpu
def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None,
           requires_grad: bool = False) -> Tensor:
    if end is None:
        start, end = 0, start
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = dtypes.default_int if is_int else dtypes.default_float
    return _leaf(np.arange(start, end, step).astype(dtypes.to_dtype(dtype)), requires_grad)


@on_cpu
def linspace(start: float, end: float, steps: int, dtype: Any = None,
             requires_grad: bool = False) -> Tensor:
    return _leaf(np.linspace(start, end, steps).astype(_float_dtype(dtype)), requires_grad)


@on_cpu
def eye(n: int, m: int | None = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _leaf(np.eye(n, m, dtype=_float_dtype(dtype)), requires_grad)


@on_cpu
def logspace(start: float, end: float, steps: int, base: float = 10.0, *, dtype: Any = None,
             requires_grad: bool = False) -> Tensor:
    """``base ** linspace(start, end, steps)``.

    >>> tg.logspace(0, 2, 3)
    tensor([  1.,  10., 100.])
    """
    values = np.power(float(base), np.linspace(start, end, steps))
    return _leaf(values.astype(_float_dtype(dtype)), requires_grad)


def _triangle_indices(op: str, row: int, col: int, offset: int, dtype: Any,
                      lower: bool) -> Tensor:
    if row < 0 or col < 0:
        raise ValueError(f"{op}: row and col must be non-negative, got {row} and {col}")
    dt = dtypes.default_int if dtype is None else dtypes.to_dtype(dtype)
    if dt.kind not in "iu":
        raise TypeError(f"{op}: dtype must be an integer type, got {dt}")
    keep = np.tri(row, col, offset, dtype=bool)
    rows, cols = np.nonzero(keep if lower else ~np.tri(row, col, offset - 1, dtype=bool))
    return _leaf(np.stack([rows, cols]).astype(dt).reshape(2, -1))


@on_cpu
def tril_indices(row: int, col: int, offset: int = 0, *, dtype: Any = None) -> Tensor:
    """The (2, N) row and column indices of the lower triangle (on and below diagonal
    ``offset``) of a ``row`` x ``col`` matrix, in row-major order.

    >>> tg.tril_indices(2, 2)
    tensor([[0, 1, 1],
            [0, 0, 1]])
    """
    return _triangle_indices("tril_indices", row, col, offset, dtype, lower=True)


@on_cpu
def triu_indices(row: int, col: int, offset: int = 0, *, dtype: Any = None) -> Tensor:
    """The (2, N) indices of the upper triangle (on and above diagonal ``offset``)."""
    return _triangle_indices("triu_indices", row, col, offset, dtype, lower=False)


@on_cpu
def range(start: Any = 0, end: Any = None, step: Any = 1, *, dtype: Any = None,
          requires_grad: bool = False) -> Tensor:
    """``start, start + step, ...`` up to and including ``end`` (floats by default), as the
    deprecated ``torch.range``; prefer ``arange``, which stops before ``end``."""
    if end is None:
        raise TypeError("range: needs an end, as torch.range(start, end, step); or use "
                        "tg.arange(end)")
    if step == 0 or (end - start) * step < 0:
        raise ValueError(f"range: step {step} does not lead from {start} to {end}")
    warnings.warn("tg.range is deprecated, as torch.range: it includes end, unlike Python's "
                  "range; use tg.arange, which stops before end", UserWarning, stacklevel=3)
    n = int(np.floor((end - start) / step)) + 1
    values = start + step * np.arange(n, dtype=np.float64)
    return _leaf(values.astype(_float_dtype(dtype)), requires_grad)


def _random(shape: tuple, dtype: Any, dist: str, requires_grad: bool, generator: Any,
            who: str) -> Tensor:
    t = apply(P["rand"], shape=_shape_from(shape), dtype=_float_dtype(dtype), dist=dist,
              **generator_attrs(generator, who))
    return t.requires_grad_() if requires_grad else t


@on_cpu
def rand(*shape: Any, generator: Any = None, dtype: Any = None,
         requires_grad: bool = False) -> Tensor:
    """Uniform in [0, 1); from ``generator`` (a tg.Generator), else the global generator
    (``tg.manual_seed``)."""
    return _random(shape, dtype, "uniform", requires_grad, generator, "rand")


@on_cpu
def randn(*shape: Any, generator: Any = None, dtype: Any = None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal; from ``generator`` (a tg.Generator), else the global generator
    (``tg.manual_seed``)."""
    return _random(shape, dtype, "normal", requires_grad, generator, "randn")


@on_cpu
def randint(low: int, high: int | None = None, size: Any = (), *, generator: Any = None,
            dtype: Any = None) -> Tensor:
    """Integers uniform in [low, high), as ``torch.randint(low=0, high, size)``:
    ``randint(10, (3,))`` and ``randint(0, 10, (3,))`` are the same."""
    if isinstance(high, (tuple, list)):  # randint(high, size)
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    dt = dtypes.default_int if dtype is None else dtypes.to_dtype(dtype)
    size = _shape_arg((size,)) if size else ()
    # the rand primitive, so that a compiled function draws new numbers on every call
    P["rand"].infer(shape=size, dtype=dt, dist="integers", low=low, high=high)
    return apply(P["rand"], shape=tuple(size), dtype=dt, dist="integers", low=int(low),
                 high=int(high), **generator_attrs(generator, "randint"))


def is_tensor(x: Any) -> bool:
    return isinstance(x, Tensor)
