"""Capture of micrograd-style `Value` programs: the scalar graph of one call.

A training step written with `Value` (forward, ``zero_grad()``, ``loss.backward()``,
``p.data -= lr * p.grad``) rebuilds a graph of tens of thousands of Python objects on every
call. Traced once, it is a static graph of 0-d float64 nodes, recorded as a tape
(`values_tape.Recording`: an op and operand indices per node), which `values_program.py`
runs as a few vectorized NumPy calls or a C tape.

How the capture works: while one call is traced, the numbers a Value holds are `Traced`:
placeholders whose arithmetic and comparisons record nodes. A Value made during the call
is a `TracedValue` (``scalar._node`` makes them for the duration) holding traced numbers in
its own slots. A Value that existed before the call is read and written through the
``data`` and ``grad`` properties swapped into the class for the duration (see `_patched`;
other threads still see the real numbers): its first read is an input of the graph, and
what the call sets goes to a table of the trace and becomes a write-back. Value's own ops
(``self.data + other.data``) and the backward rules in ``scalar._RULES`` run unchanged on
traced numbers, so the graph holds forward, backward and update in exactly eager's order of
operations; ``backward()`` is the engine's walk as one loop (`_traced_backward`), or for
the C tape a reverse sweep (`_record_sweep`). The few Value methods that call ``math`` or
branch on a number (relu, tanh, exp, log, sigmoid, ``/``, ``**``) get traced twins for the
duration. Float arguments are inputs too. Nothing of the real Values changes while tracing.
"""

from __future__ import annotations

import contextlib
import copy
import math
import numbers
import threading
import types
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter, is_, itemgetter
from typing import Any, Callable

import numpy as np

from .. import scalar as scalar_mod
from ..errors import TraceError
from ..scalar import Value
from .ir import Graph
from .trace import (
    build_tree,
    check_containers_unchanged,
    container_layout,
    flatten_args,
    rebuild_args,
)
from .values_program import SWEEP_RULES
from .values_tape import Recording

_new = object.__new__

# The real slot descriptors of Value.data / Value.grad (the patched properties call them for
# other threads, and to tell a Value made during the call from one that existed before).
_DATA = Value.__dict__["data"]
_GRAD = Value.__dict__["grad"]

_active: "ValueTracer | None" = None  # the trace in progress (one at a time: trace._TRACE_LOCK)


def _emit(op: str, a: int, b: int = -1, c: int = -1) -> int:
    """Record one node (operands are node indices, -1 for none); its index."""
    t = _active
    ops = t.ops
    i = len(ops)
    ops.append(op)
    t.a.append(a)
    t.b.append(b)
    if c >= 0:
        t.c[i] = c
    return i


def _traced(i: int) -> "Traced":
    t = _new(Traced)
    t.i = i
    return t


def _const(x: Any) -> int:
    """The const node of a Python number (one per distinct number in a trace)."""
    tracer = _active
    is_bool = type(x) is bool
    key = (is_bool, float(x).hex())
    i = tracer.consts.get(key)
    if i is None:
        i = tracer.consts[key] = _emit("const", -1)
        tracer.values[i] = bool(x) if is_bool else float(x)
        if is_bool:
            tracer.bools.add(i)
    return i


def _operand(x: Any, op: str) -> int:
    if type(x) is Traced:
        return x.i
    if isinstance(x, numbers.Real):
        return _const(x)
    raise TypeError(f"traced number {op}: unsupported operand {type(x).__name__} {x!r} "
                    f"(a number or a Value's .data/.grad fits)")


def _f64(i: int) -> int:
    return _emit("cast", i) if i in _active.bools else i


def _binary(op: str, x: Any, y: Any) -> "Traced":
    ia = x.i if type(x) is Traced else _operand(x, op)
    ib = y.i if type(y) is Traced else _operand(y, op)
    t = _active
    bools = t.bools
    if ia in bools or ib in bools:
        if op == "mul" and ia in bools and ib not in bools:
            ia, ib = ib, ia  # x * mask: the one mixed-dtype form of mul (exact: it commutes)
        elif not (op == "mul" and ib in bools and ia not in bools):
            ia, ib = _f64(ia), _f64(ib)
    # (_emit and _traced, inlined: this is most of a trace's nodes)
    ops = t.ops
    r = _new(Traced)
    r.i = len(ops)
    ops.append(op)
    t.a.append(ia)
    t.b.append(ib)
    return r


def _compare(op: str, x: Any, y: Any) -> "Traced":
    ia, ib = _operand(x, op), _operand(y, op)
    bools = _active.bools
    if (ia in bools) != (ib in bools):
        ia, ib = _f64(ia), _f64(ib)
    i = _emit(op, ia, ib)
    bools.add(i)
    return _traced(i)


def _unary(op: str, x: Any) -> "Traced":
    return _traced(_emit(op, _f64(_operand(x, op))))


def _refuse(what: str) -> Callable:
    def refuse(self: "Traced", *args: Any) -> Any:
        from .trace import user_line

        raise TraceError(
            f"{what} of a traced number at {user_line()}\n"
            f"While a function of Values is compiled, .data and .grad are traced numbers: "
            f"their value changes from call to call, so turning one into a Python "
            f"{what.split()[0]} (an `if`, float(...), math.*, formatting) would bake in this "
            f"one call's result. Keep the computation in arithmetic and comparisons "
            f"(`(s.data > 0) * 1.0` counts instead of `if`), or do this part outside the "
            f"compiled function.")

    return refuse


