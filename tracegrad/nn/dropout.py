"""Dropout beyond ``F.dropout``: channel dropout (``dropout1d/2d/3d``: whole channels of
(N, C, ...) zeroed at once), alpha dropout for SELU networks (``alpha_dropout``,
``feature_alpha_dropout``: dropped values go to SELU's negative saturation and an affine map
keeps the mean and variance), and ``gumbel_softmax``. PyTorch's signatures and defaults.

Randomness comes from tg.manual_seed's generator; in a compiled function each call draws
anew (the draw is a graph node).
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import functional as F
from ..creation import rand
from ..errors import ShapeError
from ..tensor import Tensor

# SELU's scale * alpha: the value SELU tends to for very negative inputs is minus this
_SELU_SATURATION = 1.7580993408473766


def _check_p(op: str, p: float) -> None:
    if not 0 <= p <= 1:
        raise ValueError(f"{op}: dropout probability p has to be between 0 and 1, got {p}")


def _keep(op: str, x: Tensor, p: float, feature: bool) -> Tensor:
    """A 0/1 mask of x's dtype, 1 with probability 1 - p: per element, or per channel of
    (N, C, ...) when ``feature`` (shape (N, C, 1, ...), broadcast over the rest)."""
    if feature and x.ndim < 2:
        raise ShapeError(f"{op}: feature dropout needs an input (N, C, ...) of at least 2 "
                         f"dimensions, got shape {x.shape}")
    shape = x.shape[:2] + (1,) * (x.ndim - 2) if feature else x.shape
    return (rand(*shape, dtype=x.dtype) >= p).to(x.dtype)


def _dropout(op: str, x: Tensor, p: float, training: bool, feature: bool,
             alpha: bool) -> Tensor:
    _check_p(op, p)
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    keep = _keep(op, x, p, feature)
    if not alpha:
        return x * (keep * (1 / (1 - p)))
    # PyTorch's affine map: a (x keep + sat' (1 - keep)) + b with sat' = -saturation
    a = ((_SELU_SATURATION ** 2 * p + 1) * (1 - p)) ** -0.5
    return x * (keep * a) + (keep - 1) * (_SELU_SATURATION * a) + _SELU_SATURATION * a * p


def _unbatched(x: Tensor, batched_ndim: int, fn) -> Tensor:
    return fn(x) if x.ndim == batched_ndim else fn(x.unsqueeze(0)).squeeze(0)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, L) or (C, L) with probability ``p``, scaling the rest
    by 1/(1-p), in training.

    >>> F.dropout1d(tg.ones(1, 2, 3), 0.5, training=False).shape
    (1, 2, 3)
    """
    if input.ndim not in (2, 3):
        raise ShapeError(f"dropout1d: expected a 2-d (C, L) or 3-d (N, C, L) input, got shape "
                         f"{input.shape}")
    return _unbatched(input, 3, lambda x: _dropout("dropout1d", x, p, training, True, False))


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, H, W) with probability ``p``, scaling the rest by
    1/(1-p), in training. A 3-d input is taken as (N, C, L), with PyTorch's warning."""
    if input.ndim == 3:
        warnings.warn("dropout2d: a 3-d input is taken as (N, C, L) and its channels dropped, "
                      "as PyTorch does; use dropout1d for that, or add the batch dimension",
                      UserWarning, stacklevel=2)
    elif input.ndim != 4:
        warnings.warn(f"dropout2d: expects a 4-d (N, C, H, W) input, got shape {input.shape}; "
                      f"dropping channels of dimension 1", UserWarning, stacklevel=2)
    return _dropout("dropout2d", input, p, training, True, False)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) with probability ``p``,
    scaling the rest by 1/(1-p), in training."""
    if input.ndim not in (4, 5):
        warnings.warn(f"dropout3d: expects a 4-d (C, D, H, W) or 5-d (N, C, D, H, W) input, "
                      f"got shape {input.shape}; taking it as unbatched, as PyTorch does",
                      UserWarning, stacklevel=2)
    return _unbatched(input, 5, lambda x: _dropout("dropout3d", x, p, training, True, False))


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                  inplace: bool = False) -> Tensor:
    """Alpha dropout (for SELU networks), in training: dropped elements are set to SELU's
    negative saturation, then an affine map restores zero mean and unit variance."""
    return _dropout("alpha_dropout", input, p, training, False, True)


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                          inplace: bool = False) -> Tensor:
    """`alpha_dropout` of whole channels of (N, C, ...)."""
    return _dropout("feature_alpha_dropout", input, p, training, True, True)


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, eps: float = 1e-10,
                   dim: int = -1) -> Tensor:
    """A sample from the Gumbel-softmax (concrete) distribution over ``dim``:
    ``softmax((logits + g) / tau)`` with g ~ Gumbel(0, 1). ``hard``: the one-hot argmax
    with the soft sample's gradient (straight-through)."""
    if tau <= 0:
        raise ValueError(f"gumbel_softmax: tau must be positive, got {tau}")
    # g = -log(E), E ~ Exp(1) = -log(1 - U); E is kept from 0 so g stays finite
    u = rand(*logits.shape, dtype=logits.dtype)
    exp1 = F.clamp(-F.log1p(-u), min=float(np.finfo(logits.dtype).tiny))
    soft = F.softmax((logits - exp1.log()) / tau, dim)
    if not hard:
        return soft
    index = soft.detach().argmax(dim, keepdim=True)
    one_hot = F.scatter(F.full_like(soft.detach(), 0.0), dim, index, value=1.0)
    return one_hot - soft.detach() + soft


__all__ = ["dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
           "gumbel_softmax"]
