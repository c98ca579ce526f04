"""Dynamic dimensions: one compiled variant that serves every size of a dimension.

A dynamic variant has one symbol, ``n``: the size of the argument dimensions that changed
between calls (dimensions of different arguments that were equal in both calls share it;
the variant's guard checks that they stay equal). It is made from three traces, at three
sizes of ``n``, and it is kept only when

- the three graphs have the same structure (ops, inputs, dtypes, constants), and every
  integer in their shapes and attributes is ``a*n + b`` with integer ``a`` and ``b``, the
  same for the three traces (so ``n*n`` or ``n // 2`` are not mistaken for affine sizes);
- every use of a size that reached Python (``x.shape``, ``len(x)``, ``x.size(1)``,
  ``x.numel()``) stayed tracked: such sizes are `SymInt`, an ``int`` whose arithmetic gives
  tracked values and whose comparisons are recorded with their result. The recorded
  comparisons become the variant's guard, a range of ``n`` (``lo <= n <= hi``, and the
  values it must not take): ``if T > 32`` traced at T=5 guards ``n <= 32``. A size used
  where it can no longer be followed (a ``float``, a ``str``, a hash, ``//`` by a size in
  the function's own code) makes the function compile statically instead;
- sizes 0 and 1 are never dynamic (``n >= 2`` is part of every guard, as in PyTorch):
  broadcasting and squeezing treat 1 differently.

The variant's program is one NumPy program for every size (dynamic_program.py), with its
shapes written in terms of ``n``. A call at a size it has not run at is checked first: the
template's graph at that size against the primitives' shape rules (a slice that NumPy would
clamp differs from the affine shape: the call then compiles statically), and, when the
function's own code read a size (`Recorder.exposed`), a trace of that call compared with the
template node for node. A variant that cannot be made dynamic compiles as a static one, as
without ``dynamic``.
"""

from __future__ import annotations

import math
import sys
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from .ir import Graph, Node

MIN_SIZE = 2  # sizes 0 and 1 are specialized
_local = threading.local()


class NotDynamic(Exception):
    """The traces do not make one dynamic variant (the message says why): compile a
    static one."""


# ---------------------------------------------------------------- tracked sizes


class Recorder:
    """The sizes one trace read (each dimension of each ``shape`` read is a leaf) and every
    use of them: comparisons with their results, and uses that cannot be followed."""

    def __init__(self) -> None:
        self.reads: list[int] = []
        self.events: list[tuple] = []  # ("cmp", op, lhs, rhs, result) | ("opaque", what, e)
        # Whether a size reached the function's own code (``B, T = x.shape``, ``len(x)``):
        # CPython reads an int subclass's value without asking it (``range(T)``,
        # ``a_list[T]``), so what the code did with it is only seen by tracing each size.
        self.exposed = False

    def __enter__(self) -> "Recorder":
        _local.recorder = self
        return self

    def __exit__(self, *exc: Any) -> None:
        _local.recorder = None

    def shape(self, shape: tuple) -> tuple:
        if not self.exposed:
            self.exposed = _read_by_user()
        out = []
        for v in shape:
            self.reads.append(int(v))
            out.append(SymInt(v, ("r", len(self.reads) - 1), self))
        return tuple(out)


# The modules between a `Tensor.shape` read and its reader: ``x.size(1)``, ``len(x)``
_SHAPE_MODULES = frozenset({"tracegrad.tensor", "tracegrad.compiler.trace", __name__})