class Traced:
    """A number in a traced call (a Value's ``.data`` or ``.grad``, a float argument):
    arithmetic and comparisons on it record nodes of the graph. ``i`` is its node's index in
    the recording."""

    __slots__ = ("i",)

    # (``type(o) is int and o == k``: adding int 0 or multiplying by int 1 changes no float;
    # the engine's first ``grad += g`` and the root's grad 1 add no node)
    def __add__(self, o: Any) -> Any:
        return self if type(o) is int and o == 0 else _binary("add", self, o)

    def __radd__(self, o: Any) -> Any:
        return self if type(o) is int and o == 0 else _binary("add", o, self)

    def __sub__(self, o: Any) -> "Traced":
        return _binary("sub", self, o)

    def __rsub__(self, o: Any) -> "Traced":
        return _binary("sub", o, self)

    def __mul__(self, o: Any) -> Any:
        return self if type(o) is int and o == 1 else _binary("mul", self, o)

    def __rmul__(self, o: Any) -> Any:
        return self if type(o) is int and o == 1 else _binary("mul", o, self)

    def __truediv__(self, o: Any) -> "Traced":
        return _binary("div", self, o)

    def __rtruediv__(self, o: Any) -> "Traced":
        return _binary("div", o, self)

    def __pow__(self, o: Any) -> "Traced":
        return _binary("pow", self, o)

    def __rpow__(self, o: Any) -> "Traced":
        return _binary("pow", o, self)

    def __neg__(self) -> "Traced":
        return _unary("neg", self)

    def __pos__(self) -> "Traced":
        return self

    def __lt__(self, o: Any) -> "Traced":
        return _compare("lt", self, o)

    def __le__(self, o: Any) -> "Traced":
        return _compare("le", self, o)

    def __gt__(self, o: Any) -> "Traced":
        return _compare("gt", self, o)

    def __ge__(self, o: Any) -> "Traced":
        return _compare("ge", self, o)

    def __eq__(self, o: Any) -> "Traced":  # type: ignore[override]
        return _compare("eq", self, o)

    def __ne__(self, o: Any) -> "Traced":  # type: ignore[override]
        return _compare("ne", self, o)

    __hash__ = object.__hash__
    __bool__ = _refuse("bool (a branch)")
    __float__ = _refuse("float conversion")
    __int__ = __index__ = __round__ = __trunc__ = __floor__ = __ceil__ = \
        _refuse("int conversion")
    __format__ = _refuse("string formatting")
    __abs__ = _refuse("abs (a branch on the sign)")

    def __repr__(self) -> str:
        return f"<traced number %{self.i}>"


numbers.Real.register(Traced)  # Value(traced) and `Value + traced` accept it as a number


# --------------------------------------------------------------------------------------
# The patched Value class attributes (in force only while a trace runs)


def _get_data(v: Value) -> Any:
    t = _active
    if t is None or t.thread != threading.get_ident():
        return _DATA.__get__(v)
    x = t.data.get(v, _MISSING)
    return t.read_before(v, "data") if x is _MISSING else x


def _set_data(v: Value, x: Any) -> None:
    t = _active
    if t is None or t.thread != threading.get_ident():
        _DATA.__set__(v, x)
    else:
        t.write(v, "data", x)


def _get_grad(v: Value) -> Any:
    t = _active
    if t is None or t.thread != threading.get_ident():
        return _GRAD.__get__(v)
    x = t.grad.get(v, _MISSING)
    return t.read_before(v, "grad") if x is _MISSING else x


def _set_grad(v: Value, x: Any) -> None:
    t = _active
    if t is None or t.thread != threading.get_ident():
        _GRAD.__set__(v, x)
    else:
        t.write(v, "grad", x)


_MISSING = object()
_ORIGINAL = {name: Value.__dict__[name] for name in
             ("data", "grad", "relu", "tanh", "exp", "log", "sigmoid", "__add__", "__mul__",
              "__truediv__", "__pow__", "backward")}


def _traced_unary(name: str, op: str, node_op: str) -> Callable:
    original = _ORIGINAL[name]

    def method(self: Value) -> Value:
        x = self.data
        if type(x) is not Traced:
            return original(self)
        y = _new(Traced)
        y.i = _emit(op, _f64(x.i))
        return _traced_node(y, self, None, node_op)

    method.__name__ = name
    return method


def _traced_truediv(self: Value, other: Any) -> Value:
    if isinstance(other, Value) or type(other) is not Traced:
        return _ORIGINAL["__truediv__"](self, other)
    return self * other**-1  # (a traced divisor: no zero check, the program gives inf)


def _traced_pow(self: Value, other: Any) -> Value:
    if type(other) is Traced:
        return self ** Value(other)  # a traced exponent is a Value exponent
    if isinstance(other, Value) or type(self.data) is not Traced:
        return _ORIGINAL["__pow__"](self, other)
    if not isinstance(other, numbers.Real):
        return _ORIGINAL["__pow__"](self, other)
    if type(other) is not int and type(other) is not float:
        other = int(other) if isinstance(other, numbers.Integral) else float(other)
    op = scalar_mod._pow_op(other)
    return _traced_node(_binary("pow", self.data, other), self, None, op)


class TracedValue(Value):
    """A Value made during a traced call (`_traced_node` makes these while a trace runs). Its
    ``.data`` and ``.grad`` are Value's own slots, holding traced numbers: no other thread
    has it, and nothing outside the call sees it, so it needs none of the table lookups of a
    Value that existed before the call (which go through the patched properties below)."""

    __slots__ = ()
    data = _DATA
    grad = _GRAD


_build_traced = scalar_mod.node_builder(TracedValue)


def _traced_node(data: Any, a: Value, b: Value | None, op: str) -> Value:
    """``scalar._node`` while a trace runs (swapped in by `_patched`): the same node, as a
    `TracedValue`, noted in the trace's list of the nodes it made, in the order made. That
    list is what a reverse sweep reads (`_made_rows`): no walk of the graph at backward().
    (Built by `scalar.node_builder`, as `scalar._node` is.)"""
    v = _build_traced(data, a, b, op)
    t = _active
    if t is not None:  # (None: another thread's call that began as the trace ended)
        t.made.append(v)
    return v


