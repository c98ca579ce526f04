"""Algebraic simplification, by a table of rewrite rules: x*1, x+0, x-0, x/1, neg(neg x),
reshape of reshape, permute of permute, no-op reshape/permute/expand/cast, elementwise ops
moved before an expand or inside a permute, and the sum of scatters into adjacent slices (a
split's gradient) as one cat.

A rule looks at one node (whose inputs are already simplified) and returns the node that
can stand in for it, or None; it may build new nodes for that, which it lists in
``ctx.new`` (they are placed before the node they replace). A rule never changes a value's
shape or dtype, and never changes a node: the graph it was given stays as it was. A
canonicalizing rule (`CANONICAL`) returns the operands the node should read instead; the
node is rebuilt with them and the other rules then look at the rebuilt node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ...ops import PRIMITIVES
from ..ir import Graph, Node, rewire


def _const_equal(node: Node, value: float) -> bool:
    """``node`` is a constant all equal to ``value`` (also seen through reshapes and
    expands, which the backward pass puts around constants)."""
    while node.op in ("expand", "reshape"):
        node = node.inputs[0]
    return node.op == "const" and node.value.size > 0 and bool(np.all(node.value == value))


def _same_type(a: Node, b: Node) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype


@dataclass
class Context:
    users: dict = field(default_factory=dict)  # id(node) -> how many nodes read it
    new: list = field(default_factory=list)  # nodes a rule built, to place before its result


def _identity_operand(value: float, commutes: bool) -> Callable[[Node, Context], Node | None]:
    """``x op c`` (and ``c op x`` when ``commutes``) is ``x`` where ``c`` is all ``value``."""

    def rule(n: Node, ctx: Context) -> Node | None:
        a, b = n.inputs
        if _const_equal(b, value) and _same_type(a, n):
            return a
        if commutes and _const_equal(a, value) and _same_type(b, n):
            return b
        return None

    return rule


def _double_negation(n: Node, ctx: Context) -> Node | None:
    (x,) = n.inputs
    return x.inputs[0] if x.op == "neg" else None


def _noop(n: Node, ctx: Context) -> Node | None:
    (x,) = n.inputs
    return x if _same_type(x, n) else None


def _reshape(n: Node, ctx: Context) -> Node | None:
    (x,) = n.inputs
    if _same_type(x, n):
        return x
    if x.op == "reshape":  # reshape(reshape(y)) = reshape(y)
        y = x.inputs[0]
        if _same_type(y, n):
            return y
        return Node("reshape", (y,), dict(n.attrs), n.shape, n.dtype)
    return None


def _permute(n: Node, ctx: Context) -> Node | None:
    (x,) = n.inputs
    dims = n.attrs["dims"]
    if tuple(dims) == tuple(range(len(dims))):
        return x
    if x.op == "permute":  # permute(permute(y, d1), d2) = permute(y, d1[d2])
        inner = x.attrs["dims"]
        composed = tuple(inner[d] for d in dims)
        y = x.inputs[0]
        if composed == tuple(range(len(composed))):
            return y
        return Node("permute", (y,), {"dims": composed}, n.shape, n.dtype)
    return None


def _transposed_product(n: Node, ctx: Context) -> Node | None:
    """``(A @ B).T`` -> ``B.T @ A.T``: the transposes become free views (BLAS reads them
    with a flag) and the result comes out contiguous, instead of a strided view that every
    later elementwise op (an optimizer update of a weight's gradient) walks slowly."""
    (x,) = n.inputs
    dims = tuple(n.attrs["dims"])
    nd = len(dims)
    swap = tuple(range(nd - 2)) + (nd - 1, nd - 2)
    if x.op != "matmul" or nd < 2 or dims != swap or ctx.users.get(id(x), 0) != 1:
        return None
    a, b = x.inputs
    if a.ndim != nd or b.ndim != nd:
        return None
    return Node("matmul", (_swapped(b, swap, ctx), _swapped(a, swap, ctx)), {}, n.shape, n.dtype)


def _swapped(x: Node, swap: tuple, ctx: Context) -> Node:
    """``x`` with its last two dimensions swapped: the operand of a transpose if ``x`` is
    one (a transpose of a transpose is no transpose), else a new permute node."""
    if x.op == "permute" and tuple(x.attrs["dims"]) == swap:
        return x.inputs[0]
    t = Node("permute", (x,), {"dims": swap}, x.shape[:-2] + (x.shape[-1], x.shape[-2]), x.dtype)
    ctx.new.append(t)
    return t


def _implicit_broadcast(n: Node, ctx: Context) -> tuple | None:
    """``op(expand(x), y)`` -> ``op(x, y)`` when broadcasting alone gives the same shape:
    elementwise ops broadcast anyway, and the expand is a call that does nothing."""
    changed = False
    inputs = list(n.inputs)
    for k, x in enumerate(inputs):
        if x.op != "expand":
            continue
        inner = x.inputs[0]
        others = [i.shape for j, i in enumerate(inputs) if j != k]
        try:
            shape = tuple(np.broadcast_shapes(inner.shape, *others))
        except ValueError:
            continue
        if shape == n.shape:
            inputs[k] = inner
            changed = True
    return tuple(inputs) if changed else None


def _unary_before_expand(n: Node, ctx: Context) -> Node | None:
    """``f(expand(x))`` -> ``expand(f(x))`` for an elementwise ``f``: the same values,
    computed on the small array before it is broadcast (and a later elementwise op then
    drops the expand, see `_implicit_broadcast`)."""
    (x,) = n.inputs
    if x.op != "expand" or ctx.users.get(id(x), 0) != 1:
        return None
    small = x.inputs[0]
    inner = Node(n.op, (small,), dict(n.attrs), small.shape, n.dtype)
    ctx.new.append(inner)
    return Node("expand", (inner,), dict(x.attrs), n.shape, n.dtype)


def _elementwise_before_permute(n: Node, ctx: Context) -> Node | None:
    """``f(permute(x, d), permute(y, d), c)`` -> ``permute(f(x, y, c), d)`` for an
    elementwise ``f`` whose operands are all permuted the same way (or are 0-d): the result
    keeps ``x``'s memory layout, as NumPy's ufuncs keep their input's layout in eager mode,
    so a permute back (the convolution's batch-last layout, undone for ReLU and redone for
    pooling) cancels out instead of reading a transposed buffer."""
    dims = None
    for x in n.inputs:
        if x.op == "permute" and (dims is None or x.attrs["dims"] == dims):
            dims = x.attrs["dims"]
        elif x.shape != ():
            return None
    if dims is None or len(dims) != len(n.shape):
        return None
    inputs = tuple(x.inputs[0] if x.op == "permute" else x for x in n.inputs)
    inner = Node(n.op, inputs, dict(n.attrs), _unpermuted(n.shape, dims), n.dtype)
    ctx.new.append(inner)
    return Node("permute", (inner,), {"dims": dims}, n.shape, n.dtype)


def _unpermuted(shape: tuple, dims: tuple) -> tuple:
    """The shape whose permute by ``dims`` is ``shape``."""
    out = [0] * len(dims)
    for k, d in enumerate(dims):
        out[d] = shape[k]
    return tuple(out)


def _mask_product(n: Node, ctx: Context) -> tuple | None:
    """``x * cast(mask)`` -> ``x * mask`` for a bool mask (ReLU's and max's gradients): one
    pass over the data instead of two, and no float copy of the mask."""
    a, b = n.inputs
    if b.op == "cast" and b.inputs[0].dtype == np.bool_ and a.dtype == n.dtype:
        return (a, b.inputs[0])
    if a.op == "cast" and a.inputs[0].dtype == np.bool_ and b.dtype == n.dtype:
        return (b, a.inputs[0])
    return None


def _slab(n: Node) -> tuple | None:
    """(axis, start, stop) if ``n`` scatters its operand into zeros at ``[..., start:stop,
    ...]`` (one axis sliced, every other whole), else None."""
    if n.op != "scatter_add" or len(n.inputs) != 1:
        return None
    index, shape = n.attrs["index"], n.shape
    if not isinstance(index, tuple) or len(index) != len(shape) or \
            not all(isinstance(i, slice) for i in index):
        return None
    cut = [(d, i) for d, i in enumerate(index) if i != slice(None)]
    if len(cut) != 1:
        return None
    d, i = cut[0]
    start, stop, step = i.indices(shape[d])
    if step != 1 or stop <= start or i.step not in (None, 1) \
            or n.inputs[0].shape[d] != stop - start:
        return None
    return d, start, stop


def _adjacent_slabs(n: Node, ctx: Context) -> Node | None:
    """``scatter(a, [.., p:q]) + scatter(b, [.., q:r])`` -> ``scatter(cat(a, b), [.., p:r])``,
    and a scatter over the whole axis is the cat itself: the gradient of a split (a GPT's
    q, k, v from one product) is one copy of each piece, not a zeroed buffer per piece
    added up."""
    a, b = n.inputs
    sa, sb = _slab(a), _slab(b)
    if sa is None or sb is None or sa[0] != sb[0] or not _same_type(a, n) or \
            not _same_type(b, n) or ctx.users.get(id(a), 0) != 1 or \
            ctx.users.get(id(b), 0) != 1:
        return None
    if sb[2] == sa[1]:
        a, b, sa, sb = b, a, sb, sa
    if sa[2] != sb[1]:
        return None
    d, start, stop = sa[0], sa[1], sb[2]
    pieces: list[Node] = []
    for x in (a.inputs[0], b.inputs[0]):  # (a cat this rule built is spliced in)
        inner = x.op == "cat" and x.attrs["dim"] == d and ctx.users.get(id(x), 0) == 1
        pieces += list(x.inputs) if inner else [x]
    shape = list(n.shape)
    shape[d] = stop - start
    cat = Node("cat", tuple(pieces), {"dim": d}, tuple(shape), n.dtype)
    if start == 0 and stop == n.shape[d]:
        return cat
    ctx.new.append(cat)
    index = tuple(slice(start, stop) if k == d else slice(None) for k in range(len(n.shape)))
    return Node("scatter_add", (cat,), {"index": index, "shape": n.shape}, n.shape, n.dtype)


def is_unary(op: str) -> bool:
    """An elementwise op of one operand (with no attributes that depend on the shape): a
    fusible primitive of one input, registered now or later."""
    p = PRIMITIVES.get(op)
    return p is not None and p.fusible and len(p.inputs) == 1


_BROADCASTING = ("add", "sub", "mul", "div", "pow", "maximum", "lt", "le", "gt", "ge", "eq",
                 "ne", "where")


# The rules of every unary op (is_unary) that RULES does not name.
_UNARY_RULES = [_unary_before_expand, _elementwise_before_permute]

# Rules that give the operands a node should read instead (applied first, in order).
CANONICAL: dict[str, list[Callable[[Node, Context], tuple | None]]] = {
    **{op: [_implicit_broadcast] for op in _BROADCASTING},
    "mul": [_implicit_broadcast, _mask_product],
}

RULES: dict[str, list[Callable[[Node, Context], Node | None]]] = {
    **{op: [_elementwise_before_permute] for op in _BROADCASTING},
    "mul": [_identity_operand(1, commutes=True), _elementwise_before_permute],
    "add": [_identity_operand(0, commutes=True), _adjacent_slabs, _elementwise_before_permute],
    "sub": [_identity_operand(0, commutes=False), _elementwise_before_permute],
    "div": [_identity_operand(1, commutes=False), _elementwise_before_permute],
    "neg": [_double_negation, *_UNARY_RULES],
    "reshape": [_reshape],
    "permute": [_permute, _transposed_product],
    "expand": [_noop],
    "cast": [_noop, *_UNARY_RULES],
}


def simplify(graph: Graph, backend: Any = None) -> tuple[Graph, str]:
    ctx = Context()
    for node in graph.nodes:
        for i in node.inputs:
            ctx.users[id(i)] = ctx.users.get(id(i), 0) + 1
    for o in graph.outputs:
        ctx.users[id(o)] = ctx.users.get(id(o), 0) + 1
    replaced: dict[int, Node] = {}
    kept: list[Node] = []
    placed = {id(n) for n in graph.inputs}  # ids of the nodes in `kept`, and the inputs
    rebuilt: list[Node] = []  # (kept alive while the ids in ctx.users may name them)
    count = 0
    for original in graph.nodes:
        node = rewire(original, replaced)
        for rule in CANONICAL.get(node.op, ()):
            inputs = rule(node, ctx)
            if inputs is not None:
                for i in node.inputs:
                    ctx.users[id(i)] -= 1
                for i in inputs:
                    ctx.users[id(i)] = ctx.users.get(id(i), 0) + 1
                node = node.with_inputs(inputs)
                rebuilt.append(node)
                count += 1
        if node is not original:
            replaced[id(original)] = node
            ctx.users[id(node)] = ctx.users.get(id(original), 0)
        target = None
        for rule in RULES.get(node.op) or (_UNARY_RULES if is_unary(node.op) else ()):
            target = rule(node, ctx)
            if target is not None:
                break
        if target is not None:
            replaced[id(original)] = target
            count += 1
            # The target is new, or a node already placed (x * 1 returns x).
            built = ctx.new + ([target] if id(target) not in placed else [])
            placed.update(id(b) for b in built)
            kept.extend(built)
            ctx.new.clear()
            # Keep the use counts true, so a rule can fire again on what a rule built.
            for i in node.inputs:
                ctx.users[id(i)] -= 1
            for b in built:
                for i in b.inputs:
                    ctx.users[id(i)] = ctx.users.get(id(i), 0) + 1
            ctx.users[id(target)] = ctx.users.get(id(target), 0) + ctx.users.get(id(node), 0)
        else:
            placed.add(id(node))
            kept.append(node)
    outputs = [replaced.get(id(o), o) for o in graph.outputs]
    return Graph(graph.inputs, kept, outputs), f"rewrote {count} node(s)"
