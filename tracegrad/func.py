"""``tg.func``: the function transforms under ``torch.func``'s names, so that code written
for ``torch.func`` runs with ``torch`` replaced by ``tracegrad`` (see ``transforms.py``).

>>> tg.func.jvp(lambda x: x.sin(), (x,), (v,))
>>> tg.func.grad_and_value(lambda x: (x * x).sum())(x)    # (2x, sum x²)
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from .transforms import grad, hessian, jacfwd, jacrev, jvp, linearize, value_and_grad, vjp, vmap

__all__ = ["functional_call", "grad", "grad_and_value", "hessian", "jacfwd", "jacrev", "jvp",
           "linearize", "stack_module_state", "vjp", "vmap"]


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


def functional_call(module: Any, parameter_and_buffer_dicts: Any, args: Any = None,
                    kwargs: dict | None = None, *, tie_weights: bool = True,
                    strict: bool = False) -> Any:
    """Call ``module`` with some of its parameters and buffers replaced by the tensors in
    ``parameter_and_buffer_dicts`` (a dict of state-dict names, or a tuple of dicts), as
    ``torch.func.functional_call``; the module is unchanged afterwards. Gradients flow to
    the given tensors, so ``tg.grad`` of a model's loss with respect to a dict of weights is
    one call.

    >>> params = {k: v.detach() for k, v in model.named_parameters()}
    >>> out = tg.func.functional_call(model, params, (x,))

    With ``tie_weights``, a tensor the module holds under two names (tied weights) is
    replaced under both when either is given. With ``strict``, every parameter and buffer
    must be given and no other name. A value the module assigns to a given name during the
    call (``self.count = self.count + 1``) is written back into the dict, as in PyTorch.
    """
    from .nn.module import Module

    if not isinstance(module, Module):
        raise TypeError(f"functional_call: module must be a tg.nn.Module, got "
                        f"{type(module).__name__}")
    dicts = parameter_and_buffer_dicts
    if isinstance(dicts, dict):
        given = dict(dicts)
    else:
        given = {}
        for d in dicts:
            clash = set(given) & set(d)
            if clash:
                raise ValueError(f"functional_call: {sorted(clash)} appear in more than one "
                                 f"of the dicts")
            given.update(d)
    # every (name, owner module, registry, leaf name), tied names included
    slots: dict[str, tuple] = {}
    by_tensor: dict[int, list[str]] = {}
    for prefix, m in module.named_modules():
        for reg in ("_parameters", "_buffers"):
            for leaf, t in getattr(m, reg).items():
                name = f"{prefix}.{leaf}" if prefix else leaf
                slots[name] = (m, reg, leaf)
                if t is not None:
                    by_tensor.setdefault(id(t), []).append(name)
    if strict:
        missing = sorted(set(slots) - set(given))
        unexpected = sorted(set(given) - set(slots))
        if missing or unexpected:
            raise RuntimeError(f"functional_call (strict): missing {missing}, unexpected "
                               f"{unexpected}")
    values = dict(given)
    if tie_weights:
        for names in by_tensor.values():
            chosen = [n for n in names if n in given]
            for n in chosen[1:]:
                if given[n] is not given[chosen[0]]:
                    raise ValueError(f"functional_call: {chosen[0]!r} and {n!r} are tied in "
                                     f"the module but given different tensors; pass one, "
                                     f"or tie_weights=False")
            if chosen:
                for n in names:
                    values.setdefault(n, given[chosen[0]])
    unknown = [n for n in values if n not in slots]
    if unknown:
        raise ValueError(f"functional_call: {type(module).__name__} has no parameter or "
                         f"buffer {unknown[0]!r}")
    saved = {}
    for n, v in values.items():
        m, reg, leaf = slots[n]
        saved[n] = getattr(m, reg)[leaf]
        getattr(m, reg)[leaf] = v
    try:
        if args is None:
            args = ()
        elif not isinstance(args, tuple):
            args = (args,)
        return module(*args, **(kwargs or {}))
    finally:
        for n, old in saved.items():
            m, reg, leaf = slots[n]
            now = getattr(m, reg)[leaf]
            if n in given and now is not values[n]:
                dicts_with = [dicts] if isinstance(dicts, dict) else list(dicts)
                for d in dicts_with:
                    if n in d:
                        d[n] = now
            getattr(m, reg)[leaf] = old


def stack_module_state(models: Any) -> tuple[dict, dict]:
    """``(params, buffers)``: the parameters and buffers of several models of one
    architecture, each name's tensors stacked along a new first dim, as
    ``torch.func.stack_module_state``. The stacked parameters are new leaves that require
    grad where the models' did. With ``functional_call`` and ``vmap``, an ensemble runs as
    one call:

    >>> params, buffers = tg.func.stack_module_state(models)
    >>> call = lambda p, b, x: tg.func.functional_call(models[0], (p, b), (x,))
    >>> tg.func.vmap(call, in_dims=(0, 0, None))(params, buffers, x)
    """
    from .tensor import stack

    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: expected at least one model, got none")
    first = models[0]
    for k, m in enumerate(models[1:], 1):
        if type(m) is not type(first) or [n for n, _ in m.named_parameters()] != \
                [n for n, _ in first.named_parameters()]:
            raise RuntimeError(f"stack_module_state: model {k} ({type(m).__name__}) does not "
                               f"have the parameters of model 0 ({type(first).__name__}); "
                               f"the models must share one architecture")
    params = {}
    for name, p in first.named_parameters():
        leaf = stack([dict(m.named_parameters())[name].detach() for m in models])
        params[name] = leaf.requires_grad_(p.requires_grad)
    buffers = {name: stack([dict(m.named_buffers())[name] for m in models])
               for name, b in first.named_buffers() if b is not None}
    return params, buffers