def _traced_arithmetic(name: str, op: str, node_op: str) -> Callable:
    """``Value.__add__`` / ``__mul__`` while tracing: the same node and the same recorded
    number as eager's ``_node(self.data + other.data, ...)`` on traced numbers, the number
    recorded here without a call through `Traced`'s operators. Most of a trace is these
    two: each Python call saved is a call fewer for the interpreter and for `CodeReads`'
    hook (see values_api), about 60,000 per micrograd moons step. (The node itself is made
    by `_traced_node`, the trace's one node builder.)"""
    original = _ORIGINAL[name]
    get_ident = threading.get_ident
    node = _traced_node
    wrap = scalar_mod._wrap
    symbol = node_op

    def method(self: Value, other: Any) -> Value:
        t = _active
        if type(self) is TracedValue:
            x = self.data
        elif t is None or t.thread != get_ident():
            return original(self, other)  # (another thread, or no trace: eager's own)
        else:
            x = t.data.get(self, _MISSING)
            if x is _MISSING:
                x = self.data
        if type(other) is TracedValue:
            y = other.data
        else:
            if not isinstance(other, Value):
                other = wrap(other, symbol)
            y = t.data.get(other, _MISSING)
            if y is _MISSING:
                y = other.data
        if type(x) is Traced and type(y) is Traced and x.i not in t.bools and \
                y.i not in t.bools:
            ops = t.ops
            z = _new(Traced)
            z.i = len(ops)
            ops.append(op)
            t.a.append(x.i)
            t.b.append(y.i)
        else:  # (a plain number, or a comparison's result: Traced's own rules)
            z = x + y if op == "add" else x * y
        return node(z, self, other, node_op)

    method.__name__ = name
    return method


def _reached(root: Value) -> tuple[dict, list]:
    """Every Value under ``root`` (itself among them), numbered in the order the walk finds
    them (the root's 0), and those with children: the walk of `scalar._make_children`
    without making each node's ``_children`` tuple (a sweep reads ``_a`` and ``_b``;
    ``_children`` is made when read, see ``Value.__getattr__``). For a graph not all made
    in the trace (`_made_rows` covers the rest)."""
    seen = {root: 0}
    stack = [root]
    inner: list = []
    push, pop, keep = stack.append, stack.pop, inner.append
    n = 0  # (Values found so far, the root excepted)
    while stack:
        node = pop()
        a = node._a
        if a is None:  # (a leaf, or a node made as Value(x, children))
            children = node._children
            if children:
                keep(node)
                for child in children:
                    if child not in seen:
                        n += 1
                        seen[child] = n
                        push(child)
            continue
        keep(node)
        if a not in seen:
            n += 1
            seen[a] = n
            push(a)
        b = node._b
        if b is not None and b not in seen:
            n += 1
            seen[b] = n
            push(b)
    return seen, inner


def _traced_backward(root: Value) -> None:
    """``backward()`` while tracing: what the engine (autograd.backpropagate with micrograd's
    policy) does, as one loop over the nodes newest first. The gradient of ``+`` is the
    upstream one itself and that of ``*`` the other factor times it: those two, most of a
    network's nodes, are recorded here directly; every other node runs its rule from
    ``scalar._RULES`` (on traced numbers), as the engine would. Same operations, same
    order: the same numbers as eager."""
    t = _active
    if t is None or t.thread != threading.get_ident():
        return _ORIGINAL["backward"](root)
    rows = None
    if t.reverse:
        # Only tracegrad's own code runs from here to the end of the sweep while every Value
        # reached is of tracegrad's classes (no user attribute, hash or comparison): the hook
        # watching the user's code (values_api.CodeReads) can rest meanwhile.
        with t.watch.paused() if t.watch is not None else contextlib.nullcontext():
            rows = _made_rows(t, root)
            if rows is None:
                reached, inner = _reached(root)
                if set(map(type, reached)) <= _OWN_CLASSES:
                    nodes = sorted(inner, key=_SEQ, reverse=True)
                    rows = _walked_rows(nodes, reached) if nodes else False
            if rows:
                _record_sweep(t, *rows)
                return None
    # (the walk again, watched: a subclass's code may have run in the one above)
    reached = scalar_mod._make_children(root)
    nodes = sorted([v for v in reached if v._children], key=_SEQ, reverse=True)
    if t.reverse and nodes and rows is None:
        rows = _walked_rows(nodes)
        if rows:
            _record_sweep(t, *rows)
            return None
    root.grad = 1
    for node in nodes:
        g = node.grad
        op = node._op
        children = node._children
        if node._custom_backward is not None or type(g) is not Traced or \
                (op != "+" and op != "*"):
            grads = node._vjp(g)
            if grads is None:
                continue
        elif op == "+":
            grads = (g, g)
        else:  # (x * g for a traced x, as Traced.__mul__ records it)
            xa, xb = children[0].data, children[1].data
            grads = (_binary("mul", xb, g) if type(xb) is Traced else xb * g,
                     _binary("mul", xa, g) if type(xa) is Traced else xa * g)
        for child, cg in zip(children, grads):
            if cg is None:
                continue
            cur = child.grad
            if type(cg) is Traced:
                if type(cur) is int and cur == 0:
                    child.grad = cg  # (0 + g is g: Traced.__radd__ records nothing)
                    continue
                if type(cur) is Traced:
                    child.grad = _binary("add", cur, cg)
                    continue
            child.grad = cur + cg


# The rules a reverse sweep knows (values_program.SWEEP_RULES has their C), by Value op.
SWEEP_OPS = {"+": "add", "*": "mul", "ReLU": "relu", "tanh": "tanh", "exp": "exp",
             "log": "log", "sigmoid": "sigmoid"}
_RULE_CODE = {rule: k for k, rule in enumerate(SWEEP_RULES)}