def _read_by_user() -> bool:
    """Whether the shape being read goes to code outside tracegrad (the user's)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__") in _SHAPE_MODULES:
        frame = frame.f_back
    return frame is None or not frame.f_globals.get("__name__", "").startswith("tracegrad")


def _active() -> Recorder | None:
    return getattr(_local, "recorder", None)


def _from_library(depth: int = 3) -> bool:
    """Whether the code using a size is tracegrad's own (its effect then reaches the graph,
    which the three traces compare) rather than the user's. (tracegrad's code mixes tracked
    sizes with the plain ones of ``x._data.shape``: its comparisons say nothing about n.)"""
    frame = sys._getframe(depth)
    return frame.f_globals.get("__name__", "").startswith("tracegrad")


def _expr(v: Any, rec: Any) -> Any:
    """The expression of ``v`` in ``rec``'s reads: a SymInt of an earlier trace (kept in a
    cache) is the constant it holds."""
    if isinstance(v, SymInt) and v.rec is rec and rec is not None:
        return v.expr
    return ("c", int.__index__(v))


_ARITH = {"add": int.__add__, "sub": int.__sub__, "mul": int.__mul__,
          "floordiv": int.__floordiv__, "mod": int.__mod__}
_CMP = {"lt": int.__lt__, "le": int.__le__, "gt": int.__gt__, "ge": int.__ge__,
        "eq": int.__eq__, "ne": int.__ne__}


class SymInt(int):
    """A size read while a dynamic variant is traced: an ``int`` with the expression it was
    computed by. Arithmetic with ints gives SymInts; comparisons are recorded (with their
    result) for the variant's guard; outside a trace it is a plain int."""

    expr: Any
    rec: Any

    def __new__(cls, value: int, expr: Any, rec: Any) -> "SymInt":
        s = int.__new__(cls, value)
        s.expr, s.rec = expr, rec
        return s

    def _arith(self, op: str, other: Any, reverse: bool = False) -> Any:
        if type(other) is bool or not isinstance(other, (int, np.integer)):
            if isinstance(other, float):
                self._opaque(op + " with a float", 4)
            f = getattr(int, f"__{'r' if reverse else ''}{op}__")
            return f(int.__index__(self), other)
        if op in ("floordiv", "mod"):  # n // 8 is 1 at n = 8..15: no three sizes tell
            self._opaque("//" if op == "floordiv" else "%", 4)
            if isinstance(other, SymInt):
                other._opaque("//" if op == "floordiv" else "%", 4)
        a, b = (other, self) if reverse else (self, other)
        value = _ARITH[op](int.__index__(a), int.__index__(b))
        rec = _active()
        if rec is None or self.rec is not rec:
            return value
        return SymInt(value, (op, _expr(a, rec), _expr(b, rec)), rec)

    def __add__(self, o: Any) -> Any: return self._arith("add", o)
    def __radd__(self, o: Any) -> Any: return self._arith("add", o, True)
    def __sub__(self, o: Any) -> Any: return self._arith("sub", o)
    def __rsub__(self, o: Any) -> Any: return self._arith("sub", o, True)
    def __mul__(self, o: Any) -> Any: return self._arith("mul", o)
    def __rmul__(self, o: Any) -> Any: return self._arith("mul", o, True)
    def __floordiv__(self, o: Any) -> Any: return self._arith("floordiv", o)
    def __rfloordiv__(self, o: Any) -> Any: return self._arith("floordiv", o, True)
    def __mod__(self, o: Any) -> Any: return self._arith("mod", o)
    def __rmod__(self, o: Any) -> Any: return self._arith("mod", o, True)

    def __neg__(self) -> Any:
        rec = _active()
        if rec is None or self.rec is not rec:
            return -int.__index__(self)
        return SymInt(-int.__index__(self), ("sub", ("c", 0), self.expr), rec)

    def __pos__(self) -> Any:
        return self

    def _compare(self, op: str, other: Any) -> Any:
        number = isinstance(other, (int, np.integer)) or \
            isinstance(other, (float, np.floating)) and math.isfinite(other)
        if type(other) is bool or not number:
            return getattr(int, f"__{op}__")(int.__index__(self), other)
        if isinstance(other, (int, np.integer)):
            result = _CMP[op](int.__index__(self), int.__index__(other))
        else:
            result = getattr(float, f"__{op}__")(float(int.__index__(self)), float(other))
        rec = _active()
        if rec is not None and not _from_library():
            lhs = _expr(self, rec)
            rhs = ("c", Fraction(float(other))) if isinstance(other, (float, np.floating)) \
                else _expr(other, rec)
            if lhs[0] != "c" or rhs[0] != "c":
                rec.events.append(("cmp", op, lhs, rhs, result))
        return result

    def __lt__(self, o: Any) -> Any: return self._compare("lt", o)
    def __le__(self, o: Any) -> Any: return self._compare("le", o)
    def __gt__(self, o: Any) -> Any: return self._compare("gt", o)
    def __ge__(self, o: Any) -> Any: return self._compare("ge", o)
    def __eq__(self, o: Any) -> Any: return self._compare("eq", o)
    def __ne__(self, o: Any) -> Any: return self._compare("ne", o)

    def __bool__(self) -> bool:
        return self._compare("ne", 0)

    def _opaque(self, what: str, depth: int = 3) -> None:
        rec = _active()
        if rec is not None and self.rec is rec and not _from_library(depth):
            rec.events.append(("opaque", what, self.expr))

    def __hash__(self) -> int:
        self._opaque("hash (a dict key, a set)")
        return int.__hash__(self)

    def __float__(self) -> float:
        self._opaque("float()")
        return int.__float__(self)

    def __truediv__(self, o: Any) -> Any:
        self._opaque("/")
        return int.__truediv__(int(self), o)

    def __rtruediv__(self, o: Any) -> Any:
        self._opaque("/")
        return int.__rtruediv__(int(self), o)

    def __pow__(self, o: Any, mod: Any = None) -> Any:
        self._opaque("**")
        return pow(int(self), o, mod)

    def __str__(self) -> str:
        self._opaque("str()")
        return int.__repr__(self)

    def __format__(self, spec: str) -> str:
        self._opaque("format()")
        return format(int(self), spec)

    def __int__(self) -> int:
        self._opaque("int()")
        return int.__index__(self)

    def __index__(self) -> int:
        # tracegrad's own (a slice bound, a shape) reaches the graph; the function's own
        # (range(T), a list index, a Python list's slice) does not
        self._opaque("an index (range(), a list index or slice)")
        return int.__index__(self)

    def __repr__(self) -> str:
        return int.__repr__(self)

    def __reduce__(self) -> Any:
        return (int, (int.__index__(self),))


