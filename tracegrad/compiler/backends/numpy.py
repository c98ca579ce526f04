"""The NumPy backend: the optimized graph becomes Python source that calls NumPy.

Every value the memory plan placed in a buffer is computed with ``out=`` into memory
allocated once, when the program is built; a fused kernel is a sequence of in-place ufunc
calls on one buffer. The source is real Python, registered with ``linecache``, so
``compiled.source()`` shows it, tracebacks point into it and ``pdb`` can step through it.
"""

from __future__ import annotations

import itertools
import linecache
import math
import re
from typing import Any, Callable

import numpy as np

from ...ops import PRIMITIVES
from ...ops.base import having
from ...ops.elementwise import erf_ufunc
from ...ops.movement import add_at, fill_index, is_basic_index
from ..ir import Graph, Node
from ..passes.plan_memory import MemoryPlan, block_rows, plan_memory
from .base import Backend

_counter = itertools.count()

MAX_CLOSURE = 256  # names passed to a program as closure variables; more become globals

# The primitives whose forward is a NumPy ufunc (the "ufunc" fact): the generated code
# calls it by its name, bound once when the program is built (a name lookup per call
# instead of an attribute lookup on `np`).
UFUNC_OPS = having("ufunc")
_MORE_UFUNCS = {"logaddexp": np.logaddexp, "matmul": np.matmul, "minimum": np.minimum}


def ufunc_names() -> dict[str, np.ufunc]:
    """name -> ufunc, for every ufunc generated code may call (sorted by name, so that
    ``make``'s parameters come in a fixed order)."""
    names = {PRIMITIVES[op].ufunc.__name__: PRIMITIVES[op].ufunc for op in UFUNC_OPS}
    names.update(_MORE_UFUNCS)
    return dict(sorted(names.items()))

# The ufuncs' own reduce methods: np.sum and friends add a Python layer on top of these.
REDUCE = {"sum": "add_reduce", "max": "maximum_reduce", "min": "minimum_reduce"}
REDUCE_NAMES = {"add_reduce": np.add.reduce, "maximum_reduce": np.maximum.reduce,
                "minimum_reduce": np.minimum.reduce}


# ---------------------------------------------------------------- the lowering table
#
# How each op is computed into a given buffer ``out``, by op name: a format string (or a
# tuple of them, one per line) over the operands ``{0}``, ``{1}``, ... and ``{out}``, or a
# function ``(program, node, args, out) -> lines`` for ops whose form depends on their
# attributes or operands. A primitive declaring "ufunc" needs no entry: its ufunc is called
# with ``out``. Any other fusible primitive without an entry runs its own forward and copies
# the result into the buffer. So adding an elementwise primitive takes at most one line here.


def _reduce(p: "Program", n: Any, a: list, out: str) -> list[str]:
    return [f"{REDUCE[n.op]}({a[0]}, axis={n.attrs['axes']!r}, "
            f"keepdims={n.attrs['keepdim']!r}, out={out})"]


def _arg_reduce(p: "Program", n: Any, a: list, out: str) -> list[str]:
    return [f"np.{n.op}({a[0]}, axis={n.attrs['axis']!r}, "
            f"keepdims={n.attrs['keepdim']!r}, out={out})"]


def _matmul(p: "Program", n: Any, a: list, out: str) -> list[str]:
    if not n.shape:  # a 0-d result has no buffer matmul can write into
        return [f"{out}[...] = np.matmul({a[0]}, {a[1]})"]
    x, w = n.inputs
    if len(x.shape) > 2 and len(w.shape) == 2 and id(n) not in p.plan.into_input:
        # A batch of rows times one matrix (a Linear layer on (B, T, C)): one matrix
        # product of all the rows, which BLAS runs 1.2-1.6x faster than NumPy's loop over
        # the batch. (out is new or pooled memory, C-contiguous: its reshape is a view.)
        rows, (k, m) = math.prod(x.shape[:-1]), w.shape
        return [f"matmul({a[0]}.reshape({rows}, {k}), {a[1]}, {out}.reshape({rows}, {m}))"]
    return [f"matmul({a[0]}, {a[1]}, {out})"]


def _erf(p: "Program", n: Any, a: list, out: str) -> list[str]:
    if erf_ufunc() is not None:
        return [f"erf({a[0]}, {out})"]
    return [f"{out}[...] = erf({a[0]})"]  # pragma: no cover - without SciPy


def _scatter_add(p: "Program", n: Any, a: list, out: str) -> list[str]:
    index = p._index(n.attrs["index"], a[1:])
    if is_basic_index(n.attrs["index"]) or _distinct_positions(n.inputs[1:]):
        return [f"{out}[...] = 0", f"{out}[{index}] = {a[0]}"]
    return [f"{out}[...] = 0", f"add_at({out}, {index}, {a[0]})"]  # (ops.movement)