def _rules(ops: list) -> list | None:
    """The sweep rule of each Value op, or None if one has none (a user's own op)."""
    try:
        rules = list(map(_RULE_OF.__getitem__, ops))
    except KeyError:
        for op in set(ops) - _RULE_OF.keys():  # (``**k`` ops: their rule, once per k)
            k = scalar_mod._exponent(op) if op.startswith("**") else None
            _RULE_OF[op] = None if k is None else _RULE_CODE["pow" if k != 0 else "zero"]
        rules = list(map(_RULE_OF.__getitem__, ops))
    return None if None in rules else rules


class _Ids:
    """Where objects are in a list, found by identity (sorted ``id``s: no hashing of 66,000
    Values into a dict, and no user ``__hash__`` runs)."""

    def __init__(self, objects: list):
        ids = np.fromiter(map(id, objects), dtype=np.int64, count=len(objects))
        self.order = np.argsort(ids, kind="stable")
        self.ids = ids[self.order]

    def find(self, objects: list) -> tuple[np.ndarray, np.ndarray]:
        """Each object's index in the list (-1: not in it), and the objects' ids."""
        q = np.fromiter(map(id, objects), dtype=np.int64, count=len(objects))
        if not len(self.ids):
            return np.full(len(q), -1, dtype=np.int64), q
        k = np.minimum(np.searchsorted(self.ids, q), len(self.ids) - 1)
        return np.where(self.ids[k] == q, self.order[k], -1), q


def _made_rows(t: "ValueTracer", root: Value) -> tuple | bool | None:
    """The rows of ``root.backward()``'s sweep from the list of nodes the trace made
    (`_traced_node`), without walking the graph: each node's children found by identity
    among the made nodes (the rest are leaves), the nodes the root reaches found by
    *peeling* (a made node no reached node uses is not reached: drop it and repeat; what
    stays has a parent up to the root), in NumPy. None when the graph is not all made in
    the trace (the root, or an interior node, existed before the call or was made as
    ``Value(x, children)``, or a leaf is of a user's class): `_reached` walks it instead;
    False when a node has a rule the sweep lacks (a custom ``_backward``, ``**`` with a
    Value exponent). See `_record_sweep` for the rows."""
    made = t.made
    ids = _Ids(made)
    (r,), _ = ids.find([root])
    if r < 0:
        return None
    nodes = made[:r + 1]  # (a node made after the root is not under it)
    m = r + 1
    found = _ops_and_rules(nodes)
    if found is None:
        return False
    ops, rules = found
    firsts, seconds = list(map(_A, nodes)), list(map(_B, nodes))
    ia, qa = ids.find(firsts)
    ib, qb = ids.find(seconds)
    here = np.arange(m)
    if (ia >= here).any() or (ib >= here).any():
        return None  # (a child made after its parent: children reassigned by hand)
    # the leaves: children not made in the trace (parameters, inputs, constants), each once
    none = id(None)
    leaf_a, leaf_b = np.flatnonzero(ia < 0), np.flatnonzero((ib < 0) & (qb != none))
    _, first, leaf = np.unique(np.concatenate([qa[leaf_a], qb[leaf_b]]), return_index=True,
                               return_inverse=True)
    met = np.argsort(first)  # (numbered where first met, not by address: the same program,
    rank = np.empty_like(met)  # the same recording, in any process)
    rank[met] = np.arange(len(met))
    first, leaf = first[met], rank[leaf.reshape(-1)]
    leaves = [firsts[k] if j < len(leaf_a) else seconds[k] for j, k in
              zip(first.tolist(), np.concatenate([leaf_a, leaf_b])[first].tolist())]
    if not set(map(type, leaves)) <= {Value} or \
            any(v._a is not None or v._children for v in leaves):
        return None  # (an interior node made before the call, or a user's class)
    la = np.full(m, -1, dtype=np.int64)
    lb = np.full(m, -1, dtype=np.int64)
    la[leaf_a], lb[leaf_b] = leaf[:len(leaf_a)], leaf[len(leaf_a):]
    # the nodes under the root: peel the made nodes no reached node uses
    reached = np.ones(m, dtype=bool)
    uses = np.bincount(ia[ia >= 0], minlength=m) + np.bincount(ib[ib >= 0], minlength=m)
    drop = uses == 0
    drop[r] = False
    while drop.any():
        reached &= ~drop
        k = np.flatnonzero(drop)
        ka, kb = ia[k], ib[k]
        uses -= np.bincount(ka[ka >= 0], minlength=m) + np.bincount(kb[kb >= 0], minlength=m)
        drop = reached & (uses == 0)
        drop[r] = False
    rows = np.flatnonzero(reached)[::-1]  # newest first: the root, row 0
    n = len(rows)
    # slots: the reached nodes (the root's 0), then the leaves they use
    used = np.zeros(len(leaves) + 1, dtype=bool)
    used[la[rows]] = used[lb[rows]] = True  # (-1: the extra last entry)
    used[-1] = False
    leaf_slot = np.full(len(leaves) + 1, -1, dtype=np.int64)
    kept = np.flatnonzero(used)
    leaf_slot[kept] = np.arange(n, n + len(kept))
    node_slot = np.full(m, -1, dtype=np.int64)
    node_slot[rows] = np.arange(n)
    c0 = np.where(ia[rows] >= 0, node_slot[ia[rows]], leaf_slot[la[rows]])
    c1 = np.where(ib[rows] >= 0, node_slot[ib[rows]], leaf_slot[lb[rows]])
    if n == m:  # (every node made is under the root: micrograd's step)
        order, ops, rules = nodes[::-1], ops[::-1], rules[::-1]
    else:
        order, ops, rules = ([x[k] for k in rows.tolist()] for x in (nodes, ops, rules))
    return ops, rules, np.arange(n), c0, c1, order + [leaves[k] for k in kept.tolist()], n


