"""PyTorch's sorting, searching and order statistics beyond sort/topk: ``unique``,
``unique_consecutive``, ``searchsorted``, ``bucketize``, ``bincount``, ``histc``, ``isin``,
``cummax``/``cummin``, ``kthvalue``, ``mode``, ``msort``, ``quantile``/``nanquantile``,
``median``, ``nanmedian``, ``aminmax``, ``unravel_index``.

Composites of the primitives. Where a result's *size* depends on the values (unique,
bincount) the values must be known, so in a compiled function those inputs must be
constants (else `tg.TraceError`); everything else traces and compiles. Values that PyTorch
differentiates (cummax, kthvalue, mode, quantile, nanmedian, aminmax) are picked from the
input with `take_along_dim`, so the gradient goes to the chosen elements.
"""

from __future__ import annotations

import builtins
from collections import namedtuple
from typing import Any, Sequence

import numpy as np

from .arguments import _static_data, checked
from .errors import ShapeError
from .functional import _last_dim, _scan, _t, sort, take_along_dim
from .ops import PRIMITIVES
from .ops.base import check_dim
from .tensor import Tensor, _leaf, _operand, apply, where

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])
MinMax = namedtuple("MinMax", ["min", "max"])


def _arange(n: int, ndim: int = 1) -> Tensor:
    """0..n-1 as int64, along the last of ``ndim`` dimensions."""
    return _leaf(np.arange(n, dtype=np.int64).reshape((1,) * (ndim - 1) + (n,)))


def _keep(t: Tensor, d: int, keepdim: bool) -> Tensor:
    return t.unsqueeze(d) if keepdim else t


# ---------------------------------------------------------------- unique


def unique(input: Tensor, sorted: bool = True, return_inverse: bool = False,
           return_counts: bool = False, dim: int | None = None) -> Any:
    """The distinct elements (or, with ``dim``, distinct slices along it), sorted, as
    ``torch.unique``; with ``return_inverse`` also where each element went, with
    ``return_counts`` how often each occurs. No gradient (as in PyTorch).

    >>> tg.unique(tg.tensor([3, 1, 3]), return_counts=True)
    (tensor([1, 3]), tensor([1, 2]))
    """
    data = _static_data(_t(input), "unique (its result's size depends on the values)")
    if dim is None:
        values, inverse, counts = np.unique(data.reshape(-1), return_inverse=True,
                                            return_counts=True)
        inverse = inverse.reshape(data.shape)
    else:
        d = check_dim("unique", dim, data.shape)
        values, inverse, counts = np.unique(data, return_inverse=True, return_counts=True,
                                            axis=d)
        inverse = inverse.reshape(-1)
    return _results(values, inverse, counts, return_inverse, return_counts)


