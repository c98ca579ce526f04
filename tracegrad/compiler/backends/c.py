"""The C backend: the NumPy backend's program, with each fused kernel one C function.

`CProgram` is the NumPy `Program` (same memory plan, same generated Python: matmul, conv,
movement and anything without a C lowering stay on NumPy/BLAS), except that a ``kernel``
node whose steps all have a C form (`c_codegen.C_OPS`) becomes one call of a C loop nest
instead of a sequence of NumPy calls. The C of all kernels of a program is one source file,
compiled once by the system C compiler and cached on disk (`toolchain`); the functions are
called through ctypes with the arrays themselves.

``backend="auto"`` uses it when a C compiler works (`available`), else the NumPy program.
"""

from __future__ import annotations

import ctypes
from typing import Any

from ..ir import Graph, Node
from . import c_codegen, toolchain
from .numpy import NumpyBackend, Program


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

    def fuses(self, op: str) -> bool:
        # a kernel may hold what NumPy fuses; the ops without a C line keep their kernel
        # on NumPy (see CProgram)
        return super().fuses(op)

    def program(self, graph: Graph, plan: Any, check_finite: bool = False) -> "CProgram":
        return CProgram(graph, plan, check_finite)

    def describe(self, graph: Graph) -> str:
        """Per kernel: C or NumPy (and why), and the bytes its C loop reads and writes
        (each input and the output once), for `tg.explain`."""
        lines = []
        for node in graph.nodes:
            if node.op != "kernel":
                continue
            why = c_codegen.why_not(node) or c_codegen.pays(node)
            steps = " ".join(step.op for step in node.value)
            read = sum(i.nbytes for i in node.inputs)
            where = f"C, reads {_bytes(read)}, writes {_bytes(node.nbytes)}" if why is None \
                else f"NumPy: {why}"
            lines.append(f"  %{node.id} kernel [{steps}]: {where}")
        return "\n".join(lines) if lines else "  (no fused kernels)"


C_BACKEND = CBackend()


class CProgram(Program):
    """A graph compiled to Python calling NumPy and C kernels; call it with the arrays."""

    backend = "c"

    def __init__(self, graph: Graph, plan: Any = None, check_finite: bool = False,
                 every_kernel: bool = False):
        # every_kernel: C for every kernel that has a C form, even where NumPy is faster
        # (`c_codegen.pays`): for tests
        self.every_kernel = every_kernel
        self._kernels: list[tuple[str, Node]] = []  # (C name, kernel node)
        self.c_source = ""
        self.library: toolchain.Library | None = None
        self.on_numpy: list[tuple[Node, str]] = []  # kernels left on NumPy, and why
        if plan is None:
            from ..passes.plan_memory import plan_memory
            plan = plan_memory(graph, C_BACKEND)
        super().__init__(graph, plan, check_finite)

    def _emit_kernel(self, node: Node, out: str) -> list[str]:
        reason = c_codegen.why_not(node)
        if reason is None and not self.every_kernel:
            reason = c_codegen.pays(node)
        if reason is not None:
            self.on_numpy.append((node, reason))
            return super()._emit_kernel(node, out)
        name = f"k{node.id}"
        self._kernels.append((name, node))
        # (the ctypes function is bound once the library is built, before `make` runs)
        fn = self._name("k", _Pending(name))
        args = [out] + [f"v{i.id}" for i in node.inputs]
        return [f"{fn}({', '.join(args)})  # C: {name}"]

    def _generate(self, graph: Graph, plan: Any) -> list[str]:
        lines = super()._generate(graph, plan)
        if self._kernels:
            parts = [c_codegen.header()]
            parts += [c_codegen.kernel_source(name, node) for name, node in self._kernels]
            self.c_source = "\n".join(parts)
            self.library = toolchain.build(self.c_source)
            for env_name, value in list(self._env.items()):
                if isinstance(value, _Pending):
                    fn = getattr(self.library.cdll, value.name)
                    n = len(dict(self._kernels)[value.name].inputs) + 1
                    fn.argtypes = [ctypes.py_object] * n
                    fn.restype = None
                    self._env[env_name] = fn
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
        if self.library is not None:
            text += f" ({'disk cache hit' if self.library.cached else 'compiled'})"
        if self.on_numpy:
            why = "; ".join(sorted({r for _, r in self.on_numpy}))
            text += f", {len(self.on_numpy)} on NumPy ({why})"
        return text


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
