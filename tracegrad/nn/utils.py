"""Training utilities: gradient clipping."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from ..tensor import Tensor


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Scale all gradients together so their total norm is at most ``max_norm``.

    Returns the total norm before clipping, as ``torch.nn.utils.clip_grad_norm_``.
    """
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return Tensor(np.array(0.0, dtype=np.float32))
    if norm_type == math.inf:
        total = max(float(np.max(np.abs(g.data))) if g.data.size else 0.0 for g in grads)
    else:
        total = float(sum(np.sum(np.abs(g.data.astype(np.float64)) ** norm_type)
                          for g in grads)) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total gradient norm is {total}")
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for g in grads:
            g.data = (g.data * coef).astype(g.data.dtype)
            g._version += 1
    return Tensor(np.array(total, dtype=grads[0].data.dtype))
