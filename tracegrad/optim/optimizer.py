"""Optimizers: SGD, Adam, AdamW, with PyTorch's arguments, parameter groups and state dicts.

Each update is written with tensor ops and applied with ``Tensor._assign`` (in place), and
the step count is a tensor, so a compiled training step (``tg.compile``) captures the update
too, and one graph holds forward, backward and update.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor, _Anomaly, _leaf, _structure_epoch


def _zeros_like(p: Tensor) -> Tensor:
    return _leaf(np.zeros_like(p.data))


class Optimizer:
    """Base class: holds ``param_groups`` (dicts of params and hyper-parameters) and
    per-parameter ``state``; subclasses define ``_update(p, grad, group, state)``."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]):
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}  # keyed by id(param)
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: dict[str, Any]) -> None:
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{type(self).__name__}: parameters must be tg.Tensors, got "
                    f"{type(p).__name__}"
                )
            if not p.requires_grad:
                raise ValueError(
                    f"{type(self).__name__}: a parameter of shape {p.shape} does not require "
                    f"grad, so it can never be updated"
                )
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"{type(self).__name__}: a parameter appears in two groups")
        unknown = set(group) - set(self.defaults) - {"params", "initial_lr"}
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown options {sorted(unknown)}")
        full = {**self.defaults, **group, "params": params}
        self.param_groups.append(full)
        _structure_epoch[0] += 1

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad = _zeros_like(p.grad)

    def step(self, closure: Any = None) -> Any:
        """Update every parameter that has a gradient."""
        loss = None
        if closure is not None:
            from ..autograd import enable_grad

            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state.setdefault(id(p), {})
                    if _Anomaly.enabled:
                        self._checked_update(p, group, state)
                    else:
                        self._update(p, p.grad, group, state)
        return loss

    def _checked_update(self, p: Tensor, group: dict, state: dict) -> None:
        """``_update`` under tg.detect_anomaly(): a NaN or inf it makes is reported as this
        optimizer's, with the parameter's shape (and whether its gradient was already bad)."""
        try:
            self._update(p, p.grad, group, state)
        except FloatingPointError as e:
            g = p.grad.data
            why = ("its gradient already holds nan/inf" if not np.all(np.isfinite(g)) else
                   "the gradient is finite: check the learning rate and hyper-parameters")
            raise FloatingPointError(
                f"detect_anomaly: {type(self).__name__}.step produced nan/inf updating the "
                f"parameter of shape {tuple(p.shape)} ({why}); {e}"
            ) from e

    def _update(self, p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        raise TypeError(f"{type(self).__name__} does not define _update")

    # ---------------------------------------------------------------- state dicts

    def _params(self) -> list[Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def state_dict(self) -> dict[str, Any]:
        """PyTorch's layout: ``{"state": {index: {...}}, "param_groups": [{..., "params":
        [index, ...]}]}``, indices counting parameters across groups in order."""
        index = {id(p): i for i, p in enumerate(self._params())}
        state = {}
        for pid, st in self.state.items():
            if st:
                state[index[pid]] = {
                    k: (v.detach() if isinstance(v, Tensor) else v) for k, v in st.items()
                }
        groups = []
        for g in self.param_groups:
            entry = {k: v for k, v in g.items() if k != "params"}
            entry["params"] = [index[id(p)] for p in g["params"]]
            groups.append(entry)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
            len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)
        ):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the saved state has groups of sizes "
                f"{[len(g['params']) for g in groups]}, this optimizer "
                f"{[len(g['params']) for g in self.param_groups]}"
            )
        params = self._params()
        new_state: dict[int, dict[str, Any]] = {}
        for key, st in state_dict["state"].items():
            p = params[int(key)]
            entry = {}
            for k, v in st.items():
                if isinstance(v, (Tensor, np.ndarray)):
                    arr = v.data if isinstance(v, Tensor) else v
                    if k != "step" and arr.shape != p.shape:
                        raise ValueError(
                            f"load_state_dict: state {k!r} of parameter {key} has shape "
                            f"{arr.shape}, the parameter {p.shape}"
                        )
                    entry[k] = _leaf(np.array(arr, copy=True))
                else:
                    entry[k] = v
            new_state[id(p)] = entry
        _structure_epoch[0] += 1
        for saved, own in zip(groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    own[k] = tuple(v) if isinstance(v, list) and k == "betas" else v
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"


def _step_count(state: dict) -> Tensor:
    """The step counter as a float64 tensor, advanced by one. A tensor, so a compiled step
    reads it as data instead of baking in the number; float64, so bias corrections are
    computed in double precision as PyTorch does."""
    step = state.get("step")
    if step is None:
        step = state["step"] = _leaf(np.zeros((), dtype=np.float64))
    step._assign(step + 1)
    return step


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov and weight decay.

    >>> opt = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 maximize: bool = False):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr, momentum and weight_decay must be >= 0, got "
                             f"{lr}, {momentum}, {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _update(self, p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        d = -grad if group["maximize"] else grad
        if group["weight_decay"]:
            d = d + p * group["weight_decay"]
        mu = group["momentum"]
        if mu:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = d.clone()
            else:
                buf._assign(buf * mu + d * (1 - group["dampening"]))
            d = d + buf * mu if group["nesterov"] else buf
        p.sub_(d, alpha=group["lr"])


class Adam(Optimizer):
    """Adam (Kingma & Ba), PyTorch's form; ``weight_decay`` adds L2 to the gradient.

    >>> opt = tg.optim.Adam(model.parameters(), lr=1e-3)
    """

    decoupled = False

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False):
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: lr, eps and weight_decay must be >= 0")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    def _update(self, p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        b1, b2 = group["betas"]
        lr, wd = group["lr"], group["weight_decay"]
        g = -grad if group["maximize"] else grad
        if wd and self.decoupled:
            p._assign(p * (1 - lr * wd))
        elif wd:
            g = g + p * wd
        if "exp_avg" not in state:
            state["exp_avg"] = _zeros_like(p)
            state["exp_avg_sq"] = _zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = _zeros_like(p)
        step = _step_count(state)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m._assign(m + (g - m) * (1 - b1))
        v._assign(v * b2 + g * (1 - b2) * g)
        if group["amsgrad"]:
            vmax = state["max_exp_avg_sq"]
            vmax._assign(vmax.maximum(v))
            v = vmax
        # Bias corrections in float64 (step is float64), then in the parameter's dtype.
        step_size = (lr / (1 - b1**step)).to(p.dtype)
        bias2_sqrt = (1 - b2**step).sqrt().to(p.dtype)
        denom = v.sqrt() / bias2_sqrt + group["eps"]
        p._assign(p + (m / denom) * -step_size)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p *= 1 - lr * wd`` first.

    >>> opt = tg.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    """

    decoupled = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
