"""The C backend: the NumPy backend's program, with each fused kernel one C function.

`CProgram` is the NumPy `Program` (same memory plan, same generated Python: matmul, conv,
movement and anything without a C lowering stay on NumPy/BLAS), except that a ``kernel``
node whose steps all have a C form (`c_codegen.C_OPS`) becomes one call of a C loop nest
instead of a sequence of NumPy calls. The C of all kernels of a program is one source file,
compiled once by the system C compiler and cached on disk (`toolchain`); the functions are
called through ctypes with the arrays themselves.

A run of consecutive nodes over one matrix is one row program (`c_rows`).
``backend="auto"`` uses it when a C compiler works (`available`), else the NumPy program.
"""

from __future__ import annotations

import ctypes
import math
from typing import Any

import numpy as np

from ..ir import Graph, Node
from ..passes.plan_memory import VIEWS, _alias_roots, _may_overwrite
from . import c_codegen, c_rows, toolchain
from .numpy import NumpyBackend, Program, _into


def available() -> str | None:
    """None if the C backend can run here (a C compiler compiled a probe, once per
    process), else why not."""
    problem = toolchain.compiler_problem()
    if problem is None:
        try:
            c_codegen.array_layout()
        except RuntimeError as e:
            problem = str(e)
    return problem


class CBackend(NumpyBackend):
    """The NumPy backend's lowering table, with fused kernels lowered to C
    (`c_codegen.C_OPS`); available where a C compiler works."""

    name = "c"

    def available(self) -> tuple[bool, str]:
        problem = available()
        if problem is not None:
            return False, problem
        return True, str(toolchain.find_compiler())

    def program(self, graph: Graph, plan: Any, check_finite: bool = False) -> "CProgram":
        return CProgram(graph, plan, check_finite)

    def one_pass(self, node: Node) -> bool:
        """A kernel with a C form and no reduction is one loop: each element's operands are
        read before its result is written (`CProgram` runs it on NumPy through a temporary
        when it does not take the C loop)."""
        return node.op == "kernel" and node.value[-1].op not in c_codegen.REDUCTIONS and \
            c_codegen.why_not(node) is None

    def describe(self, graph: Graph, plan: Any = None) -> str:
        """Per row program, per segment (a run of small nodes in one C call) and per
        kernel: C or NumPy (and why), and the bytes its C code reads and writes (each input
        and each stored output once; a segment: each member's), for `tg.explain`."""
        lines = []
        inside: set[int] = set()
        runs = {k: run for k, *run in row_programs(graph, plan)} if plan else {}
        k = 0
        while plan and k < len(graph.nodes):
            if k in runs:
                end, rows, stored, externals = runs[k]
                inside |= {id(n) for n in rows.members}
                read = sum(e.nbytes for e in externals)
                wrote = sum(n.nbytes for n in stored)
                hoisted = f" ({len(rows.hoisted)} run before it)" if rows.hoisted else ""
                lines.append(f"  %{rows.members[0].id}..%{rows.members[-1].id}: row program "
                             f"of {len(rows.members)} nodes over {rows.frame}{hoisted}: C, "
                             f"reads {_bytes(read)}, writes {_bytes(wrote)}")
                k = end + 1
                continue
            end = segment_end(graph.nodes, k, runs, plan)
            if end is None:
                k += 1
                continue
            members = [n for n in graph.nodes[k:end + 1] if n.op != "const"]
            inside |= {id(n) for n in members}
            read = sum(i.nbytes for n in members for i in n.inputs)
            wrote = sum(n.nbytes for n in members)
            ops = ", ".join(" ".join(s.op for s in n.value) if n.op == "kernel" else n.op
                            for n in members[:6]) + (", ..." if len(members) > 6 else "")
            lines.append(f"  %{members[0].id}..%{members[-1].id}: segment of {len(members)} "
                         f"small nodes [{ops}]: one C call, reads {_bytes(read)}, writes "
                         f"{_bytes(wrote)}")
            k = end + 1
        for node in graph.nodes:
            if node.op != "kernel" or id(node) in inside:
                continue
            why = c_codegen.why_not(node) or c_codegen.pays(node)
            steps = " ".join(step.op for step in node.value)
            read = sum(i.nbytes for i in node.inputs)
            where = f"C, reads {_bytes(read)}, writes {_bytes(node.nbytes)}" if why is None \
                else f"NumPy: {why}"
            lines.append(f"  %{node.id} kernel [{steps}]: {where}")
        return "\n".join(lines) if lines else "  (no fused kernels)"


