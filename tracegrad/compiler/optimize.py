"""The pass pipeline as a driver, and ``tg.explain``: what each pass did to a graph."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from .backends import Backend, get_backend
from .ir import Graph
from .passes import PIPELINE, MemoryPlan, plan_memory
from .passes.plan_memory import VIEWS, peak_without_plan
from .trace import run_traced


@dataclass
class PassRecord:
    name: str
    nodes: int
    kernels: int
    peak_bytes: int
    note: str
    seconds: float


def _kernels(graph: Graph) -> int:
    """Nodes that compute something when the program runs (not constants or views)."""
    return sum(1 for n in graph.nodes if n.op != "const" and n.op not in VIEWS)


def _nodes(graph: Graph) -> int:
    return sum(1 for n in graph.nodes if n.op != "const")


def optimize(graph: Graph, donations: list | None = None, backend: Backend | None = None,
             measure: bool = True) -> tuple[Graph, MemoryPlan, list[PassRecord]]:
    """Run the pass pipeline for ``backend`` (default: NumPy), then plan memory; returns
    the final graph (a new one: ``graph`` is left as it was), its memory plan, and one
    record per pass.

    ``donations`` lists (output index, input node): that output replaces that input (a
    write-back), so the memory plan may compute it in the input's own memory. Without
    ``measure`` the records leave out each pass's peak memory (0: a dynamic variant
    optimizes its graph at every new size, and measuring costs a sixth of that).
    """
    if backend is None:
        backend = get_backend("numpy")
    peak = peak_without_plan if measure else (lambda g: 0)
    records = [PassRecord("trace", _nodes(graph), _kernels(graph), peak(graph),
                          f"{len(graph.nodes)} nodes recorded", 0.0)]
    for name, fn in PIPELINE:
        t0 = time.perf_counter()
        graph, note = fn(graph, backend)
        dt = time.perf_counter() - t0
        records.append(PassRecord(name, _nodes(graph), _kernels(graph),
                                  peak(graph), note, dt))
    t0 = time.perf_counter()
    given = {id(graph.outputs[j]): node for j, node in donations or ()}
    plan = plan_memory(graph, backend, given)
    records.append(PassRecord("plan_memory", _nodes(graph), _kernels(graph), plan.peak_bytes,
                              plan.summary(), time.perf_counter() - t0))
    return graph, plan, records


class Explanation:
    """What compiling a function did, pass by pass; ``str()`` is the table and the final IR."""

    def __init__(self, records: list[PassRecord], graph: Graph, trace_seconds: float,
                 plan: MemoryPlan | None = None, backend: str = "numpy"):
        self.records, self.graph, self.trace_seconds = records, graph, trace_seconds
        self.plan, self.backend = plan, backend
        self.dynamic: list[str] = []  # a compiled function's dynamic variants (dynamic.py)

    def table(self) -> str:
        rows = [("pass", "nodes", "kernels", "peak memory", "time", "what it did")]
        for r in self.records:
            rows.append((r.name, str(r.nodes), str(r.kernels), _bytes(r.peak_bytes),
                         f"{r.seconds * 1e3:.1f} ms" if r.name != "trace"
                         else f"{self.trace_seconds * 1e3:.1f} ms", r.note))
        widths = [max(len(row[i]) for row in rows) for i in range(6)]
        lines = []
        for j, row in enumerate(rows):
            lines.append("  ".join(c.ljust(w) if i in (0, 5) else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(row, widths))).rstrip())
            if j == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def __str__(self) -> str:
        dynamic = "".join(f"\ndynamic variant: {d}" for d in self.dynamic)
        return (self.table() + f"\n\nbackend: {self.backend}{dynamic}\n\nfinal graph:\n"
                + str(self.graph))

    def __repr__(self) -> str:
        return str(self)


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def explain(fn: Callable, *args: Any, backend: str | None = None, **kwargs: Any
            ) -> Explanation:
    """Trace ``fn`` on the example arguments (tensors or `tg.TensorSpec`), run the passes
    for ``backend`` (a compiled function's own, else "auto"), and report each pass's node
    count, kernel count and planned peak memory, with the final IR. Nothing is changed.

    >>> print(tg.explain(lambda x: (x * 2 + 1).relu().sum(), tg.TensorSpec((1024,))))
    """
    if backend is None:
        backend = getattr(fn, "backend", "auto")
    # a compiled function's dynamic variants: which axes follow n, for which sizes
    dynamic = fn.cache_info().dynamic if hasattr(fn, "_dynamic_keys") else []
    fn = getattr(fn, "fn", fn)  # a compiled function: its Python function
    from .values import is_value_program

    if is_value_program(fn, args, kwargs):  # a function of Values: its scalar graph
        from .values_api import explain as explain_values

        return explain_values(fn, *args, backend=backend, **kwargs)
    chosen = get_backend(backend)
    t0 = time.perf_counter()
    graph, _ = run_traced(fn, args, kwargs)
    traced = time.perf_counter() - t0
    graph, plan, records = optimize(graph, backend=chosen)
    out = Explanation(records, graph, traced, plan, _backend_note(backend, chosen, graph, plan))
    out.dynamic = dynamic
    return out


def _backend_note(asked: str, chosen: Backend, graph: Graph, plan: MemoryPlan) -> str:
    """The backend's name, why "auto" passed over the ones it prefers, and what the backend
    says about the graph's kernels (`describe`, where it has one)."""
    from .backends import PREFERENCE

    note = chosen.name
    if asked == "auto":
        for name in PREFERENCE:
            if name == chosen.name:
                break
            try:
                get_backend(name)
            except RuntimeError as e:
                note += f" (auto: {e})"
    describe = getattr(chosen, "describe", None)
    if describe is not None:
        note += "\n" + describe(graph, plan)
    return note
