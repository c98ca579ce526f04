"""``tg.func``: the function transforms under ``torch.func``'s names, so that code written
for ``torch.func`` runs with ``torch`` replaced by ``tracegrad`` (see ``transforms.py``).

>>> tg.func.jvp(lambda x: x.sin(), (x,), (v,))
>>> tg.func.grad_and_value(lambda x: (x * x).sum())(x)    # (2x, sum x²)
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from .transforms import grad, hessian, jacfwd, jacrev, jvp, value_and_grad, vjp

__all__ = ["grad", "grad_and_value", "hessian", "jacfwd", "jacrev", "jvp", "vjp"]


def grad_and_value(func: Callable, argnums: int | tuple[int, ...] = 0,
                   has_aux: bool = False) -> Callable:
    """``torch.func.grad_and_value``: ``(gradient, value)`` (``tg.value_and_grad`` gives
    them the other way round, as JAX does)."""
    vg = value_and_grad(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        value, grads = vg(*args, **kwargs)
        return grads, value

    return wrapper
