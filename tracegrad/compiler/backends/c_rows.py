"""Row programs: a run of consecutive nodes over one (R, C) matrix becomes one C function
that works row by row.

`fuse` makes chains; a layer norm's forward and backward is many short chains, single
elementwise nodes and reductions over the rows, each a full pass over memory. Every one of
them, though, only needs the row it works on (and per-row values, and per-column vectors
from outside): so the C backend runs the whole run of nodes for row 0, then row 1, ...
Each intermediate row lives in a scratch row (in the L1 cache), each input row is read from
memory once, each stored row written once; per-row values (a mean) are C locals; sums over
the rows (a bias gradient) accumulate in the frame's dtype row after row (NumPy's order),
sums over a row are NumPy's pairwise sums, sums over everything add those of the rows in
double. While a row computes, its loops ask memory for the next row of the inputs and
outputs (`RowProgram._prefetch`).

A node joins the run when it is elementwise with a C form (`c_codegen.C_OPS`, or `ROW_OPS`:
comparisons and where, of operands the frame's dtype holds exactly; casts to the frame's
dtype or bool), a fused kernel whose steps all have one, or a sum/max/min over the columns
(axis 1), the rows (axis 0) or both, of the frame's dtype (float32/float64); its value's
shape is the frame (R, C) ("full") or (R, 1) ("row"); it reads full, row, column ((C,) or
(1, C)) and scalar values, from the run or from before it. A value is stored when something
after the run reads it.

The C function checks that every array it was handed is C-contiguous and returns 1 if not;
the program then runs the same nodes on NumPy (the generated Python holds both).
"""

from __future__ import annotations

import math
import re

import numpy as np

from ..ir import Node, format_node
from .c_codegen import C_OPS, CTYPES, KERNEL_TYPES, REDUCTIONS, _literal, why_not

# Elementwise nodes a row program computes besides C_OPS: comparisons (a bool value, 0 or 1
# in the frame's type inside the run, a bool array when stored), where, and casts between
# the frame's dtype, bool and the integer types (C's conversions: NumPy's for these).
COMPARE = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "eq": "==", "ne": "!="}
ROW_OPS = {**{op: f"(({{0}} {c} {{1}}) ? (T)1 : (T)0)" for op, c in COMPARE.items()},
           "where": "tg_where({0}, {1}, {2})"}
MIN_COLUMNS = 8  # narrower matrices are not worth a row program
# Ops whose value a later loop of a row program computes again rather than reads from a row
# (`RowProgram.c_source`): one instruction, cheaper than a store and a load
RECOMPUTE = {"add", "sub", "mul", "neg"}
MIN_NODES = 3
MAX_HOISTED = 32  # nodes between two members that run before the run instead
MIN_ELEMENTS = 4096  # smaller programs: the per-kernel C functions (tests lower it)
# Rows of at least this many bytes are prefetched a row ahead (`_prefetch`)
PREFETCH_MIN_BYTES = 1024


def _dims(shape: tuple) -> tuple:
    """A shape as (rows, columns): its leading dimensions are one (a (B, T, C) value is B*T
    rows of C). Two values of an elementwise op with the same (rows, columns) have the same
    shape, up to leading ones, or one broadcasts along the rows or the columns only (a
    dimension of one among the leading ones would make fewer rows)."""
    s = tuple(shape)
    if len(s) < 2:
        return (1,) * (2 - len(s)) + s
    return (math.prod(s[:-1]), s[-1])


def _axes_kind(shape: tuple, axes: tuple) -> str | None:
    """How a reduction over ``axes`` of a value of ``shape`` (at least 2-d) sits in its
    rows and columns: over the columns ("row"), the rows ("cols"), or both ("total");
    None if it reduces nothing or some other way. Axes of size one do not count."""
    last = len(shape) - 1
    reduced = {a for a in axes if shape[a] != 1}
    leading = {d for d in range(last) if shape[d] != 1}
    if shape[last] == 1 or not reduced:
        return None
    if reduced == {last}:
        return "row"
    if reduced == leading and last not in axes:
        return "cols"
    if reduced == leading | {last}:
        return "total"
    return None


