"""``tg.autograd.functional``: PyTorch's ``torch.autograd.functional`` (jacobian, hessian,
vjp, jvp, hvp, vhp), on top of ``tracegrad/transforms.py``.

Inputs are a tensor or a tuple of tensors; results are shaped as in PyTorch (a tuple where
the inputs or outputs were a tuple). Results are detached unless ``create_graph=True``.
``strict=True`` raises where an output does not depend on an input, as PyTorch's.

>>> from tracegrad.autograd.functional import jacobian, hessian
>>> jacobian(lambda x: x ** 2, tg.tensor([1.0, 2.0]))      # diag(2x)
"""

from __future__ import annotations

from typing import Any, Callable

from .. import transforms
from ..tensor import Tensor

__all__ = ["jacobian", "hessian", "vjp", "jvp", "hvp", "vhp"]


def _inputs(op: str, inputs: Any) -> tuple[tuple, bool]:
    is_tuple = isinstance(inputs, (tuple, list))
    xs = tuple(inputs) if is_tuple else (inputs,)
    for i, x in enumerate(xs):
        if not isinstance(x, Tensor):
            raise TypeError(f"tg.autograd.functional.{op}: input {i} is {type(x).__name__}, "
                            f"not a tensor")
    return xs, is_tuple


def _check_strict(op: str, func: Callable, xs: tuple, what: str = "output",
                  together: bool = False) -> None:
    """``strict=True``: raise, as PyTorch, if some output of ``func`` (or, ``together``,
    all of them at once) does not depend on some input (its Jacobian block would be
    zeros). One extra forward and backward pass."""
    from . import api, enable_grad

    leaves = tuple(x.detach().requires_grad_() for x in xs)
    with enable_grad():
        out = func(*leaves)
    outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    if together:
        live = [o.sum() for o in outs if isinstance(o, Tensor) and o.requires_grad]
        outs = (sum(live[1:], live[0]),) if live else (None,)
    for i, o in enumerate(outs):
        grads = api.grad(o.sum(), leaves, retain_graph=True, allow_unused=True) \
            if isinstance(o, Tensor) and o.requires_grad else (None,) * len(leaves)
        for j, g in enumerate(grads):
            if g is None:
                which = what if together else f"{what} {i}"
                raise RuntimeError(f"tg.autograd.functional.{op}: {which} of the function is "
                                   f"independent of input {j}, which strict=True does not "
                                   f"allow (without strict, its block is zeros)")


def _prepared(xs: tuple, create_graph: bool) -> tuple:
    """The inputs as the function sees them: connected to their graph (create_graph) or
    fresh leaves (not)."""
    return xs if create_graph else tuple(x.detach() for x in xs)


def _finish(obj: Any, create_graph: bool) -> Any:
    if isinstance(obj, (tuple, list)):
        return tuple(_finish(o, create_graph) for o in obj)
    return obj if create_graph or not isinstance(obj, Tensor) else obj.detach()


def _strategy(op: str, strategy: str) -> Callable:
    if strategy == "reverse-mode":
        return transforms.jacrev
    if strategy == "forward-mode":
        return transforms.jacfwd
    raise ValueError(f"tg.autograd.functional.{op}: strategy must be 'reverse-mode' or "
                     f"'forward-mode', got {strategy!r}")


