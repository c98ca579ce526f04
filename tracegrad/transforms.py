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
from .pytree import tree_flatten
from .scalar import Value, _make_children
from .tensor import Tensor, _eager_only, _leaf, apply

__all__ = ["grad", "value_and_grad", "jvp", "linearize", "vjp", "jacrev", "jacfwd", "hessian",
           "vmap"]


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


# ---------------------------------------------------------------- checks


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
    # each primal may be a tree (a dict of weights, ...): its tangent has the same structure
    ps, rebuild = tree_flatten(primals)
    ts, t_rebuild = tree_flatten(tangents)
    if len(ps) != len(ts) or _structure(primals) != _structure(tangents):
        raise TypeError(f"tg.jvp: the tangents must have the structure of the primals; got "
                        f"{_structure(tangents)} for {_structure(primals)}")
    for i, (p, t) in enumerate(zip(ps, ts)):
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
    out, tangent_out, aux = _push(lambda *leaves: func(*rebuild(list(leaves))), tuple(ps),
                                  tuple(ts), (), has_aux)
    return (out, tangent_out, aux) if has_aux else (out, tangent_out)


def _structure(tree: Any) -> Any:
    """A tree's shape without its leaves: what two trees must share to pair their leaves."""
    if isinstance(tree, (tuple, list)):
        return (type(tree).__name__, tuple(_structure(t) for t in tree))
    if isinstance(tree, dict):
        return ("dict", tuple((k, _structure(v)) for k, v in tree.items()))
    return "*"


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
        outs, rebuild = tree_flatten(result)
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
    outs, rebuild = tree_flatten(result)
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


def linearize(func: Callable, *primals: Any) -> tuple:
    """``torch.func.linearize``: ``(func(*primals), jvp_fn)``, where ``jvp_fn(*tangents)``
    is ``J v`` at ``primals`` (as ``jvp(func, primals, tangents)[1]``; each call runs
    ``func`` again, with tangents).

    >>> out, jvp_fn = tg.func.linearize(lambda x: x.sin(), x)
    >>> jvp_fn(v)                                  # cos(x) * v
    """
    out, _ = jvp(func, primals, tuple(_zeros_like_tree(p) for p in primals))

    def jvp_fn(*tangents: Any) -> Any:
        return jvp(func, primals, tangents)[1]

    return _detached(out), jvp_fn


def _zeros_like_tree(tree: Any) -> Any:
    leaves, rebuild = tree_flatten(tree)
    return rebuild([_leaf(np.zeros(x.shape, dtype=x.dtype)) if isinstance(x, Tensor) else x
                    for x in leaves])


# ---------------------------------------------------------------- vjp (reverse mode)


def vjp(func: Callable, *primals: Tensor, has_aux: bool = False) -> tuple:
    """``(func(*primals), vjp_fn)``; ``vjp_fn(cotangents)`` (shaped like the output) returns
    ``uᵀJ`` for each primal, as a tuple. ``vjp_fn`` may be called many times.

    >>> out, vjp_fn = tg.vjp(lambda x: x * x, tg.tensor([1.0, 2.0]))
    >>> vjp_fn(tg.tensor([1.0, 1.0]))            # (tensor([2., 4.]),)
    """
    from .autograd import api

    ps, rebuild = tree_flatten(primals)  # each primal may be a tree (a dict of weights)
    for i, p in enumerate(ps):
        _check_tensor("tg.vjp", f"primal {i}", p)
    nested = any(p.requires_grad for p in ps)  # inside an outer grad: record
    args = [p._grad_input() for p in ps]
    with enable_grad():
        result = func(*rebuild(args))
    aux = None
    if has_aux:
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError("tg.vjp: with has_aux=True the function must return (output, aux)")
        result, aux = result
    outs, _ = tree_flatten(result)
    for i, o in enumerate(outs):
        _check_tensor("tg.vjp", f"output {i} of the function", o)

    def vjp_fn(*cotangents: Any) -> tuple:
        cts, _ = tree_flatten(cotangents[0] if len(cotangents) == 1 else cotangents)
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
            return rebuild([_leaf(np.zeros(a.shape, dtype=a.dtype)) for a in args])
        grads = api.grad([o for o, _ in live], args, [c for _, c in live], retain_graph=True,
                         create_graph=nested, allow_unused=True, materialize_grads=True)
        return rebuild(list(grads))

    value = result if nested else _detached(result)
    return (value, vjp_fn, aux) if has_aux else (value, vjp_fn)


