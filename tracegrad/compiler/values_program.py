"""Running a scalar graph fast: every value in one float64 array, the nodes as a tape.

A Value program's graph has one node per scalar operation: tens of thousands of them. Run
one NumPy call per node and it is as slow as eager. Two forms run it instead:

- **levels** (``backend="numpy"``): nodes are grouped by *level* (1 + the highest level of
  their inputs) and op; each group is one NumPy call over its operands gathered from the value
  array (``add(v.take(ia), v.take(ib), v[s:e])``: the group's results are a contiguous slice).
  A left-leaning chain ``((x0 + x1) + x2) + ...`` whose inner sums nobody else reads (what
  ``sum(...)`` and gradient accumulation make) is one unit: ``add.accumulate`` over its
  operands, which adds in exactly the chain's order. So the moons step's ~100,000 nodes are
  a few hundred NumPy calls, and every number is the one eager computes.
- **tape** (``backend="c"``): op codes and operand slots in arrays, swept by one small C loop
  (CppAD's and Adept's way), with the C library's math, as Python's `math` uses.

Bools (comparisons) are stored as 0.0 and 1.0.
"""

from __future__ import annotations

import ctypes
import itertools
import linecache
import threading
from typing import Any

import numpy as np

from .values_tape import Recording

CHAIN_OPS = {"add": np.add, "mul": np.multiply}
BINARY = {"add": "add", "sub": "subtract", "mul": "multiply", "div": "divide",
          "pow": "power", "lt": "less", "le": "less_equal", "gt": "greater",
          "ge": "greater_equal", "eq": "equal", "ne": "not_equal"}
UNARY = {"neg": "negative", "tanh": "tanh", "exp": "exp", "log": "log"}
OPS = set(BINARY) | set(UNARY) | {"relu", "sigmoid", "cast", "where"}

_files = itertools.count()


def _sigmoid(x: np.ndarray, out: np.ndarray) -> None:
    # eager's two forms (scalar._sigmoid), so that neither exp overflows
    e = np.exp(-np.abs(x))
    np.copyto(out, np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)))


def _relu(x: np.ndarray, out: np.ndarray) -> None:
    np.copyto(out, np.where(x < 0, 0.0, x))  # eager's `0 if x < 0 else x` (nan stays nan)


def _where(c: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    np.copyto(out, np.where(c != 0, a, b))


def evaluate(op: str, xs: list) -> Any:
    """One node computed as the NumPy program computes it (for constant folding)."""
    args = [np.array([x], dtype=np.float64) for x in xs]
    out = np.zeros(1)
    with np.errstate(all="ignore"):
        if op in BINARY:
            getattr(np, BINARY[op])(*args, out)
        elif op in UNARY:
            getattr(np, UNARY[op])(*args, out)
        elif op == "cast":
            out[:] = args[0]
        else:
            {"relu": _relu, "sigmoid": _sigmoid, "where": _where}[op](*args, out)
    return out[0]


def check_ops(rec: Recording) -> None:
    for op in set(rec.ops):
        if op not in OPS and op not in ("const", "input") and \
                not (op in ("sweep", "adj") and rec.extra):
            raise NotImplementedError(
                f"scalar program: op {op!r} has no scalar form (nodes of Value programs "
                f"are {', '.join(sorted(OPS))})")


class Tape:
    """The scalar graph laid out in slots: inputs first, then constants, then every node.

    ``groups`` lists what the vectorized form computes, in order: (op, arity, start, stop,
    operand ids) where the results go to slots ``start:stop`` and ``operand ids`` is an
    (n, arity) array of node ids (a chain unit, op ``"chain:add"``, has all its operands).
    ``slot[node id]`` is a node's slot. Everything is indexed by the graph's node ids, which
    `Graph` numbers consecutively.
    """

    def __init__(self, rec: Recording):
        ops = rec.ops
        check_ops(rec)
        if rec.extra:
            raise NotImplementedError("the level program has no reverse sweep: expand it "
                                      "first (values_tape.expand_sweeps)")
        self.recording = rec
        n_in, total = rec.n_inputs, len(rec)
        args = rec.operands()
        consts = [j for j in range(n_in, total) if ops[j] == "const"]
        self.n_inputs = n_in
        self.const_values = np.array([float(rec.values[j]) for j in consts], dtype=np.float64)
        self.n_fixed = n_in + len(consts)
        computed = [j for j in range(n_in, total) if ops[j] != "const"]

        # chains: a left-leaning add (mul) whose left operand is an add (mul) read only here
        uses = [0] * total
        for j in computed:
            for i in args[j]:
                uses[i] += 1
        for o in rec.outputs:
            uses[o] += 2  # (an output is never absorbed into a chain)
        chain: dict[int, list] = {}  # id of a chain's last node -> its operands
        absorbed = bytearray(total)
        for j in computed:
            op = ops[j]
            if op in CHAIN_OPS:
                a, b = args[j]
                if ops[a] == op and uses[a] == 1 and a in chain:
                    prev = chain.pop(a)
                    prev.append(b)
                    absorbed[a] = 1
                    chain[j] = prev
                else:
                    chain[j] = [a, b]
        # units in topological order, each with its level
        level = [0] * total
        get = level.__getitem__
        units = []  # (level, op, arity, id, operand ids)
        for j in computed:
            if absorbed[j]:
                continue
            operands = chain.get(j)
            if operands is not None and len(operands) > 2:
                op = "chain:" + ops[j]
            else:
                operands, op = args[j], ops[j]
            lv = 1 + max(map(get, operands))
            level[j] = lv
            units.append((lv, op, len(operands), j, operands))
        # groups: same level and op; each group's results in consecutive slots
        units.sort(key=lambda u: u[:3])  # (stable: topological inside a group)
        slot = np.zeros(total, dtype=np.intp)
        slot[:n_in] = np.arange(n_in)
        slot[consts] = np.arange(n_in, self.n_fixed)
        order = [u[3] for u in units] + [j for j in computed if absorbed[j]]
        slot[order] = np.arange(self.n_fixed, self.n_fixed + len(order))
        self.groups = []  # (op, arity, start, stop, operand ids)
        start = self.n_fixed
        for (_, op, arity), members in itertools.groupby(units, key=lambda u: u[:3]):
            members = [u[4] for u in members]
            self.groups.append((op, arity, start, start + len(members),
                                np.array(members, dtype=np.intp).reshape(len(members), arity)))
            start += len(members)
        self.levels = units[-1][0] if units else 0
        self.n_slots = self.n_fixed + len(order)
        self.slot = slot
        self.n_units = len(units)
        self.n_nodes = len(computed)
        self.output_slots = slot[rec.outputs].astype(np.intp)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "recording"}