C_BACKEND = CBackend()


SEGMENT_SIZE = 1 << 14  # elements up to which a node may join a segment (one C call for
# a run of small nodes: their NumPy calls, or C calls, cost more than their work)
MIN_SEGMENT = 2
# Kernel steps one program puts in C: the C compiler's time grows with them (about 1 ms a
# step with -O3: 10 s at 10,000, and GCC 12 crashed after ten minutes at 100,000); beyond
# this many, NumPy runs the rest of the kernels (a 100,000-op chain compiles in seconds).
C_STEPS = 8192
GIL_BELOW = 1 << 15  # elements up to which a kernel's call keeps the GIL (see _generate)


class CProgram(Program):
    """A graph compiled to Python calling NumPy and C kernels; call it with the arrays."""

    backend = "c"

    def __init__(self, graph: Graph, plan: Any = None, check_finite: bool = False,
                 every_kernel: bool = False, sized: int | None = None):
        # every_kernel: C for every kernel that has a C form, even where NumPy is faster
        # (`c_codegen.pays`): for tests.
        # sized: the size n of the graph, for a program made for every size
        # (dynamic_program.py): each C call is handed n (``nbox``), the C takes the same
        # choices at every size (no size thresholds), and the C is compiled there, once,
        # for every size (not here)
        self.sized = sized
        self.every_kernel = every_kernel or sized is not None
        self._kernels: list[tuple[str, Node]] = []  # (C name, kernel node)
        self.c_source = ""
        self.library: toolchain.Library | None = None
        self._vector = False  # the C takes tanh from glibc's vector math library
        self._c_steps = 0  # kernel steps put in C so far (at most C_STEPS)
        self.on_numpy: list[tuple[Node, str]] = []  # kernels left on NumPy, and why
        self._rows: list[tuple] = []  # (C name, RowProgram, stored, externals)
        self._segments: list[tuple[str, list]] = []  # (C name, [(kernel name, kernel)])
        self._numpy_kernels = False  # (while writing a row program's NumPy fallback)
        if plan is None:
            from ..passes.plan_memory import plan_memory
            plan = plan_memory(graph, C_BACKEND)
        super().__init__(graph, plan, check_finite)

    def __call__(self, *arrays: np.ndarray) -> tuple:
        # The C kernels read each operand's data pointer and strides from the object itself:
        # anything but an ndarray (a NumPy scalar, a float) would be read as garbage.
        for k, a in enumerate(arrays):
            if not isinstance(a, np.ndarray):
                raise TypeError(
                    f"a compiled C program takes NumPy arrays: input {k} is a "
                    f"{type(a).__name__}; pass np.asarray(value)")
        return self.run(*arrays)

    def _body(self, graph: Graph, plan: Any) -> list[str]:
        """The NumPy program's statements, with each run of nodes that a row program can
        compute (`c_rows`) one call of it, the same nodes on NumPy in its fallback."""
        if self.check_finite:
            return super()._body(graph, plan)
        runs = {k: run for k, *run in row_programs(graph, plan, self.sized is not None)}
        body: list[str] = []
        k = 0
        while k < len(graph.nodes):
            run = runs.get(k)
            if run is None:
                end = self._segment_end(k, runs)
                if end is not None:
                    body += self._segment_lines(range(k, end + 1), plan)
                    k = end + 1
                    continue
                body += self._node_lines(k, graph.nodes[k], plan)
                k += 1
                continue
            end, rows, stored, externals = run
            body += self._row_lines(rows, stored, externals, range(k, end + 1), plan)
            k = end + 1
        return body

    def _in_segment(self, node: Node) -> Node | None:
        return segment_kernel(node, self.plan, self.sized is not None)

    def _size_arg(self) -> list[str]:
        """The last item of a C call's tuple in a sized program: the size n."""
        if self.sized is None:
            return []
        if "nbox" not in self._env:
            self._env["nbox"] = np.array(self.sized, np.int64)
        return ["nbox"]

    def _segment_end(self, k: int, runs: dict) -> int | None:
        if self.check_finite or self._numpy_kernels or self._c_steps >= C_STEPS:
            return None
        return segment_end(self.graph.nodes, k, runs, self.plan, self.sized is not None,
                           C_STEPS - self._c_steps)

    def _segment_lines(self, span: range, plan: Any) -> list[str]:
        """One C call for the nodes of ``span`` (see `_segment_call`), then the dels."""
        nodes = self.graph.nodes
        lines = []
        for j in span:
            if nodes[j].op == "const":
                lines += self._emit(nodes[j], plan)
        lines += self._segment_call([nodes[j] for j in span if nodes[j].op != "const"], plan)
        for j in span:
            for dead in plan.free_after.get(j, ()):
                if dead.op not in ("input", "const") and id(dead) not in plan.buffer_of:
                    lines.append(f"del v{dead.id}")
        return lines

    def _segment_call(self, members: list, plan: Any) -> list[str]:
        """One C call for ``members``: each writes where the NumPy program would put its
        value (bound first), in order, by its kernel's C body."""
        first, last = members[0], members[-1]
        lines = [f"# %{first.id}..%{last.id}: a segment of {len(members)} nodes in one C call"]
        kernels, args = [], []
        for n in members:
            kernel = self._in_segment(n)
            kernels.append((f"k{n.id}", kernel))
            self._c_steps += len(kernel.value)
            lines.append(f"# %{n.id}:{n.type_str()} = {n.op}"
                         + (f" [{' '.join(s.op for s in n.value)}]" if n.op == "kernel" else ""))
            lines.append(self._place(n, plan))
            args += [f"v{n.id}"] + [_array(i) for i in kernel.inputs]
        name = f"s{first.id}"
        self._segments.append((name, kernels))
        fn = self._name("k", _Pending(name))
        lines.append(f"{fn}(({', '.join(args + self._size_arg())},))  # C: {name}")
        return lines

    def _hoisted_lines(self, hoisted: list, plan: Any) -> list[str]:
        """The nodes a row program runs before itself, in order: consecutive ones that a
        segment takes in one C call (`MIN_SEGMENT` or more), the others as NumPy runs them."""
        lines: list[str] = []
        group: list = []
        for node in hoisted + [None]:
            if node is not None and not self.check_finite and \
                    self._in_segment(node) is not None:
                group.append(node)
                continue
            if len(group) >= MIN_SEGMENT:
                lines += self._segment_call(group, plan)
            else:
                for n in group:
                    lines += self._emit(n, plan)
            group = []
            if node is not None:
                lines += self._emit(node, plan)
        return lines

    def _row_lines(self, rows: Any, stored: list, externals: list, span: range,
                   plan: Any) -> list[str]:
        nodes = self.graph.nodes
        first, last = rows.members[0], rows.members[-1]
        lines = [f"# %{first.id}..%{last.id}: a row program over {rows.frame} "
                 f"({len(rows.members)} nodes, C)"]
        member = {id(n) for n in rows.members}
        hoisted = {id(n) for n in rows.hoisted}
        after = []
        for j in span:
            if nodes[j].op == "const":
                lines += self._emit(nodes[j], plan)
        lines += self._hoisted_lines(list(rows.hoisted), plan)
        for j in span:
            node = nodes[j]
            if id(node) in hoisted:  # (its dels wait until after the run)
                after += [f"del v{dead.id}" for dead in plan.free_after.get(j, ())
                          if dead.op not in ("input", "const")
                          and id(dead) not in plan.buffer_of]
        lines += [self._place(n, plan) for n in stored]
        name = f"r{first.id}"
        self._rows.append((name, rows, stored, externals))
        fn = self._name("k", _Pending(name))
        args = ", ".join([f"v{n.id}" for n in stored] + [_array(n) for n in externals]
                         + self._size_arg())
        lines.append(f"if {fn}(({args},)):  # C: {name}; 1: an array is not C-contiguous")
        self._numpy_kernels = True
        deferred = {id(n) for n in rows.deferred}
        later = []  # indices of the nodes that run after the run, on either path
        for j in span:
            node = nodes[j]
            if node.op == "const" or id(node) in hoisted:
                continue
            if id(node) in deferred:
                later.append(j)
                continue
            lines.append(f"    # %{node.id}:{node.type_str()} = {node.op}")
            lines += ["    " + line for line in self._emit(node, plan)]
            for dead in plan.free_after.get(j, ()):
                if dead.op in ("input", "const") or id(dead) in plan.buffer_of:
                    continue
                if id(dead) in member:
                    lines.append(f"    del v{dead.id}")
                else:
                    after.append(f"del v{dead.id}")
        self._numpy_kernels = False
        for j in later:
            lines += self._node_lines(j, nodes[j], plan)
        return lines + after

    def _emit(self, node: Node, plan: Any) -> list[str]:
        if self._numpy_kernels and id(node) in plan.buffer_of:
            # A row program's NumPy fallback (an array that is not C-contiguous: rare)
            # writes into new memory: the pool then holds only the buffers the C calls and
            # the other nodes use (a 1024x1024 GELU + layer norm kept 16 MiB for it).
            v = f"v{node.id}"
            return ([f"{v} = np.empty({node.shape!r}, {self._name('d', node.dtype)})"]
                    + _into(self, node, [f"v{i.id}" for i in node.inputs], v))
        return super()._emit(node, plan)

    def _emit_kernel(self, node: Node, out: str) -> list[str]:
        if self._numpy_kernels:
            return self._numpy_kernel(node, out)
        reason = c_codegen.why_not(node)
        if reason is None and not self.every_kernel:
            reason = c_codegen.pays(node)
        if reason is None and self._c_steps + len(node.value) > C_STEPS:
            reason = (f"the program's C would pass {C_STEPS} kernel steps (the C compiler's "
                      f"time grows with them)")
        if reason is not None:
            self.on_numpy.append((node, reason))
            return self._numpy_kernel(node, out)
        self._c_steps += len(node.value)
        name = f"k{node.id}"
        self._kernels.append((name, node))
        # (the ctypes function is bound once the library is built, before `make` runs)
        fn = self._name("k", _Pending(name))
        args = [_array(i) for i in node.inputs]
        if node.value[-1].op in c_codegen.REDUCTIONS and writes_over_operand(node, self.plan):
            # The memory plan put the result over an operand that dies here, as NumPy's
            # kernel (chain in a scratch buffer, then the reduction) allows; the C loop
            # would overwrite values it still reads: a fresh result, copied over.
            dtype = self._name("d", node.dtype)
            return [f"_t = np.empty({node.shape!r}, {dtype})",
                    f"{fn}((_t, {', '.join(args + self._size_arg())},))  # C: {name}",
                    f"np.copyto({out}, _t)"]
        return [f"{fn}(({', '.join([out] + args + self._size_arg())},))  # C: {name}"]

    def _numpy_kernel(self, node: Node, out: str) -> list[str]:
        """The NumPy backend's steps of a kernel; through a temporary when the plan put the
        result over an operand a later step reads (`CBackend.one_pass`: right for the C loop,
        not for NumPy's steps, the first of which would overwrite it)."""
        if not self._late_overwrite(node):
            return super()._emit_kernel(node, out)
        dtype = self._name("d", node.dtype)
        return [f"_t = np.empty({node.shape!r}, {dtype})",
                *super()._emit_kernel(node, "_t"), f"np.copyto({out}, _t)"]

    def _late_overwrite(self, node: Node) -> bool:
        if not hasattr(self, "_base"):
            self._base = _alias_roots(self.graph)
        return any(not _may_overwrite(node, i, self._base)
                   for i in overwritten(node, self.plan))

    def _place(self, n: Node, plan: Any) -> str:
        """The line that binds ``v<id>`` to where the plan puts ``n``'s value, as the NumPy
        code would (the input it overwrites, new memory, or its pooled buffer), for a C
        call that writes it."""
        target = plan.into_input.get(id(n))
        if target is not None:
            return f"v{n.id} = v{target.id}"
        if id(n) in plan.buffer_of and id(n) not in plan.fresh:
            return f"v{n.id} = {self._buffer(plan.buffer_of[id(n)], n.shape, n.dtype)}"
        return f"v{n.id} = np.empty({n.shape!r}, {self._name('d', n.dtype)})"

    def _generate(self, graph: Graph, plan: Any) -> list[str]:
        lines = super()._generate(graph, plan)
        if self._kernels or self._rows or self._segments:
            sized = self.sized is not None
            parts = [c_codegen.kernel_source(name, node, sized)
                     for name, node in self._kernels]
            for name, kernels in self._segments:
                parts += [c_codegen.kernel_source(k, node, sized) for k, node in kernels]
                parts.append(_segment_source(name, kernels, sized))
            parts += [rows.c_source(name, stored, externals, sized)
                      for name, rows, stored, externals in self._rows]
            # (the probe of the vector math library only when a kernel would use it)
            self._vector = any(f in part for part in parts
                               for f in c_codegen.VECTOR_FUNCTIONS) and toolchain.vector_math()
            self.c_source = "\n".join([c_codegen.header(self._vector), *parts])
            # A small kernel keeps the GIL (ctypes' PyDLL: a cheaper call); a large one and
            # a row program let other threads run meanwhile (CDLL).
            small = {name for name, node in self._kernels if node.value[0].shape and
                     int(np.prod(node.value[0].shape)) <= GIL_BELOW}
            small |= {name for name, _ in self._segments}
            self._small = small
            if not sized:
                self.library = link(self.c_source, self._env, small,
                                    {name for name, *_ in self._rows}, self._vector)
        return lines

    def source(self) -> str:
        """The generated Python, then the C of its kernels (each with its IR in a
        comment)."""
        if not self.c_source:
            return self.source_text
        where = f" (compiled to {self.library.path})" if self.library else ""
        return (self.source_text + f"\n# ---- C kernels{where}\n"
                + "\n".join("# " + line if line else "#"
                            for line in self.c_source.splitlines()) + "\n")

    def describe(self) -> str:
        """One line on what ran where, for explain and cache_info."""
        n = len(self._kernels)
        text = f"C backend: {n} kernel(s) in C"
        if self._rows:
            text += f", {len(self._rows)} row program(s)"
        if self._segments:
            text += (f", {len(self._segments)} segment(s) of "
                     f"{sum(len(k) for _, k in self._segments)} node(s)")
        if self.library is not None:
            text += f" ({'disk cache hit' if self.library.cached else 'compiled'})"
        if self.on_numpy:
            why = "; ".join(sorted({r for _, r in self.on_numpy}))
            text += f", {len(self.on_numpy)} on NumPy ({why})"
        return text


