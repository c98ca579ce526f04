"""More first-order optimizers with PyTorch's arguments and state: RMSprop, Adagrad, Adamax,
NAdam.

Like SGD and Adam (optimizer.py), each update is tensor ops applied with
``Tensor._assign``, and the step count is a float64 tensor, so a compiled training step
captures the whole update. The formulas follow ``torch.optim``'s single-tensor code paths
operation by operation, so float64 runs agree with PyTorch to rounding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Iterable

import numpy as np

from ..combine import where as tg_where
from ..tensor import Tensor, _leaf
from .optimizer import (
    Optimizer,
    _a_flag,
    _at_least_zero,
    _betas,
    _number,
    _step_count,
    _zeros_like,
)

_COMMON = {
    "lr": ("a number >= 0", _at_least_zero),
    "eps": ("a number >= 0", _at_least_zero),
    "weight_decay": ("a number >= 0", _at_least_zero),
    "maximize": ("True or False", _a_flag),
}


def _direction(p: Tensor, grad: Tensor, group: dict) -> Tensor:
    """The gradient to descend: negated for ``maximize``, plus L2 weight decay."""
    g = -grad if group["maximize"] else grad
    if group["weight_decay"]:
        g = g + p * group["weight_decay"]
    return g


class RMSprop(Optimizer):
    """RMSprop (Hinton), PyTorch's form: divide by a running RMS of the gradient, optionally
    centered and with momentum.

    >>> opt = tg.optim.RMSprop(model.parameters(), lr=1e-2, alpha=0.99)
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, maximize: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered,
                                      maximize=maximize))

    _RULES = {**_COMMON, "alpha": ("a number >= 0", _at_least_zero),
              "momentum": ("a number >= 0", _at_least_zero),
              "centered": ("True or False", _a_flag)}

    def _state_rules(self, group: Mapping) -> tuple[set, set]:
        need = {"square_avg"}
        if _number(group.get("momentum", 0)) and group["momentum"] > 0:
            need.add("momentum_buffer")
        if group.get("centered"):
            need.add("grad_avg")
        return need | {"step"}, need | {"momentum_buffer", "grad_avg"}

    def _update(self, p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        alpha, mu = group["alpha"], group["momentum"]
        if "square_avg" not in state:
            state["square_avg"] = _zeros_like(p)
            if mu > 0:
                state["momentum_buffer"] = _zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = _zeros_like(p)
        _step_count(state)
        g = _direction(p, grad, group)
        sq = state["square_avg"]
        sq._assign(sq * alpha + g * g * (1 - alpha))
        if group["centered"]:
            ga = state["grad_avg"]
            ga._assign(ga + (g - ga) * (1 - alpha))
            avg = (sq - ga * ga).sqrt() + group["eps"]
        else:
            avg = sq.sqrt() + group["eps"]
        if mu > 0:
            buf = state["momentum_buffer"]
            buf._assign(buf * mu + g / avg)
            p._assign(p + buf * -group["lr"])
        else:
            p._assign(p + (g / avg) * -group["lr"])


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.): divide by the root of the summed squared gradients.

    >>> opt = tg.optim.Adagrad(model.parameters(), lr=1e-2)
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, maximize: bool = False):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize))
        # PyTorch creates Adagrad's state up front (so a fresh state_dict already has it).
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group, self.state[p])

    _RULES = {**_COMMON, "lr_decay": ("a number >= 0", _at_least_zero),
              "initial_accumulator_value": ("a number >= 0", _at_least_zero)}

    def _state_rules(self, group: Mapping) -> tuple[set, set]:
        return {"step", "sum"}, {"sum"}

    @staticmethod
    def _init_state(p: Tensor, group: dict, state: dict) -> None:
        if "sum" not in state:
            state["step"] = _leaf(np.zeros((), dtype=np.float64))
            state["sum"] = _leaf(np.full_like(p._data, group["initial_accumulator_value"]))

    def _update(self, p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        self._init_state(p, group, state)
        step = _step_count(state)
        g = _direction(p, grad, group)
        clr = (group["lr"] / ((step - 1) * group["lr_decay"] + 1)).to(p.dtype)
        s = state["sum"]
        s._assign(s + g * g)
        p._assign(p + (g / (s.sqrt() + group["eps"])) * -clr)


class Adamax(Optimizer):
    """Adamax (Kingma & Ba): Adam with an infinity-norm second moment.

    >>> opt = tg.optim.Adamax(model.parameters(), lr=2e-3)
    """

    def __init__(self, params: Iterable[Any], lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, maximize: bool = False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize))

    _RULES = {**_COMMON, "betas": ("a pair of numbers in [0, 1)", _betas)}

    def _state_rules(self, group: Mapping) -> tuple[set, set]:
        return {"step", "exp_avg", "exp_inf"}, {"exp_avg", "exp_inf"}

    def _update(self, p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        b1, b2 = group["betas"]
        if "exp_avg" not in state:
            state["exp_avg"] = _zeros_like(p)
            state["exp_inf"] = _zeros_like(p)
        step = _step_count(state)
        g = _direction(p, grad, group)
        m, u = state["exp_avg"], state["exp_inf"]
        m._assign(m + (g - m) * (1 - b1))
        u._assign((u * b2).maximum(g.abs() + group["eps"]))
        clr = (group["lr"] / (1 - b1**step)).to(p.dtype)
        p._assign(p + (m / u) * -clr)


class NAdam(Optimizer):
    """Adam with Nesterov momentum (Dozat), PyTorch's form with its momentum-decay schedule;
    ``decoupled_weight_decay=True`` decays weights as AdamW does.

    >>> opt = tg.optim.NAdam(model.parameters(), lr=2e-3)
    """

    def __init__(self, params: Iterable[Any], lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))

    _RULES = {**_COMMON, "betas": ("a pair of numbers in [0, 1)", _betas),
              "momentum_decay": ("a number >= 0", _at_least_zero),
              "decoupled_weight_decay": ("True or False", _a_flag)}

    def _state_rules(self, group: Mapping) -> tuple[set, set]:
        return {"step", "exp_avg", "exp_avg_sq", "mu_product"}, {"exp_avg", "exp_avg_sq"}

    def _scalar_state_rules(self) -> dict[str, tuple[str, Any]]:
        # the product of the momentum coefficients so far
        return {"mu_product": ("a number in (0, 1]", lambda mu: 0.0 < mu <= 1.0)}

    def _update(self, p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        b1, b2 = group["betas"]
        lr, wd, psi = group["lr"], group["weight_decay"], group["momentum_decay"]
        g = -grad if group["maximize"] else grad
        if "exp_avg" not in state:
            state["mu_product"] = _leaf(np.ones((), dtype=np.float64))
            state["exp_avg"] = _zeros_like(p)
            state["exp_avg_sq"] = _zeros_like(p)
        step = _step_count(state)
        if wd and group["decoupled_weight_decay"]:
            p._assign(p * (1 - lr * wd))
        elif wd:
            g = g + p * wd
        # The momentum schedule in float64 (step and mu_product are float64 tensors).
        mu = (1.0 - 0.5 * 0.96 ** (step * psi)) * b1
        mu_next = (1.0 - 0.5 * 0.96 ** ((step + 1) * psi)) * b1
        mu_product = state["mu_product"]
        mu_product._assign(mu_product * mu)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m._assign(m + (g - m) * (1 - b1))
        v._assign(v * b2 + g * g * (1 - b2))
        denom = (v / (1 - b2**step).to(p.dtype)).sqrt() + group["eps"]
        c_grad = ((1.0 - mu) * -lr / (1.0 - mu_product)).to(p.dtype)
        c_avg = (mu_next * -lr / (1.0 - mu_product * mu_next)).to(p.dtype)
        p._assign(p + (g / denom) * c_grad)
        p._assign(p + (m / denom) * c_avg)


def _unit_interval(v: Any) -> Any:
    x = _number(v)
    return TypeError if x is None else 0.0 <= x <= 1.0


def _etas(v: Any) -> Any:
    if not isinstance(v, (tuple, list)) or len(v) != 2 or None in map(_number, v):
        return TypeError
    return 0.0 < _number(v[0]) < 1.0 < _number(v[1])


def _step_sizes(v: Any) -> Any:
    if not isinstance(v, (tuple, list)) or len(v) != 2 or None in map(_number, v):
        return TypeError
    return 0.0 <= _number(v[0]) <= _number(v[1])


class RAdam(Optimizer):
    """Rectified Adam (Liu et al.): plain momentum SGD while the second moment's estimate
    is too young to trust (rho_t <= 5), Adam with a variance rectification after;
    ``decoupled_weight_decay=True`` decays weights as AdamW does.

    >>> opt = tg.optim.RAdam(model.parameters(), lr=1e-3)
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled_weight_decay: bool = False, *,
                 maximize: bool = False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))

    _RULES = {**_COMMON, "betas": ("a pair of numbers in [0, 1)", _betas),
              "decoupled_weight_decay": ("True or False", _a_flag)}

    def _state_rules(self, group: Mapping) -> tuple[set, set]:
        return {"step", "exp_avg", "exp_avg_sq"}, {"exp_avg", "exp_avg_sq"}

    def _update(self, p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        b1, b2 = group["betas"]
        lr, wd = group["lr"], group["weight_decay"]
        g = -grad if group["maximize"] else grad
        if "exp_avg" not in state:
            state["exp_avg"] = _zeros_like(p)
            state["exp_avg_sq"] = _zeros_like(p)
        step = _step_count(state)
        if wd and group["decoupled_weight_decay"]:
            p._assign(p * (1 - lr * wd))
        elif wd:
            g = g + p * wd
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m._assign(m + (g - m) * (1 - b1))
        v._assign(v * b2 + g * g * (1 - b2))
        # The length of the approximated simple moving average, in float64, and the
        # rectification (clamped at 0 so that the branch not taken holds no nan).
        bias1, bias2 = 1 - b1**step, 1 - b2**step
        rho_inf = 2 / (1 - b2) - 1
        rho = rho_inf - 2 * step * b2**step / bias2
        rect = ((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        rect = rect.maximum(0.0).sqrt()
        adaptive = bias2.sqrt().to(p.dtype) / (v.sqrt() + group["eps"])
        # A tensor condition, not an `if`, so a compiled step takes either branch.
        scale = tg_where(rho > 5.0, adaptive * rect.to(p.dtype), 1.0)
        p._assign(p - (m / bias1.to(p.dtype)) * lr * scale)


class Adadelta(Optimizer):
    """Adadelta (Zeiler): steps scaled by the ratio of running RMS of past updates and of
    gradients, so ``lr`` is only an overall factor.

    >>> opt = tg.optim.Adadelta(model.parameters())
    """

    def __init__(self, params: Iterable[Any], lr: float = 1.0, rho: float = 0.9,
                 eps: float = 1e-6, weight_decay: float = 0.0, *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize))

    _RULES = {**_COMMON, "rho": ("a number in [0, 1]", _unit_interval)}

    def _state_rules(self, group: Mapping) -> tuple[set, set]:
        return {"step", "square_avg", "acc_delta"}, {"square_avg", "acc_delta"}

    def _update(self, p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        rho, eps = group["rho"], group["eps"]
        if "square_avg" not in state:
            state["square_avg"] = _zeros_like(p)
            state["acc_delta"] = _zeros_like(p)
        _step_count(state)
        g = _direction(p, grad, group)
        sq, acc = state["square_avg"], state["acc_delta"]
        sq._assign(sq * rho + g * g * (1 - rho))
        delta = (acc + eps).sqrt() / (sq + eps).sqrt() * g
        acc._assign(acc * rho + delta * delta * (1 - rho))
        p._assign(p - delta * group["lr"])


class Rprop(Optimizer):
    """Resilient backpropagation (Riedmiller & Braun): each weight's own step size grows by
    ``etas[1]`` while its gradient keeps its sign and shrinks by ``etas[0]`` when the sign
    flips (and that step is skipped); only the gradient's sign is used.

    >>> opt = tg.optim.Rprop(model.parameters(), lr=1e-2)
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2,
                 etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50.0), *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, etas=etas, step_sizes=step_sizes,
                                      maximize=maximize))

    _RULES = {"lr": _COMMON["lr"], "maximize": _COMMON["maximize"],
              "etas": ("a pair (etaminus, etaplus) with 0 < etaminus < 1 < etaplus", _etas),
              "step_sizes": ("a pair (min, max) with 0 <= min <= max", _step_sizes)}

    def _state_rules(self, group: Mapping) -> tuple[set, set]:
        return {"step", "prev", "step_size"}, {"prev", "step_size"}

    def _update(self, p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        etaminus, etaplus = group["etas"]
        lo, hi = group["step_sizes"]
        g = -grad if group["maximize"] else grad
        if "prev" not in state:
            state["prev"] = _zeros_like(p)
            state["step_size"] = _leaf(np.full_like(p._data, group["lr"]))
        _step_count(state)
        prev, size = state["prev"], state["step_size"]
        agree = g * prev
        flipped = agree < 0
        grown = tg_where(agree > 0, size * etaplus, tg_where(flipped, size * etaminus, size))
        size._assign(grown.maximum(lo).minimum(hi))
        g = tg_where(flipped, 0.0, g)  # after a sign flip: no step, and no flip next time
        p._assign(p - g.sign() * size)
        prev._assign(g)