def _detached(obj: Any) -> Any:
    outs, rebuild = tree_flatten(obj)
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
        xs, partial, in_rebuild = _differentiated(func, args, argnums, "tg.jacrev")
        got = vjp(partial, *xs, has_aux=has_aux)
        out, vjp_fn = got[0], got[1]
        outs, rebuild = tree_flatten(out)
        rows = sum(o.numel() for o in outs)
        dtype = outs[0].dtype
        step = max(rows, 1) if chunk_size is None else max(1, int(chunk_size))
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
        per_input = []  # per input: its Jacobian with each output
        for k, x in enumerate(xs):
            rows_k = parts[k][0] if len(parts[k]) == 1 else _cat(parts[k]) if parts[k] else \
                _leaf(np.zeros((0,) + tuple(x.shape), dtype=dtype))  # (no output elements)
            per_out, start = [], 0
            for o in outs:
                n = o.numel()
                block = rows_k[start:start + n] if len(outs) > 1 else rows_k
                per_out.append(block.reshape(tuple(o.shape) + tuple(x.shape)))
                start += n
            per_input.append(per_out)
        result = _jacobian_tree(per_input, rebuild, in_rebuild)
        return (result, got[2]) if has_aux else result

    return jac


def _differentiated(func: Callable, args: tuple, argnums: int | tuple, op: str) -> tuple:
    """The tensors a Jacobian is taken with respect to (the leaves of the arguments
    ``argnums`` picks, each a tensor or a tree of them), ``func`` as a function of those
    leaves, and how to rebuild the picked arguments' structure from one value per leaf."""
    nums = _argnums(argnums, len(args), op)
    picked = args[nums[0]] if isinstance(argnums, int) else tuple(args[i] for i in nums)
    xs, in_rebuild = tree_flatten(picked)
    for k, x in enumerate(xs):
        _check_tensor(op, f"input {k} (of argnums={argnums})", x)

    def partial(*leaves: Tensor) -> Any:
        outer = list(args)
        chosen = in_rebuild(list(leaves))
        if isinstance(argnums, int):
            outer[nums[0]] = chosen
        else:
            for i, c in zip(nums, chosen):
                outer[i] = c
        return func(*outer)

    return xs, partial, in_rebuild


def _jacobian_tree(per_input: list, out_rebuild: Callable, in_rebuild: Callable) -> Any:
    """The Jacobian blocks (``per_input[k][m]``: output m with respect to input leaf k) in
    torch.func's nesting: the output's structure outside, the inputs' inside."""
    n_out = len(per_input[0]) if per_input else 0
    return out_rebuild([in_rebuild([blocks[m] for blocks in per_input])
                        for m in range(n_out)])


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
        xs, partial, in_rebuild = _differentiated(func, args, argnums, "tg.jacfwd")
        total = sum(x.numel() for x in xs)
        tangents, start = [], 0
        for x in xs:
            if x.dtype.kind != "f":
                raise TypeError(f"tg.jacfwd: argument is {x.dtype}; forward mode needs floats")
            n = x.numel()
            tangents.append(_leaf(_basis(n, x.dtype, start, total).reshape(
                (total,) + tuple(x.shape))))
            start += n
        out, tout, aux = _push(partial, tuple(xs), tuple(tangents), (total,), has_aux)
        touts, rebuild = tree_flatten(tout)
        outs, _ = tree_flatten(out)
        per_input, start = [], 0
        for x in xs:
            n = x.numel()
            per_out = []
            for o, t in zip(outs, touts):
                block = t[start:start + n] if len(xs) > 1 else t
                # (n, *o.shape) -> o.shape + x.shape
                moved = block.reshape((n, o.numel())).transpose(0, 1)
                per_out.append(moved.reshape(tuple(o.shape) + tuple(x.shape)))
            per_input.append(per_out)
            start += n
        result = _jacobian_tree(per_input, rebuild, in_rebuild)
        return (result, aux) if has_aux else result

    return jac