def _ops_and_rules(nodes: list) -> tuple[list, list] | None:
    """The ops of ``nodes`` and their sweep rules, or None when one has a custom backward or
    an op the sweep has no rule for."""
    if any(map(_CUSTOM, nodes)):
        return None
    ops = list(map(_OP, nodes))
    rules = _rules(ops)
    return None if rules is None else (ops, rules)


def _walked_rows(nodes: list, slot: dict | None = None) -> tuple | bool:
    """The rows of a sweep over ``nodes`` (Values with children, newest first) from a walk
    of the graph (`_reached` numbers the Values in ``slot``, the root's 0; without it they
    are numbered here). False when a node has a rule the sweep lacks."""
    found = _ops_and_rules(nodes)
    if found is None:
        return False
    ops, rules = found
    firsts = list(map(_A, nodes))  # (a node's children are its _a and _b, see _make_children)
    if None in firsts:  # (or, for a node made as Value(x, children), its _children)
        children = list(map(_CHILDREN, nodes))
        firsts = [c[0] for c in children]
        seconds = [c[1] if len(c) > 1 else None for c in children]
    else:
        seconds = list(map(_B, nodes))
    if slot is None:  # (newest node first, then its children, each Value where first met)
        met: list = [None] * (3 * len(nodes))
        met[0::3], met[1::3], met[2::3] = nodes, firsts, seconds
        met = dict.fromkeys(met)
        met.pop(None, None)
        slot = dict(zip(met, range(len(met))))
    order = list(slot)
    slot[None] = -1
    g = np.array(list(map(slot.__getitem__, nodes)), dtype=np.int64)
    c0 = np.array(list(map(slot.__getitem__, firsts)), dtype=np.int64)
    c1 = np.array(list(map(slot.__getitem__, seconds)), dtype=np.int64)
    del slot[None]
    return ops, rules, g, c0, c1, order, None


def _record_sweep(t: "ValueTracer", ops: list, rules: list, g: np.ndarray, c0: np.ndarray,
                  c1: np.ndarray, order: list, made: int | None) -> None:
    """``backward()`` as one *sweep* node (CppAD's and Adept's reverse sweep), for the C
    tape: instead of a node per multiply and add of the backward pass, one row per Value
    node (its rule, the adjoint slots of it and its children, the values the rule reads),
    which the C program runs newest first, adding into an array of adjoints as the engine
    adds into ``.grad``. Each Value's ``.grad`` is then an ``adj`` node reading its slot.

    The rows (`_made_rows`, `_walked_rows`): per Value node, newest first, its op and rule
    and the slots of it (``g``) and of its children (``c0``, ``c1``; -1: none); the Value of
    each slot (``order``, the root's first), of which the first ``made`` were made in the
    call and the others not (None: look). (Written as passes over lists, each a `map`, and
    NumPy for the table: it runs once per node of the graph, 66,000 for micrograd's moons
    step.)"""
    # each Value's number (what a rule reads) and its grad now (its adjoint's start)
    # (in two parts, when known: the Values made in the call hold traced numbers and 0 as
    # their grads, the others mostly not; each part's common case is then one `map`)
    parts = [order] if made is None else [order[:made], order[made:]]
    numbers = np.concatenate([_number_nodes(t, list(map(_DATA_OF, x))) for x in parts] +
                             [[-1]])  # (-1: slot -1)
    # (the root's grad is set to 1; the others' are added to)
    parts[0] = parts[0][1:]
    init = np.concatenate([[_const(1)]] + [_number_nodes(t, list(map(_GRAD_OF, x)))
                                           for x in parts])
    rule = np.array(rules, dtype=np.int64)
    code = _RULE_CODE

    def where(*names: str) -> np.ndarray:
        return np.isin(rule, [code[name] for name in names])

    # what each rule reads (values_program.SWEEP_RULES): a child's value or its own
    d0 = np.where(where("mul", "log", "pow"), numbers[c0],
                  np.where(where("relu", "tanh", "exp", "sigmoid"), numbers[g], -1))
    d1 = np.where(where("mul"), numbers[c1], np.where(where("tanh"), _const(2), -1))
    d2 = np.full(len(rule), -1, dtype=np.int64)
    for i in np.flatnonzero(rule == code["pow"]).tolist():
        k = scalar_mod._exponent(ops[i])
        d1[i], d2[i] = _const(k), _const(k - 1)
    s = _emit("sweep", -1)
    t.extra[s] = (init,
                  np.stack([rule, g, c0, c1, d0, d1, d2], axis=1))
    # Each Value's grad is now an adj node reading its slot. A Value that existed before the
    # call gets its node now (its grad is written back); one made during the call gets its
    # node when its grad is read (`_get_pending_grad`): micrograd's step reads none of those,
    # and 66,000 nodes nobody reads would be recorded, renumbered and hashed for nothing.
    if made is None:
        traced = [type(v) is TracedValue for v in order]
        slots = [k for k, x in enumerate(traced) if x]
        later = [(k, order[k]) for k, x in enumerate(traced) if not x]
        pending = _Pending([order[k] for k in slots], slots)
    else:
        later = list(enumerate(order[made:], made))
        pending = _Pending(order[:made])
    for k, v in later:
        v.grad = _adjoint(t, s, k)
    t.pending.append((s, pending))
    TracedValue.grad = _PENDING_GRAD


class _Pending:
    """The Values made in the call whose grad is one sweep's result, not read yet: ``made``,
    in the slots ``slots`` (None: slot k holds ``made[k]``). `pop` gives a Value's slot
    once (its first read, or a write that makes the sweep's value moot), then None."""

    def __init__(self, made: list, slots: list | None = None):
        self.made = made
        self.slots = slots
        self.ids: _Ids | None = None  # (made when first asked: most traces never ask)
        self.taken: set[int] = set()

    def pop(self, v: Value, default: Any = None) -> Any:
        if self.ids is None:
            self.ids = _Ids(self.made)
        (k,), _ = self.ids.find([v])
        k = int(k)
        if k < 0 or k in self.taken:
            return default
        self.taken.add(k)
        return k if self.slots is None else self.slots[k]


