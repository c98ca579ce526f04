"""Bags of embeddings: ``F.embedding_bag`` and ``nn.EmbeddingBag``, PyTorch's.

A bag is a run of indices: a row of a 2-d input, or, for a 1-d input, the stretch from one
``offsets`` entry to the next. Its result is the sum, mean or max of the looked-up rows
(zeros for an empty bag); entries equal to ``padding_idx`` are left out of their bag.

Sum and mean find each index's bag with tensor ops (a cumulative count of the bag starts),
so the offsets are data: a compiled function reads each call's offsets. Max lays the bags
out as a padded (bags, longest bag) table, whose width depends on the offsets' values: in a
compiled function, offsets that change from call to call are refused (`tg.TraceError`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from .. import functional as F
from ..arguments import _static_data, checked
from ..autograd import no_grad
from ..device import check_device
from ..errors import ShapeError
from ..functional import _padding_index
from ..tensor import Tensor, _leaf, _operand, where
from . import init
from .module import Module, Parameter

_MODES = ("sum", "mean", "max")


def _long(x: Any, what: str) -> Tensor:
    t = x if isinstance(x, Tensor) else Tensor(x)
    if t.dtype.kind not in "iu":
        raise TypeError(f"embedding_bag: {what} must be integers, got {t.dtype}")
    return t.long()


def _bags_1d(input: Tensor, offsets: Any, include_last_offset: bool) -> tuple[Tensor, int]:
    """The int64 offsets of a 1-d input (checked, on each call's values) and the number of
    bags."""
    offsets = _long(offsets, "offsets")
    if offsets.ndim != 1:
        raise ShapeError(f"embedding_bag: offsets must be 1-d, got shape {offsets.shape}")
    n = input.shape[0]
    if offsets.shape[0]:
        checked(offsets[:1], "in_range", (0, 1), ValueError,
                "embedding_bag: offsets[0] must be 0 (the first bag starts at the first "
                "index), got {lo}")
        checked(offsets[-1:], "in_range", (-2**63, n + 1), ValueError,
                f"embedding_bag: offsets[-1] is {{hi}}, more than the input's length {n}")
        checked(offsets[1:] - offsets[:-1], "not_below", (0,), ValueError,
                "embedding_bag: offsets must not decrease (a step of {least})")
        if include_last_offset:
            # (PyTorch's own results disagree between modes otherwise: its sum stops at the
            # last offset, its mean divides by the count up to the end)
            checked(offsets[-1:], "in_range", (n, n + 1), ValueError,
                    f"embedding_bag: with include_last_offset=True the last offset is where "
                    f"the last bag ends, the input's length {n}; got {{lo}}")
    bags = offsets.shape[0] - 1 if include_last_offset else offsets.shape[0]
    if bags < 0:
        raise ShapeError("embedding_bag: include_last_offset=True needs at least one offset")
    return offsets, bags


def _bag_of_each(offsets: Tensor, n: int) -> Tensor:
    """For each of the n indices, its bag: how many bags start at or before it, less 1
    (empty bags start at the same place as the next one, and count too)."""
    starts = F.scatter_add(_leaf(np.zeros(n + 1, np.int64)), 0, offsets,
                           _leaf(np.ones(offsets.shape[0], np.int64)))
    return F.cumsum(starts[:n], 0) - 1


def _segment_sum(rows: Tensor, offsets: Tensor, bags: int, include_last_offset: bool) -> Tensor:
    """``rows`` (n, ...) added up per bag: (bags, ...)."""
    n = rows.shape[0]
    seg = _bag_of_each(offsets, n)
    # with include_last_offset, indices past the last offset fall in bag `bags`: dropped
    out = F.index_add(_leaf(np.zeros((bags + 1,) + rows.shape[1:], rows.dtype)), 0, seg, rows)
    return out[:bags]


def _padded_positions(offsets: Tensor, n: int, bags: int) -> tuple[np.ndarray, np.ndarray]:
    """(bags, longest) positions into the input, and which of them are in their bag."""
    ov = _static_data(offsets, "embedding_bag(mode='max') with offsets (the longest bag "
                               "sets a shape)")
    ends = np.append(ov[1:], n)[:bags] if bags == ov.shape[0] else ov[1:]
    starts = ov[:bags]
    longest = int((ends - starts).max(initial=0))
    pos = starts[:, None] + np.arange(longest)
    inside = pos < ends[:, None]
    return np.where(inside, pos, 0), inside


def embedding_bag(input: Any, weight: Tensor, offsets: Any = None, max_norm: float | None = None,
                  norm_type: float = 2, scale_grad_by_freq: bool = False, mode: str = "mean",
                  sparse: bool = False, per_sample_weights: Any = None,
                  include_last_offset: bool = False, padding_idx: int | None = None) -> Tensor:
    """Sums, means or maxima of bags of rows of ``weight`` (rows, dim): one (dim,) result
    per bag, as ``torch.nn.functional.embedding_bag``.

    >>> w = tg.arange(12.0).reshape(6, 2)
    >>> F.embedding_bag(tg.tensor([1, 2, 4, 5]), w, tg.tensor([0, 2]), mode="sum")
    tensor([[ 6.,  8.],
            [18., 20.]])
    """
    if mode not in _MODES:
        raise ValueError(f"embedding_bag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding_bag: max_norm, scale_grad_by_freq and sparse are "
                                  "not supported by tracegrad")
    if weight.ndim != 2:
        raise ShapeError(f"embedding_bag: weight must be 2-d (rows, dim), got {weight.shape}")
    idx = _long(input, "input (the indices)")
    rows_n = weight.shape[0]
    idx = checked(idx, "in_range", (0, rows_n), IndexError,
                  f"embedding_bag: indices range over [{{lo}}, {{hi}}] but the table has "
                  f"{rows_n} rows")
    psw = None
    if per_sample_weights is not None:
        if mode != "sum":
            raise NotImplementedError(f"embedding_bag: per_sample_weights is only supported "
                                      f"for mode='sum' (got mode={mode!r}), as in PyTorch")
        psw = _operand(per_sample_weights, weight)
        if psw.shape != idx.shape:
            raise ShapeError(f"embedding_bag: per_sample_weights has shape {psw.shape}, "
                             f"expected the input's {idx.shape}")
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError("embedding_bag: a 2-d input is a batch of equal bags (its rows); "
                             "offsets must be None")
        bags, length = idx.shape
        offsets = _leaf(np.arange(bags, dtype=np.int64) * length)
        idx, include_last_offset = idx.reshape(-1), False
        psw = None if psw is None else psw.reshape(-1)
    elif idx.ndim == 1:
        if offsets is None:
            raise ValueError("embedding_bag: a 1-d input needs offsets (where each bag "
                             "starts)")
    else:
        raise ShapeError(f"embedding_bag: input must be 1-d (with offsets) or 2-d, got "
                         f"{idx.shape}")
    offsets, bags = _bags_1d(idx, offsets, include_last_offset)
    n = idx.shape[0]
    pad = _padding_index(padding_idx, rows_n)
    keep = None if pad is None else idx != pad            # (n,): entries that count
    if mode == "max":
        pos, inside = _padded_positions(offsets, n, bags)
        if not inside.any():  # every bag empty: zeros (that still lead back to the weight)
            return _leaf(np.zeros((bags, weight.shape[1]), weight.dtype)) + weight[:0].sum(0)
        taken = idx[_leaf(pos)]                           # (bags, longest)
        ok = _leaf(inside) if keep is None else _leaf(inside) & keep[_leaf(pos)]
        rows = weight[taken]                              # (bags, longest, dim)
        low = _operand(-np.inf, rows)
        best = F.amax(where(ok.unsqueeze(-1), rows, low), 1)
        return where(F.any(ok, 1).unsqueeze(-1), best, _operand(0.0, best))
    rows = weight[idx]                                    # (n, dim)
    if psw is not None:
        rows = rows * psw.unsqueeze(-1)
    if keep is not None:
        rows = where(keep.unsqueeze(-1), rows, _operand(0.0, rows))
    total = _segment_sum(rows, offsets, bags, include_last_offset)
    if mode == "sum":
        return total
    ones = _leaf(np.ones(n, weight.dtype)) if keep is None else keep.to(weight.dtype)
    count = _segment_sum(ones, offsets, bags, include_last_offset)
    return total / F.clamp(count, min=1.0).unsqueeze(-1)


class EmbeddingBag(Module):
    """Sums, means or maxima of bags of embeddings, ``torch.nn.EmbeddingBag``; weight
    (num_embeddings, embedding_dim) ~ N(0, 1), the ``padding_idx`` row zeros.

    >>> bag = nn.EmbeddingBag(10, 3, mode="mean")
    >>> bag(tg.tensor([1, 2, 4, 5, 4, 3, 2, 9]), tg.tensor([0, 4])).shape
    (2, 3)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, max_norm: float | None = None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, mode: str = "mean",
                 sparse: bool = False, _weight: Tensor | None = None,
                 include_last_offset: bool = False, padding_idx: int | None = None,
                 device: Any = None, dtype: Any = None):
        super().__init__()
        check_device(device)
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise NotImplementedError("EmbeddingBag: max_norm, scale_grad_by_freq and sparse "
                                      "are not supported by tracegrad")
        if mode not in _MODES:
            raise ValueError(f"EmbeddingBag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.max_norm, self.norm_type, self.scale_grad_by_freq = max_norm, norm_type, False
        self.mode, self.sparse, self.include_last_offset = mode, sparse, include_last_offset
        self.padding_idx = _padding_index(padding_idx, num_embeddings)
        if _weight is None:
            self.weight = Parameter(np.empty((num_embeddings, embedding_dim),
                                             dtype=dtypes.default_float))
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ShapeError(f"EmbeddingBag: _weight has shape {tuple(_weight.shape)}, "
                                 f"expected {(num_embeddings, embedding_dim)}")
            self.weight = Parameter(_weight.detach().clone())
        if dtype is not None:
            self.to(dtype=dtype)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx].fill_(0)

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True, max_norm: Any = None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        mode: str = "mean", sparse: bool = False,
                        include_last_offset: bool = False,
                        padding_idx: int | None = None) -> "EmbeddingBag":
        """An EmbeddingBag holding ``embeddings`` (rows, dim); frozen unless
        ``freeze=False``."""
        if embeddings.ndim != 2:
            raise ShapeError(f"EmbeddingBag.from_pretrained: embeddings must be 2-d, got "
                             f"{tuple(embeddings.shape)}")
        bag = cls(*embeddings.shape, max_norm=max_norm, norm_type=norm_type,
                  scale_grad_by_freq=scale_grad_by_freq, mode=mode, sparse=sparse,
                  _weight=embeddings, include_last_offset=include_last_offset,
                  padding_idx=padding_idx)
        bag.weight.requires_grad = not freeze
        return bag

    def forward(self, input: Any, offsets: Any = None, per_sample_weights: Any = None) -> Tensor:
        return embedding_bag(input, self.weight, offsets, mode=self.mode,
                             per_sample_weights=per_sample_weights,
                             include_last_offset=self.include_last_offset,
                             padding_idx=self.padding_idx)

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}, mode='{self.mode}'{pad}"


__all__ = ["EmbeddingBag"]