def link(c_source: str, env: dict, small: set, rows: set,
         vector_math: bool = False) -> toolchain.Library:
    """Build ``c_source`` (or find it in the cache; ``vector_math``: with glibc's vector
    math library) and put its functions in ``env`` in place of their `_Pending` names:
    those named in ``small`` keep the GIL, the row programs (``rows``) return an int."""
    library = toolchain.build(c_source, vector_math=vector_math)
    pydll = ctypes.PyDLL(str(library.path)) if small else None
    for env_name, value in list(env.items()):
        if isinstance(value, _Pending):
            fn = getattr(pydll if value.name in small else library.cdll, value.name)
            fn.argtypes = [ctypes.py_object]
            fn.restype = ctypes.c_int if value.name in rows else None
            env[env_name] = fn
    return library


def segment_kernel(node: Node, plan: Any, any_size: bool = False) -> Node | None:
    """The kernel a segment runs for ``node`` (itself, or the node as a kernel of one
    step), or None if it cannot be in one: small (`SEGMENT_SIZE` elements, unless
    ``any_size``), with a C form, and memory of its own from the plan to write."""
    if node.op == "kernel":
        kernel = node
    elif node.op in c_codegen.C_OPS or node.op in c_codegen.REDUCTIONS or \
            node.op in c_codegen.EXTRA_OPS:
        if not (id(node) in plan.fresh or id(node) in plan.buffer_of
                or id(node) in plan.into_input):
            return None
        kernel = c_codegen.as_kernel(node)
    else:
        return None
    if c_codegen.why_not(kernel) is not None:
        return None
    first = kernel.value[0]
    size = math.prod(first.shape) if first.op not in c_codegen.REDUCTIONS else \
        math.prod(kernel.inputs[0].shape)
    if (size > SEGMENT_SIZE and not any_size) or (kernel.value[-1].op in c_codegen.REDUCTIONS
                                                  and writes_over_operand(node, plan)):
        return None
    return kernel