for _name in ("and", "or", "xor", "lshift", "rshift", "divmod", "abs", "invert", "round",
              "trunc", "floor", "ceil"):
    def _make(name: str) -> Any:
        plain = getattr(int, f"__{name}__")

        def op(self: SymInt, *a: Any) -> Any:
            self._opaque(name)
            return plain(int.__index__(self), *a)
        return op
    for _prefix in ("", "r") if _name in ("and", "or", "xor", "lshift", "rshift",
                                          "divmod") else ("",):
        setattr(SymInt, f"__{_prefix}{_name}__", _make(f"{_prefix}{_name}"))


def plain(value: Any) -> Any:
    """``value`` with every SymInt in it a plain int (a node's attributes after a trace)."""
    t = type(value)
    if t is SymInt:
        return int.__index__(value)
    if t is tuple or t is list:
        return t(plain(v) for v in value)
    if t is dict:
        return {k: plain(v) for k, v in value.items()}
    if t is slice:
        return slice(plain(value.start), plain(value.stop), plain(value.step))
    return value


# ---------------------------------------------------------------- affine sizes


@dataclass(frozen=True)
class Affine:
    """The integer ``a*n + b``."""

    a: int
    b: int

    def at(self, n: int) -> int:
        return self.a * n + self.b

    def __repr__(self) -> str:
        return f"{self.a}*n{self.b:+d}" if self.a != 1 else f"n{self.b:+d}" if self.b else "n"


def fit(values: list[int], sizes: list[int]) -> Any:
    """The int the values all are, or the `Affine` they follow; NotDynamic otherwise."""
    if all(v == values[0] for v in values):
        return values[0]
    a = Fraction(values[1] - values[0], sizes[1] - sizes[0])
    if a.denominator != 1:
        raise NotDynamic(f"a size goes {values} at n = {sizes}: not a*n + b")
    b = values[0] - int(a) * sizes[0]
    if any(int(a) * s + b != v for v, s in zip(values, sizes)):
        raise NotDynamic(f"a size goes {values} at n = {sizes}: not a*n + b")
    return Affine(int(a), b)


