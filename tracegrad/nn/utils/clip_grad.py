"""Gradient clipping, as ``torch.nn.utils``: by the total norm (`clip_grad_norm_`, made of
`get_total_norm` and `clip_grads_with_norm_`) or by value (`clip_grad_value_`). Tensor ops
throughout, so each works inside a compiled training step."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ... import dtypes
from ...arguments import checked
from ...autograd import no_grad
from ...linalg import vector_norm
from ...tensor import Tensor, stack


def _tensors(tensors: Iterable[Tensor] | Tensor) -> list:
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def get_total_norm(tensors: Iterable[Tensor] | Tensor, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """The norm of all the ``tensors`` together, as ``torch.nn.utils.get_total_norm``: the
    ``norm_type`` norm of the tensors' ``norm_type`` norms (for inf and p > 0 the norm of
    them as one vector; -inf the smallest magnitude; 0 the number of tensors that are not
    all zeros, as torch's); 0 for none."""
    tensors = _tensors(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return Tensor(np.array(0.0, dtype=dtypes.default_float))
    with no_grad():
        if norm_type == 2.0:  # (g * g: one pass, where abs() ** 2 takes two)
            total = stack([(g * g).sum() for g in tensors]).sum().sqrt()
        else:
            total = vector_norm(stack([vector_norm(g, norm_type) for g in tensors]),
                                norm_type)
    if error_if_nonfinite:
        total = checked(total, "finite", (), RuntimeError,
                        f"get_total_norm: the total norm of order {norm_type} is {{value}}; "
                        f"pass error_if_nonfinite=False to clip anyway")
    return total


def clip_grads_with_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                          total_norm: Tensor, foreach: bool | None = None) -> None:
    """Scale the parameters' gradients by ``max_norm / (total_norm + 1e-6)`` where that is
    below 1, in place, as ``torch.nn.utils.clip_grads_with_norm_`` (``total_norm`` from
    `get_total_norm`, maybe of more gradients than these)."""
    grads = [p.grad for p in _tensors(parameters) if p.grad is not None]
    if not grads:
        return
    with no_grad():
        coef = (float(max_norm) / (total_norm + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef)  # (in place: one pass over each gradient, no copy back)


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach: bool | None = None) -> Tensor:
    """Scale all gradients together so their total norm is at most ``max_norm``.

    Returns the total norm before clipping, as ``torch.nn.utils.clip_grad_norm_``.
    """
    params = _tensors(parameters)
    total = get_total_norm([p.grad for p in params if p.grad is not None], norm_type,
                           error_if_nonfinite)
    clip_grads_with_norm_(params, max_norm, total)
    return total


def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float,
                     foreach: bool | None = None) -> None:
    """Clamp every gradient to ``[-clip_value, clip_value]`` in place, as
    ``torch.nn.utils.clip_grad_value_``.

    >>> nn.utils.clip_grad_value_(model.parameters(), clip_value=1.0)
    """
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    with no_grad():
        for p in _tensors(parameters):
            if p.grad is not None:
                p.grad._assign(p.grad.clamp(-clip_value, clip_value))


def clip_grad_norm(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                   norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach: bool | None = None) -> Tensor:
    """Deprecated (as in PyTorch): use `clip_grad_norm_`, which this warns and calls."""
    import warnings

    warnings.warn("tg.nn.utils.clip_grad_norm is deprecated in favor of "
                  "tg.nn.utils.clip_grad_norm_", FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)
