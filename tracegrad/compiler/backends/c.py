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
from .numpy import Program


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


class CProgram(Program):
    """A graph compiled to Python calling NumPy and C kernels; call it with the arrays."""

    backend = "c"

    def __init__(self, graph: Graph, check_finite: bool = False, every_kernel: bool = False):
        # every_kernel: C for every kernel that has a C form, even where NumPy is faster
        # (`c_codegen.pays`): for tests
        self.every_kernel = every_kernel
        self._kernels: list[tuple[str, Node]] = []  # (C name, kernel node)
        self.c_source = ""
        self.library: toolchain.Library | None = None
        self.on_numpy: list[tuple[Node, str]] = []  # kernels left on NumPy, and why
        super().__init__(graph, check_finite)

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


class _Pending:
    """A C function's place in the program's names until the library is built."""

    def __init__(self, name: str):
        self.name = name


def check(backend: str) -> None:
    """Raise `toolchain.CompilerNotFound` (or `CompileError`) if ``backend`` is "c" and no
    C compiler works here: the message names the compilers tried and how to install one."""
    if backend == "c":
        problem = available()
        if problem is not None:
            raise toolchain.CompilerNotFound(f"tg.compile(backend='c'): {problem}")


def make_program(backend: str, graph: Graph, check_finite: bool = False) -> Program:
    """The program for ``backend``: "numpy", "c", or "auto" (C when a compiler works,
    else NumPy, with a note saying why)."""
    if backend == "numpy":
        return Program(graph, check_finite)
    check(backend)
    problem = available()
    if problem is None:
        try:
            return CProgram(graph, check_finite)
        except toolchain.CompileError as e:
            if backend == "c":
                raise
            problem = f"compiling its kernels failed: {e}"
    program = Program(graph, check_finite)
    program.note = f"NumPy (auto: the C backend is not available: {problem})"
    return program


make_program.check = check  # (api.py's one name for both)


def program_note(program: Program, backward: Program | None = None) -> str:
    """Which backend ran a variant's program(s), and why: for cache_info and explain."""
    notes = []
    for _what, p in (("forward", program), ("backward", backward)):
        if p is None:
            continue
        if isinstance(p, CProgram):
            notes.append(p.describe())
        else:
            notes.append(getattr(p, "note", "NumPy (backend='numpy')"))
    if len(notes) == 2 and notes[0] != notes[1]:
        return f"{notes[0]}; backward: {notes[1]}"
    return notes[0] if notes else ""