def at(template: Any, n: int) -> Any:
    """A fitted value (see `fit_value`) at size ``n``."""
    t = type(template)
    if t is Affine:
        return template.at(n)
    if t is tuple or t is list:
        return t(at(v, n) for v in template)
    if t is dict:
        return {k: at(v, n) for k, v in template.items()}
    if t is slice:
        return slice(at(template.start, n), at(template.stop, n), at(template.step, n))
    return template


def count_fits(scalars: list[float], sizes: list[int]) -> Any:
    """The ways numbers traced at ``sizes`` follow n, first to last: ``("count", c)`` when
    they are the `Affine` count c of n, ``("reciprocal", c)`` when they are 1 / c (the
    scale of a mean)."""
    for kind in ("count", "reciprocal"):
        try:
            count = fit([int(round(1.0 / x)) if kind == "reciprocal" else int(round(x))
                         for x in scalars], sizes)
        except (NotDynamic, ZeroDivisionError, OverflowError, ValueError):
            continue
        if type(count) is Affine:
            yield kind, count


def fit_value(values: list, sizes: list[int], what: str) -> Any:
    """The template of an attribute across the traces: ints become `fit`'s int or Affine,
    containers are fitted item by item, anything else must be equal in every trace."""
    first = values[0]
    t = type(first)
    if any(type(v) is not t for v in values):
        raise NotDynamic(f"{what} changes type with the size")
    if t is int or t is SymInt or t is np.int64:
        return fit([int(v) for v in values], sizes)
    if t is tuple or t is list:
        if any(len(v) != len(first) for v in values):
            raise NotDynamic(f"{what} changes length with the size")
        return t(fit_value([v[i] for v in values], sizes, what) for i in range(len(first)))
    if t is dict:
        if any(v.keys() != first.keys() for v in values):
            raise NotDynamic(f"{what} changes keys with the size")
        return {k: fit_value([v[k] for v in values], sizes, what) for k in first}
    if t is slice:
        parts = [fit_value([getattr(v, p) for v in values], sizes, what)
                 for p in ("start", "stop", "step")]
        return slice(*parts)
    if t is np.ndarray:
        if any(v.shape != first.shape or v.dtype != first.dtype
               or not np.array_equal(v, first, equal_nan=True) for v in values):
            raise NotDynamic(f"{what} holds an array that changes with the size")
        return first
    try:
        same = all(v == first for v in values[1:])
    except Exception:  # noqa: BLE001 - objects that do not compare: must be the same one
        same = all(v is first for v in values[1:])
    if not same:
        raise NotDynamic(f"{what} changes with the size ({first!r} / {values[1]!r})")
    return first


@dataclass
class ConstOfSize:
    """A constant that follows n: filled with the count ``a*n + b`` itself
    (``x.sum() / len(x)``) or its reciprocal (the scale of a mean), or ``arange`` of its
    size (the row numbers of a gather, shaped (n,) or (n, 1))."""

    kind: str  # "count", "reciprocal" or "arange"
    count: Any  # the Affine count (None for arange)
    shape: tuple  # fitted: ints and Affines
    dtype: np.dtype

    def at(self, n: int) -> np.ndarray:
        shape = at(self.shape, n)
        if self.kind == "arange":
            return np.arange(math.prod(shape), dtype=self.dtype).reshape(shape)
        c = self.count.at(n)
        return np.full(shape, 1.0 / c if self.kind == "reciprocal" else c, dtype=self.dtype)