def segment_end(nodes: list, k: int, runs: dict, plan: Any, any_size: bool = False,
                steps: int = C_STEPS) -> int | None:
    """The last node of the segment starting at node k, or None if none does: a run of
    consecutive nodes that `segment_kernel` takes (constants in between, no row program:
    ``runs`` holds where those start), at least `MIN_SEGMENT` of them, run by one C
    function, with at most ``steps`` kernel steps in all."""
    end, members, j = None, 0, k
    while j < len(nodes) and j not in runs:
        node = nodes[j]
        if node.op != "const":
            kernel = segment_kernel(node, plan, any_size)
            if kernel is None or len(kernel.value) > steps:
                break
            steps -= len(kernel.value)
            members += 1
            end = j
        j += 1
    return end if members >= MIN_SEGMENT else None


def overwritten(node: Node, plan: Any) -> list[Node]:
    """The operands of ``node`` in whose memory the plan puts its value."""
    target = plan.into_input.get(id(node))
    mine = plan.buffer_of.get(id(node))
    return [i for i in node.inputs
            if (target is not None and _root(i) is _root(target))
            or (mine is not None and plan.buffer_of.get(id(_root(i))) == mine)]


def writes_over_operand(node: Node, plan: Any) -> bool:
    return bool(overwritten(node, plan))


