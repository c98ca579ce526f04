"""Optimizers: SGD, Adam, AdamW, with PyTorch's arguments, parameter groups and state dicts.

Each update is written with tensor ops and applied with ``Tensor._assign`` (in place), and
the step count is a tensor, so a compiled training step (``tg.compile``) captures the update
too, and one graph holds forward, backward and update.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from threading import get_ident
from typing import Any, Iterable

import numpy as np

from .. import tensor as tensor_mod
from ..autograd import no_grad
from ..errors import ShapeError, TraceError
from ..tensor import Tensor, _Anomaly, _leaf, _structure_epoch
from .watched import ParamGroup, ParamList, ParamStates, StateDict


class FirstStepTraced(TraceError):
    """A traced optimizer step that would create a parameter's state (see
    `Optimizer._first_step`); tg.compile runs that call eagerly instead."""


def _zeros_like(p: Tensor) -> Tensor:
    return _leaf(np.zeros_like(p._data))


class Optimizer:
    """Base class: holds ``param_groups`` (dicts of params and hyper-parameters) and
    per-parameter ``state``; subclasses define ``_update(p, grad, group, state)``."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]):
        _raise_first(type(self).__name__, self._check_group(defaults, ""))
        if isinstance(params, Tensor):  # (list() of it would be its rows)
            raise TypeError(f"{type(self).__name__}: params must be an iterable of tensors or "
                            f"of dicts (parameter groups), got one Tensor; pass [tensor]")
        _refuse_set(type(self).__name__, params)
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []  # (a ParamList of ParamGroups)
        # Keyed by the parameter itself, as PyTorch's (a tensor hashes by identity), so
        # ``opt.state[p]`` works and a deepcopy of the optimizer keeps its state; a watched
        # dict (optim/watched.py), which creates a missing entry as PyTorch's defaultdict.
        self.state: ParamStates = ParamStates()
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def __setattr__(self, name: str, value: Any) -> None:
        # (what a compiled step holds by identity: a change is a structural change, see
        # optim/watched.py)
        if name == "state" and type(value) is not ParamStates:
            value = ParamStates(value)
        elif name == "param_groups" and type(value) is not ParamList:
            value = ParamList(g if type(g) is ParamGroup else ParamGroup(g) for g in value)
        if name in ("state", "param_groups"):
            _structure_epoch[0] += 1
        object.__setattr__(self, name, value)

    def add_param_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        params = group["params"]
        _refuse_set(name, params)
        params = [params] if isinstance(params, Tensor) else list(params)
        # model.named_parameters() gives (name, tensor) pairs: the names go to the group's
        # "param_names" (and so into state_dict()), as PyTorch's.
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) and len(p) == 2 else p for p in params]
        if names and len(names) != len(params):
            raise ValueError(f"{name}: all parameters must come with names or all without "
                             f"(got {len(names)} named of {len(params)})")
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{name}: parameters must be tg.Tensors, got {type(p).__name__}"
                )
            # A frozen parameter (requires_grad=False) is accepted, as in PyTorch: it has no
            # gradient, so step() skips it until it is unfrozen. A result of an op is not.
            if not p.is_leaf:
                raise ValueError(
                    f"{name}: can't optimize a non-leaf tensor (shape "
                    f"{p.shape}, made by {type(p.grad_fn).__name__}); pass the leaf "
                    f"parameters themselves, or .detach().requires_grad_() a copy"
                )
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"{name}: a parameter appears in two groups")
        if names or "param_names" in group:
            group = {**group, "param_names": names or list(group["param_names"])}
        if any(("param_names" in g) != ("param_names" in group) for g in self.param_groups):
            raise ValueError(f"{name}: all parameter groups must come with parameter names "
                             f"(named_parameters()) or all without")
        # Keys other than the optimizer's options (a group's "name", timm's "lr_scale") are
        # kept, and saved in state_dict(), as PyTorch keeps them.
        full = {**self.defaults, **group, "params": params}
        if isinstance(full.get("betas"), list):
            full["betas"] = tuple(full["betas"])
        where = f"param group {len(self.param_groups)}: " if len(self.param_groups) else ""
        _raise_first(type(self).__name__, self._check_group(full, where))
        self.param_groups.append(ParamGroup(full))

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
                    state = self.state.get(p)
                    fresh = not state
                    if state is None:
                        state = StateDict()
                    if _Anomaly.enabled:
                        self._checked_update(p, group, state)
                    else:
                        self._update(p, p.grad, group, state)
                    if fresh:
                        self._first_step(p, state)
        return loss

    def _first_step(self, p: Tensor, state: StateDict) -> None:
        """Keep the state that the first step of ``p`` created; in a trace, refuse it
        instead: a program would hold the new moments as constants, and start from them on
        every call (tg.compile runs such a call eagerly, as its first call)."""
        tracer = tensor_mod._tracer
        if tracer is None or tracer.thread != get_ident():
            self.state.setdefault(p, state)
        elif state:
            state.clear()
            raise FirstStepTraced(
                f"tg.compile/tg.trace: {type(self).__name__}.step() is the first step of a "
                f"parameter of shape {tuple(p.shape)} (it creates its state); a compiled "
                f"step runs such a call eagerly, as its first call. Run one step eagerly "
                f"before tg.trace")

    def _checked_update(self, p: Tensor, group: dict, state: dict) -> None:
        """``_update`` under tg.detect_anomaly(): a NaN or inf it makes is reported as this
        optimizer's, with the parameter's shape (and whether its gradient was already bad)."""
        try:
            self._update(p, p.grad, group, state)
        except FloatingPointError as e:
            g = p.grad._data
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
        for p, st in self.state.items():
            if st:
                state[index[id(p)]] = {
                    k: (v.detach() if isinstance(v, Tensor) else v) for k, v in st.items()
                }
        groups = []
        for g in self.param_groups:
            entry = {k: v for k, v in g.items() if k != "params"}
            entry["params"] = [index[id(p)] for p in g["params"]]
            groups.append(entry)
        return {"state": state, "param_groups": groups}

    # Hyper-parameter rules, PyTorch's: name -> (what, check). Subclasses extend them.
    _RULES: dict[str, tuple[str, Any]] = {}

    def _check_group(self, group: Mapping, where: str) -> list[tuple[type, str]]:
        """The problems with a parameter group's hyper-parameters, as (exception, text)."""
        problems = []
        for name, (what, ok) in self._RULES.items():
            if name not in group:
                continue
            value = group[name]
            verdict = ok(value)
            if verdict is not True:
                cls = TypeError if verdict is TypeError else ValueError
                problems.append((cls, f"{where}{name} must be {what}, got {_show(value)}"))
        if not problems:
            problems += self._check_combination(group, where)
        return problems

    def _check_combination(self, group: Mapping, where: str) -> list[tuple[type, str]]:
        return []

    def _state_rules(self, group: Mapping) -> tuple[set, set]:
        """(keys every non-empty state of a parameter in ``group`` needs, keys that must be
        tensors of the parameter's shape)."""
        return set(), set()

    def _scalar_state_rules(self) -> dict[str, tuple[str, Any]]:
        """State entries that are one number each (kept as float64 0-d tensors, like the
        step), not tensors of the parameter's shape: key -> (what, check of the number)."""
        return {}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a state from `state_dict` (PyTorch's layout, e.g. from ``tg.load``).

        Everything is checked before anything changes: the number of groups and of
        parameters per group, each group's hyper-parameters (by the same rules as the
        constructor), and each parameter's state (known keys present, tensors of the
        parameter's shape). A state dict that fails any check raises, naming every problem,
        and leaves the optimizer exactly as it was. Floating-point state is cast to its
        parameter's dtype, as PyTorch does.
        """
        name = type(self).__name__
        op = f"{name}.load_state_dict"
        if not isinstance(state_dict, Mapping) or not {"state", "param_groups"} <= set(
            state_dict
        ):
            raise TypeError(
                f"{op}: expected an optimizer state dict (a dict with 'state' and "
                f"'param_groups', from optimizer.state_dict() or tg.load), got "
                f"{_show(state_dict)}"
            )
        groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(groups, (list, tuple)) or not all(
            isinstance(g, Mapping) and isinstance(g.get("params"), (list, tuple))
            for g in groups
        ):
            raise TypeError(f"{op}: 'param_groups' must be a list of dicts, each with a "
                            f"'params' list; got {_show(groups)}")
        if not isinstance(saved_state, Mapping):
            raise TypeError(f"{op}: 'state' must be a dict of parameter index -> state; got "
                            f"{_show(saved_state)}")
        saved_sizes = [len(g["params"]) for g in groups]
        own_sizes = [len(g["params"]) for g in self.param_groups]
        if saved_sizes != own_sizes:
            raise ValueError(
                f"{op}: the saved state has {len(groups)} parameter groups of sizes "
                f"{saved_sizes}, this optimizer {len(self.param_groups)} groups of sizes "
                f"{own_sizes}; build the optimizer over the same parameters, grouped the "
                f"same way, as the one that was saved"
            )
        problems: list[tuple[type, str]] = []
        # Saved parameter indices map to this optimizer's parameters in order, as in PyTorch.
        index: dict[int, Tensor] = {}
        group_of: dict[int, dict] = {}
        new_groups = []
        for i, (saved, own) in enumerate(zip(groups, self.param_groups)):
            new = dict(own)
            for k, v in saved.items():
                if k != "params":
                    new[k] = tuple(v) if k == "betas" and isinstance(v, list) else v
            problems += self._check_group(new, f"param_groups[{i}]: ")
            new_groups.append(new)
            for idx, p in zip(saved["params"], own["params"]):
                if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)):
                    problems.append((TypeError, f"param_groups[{i}]['params'] holds "
                                                f"{_show(idx)}, not a parameter index"))
                elif int(idx) in index:
                    problems.append((ValueError, f"parameter index {int(idx)} appears twice "
                                                 f"in 'param_groups'"))
                else:
                    index[int(idx)] = p
                    group_of[int(idx)] = new
        new_state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for key, st in saved_state.items():
            try:
                i = int(key)
            except (TypeError, ValueError):
                i = None
            if i is None or isinstance(key, bool) or i not in index:
                problems.append((ValueError, f"state[{key!r}] is not the index of a parameter "
                                             f"in 'param_groups' (indices: "
                                             f"{sorted(index) if len(index) < 20 else '...'})"))
                continue
            if not isinstance(st, Mapping):
                problems.append((TypeError, f"state[{key!r}] must be a dict, got {_show(st)}"))
                continue
            entry = self._checked_state(f"state[{key!r}]", st, index[i], group_of[i],
                                        problems)
            if entry is not None:
                new_state[index[i]] = entry
        if problems:
            lines = "\n".join(f"  {text}" for _, text in problems)
            n = len(problems)
            raise problems[0][0](
                f"{op}: {n} problem{'s' if n > 1 else ''} in the state dict, nothing was loaded "
                f"(the optimizer is unchanged):\n{lines}\nto fix: load a state dict saved "
                f"by {name}.state_dict() over the same parameters, or correct the entries above"
            )
        # Everything checked: only assignments from here on.
        _structure_epoch[0] += 1
        for own, new in zip(self.param_groups, new_groups):
            own.clear()
            own.update(new)
        self.state = new_state

    def _checked_state(self, where: str, st: Mapping, p: Tensor, group: Mapping,
                       problems: list) -> dict | None:
        """One parameter's saved state as this optimizer keeps it (fresh tensors, floats in
        the parameter's dtype), or None after adding its problems to ``problems``."""
        if not st:
            return {}
        required, tensors = self._state_rules(group)
        found = len(problems)
        missing = sorted(required - set(st))
        if missing:
            problems.append((ValueError, f"{where} lacks {', '.join(map(repr, missing))} "
                                         f"(has {', '.join(map(repr, st))})"))
        entry: dict[str, Any] = {}
        scalars = self._scalar_state_rules()
        for k, v in st.items():
            if k in scalars:
                what, ok = scalars[k]
                x = _number(v)
                if x is None or not math.isfinite(x) or not ok(x):
                    problems.append((ValueError, f"{where}[{k!r}] must be {what}, got "
                                                 f"{_show(v)}"))
                    continue
                entry[k] = _leaf(np.array(x, dtype=np.float64))
            elif k == "step":
                step = _number(v)
                if step is None or not math.isfinite(step) or step < 0 or step != int(step):
                    problems.append((ValueError, f"{where}['step'] must be a whole number "
                                                 f">= 0, got {_show(v)}"))
                    continue
                entry[k] = _leaf(np.array(step, dtype=np.float64))
            elif isinstance(v, (Tensor, np.ndarray)):
                arr = v._data if isinstance(v, Tensor) else v
                if arr.dtype.kind not in "biuf":
                    problems.append((TypeError, f"{where}[{k!r}] has dtype {arr.dtype}; "
                                                f"optimizer state is numeric"))
                elif arr.shape != p.shape:
                    problems.append((ShapeError, f"{where}[{k!r}] has shape {arr.shape}, its "
                                                 f"parameter {p.shape}"))
                else:
                    dt = p.dtype if p.dtype.kind == "f" else arr.dtype
                    with np.errstate(all="ignore"):
                        entry[k] = _leaf(np.array(arr, dtype=dt, copy=True))
            elif k in tensors and not (v is None and k not in required):
                problems.append((TypeError, f"{where}[{k!r}] must be a tensor of shape "
                                            f"{p.shape}, got {_show(v)}"))
            else:
                entry[k] = v
        return entry if len(problems) == found else None

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
    step.add_(1)
    return step


