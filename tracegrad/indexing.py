"""PyTorch's writes into a copy at given places: ``index_copy``, ``index_fill``,
``masked_scatter``, ``scatter_reduce``, ``diagonal_scatter``, ``select_scatter``,
``slice_scatter``, ``put``; the in-place ``_`` forms are their results written back.

Every one is a composite of the primitives (``setitem``, ``scatter_add``, ``where`` and
reductions), so gradients (to the input where it is kept, to the written values), tracing
and compilation come for free. Index tensors are operands; only a bool mask that decides a
result's layout (masked_scatter) must be static.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .arguments import _normalize_index, _static_data, checked
from .errors import ShapeError
from .functional import _along, _indices, _slots, _source, _vector_index
from .ops.base import check_dim
from .tensor import Tensor, _leaf, _operand, cat, where


def _put_at(input: Tensor, index: Any, value: Any) -> Tensor:
    """``input`` with ``input[index] = value`` done on a copy (a graph op)."""
    template, ix = _normalize_index(index)
    return input._setitem(template, value, *ix)


def _added_at(shape: tuple, values: Tensor, full: tuple) -> Tensor:
    """Zeros of ``shape`` with ``values`` added at the full index ``full`` (repeats add)."""
    return values._scatter_add(_slots(len(full)), tuple(shape), *full)


def _same_dtype(op: str, what: str, value: Tensor, input: Tensor) -> None:
    if value.dtype != input.dtype:
        raise TypeError(f"{op}: {what} is {value.dtype} but the input is {input.dtype}; "
                        f"cast it with .to({input.dtype})")


def _fits(op: str, what: str, value: Tensor, want: tuple, context: str) -> None:
    if tuple(value.shape) != tuple(want):
        raise ShapeError(f"{op}: {what} has shape {value.shape}; {context} it must be "
                         f"{tuple(want)}")


def index_copy(input: Tensor, dim: int, index: Any, source: Tensor) -> Tensor:
    """A copy of ``input`` with the slices ``index[i]`` along ``dim`` replaced by
    ``source``'s slice i, as ``torch.index_copy``.

    >>> tg.zeros(3, 2).index_copy(0, tg.tensor([2, 0]), tg.ones(2, 2))
    tensor([[1., 1.],
            [0., 0.],
            [1., 1.]])
    """
    d, idx = _vector_index("index_copy", input, dim, index)
    source = _operand(source, input)
    _same_dtype("index_copy", "source", source, input)
    if input.ndim == 0:
        return _put_at(input.reshape(1), (idx,), source.reshape(-1)).reshape(())
    want = input.shape[:d] + (idx.shape[0],) + input.shape[d + 1:]
    _fits("index_copy", "source", source, want,
          f"for an input {input.shape} and {idx.shape[0]} indices along dim {d}")
    return _put_at(input, (slice(None),) * d + (idx,), source)


def index_fill(input: Tensor, dim: int, index: Any, value: Any) -> Tensor:
    """A copy of ``input`` with the slices ``index`` along ``dim`` set to ``value`` (a
    number or a 0-d tensor), as ``torch.index_fill``."""
    d, idx = _vector_index("index_fill", input, dim, index)
    if isinstance(value, Tensor) and value.ndim:
        raise ShapeError(f"index_fill: value must be a number or a 0-d tensor, got shape "
                         f"{value.shape}")
    value = _operand(value, input).to(input.dtype)
    if input.ndim == 0:
        return _put_at(input.reshape(1), (idx,), value).reshape(())
    return _put_at(input, (slice(None),) * d + (idx,), value)


def masked_scatter(input: Tensor, mask: Any, source: Tensor) -> Tensor:
    """A copy of ``input`` with the places where ``mask`` (broadcast to it) is True filled,
    in order, with the first elements of ``source``, as ``torch.masked_scatter``. The mask
    decides which elements of ``source`` go where, so in a compiled function it must be a
    constant (else `tg.TraceError`)."""
    mask = mask if isinstance(mask, Tensor) else Tensor(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"masked_scatter: the mask must be a bool tensor, got {mask.dtype}")
    try:
        if np.broadcast_shapes(input.shape, mask.shape) != input.shape:
            raise ValueError
    except ValueError:
        raise ShapeError(f"masked_scatter: the mask {mask.shape} does not broadcast to the "
                         f"input {input.shape}") from None
    source = _operand(source, input)
    _same_dtype("masked_scatter", "source", source, input)
    m = np.ascontiguousarray(np.broadcast_to(
        _static_data(mask, "masked_scatter (the mask decides where each source element "
                           "goes)"), input.shape))
    n = int(m.sum())
    if source.numel() < n:
        raise ShapeError(f"masked_scatter: the mask selects {n} elements but the source "
                         f"{source.shape} has only {source.numel()}")
    if input.ndim == 0:
        return where(_leaf(m), source.reshape(-1)[0], input) if n else input
    return input._setitem((m,), source.reshape(-1)[:n])


# reduce -> (the value that leaves a product/extremum unchanged, for floats, for ints)
_IDENTITY = {"prod": (1, lambda dt: 1), "amax": (-np.inf, lambda dt: np.iinfo(dt).min),
             "amin": (np.inf, lambda dt: np.iinfo(dt).max)}
_REDUCES = ("sum", "prod", "mean", "amax", "amin")


def scatter_reduce(input: Tensor, dim: int, index: Any, src: Tensor, reduce: str, *,
                   include_self: bool = True) -> Tensor:
    """``input`` with each ``src[i][j]`` (dim 0) combined into ``out[index[i][j]][j]`` by
    ``reduce`` ("sum", "prod", "mean", "amax" or "amin"), as ``torch.scatter_reduce``;
    ``include_self=False`` leaves the input's own value out wherever something is scattered.
    Gradients: to ``src`` and to the input's kept values; amax/amin share among ties.

    >>> tg.tensor([1., 5.]).scatter_reduce(0, tg.tensor([0, 0, 1]), tg.tensor([3., 2., 4.]),
    ...                                    "amax")
    tensor([3., 5.])
    """
    if reduce not in _REDUCES:
        raise ValueError(f"scatter_reduce: reduce must be one of {', '.join(_REDUCES)}, got "
                         f"{reduce!r}")
    if input.ndim == 0:
        return scatter_reduce(input.reshape(1), 0, _t1(index), _t1(src), reduce,
                              include_self=include_self).reshape(())
    d, idx, full = _along("scatter_reduce", input, dim, index)
    src = _operand(src, input)
    v = _source(src, input, idx, "scatter_reduce")
    ones = _leaf(np.ones(idx.shape, input.dtype))
    count = _added_at(input.shape, ones, full)
    hit = count > 0
    if reduce in ("sum", "mean"):
        base = input if include_self else where(hit, input.new_zeros(()), input)
        total = base + _added_at(input.shape, v, full)
        if reduce == "sum":
            return total
        n = count + 1 if include_self else where(hit, count, input.new_ones(()))
        mean = total / n if input.dtype.kind == "f" else total.floor_divide(n)
        return where(hit, mean, input)
    # prod, amax, amin: the scattered values laid out densely, one slot per source element
    # along dim (size len(index)) and one per target position (a last axis of size
    # input.shape[dim]), holding the identity where nothing goes; then one reduction.
    fill = _IDENTITY[reduce][0] if input.dtype.kind == "f" else _IDENTITY[reduce][1](
        input.dtype)
    shape = input.shape[:d] + (idx.shape[d],) + input.shape[d + 1:]
    corner = tuple(slice(0, m) for m in idx.shape)
    target = _leaf(np.full(shape, -1, np.int64))._setitem(corner, idx)
    values = _leaf(np.full(shape, fill, input.dtype))._setitem(corner, v)
    m = input.shape[d]
    goes = target.unsqueeze(-1) == _leaf(np.arange(m, dtype=np.int64))
    dense = where(goes, values.unsqueeze(-1), _leaf(np.asarray(fill, input.dtype)))
    if include_self:
        dense = cat([dense, input.movedim(d, -1).unsqueeze(d)], d)
    reduced = getattr(dense, reduce)(d).movedim(-1, d)
    return where(hit, reduced, input)


def _t1(x: Any) -> Any:
    return x.reshape(1) if isinstance(x, Tensor) else np.reshape(x, 1)


def diagonal_scatter(input: Tensor, src: Tensor, offset: int = 0, dim1: int = 0,
                     dim2: int = 1) -> Tensor:
    """A copy of ``input`` with its diagonal (as ``input.diagonal(offset, dim1, dim2)``
    returns it) replaced by ``src``, as ``torch.diagonal_scatter``."""
    d1 = check_dim("diagonal_scatter", dim1, input.shape)
    d2 = check_dim("diagonal_scatter", dim2, input.shape)
    if d1 == d2:
        raise ValueError(f"diagonal_scatter: dim1 and dim2 are both {d1}; give two "
                         f"different dimensions")
    src = _operand(src, input)
    _same_dtype("diagonal_scatter", "src", src, input)
    want = tuple(input.diagonal(offset, d1, d2).shape)
    _fits("diagonal_scatter", "src", src, want,
          f"as the diagonal (offset {offset}, dims {d1}, {d2}) of {input.shape}")
    n = want[-1]
    rows = np.arange(n) + max(-offset, 0)
    cols = np.arange(n) + max(offset, 0)
    moved = input.movedim((d1, d2), (-2, -1))
    return _put_at(moved, (Ellipsis, rows, cols), src).movedim((-2, -1), (d1, d2))


def select_scatter(input: Tensor, src: Tensor, dim: int, index: int) -> Tensor:
    """A copy of ``input`` with ``input.select(dim, index)`` replaced by ``src``, as
    ``torch.select_scatter``."""
    d = check_dim("select_scatter", dim, input.shape)
    src = _operand(src, input)
    _same_dtype("select_scatter", "src", src, input)
    want = tuple(input.select(d, index).shape)
    _fits("select_scatter", "src", src, want, f"as input.select({d}, {index})")
    return _put_at(input, (slice(None),) * d + (index,), src)


def slice_scatter(input: Tensor, src: Tensor, dim: int = 0, start: int | None = None,
                  end: int | None = None, step: int = 1) -> Tensor:
    """A copy of ``input`` with the slice ``start:end:step`` along ``dim`` replaced by
    ``src``, as ``torch.slice_scatter``."""
    d = check_dim("slice_scatter", dim, input.shape)
    if step <= 0:
        raise ValueError(f"slice_scatter: step must be positive, got {step}")
    src = _operand(src, input)
    _same_dtype("slice_scatter", "src", src, input)
    at = (slice(None),) * d + (slice(start, end, step),)
    want = tuple(input[at].shape)
    _fits("slice_scatter", "src", src, want, f"as the slice {start}:{end}:{step} of dim {d}")
    return _put_at(input, at, src)


def put(input: Tensor, index: Any, source: Any, accumulate: bool = False) -> Tensor:
    """A copy of ``input``, seen as 1-d, with ``source``'s elements written at ``index``
    (negative counts from the end), or added there with ``accumulate=True``, as
    ``torch.put``."""
    n = input.numel()
    idx = index if isinstance(index, Tensor) else Tensor(index)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"put: index must be an integer tensor (int64), got {idx.dtype}")
    idx = checked(idx, "in_range", (-n, n), IndexError,
                  f"put: index {{bad}} is out of range for a tensor of {n} elements (shape "
                  f"{input.shape})")
    source = _operand(source, input)
    _same_dtype("put", "source", source, input)
    if source.numel() != idx.numel():
        raise ShapeError(f"put: source has {source.numel()} elements but index has "
                         f"{idx.numel()}; give one source element per index")
    flat_idx = _indices(where(idx < 0, idx + n, idx).reshape(-1), n, "put")
    flat, values = input.reshape(-1), source.reshape(-1)
    if accumulate:
        out = flat + _added_at((n,), values, (flat_idx,))
    else:
        out = _put_at(flat, (flat_idx,), values)
    return out.reshape(input.shape)