def fit_const(values: list, sizes: list[int], what: str) -> ConstOfSize | None:
    """None for a constant that is the same in every trace; a `ConstOfSize` for one that
    follows n (rebuilt exactly at each traced size); NotDynamic otherwise."""
    first = values[0]
    if all(v.shape == first.shape and v.dtype == first.dtype
           and np.array_equal(v, first, equal_nan=True) for v in values[1:]):
        return None
    if any(v.dtype != first.dtype or v.ndim != first.ndim for v in values):
        raise NotDynamic(f"{what} holds an array that changes with the size")
    made = None
    shape = tuple(fit_value([v.shape for v in values], sizes, what))
    if first.dtype.kind in "iu" and all(
            np.array_equal(v.reshape(-1), np.arange(v.size)) for v in values):
        made = ConstOfSize("arange", None, shape, first.dtype)
    elif first.dtype.kind == "f" and all(v.size and (v == v.reshape(-1)[0]).all()
                                         for v in values):
        for kind, count in count_fits([float(v.reshape(-1)[0]) for v in values], sizes):
            made = ConstOfSize(kind, count, shape, first.dtype)
            break
    if made is not None and all(np.array_equal(made.at(s), v)
                                for s, v in zip(sizes, values)):
        return made
    raise NotDynamic(f"{what} holds an array that changes with the size")


def prune(graph: Graph) -> Graph:
    """``graph`` without the nodes no output needs (a trace also records the updates of
    views that happen to be alive, which differ from call to call), in the same order."""
    needed: set[int] = set()
    stack = list(graph.outputs)
    while stack:
        node = stack.pop()
        if id(node) not in needed:
            needed.add(id(node))
            stack.extend(node.inputs)
    nodes = [n for n in graph.nodes if id(n) in needed]
    if len(nodes) == len(graph.nodes):
        return graph
    return Graph(graph.inputs, nodes, graph.outputs)


def same_graphs(expected: Graph, got: Graph) -> None:
    """NotDynamic unless ``got`` is ``expected`` node for node."""
    a, b = expected.inputs + expected.nodes, got.inputs + got.nodes
    if len(a) != len(b) or len(expected.outputs) != len(got.outputs):
        raise NotDynamic("its trace has another graph")
    ia = {id(x): k for k, x in enumerate(a)}
    ib = {id(x): k for k, x in enumerate(b)}
    for k, (x, y) in enumerate(zip(a, b)):
        if x.op != y.op or x.dtype != y.dtype or tuple(x.shape) != tuple(y.shape) \
                or [ia[id(i)] for i in x.inputs] != [ib[id(i)] for i in y.inputs]:
            raise NotDynamic(f"its trace differs at %{k} ({x.op}{list(x.shape)} / "
                             f"{y.op}{list(y.shape)})")
        try:
            fit_value([x.attrs, plain(y.attrs)], [0, 1], f"%{k}")
            if x.op == "const":
                fit_value([x.value, y.value], [0, 1], f"%{k}")
        except NotDynamic:
            raise NotDynamic(f"its trace differs at %{k} ({x.op}: attributes or "
                             f"value)") from None
    if [ia[id(o)] for o in expected.outputs] != [ib[id(o)] for o in got.outputs]:
        raise NotDynamic("its trace returns other values")


def same_capture(reference: Any, got: Any) -> None:
    """NotDynamic unless two traces read and write as many tensors and return the same
    structure. (Which tensors is the entry's business, as for any variant: its guards
    check the tensors it reads, and a .grad that is a new tensor on every call is written
    back through its owner.)"""
    for f in ("captured", "grad_inputs", "data_writes", "grad_writes", "setting_inputs",
              "grad_buffers", "grad_none"):
        if len(getattr(reference, f)) != len(getattr(got, f)):
            raise NotDynamic(f"its trace has other {f.replace('_', ' ')}")
    if plain(reference.out_tree) != plain(got.out_tree):
        raise NotDynamic("its trace returns another structure or Python value")
    if got.n_grad_outputs or reference.called_backward != got.called_backward:
        raise NotDynamic("its trace differentiates differently")


