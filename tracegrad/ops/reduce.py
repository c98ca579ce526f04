"""Reductions: sum and max (with their gradients), argmax (without)."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from .base import normalize_axes, register


def _reduced_shape(shape: tuple, axes: tuple, keepdim: bool) -> tuple:
    if keepdim:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def _kept(g, x, axes, keepdim):
    """``g`` with the reduced dimensions put back as size 1, ready to broadcast against x."""
    if keepdim or not axes:
        return g
    return g.reshape(_reduced_shape(tuple(x.shape), axes, True))


# ---------------------------------------------------------------- sum


def _sum_forward(x, *, axes, keepdim):
    return np.sum(x, axis=axes, keepdims=keepdim)


def _sum_infer(x, *, axes, keepdim):
    normalize_axes("sum", axes, len(x.shape))
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.int64)
    return _reduced_shape(tuple(x.shape), axes, keepdim), dtype


def _sum_vjp(g, out, x, *, axes, keepdim):
    return (_kept(g, x, axes, keepdim).expand(tuple(x.shape)),)


register("sum", "reduce", _sum_forward, _sum_infer, _sum_vjp)


# ---------------------------------------------------------------- max


def _max_forward(x, *, axes, keepdim):
    return np.max(x, axis=axes, keepdims=keepdim)


def _max_infer(x, *, axes, keepdim):
    for a in axes:
        if x.shape[a] == 0:
            raise ShapeError(
                f"max: cannot reduce dimension {a} of size 0 (shape {tuple(x.shape)}); "
                f"a maximum of nothing is undefined"
            )
    return _reduced_shape(tuple(x.shape), axes, keepdim), x.dtype


def _max_vjp(g, out, x, *, axes, keepdim):
    # The gradient goes to the maxima, split evenly among ties (as PyTorch's amax).
    hit = x == _kept(out, x, axes, keepdim)
    count = hit.sum(dim=axes, keepdim=True).to(x.dtype)
    return (hit._select(_kept(g, x, axes, keepdim) / count, 0),)


register("max", "reduce", _max_forward, _max_infer, _max_vjp)


# ---------------------------------------------------------------- argmax


def _argmax_forward(x, *, axis, keepdim):
    return np.argmax(x, axis=axis, keepdims=keepdim)


def _argmax_infer(x, *, axis, keepdim):
    if axis is None:
        if x.size == 0 if hasattr(x, "size") else 0 in x.shape:
            raise ShapeError("argmax: the tensor is empty")
        return ((1,) * len(x.shape) if keepdim else ()), np.dtype(np.int64)
    (a,) = normalize_axes("argmax", axis, len(x.shape))
    if x.shape[a] == 0:
        raise ShapeError(f"argmax: dimension {a} of shape {tuple(x.shape)} is empty")
    return _reduced_shape(tuple(x.shape), (a,), keepdim), np.dtype(np.int64)


register("argmax", "reduce", _argmax_forward, _argmax_infer, None)