def _results(values: np.ndarray, inverse: np.ndarray, counts: np.ndarray,
             return_inverse: bool, return_counts: bool) -> Any:
    out = [_leaf(np.ascontiguousarray(values))]
    if return_inverse:
        out.append(_leaf(inverse.astype(np.int64)))
    if return_counts:
        out.append(_leaf(counts.astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


def unique_consecutive(input: Tensor, return_inverse: bool = False,
                       return_counts: bool = False, dim: int | None = None) -> Any:
    """Each run of equal consecutive elements (or slices along ``dim``) kept once, as
    ``torch.unique_consecutive``.

    >>> tg.unique_consecutive(tg.tensor([1, 1, 2, 1]))
    tensor([1, 2, 1])
    """
    data = _static_data(_t(input), "unique_consecutive (its result's size depends on the "
                                   "values)")
    if dim is None:
        rows = data.reshape(-1, 1)
    else:
        d = check_dim("unique_consecutive", dim, data.shape)
        rows = np.moveaxis(data, d, 0).reshape(data.shape[d] if data.ndim else 1, -1)
    n = rows.shape[0]
    starts = np.ones(n, bool)
    starts[1:] = (rows[1:] != rows[:-1]).any(axis=1)
    first = np.flatnonzero(starts)
    inverse = np.cumsum(starts) - 1
    counts = np.diff(np.append(first, n))
    if dim is None:
        values, inverse = data.reshape(-1)[first], inverse.reshape(data.shape)
    else:
        values = np.take(data, first, axis=d)
    return _results(values, inverse, counts, return_inverse, return_counts)


# ---------------------------------------------------------------- searching


def searchsorted(sorted_sequence: Tensor, input: Any, *, out_int32: bool = False,
                 right: bool = False, side: str | None = None, sorter: Any = None) -> Tensor:
    """Where each value of ``input`` would go in the last dimension of ``sorted_sequence``
    to keep it sorted: the first such place, or the last with ``right=True`` (or
    ``side="right"``), as ``torch.searchsorted``. A 1-d sequence serves every value; an
    n-d one has ``input``'s leading dimensions. Eager runs a binary search; a compiled
    function counts by comparisons (n * m of them).

    >>> tg.searchsorted(tg.tensor([1., 2., 3.]), tg.tensor([2., 2.5]))
    tensor([1, 2])
    """
    if side is not None:
        if side not in ("left", "right"):
            raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
        if right and side == "left":
            raise ValueError("searchsorted: right=True and side='left' contradict; give one")
        right = side == "right"
    seq = _t(sorted_sequence)
    if seq.ndim == 0:
        raise ShapeError("searchsorted: sorted_sequence must have at least one dimension")
    scalar = not isinstance(input, Tensor)
    values = _operand(input, seq) if scalar else input
    if sorter is not None:
        seq = take_along_dim(seq, _t(sorter).long(), -1)
    if seq.ndim > 1 and (values.ndim != seq.ndim or values.shape[:-1] != seq.shape[:-1]):
        raise ShapeError(f"searchsorted: a sequence of shape {seq.shape} needs values with "
                         f"the same leading dimensions {seq.shape[:-1]}, got {values.shape}; "
                         f"or give a 1-d sequence")
    if values.dtype != seq.dtype:  # (compared in their common type, as the operators do)
        common = np.result_type(values.dtype, seq.dtype)
        seq, values = seq.to(common), values.to(common)
    out = apply(PRIMITIVES["searchsorted"], seq, values, right=bool(right))
    if values.dtype.kind == "f":  # nan sorts after everything, as in PyTorch
        out = where(values.isnan(), _leaf(np.asarray(seq.shape[-1], out.dtype)), out)
    return out.int() if out_int32 else out.long()


def bucketize(input: Any, boundaries: Tensor, *, out_int32: bool = False,
              right: bool = False) -> Tensor:
    """The bucket of each value: i with ``boundaries[i-1] < x <= boundaries[i]`` (with
    ``right=True``: ``boundaries[i-1] <= x < boundaries[i]``), as ``torch.bucketize``."""
    if _t(boundaries).ndim != 1:
        raise ShapeError(f"bucketize: boundaries must be 1-d, got shape {_t(boundaries).shape}")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def isin(elements: Any, test_elements: Any, *, assume_unique: bool = False,
         invert: bool = False) -> Tensor:
    """Whether each of ``elements`` is one of ``test_elements``, as ``torch.isin``.

    >>> tg.isin(tg.tensor([1, 2, 3]), tg.tensor([2, 5]))
    tensor([False,  True, False])
    """
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise TypeError("isin: give at least one of elements and test_elements as a tensor")
    if isinstance(elements, Tensor):
        test = _operand(test_elements, elements)
    else:
        test = test_elements
        elements = _operand(elements, test)
    flat = test.reshape(-1)
    if not flat.numel():
        found = _leaf(np.zeros(elements.shape, np.bool_))
    else:  # a binary search of the sorted test elements: memory of len(elements) + len(test)
        ordered = sort(flat, -1).values
        at = searchsorted(ordered, elements).clamp(max=flat.numel() - 1)
        found = ordered[at] == elements
    return ~found if invert else found


def bincount(input: Tensor, weights: Any = None, minlength: int = 0) -> Tensor:
    """How often each of 0, 1, ..., max(input) occurs in the 1-d int tensor ``input`` (at
    least ``minlength`` of them), or the sums of ``weights`` there, as ``torch.bincount``;
    gradients flow to ``weights``. The length depends on the values, so in a compiled
    function ``input`` must be a constant."""
    input = _t(input)
    if input.ndim != 1 or input.dtype.kind not in "iu":
        raise TypeError(f"bincount: input must be a 1-d int tensor, got {input.dtype} of "
                        f"shape {input.shape}")
    data = _static_data(input, "bincount (its result's length depends on the values)")
    if data.size and data.min() < 0:
        raise ValueError(f"bincount: input has a negative value ({int(data.min())}); "
                         f"only counts of 0, 1, 2, ... are defined")
    n = builtins.max(int(data.max()) + 1 if data.size else 0, minlength)
    if weights is None:
        w = _leaf(np.ones(input.shape, np.int64))
    else:
        w = _t(weights)
        if w.shape != input.shape:
            raise ShapeError(f"bincount: weights {w.shape} must have input's shape "
                             f"{input.shape}")
        w = w if w.dtype.kind == "f" else w.double()
    return w._scatter_add(_slots1(), (n,), input.long())


def _slots1() -> tuple:
    from .ops.movement import SLOT

    return (SLOT,)


def histc(input: Tensor, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:
    """A histogram of ``bins`` equal bins over [min, max] (the data's range when both are 0),
    as ``torch.histc``; values outside are not counted. No gradient (as in PyTorch)."""
    input = _t(input)
    if input.dtype.kind != "f":
        raise TypeError(f"histc: expects a float tensor, got {input.dtype}")
    if bins <= 0:
        raise ValueError(f"histc: bins must be positive, got {bins}")
    if max < min:
        raise ValueError(f"histc: max ({max}) must not be below min ({min})")
    x = input.detach().reshape(-1)
    if min == max and x.numel():
        lo, hi = x.min(), x.max()
        lo, hi = where(lo == hi, lo - 1, lo), where(lo == hi, hi + 1, hi)
    else:
        lo, hi = (_leaf(np.asarray(min - 1 if min == max else min, x.dtype)),
                  _leaf(np.asarray(max + 1 if min == max else max, x.dtype)))
    inside = (x >= lo) & (x <= hi)
    pos = ((x - lo) * bins / (hi - lo)).floor().clamp(0, bins - 1)
    pos = where(inside, pos, _leaf(np.zeros((), x.dtype))).long()
    return inside.to(x.dtype)._scatter_add(_slots1(), (bins,), pos)


# ---------------------------------------------------------------- running extremes


def _cumulative(name: str, pick: str) -> Any:
    def fn(input: Tensor, dim: int) -> Any:
        input = _t(input)
        if input.ndim == 0:
            check_dim(name, dim, ())
            return ValuesIndices(input, _leaf(np.zeros((), np.int64)))
        d = check_dim(name, dim, input.shape)
        x = input.detach()
        if x.dtype.kind == "f":
            identity = -np.inf if pick == "maximum" else np.inf
        elif x.dtype == np.bool_:
            identity = pick == "minimum"
        else:
            info = np.iinfo(x.dtype)
            identity = info.min if pick == "maximum" else info.max
        run = _scan(x, d, lambda a, b: _extreme(pick, a, b), identity)
        # the last place so far holding the running extreme (a nan holds it from there on)
        at = x == run
        if x.dtype.kind == "f":
            at = at | x.isnan()
        n = x.shape[d]
        position = _arange(n).reshape((n,) + (1,) * (x.ndim - 1 - d))
        candidate = where(at, position, _leaf(np.asarray(-1, np.int64)))
        indices = _scan(candidate, d, lambda a, b: _extreme("maximum", a, b), -1)
        return ValuesIndices(take_along_dim(input, indices, d), indices)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"Running {pick} along ``dim`` and where it was last reached, as "
                  f"``torch.{name}``; the gradient goes to that element.")
    return fn


def _extreme(pick: str, a: Tensor, b: Tensor) -> Tensor:
    if a.dtype == np.bool_:
        return (a | b) if pick == "maximum" else (a & b)
    return a.maximum(b) if pick == "maximum" else a.minimum(b)


cummax = _cumulative("cummax", "maximum")
cummin = _cumulative("cummin", "minimum")


# ---------------------------------------------------------------- order statistics


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False) -> Any:
    """The ``k``-th smallest element along ``dim`` (k from 1) and its index, as
    ``torch.kthvalue``; the gradient goes to it."""
    input = _t(input)
    d = check_dim("kthvalue", dim, input.shape)
    n = input.shape[d] if input.ndim else 1
    if not 1 <= k <= n:
        raise ValueError(f"kthvalue: k={k} is out of range for dimension {d} of size {n}; "
                         f"give 1 <= k <= {n}")
    if input.ndim == 0:
        return ValuesIndices(input, _leaf(np.zeros((), np.int64)))
    indices = sort(input.detach(), d).indices.narrow(d, k - 1, 1)
    values = take_along_dim(input, indices, d)
    if not keepdim:
        values, indices = values.squeeze(d), indices.squeeze(d)
    return ValuesIndices(values, indices)


def mode(input: Tensor, dim: int = -1, keepdim: bool = False) -> Any:
    """The most frequent value along ``dim`` (the smallest of those tied) and the last
    place it occurs, as ``torch.mode``; the gradient goes to that element. Counted in the
    sorted row, as the distance between a value's first and last place (nan counts 0)."""
    input = _t(input)
    if input.ndim == 0:
        check_dim("mode", dim, ())
        return ValuesIndices(input, _leaf(np.zeros((), np.int64)))
    d = check_dim("mode", dim, input.shape)
    x = _last_dim(input.detach(), d)
    s = sort(x, -1).values
    counts = searchsorted(s, s, right=True) - searchsorted(s, s)
    value = take_along_dim(s, counts.argmax(-1, keepdim=True), -1)
    n = x.shape[-1]
    last = where(x == value, _arange(n, x.ndim), _leaf(np.asarray(-1, np.int64)))
    indices = last.max(-1, keepdim=True).values
    values = take_along_dim(_last_dim(input, d), indices, -1)
    values, indices = values.squeeze(-1), indices.squeeze(-1)
    return ValuesIndices(_keep(values, d, keepdim), _keep(indices, d, keepdim))


def msort(input: Tensor) -> Tensor:
    """``input`` sorted along its first dimension (``torch.msort``)."""
    return sort(_t(input), 0).values


def aminmax(input: Tensor, *, dim: int | None = None, keepdim: bool = False) -> Any:
    """``(min, max)`` of all elements or along ``dim``, as ``torch.aminmax``."""
    input = _t(input)
    if input.numel() == 0:
        raise ValueError(f"aminmax: the tensor of shape {input.shape} is empty; there is no "
                         f"minimum or maximum")
    return MinMax(input.amin(dim, keepdim) if dim is not None else input.amin(),
                  input.amax(dim, keepdim) if dim is not None else input.amax())


_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(name: str, ignore_nan: bool) -> Any:
    def fn(input: Tensor, q: Any, dim: int | None = None, keepdim: bool = False, *,
           interpolation: str = "linear") -> Tensor:
        input = _t(input)
        if input.dtype.kind != "f":
            raise TypeError(f"{name}: expects a float tensor, got {input.dtype}")
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f"{name}: interpolation must be one of "
                             f"{', '.join(_INTERPOLATIONS)}, got {interpolation!r}")
        qt = q if isinstance(q, Tensor) else _leaf(np.asarray(q, input.dtype))
        if qt.ndim > 1:
            raise ShapeError(f"{name}: q must be a number or a 1-d tensor, got shape "
                             f"{qt.shape}")
        qt = checked(qt, "in_interval", (0, 1), ValueError,
                     f"{name}: q must lie in [0, 1], got values from {{lo}} to {{hi}}")
        if qt.dtype != input.dtype:
            raise TypeError(f"{name}: q is {qt.dtype} but the input is {input.dtype}")
        x, d = _reduced_last(name, input, dim)
        n = x.shape[-1]
        if n == 0:
            raise ValueError(f"{name}: the input of shape {input.shape} is empty")
        order = sort(x.detach(), -1).indices  # (nans last)
        s = take_along_dim(x, order, -1)
        nan = x.detach().isnan()
        count = (~nan).sum(-1, keepdim=True) if ignore_nan else \
            _leaf(np.full(x.shape[:-1] + (1,), n, np.int64))
        qs = qt.reshape(-1)
        rank = (count - 1).clamp_min(0).to(x.dtype).unsqueeze(-1) * qs.detach().reshape(
            (1,) * x.ndim + (-1,))  # (..., 1, nq)
        rank = rank.squeeze(-2)  # (..., nq)
        lo, hi = rank.floor(), rank.ceil()
        if interpolation == "lower":
            lo = hi = lo
        elif interpolation == "higher":
            lo = hi = hi
        elif interpolation == "nearest":
            lo = hi = rank.round()
        a = take_along_dim(s, lo.long(), -1)
        b = take_along_dim(s, hi.long(), -1)
        if interpolation == "linear":
            out = a + (b - a) * (rank - lo)
        elif interpolation == "midpoint":
            out = (a + b) * 0.5
        else:
            out = a
        bad = (count == 0) if ignore_nan else nan.any(-1, keepdim=True)
        out = where(bad, _leaf(np.asarray(np.nan, x.dtype)), out)  # (..., nq)
        if keepdim and dim is not None:
            out = out.unsqueeze(d)
        out = out.movedim(-1, 0)  # (nq, ...)
        if keepdim and dim is None:
            out = out.reshape((out.shape[0],) + (1,) * input.ndim)
        return out.squeeze(0) if qt.ndim == 0 else out

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"The ``q``-quantiles (a number, or a 1-d tensor of them, first in the "
                  f"result) of all elements or along ``dim``, as ``torch.{name}``, "
                  f"interpolating between neighbours as ``interpolation`` says"
                  + ("; nans are left out (all-nan slices give nan)." if ignore_nan else
                     "; a slice holding a nan gives nan.")
                  + " The gradient goes to the neighbours used.")
    return fn


