"""ASGD: stochastic gradient descent that also keeps a running average of the iterates
(Polyak & Juditsky), with PyTorch's arguments, state and schedule of step sizes.

The step size ``eta`` and averaging weight ``mu`` are float64 0-d tensors in the state, and
the averaging's "copy while mu is 1" is a tensor condition, so a compiled training step
captures the whole update and stays right when ``t0`` is crossed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Iterable

import numpy as np

from ..combine import where
from ..tensor import Tensor, _leaf
from .adaptive import _COMMON, _direction
from .optimizer import Optimizer, _a_number, _step_count, _zeros_like


class ASGD(Optimizer):
    """Averaged SGD: ``p`` descends with step ``eta = lr / (1 + lambd*lr*t)**alpha`` (decayed
    by ``lambd``) and ``state["ax"]`` averages the iterates from step ``t0`` on.

    >>> opt = tg.optim.ASGD(model.parameters(), lr=1e-2, t0=100)
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lambd: float = 1e-4,
                 alpha: float = 0.75, t0: float = 1e6, weight_decay: float = 0.0, *,
                 maximize: bool = False):
        super().__init__(params, dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0,
                                      weight_decay=weight_decay, maximize=maximize))

    _RULES = {"lr": _COMMON["lr"], "weight_decay": _COMMON["weight_decay"],
              "maximize": _COMMON["maximize"], "lambd": ("a number", _a_number),
              "alpha": ("a number", _a_number), "t0": ("a number", _a_number)}

    def _state_rules(self, group: Mapping) -> tuple[set, set]:
        return {"step", "eta", "mu", "ax"}, {"ax"}

    def _scalar_state_rules(self) -> dict[str, tuple[str, Any]]:
        return {"eta": ("a number", math.isfinite), "mu": ("a number in (0, 1]",
                                                           lambda mu: 0.0 < mu <= 1.0)}

    def _update(self, p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        lr, lambd, alpha, t0 = group["lr"], group["lambd"], group["alpha"], group["t0"]
        if "ax" not in state:
            state["eta"] = _leaf(np.array(lr, dtype=np.float64))
            state["mu"] = _leaf(np.ones((), dtype=np.float64))
            state["ax"] = _zeros_like(p)
        step = _step_count(state)
        g = _direction(p, grad, group)
        eta, mu, ax = state["eta"], state["mu"], state["ax"]
        p._assign(p * (1 - lambd * eta).to(p.dtype))
        p._assign(p - g * eta.to(p.dtype))
        # Before t0, mu is 1 and the average is the iterate itself (copied, as PyTorch does:
        # ax + (p - ax) * 1 can differ from p by a rounding).
        ax._assign(where(mu == 1, p, ax + (p - ax) * mu.to(p.dtype)))
        eta._assign(lr / (1 + lambd * lr * step) ** alpha)
        mu._assign(1 / (step - t0).maximum(1.0))