def _number(v: Any) -> float | None:
    """``v`` as a float if it is a real number (a Python or NumPy number, or a one-element
    numeric tensor or array; not a bool), else None."""
    if isinstance(v, (bool, np.bool_)):
        return None
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    if isinstance(v, (Tensor, np.ndarray)):
        arr = v._data if isinstance(v, Tensor) else v
        if arr.size == 1 and arr.dtype.kind in "iuf":
            return float(arr.reshape(()))
    return None


def _show(v: Any) -> str:
    text = repr(v)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(v).__name__})"


def _at_least_zero(v: Any) -> Any:
    x = _number(v)
    if x is None:
        return TypeError
    return x >= 0.0  # False for nan too (PyTorch: ``not 0.0 <= lr``)


def _a_number(v: Any) -> Any:
    return TypeError if _number(v) is None else True


def _a_flag(v: Any) -> Any:
    return True if isinstance(v, (bool, np.bool_)) or _number(v) in (0.0, 1.0) else TypeError


def _betas(v: Any) -> Any:
    if not isinstance(v, (tuple, list)) or len(v) != 2:
        return TypeError
    xs = [_number(b) for b in v]
    if any(x is None for x in xs):
        return TypeError
    return all(0.0 <= x < 1.0 for x in xs)


def _refuse_set(name: str, params: Any) -> None:
    if isinstance(params, (set, frozenset)):
        raise TypeError(f"{name}: parameters must be in an ordered collection (a list), not "
                        f"a set: a set's order changes between runs, and with it which saved "
                        f"state belongs to which parameter")