@dataclass
class Template:
    """The traced graph with its sizes as functions of ``n``: `instantiate` gives the graph
    at any size."""

    graph: Graph  # the first trace's graph (its nodes are the capture's)
    shapes: list  # per node of graph.inputs + graph.nodes: its fitted shape
    attrs: list  # per node: its fitted attributes
    values: list  # per node: a constant's `ConstOfSize` when its value follows n, else None
    sizes: list = field(default_factory=list)  # the sizes of n traced, the call's own first
    exposed: bool = False  # a size reached the function's own code (see Recorder.exposed)

    def instantiate(self, n: int) -> Graph:
        """The graph at size ``n``, its inputs in the same order; every node is checked
        against its primitive's shape rule (NotDynamic when one differs)."""
        mapping: dict[int, Node] = {}
        g = self.graph
        made = []
        for k, node in enumerate(g.inputs + g.nodes):
            value = self.values[k].at(n) if self.values[k] is not None else node.value
            c = Node(node.op, [mapping[id(i)] for i in node.inputs], at(self.attrs[k], n),
                     at(self.shapes[k], n), node.dtype, value, node.name)
            mapping[id(node)] = c
            made.append(c)
        out = Graph(made[:len(g.inputs)], made[len(g.inputs):],
                    [mapping[id(o)] for o in g.outputs])
        try:
            out.check()
        except ValueError as e:
            raise NotDynamic(f"at n = {n}: {e}") from None
        return out


def fit_graphs(graphs: list[Graph], sizes: list[int]) -> Template:
    """The `Template` of graphs traced at ``sizes`` (see the module docstring)."""
    g0 = graphs[0]
    counts = {(len(g.inputs), len(g.nodes), len(g.outputs)) for g in graphs}
    if len(counts) != 1:
        raise NotDynamic(f"the traces at n = {sizes} have different graphs (nodes: "
                         f"{[len(g.nodes) for g in graphs]})")
    index = [{id(node): k for k, node in enumerate(g.inputs + g.nodes)} for g in graphs]
    shapes, attrs, values = [], [], []
    for k, nodes in enumerate(zip(*(g.inputs + g.nodes for g in graphs))):
        first = nodes[0]
        what = f"%{k} ({first.op})"
        for g, node in enumerate(nodes):
            if node.op != first.op or node.dtype != first.dtype \
                    or len(node.shape) != len(first.shape) \
                    or [index[g][id(i)] for i in node.inputs] != \
                    [index[0][id(i)] for i in first.inputs]:
                raise NotDynamic(f"the traces at n = {sizes} differ at {what}")
        if first.op == "const":
            values.append(fit_const([x.value for x in nodes], sizes, what))
        else:
            values.append(None)
        shapes.append(tuple(fit_value([x.shape for x in nodes], sizes, what + " shape")))
        attrs.append(fit_value([plain(x.attrs) for x in nodes], sizes, what))
    for g in graphs:
        if [index[0][id(o)] for o in g0.outputs] != [index[graphs.index(g)][id(o)]
                                                   for o in g.outputs]:
            raise NotDynamic("the traces return different values")
    for node in g0.inputs + g0.nodes:  # the first graph is the template's: plain ints
        node.attrs = plain(node.attrs)
    return Template(g0, shapes, attrs, values, list(sizes))


# ---------------------------------------------------------------- the guard on n


def _poly(expr: Any, reads: list, sizes: list[int]) -> dict:
    """The polynomial in n of a recorded expression: {power: coefficient}."""
    kind = expr[0]
    if kind == "c":
        return {0: Fraction(expr[1])}
    if kind == "r":
        f = fit([r[expr[1]] for r in reads], sizes)
        return {0: Fraction(f)} if type(f) is int else {1: Fraction(f.a), 0: Fraction(f.b)}
    a, b = _poly(expr[1], reads, sizes), _poly(expr[2], reads, sizes)
    if kind == "add" or kind == "sub":
        s = 1 if kind == "add" else -1
        out = dict(a)
        for p, c in b.items():
            out[p] = out.get(p, 0) + s * c
        return out
    if kind == "mul":
        out: dict = {}
        for p, c in a.items():
            for q, d in b.items():
                out[p + q] = out.get(p + q, 0) + c * d
        return out
    if set(a) | set(b) <= {0}:  # floordiv, mod of constants
        x, y = int(a.get(0, 0)), int(b.get(0, 0))
        return {0: Fraction(_ARITH[kind](x, y))}
    raise NotDynamic(f"a size is computed with {kind} of a size that changes "
                     f"({'//' if kind == 'floordiv' else '%'})")


