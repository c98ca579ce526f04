"""A traced Value program as flat arrays (`Recording`), and the passes over it.

The tracer (values.py) records a scalar graph of ~200,000 nodes for micrograd's moons step.
As `ir.Node` objects that is 200,000 Python objects to make, and the general passes
(passes/dce.py, cse.py, fold_constants.py), written for a few hundred tensor nodes, spend
most of a compile on them. Here the graph is what a tape is: an op name per node and the
operand indices in three integer arrays, inputs first, then every node after its operands.
The passes below are the same three rewrites, each one linear loop over these arrays. An
`ir.Graph` is made only when someone asks to see it (`to_graph`: ``tg.trace``,
``tg.explain``, a compiled function's ``.graph``).
"""

from __future__ import annotations

import hashlib
import marshal
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np

from .ir import Graph, Node

F64 = np.dtype(np.float64)
BOOL = np.dtype(np.bool_)

# every op a Value program records (a table code for each, for hashing and for the C tape)
OP_NAMES = ["input", "const", "add", "sub", "mul", "div", "pow", "neg", "relu", "tanh", "exp",
            "log", "sigmoid", "lt", "le", "gt", "ge", "eq", "ne", "cast", "where", "sweep",
            "adj"]
OP_CODE = {op: k for k, op in enumerate(OP_NAMES)}
COMPARISONS = {"lt", "le", "gt", "ge", "eq", "ne"}