def jacobian(func: Callable, inputs: Any, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode") -> Any:
    """The Jacobian of ``func`` at ``inputs``: ``out.shape + in.shape`` per (output, input).
    Computed in one pass either way (``vectorize`` is accepted and always true here)."""
    xs, is_tuple = _inputs("jacobian", inputs)
    jac = _strategy("jacobian", strategy)
    if strict:
        _check_strict("jacobian", func, xs)
    out = jac(func, argnums=tuple(range(len(xs))))(*_prepared(xs, create_graph))
    if not is_tuple:  # one input: no tuple over inputs
        out = tuple(o[0] for o in out) if isinstance(out[0], tuple) else out[0]
    return _finish(out, create_graph)


def hessian(func: Callable, inputs: Any, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode") -> Any:
    """The Hessian of a scalar ``func``: ``in_i.shape + in_j.shape`` per pair of inputs
    (forward over reverse, whatever ``outer_jacobian_strategy`` says: it is the faster)."""
    xs, is_tuple = _inputs("hessian", inputs)
    _strategy("hessian", outer_jacobian_strategy)
    if strict:
        _check_strict("hessian", _grad_fn(func, len(xs)), xs, "the gradient's part")
    nums = tuple(range(len(xs))) if is_tuple else 0
    h = transforms.hessian(func, argnums=nums)(*_prepared(xs, create_graph))
    return _finish(h, create_graph)


def vjp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:
    """``(func(inputs), vᵀJ)``; ``v`` may be omitted for a one-element output."""
    xs, is_tuple = _inputs("vjp", inputs)
    if strict:
        _check_strict("vjp", func, xs)
    out, vjp_fn = transforms.vjp(func, *_prepared(xs, create_graph))
    if v is None:
        outs = out if isinstance(out, tuple) else (out,)
        if any(o.numel() != 1 for o in outs):
            raise RuntimeError("tg.autograd.functional.vjp: v can be omitted only for a "
                               "function with a one-element output; pass v shaped like it")
        v = tuple(o.detach() * 0 + 1 for o in outs) if isinstance(out, tuple) else \
            out.detach() * 0 + 1
    grads = vjp_fn(v)
    return _finish(out, create_graph), _finish(grads if is_tuple else grads[0], create_graph)


def jvp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:
    """``(func(inputs), J v)``, by forward mode; ``v`` may be omitted for a one-element
    input."""
    xs, is_tuple = _inputs("jvp", inputs)
    if strict:
        _check_strict("jvp", func, xs)
    if v is None:
        if any(x.numel() != 1 for x in xs):
            raise RuntimeError("tg.autograd.functional.jvp: v can be omitted only for a "
                               "one-element input; pass v shaped like the inputs")
        v = tuple(x.detach() * 0 + 1 for x in xs)
    vs = tuple(v) if isinstance(v, (tuple, list)) else (v,)
    out, t = transforms.jvp(func, _prepared(xs, create_graph), vs)
    return _finish(out, create_graph), _finish(t, create_graph)


def _grad_fn(func: Callable, n: int) -> Callable:
    def g(*xs: Tensor) -> Any:
        out = transforms.grad(func, argnums=tuple(range(n)))(*xs)
        return out

    return g


def hvp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:
    """``(func(inputs), H v)`` for a scalar ``func``, by forward over reverse (one forward
    and one backward pass, with tangents)."""
    xs, is_tuple = _inputs("hvp", inputs)
    vs = _vectors("hvp", xs, v)
    if strict:
        _check_strict("hvp", _grad_fn(func, len(xs)), xs, "the gradient", together=True)
    xs = _prepared(xs, create_graph)
    _, hv = transforms.jvp(_grad_fn(func, len(xs)), xs, vs)
    value = func(*xs)
    return _finish(value, create_graph), _finish(hv if is_tuple else hv[0], create_graph)


def vhp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:
    """``(func(inputs), vᵀH)`` for a scalar ``func``, by reverse over reverse."""
    xs, is_tuple = _inputs("vhp", inputs)
    vs = _vectors("vhp", xs, v)
    if strict:
        _check_strict("vhp", _grad_fn(func, len(xs)), xs, "the gradient", together=True)
    xs = _prepared(xs, create_graph)
    _, vjp_fn = transforms.vjp(_grad_fn(func, len(xs)), *xs)
    vh = vjp_fn(vs)
    value = func(*xs)
    return _finish(value, create_graph), _finish(vh if is_tuple else vh[0], create_graph)


def _vectors(op: str, xs: tuple, v: Any) -> tuple:
    if v is None:
        if any(x.numel() != 1 for x in xs):
            raise RuntimeError(f"tg.autograd.functional.{op}: v can be omitted only for a "
                               f"one-element input; pass v shaped like the inputs")
        return tuple(x.detach() * 0 + 1 for x in xs)
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)