# --------------------------------------------------------------------------------------
# backend="numpy": one NumPy call per group


class LevelProgram:
    """The tape as generated Python: one line per group of same-op nodes of one level."""

    def __init__(self, tape: Tape):
        self.tape = tape
        self.v = np.zeros(tape.n_slots, dtype=np.float64)
        self.v[tape.n_inputs:tape.n_fixed] = tape.const_values
        self.lock = threading.Lock()
        env: dict[str, Any] = {"v": self.v, "np": np, "_relu": _relu, "_sigmoid": _sigmoid,
                               "_where": _where}
        for name in set(BINARY.values()) | set(UNARY.values()):
            env[name] = getattr(np, name)
        for op, ufunc in CHAIN_OPS.items():
            env[f"{op}_accumulate"] = ufunc.accumulate
        lines: list[str] = []

        def bind(prefix: str, value: Any) -> str:
            key = f"{prefix}{len(env)}"
            env[key] = value
            return key

        def operand(ids: np.ndarray) -> str:
            idx = tape.slot[ids]
            if len(idx) == 1 or (idx == idx[0]).all():  # one value: broadcast it
                return bind("s", self.v[idx[0]:idx[0] + 1])
            if (np.diff(idx) == 1).all():  # consecutive slots: a view, no gather
                return bind("r", self.v[idx[0]:idx[-1] + 1])
            return f"v.take({bind('i', idx)})"

        for op, arity, start, stop, operands in tape.groups:
            out = bind("o", self.v[start:stop])
            if op.startswith("chain:"):
                ufunc = op[6:]
                idx = np.ascontiguousarray(tape.slot[operands].T)  # (operand, chain)
                lines.append(f"np.copyto({out}, {ufunc}_accumulate(v.take("
                             f"{bind('i', idx)}), axis=0)[-1])")
                continue
            args = [operand(operands[:, j]) for j in range(arity)]
            if op in BINARY:
                lines.append(f"{BINARY[op]}({', '.join(args)}, {out})")
            elif op in UNARY:
                lines.append(f"{UNARY[op]}({args[0]}, {out})")
            elif op == "cast":
                lines.append(f"np.copyto({out}, {args[0]})")
            else:
                lines.append(f"_{op}({', '.join(args)}, {out})")
        outs = bind("outs", tape.output_slots)
        n_in = tape.n_inputs
        body = [f"v[:{n_in}] = inputs"] + lines + [f"return v.take({outs}).tolist()"]
        source = "def run(inputs):\n" + "".join(f"    {line}\n" for line in body)
        filename = f"<tracegrad-values-{next(_files)}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        code = compile(source, filename, "exec")
        exec(code, env)
        self._run = env["run"]
        self._source = source
        self.calls = len(lines)
        self.n_nodes, self.n_slots = tape.n_nodes, tape.n_slots

    def __call__(self, inputs: list) -> list:
        with self.lock, np.errstate(all="ignore"):
            return self._run(inputs)

    def source(self) -> str:
        return self._source