@dataclass
class Recording:
    """Node ``i`` is ``ops[i]`` applied to nodes ``a[i]``, ``b[i]``, ``c[i]`` (-1: no such
    operand). Nodes ``0 .. n_inputs-1`` are the inputs (``names``); a const's number is
    ``values[i]``; ``bools`` are the nodes holding a comparison's result.

    A ``sweep`` node is a backward pass run as a reverse sweep (values.py, `_record_sweep`):
    ``extra[i]`` holds its adjoints' initial values (node indices) and its entries (rule,
    adjoint slots, and the nodes each rule reads); an ``adj`` node reads slot ``extra[i]``
    of the sweep that is its operand."""

    n_inputs: int
    names: list
    ops: list
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    values: dict
    bools: set
    outputs: list
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_trace(cls, ops: list, a: list, b: list, c: dict, values: dict, bools: set,
                   inputs: list, names: list, outputs: list,
                   extra: dict | None = None) -> "Recording":
        """Renumber a recording made in call order: the inputs (in the order given) first.
        (``c`` holds the few third operands, by node.)"""
        n = len(ops)
        third = np.full(n, -1, dtype=np.int64)
        third[list(c)] = list(c.values())
        rest = np.ones(n, dtype=bool)
        rest[inputs] = False
        order = np.concatenate([np.array(inputs, dtype=np.int64), np.flatnonzero(rest)])
        remap = np.empty(n + 1, dtype=np.int64)
        remap[order] = np.arange(n)
        remap[n] = -1  # (operand -1 stays -1)

        def arr(x: Any) -> np.ndarray:
            x = np.asarray(x, dtype=np.int64)[order]
            return remap[np.where(x < 0, n, x)]

        to = remap.tolist()
        extra = extra or {}
        moved = dict(zip(_take(to, list(extra)), extra.values()))  # (adj slots stay)
        for i, x in _sweeps(extra):
            moved[to[i]] = _remap_extra(x, remap)
        return cls(len(inputs), list(names), _take(ops, order.tolist()), arr(a), arr(b),
                   arr(third), {to[i]: v for i, v in values.items()}, {to[i] for i in bools},
                   [to[o] for o in outputs], moved)

    def __len__(self) -> int:
        return len(self.ops)

    def count(self) -> int:
        """Nodes that compute something (not inputs or constants)."""
        return len(self.ops) - self.n_inputs - len(self.values)

    def keep(self, kept: np.ndarray, replace: np.ndarray | None = None,
             values: dict | None = None) -> "Recording":
        """The recording with only the nodes ``kept`` (sorted indices, every input among
        them), each operand first mapped through ``replace`` (node -> node standing for it)."""
        n = len(self.ops)
        remap = np.full(n + 1, -1, dtype=np.int64)
        remap[kept] = np.arange(len(kept))
        if replace is None:
            replace = np.arange(n + 1)
        else:
            replace = np.append(replace, n)

        def arr(x: np.ndarray) -> np.ndarray:
            return remap[replace[np.where(x < 0, n, x)]][kept]

        to = remap.tolist()
        rep = replace.tolist()
        values = self.values if values is None else values
        ops = self.ops
        through = remap[replace]  # node -> its survivor's new index
        return Recording(self.n_inputs, self.names, [ops[i] for i in kept.tolist()],
                         arr(self.a), arr(self.b), arr(self.c),
                         {to[i]: v for i, v in values.items() if to[i] >= 0},
                         {to[i] for i in self.bools if to[i] >= 0},
                         [to[rep[o]] for o in self.outputs],
                         {to[i]: x if type(x) is int else _remap_extra(x, through)
                          for i, x in self.extra.items() if to[i] >= 0})

    def key(self) -> str:
        """A digest of everything that makes the program: equal recordings, equal keys.
        (`marshal` writes ints, floats and bools exactly and tells them apart, in C: a
        compile with a warm disk cache hashes the whole recording in a few milliseconds.)"""
        h = hashlib.sha256()
        h.update(marshal.dumps((self.n_inputs, "\0".join(self.ops), sorted(self.values.items()),
                                sorted(self.bools), [int(o) for o in self.outputs])))
        # (adj node -> slot and sweep node -> its arrays, in the order made: the same trace
        # makes the same order, and another order is only a disk-cache miss; the arrays are
        # hashed where they lie, with their shapes and dtypes, no copy made)
        extra = [(i, x) if type(x) is int else (i, [(y.shape, y.dtype.str) for y in x])
                 for i, x in self.extra.items()]
        h.update(marshal.dumps(extra))
        for x in [self.a, self.b, self.c] + [y for _, e in _sweeps(self.extra) for y in e]:
            h.update(np.ascontiguousarray(x, dtype=np.int64))
        return h.hexdigest()

    def operands(self) -> list[tuple]:
        """Each node's operand indices, as a tuple."""
        out = []
        for a, b, c in zip(self.a.tolist(), self.b.tolist(), self.c.tolist()):
            out.append(() if a < 0 else (a,) if b < 0 else (a, b) if c < 0 else (a, b, c))
        return out

    def to_graph(self) -> Graph:
        """The recording as the compiler's IR (0-d float64 and bool nodes)."""
        nodes: list[Node] = []
        for i, (op, args) in enumerate(zip(self.ops, self.operands())):
            dtype = BOOL if i in self.bools else F64
            if op == "input":
                nodes.append(Node("input", (), {}, (), F64, name=self.names[i]))
            elif op == "const":
                nodes.append(Node("const", (), {}, (), dtype,
                                  value=np.array(self.values[i], dtype=dtype)))
            elif op == "sweep":
                nodes.append(Node("sweep", (), {"entries": len(self.extra[i][1]),
                                                "adjoints": len(self.extra[i][0])}, (), F64))
            else:
                attrs = {"dtype": F64} if op == "cast" else \
                    {"slot": self.extra[i]} if op == "adj" else {}
                nodes.append(Node(op, tuple(nodes[j] for j in args), attrs, (), dtype))
        n_in = self.n_inputs
        return Graph(nodes[:n_in], nodes[n_in:], [nodes[o] for o in self.outputs])


def _take(seq: list, indices: list) -> list:
    """``[seq[i] for i in indices]``, in C (a recording has ~100,000 nodes)."""
    if len(indices) < 2:
        return [seq[i] for i in indices]
    return list(itemgetter(*indices)(seq))


def _sweeps(extra: dict) -> list:
    """The sweep nodes' entries of ``extra`` (the rest are adj nodes' slots)."""
    return [(i, x) for i, x in extra.items() if type(x) is tuple]


def _remap_extra(x: Any, to: Any) -> Any:
    """A sweep's payload with its node indices renumbered through ``to`` (an array; -1 for
    none stays -1). (An adj node's slot is not a node: it stays.)"""
    if type(x) is not tuple:
        return x
    init, table = x
    to = np.asarray(to)
    table = table.copy()
    cols = table[:, 4:]
    table[:, 4:] = np.where(cols >= 0, to[np.where(cols >= 0, cols, 0)], -1)
    return (to[init], table)


def _sweep_reads(x: tuple) -> np.ndarray:
    init, table = x
    cols = table[:, 4:].ravel()
    return np.concatenate([init, cols[cols >= 0]])


# --------------------------------------------------------------------------------------
# The passes: (Recording) -> (Recording, note), as passes/*.py are for graphs.