def _raise_first(name: str, problems: list) -> None:
    if problems:
        raise problems[0][0](f"{name}: " + "; ".join(text for _, text in problems))



class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov and weight decay.

    >>> opt = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 maximize: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    _RULES = {
        "lr": ("a number >= 0", _at_least_zero),
        "momentum": ("a number >= 0", _at_least_zero),
        "dampening": ("a number", _a_number),
        "weight_decay": ("a number >= 0", _at_least_zero),
        "nesterov": ("True or False", _a_flag),
        "maximize": ("True or False", _a_flag),
    }

    def _check_combination(self, group: Mapping, where: str) -> list[tuple[type, str]]:
        if group.get("nesterov") and (_number(group["momentum"]) <= 0
                                      or _number(group["dampening"]) != 0):
            return [(ValueError, f"{where}nesterov needs momentum > 0 and dampening = 0, got "
                                 f"momentum={group['momentum']!r}, "
                                 f"dampening={group['dampening']!r}")]
        return []

    def _state_rules(self, group: Mapping) -> tuple[set, set]:
        return set(), {"momentum_buffer"}

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
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    _RULES = {
        "lr": ("a number >= 0", _at_least_zero),
        "betas": ("a pair of numbers in [0, 1)", _betas),
        "eps": ("a number >= 0", _at_least_zero),
        "weight_decay": ("a number >= 0", _at_least_zero),
        "amsgrad": ("True or False", _a_flag),
        "maximize": ("True or False", _a_flag),
    }

    def _state_rules(self, group: Mapping) -> tuple[set, set]:
        tensors = {"exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if group.get("amsgrad")
                                               else set())
        return tensors | {"step"}, tensors | {"max_exp_avg_sq"}

    def _update(self, p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        b1, b2 = group["betas"]
        lr, wd = group["lr"], group["weight_decay"]
        g = -grad if group["maximize"] else grad
        # The state and the parameter are updated in place (mul_, add_), as PyTorch's
        # single-tensor Adam does: the same arithmetic in the same order as writing each
        # result anew, with fewer passes over memory and no copy back.
        if wd and self.decoupled:
            p.mul_(1 - lr * wd)
        elif wd:
            g = g + p * wd
        if "exp_avg" not in state:
            state["exp_avg"] = _zeros_like(p)
            state["exp_avg_sq"] = _zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = _zeros_like(p)
        step = _step_count(state)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.add_((g - m) * (1 - b1))  # (PyTorch's lerp_)
        v.mul_(b2).add_(g * (1 - b2) * g)  # (mul_, addcmul_)
        if group["amsgrad"]:
            vmax = state["max_exp_avg_sq"]
            vmax._assign(vmax.maximum(v))
            v = vmax
        # Bias corrections in float64 (step is float64), then in the parameter's dtype.
        step_size = (lr / (1 - b1**step)).to(p.dtype)
        bias2_sqrt = (1 - b2**step).sqrt().to(p.dtype)
        denom = v.sqrt() / bias2_sqrt + group["eps"]
        p.sub_((m / denom) * step_size)  # (addcdiv_; x * -s is -(x * s) exactly)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p *= 1 - lr * wd`` first.

    >>> opt = tg.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    """

    decoupled = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