def hessian(func: Callable, argnums: int | tuple[int, ...] = 0) -> Callable:
    """The Hessian of a scalar-valued ``func``: ``jacfwd(jacrev(func))``, forward over
    reverse. ``hessian(f)(x)`` has shape ``x.shape + x.shape``.

    >>> tg.hessian(lambda x: (x ** 3).sum())(tg.tensor([1.0, 2.0]))   # diag(6x)
    """
    return jacfwd(jacrev(func, argnums), argnums)


# ---------------------------------------------------------------- vmap (a loop)


def vmap(func: Callable, in_dims: Any = 0, out_dims: Any = 0, randomness: str = "error", *,
         chunk_size: int | None = None) -> Callable:
    """``torch.func.vmap``: ``func`` mapped over a dimension of its inputs, the results
    stacked along ``out_dims``. ``in_dims`` is an int (or None: not mapped) for every input,
    or a tuple with one entry per positional argument, each an int, None or a tree like that
    argument's (``{"w": None, "x": 0}``); ``out_dims`` likewise for the outputs. Negative
    dims count from the end. Keyword arguments are passed to every call unmapped.

    >>> per_sample = tg.func.vmap(tg.func.grad(loss), in_dims=(None, 0, 0))(params, xs, ys)

    It runs ``func`` once per element and stacks the results (a loop, not batching rules):
    the numbers, gradients through it and compositions (``vmap(grad(f))``, ``jacrev(vmap(f))``,
    ``vmap(vmap(f))``) are torch.func's; the speed is the loop's. ``chunk_size`` is accepted
    (every element is a call of its own anyway). ``randomness``: "error" raises if ``func``
    draws from the global generator, "different" lets each element draw its own numbers,
    "same" gives every element the same draws.
    """
    if randomness not in ("error", "different", "same"):
        raise ValueError(f"tg.func.vmap: randomness must be 'error', 'different' or 'same', "
                         f"got {randomness!r}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"tg.func.vmap: chunk_size must be None or a positive int, got "
                         f"{chunk_size!r}")
    if not isinstance(in_dims, (int, tuple, list)) and in_dims is not None:
        raise ValueError(f"tg.func.vmap: in_dims must be an int, None or a tuple (one entry "
                         f"per argument), got {type(in_dims).__name__}")

    @functools.wraps(func)
    def mapped(*args: Any, **kwargs: Any) -> Any:
        if isinstance(in_dims, (tuple, list)) and len(in_dims) != len(args):
            raise ValueError(f"tg.func.vmap: in_dims has {len(in_dims)} entries but the "
                             f"function was called with {len(args)} positional argument(s); "
                             f"give one per argument (None for one not mapped)")
        leaves, rebuild = tree_flatten(args)
        dims = _dims_per_leaf("in_dims", in_dims if isinstance(in_dims, (tuple, list))
                              else (in_dims,) * len(args), tuple(args))
        size = _batch_size(leaves, dims)
        slices = [x.unbind(d) if d is not None else None for x, d in zip(leaves, dims)]
        if randomness == "same":
            _eager_only("tg.func.vmap(randomness='same') (it rewinds the global generator "
                        "before each element)")
        gen = _global_numpy_rng()
        start = gen.bit_generator.state
        results = []
        for b in range(size):
            if randomness == "same":
                gen.bit_generator.state = start
            arg_b = rebuild([x if s is None else s[b] for x, s in zip(leaves, slices)])
            results.append(func(*arg_b, **kwargs))
        if randomness == "error" and gen.bit_generator.state != start:
            raise RuntimeError("tg.func.vmap: the function draws random numbers; pass "
                               "randomness='different' (each element its own draws) or "
                               "'same' (one draw for all)")
        outs = [tree_flatten(r)[0] for r in results]
        out_rebuild = tree_flatten(results[0])[1]
        spec = out_dims[0] if isinstance(out_dims, tuple) and len(out_dims) == 1 and \
            not isinstance(results[0], (tuple, list)) else out_dims  # ((0,) for one output)
        o_dims = _dims_per_leaf("out_dims", spec, results[0])
        stacked = []
        for k, d in enumerate(o_dims):
            column = [o[k] for o in outs]
            if not all(isinstance(c, Tensor) for c in column):
                if d is None:
                    stacked.append(column[0])
                    continue
                kind = next(type(c).__name__ for c in column if not isinstance(c, Tensor))
                raise ValueError(f"tg.func.vmap: the function must return tensors (or "
                                 f"trees of them), output {k} is a {kind} (out_dims=None "
                                 f"returns it as it is)")
            if d is None:
                if any(not np.array_equal(c._data, column[0]._data, equal_nan=True)
                       for c in column):
                    raise ValueError(f"tg.func.vmap: out_dims is None for output {k}, but it "
                                     f"differs between the mapped elements; give it a dim")
                stacked.append(column[0])
                continue
            nd = column[0].ndim + 1
            if not -nd <= d < nd:
                raise ValueError(f"tg.func.vmap: out_dims={d} for output {k}, which has "
                                 f"{nd - 1} dim(s) per element")
            stacked.append(_stack(column, d % nd))
        return out_rebuild(stacked)

    return mapped


