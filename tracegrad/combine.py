"""``where``, ``cat`` and ``stack``: the ops that take several tensors, with their promotion."""

from __future__ import annotations

from typing import Any, Sequence

from . import dtypes
from .errors import ShapeError
from .ops import PRIMITIVES as P
from .tensor import Tensor, _operand, _result_dtype, apply


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Elementwise ``a if condition else b``; gradients flow to a and b (not the condition)."""
    cond = condition if isinstance(condition, Tensor) else Tensor(condition)
    if cond.dtype != dtypes.bool_:
        raise TypeError(
            f"where: the condition must be a bool tensor, got {cond.dtype}; compare first "
            f"(e.g. x > 0) or cast with .bool()"
        )
    if isinstance(a, Tensor):
        b = _operand(b, a)
    elif isinstance(b, Tensor):
        a = _operand(a, b)
    else:
        a = Tensor(a)
        b = _operand(b, a)
    if a.dtype != b.dtype:  # (as arithmetic: a 0-d tensor or a traced float acts as a number)
        dt = _result_dtype(a, b)
        a, b = a.to(dt), b.to(dt)
    return apply(P["where"], cond, a, b)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing dimension. As in PyTorch, 1-d empty tensors (shape
    ``(0,)``) join anything: they count for the dtype only (``out = tg.tensor([])`` then
    ``out = tg.cat([out, row])`` in a loop)."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat: needs at least one tensor")
    joined = [t for t in tensors if t.shape != (0,)]
    if len(joined) < len(tensors):
        dt = tensors[0].dtype
        for t in tensors[1:]:
            dt = dtypes.promote(dt, t.dtype)
        tensors = [t.to(dt) for t in joined] or [tensors[0].to(dt)]
    nd = tensors[0].ndim
    if nd == 0:
        raise ShapeError("cat: zero-dimensional tensors cannot be concatenated; use stack")
    if not -nd <= dim < nd:
        raise ShapeError(f"cat: dim {dim} is out of range for {nd}-dimensional tensors")
    dt = tensors[0].dtype
    for t in tensors[1:]:
        dt = dtypes.promote(dt, t.dtype)
    tensors = [t.to(dt) for t in tensors]
    return apply(P["cat"], *tensors, dim=dim % nd)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new dimension."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ShapeError(
            f"stack: all tensors must have the same shape, got {sorted(shapes)}"
        )
    nd = tensors[0].ndim + 1
    if not -nd <= dim < nd:
        raise ShapeError(f"stack: dim {dim} is out of range for a {nd}-dimensional result")
    return cat([t.unsqueeze(dim) for t in tensors], dim=dim)
