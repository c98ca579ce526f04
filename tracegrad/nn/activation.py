"""Activations with parameters or randomness, and PyTorch's in-place F variants:
``prelu`` (a learned slope per channel), ``rrelu`` (a random slope in training),
``relu_``, ``elu_``, ``leaky_relu_``, ``hardtanh_``, ``selu_``, ``celu_``, ``threshold_``,
``rrelu_``. Composites; the layers over them are in `layers.py`.
"""

from __future__ import annotations

from .. import functional as F
from ..errors import ShapeError
from ..tensor import Tensor, where


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """``input`` where positive, ``weight * input`` elsewhere; ``weight`` has one slope,
    or one per channel (dimension 1), as in PyTorch.

    >>> F.prelu(tg.tensor([[-2.0, 3.0]]), tg.tensor([0.25]))
    tensor([[-0.5000,  3.0000]])
    """
    if weight.ndim > 1:
        raise ShapeError(f"prelu: weight must be a scalar or 1-d, got shape {weight.shape}")
    channels = input.shape[1] if input.ndim >= 2 else 1
    n = weight.numel()
    if n != 1 and n != channels:
        raise ShapeError(f"prelu: weight has {n} slopes but the input of shape {input.shape} "
                         f"has {channels} channel{'s' * (channels != 1)} (dimension 1); give "
                         f"one slope, or one per channel")
    if n != 1:
        weight = weight.reshape((channels,) + (1,) * (input.ndim - 2))
    elif input.ndim < weight.ndim:
        weight = weight.reshape(())
    return where(input > 0, input, weight * input)


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
          training: bool = False, inplace: bool = False) -> Tensor:
    """Leaky ReLU with slope ``(lower + upper) / 2`` in eval; in training each element's
    slope is drawn from U(lower, upper) (tg.manual_seed's generator; in a compiled function
    a new draw each call)."""
    if lower > upper:
        raise ValueError(f"rrelu: lower={lower} must be at most upper={upper}")
    if inplace:
        return rrelu_(input, lower, upper, training)
    if not training:
        return F.leaky_relu(input, (lower + upper) / 2)
    from ..creation import rand

    slope = rand(*input.shape, dtype=input.dtype) * (upper - lower) + lower
    return where(input > 0, input, input * slope)


relu_ = F._inplace_of(F.relu, "relu_")
elu_ = F._inplace_of(F.elu, "elu_")
leaky_relu_ = F._inplace_of(F.leaky_relu, "leaky_relu_")
hardtanh_ = F._inplace_of(F.hardtanh, "hardtanh_")
selu_ = F._inplace_of(F.selu, "selu_")
celu_ = F._inplace_of(F.celu, "celu_")
threshold_ = F._inplace_of(F.threshold, "threshold_")
rrelu_ = F._inplace_of(rrelu, "rrelu_")


def softmax2d(input: Tensor) -> Tensor:
    """Softmax over the channels of (N, C, H, W) or (C, H, W) input (nn.Softmax2d)."""
    if input.ndim not in (3, 4):
        raise ShapeError(f"Softmax2d: expected input to be 3D or 4D, got shape {input.shape}")
    return F.softmax(input, -3)


__all__ = ["prelu", "rrelu", "relu_", "elu_", "leaky_relu_", "hardtanh_", "selu_", "celu_",
           "threshold_", "rrelu_"]