def row_programs(graph: Graph, plan: Any, any_size: bool = False) -> list[tuple]:
    """The row programs of a graph (see `c_rows`), as (first node index, last node index,
    RowProgram, stored members, external inputs), in order and not overlapping
    (``any_size``: see `c_rows.find`)."""
    users = graph.users()
    outputs = {id(o) for o in graph.outputs}
    nodes = graph.nodes
    found = []
    k = 0
    while k < len(nodes):
        for hoist, defer in ((True, True), (True, False), (False, False)):
            rows = c_rows.find(nodes, k, hoist, any_size, defer)
            if rows is not None:
                stored, externals = c_rows.stored_and_externals(rows, users, outputs)
                if _safe(rows, stored, externals, plan):
                    written = set().union(*(_destination(n, plan) for n in stored))
                    rows.overwritten = {id(e) for e in externals
                                        if _memory(e, plan) & written}
                    break
                rows = None
        if rows is None:
            k += 1
            continue
        end = k + next(j for j, n in enumerate(nodes[k:]) if n is rows.members[-1])
        found.append((k, end, rows, stored, externals))
        k = end + 1
    return found


def _segment_source(name: str, kernels: list, sized: bool = False) -> str:
    """``void name(args)``: each kernel's body in turn, on its slice of the tuple (then the
    size, ``sized``)."""
    lines = [f"/* segment: {', '.join(k for k, _ in kernels)}, in order */",
             f"void {name}(char *args) {{",
             "    char **it = &ITEM(args, 0);"]
    size = f"TG_N(args, {sum(1 + len(kernel.inputs) for _, kernel in kernels)})" \
        if sized else "0"
    at = 0
    for k, kernel in kernels:
        lines.append(f"    {k}_body(it + {at}, {size});")
        at += 1 + len(kernel.inputs)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _root(n: Node) -> Node:
    while n.op in VIEWS:
        n = n.inputs[0]
    return n