def _number_nodes(t: "ValueTracer", xs: list) -> np.ndarray:
    """The node of each number in ``xs`` as a float64 (a rule's input, an adjoint's start):
    a traced number's own (cast if a comparison's), 0's const for int 0 (the grad of a node
    no backward reached), a const for any other. (One `map` for the common kinds, then the
    few others: this runs for every Value of a backward pass.)"""
    zero = _const(0)
    n = len(xs)
    out = np.full(n, zero, dtype=np.int64)
    # (int 0 is one object: `is` finds it without calling a traced number's ==)
    zeros = None
    if n and is_(xs[0], 0):  # (the grads of the nodes a forward pass made)
        zeros = np.fromiter(map(is_, xs, repeat(0)), dtype=bool, count=n)
        if zeros.all():
            return out
    traced = np.flatnonzero(np.fromiter(map(is_, map(type, xs), repeat(Traced)), dtype=bool,
                                        count=n))
    if len(traced) == n:
        out = np.fromiter(map(_I, xs), dtype=np.int64, count=n)
    elif len(traced):
        out[traced] = np.fromiter(map(_I, _items(xs, traced)), dtype=np.int64,
                                  count=len(traced))
    if t.bools:
        for k in traced[np.isin(out[traced], list(t.bools))].tolist():
            out[k] = _f64(xs[k].i)
    if len(traced) < n:
        if zeros is None:
            zeros = np.fromiter(map(is_, xs, repeat(0)), dtype=bool, count=n)
        zeros[traced] = True
        for k in np.flatnonzero(~zeros).tolist():
            x = xs[k]
            out[k] = zero if type(x) is int and x == 0 else _const(x)
    return out


def _items(xs: list, at: np.ndarray) -> list:
    """``[xs[k] for k in at]``, in C."""
    return list(itemgetter(*at.tolist())(xs)) if len(at) > 1 else [xs[k] for k in at.tolist()]


def _adjoint(t: "ValueTracer", sweep: int, k: int) -> "Traced":
    """The adj node reading slot ``k`` of the sweep node ``sweep``."""
    i = _emit("adj", sweep)
    t.extra[i] = k
    return _traced(i)


def _get_pending_grad(v: Value) -> Any:
    t = _active
    if t is not None:
        for sweep, slots in reversed(t.pending):
            k = slots.pop(v, None)
            if k is not None:  # (a sweep set it: the first read records its adj node)
                x = _adjoint(t, sweep, k)
                _GRAD.__set__(v, x)
                return x
    return _GRAD.__get__(v)


def _set_pending_grad(v: Value, x: Any) -> None:
    t = _active
    if t is not None:
        for _, slots in t.pending:
            slots.pop(v, None)  # (set again: the sweep's value is never read)
    _GRAD.__set__(v, x)


# TracedValue.grad once a sweep has run in the trace (until then, the slot itself: the
# forward pass sets ``grad = 0`` on every node it makes)
_PENDING_GRAD = property(_get_pending_grad, _set_pending_grad)


_CUSTOM = attrgetter("_custom_backward")
_OP, _A, _B, _CHILDREN = (attrgetter(name) for name in ("_op", "_a", "_b", "_children"))
_DATA_OF, _GRAD_OF = attrgetter("data"), attrgetter("grad")
_OWN_CLASSES = {Value, TracedValue}
_RULE_OF = {op: _RULE_CODE[rule] for op, rule in SWEEP_OPS.items()}  # Value op -> rule


_SEQ, _I = attrgetter("_seq"), attrgetter("i")


_PATCHES = {
    "data": property(_get_data, _set_data),
    "grad": property(_get_grad, _set_grad),
    "relu": _traced_unary("relu", "relu", "ReLU"),
    "tanh": _traced_unary("tanh", "tanh", "tanh"),
    "exp": _traced_unary("exp", "exp", "exp"),
    "log": _traced_unary("log", "log", "log"),
    "sigmoid": _traced_unary("sigmoid", "sigmoid", "sigmoid"),
    "__add__": _traced_arithmetic("__add__", "add", "+"),
    "__mul__": _traced_arithmetic("__mul__", "mul", "*"),
    "__truediv__": _traced_truediv,
    "__pow__": _traced_pow,
    "backward": _traced_backward,
}


def _pow_value_rule(out: Value, g: Any) -> tuple:
    """``x ** y`` with a Value exponent, branch-free: d/dy is x**y * log(x) where x > 0 and
    0 where x == 0 < y; nan where eager raises (x < 0, or x == 0 >= y), so that the call
    runs again eagerly (see values_api.ValueVariant._run) and raises eager's error."""
    base, exponent = out._children
    x, k = base.data, exponent.data
    if type(x) is not Traced and type(k) is not Traced and type(out.data) is not Traced:
        return scalar_mod._pow_value_rule(out, g)
    xs = _operand(x, "pow")
    positive = _compare("gt", x, 0).i
    safe = _traced(_emit("where", positive, xs, _const(1.0)))
    at_zero = _emit("where", _compare("eq", x, 0).i,
                    _emit("where", _compare("gt", k, 0).i, _const(0.0), _const(math.nan)),
                    _const(math.nan))
    d_exp = _traced(_emit("where", positive, _operand(out.data * _unary("log", safe), "*"),
                          at_zero)) * g
    return (k * x ** (k - 1) * g, d_exp)


# scalar._RULES while tracing: the same table, with the branch-free ``**`` rule.
_TRACED_RULES = dict(scalar_mod._RULES)
_TRACED_RULES["**"] = _pow_value_rule


