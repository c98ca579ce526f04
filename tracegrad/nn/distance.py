"""Distances and the bilinear form: ``pairwise_distance`` (row by row), ``pdist`` (all
pairs of rows of one matrix) and ``bilinear`` (``x1^T A x2 + b`` per output), with
PyTorch's signatures and defaults. Composites; the layers are in `layers.py`.
"""

from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..errors import ShapeError
from ..tensor import Tensor, _leaf


def _p_norm(d: Tensor, p: float, dim: int, keepdim: bool, op: str) -> Tensor:
    """The p-norm of ``d`` along ``dim``, with gradient 0 (not nan) where ``d`` is all zero,
    as PyTorch's distance backwards give; p = 0 counts the nonzero elements."""
    if not isinstance(p, (int, float)) or p < 0:
        raise ValueError(f"{op}: p must be a non-negative number or inf, got {p!r}")
    if p == 0:
        return (d != 0).sum(dim, keepdim).to(d.dtype)
    if p == math.inf:
        return F.amax(d.abs(), dim, keepdim)
    powered = d * d if p == 2 else d.abs() if p == 1 else d.abs() ** p
    total = powered.sum(dim, keepdim)
    if p == 1:
        return total
    return F.safe_root(total, p)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """``||x1 - x2 + eps||_p`` along the last dimension (the two broadcast).

    >>> F.pairwise_distance(tg.tensor([[0.0, 0.0]]), tg.tensor([[3.0, 4.0]]), eps=0.0)
    tensor([5.])
    """
    x2 = F._operand(x2, x1)
    try:
        shape = np.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise ShapeError(f"pairwise_distance: x1 {x1.shape} and x2 {x2.shape} do not "
                         f"broadcast") from None
    if not shape:
        raise ShapeError("pairwise_distance: needs inputs of at least 1 dimension, got 0-d")
    return _p_norm(x1 - x2 + eps, p, len(shape) - 1, keepdim, "pairwise_distance")


def pdist(input: Tensor, p: float = 2.0) -> Tensor:
    """The p-norm distances between all pairs of rows i < j of an (N, M) input, in row-major
    order of (i, j): N (N - 1) / 2 values."""
    if input.ndim != 2:
        raise ShapeError(f"pdist: expects a 2-d (N, M) input, got shape {input.shape}")
    i, j = np.triu_indices(input.shape[0], 1)
    d = input[_leaf(i)] - input[_leaf(j)]
    return _p_norm(d, p, 1, False, "pdist")


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None
             ) -> Tensor:
    """``y[..., o] = sum_ij input1[..., i] weight[o, i, j] input2[..., j] + bias[o]``."""
    if weight.ndim != 3 or input1.ndim < 1 or input2.ndim < 1 or \
            weight.shape[1:] != (input1.shape[-1], input2.shape[-1]) or \
            input1.shape[:-1] != input2.shape[:-1] or \
            (bias is not None and bias.shape != weight.shape[:1]):
        raise ShapeError(
            f"bilinear: expects input1 (..., in1), input2 (..., in2) with the same leading "
            f"dimensions, weight (out, in1, in2) and bias (out,); got input1 {input1.shape}, "
            f"input2 {input2.shape}, weight {weight.shape}"
            + (f", bias {bias.shape}" if bias is not None else ""))
    out_f, in1, in2 = weight.shape
    lead = input1.shape[:-1]
    # one matmul: (B, in1) @ (in1, out * in2), then a product with input2 summed over in2
    t = input1.reshape(-1, in1) @ weight.permute(1, 0, 2).reshape(in1, out_f * in2)
    y = (t.reshape(-1, out_f, in2) * input2.reshape(-1, 1, in2)).sum(-1).reshape(
        lead + (out_f,))
    return y + bias if bias is not None else y


__all__ = ["pairwise_distance", "pdist", "bilinear"]