def _setitem(p: "Program", n: Any, a: list, out: str) -> list[str]:
    index = p._index(n.attrs["index"], a[2:])
    return [f"np.copyto({out}, {a[0]})", f"{out}[{index}] = {a[1]}"]


INTO: dict[str, Any] = {
    # NumPy deprecates a positional out for maximum and minimum
    "maximum": "maximum({0}, {1}, out={out})",
    "relu": "maximum({0}, 0, out={out})",
    "softplus": "logaddexp(0, {0}, {out})",
    # exp(-logaddexp(0, -x)), each step in place
    "sigmoid": ("negative({0}, {out})", "logaddexp(0, {out}, {out})",
                "negative({out}, {out})", "exp({out}, {out})"),
    "erf": _erf,
    "sum": _reduce, "max": _reduce, "min": _reduce,
    "argmax": _arg_reduce, "argmin": _arg_reduce,
    "matmul": _matmul,
    "cast": "np.copyto({out}, {0}, casting='unsafe')",
    "cat": lambda p, n, a, out: [
        f"np.concatenate(({', '.join(a)},), axis={n.attrs['dim']!r}, out={out})"],
    "scatter_add": _scatter_add,
    "setitem": _setitem,
    "kernel": lambda p, n, a, out: p._emit_kernel(n, out),
}


def _into(p: "Program", n: Any, args: list[str], out: str) -> list[str]:
    """Source lines computing node or kernel step ``n`` of operands ``args`` into ``out``."""
    entry = INTO.get(n.op)
    if entry is None:
        prim = PRIMITIVES[n.op]
        if prim.ufunc is not None:  # the ufunc's out as its last positional argument:
            # NumPy parses that faster than out=
            return [f"{prim.ufunc.__name__}({', '.join(args)}, {out})"]
        return [f"{out}[...] = {n.op}_forward({', '.join(args)})"]
    if isinstance(entry, str):
        return [entry.format(*args, out=out)]
    if isinstance(entry, tuple):
        return [line.format(*args, out=out) for line in entry]
    return entry(p, n, args, out)


class NumpyBackend(Backend):
    """Python source calling NumPy, always available: every value the memory plan placed
    in a buffer is computed with ``out=``; a fused kernel is a sequence of in-place calls."""

    name = "numpy"

    def writes_into(self, op: str) -> bool:
        if op in INTO:
            return True
        p = PRIMITIVES.get(op)
        return p is not None and (p.ufunc is not None or p.fusible)

    def program(self, graph: Graph, plan: Any, check_finite: bool = False) -> "Program":
        return Program(graph, plan, check_finite)


NUMPY = NumpyBackend()


def _distinct_positions(index_arrays: tuple) -> bool:
    """Whether integer index arrays never name one position twice, so that a scatter-add
    is a plain assignment: true when one of them is a constant of distinct non-negative
    values (the ``arange`` of a gather by rows) as large as their broadcast shape."""
    try:
        shape = np.broadcast_shapes(*(tuple(i.shape) for i in index_arrays))
    except ValueError:
        return False
    for i in index_arrays:
        v = i.value if i.op == "const" else None
        if v is not None and v.dtype.kind in "iu" and v.shape == shape and v.size \
                and v.min() >= 0 and np.unique(v).size == v.size:
            return True
    return False


def _finite(a: np.ndarray, node_id: int, op: str) -> None:
    """detect_anomaly's check of one value of a compiled program."""
    if not np.isfinite(a).all():
        bad = "nan" if np.isnan(a).any() else "inf"
        raise FloatingPointError(
            f"detect_anomaly: {op} produced {bad} in a compiled program (node %{node_id}; "
            f"print(compiled.graph) shows the IR, compiled.source() the code)")