def dce(rec: Recording) -> tuple[Recording, str]:
    """Drop the nodes no output depends on (inputs stay: the caller feeds them)."""
    n = len(rec)
    live = bytearray(n + 1)  # (live[-1], the last, is where a missing operand -1 lands)
    for o in rec.outputs:
        live[o] = 1
    a, b, c = rec.a.tolist(), rec.b.tolist(), rec.c.tolist()
    sweeps = {i for i, op in rec.extra.items() if type(op) is tuple}
    for i in range(n - 1, rec.n_inputs - 1, -1):
        if live[i]:
            live[a[i]] = live[b[i]] = live[c[i]] = 1
            if i in sweeps:  # (a sweep reads its adjoints' initial values and rule inputs)
                for j in _sweep_reads(rec.extra[i]).tolist():
                    live[j] = 1
    mask = np.frombuffer(bytes(live), dtype=np.uint8)[:n].astype(bool)
    mask[:rec.n_inputs] = True
    kept = np.flatnonzero(mask)
    if len(kept) == n:
        return rec, "removed 0 dead node(s)"
    return rec.keep(kept), f"removed {n - len(kept)} dead node(s)"


def _codes(rec: Recording) -> np.ndarray:
    return np.array([OP_CODE[op] for op in rec.ops], dtype=np.int64)


def _operand_or(x: np.ndarray, none: int) -> np.ndarray:
    return np.where(x < 0, none, x)


def cse(rec: Recording) -> tuple[Recording, str]:
    """One node for each distinct (op, operands): later duplicates read the first. Each
    round merges the nodes equal as written (one sort of a packed key per node), and
    reading the merged nodes' survivors can make more equal: rounds repeat until none
    merge (a round per level of nesting of the duplicates, a few)."""
    n = len(rec)
    if n >= 1 << 28:
        raise ValueError(f"scalar program: {n} nodes; at most {1 << 28} fit")
    codes = _codes(rec)
    body = np.arange(rec.n_inputs, n)
    op_of = codes[body]
    body = body[(op_of != OP_CODE["const"]) & (op_of != OP_CODE["sweep"]) &
                (op_of != OP_CODE["adj"]) & (rec.c[body] < 0)]  # (where: never merged)
    canon = np.arange(n + 1)  # (n: the missing operand)
    op, a, b = codes[body], _operand_or(rec.a[body], n), _operand_or(rec.b[body], n)
    while True:
        key = (op << 58) | (canon[a] << 29) | canon[b]
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        new = canon.copy()
        new[body] = body[first[inverse.ravel()]]
        if (new == canon).all():
            break
        canon = new
    merged = int((canon[:n] != np.arange(n)).sum())
    if not merged:
        return rec, "merged 0 duplicate node(s)"
    kept = np.flatnonzero(canon[:n] == np.arange(n))
    return rec.keep(kept, canon[:n]), f"merged {merged} duplicate node(s)"


def fold_constants(rec: Recording) -> tuple[Recording, str]:
    """A node whose operands are all constants becomes a constant, computed as the NumPy
    program would (values_program.evaluate)."""
    from .values_program import evaluate

    n = len(rec)
    values = dict(rec.values)
    ops = list(rec.ops)
    a2, b2, c2 = rec.a.copy(), rec.b.copy(), rec.c.copy()
    known = np.zeros(n + 1, dtype=bool)  # (known[n]: a missing operand)
    known[list(values)] = True
    known[n] = True
    known[:rec.n_inputs] = False
    unfoldable = list(rec.extra)  # (sweeps and what reads their adjoints)
    folded = 0
    while True:  # (a folded node can make its readers foldable: rounds until none)
        ready = known[_operand_or(a2, n)] & known[_operand_or(b2, n)] & \
            known[_operand_or(c2, n)] & ~known[:n]
        ready[:rec.n_inputs] = False
        ready[unfoldable] = False
        todo = np.flatnonzero(ready).tolist()
        if not todo:
            break
        for i in todo:
            args = [j for j in (int(a2[i]), int(b2[i]), int(c2[i])) if j >= 0]
            x = evaluate(ops[i], [values[j] for j in args])
            values[i] = bool(x) if i in rec.bools else float(x)
            ops[i] = "const"
            a2[i] = b2[i] = c2[i] = -1
            known[i] = True
        folded += len(todo)
    if not folded:
        return rec, "folded 0 node(s) into constants"
    out = Recording(rec.n_inputs, rec.names, ops, a2, b2, c2, values, rec.bools,
                    rec.outputs)
    return out, f"folded {folded} node(s) into constants"