# --------------------------------------------------------------------------------------
# backend="c": the tape swept by one C loop

C_OPS = ["add", "sub", "mul", "div", "pow", "neg", "relu", "tanh", "exp", "log", "sigmoid",
         "lt", "le", "gt", "ge", "eq", "ne", "cast", "where"]
C_CODE = {op: k for k, op in enumerate(C_OPS)}

_C_CASES = {
    "add": "x + y", "sub": "x - y", "mul": "x * y", "div": "x / y", "pow": "pow(x, y)",
    "neg": "-x", "relu": "x < 0 ? 0.0 : x", "tanh": "tanh(x)", "exp": "exp(x)",
    "log": "log(x)",
    "sigmoid": "x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x))",
    "lt": "x < y", "le": "x <= y", "gt": "x > y", "ge": "x >= y", "eq": "x == y",
    "ne": "x != y", "cast": "x", "where": "x != 0 ? y : v[c[i]]",
}


# The reverse sweep: each rule adds its node's adjoint g times the local derivative into
# its children's adjoints, with the operations of scalar._RULES in their order (tanh's
# out**2 is pow(out, 2) as Python computes it; d1 holds the 2).
SWEEP_RULES = ["add", "mul", "relu", "tanh", "exp", "log", "sigmoid", "pow", "zero"]
_SWEEP_C = {
    "add": "adj[c0[i]] += g; adj[c1[i]] += g;",
    "mul": "double x = v[d1[i]] * g, y = v[d0[i]] * g; adj[c0[i]] += x; adj[c1[i]] += y;",
    "relu": "adj[c0[i]] += (v[d0[i]] > 0 ? 1.0 : 0.0) * g;",
    "tanh": "adj[c0[i]] += (1.0 - pow(v[d0[i]], v[d1[i]])) * g;",
    "exp": "adj[c0[i]] += v[d0[i]] * g;",
    "log": "adj[c0[i]] += g / v[d0[i]];",
    "sigmoid": "adj[c0[i]] += v[d0[i]] * (1.0 - v[d0[i]]) * g;",
    "pow": "adj[c0[i]] += v[d1[i]] * pow(v[d0[i]], v[d2[i]]) * g;",
    "zero": "adj[c0[i]] += 0.0 * g;",
}


def c_source() -> str:
    """The tape interpreter: one switch per node, in order (the same for every program);
    and the reverse sweep, one switch per Value node, newest first."""
    cases = "\n".join(f"        case {k}: r = {_C_CASES[op]}; break;"
                      for k, op in enumerate(C_OPS))
    rules = "\n".join(f"        case {k}: {{ {_SWEEP_C[rule]} }} break;"
                      for k, rule in enumerate(SWEEP_RULES))
    return f"""#include <math.h>

/* the reverse sweep of a backward pass: adj (m slots at v + base) starts from v[init[k]];
   entry i adds into the adjoints of a Value node's children (slots c0[i], c1[i]) what its
   rule makes of its own adjoint (slot g[i]) and the values v[d0[i]], v[d1[i]], v[d2[i]].
   Rules: {' '.join(SWEEP_RULES)} */
void tracegrad_sweep(long m, const int *init, long n, const int *rule, const int *gs,
                     const int *c0, const int *c1, const int *d0, const int *d1,
                     const int *d2, double *v, long base)
{{
    double *adj = v + base;
    for (long k = 0; k < m; k++) adj[k] = v[init[k]];
    for (long i = 0; i < n; i++) {{
        double g = adj[gs[i]];
        switch (rule[i]) {{
{rules}
        }}
    }}
}}

/* tracegrad scalar tape: v holds every value; node i computes v[out[i]] from v[a[i]],
   v[b[i]] (and v[c[i]] for where). Ops: {' '.join(C_OPS)} */
void tracegrad_tape(long n, const int *op, const int *out, const int *a, const int *b,
                    const int *c, double *v)
{{
    for (long i = 0; i < n; i++) {{
        double x = v[a[i]], y = v[b[i]], r = 0.0;
        switch (op[i]) {{
{cases}
        }}
        v[out[i]] = r;
    }}
}}
"""


_library: list = []
_library_lock = threading.Lock()