def kind_of(shape: tuple, frame: tuple) -> str | None:
    """How a value of ``shape`` sits in the frame (R, C): "full", "row" (R, 1), "col"
    (1, C) or (C,), "scalar"; None if it does not broadcast so."""
    d = _dims(shape)
    R, C = frame
    if d == (R, C):
        return "full"
    if d == (R, 1):
        return "row"
    if d == (1, C):
        return "col"
    if d == (1, 1):
        return "scalar"
    return None


def _reduction(node: Node) -> tuple[str, tuple] | None:
    """(op, axes) of a reduction node or a kernel ending in one."""
    if node.op in REDUCTIONS:
        return node.op, tuple(node.attrs["axes"])
    if node.op == "kernel" and node.value[-1].op in REDUCTIONS:
        return node.value[-1].op, tuple(node.value[-1].attrs["axes"])
    return None


class RowProgram:
    """A run of nodes lowered to one C function (see the module's docstring)."""

    def __init__(self, frame: tuple, dtype: np.dtype):
        self.frame, self.dtype = frame, dtype
        self.members: list[Node] = []
        self.hoisted: list[Node] = []  # nodes between members that run before the run
        # ids of the inputs whose memory a stored value may overwrite, row by row (None:
        # unknown, any): a later loop of the row must not read those again (`_at_hand`)
        self.overwritten: set[int] | None = None
        self.produced: dict[int, str] = {}  # id(member) -> "full" | "row" | "rows" |
        # "cols" | "total" (the last three: reductions over columns, rows, everything);
        # id(deferred node) -> "after"
        # nodes between members that read only the run's sums over the rows (a gradient
        # added to the .grad there was: w.grad + the column sum): they run after the run
        self.deferred: list[Node] = []

    # ---------------------------------------------------------------- membership

    def admit(self, node: Node) -> bool:
        """Add ``node`` if it fits (see the module's docstring)."""
        kind = self._kind(node)
        if kind is None:
            return False
        for i in node.inputs:
            if id(i) in self.produced:
                if self.produced[id(i)] not in ("full", "row"):
                    return False  # (a reduction's result is read after the run only)
                continue
            if i.op == "const" and i.value.size == 1:
                continue
            if kind_of(i.shape, self.frame) is None or i.dtype not in CTYPES:
                return False
        self.members.append(node)
        self.produced[id(node)] = kind
        return True

    def deferrable(self, node: Node, pending: list) -> bool:
        """Whether ``node`` may run after the run although members follow it: it reads
        values the run makes only once every row is done (sums over the rows, everything,
        or other such nodes), and nothing the run makes row by row or passed over."""
        made = [self.produced.get(id(i)) for i in node.inputs]
        passed = {id(p) for p in pending}
        return any(k is not None for k in made) and \
            all(k in (None, "cols", "total", "after") for k in made) and \
            not any(id(i) in passed for i in node.inputs)

    def _kind(self, node: Node) -> str | None:
        if node.dtype != self.dtype and not (node.dtype == np.bool_ and (
                node.op in COMPARE or node.op == "cast")):
            return None
        if node.op in COMPARE or node.op == "where":
            # operands the frame's type holds exactly (an int64 compared in float32 would not)
            operands = node.inputs[1:] if node.op == "where" else node.inputs
            if any(not np.can_cast(i.dtype, self.dtype, "safe") for i in operands):
                return None
        red = _reduction(node)
        if node.op == "kernel":
            if why_not(node) is not None:
                return None
            first = node.value[0].shape
        elif node.op in C_OPS or node.op in ROW_OPS or node.op == "cast":
            first = node.shape
        elif node.op in REDUCTIONS:
            first = node.inputs[0].shape
            if node.inputs[0].dtype != self.dtype:
                return None
        else:
            return None
        base = kind_of(first, self.frame)
        if red is None:
            return base if base in ("full", "row") and \
                kind_of(node.shape, self.frame) == base else None
        if base != "full":
            return None
        op, axes = red
        how = _axes_kind(tuple(first), axes) if len(first) >= 2 else None
        if how == "row":  # per row: with keepdim a value later nodes may read
            return "row" if kind_of(node.shape, self.frame) == "row" else "rows"
        return how

    # ---------------------------------------------------------------- the C function

    def c_source(self, name: str, stored: list[Node], externals: list[Node],
                 sized: bool = False) -> str:
        """``int name((stored outputs..., external inputs...))``: 0, or 1 when an array
        is not laid out as expected (nothing was written then). ``sized``: the tuple ends
        with the size of a program made for every size, ``tg_n`` (see
        `c_codegen.kernel_source`)."""
        R, C = self.frame
        T = KERNEL_TYPES[self.dtype]
        out_index = {id(n): k for k, n in enumerate(stored)}
        self._out_index = out_index
        ext_index = {id(n): k for k, n in enumerate(externals)}
        L: list[str] = []
        first, last = self.members[0], self.members[-1]
        L.append(f"/* row program: %{first.id} .. %{last.id} over rows of "
                 f"{R}x{C}, row by row */")
        L.append(f"int {name}(char *args) {{  /* args: (stored..., inputs...) */")
        L.append(f"#define T {T}")
        for k in range(len(stored)):
            L.append(f"    char *o{k} = ITEM(args, {k});")
        for k in range(len(externals)):
            L.append(f"    char *e{k} = ITEM(args, {len(stored) + k});")
        if sized:
            L.append(f"    intptr_t tg_n = TG_N(args, {len(stored) + len(externals)});")
            L.append("    (void)tg_n;")
        checks = []
        for prefix, nodes in (("o", stored), ("e", externals)):
            for k, n in enumerate(nodes):
                if n.op == "const" and n.value.size == 1:
                    continue
                shape = n.shape
                expect = n.dtype.itemsize
                for d in reversed(range(len(shape))):
                    if shape[d] != 1:
                        checks.append(f"STRIDES({prefix}{k})[{d}] == {expect}")
                    expect *= max(shape[d], 1)
        if checks:
            L.append(f"    if (!TG_LIKELY({' && '.join(checks)})) return 1;")
        for k, n in enumerate(stored):
            L.append(f"    {CTYPES[n.dtype]} *O{k} = ({CTYPES[n.dtype]} *)DATA(o{k});")
        for k, n in enumerate(externals):
            L.append(f"    const {CTYPES[n.dtype]} *E{k} = "
                     f"(const {CTYPES[n.dtype]} *)DATA(e{k});")
        # scratch rows for full values nobody after the run reads
        # Consecutive elementwise members share one loop over the row's columns, their
        # values C locals; a value gets a row array only if a later node reads it (or it
        # is stored).
        groups = self._groups()
        group_of = {id(n): k for k, g in enumerate(groups) for n in g}
        readers: dict[int, set] = {}
        for m in self.members:
            for i in m.inputs:
                readers.setdefault(id(i), set()).add(group_of.get(id(m), -1 - id(m)))
        self._array = {id(n) for n in self.members if self.produced[id(n)] == "full" and (
            id(n) in out_index or readers.get(id(n), set()) - {group_of.get(id(n))})}
        # A value of one cheap op is computed again where a later loop reads it rather
        # than written to a row and read back (the same op on the same operands: the same
        # bits): its operands are literals, inputs of the run, per-row values or rows
        # that stay arrays (GELU+LN: x * x and tanh(...) + 1; 8% faster).
        self._again: set[int] = set()
        for n in self.members:
            if id(n) in self._array and id(n) not in out_index and n.op in RECOMPUTE and \
                    all(self._at_hand(i) for i in n.inputs):
                self._again.add(id(n))
                self._array.discard(id(n))
        temps = [n for n in self.members
                 if id(n) in self._array and id(n) not in out_index]
        temp_of = {id(n): j for j, n in enumerate(temps)}
        if temps:
            L.append(f"    {T} *scratch = ({T} *)malloc(sizeof({T}) * {len(temps) * C});")
            L.append("    if (!scratch) return 1;")
        # a row of values to sum per sum a loop computes (`_group`; at least one)
        slots = max([1] + [sum(self._buffered(n) for n in g) for g in groups])
        if any(_reduction(n) is not None and _reduction(n)[0] == "sum" and
               self.produced[id(n)] not in ("cols",) for n in self.members):
            L.append(f"    T *red = (T *)malloc(sizeof(T) * {slots * C});  /* rows of values "
                     f"to sum */")
            L.append("    if (!red) return 1;")
            self._red = True
        else:
            self._red = False
        accs = [n for n in self.members if self.produced[id(n)] in ("cols", "total")]
        for n in accs:
            op = _reduction(n)[0]
            init = {"sum": "0", "max": "-INFINITY", "min": "INFINITY"}[op]
            if self.produced[id(n)] == "cols":
                L.append(f"    T *acc{n.id} = (T *)malloc(sizeof(T) * {C});")
                L.append(f"    if (!acc{n.id}) return 1;")
                L.append(f"    for (intptr_t j = 0; j < {C}; j++) acc{n.id}[j] = {init};")
            else:
                L.append(f"    double acc{n.id} = {init};")
        for k, n in enumerate(externals):
            if kind_of(n.shape, self.frame) == "scalar" and not (
                    n.op == "const" and n.value.size == 1):
                L.append(f"    const T x{n.id} = (T)E{k}[0];")
        L.append(f"    for (intptr_t r = 0; r < {R}; r++) {{")
        body_start = len(L)
        done: set[int] = set()
        for n in self.members:
            if id(n) in done:
                continue
            kind = self.produced[id(n)]
            ir = [line.strip() for line in format_node(n)]
            if id(n) in group_of:
                group = groups[group_of[id(n)]]
                done |= {id(g) for g in group}
                L += ["        " + line for line in self._group(group, out_index, temp_of,
                                                                ext_index)]
                continue
            L.append(f"        /* {ir[0]}{' ...' if len(ir) > 1 else ''} */")
            if _reduction(n) is not None:
                how = "rows" if kind in ("row", "rows") else kind
                L += ["        " + line for line in self._reduce(n, how, ext_index,
                                                                 out_index)]
            elif kind == "full":
                if id(n) in out_index:
                    L.append(f"        {CTYPES[n.dtype]} *v{n.id} = O{out_index[id(n)]} + "
                             f"r * {C};")
                else:
                    L.append(f"        T *v{n.id} = scratch + {temp_of[id(n)] * C};")
                body, val = self._element(n, "j", ext_index)
                L.append("        TG_IVDEP")
                L.append(f"        for (intptr_t j = 0; j < {C}; j++) {{")
                L += ["            " + b for b in body]
                L.append(f"            v{n.id}[j] = {val};")
                L.append("        }")
            elif kind == "row":
                body, val = self._element(n, None, ext_index)
                L.append(f"        T s{n.id};")
                L.append("        {")
                L += ["            " + b for b in body]
                L.append(f"            s{n.id} = {val};")
                L.append("        }")
                if id(n) in out_index:
                    L.append(f"        O{out_index[id(n)]}[r] = s{n.id};")
        L[body_start:] = self._prefetch(L[body_start:], [
            (f"O{k}", n.dtype.itemsize, 1) for k, n in enumerate(stored)
            if self.produced[id(n)] == "full"] + [
            (f"E{k}", n.dtype.itemsize, 0) for k, n in enumerate(externals)
            if kind_of(n.shape, self.frame) == "full"])
        L.append("    }")
        for n in accs:
            k = out_index[id(n)]
            if self.produced[id(n)] == "cols":
                L.append(f"    for (intptr_t j = 0; j < {C}; j++) O{k}[j] = acc{n.id}[j];")
                L.append(f"    free(acc{n.id});")
            else:
                L.append(f"    O{k}[0] = (T)acc{n.id};")
        if temps:
            L.append("    free(scratch);")
        if self._red:
            L.append("    free(red);")
        L.append("    return 0;")
        L.append("#undef T")
        L.append("}")
        return "\n".join(L) + "\n"

    def _prefetch(self, body: list[str], streamed: list[tuple]) -> list[str]:
        """The row's loops with, before each, a share of the next row of every streamed
        array (``(name, itemsize, written)``: the inputs and outputs of whole rows) asked
        of memory (`TG_PREFETCH` in c_codegen.HEADER). The hardware prefetcher stops at a
        page's end, so each new row was waited for: measured on the GELU+LN benchmark's row
        program (1024x1024 float32, AVX-512), 2.8 ms without, 2.2 ms with, 2.0 ms with its
        rows in cache. All of it before the first loop (one burst) gained nothing."""
        R, C = self.frame
        loops = [k for k, line in enumerate(body) if line.strip() == "TG_IVDEP"]
        streamed = [s for s in streamed if s[1] * C >= PREFETCH_MIN_BYTES]
        if not loops or not streamed or R < 2:
            return body
        lines = -(-max(size for _, size, _ in streamed) * C // 64)  # cache lines a row
        out, at = [], 0
        for i, k in enumerate(loops):
            lo, hi = 64 * (lines * i // len(loops)), 64 * (lines * (i + 1) // len(loops))
            if hi > lo:
                indent = body[k][:len(body[k]) - len(body[k].lstrip())]
                asks = " ".join(f"TG_PREFETCH({name} + (r + 1) * {C}, {size * C}, {lo}, {hi}, "
                                f"{written});" for name, size, written in streamed)
                out += body[at:k] + [f"{indent}if (r + 1 < {R}) {{ {asks} }}"]
                at = k
        return out + body[at:]

    def _in_loop(self, n: Node) -> bool:
        """Whether a member's values at column j are computed in a loop over the row's
        columns with others (`_groups`): elementwise over whole rows, or a reduction that
        takes its value at j there: a sum (into a row of ``red`` summed after the loop, or
        into a column accumulator) or a max/min over the rows (column accumulators)."""
        red = _reduction(n)
        if red is None:
            return self.produced[id(n)] == "full"
        return red[0] == "sum" or self.produced[id(n)] == "cols"

    def _buffered(self, n: Node) -> bool:
        """A sum over a row whose values a loop writes to a row of ``red``."""
        red = _reduction(n)
        return red is not None and red[0] == "sum" and self.produced[id(n)] != "cols"

    def _groups(self) -> list[list[Node]]:
        """Runs of consecutive members one loop over the row's columns computes
        (`_in_loop`), none reading a reduction of its own run (known after the loop only);
        each holds an elementwise member (a lone reduction has its own loop, `_reduce`).
        One loop instead of one per member: each value is a register rather than a row
        written and read again (measured on the GELU+LN benchmark's row program, its
        rows in cache: 1.90 ms with one loop per reduction, 1.62 ms fused)."""
        groups: list[list[Node]] = []
        current: list[Node] = []
        made: set[int] = set()  # the reductions of the current run
        for n in self.members + [None]:
            if n is not None and self._in_loop(n) and not any(id(i) in made
                                                              for i in n.inputs):
                current.append(n)
                if _reduction(n) is not None:
                    made.add(id(n))
                continue
            if any(_reduction(g) is None for g in current):
                groups.append(current)
            current, made = [], set()
            if n is not None and self._in_loop(n):
                current.append(n)
                if _reduction(n) is not None:
                    made.add(id(n))
        return groups

    def _group(self, group: list, out_index: dict, temp_of: dict, ext_index: dict
               ) -> list[str]:
        """One loop over the columns computing a group's values as C locals (w...), each
        written to its row array where one is needed."""
        C = self.frame[1]
        L = []
        for n in group:
            if _reduction(n) is not None:
                continue
            if id(n) in out_index:
                L.append(f"{CTYPES[n.dtype]} *v{n.id} = O{out_index[id(n)]} + r * {C};")
            elif id(n) in self._array:
                L.append(f"T *v{n.id} = scratch + {temp_of[id(n)] * C};")
        L.append("TG_IVDEP")
        L.append(f"for (intptr_t j = 0; j < {C}; j++) {{")
        self._local = set()
        after: list[str] = []  # the sums over the row, once the loop has its values
        slot = 0
        for n in group:
            ir = format_node(n)[0].strip()
            more = ' ...' if n.op == 'kernel' else ''
            body, val = self._element(n, "j", ext_index)
            red = _reduction(n)
            if red is not None:
                L.append(f"    /* {ir}{more} */")
                L.append("    {")
                L += ["        " + b for b in body]
                L += ["        " + line for line in self._accumulate(n, val, slot, after)]
                L.append("    }")
                slot += self._buffered(n)
                continue
            L.append(f"    T w{n.id};  /* {ir}{more} */")
            L.append("    {")
            L += ["        " + b for b in body]
            L.append(f"        w{n.id} = {val};")
            L.append("    }")
            if id(n) in self._array:
                L.append(f"    v{n.id}[j] = w{n.id};")
            self._local.add(id(n))
        self._local = set()
        L.append("}")
        return L + after

    def _accumulate(self, n: Node, val: str, slot: int, after: list) -> list[str]:
        """Inside a group's loop, the lines that take a reduction's value ``val`` at column
        j; the lines its result needs after the loop go to ``after`` (see `_reduce`, whose
        order of additions this keeps)."""
        op, kind, C = _reduction(n)[0], self.produced[id(n)], self.frame[1]
        if kind == "cols":
            if op == "sum":
                return [f"acc{n.id}[j] += {val};"]
            cmp = ">" if op == "max" else "<"
            return [f"T w = {val};", f"if (w {cmp} acc{n.id}[j] || w != w) acc{n.id}[j] = w;"]
        # a sum over the row: its values in a row of red, or in their own row array
        own = re.fullmatch(r"w(\d+)", val)
        row = re.fullmatch(r"v(\d+)\[j\]", val)
        if own and any(m.id == int(own.group(1)) and id(m) in self._array
                       for m in self.members):
            values, lines = f"v{own.group(1)}", []
        elif row:  # (a row array of an earlier loop)
            values, lines = f"v{row.group(1)}", []
        else:
            values, lines = f"(red + {slot * C})", [f"red[{slot * C} + j] = {val};"]
        if kind == "total":
            after.append(f"acc{n.id} += (T)0 + tg_pairwise({values}, {C});")
        else:
            after.append(f"T s{n.id} = (T)((T)0 + tg_pairwise({values}, {C}));")
            if id(n) in self._out_index:
                after.append(f"O{self._out_index[id(n)]}[r] = s{n.id};")
        return lines

    def _at_hand(self, node: Node) -> bool:
        """Whether a value can be read at any column of any later loop of the row: a
        literal, an input of the run that no stored value overwrites (the plan may put a
        stored row over an input read row by row: an optimizer's new parameter over the
        old), a per-row value or a row array (`_again`)."""
        kind = self.produced.get(id(node))
        if kind is None:
            return (node.op == "const" and node.value.size == 1) or \
                kind_of(node.shape, self.frame) != "full" or \
                (self.overwritten is not None and id(node) not in self.overwritten)
        return kind == "row" or (
            kind == "full" and id(node) in self._array and id(node) not in self._again)

    def _operand(self, node: Node, j: str | None, ext_index: dict) -> str:
        """The C expression of one operand's value at column ``j`` of row r (j None: a
        per-row value)."""
        kind = self.produced.get(id(node))
        if id(node) in getattr(self, "_local", ()):
            return f"w{node.id}"
        if id(node) in getattr(self, "_again", ()):  # (computed again: see c_source)
            return C_OPS[node.op].format(*(self._operand(i, j, ext_index)
                                           for i in node.inputs))
        if kind == "full":
            return f"v{node.id}[{j}]"
        if kind == "row":
            return f"s{node.id}"
        if node.op == "const" and node.value.size == 1:
            return _literal(node.value, KERNEL_TYPES[self.dtype])
        k = ext_index[id(node)]
        where = kind_of(node.shape, self.frame)
        C = self.frame[1]
        if where == "full":
            return f"(T)E{k}[r * {C} + {j}]"
        if where == "row":
            return f"(T)E{k}[r]"
        if where == "col":
            return f"(T)E{k}[{j}]"
        return f"x{node.id}"

    def _element(self, n: Node, j: str | None, ext_index: dict) -> tuple[list[str], str]:
        """Lines computing node ``n`` at column ``j`` (j None: its per-row value), and the
        expression of the result (for a reduction: of the value it reduces)."""
        if n.op in REDUCTIONS:
            return [], self._operand(n.inputs[0], j, ext_index)
        if n.op == "cast":  # (the operand is read as the frame's type already)
            arg = self._operand(n.inputs[0], j, ext_index)
            return [], f"(({arg} != 0) ? (T)1 : (T)0)" if n.dtype == np.bool_ else arg
        if n.op != "kernel":
            args = [self._operand(i, j, ext_index) for i in n.inputs]
            return [], {**C_OPS, **ROW_OPS}[n.op].format(*args)
        lines = []
        steps = n.value[:-1] if n.value[-1].op in REDUCTIONS else n.value
        for s_i, step in enumerate(steps):
            args = []
            for kind, ref in step.refs:
                if kind == "step":
                    args.append(f"t{ref}")
                elif kind == "const":
                    args.append(_literal(ref, KERNEL_TYPES[self.dtype]))
                else:
                    args.append(self._operand(ref, j, ext_index))
            lines.append(f"T t{s_i} = {C_OPS[step.op].format(*args)};")
        if n.value[-1].op in REDUCTIONS:
            kind, ref = n.value[-1].refs[0]
            return lines, f"t{ref}"
        return lines, f"t{len(steps) - 1}"

    def _reduce(self, n: Node, kind: str, ext_index: dict, out_index: dict) -> list[str]:
        op = _reduction(n)[0]
        C = self.frame[1]
        L = ["{"]
        if op == "sum":
            body, val = self._element(n, "j", ext_index)
            if kind == "cols":  # row after row, as NumPy adds over a leading axis
                L.append("    TG_IVDEP")
                L.append(f"    for (intptr_t j = 0; j < {C}; j++) {{")
                L += ["        " + b for b in body]
                L.append(f"        acc{n.id}[j] += {val};")
                L.append("    }")
                L.append("}")
                return L
            # the row's values (unless they are a row array already), then their sum in
            # NumPy's pairwise order
            row = re.fullmatch(r"v(\d+)\[j\]", val) if not body else None
            if row is None:
                L.append("    TG_IVDEP")
                L.append(f"    for (intptr_t j = 0; j < {C}; j++) {{")
                L += ["        " + b for b in body]
                L.append(f"        red[j] = {val};")
                L.append("    }")
            values = f"v{row.group(1)}" if row else "red"
            if kind == "total":  # (the rows' sums added in double)
                L.append(f"    acc{n.id} += (T)0 + tg_pairwise({values}, {C});")
                L.append("}")
                return L
            L.append(f"    T a = (T)0 + tg_pairwise({values}, {C});")
        else:
            cmp = ">" if op == "max" else "<"
            init = "-INFINITY" if op == "max" else "INFINITY"
            body, val = self._element(n, "j", ext_index)
            L.append(f"    T a = {init};")
            if kind == "cols":
                L.append("    TG_IVDEP")
            L.append(f"    for (intptr_t j = 0; j < {C}; j++) {{")
            L += ["        " + b for b in body]
            L.append(f"        T w = {val};")
            if kind == "cols":
                L.append(f"        if (w {cmp} acc{n.id}[j] || w != w) acc{n.id}[j] = w;")
            else:
                L.append(f"        if (w {cmp} a || w != w) a = w;")
            L.append("    }")
            if kind == "cols":
                L.append("}")
                return L
            if kind == "total":
                L.append(f"    if (a {cmp} acc{n.id} || a != a) acc{n.id} = a;")
                L.append("}")
                return L
        L.append(f"    s{n.id} = (T)a;")
        L.append("}")
        if id(n) in out_index:
            L.append(f"O{out_index[id(n)]}[r] = s{n.id};")
        return [f"T s{n.id};"] + L


def find(nodes: list[Node], start: int, hoist: bool = True, any_size: bool = False,
         defer: bool = True) -> RowProgram | None:
    """The row program starting at ``nodes[start]``, or None if none starts there. Constants
    in between do not break a run (their names are bound before it). ``any_size``: however
    small the frame (a program made for every size makes the same choice at each).
    ``hoist``, ``defer``: whether nodes between members may run before the run (reading
    nothing of it) or after it (reading only its sums over the rows)."""
    node = nodes[start]
    dtype = node.dtype
    if node.op in COMPARE:  # (a ReLU's backward mask: the frame is its operands' dtype)
        dtype = next((i.dtype for i in node.inputs if i.dtype in KERNEL_TYPES), None)
    if dtype not in KERNEL_TYPES:
        return None
    shape = node.value[0].shape if node.op == "kernel" else \
        node.inputs[0].shape if node.op in REDUCTIONS else node.shape
    d = _dims(shape)
    if len(shape) < 2 or d[0] < 2 or d[1] < (2 if any_size else MIN_COLUMNS):
        return None
    rows = RowProgram(d, dtype)
    pending: list[Node] = []  # nodes the run passed over, not yet followed by a member
    last, deferred_at = start, {}
    for j, n in enumerate(nodes[start:], start):
        if n.op == "const":
            continue
        if rows.admit(n):
            rows.hoisted += pending
            pending = []
            last = j
            continue
        if defer and rows.deferrable(n, pending):
            rows.deferred.append(n)
            rows.produced[id(n)] = "after"
            deferred_at[id(n)] = j
            continue
        # A node that reads nothing of the run (an optimizer's scalar bias correction)
        # runs before it instead (CProgram checks its memory), and the run goes on.
        if not hoist or len(pending) >= MAX_HOISTED or \
                any(id(i) in rows.produced for i in n.inputs):
            break
        pending.append(n)
    if len(rows.members) < MIN_NODES or (math.prod(d) < MIN_ELEMENTS and not any_size):
        return None
    # (nodes deferred after the last member are simply the nodes after the run)
    for n in [n for n in rows.deferred if deferred_at[id(n)] > last]:
        rows.deferred.remove(n)
        del rows.produced[id(n)]
    return rows


def stored_and_externals(rows: RowProgram, users: dict, outputs: set) -> tuple[list, list]:
    """The members something after the run reads (or the graph returns), and the values
    from before the run its members read (constants of one element excepted: literals)."""
    member = {id(n) for n in rows.members}
    stored = [n for n in rows.members
              if id(n) in outputs or rows.produced[id(n)] in ("cols", "total")
              or any(id(u) not in member for u in users[id(n)])]
    externals: list[Node] = []
    seen: set[int] = set()
    for n in rows.members:
        for i in n.inputs:
            if id(i) in member or id(i) in seen or (i.op == "const" and i.value.size == 1):
                continue
            seen.add(id(i))
            externals.append(i)
    return stored, externals
