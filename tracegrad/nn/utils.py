"""Training utilities: gradient clipping (by total norm, or by value)."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from .. import dtypes
from ..autograd import no_grad
from ..tensor import Tensor, stack


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Scale all gradients together so their total norm is at most ``max_norm``.

    Returns the total norm before clipping, as ``torch.nn.utils.clip_grad_norm_``. Written
    with tensor ops, so it also works inside a compiled training step.
    """
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return Tensor(np.array(0.0, dtype=dtypes.default_float))
    with no_grad():
        if norm_type == math.inf:
            total = stack([g.abs().amax() for g in grads]).amax()
        elif norm_type == 2.0:  # (g * g: one pass, where abs() ** 2 takes two)
            total = stack([(g * g).sum() for g in grads]).sum().sqrt()
        else:
            total = stack([(g.abs() ** norm_type).sum() for g in grads]).sum() ** (
                1.0 / norm_type)
        if error_if_nonfinite and not math.isfinite(float(total)):
            raise RuntimeError(f"clip_grad_norm_: the total gradient norm is {float(total)}")
        coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef)  # (in place: one pass over each gradient, no copy back)
    return total


def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float,
                     foreach: bool | None = None) -> None:
    """Clamp every gradient to ``[-clip_value, clip_value]`` in place, as
    ``torch.nn.utils.clip_grad_value_``. Tensor ops, so it works in a compiled step.

    >>> nn.utils.clip_grad_value_(model.parameters(), clip_value=1.0)
    """
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    with no_grad():
        for p in params:
            if p.grad is not None:
                p.grad._assign(p.grad.clamp(-clip_value, clip_value))