def _dims_per_leaf(what: str, spec: Any, tree: Any) -> list:
    """``spec`` (an int or None for a whole subtree, else a tree shaped like ``tree``), as
    one dim per leaf of ``tree``."""
    if spec is None or isinstance(spec, int):
        return [spec] * len(tree_flatten(tree)[0])
    same_kind = (isinstance(spec, (tuple, list)) and isinstance(tree, (tuple, list)) and
                 len(spec) == len(tree)) or \
        (isinstance(spec, dict) and isinstance(tree, dict) and set(spec) == set(tree))
    if not same_kind:
        raise ValueError(f"tg.func.vmap: {what} {spec!r} does not match the structure of "
                         f"the {'inputs' if what == 'in_dims' else 'outputs'} ("
                         f"{type(tree).__name__}); give an int, None, or the same structure")
    if isinstance(spec, dict):
        return [d for k in tree for d in _dims_per_leaf(what, spec[k], tree[k])]
    return [d for s, t in zip(spec, tree) for d in _dims_per_leaf(what, s, t)]


def _batch_size(leaves: list, dims: list) -> int:
    sizes = []
    for x, d in zip(leaves, dims):
        if d is None:
            continue
        if not isinstance(x, Tensor):
            raise ValueError(f"tg.func.vmap: in_dims={d} for an input of type "
                             f"{type(x).__name__}; only tensors can be mapped over (give it "
                             f"None)")
        if not -x.ndim <= d < max(x.ndim, 1) or x.ndim == 0:
            raise ValueError(f"tg.func.vmap: in_dims={d} for an input of shape "
                             f"{tuple(x.shape)}, which has no dim {d}")
        sizes.append(x.shape[d])
    if not sizes:
        raise ValueError("tg.func.vmap: no input is mapped over (every in_dims is None or "
                         "no argument is a tensor); map at least one tensor")
    if len(set(sizes)) > 1:
        raise ValueError(f"tg.func.vmap: the mapped dims have different sizes {sizes}; they "
                         f"must all be the same")
    if sizes[0] == 0:
        raise ValueError("tg.func.vmap: the mapped dim has size 0; tracegrad's vmap calls "
                         "the function once per element and so cannot map over none")
    return sizes[0]


def _global_numpy_rng() -> Any:
    """The generator the global random functions draw from now (while traced, the copy the
    trace draws from: so a draw is seen in a compiled vmap too)."""
    from .rng import numpy_rng

    return numpy_rng()


def _stack(column: list, dim: int) -> Tensor:
    from .tensor import stack

    return stack(column, dim)