class _patched:
    """Swap the Value class attributes above in for the duration of a trace."""

    def __enter__(self) -> None:
        for name, attr in _PATCHES.items():
            setattr(Value, name, attr)
        scalar_mod._RULES = _TRACED_RULES
        scalar_mod._node = _traced_node

    def __exit__(self, *exc: Any) -> None:
        for name, attr in _ORIGINAL.items():
            setattr(Value, name, attr)
        scalar_mod._RULES = _EAGER_RULES
        scalar_mod._node = _eager_node
        TracedValue.grad = _GRAD


_EAGER_RULES = scalar_mod._RULES
_eager_node = scalar_mod._node


# --------------------------------------------------------------------------------------
# The tracer


@dataclass
class ValueCapture:
    """What a trace of a Value function found, besides its graph: where each input comes
    from, and where each extra output is written back."""

    # per graph input, in order: ("float", k) the k-th flat argument (a float),
    # ("arg", k, "data"|"grad") of the Value that is the k-th flat argument,
    # ("value", v, "data"|"grad") of a Value the function reached by itself
    feeds: list = field(default_factory=list)
    # per write-back output (after the user outputs): ("arg", k, attr) or ("value", v, attr)
    writes: list = field(default_factory=list)
    write_ints: list = field(default_factory=list)  # whether each write-back is a Python int
    out_tree: Any = None
    n_user: int = 0


class ValueTracer:
    def __init__(self, arg_values: dict[Value, int], reverse: bool = False):
        self.thread = threading.get_ident()
        # the recording: node i is ops[i] of nodes a[i], b[i], c.get(i) (-1: none)
        self.ops: list[str] = []
        self.a: list[int] = []
        self.b: list[int] = []
        self.c: dict[int, int] = {}  # (a third operand: few nodes have one)
        self.values: dict[int, Any] = {}  # const node -> its number
        self.bools: set[int] = set()  # nodes that are comparisons (or bool constants)
        self.consts: dict[tuple, int] = {}
        self.extra: dict[int, Any] = {}  # sweep node -> its entries; adj node -> its slot
        # per sweep recorded: (its node, {Value made in the call: its slot}) for the Values
        # whose grad is that sweep's result and has not been read yet (see _get_pending_grad)
        self.pending: list[tuple[int, _Pending]] = []
        self.made: list[Value] = []  # every node made in the call, in order (_traced_node)
        self.reverse = reverse  # backward() as a reverse sweep (see _record_sweep)
        self.watch: Any = None  # what watches the user's code (values_api.CodeReads)
        self.inputs: list[int] = []
        self.names: list[str] = []
        self.data: dict[Value, Any] = {}  # Values hash by identity
        self.grad: dict[Value, Any] = {}
        self.before: set[Value] = set()  # Values that existed before the call, seen so far
        self.written: dict[tuple, Value] = {}  # (attr, Value) -> Value, in order
        self.arg_values = arg_values  # Value argument -> its index in the flat arguments
        self.capture = ValueCapture()

    def input(self, name: str, feed: tuple) -> Traced:
        i = _emit("input", -1)
        self.inputs.append(i)
        self.names.append(name)
        self.capture.feeds.append(feed)
        return _traced(i)

    def read_before(self, v: Value, attr: str) -> Any:
        """The first read of ``v.data`` / ``v.grad`` in the call, for a Value not yet in the
        table: one that existed before the call (an input), or a grad never set (0)."""
        table = self.data if attr == "data" else self.grad
        slot = _DATA if attr == "data" else _GRAD
        try:
            slot.__get__(v)
        except AttributeError:  # made during the call and not set yet: Value's own default
            return 0
        self.before.add(v)
        k = self.arg_values.get(v)
        label = v.label
        if k is not None:
            x = self.input(f"arg{k}.{attr}", ("arg", k, attr))
        else:
            x = self.input(f"{label}.{attr}" if label else attr, ("value", v, attr))
        table[v] = x
        return x

    def write(self, v: Value, attr: str, x: Any) -> None:
        table = self.data if attr == "data" else self.grad
        if v not in table and v not in self.before:
            slot = _DATA if attr == "data" else _GRAD
            try:
                slot.__get__(v)
            except AttributeError:  # a Value being made: its first value
                table[v] = x
                return
            self.before.add(v)
        if v in self.before:
            self.written[attr, v] = v
        table[v] = x

    def output(self, x: Any) -> int:
        if type(x) is Traced:
            return x.i
        if isinstance(x, numbers.Real):
            return _const(x)
        raise TraceError(f"a Value holds {type(x).__name__} {x!r}, not a number")

    def finish(self, result: Any) -> Recording:
        outputs: list[int] = []

        def leaf(x: Any) -> int:
            outputs.append(self.output(x))
            return len(outputs) - 1

        self.capture.out_tree = _tree(result, leaf)
        self.capture.n_user = len(outputs)
        # write-backs: data, then grads (the order the compiled call writes them in)
        for (attr, v) in sorted(self.written, key=lambda w: w[0] != "data"):
            x = (self.data if attr == "data" else self.grad)[v]
            k = self.arg_values.get(v)
            self.capture.writes.append(("arg", k, attr) if k is not None else ("value", v, attr))
            self.capture.write_ints.append(type(x) is int)
            outputs.append(self.output(x))
        # inputs: floats and argument Values first, then captured .data, then .grad
        rank = {"float": 0, "arg": 0, "data": 1, "grad": 2}
        order = sorted(range(len(self.inputs)), key=lambda k: rank[
            self.capture.feeds[k][0] if self.capture.feeds[k][0] != "value"
            else self.capture.feeds[k][2]])
        self.capture.feeds = [self.capture.feeds[k] for k in order]
        return Recording.from_trace(self.ops, self.a, self.b, self.c, self.values,
                                    self.bools, [self.inputs[k] for k in order],
                                    [self.names[k] for k in order], outputs, self.extra)