quantile = _quantile("quantile", ignore_nan=False)
nanquantile = _quantile("nanquantile", ignore_nan=True)


def median(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Any:
    """The lower median of all elements (a 0-d tensor), or ``(values, indices)`` along
    ``dim``, as ``torch.median``: nan where there is a nan. The gradient goes to the median
    element along ``dim``, and is shared evenly by the elements equal to it over all
    elements (as in PyTorch).

    >>> tg.median(tg.tensor([3.0, 1.0, 2.0, 5.0]))
    tensor(2.)
    """
    return _median("median", input, dim, keepdim, skip_nan=False)


def _reduced_last(name: str, input: Tensor, dim: int | None) -> tuple:
    """``(x, d)``: ``input`` with the dimension an order statistic reduces moved last (all
    elements, flattened, for ``dim`` None; a 0-d input as one element), and that dimension."""
    if dim is None:
        return input.reshape(-1), 0
    d = check_dim(name, dim, input.shape)
    return _last_dim(input if input.ndim else input.reshape(1), d), d


def nanmedian(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Any:
    """The lower median of the non-nan elements (nan if there are none), of all elements
    or as ``(values, indices)`` along ``dim``, as ``torch.nanmedian``."""
    return _median("nanmedian", input, dim, keepdim, skip_nan=True)


def _median(name: str, input: Tensor, dim: int | None, keepdim: bool, skip_nan: bool) -> Any:
    input = _t(input)
    x, d = _reduced_last(name, input, dim)
    n = x.shape[-1]
    if n == 0:
        if dim is None:
            return _leaf(np.full((), np.nan, input.dtype))
        raise ShapeError(f"{name}: dimension {d} of shape {input.shape} is empty")
    order = sort(x.detach(), -1).indices  # (nan sorts last)
    if x.dtype.kind == "f":
        count = (~x.detach().isnan()).sum(-1, keepdim=True)  # the non-nan elements
        if skip_nan:
            at = ((count - 1).clamp_min(0)).floor_divide(2)
        else:  # the first nan where there is one
            at = where(count < n, count, (n - 1) // 2)
    else:
        at = _leaf(np.full(x.shape[:-1] + (1,), (n - 1) // 2, np.int64))
    indices = take_along_dim(order, at, -1)
    values = take_along_dim(x, indices, -1)
    if dim is None:
        return _shared_evenly(x, values.reshape(()))
    values, indices = values.squeeze(-1), indices.squeeze(-1)
    if input.ndim == 0:
        return ValuesIndices(values.reshape(()), indices.reshape(()))
    return ValuesIndices(_keep(values, d, keepdim), _keep(indices, d, keepdim))


def _shared_evenly(x: Tensor, value: Tensor) -> Tensor:
    """``value`` (one of the elements of 1-d ``x``), with its gradient shared evenly by the
    elements equal to it (nan ones, for nan), as PyTorch's ``evenly_distribute_backward``.
    ``(x - v) * hit`` is exactly 0, so the value is ``v`` to the last bit. (Whatever
    ``requires_grad`` says: a forward-mode tangent is shared likewise, their mean.)"""
    if x.dtype.kind != "f":
        return value
    v = value.detach()
    hit = (x == v) | (x.isnan() & v.isnan())
    return v + where(hit, x - v, 0).sum() / hit.sum()


def unravel_index(indices: Any, shape: Sequence[int] | int) -> tuple:
    """The coordinates in a tensor of ``shape`` of each flat index (negative ones count
    from the end), one int64 tensor per dimension, as ``torch.unravel_index``.

    >>> tg.unravel_index(tg.tensor([5]), (2, 3))
    (tensor([1]), tensor([2]))
    """
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    if builtins.any(s < 0 for s in shape):
        raise ValueError(f"unravel_index: shape {shape} has a negative size")
    idx = _t(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"unravel_index: indices must be integers, got {idx.dtype}")
    n = int(np.prod(shape))
    idx = checked(idx, "in_range", (-n, n), ValueError,
                  f"unravel_index: index {{bad}} is out of range for a tensor of shape {shape} "
                  f"({n} elements)")
    flat = where(idx < 0, idx + n, idx).long()
    out = []
    for size in reversed(shape):
        out.append(flat.remainder(size) if size else flat * 0)
        flat = flat.floor_divide(size) if size else flat
    return tuple(reversed(out))