@dataclass
class SizeGuard:
    """``lo <= n <= hi`` (hi None: no bound) and n not in ``excluded``."""

    lo: int
    hi: int | None
    excluded: frozenset

    def holds(self, n: int) -> bool:
        return self.lo <= n and (self.hi is None or n <= self.hi) and n not in self.excluded

    def __str__(self) -> str:
        text = f"{self.lo} <= n" + (f" <= {self.hi}" if self.hi is not None else "")
        if self.excluded:
            text += f", n not in {sorted(self.excluded)}"
        return text


def size_guard(recorders: list[Recorder], sizes: list[int], template: Template
               ) -> SizeGuard:
    """The range of n in which every comparison the traces made gives what it gave, and
    every dimension that follows n is at least 2 (tracegrad's own code treats 1 apart:
    ``squeeze()``, broadcasting)."""
    if len({len(r.reads) for r in recorders}) != 1:
        raise NotDynamic(f"the traces at n = {sizes} read sizes differently")
    # Every comparison any trace made (tracegrad's own caches make a few happen in one
    # trace only): n must keep each one's result.
    events = list(dict.fromkeys(e for r in recorders for e in r.events))
    reads = [r.reads for r in recorders]
    lo, hi, excluded = MIN_SIZE, None, set()
    for event in events:
        if event[0] == "opaque":
            p = _poly(event[2], reads, sizes)
            if set(p) - {0} and any(p[k] for k in set(p) - {0}):
                raise NotDynamic(f"a size that changes is used as {event[1]} in the "
                                 f"function's code, where it cannot be followed")
            continue
        _, op, lhs, rhs, result = event
        a, b = _poly(lhs, reads, sizes), _poly(rhs, reads, sizes)
        d = {p: a.get(p, 0) - b.get(p, 0) for p in set(a) | set(b)}
        if any(c for p, c in d.items() if p > 1):
            raise NotDynamic("a comparison of sizes is not linear in the dynamic size")
        k, c = d.get(1, Fraction(0)), d.get(0, Fraction(0))  # the comparison is k*n + c OP 0
        if k == 0:
            continue  # the same at every size
        if not result:
            op = {"lt": "ge", "le": "gt", "gt": "le", "ge": "lt", "eq": "ne", "ne": "eq"}[op]
        root = -c / k
        if op == "eq":
            raise NotDynamic("the function relies on a size being one value")
        if op == "ne":
            if root.denominator == 1:
                excluded.add(int(root))
            continue
        if k < 0:
            op = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}[op]
        # n OP root
        if op == "lt":
            hi = _min(hi, math.ceil(root) - 1)
        elif op == "le":
            hi = _min(hi, math.floor(root))
        elif op == "gt":
            lo = max(lo, math.floor(root) + 1)
        else:
            lo = max(lo, math.ceil(root))
    for shape in template.shapes:
        for d in shape:
            if type(d) is Affine:  # a*n + b >= MIN_SIZE
                if d.a > 0:
                    lo = max(lo, math.ceil(Fraction(MIN_SIZE - d.b, d.a)))
                else:
                    hi = _min(hi, math.floor(Fraction(d.b - MIN_SIZE, -d.a)))
    guard = SizeGuard(lo, hi, frozenset(excluded))
    if not all(guard.holds(s) for s in sizes):
        raise NotDynamic(f"a size was compared with different results at n = {sizes}")
    return guard


def _min(a: int | None, b: int) -> int:
    return b if a is None else min(a, b)


def resize(data: np.ndarray, axes: list[int], n: int) -> np.ndarray:
    """``data`` with each of ``axes`` made ``n`` long by repeating its entries cyclically
    (the values of an argument at another size: indices stay in range)."""
    for ax in axes:
        data = np.take(data, np.arange(n) % data.shape[ax], axis=ax)
    return np.ascontiguousarray(data)


def other_sizes(n: int, seen: list[int]) -> list[int]:
    """Two more sizes to trace at, besides ``n``: sizes the function was called with when
    there are, else the next ones."""
    out = [s for s in dict.fromkeys(seen) if s != n and s >= MIN_SIZE][:2]
    k = 1
    while len(out) < 2:
        if n + k not in out:
            out.append(n + k)
        k += 1
    return out
