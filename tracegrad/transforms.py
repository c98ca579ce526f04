"""Function transforms, with ``torch.func``'s signatures (which are JAX's).

- ``grad(f)``, ``value_and_grad(f)``: reverse mode, for a function with a scalar result;
- ``vjp(f, *primals) -> (out, vjp_fn)``: reverse mode, any output;
- ``jvp(f, primals, tangents) -> (out, tangent_out)``: forward mode (``tracegrad/forward.py``
  pushes tangents through the primitives' JVP rules as ``f`` runs); also on functions of
  `Value`s;
- ``jacrev(f)``, ``jacfwd(f)``: the Jacobian by reverse or forward mode, each in one pass
  (a whole basis of cotangents or tangents at once, as a batch, not a Python loop);
- ``hessian(f)``: ``jacfwd(jacrev(f))``, forward over reverse.

They compose with each other and with ``tg.compile`` (a compiled ``jvp`` is one graph):

>>> f = lambda x: (x ** 3).sum()
>>> tg.hessian(f)(tg.tensor([1.0, 2.0]))            # tensor([[ 6., 0.], [0., 12.]])
>>> tg.jvp(lambda x: x.sin(), (x,), (v,))          # (sin x, cos x * v)
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import numpy as np

from . import forward
from .autograd import enable_grad, reverse_topological_order, value_and_grad
from .errors import ShapeError
from .ops import PRIMITIVES
from .scalar import Value, _make_children
from .tensor import Tensor, _leaf, apply

__all__ = ["grad", "value_and_grad", "jvp", "vjp", "jacrev", "jacfwd", "hessian"]


# ---------------------------------------------------------------- grad (reverse mode)


def grad(fn: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """``grad(f)(x) -> df/dx`` for a function returning a scalar tensor (JAX's ``grad``).

    >>> tg.grad(lambda x: (x ** 3).sum())(tg.tensor([2.0]))   # tensor([12.])

    (PyTorch's ``torch.autograd.grad(outputs, inputs)`` is ``tg.autograd.grad``.)
    """
    if not callable(fn):
        raise TypeError(
            f"tg.grad takes a function (JAX style: tg.grad(f)(x) is df/dx), got "
            f"{type(fn).__name__}; for PyTorch's torch.autograd.grad(outputs, inputs), the "
            f"gradients of tensors already computed, use tg.autograd.grad(outputs, inputs)"
        )
    vg = value_and_grad(fn, argnums, has_aux)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        (value_aux, grads) = vg(*args, **kwargs)
        return (grads, value_aux[1]) if has_aux else grads

    return wrapper


# ---------------------------------------------------------------- trees of outputs


def _flatten(obj: Any) -> tuple[list, Callable[[list], Any]]:
    """The tensors of a (nested) tuple, list or dict, and how to rebuild it from new ones."""
    if isinstance(obj, (tuple, list)):
        parts = [_flatten(o) for o in obj]
        sizes = [len(p[0]) for p in parts]

        def rebuild(leaves: list) -> Any:
            out, k = [], 0
            for (_, rb), n in zip(parts, sizes):
                out.append(rb(leaves[k:k + n]))
                k += n
            return type(obj)(out) if isinstance(obj, tuple) and not hasattr(obj, "_fields") \
                else (type(obj)(*out) if isinstance(obj, tuple) else out)

        return [x for p in parts for x in p[0]], rebuild
    if isinstance(obj, dict):
        keys = list(obj)
        inner, rb = _flatten([obj[k] for k in keys])
        return inner, lambda leaves: dict(zip(keys, rb(leaves)))
    return [obj], lambda leaves: leaves[0]


def _check_tensor(op: str, what: str, x: Any) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {what} must be a tg.Tensor, got {type(x).__name__}; wrap it "
                        f"with tg.tensor(...)")
    return x


def _fresh(p: Tensor, seen: set) -> Tensor:
    """``p``, or (when it was passed twice) a new node with its value, so that each position
    carries its own tangent."""
    if id(p) in seen:
        p = apply(PRIMITIVES["reshape"], p, shape=tuple(p.shape))
    seen.add(id(p))
    return p


# ---------------------------------------------------------------- jvp (forward mode)


def jvp(func: Callable, primals: Sequence, tangents: Sequence, *, strict: bool = False,
        has_aux: bool = False) -> tuple:
    """``(func(*primals), J v)``: the output and its directional derivative along
    ``tangents`` (one per primal, same shape and dtype), by forward mode: one pass.

    >>> x, v = tg.tensor([0.0, 1.0]), tg.tensor([1.0, 1.0])
    >>> tg.jvp(lambda x: x.sin(), (x,), (v,))      # (sin x, cos(x) * v)

    Works on functions of `Value`s too (primals and tangents are then Values or numbers).
    With ``has_aux``, ``func`` returns ``(output, aux)`` and this returns
    ``(output, tangent_out, aux)``.
    """
    primals, tangents = _primals_and_tangents(primals, tangents)
    if primals and all(isinstance(p, Value) for p in primals):
        if has_aux:
            raise TypeError("tg.jvp: has_aux is for functions of tensors")
        return _value_jvp(func, primals, tangents)
    for i, (p, t) in enumerate(zip(primals, tangents)):
        _check_tensor("tg.jvp", f"primal {i}", p)
        _check_tensor("tg.jvp", f"tangent {i}", t)
        if p.dtype.kind != "f":
            raise TypeError(f"tg.jvp: primal {i} is {p.dtype}; forward mode needs float "
                            f"primals (cast it with .float())")
        if tuple(t.shape) != tuple(p.shape):
            raise ShapeError(f"tg.jvp: tangent {i} has shape {tuple(t.shape)} but its primal "
                             f"has shape {tuple(p.shape)}; a tangent must have its primal's "
                             f"shape and dtype")
        if t.dtype != p.dtype:
            raise TypeError(f"tg.jvp: tangent {i} is {t.dtype} but its primal is {p.dtype}; "
                            f"a tangent must have its primal's shape and dtype (cast it with "
                            f".to({p.dtype}))")
    out, tangent_out, aux = _push(func, primals, tangents, (), has_aux)
    return (out, tangent_out, aux) if has_aux else (out, tangent_out)


def _primals_and_tangents(primals: Any, tangents: Any) -> tuple[tuple, tuple]:
    if not isinstance(primals, (tuple, list)):
        raise TypeError(f"tg.jvp: primals must be a tuple (one entry per argument of the "
                        f"function), got {type(primals).__name__}; write (x,) for one")
    if not isinstance(tangents, (tuple, list)):
        raise TypeError(f"tg.jvp: tangents must be a tuple (one per primal), got "
                        f"{type(tangents).__name__}; write (v,) for one")
    if len(primals) != len(tangents):
        raise TypeError(f"tg.jvp: {len(primals)} primal(s) but {len(tangents)} tangent(s); "
                        f"give one tangent per primal")
    return tuple(primals), tuple(tangents)


def _push(func: Callable, primals: tuple, tangents: tuple, batch: tuple,
          has_aux: bool) -> tuple:
    """Run ``func`` with ``tangents`` (each ``batch + primal.shape``) at a new level: the
    output and the output's tangent (zeros where it has none)."""
    with forward.level(batch) as lv:
        seen: set = set()
        args = []
        for p, t in zip(primals, tangents):
            a = _fresh(p, seen)
            lv.set(a, t)
            args.append(a)
        result = func(*args)
        aux = None
        if has_aux:
            if not (isinstance(result, tuple) and len(result) == 2):
                raise TypeError("with has_aux=True the function must return (output, aux)")
            result, aux = result
        outs, rebuild = _flatten(result)
        touts = []
        for i, o in enumerate(outs):
            _check_tensor("forward mode", f"output {i} of the function", o)
            t = lv.tangent(o)
            touts.append(t if t is not None else
                         _leaf(np.zeros(batch + tuple(o.shape), dtype=o.dtype)))
    return result, rebuild(touts), aux


def _value_jvp(func: Callable, primals: tuple, tangents: tuple) -> tuple:
    """Forward mode on the scalar engine: run ``func`` on fresh Values, then sweep the graph
    it made from the inputs up, each node's tangent the sum of its local derivatives
    (from the same rule table backward uses) times its children's tangents: a dual number
    per node."""
    args = [Value(p.data) for p in primals]
    tan = {id(a): float(getattr(t, "data", t)) for a, t in zip(args, tangents)}
    result = func(*args)
    outs, rebuild = _flatten(result)
    for o in outs:
        if not isinstance(o, Value):
            raise TypeError(f"tg.jvp: a function of Values must return Values, got "
                            f"{type(o).__name__}")
        _make_children(o)
        for node in reversed(reverse_topological_order(o)):
            if id(node) in tan:
                continue
            partials = node._vjp(1.0)
            if partials is None:
                raise TypeError(f"tg.jvp: the Value op {node._op!r} has no derivative rule "
                                f"that forward mode can use (a custom _backward)")
            tan[id(node)] = sum(p * tan.get(id(c), 0.0)
                                for p, c in zip(partials, node._children))
    return rebuild([Value(o.data) for o in outs]), rebuild([tan.get(id(o), 0.0) for o in outs])


# ---------------------------------------------------------------- vjp (reverse mode)


def vjp(func: Callable, *primals: Tensor, has_aux: bool = False) -> tuple:
    """``(func(*primals), vjp_fn)``; ``vjp_fn(cotangents)`` (shaped like the output) returns
    ``uᵀJ`` for each primal, as a tuple. ``vjp_fn`` may be called many times.

    >>> out, vjp_fn = tg.vjp(lambda x: x * x, tg.tensor([1.0, 2.0]))
    >>> vjp_fn(tg.tensor([1.0, 1.0]))            # (tensor([2., 4.]),)
    """
    from .autograd import api

    for i, p in enumerate(primals):
        _check_tensor("tg.vjp", f"primal {i}", p)
    nested = any(p.requires_grad for p in primals)  # inside an outer grad: record
    args = [p._grad_input() for p in primals]
    with enable_grad():
        result = func(*args)
    aux = None
    if has_aux:
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError("tg.vjp: with has_aux=True the function must return (output, aux)")
        result, aux = result
    outs, _ = _flatten(result)
    for i, o in enumerate(outs):
        _check_tensor("tg.vjp", f"output {i} of the function", o)

    def vjp_fn(*cotangents: Any) -> tuple:
        cts, _ = _flatten(cotangents[0] if len(cotangents) == 1 else cotangents)
        if len(cts) != len(outs):
            raise TypeError(f"vjp_fn: the function has {len(outs)} output(s), got "
                            f"{len(cts)} cotangent(s); give one per output, in its structure")
        for i, (o, c) in enumerate(zip(outs, cts)):
            _check_tensor("vjp_fn", f"cotangent {i}", c)
            if tuple(c.shape) != tuple(o.shape):
                raise ShapeError(f"vjp_fn: cotangent {i} has shape {tuple(c.shape)} but the "
                                 f"output has shape {tuple(o.shape)}; they must match")
        live = [(o, c) for o, c in zip(outs, cts) if o.requires_grad]
        if not live:
            return tuple(_leaf(np.zeros(a.shape, dtype=a.dtype)) for a in args)
        grads = api.grad([o for o, _ in live], args, [c for _, c in live], retain_graph=True,
                         create_graph=nested, allow_unused=True, materialize_grads=True)
        return tuple(grads)

    value = result if nested else _detached(result)
    return (value, vjp_fn, aux) if has_aux else (value, vjp_fn)


def _detached(obj: Any) -> Any:
    outs, rebuild = _flatten(obj)
    return rebuild([o.detach() if isinstance(o, Tensor) else o for o in outs])


# ---------------------------------------------------------------- Jacobians


def _argnums(argnums: int | tuple, n: int, op: str) -> tuple:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in nums:
        if not -n <= i < n:
            raise TypeError(f"{op}: argnums={argnums} but the function was called with {n} "
                            f"positional argument(s)")
    return tuple(i % n for i in nums)


def _basis(n: int, dtype: Any, start: int = 0, total: int | None = None) -> np.ndarray:
    """Rows ``start .. start + n`` of the identity of size ``total``... as (total, n) columns:
    the tangents of an input of n elements that occupies batch rows start..start+n."""
    total = n if total is None else total
    e = np.zeros((total, n), dtype=dtype)
    e[np.arange(start, start + n), np.arange(n)] = 1
    return e


def jacrev(func: Callable, argnums: int | tuple[int, ...] = 0, *, has_aux: bool = False,
           chunk_size: int | None = None) -> Callable:
    """The Jacobian of ``func`` by reverse mode: ``jacrev(f)(x)`` has shape
    ``out.shape + x.shape``. One forward pass, then one backward pass that carries every
    row's cotangent at once (forward mode through the backward pass, whose result is linear
    in the cotangent); ``chunk_size`` limits how many rows go at once.

    >>> tg.jacrev(lambda x: x.sin())(tg.tensor([0.0, 1.0]))   # diag(cos x)
    """

    @functools.wraps(func)
    def jac(*args: Any) -> Any:
        nums = _argnums(argnums, len(args), "tg.jacrev")
        outer = list(args)

        def partial(*xs: Tensor) -> Any:
            for i, x in zip(nums, xs):
                outer[i] = x
            return func(*outer)

        got = vjp(partial, *[args[i] for i in nums], has_aux=has_aux)
        out, vjp_fn = got[0], got[1]
        outs, rebuild = _flatten(out)
        xs = [args[i] for i in nums]
        rows = sum(o.numel() for o in outs)
        dtype = outs[0].dtype
        step = rows if chunk_size is None else max(1, int(chunk_size))
        parts: list[list] = [[] for _ in xs]
        for lo in range(0, rows, step):
            hi = min(rows, lo + step)
            with forward.level((hi - lo,)) as lv:
                seeds, start = [], 0
                for o in outs:
                    n = o.numel()
                    u = _leaf(np.zeros(tuple(o.shape), dtype=o.dtype))
                    block = _basis(n, o.dtype, start, rows)[lo:hi]
                    lv.set(u, _leaf(block.reshape((hi - lo,) + tuple(o.shape))))
                    seeds.append(u)
                    start += n
                grads = vjp_fn(rebuild(seeds))
                for k, (g, x) in enumerate(zip(grads, xs)):
                    t = lv.tangent(g)
                    parts[k].append(t if t is not None else _leaf(
                        np.zeros((hi - lo,) + tuple(x.shape), dtype=dtype)))
        jacs = []
        for k, x in enumerate(xs):
            rows_k = parts[k][0] if len(parts[k]) == 1 else _cat(parts[k])
            per_out, start = [], 0
            for o in outs:
                n = o.numel()
                block = rows_k[start:start + n] if len(outs) > 1 else rows_k
                per_out.append(block.reshape(tuple(o.shape) + tuple(x.shape)))
                start += n
            jacs.append(rebuild(per_out))
        result = jacs[0] if isinstance(argnums, int) else tuple(jacs)
        if len(outs) > 1 and not isinstance(argnums, int):  # (per output, then per input)
            result = rebuild([tuple(_flatten(j)[0][m] for j in jacs) for m in range(len(outs))])
        return (result, got[2]) if has_aux else result

    return jac


def _cat(parts: list) -> Tensor:
    from .tensor import cat

    return cat(parts, 0)


def jacfwd(func: Callable, argnums: int | tuple[int, ...] = 0, *, has_aux: bool = False,
           randomness: str = "error") -> Callable:
    """The Jacobian of ``func`` by forward mode: ``jacfwd(f)(x)`` has shape
    ``out.shape + x.shape``. One pass, pushing the whole basis of tangents at once (a batch
    dimension in front of every tangent). Best for tall Jacobians (few inputs, many outputs).

    >>> tg.jacfwd(lambda x: x.sin())(tg.tensor([0.0, 1.0]))   # diag(cos x)
    """

    @functools.wraps(func)
    def jac(*args: Any) -> Any:
        nums = _argnums(argnums, len(args), "tg.jacfwd")
        xs = [_check_tensor("tg.jacfwd", f"argument {i}", args[i]) for i in nums]
        total = sum(x.numel() for x in xs)
        tangents, start = [], 0
        for x in xs:
            if x.dtype.kind != "f":
                raise TypeError(f"tg.jacfwd: argument is {x.dtype}; forward mode needs floats")
            n = x.numel()
            tangents.append(_leaf(_basis(n, x.dtype, start, total).reshape(
                (total,) + tuple(x.shape))))
            start += n
        outer = list(args)

        def partial(*ys: Tensor) -> Any:
            for i, y in zip(nums, ys):
                outer[i] = y
            return func(*outer)

        out, tout, aux = _push(partial, tuple(xs), tuple(tangents), (total,), has_aux)
        touts, rebuild = _flatten(tout)
        outs, _ = _flatten(out)
        jacs = []
        start = 0
        for x in xs:
            n = x.numel()
            per_out = []
            for o, t in zip(outs, touts):
                block = t[start:start + n] if len(xs) > 1 else t
                # (n, *o.shape) -> o.shape + x.shape
                moved = block.reshape((n, o.numel())).transpose(0, 1)
                per_out.append(moved.reshape(tuple(o.shape) + tuple(x.shape)))
            jacs.append(rebuild(per_out))
            start += n
        result = jacs[0] if isinstance(argnums, int) else tuple(jacs)
        if len(outs) > 1 and not isinstance(argnums, int):
            result = rebuild([tuple(_flatten(j)[0][m] for j in jacs) for m in range(len(outs))])
        return (result, aux) if has_aux else result

    return jac


def hessian(func: Callable, argnums: int | tuple[int, ...] = 0) -> Callable:
    """The Hessian of a scalar-valued ``func``: ``jacfwd(jacrev(func))``, forward over
    reverse. ``hessian(f)(x)`` has shape ``x.shape + x.shape``.

    >>> tg.hessian(lambda x: (x ** 3).sum())(tg.tensor([1.0, 2.0]))   # diag(6x)
    """
    return jacfwd(jacrev(func, argnums), argnums)