class Program:
    """A graph compiled to NumPy source; call it with the input arrays."""

    def __init__(self, graph: Graph, plan: MemoryPlan | None = None,
                 check_finite: bool = False):
        if plan is None:
            plan = plan_memory(graph, NUMPY)
        graph.renumber()  # (the names of the generated code are the printed numbers)
        self.graph, self.plan = graph, plan
        # tg.detect_anomaly() while compiling: every float result is checked, as in eager
        self.check_finite = check_finite
        self.pool = [np.empty(nbytes, dtype=np.uint8) for nbytes in plan.buffers]
        self.filename = f"<tracegrad-compiled-{next(_counter)}>"
        self._env: dict[str, Any] = {}
        self._names: dict[tuple[str, int], str] = {}  # (prefix, id(value)) -> its name
        # name -> (pool index, shape, dtype) of each buffer view the program is handed (a
        # dynamic variant rebuilds them per size: dynamic_program.py)
        self._views: dict[str, tuple] = {}
        lines = self._generate(graph, plan)
        # (a planned buffer the code never names, as a C row program's fallback, is freed)
        used = {index for index, *_ in self._views.values()}
        self.pool = [a if k in used else np.empty(0, np.uint8)
                     for k, a in enumerate(self.pool)]
        self.source_text = "\n".join(lines) + "\n"
        linecache.cache[self.filename] = (len(self.source_text), None,
                                          self.source_text.splitlines(True), self.filename)
        if self._as_globals:
            namespace = dict(self._env)
            exec(compile(self.source_text, self.filename, "exec"), namespace)
            self.run: Callable = namespace["make"]()
        else:
            namespace = {}
            exec(compile(self.source_text, self.filename, "exec"), namespace)
            # Positionally: CPython matches keyword arguments to parameters by a linear
            # search each, which is quadratic in the number of names.
            self.run = namespace["make"](*self._env.values())

    def __call__(self, *arrays: np.ndarray) -> tuple:
        return self.run(*arrays)

    # ---------------------------------------------------------------- code generation

    def _name(self, prefix: str, value: Any) -> str:
        """The name the program knows ``value`` by: one name per object (a constant that
        a thousand kernel steps read is passed to the program once)."""
        key = (prefix, id(value))
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = f"{prefix}{len(self._env)}"
            self._env[name] = value
        return name

    def _buffer(self, index: int, node_shape: tuple, dtype: np.dtype) -> str:
        n = int(np.prod(node_shape, dtype=np.int64)) * dtype.itemsize
        view = self.pool[index][:n].view(dtype).reshape(node_shape)
        name = self._name("b", view)
        self._views[name] = (index, tuple(node_shape), dtype)
        return name

    def _generate(self, graph: Graph, plan: Any) -> list[str]:
        self._env.update(np=np, fill_index=fill_index)
        if self.check_finite:
            self._env["_finite"] = _finite
        params = ", ".join(f"v{n.id}" for n in graph.inputs)
        body = self._body(graph, plan)
        text = "\n".join(body)
        called = set(re.findall(r"\b(\w+)\(", text))
        for name, fn in {**ufunc_names(), **REDUCE_NAMES}.items():
            if name in called:  # only the ufuncs this program calls
                self._env[name] = fn
        if "add_at" in called:
            self._env["add_at"] = add_at
        if "erf" in called:
            self._env["erf"] = erf_ufunc() or PRIMITIVES["erf"].forward
        for op in set(re.findall(r"\b(\w+)_forward\(", text)) & PRIMITIVES.keys():
            self._env[f"{op}_forward"] = PRIMITIVES[op].forward
        outs = ", ".join(f"v{o.id}" for o in graph.outputs)
        # The names reach the program as closure variables, or, when there are very many
        # (a long chain with a constant per step), as its globals: CPython compiles a
        # function with tens of thousands of closure variables in super-linear time.
        self._as_globals = len(self._env) > MAX_CLOSURE
        args = "" if self._as_globals else ", ".join(self._env)
        lines = [f"def make({args}):", f"    def program({params}):"]
        lines += ["        " + line for line in body]
        lines.append(f"        return ({outs}{',' if len(graph.outputs) == 1 else ''})")
        lines.append("    return program")
        return lines

    def _body(self, graph: Graph, plan: Any) -> list[str]:
        """The program's statements, node by node (a backend may group nodes)."""
        body: list[str] = []
        for k, node in enumerate(graph.nodes):
            body.extend(self._node_lines(k, node, plan))
        return body

    def _node_lines(self, k: int, node: Node, plan: Any) -> list[str]:
        """Node ``k``'s statements: a comment, its computation, the anomaly check, and a
        ``del`` of what dies there."""
        body = [f"# %{node.id}:{node.type_str()} = {node.op}"]
        body.extend(self._emit(node, plan))
        if self.check_finite and node.op != "const" and node.dtype.kind == "f":
            what = node.op if node.op != "kernel" else \
                f"a fused kernel ({', '.join(step.op for step in node.value)})"
            body.append(f"_finite(v{node.id}, {node.id}, {what!r})")
        for dead in plan.free_after.get(k, ()):
            # (a pooled buffer stays allocated anyway: only new memory is worth a del)
            if dead.op not in ("input", "const") and id(dead) not in plan.buffer_of:
                body.append(f"del v{dead.id}")
        return body

    def _emit(self, node: Node, plan: Any) -> list[str]:
        v = f"v{node.id}"
        args = [f"v{i.id}" for i in node.inputs]
        op, attrs = node.op, node.attrs
        if op == "const":
            return [f"{v} = {self._name('c', node.value)}"]
        target = plan.into_input.get(id(node))
        if target is not None:  # written over the input it replaces (a write-back)
            out = f"v{target.id}"
            return _into(self, node, args, out) + [f"{v} = {out}"]
        if id(node) in plan.fresh:
            dtype = self._name("d", node.dtype)
            return ([f"{v} = np.empty({node.shape!r}, {dtype})"]
                    + _into(self, node, args, v))
        buf_index = plan.buffer_of.get(id(node))
        if buf_index is not None:
            out = self._buffer(buf_index, node.shape, node.dtype)
            return _into(self, node, args, out) + [f"{v} = {out}"]
        if op == "reshape":
            return [f"{v} = {args[0]}.reshape({attrs['shape']!r})"]
        if op == "permute":
            return [f"{v} = {args[0]}.transpose({attrs['dims']!r})"]
        if op == "expand":
            return [f"{v} = np.broadcast_to({args[0]}, {attrs['shape']!r})"]
        if op == "getitem":
            return [f"{v} = {args[0]}[{self._index(attrs['index'], args[1:])}]"]
        if op == "where":
            return [f"{v} = np.where({', '.join(args)})"]
        forward = self._name("f", PRIMITIVES[op].forward)
        kw = self._name("a", dict(attrs))
        return [f"{v} = np.asarray({forward}({', '.join(args + ['**' + kw])}))"]

    def _index(self, template: tuple, arrays: list[str]) -> str:
        t = self._name("i", template)
        if not arrays:
            return t
        return f"fill_index({t}, ({', '.join(arrays)},))"

    def _emit_kernel(self, node: Node, out: str) -> list[str]:
        plan = self.plan
        steps = node.value
        rows = block_rows(node)
        if rows is not None:
            return self._emit_blocks(node, out, rows)
        # With a scratch buffer the chain runs there and only the last step writes `out`
        # (a trailing reduction, or an update written over its own input).
        if id(node) in plan.scratch_of:
            first = steps[0]
            buf = self._buffer(plan.scratch_of[id(node)], first.shape, first.dtype)
        else:
            buf = out
        lines: list[str] = []
        for k, step in enumerate(steps):
            refs = [buf if kind == "step" else f"v{ref.id}" if kind == "input"
                    else self._name("c", ref) for kind, ref in step.refs]
            lines.extend(_into(self, step, refs, out if k == len(steps) - 1 else buf))
        return lines

    def _emit_blocks(self, node: Node, out: str, rows: int) -> list[str]:
        """A kernel ending in a reduction, run over blocks of ``rows`` rows (see
        `block_rows`): each block's chain in a one-block scratch, then reduced into its rows
        of ``out``, or, when the rows themselves are reduced, added (or max-ed, min-ed) to
        what the blocks before gave."""
        *body, last = node.value
        shape = body[0].shape
        n = shape[0]
        buf = self._buffer(self.plan.scratch_of[id(node)], (rows,) + shape[1:],
                           body[0].dtype)

        def block(name: str, value: Any) -> str:
            # a full-size operand is cut to the block; a broadcast one (fewer dimensions, or
            # a first axis of 1) is read whole
            full = getattr(value, "ndim", 0) == len(shape) and value.shape[0] == n
            return f"{name}[_r:_r + {rows}]" if full else name

        lines = [f"for _r in range(0, {n}, {rows}):"]
        for step in body:
            refs = [buf if kind == "step" else block(f"v{ref.id}", ref) if kind == "input"
                    else block(self._name("c", ref), ref) for kind, ref in step.refs]
            lines += ["    " + line for line in _into(self, step, refs, buf)]
        axes, keep = last.attrs["axes"], last.attrs["keepdim"]
        reduce = f"{REDUCE[last.op]}({buf}, axis={axes!r}, keepdims={keep!r}, out="
        if 0 not in axes:  # each block gives its own rows of the result
            return lines + [f"    {reduce}{out}[_r:_r + {rows}])"]
        partial = self._name("t", np.empty(node.shape, node.dtype))
        combine = {"sum": "add", "max": "maximum", "min": "minimum"}[last.op]
        return lines + ["    if _r == 0:", f"        {reduce}{out})", "    else:",
                        f"        {reduce}{partial})",
                        f"        {combine}({out}, {partial}, out={out})"]

    def owns(self, k: int) -> bool:
        """Whether output ``k`` is new memory on every run (so it can be handed out as is)."""
        if not hasattr(self, "_first_output"):  # asked for every output: index them once
            self._first_output: dict[int, int] = {}
            for j, o in enumerate(self.graph.outputs):
                self._first_output.setdefault(id(o), j)
        node = self.graph.outputs[k]
        return id(node) in self.plan.fresh and self._first_output[id(node)] == k

    def source(self) -> str:
        return self.source_text