def c_function(name: str = "tracegrad_tape") -> Any:
    """The compiled tape interpreter (built once per process; cached on disk), or its
    reverse sweep (``"tracegrad_sweep"``)."""
    with _library_lock:
        if not _library:
            from .backends.toolchain import build

            lib = build(c_source())
            ptr, long = ctypes.c_void_p, ctypes.c_long
            fn = lib.cdll.tracegrad_tape
            fn.argtypes = [long, ptr, ptr, ptr, ptr, ptr, ptr]
            fn.restype = None
            sweep = lib.cdll.tracegrad_sweep
            sweep.argtypes = [long, ptr, long] + [ptr] * 8 + [long]
            sweep.restype = None
            _library.append((lib, {"tracegrad_tape": fn, "tracegrad_sweep": sweep}))
        return _library[0][1][name]


class CTape:
    """The recording laid out for `c_function`: node i's value is in slot i (inputs, then
    every node after its operands, as the recording holds them), and each node that
    computes is one entry (op code, out, a, b, c) of five int32 arrays. A ``sweep`` node
    splits the tape: the entries before it run, then its reverse sweep (adjoints in slots
    past the nodes'), then the rest; an ``adj`` node is a copy from its adjoint's slot.
    Only arrays: kept in the disk cache with the recording, as `Tape` is."""

    def __init__(self, rec: Recording):
        check_ops(rec)
        self.recording = rec
        n = len(rec)
        codes = np.fromiter(map(C_CODE.get, rec.ops, itertools.repeat(-1)), dtype=np.int32,
                            count=n)
        a = rec.a.copy()
        sweeps = sorted(i for i, x in rec.extra.items() if type(x) is tuple)
        base, bases = n, {}
        for i in sweeps:
            bases[i] = base
            base += len(rec.extra[i][0])
        for i, k in rec.extra.items():
            if type(k) is not tuple:  # an adj node: a copy of its slot
                codes[i] = C_CODE["cast"]
                a[i] = bases[int(rec.a[i])] + k
        computed = np.flatnonzero(codes >= 0)  # (inputs, constants, sweeps: no entry)
        self.arrays = [codes[computed], computed.astype(np.int32)] + [
            np.where(x[computed] < 0, 0, x[computed]).astype(np.int32)
            for x in (a, rec.b, rec.c)]
        self.v = np.zeros(base, dtype=np.float64)
        for i, x in rec.values.items():
            self.v[i] = float(x)
        self.n_inputs = rec.n_inputs
        self.n_nodes = len(computed) + sum(len(rec.extra[i][1]) for i in sweeps)
        self.n_slots = base
        self.output_slots = np.array(rec.outputs, dtype=np.intp)
        # the parts, in order: ("tape", start, stop) entries, ("sweep", init, columns, base)
        self.parts: list[tuple] = []
        start = 0
        for i in sweeps + [n]:
            stop = int(np.searchsorted(computed, i))
            if stop > start:
                self.parts.append(("tape", start, stop))
            start = stop
            if i == n:
                break
            init, table = rec.extra[i]
            cols = [np.ascontiguousarray(np.maximum(table[:, j], 0), dtype=np.int32)
                    for j in range(7)]
            self.parts.append(("sweep", init.astype(np.int32), cols, bases[i]))
        self.sweeps = len(sweeps)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "recording"}


class TapeProgram:
    """A `CTape` run by `c_function`: one C call per part, on the tape's own value array."""

    def __init__(self, rec: Recording, tape: CTape | None = None):
        self.recording = rec
        self.tape = tape = tape or CTape(rec)
        self.v = tape.v.copy()
        self.n_inputs, self.n_nodes, self.n_slots = tape.n_inputs, tape.n_nodes, tape.n_slots
        self.output_slots = tape.output_slots
        self.lock = threading.Lock()
        self.calls = 1 + 2 * tape.sweeps
        # the plan: (function, arguments) calls, in order
        fn, sweep = c_function(), c_function("tracegrad_sweep")
        v = self.v.ctypes.data
        self.plan = []
        for part in tape.parts:
            if part[0] == "tape":
                _, start, stop = part
                self.plan.append((fn, [stop - start] +
                                  [x.ctypes.data + 4 * start for x in tape.arrays] + [v]))
            else:
                _, init, cols, base = part
                self.plan.append((sweep, [len(init), init.ctypes.data, len(cols[0])] +
                                  [x.ctypes.data for x in cols] + [v, base]))

    def __call__(self, inputs: list) -> list:
        v = self.v
        with self.lock:
            v[:self.n_inputs] = inputs
            for fn, args in self.plan:
                fn(*args)
            return v.take(self.output_slots).tolist()

    def source(self) -> str:
        return c_source()


def build_program(rec: Recording, backend: str, tape: Tape | CTape | None = None) -> Any:
    """The program running a recording on a backend ("c": the tape, "numpy": by levels,
    laid out by ``tape`` when given, else now)."""
    if backend == "c":
        return TapeProgram(rec, tape)
    return LevelProgram(tape or Tape(rec))


__all__ = ["CTape", "LevelProgram", "Tape", "TapeProgram", "build_program", "c_source", "evaluate"]