def _tree(obj: Any, leaf: Callable[[str, Any], int]) -> Any:
    """The structure of a result in `trace.build_tree`'s form, each Value and traced number
    a leaf ``(kind, output index)``."""
    if isinstance(obj, Value):
        return ("tensor", ("value", leaf(obj.data)))
    if type(obj) is Traced:
        return ("tensor", ("bool" if obj.i in _active.bools else "float", leaf(obj)))
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return ("namedtuple", type(obj), [_tree(x, leaf) for x in obj])
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [_tree(x, leaf) for x in obj])
    if isinstance(obj, dict):
        return ("dict", type(obj), [(k, _tree(x, leaf)) for k, x in obj.items()])
    return ("static", obj)


_RESULT = {"value": Value, "float": float, "bool": bool}


def build_result(tree: Any, outs: list) -> Any:
    """The function's result from the program's outputs (Python floats), as `_tree` saw it:
    a returned Value becomes a new leaf Value holding the number, a comparison a bool."""
    return build_tree(tree, lambda leaf: _RESULT[leaf[0]](outs[leaf[1]]))


def trace_values(fn: Callable, args: tuple, kwargs: dict, floats: bool = True,
                 watch: Any = None, reverse: bool = False) -> tuple[Recording, ValueCapture]:
    """Call ``fn`` once with its Value operations recorded; return the graph and what it
    reads and writes. With ``floats``, float arguments are inputs (else constants).
    ``watch``, a context manager, is entered around the call of ``fn`` alone (what the
    user's code reads, see values_api.CodeReads). With ``reverse``, ``backward()`` is
    recorded as a reverse sweep where it can be (see `_record_sweep`; the C tape runs it)."""
    global _active
    from .trace import _TRACE_LOCK, paused_gc, tensor_mod

    current = _active
    if (current is not None and current.thread == threading.get_ident()) or \
            tensor_mod._tracer is not None and tensor_mod._tracer.thread == \
            threading.get_ident():
        raise TraceError("tg.compile/tg.trace cannot be nested inside another trace")
    flat = flatten_args(args, kwargs)
    # Each Value argument is traced as a copy of its own: the same Value passed twice, or a
    # Value argument that the function also reaches another way (a global, a closure), would
    # otherwise make one input of what a later call passes as different Values.
    copies = {path: copy.copy(leaf) for path, leaf in flat if isinstance(leaf, Value)}
    arg_values = {copies[path]: k for k, (path, _) in enumerate(flat) if path in copies}
    with _TRACE_LOCK, paused_gc():
        tracer = ValueTracer(arg_values, reverse)
        tracer.watch = watch
        _active = tracer
        try:
            table = dict(copies)
            for k, (path, leaf) in enumerate(flat):
                if floats and type(leaf) is float:
                    table[path] = tracer.input(path, ("float", k))
            args2, kwargs2 = rebuild_args(args, kwargs, table)
            layout = container_layout(args2, kwargs2)
            with _patched(), np.errstate(all="ignore"):
                with watch or contextlib.nullcontext():
                    result = fn(*args2, **kwargs2)
                check_containers_unchanged(fn, layout, container_layout(args2, kwargs2))
                recording = tracer.finish(result)
        finally:
            _active = None
    _refuse_aliased_writes(flat, tracer)
    return recording, tracer.capture


def _refuse_aliased_writes(flat: list, tracer: "ValueTracer") -> None:
    """A Value passed twice, or passed and also reached another way, is several inputs of
    the trace; if the call writes any Value's data or grad, eager's result depends on that
    aliasing (both writes land on one Value), so the trace is refused."""
    if not tracer.written:
        return
    seen: set[int] = set()
    for path, leaf in flat:
        if isinstance(leaf, Value):
            if id(leaf) in seen or leaf in tracer.before:
                raise TraceError(
                    f"tg.compile: the Value argument {path} is also passed or reached another "
                    f"way (an earlier argument, a global, a closure) and the function writes "
                    f"Values' data or grad; pass a distinct Value or call it eagerly")
            seen.add(id(leaf))


def trace(fn: Callable, *example_args: Any, **example_kwargs: Any) -> Graph:
    """The static graph of a function of Values (0-d float64 nodes), unoptimized.

    >>> w = Value(0.5)
    >>> print(trace(lambda x: (w * x).tanh().data, 2.0))
    """
    recording, _ = trace_values(fn, example_args, example_kwargs)
    return recording.to_graph()


def is_value_program(fn: Callable, args: tuple, kwargs: dict) -> bool:
    """Whether ``fn`` works on Values: no tensor among its arguments, and a Value among them
    or among what it refers to (closure, globals its code names, a bound object): a Value, a
    list of them, a `tracegrad.nn.scalar` module, or the Value class itself."""
    from ..nn.scalar import Module as ScalarModule
    from ..tensor import Tensor
    from .guards import _named, one_level
    from .trace import TensorSpec

    leaves = [leaf for _, leaf in flatten_args(args, kwargs)]
    if any(isinstance(leaf, (Tensor, TensorSpec)) for leaf in leaves):
        return False  # tensor code
    if any(isinstance(leaf, Value) for leaf in leaves):
        return True
    target = getattr(fn, "__func__", fn)
    direct = [fn, *leaves, getattr(fn, "__self__", None), *_named(target)]
    if any(r is Value or isinstance(r, type) and issubclass(r, ScalarModule) for r in direct):
        return True  # the function names the Value class (or a scalar module class)
    for r in one_level([r for r in direct if not isinstance(r, types.ModuleType)]):
        if isinstance(r, (Value, ScalarModule)):
            return True
        if type(r) in (list, tuple) and any(isinstance(x, Value) for x in r[:16]):
            return True
    return False