def _memory(n: Node, plan: Any) -> set:
    """Keys of the memory that holds ``n``'s value (its root's node, its buffer)."""
    r = _root(n)
    keys = {("node", id(r))}
    if id(r) in plan.buffer_of:
        keys.add(("buffer", plan.buffer_of[id(r)]))
    return keys


def _destination(n: Node, plan: Any) -> set:
    """Keys of the memory the plan puts ``n``'s value in (see `_memory`)."""
    dest = set()
    if id(n) in plan.buffer_of:
        dest.add(("buffer", plan.buffer_of[id(n)]))
    if id(n) in plan.scratch_of:
        dest.add(("buffer", plan.scratch_of[id(n)]))
    target = plan.into_input.get(id(n))
    if target is not None:
        dest |= _memory(target, plan)
    return dest


def _safe(rows: Any, stored: list, externals: list, plan: Any) -> bool:
    """Whether no stored row of the run lands in memory that an input it reads as a whole
    (per row, per column, scalar) occupies: a stored row may overwrite only an input it reads
    row by row; and whether the nodes run before the run (hoisted) leave what it reads
    alone."""
    def memory(n: Node) -> set:
        return _memory(n, plan)

    def destination(n: Node) -> set:
        return _destination(n, plan)

    whole = set()
    for e in externals:
        if c_rows.kind_of(e.shape, rows.frame) != "full":
            whole |= memory(e)
    if any(destination(n) & whole for n in stored):
        return False
    # Every stored value is read after the run, which writes them all together: no two may
    # share memory. (The plan may pair two whose order it saw as one dying before the other
    # is made: a loss whose division the run defers, and a sum the run makes after it.)
    # (Where each lands: its buffer or the input it overwrites; not the scratch buffer a
    # kernel's plan gives it, which a row program does not use.)
    seen: set = set()
    for n in stored:
        dest = {("buffer", plan.buffer_of[id(n)])} if id(n) in plan.buffer_of else set()
        if id(n) in plan.into_input:
            dest |= memory(plan.into_input[id(n)])
        if dest & seen:
            return False
        seen |= dest
    # Row r of a stored value lands on row r of an input read row by row only if their
    # rows are as long in bytes: with wider elements (float64 over float32) it would land
    # on rows the program has not read yet.
    for e in externals:
        if c_rows.kind_of(e.shape, rows.frame) == "full" and any(
                n.dtype.itemsize > np.dtype(e.dtype).itemsize and destination(n) & memory(e)
                for n in stored):
            return False
    # A hoisted node must not write memory holding a value the run reads, unless that
    # value is itself a hoisted node's, made after it.
    hoisted_at = {id(h): i for i, h in enumerate(rows.hoisted)}
    read = [(memory(e), hoisted_at.get(id(e), -1)) for e in externals]
    for i, h in enumerate(rows.hoisted):
        dest = destination(h)
        if any(dest & keys and made < i for keys, made in read):
            return False
    # A hoisted node's value outlives the run (a later node reads it), so no member may
    # write where it lies: the plan let a member and a node after it share a buffer, but
    # hoisting runs that node first (two AdamW weight-decay terms of the GPT step did).
    written = set().union(*(destination(m) for m in rows.members))
    if any(destination(h) & written for h in rows.hoisted):
        return False
    # A deferred node runs after the run: what it reads from before the run must still be
    # there (no member or hoisted node writes it), and it must not write what the run reads
    # or writes.
    written |= set().union(*(destination(h) for h in rows.hoisted))
    run = {id(n) for n in rows.members + rows.deferred}
    read_by_run = set().union(*(memory(e) for e in externals))
    for d in rows.deferred:
        reads = set().union(*(memory(i) for i in d.inputs if id(i) not in run))
        if reads & written or destination(d) & (written | read_by_run):
            return False
    return True


def _array(node: Node) -> str:
    """The name of a value handed to C, which reads it as an ndarray: an integer index
    (``x[0, 1]``) gives NumPy's scalar object instead, made an array first."""
    return f"np.asarray(v{node.id})" if node.op == "getitem" else f"v{node.id}"


def _bytes(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KiB" if n < 1 << 20 else \
        f"{n / (1 << 20):.1f} MiB"


class _Pending:
    """A C function's place in the program's names until the library is built."""

    def __init__(self, name: str):
        self.name = name


def program_note(program: Any, backward: Any = None, requested: str = "auto") -> str:
    """Which backend ran a variant's program(s), and why: for cache_info."""
    notes = []
    for p in (program, backward):
        if p is None:
            continue
        if isinstance(p, CProgram):
            notes.append(p.describe())
        elif requested == "auto":
            notes.append(f"NumPy (auto: the C backend is not available: {available()})")
        else:
            notes.append(f"NumPy (backend={requested!r})")
    if len(notes) == 2 and notes[0] != notes[1]:
        return f"{notes[0]}; backward: {notes[1]}"
    return notes[0] if notes else ""