def expand_sweeps(rec: Recording) -> tuple[Recording, str]:
    """Each sweep node as the nodes of the backward pass it stands for, for the NumPy
    program (which has no sweep): per entry, newest first, its rule's multiplies and adds
    into the children's adjoints, as `values._traced_backward` records them without a
    sweep (the operations of ``scalar._RULES``, in the engine's order: the same numbers as
    eager). Each adj node becomes its slot's last adjoint. The trace is the same for both
    backends (a sweep costs a tenth of the nodes to record); this runs once per program,
    before the passes, and is kept in the disk cache with them."""
    from .values_program import SWEEP_RULES

    sweeps = {i for i, x in rec.extra.items() if type(x) is tuple}
    if not sweeps:
        return rec, "no backward pass to expand"
    n = len(rec)
    ops: list = []
    a: list = []
    b: list = []
    values: dict = {}
    bools: set = set()
    new = [-1] * (n + 1)  # old node -> the node standing for it (new[-1]: no operand)
    consts: dict = {}

    def emit(op: str, x: int, y: int = -1) -> int:
        ops.append(op)
        a.append(x)
        b.append(y)
        return len(ops) - 1

    def const(x: float) -> int:
        i = consts.get(x.hex())
        if i is None:
            i = consts[x.hex()] = emit("const", -1)
            values[i] = x
        return i

    old_a, old_b = rec.a.tolist(), rec.b.tolist()
    if (rec.c >= 0).any():
        raise NotImplementedError("expand_sweeps: a node with three operands")
    adjoints: dict = {}  # sweep node -> the node of each slot's adjoint at its end
    expanded = 0
    for i, op in enumerate(rec.ops):
        if op == "adj":  # (its operand is its sweep; its extra, its slot)
            new[i] = adjoints[old_a[i]][rec.extra[i]]
            continue
        if op != "sweep":
            new[i] = emit(op, new[old_a[i]], new[old_b[i]])
            if op == "const":
                values[new[i]] = rec.values[i]
                if type(rec.values[i]) is not bool:
                    consts.setdefault(float(rec.values[i]).hex(), new[i])
            if i in rec.bools:
                bools.add(new[i])
            continue
        init, table = rec.extra[i]
        adj = [new[j] for j in init.tolist()]
        zeros = {j for j in set(adj) if ops[j] == "const" and values[j] == 0 and
                 j not in bools}
        zero, one = const(0.0), const(1.0)

        def into(k: int, x: int, adj: list = adj, zeros: set = zeros) -> None:
            # adj[k] += x (the first add into 0 is x itself, as for eager's int 0)
            adj[k] = x if adj[k] in zeros else emit("add", adj[k], x)

        for rule, g, c0, c1, d0, d1, d2 in table.tolist():
            name, g = SWEEP_RULES[rule], adj[g]
            v0, v1, v2 = new[d0], new[d1], new[d2]
            if name == "add":
                into(c0, g)
                into(c1, g)
                continue
            if name == "mul":
                x, y = emit("mul", v1, g), emit("mul", v0, g)
                into(c0, x)
                into(c1, y)
                continue
            if name == "relu":  # (out > 0) * g
                mask = emit("gt", v0, zero)
                bools.add(mask)
                x = emit("mul", g, mask)
            elif name == "tanh":  # (1 - out**2) * g
                x = emit("mul", emit("sub", one, emit("pow", v0, v1)), g)
            elif name == "exp":  # out * g
                x = emit("mul", v0, g)
            elif name == "log":  # g / x
                x = emit("div", g, v0)
            elif name == "sigmoid":  # out * (1 - out) * g
                x = emit("mul", emit("mul", v0, emit("sub", one, v0)), g)
            elif name == "pow":  # k * x**(k-1) * g
                x = emit("mul", emit("mul", v1, emit("pow", v0, v2)), g)
            else:  # zero: 0.0 * g
                x = emit("mul", zero, g)
            into(c0, x)
        adjoints[i] = adj
        expanded += len(table)
    m = len(ops)
    out = Recording(rec.n_inputs, rec.names, ops, np.array(a, dtype=np.int64),
                    np.array(b, dtype=np.int64), np.full(m, -1, dtype=np.int64), values,
                    bools, [new[o] for o in rec.outputs])
    return out, f"{expanded} backward entries as {m - n + len(rec.extra)} more nodes"


PASSES = [("dce", dce), ("cse", cse), ("fold_constants", fold_constants), ("dce", dce)]
