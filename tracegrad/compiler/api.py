"""``tg.compile`` and ``tg.explain``: trace once, optimize, run the compiled program after.

A compiled function keeps a cache of variants, one per guard: argument shapes, dtypes and
``requires_grad``, the values of plain Python arguments, grad mode, the ``training`` flags of
the modules it uses, and the identity, shape and dtype of every tensor it captured. A call
that matches no variant traces a new one (and `cache_info()` says why). The first call of
a new function runs eagerly, so that lazily created state (an optimizer's moments) exists
before anything is captured; the second call traces.
"""

from __future__ import annotations

import dis
import functools
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .. import autograd
from ..gradarray import GradArray
from ..ops.base import rule_facts
from ..tensor import Tensor, _leaf
from .backends.numpy import Program
from .entry import Miss, build_entry
from .ir import Graph
from .passes import PIPELINE
from .passes.plan_memory import VIEWS, peak_without_plan
from .trace import Capture, TensorSpec, build_tree, flatten_args, paused_gc, run_traced, tensor_mod

MAX_VARIANTS = 8  # compiles after which tg.compile warns
MAX_KEPT = 32  # variants kept per compiled function (the oldest is dropped)


def _advice(reason: str) -> str:
    """What to do about a function that keeps recompiling, by the last reason."""
    if "hyper-parameter" in reason:
        return ("A learning-rate schedule changes a float lr, which the program holds as a "
                "constant: give the optimizer a tensor, e.g. SGD(params, lr=tg.tensor(0.1)); "
                "schedulers then change it in place and nothing recompiles.")
    if "global or closure variable" in reason or "Python values" in reason:
        return ("A number the function reads changes from call to call: pass it as a tensor "
                "argument (tg.tensor(x)), which is an input of the program, not a constant.")
    return "Every new shape or flag compiles a new variant: pad inputs to a few fixed shapes."


# ---------------------------------------------------------------- optimizing


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


def optimize(graph: Graph, donations: list | None = None) -> tuple[Graph, list[PassRecord]]:
    """Run the pass pipeline; returns the final graph and one record per pass.

    ``donations`` lists (output index, input node): that output replaces that input (a
    write-back), so the memory plan may compute it in the input's own memory.
    """
    records = [PassRecord("trace", _nodes(graph), _kernels(graph), peak_without_plan(graph),
                          f"{len(graph.nodes)} nodes recorded", 0.0)]
    for name, fn in PIPELINE:
        if name == "plan_memory" and donations:
            graph.donations = {id(graph.outputs[j]): node for j, node in donations}
        t0 = time.perf_counter()
        graph, note = fn(graph)
        dt = time.perf_counter() - t0
        peak = graph.memory_plan.peak_bytes if name == "plan_memory" else \
            peak_without_plan(graph)
        records.append(PassRecord(name, _nodes(graph), _kernels(graph), peak, note, dt))
    return graph, records


class Explanation:
    """What compiling a function did, pass by pass; ``str()`` is the table and the final IR."""

    def __init__(self, records: list[PassRecord], graph: Graph, trace_seconds: float):
        self.records, self.graph, self.trace_seconds = records, graph, trace_seconds

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
        return self.table() + "\n\nfinal graph:\n" + str(self.graph)

    def __repr__(self) -> str:
        return str(self)


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def explain(fn: Callable, *args: Any, **kwargs: Any) -> Explanation:
    """Trace ``fn`` on the example arguments (tensors or `tg.TensorSpec`), run the passes,
    and report each pass's node count, kernel count and planned peak memory, with the final
    IR. Nothing is changed.

    >>> print(tg.explain(lambda x: (x * 2 + 1).relu().sum(), tg.TensorSpec((1024,))))
    """
    if isinstance(fn, CompiledFunction):
        fn = fn.fn
    t0 = time.perf_counter()
    graph, _ = run_traced(fn, args, kwargs)
    traced = time.perf_counter() - t0
    graph, records = optimize(graph)
    return Explanation(records, graph, traced)


# ---------------------------------------------------------------- variants and guards


@dataclass
class Variant:
    graph: Graph
    program: Program
    capture: Capture
    feeders: list  # per graph input: ("arg", k) | ("data", T) | ("grad", T)
    n_user_outputs: int
    modules: list  # the Modules whose training flags were guarded
    training: tuple
    structure_epoch: int
    direct_refs: list  # (getter, "tensor" | "value", id or value): what the function names
    records: list = field(default_factory=list)
    compile_seconds: float = 0.0
    backward: Any = None  # a BackwardProgram when the outputs are differentiable
    settings: list = field(default_factory=list)  # (what, dict, keys, values at trace time)
    n_saved: int = 0
    arg_types: list = field(default_factory=list)  # (shape, dtype, requires_grad) per tensor
    grad_enabled: bool = True

    def __post_init__(self) -> None:
        self._owns = [self.program.owns(k) for k in range(len(self.graph.outputs))]
        # A user output that is a gradient the function also wrote (``return loss, x.grad``)
        # is handed out as that very ``.grad`` tensor, as in eager mode: no copy.
        outs, k = self.graph.outputs, self.n_user_outputs + len(self.capture.data_writes)
        self._grad_alias: dict[int, Any] = {}
        for t, node in self.capture.grad_writes:
            if node is None:
                continue
            for i in range(self.n_user_outputs):
                if outs[i] is outs[k] and i not in self._grad_alias:
                    j = self.capture.arg_index.get(id(t)) if self.capture.arg_index else None
                    self._grad_alias[i] = ("arg", j) if j is not None else ("tensor", t)
                    # the .grad takes the program's new memory that output i would have had
                    self._owns[k], self._owns[i] = self._owns[k] or self._owns[i], False
            k += 1
        self.entry = build_entry(self, tensor_mod._structure_epoch, autograd._mode)

    def finish(self, outs: tuple) -> tuple:
        """The user's outputs of a run; keeps the values a compiled backward will need."""
        k = len(outs) - self.n_saved
        self.saved = [a if self._owns[k + j] else np.array(a, copy=True)
                      for j, a in enumerate(outs[k:])] if self.n_saved else []
        return outs[: self.n_user_outputs]


class CompiledBackward:
    """The pseudo-primitive that a differentiable compiled output points to: its VJP runs
    the compiled backward program on the values the forward program saved."""

    name = "compiled"
    kind = "compiled"
    passes_gradient = False

    def __init__(self, backward: "BackwardProgram", saved: list, which: int, n_outputs: int):
        self.backward, self.saved, self.which, self.n_outputs = backward, saved, which, n_outputs

    def vjp(self, g: Tensor, out: Tensor, *targets: Tensor) -> tuple:
        return self.backward.run(self.saved, self.which, g, targets)

    reads, per_input, arithmetic = rule_facts(vjp)  # as a primitive's (ops.base)


class BackwardProgram:
    """The backward half of a differentiable compiled function: (saved values, cotangents)
    -> gradients for each target (argument or captured tensor that requires grad)."""

    def __init__(self, graph: Graph, cot_shapes: list):
        self.graph, self.records = optimize(graph)
        self.program = Program(self.graph)
        self.cot_shapes = cot_shapes  # (shape, dtype) per differentiable output

    def run(self, saved: list, which: int, g: Tensor, targets: tuple) -> tuple:
        cots = [np.zeros(shape, dtype) for shape, dtype in self.cot_shapes]
        cots[which] = np.asarray(g.data, dtype=self.cot_shapes[which][1])
        outs = self.program(*saved, *cots)
        if isinstance(g, GradArray):
            return tuple(GradArray(np.array(o, copy=True)) for o in outs)
        return tuple(_leaf(np.array(o, copy=True)) for o in outs)


def _split_backward(graph: Graph, capture: Capture) -> tuple[Graph, Graph, int]:
    """Partition a joint forward+backward graph: the forward part also outputs every value
    the backward part needs (AOTAutograd's "save what is needed" partition)."""
    from .ir import Node, walk_topological

    n_grads = capture.n_grad_outputs
    fwd_outputs = graph.outputs[: len(graph.outputs) - n_grads]
    grad_outputs = graph.outputs[len(graph.outputs) - n_grads:]
    cot_nodes = [n for _, n in capture.cotangents]
    depends = {id(n) for n in cot_nodes}
    for n in graph.nodes:
        if any(id(i) in depends for i in n.inputs):
            depends.add(id(n))
    backward_nodes = [n for n in walk_topological(grad_outputs)
                      if id(n) in depends and n.op != "input"]
    saved: list = []
    seen: set[int] = set()
    for n in backward_nodes:
        for i in n.inputs:
            if id(i) not in depends and i.op != "const" and id(i) not in seen:
                seen.add(id(i))
                saved.append(i)
    for o in grad_outputs:  # a gradient that does not depend on the cotangents at all
        if id(o) not in depends and o.op != "const" and id(o) not in seen:
            seen.add(id(o))
            saved.append(o)
    forward = Graph([n for n in graph.inputs if id(n) not in depends],
                    [n for n in graph.nodes if id(n) not in depends],
                    list(fwd_outputs) + saved)
    mapping: dict[int, Node] = {}
    b_inputs = []
    for n in saved:
        c = Node("input", (), {}, n.shape, n.dtype, name="saved")
        mapping[id(n)] = c
        b_inputs.append(c)
    for n in cot_nodes:
        c = Node("input", (), {}, n.shape, n.dtype, name=n.name)
        mapping[id(n)] = c
        b_inputs.append(c)
    b_nodes = []

    def mapped(i: Node) -> Node:
        if id(i) not in mapping:  # a constant used by the backward part
            c = Node("const", (), {}, i.shape, i.dtype, value=i.value)
            mapping[id(i)] = c
            b_nodes.append(c)
        return mapping[id(i)]

    for n in backward_nodes:
        c = Node(n.op, [mapped(i) for i in n.inputs], dict(n.attrs), n.shape, n.dtype,
                 n.value, n.name)
        mapping[id(n)] = c
        b_nodes.append(c)
    backward = Graph(b_inputs, b_nodes, [mapped(o) for o in grad_outputs])
    return forward, backward, len(saved)


def _donations(capture: Capture) -> list:
    """(output index, input node) for each write-back of a tensor the graph also reads."""
    input_of = {id(t): node for t, node in capture.captured}
    for tid, index in capture.arg_index.items():  # (a scan per argument was quadratic)
        if index < len(capture.arg_paths):
            input_of[tid] = capture.arg_paths[index][1]
    out = [(capture.n_user + j, input_of[id(t)])
           for j, (t, _) in enumerate(capture.data_writes) if id(t) in input_of]
    return out + [(j, node) for _, node, j in capture.grad_buffers]


def _feeders(graph: Graph, capture: Capture) -> list:
    by_node: dict[int, tuple] = {}
    for k, (_, node) in enumerate(capture.arg_paths):
        by_node[id(node)] = ("arg", k)
    for t, node in capture.captured:
        by_node[id(node)] = ("data", (t, node))
    for t, node in capture.grad_inputs:
        by_node[id(node)] = ("grad", (t, node))
    for t, node, _ in capture.grad_buffers:
        by_node[id(node)] = ("grad", (t, node))
    return [by_node[id(n)] for n in graph.inputs]


def _roots(fn: Callable, args: tuple) -> list[Any]:
    """The objects a function can reach without being passed them: itself (a Module), its
    bound object, closure cells, and the globals its code names."""
    roots: list[Any] = [fn, *args]
    target = fn.forward if hasattr(fn, "forward") and hasattr(fn, "training") else fn
    target = getattr(target, "__func__", target)
    if hasattr(fn, "__self__"):
        roots.append(fn.__self__)
    roots.extend(value for _, value in _named(target))
    # One level into plain objects (a trainer holding `self.model` and `self.opt`).
    for r in list(roots):
        if hasattr(r, "__dict__") and not isinstance(r, type) and \
                type(r).__module__.split(".")[0] != "tracegrad":
            roots.extend(vars(r).values())
    return roots


def _modules_of(roots: list[Any]) -> list[Any]:
    from ..nn.module import Module

    seen, out = set(), []
    for r in roots:
        if isinstance(r, Module):
            for m in r.modules():
                if id(m) not in seen:
                    seen.add(id(m))
                    out.append(m)
    return out


_PLAIN = (int, float, bool, str, type(None))


def _settings(roots: list[Any], modules: list[Any]) -> list:
    """Plain Python values a traced step reads as constants: an optimizer's hyper-parameters
    (a scheduler changes lr), the numbers and flags stored on modules (``self.scale``) and
    on the object whose method is compiled. A variant is only used while they hold.

    Each entry is (what, a dict, its keys, their values then): checking is one tuple
    comparison per dict on every call."""
    from ..optim.optimizer import Optimizer

    def entry(what: str, d: dict, skip: tuple = ()) -> tuple | None:
        keys = tuple(k for k, v in d.items() if isinstance(v, _PLAIN) and k not in skip)
        return (what, d, keys, tuple(d[k] for k in keys)) if keys else None

    out = [entry(f"a setting of {type(m).__name__}", vars(m), ("training",)) for m in modules]
    seen = set()
    for r in roots:
        if id(r) in seen:
            continue
        seen.add(id(r))
        if isinstance(r, Optimizer):
            out += [entry(f"a hyper-parameter of {type(r).__name__} (lr, momentum, ...)", g,
                          ("params",)) for g in r.param_groups]
        elif hasattr(r, "__dict__") and not isinstance(r, type) and not callable(r) and \
                type(r).__module__.split(".")[0] not in ("tracegrad", "builtins"):
            out.append(entry(f"an attribute of a {type(r).__name__}", vars(r)))
    return [e for e in out if e is not None]


def _group_tensors(roots: list[Any]) -> list:
    """(getter, "tensor", id) for each tensor an optimizer keeps among its hyper-parameters
    (``lr=tg.tensor(0.1)``): the program reads that tensor, so replacing it must retrace."""
    from ..optim.optimizer import Optimizer

    refs = []
    for r in roots:
        if isinstance(r, Optimizer):
            for g in r.param_groups:
                for k, v in g.items():
                    if isinstance(v, Tensor):
                        refs.append((lambda g=g, k=k: g.get(k), "tensor", id(v)))
    return refs


def _named(target: Callable) -> list[tuple[Callable[[], Any], Any]]:
    """(getter, value now) for everything a function's code names directly: its closure
    cells and the globals it reads (not attribute names, which ``co_names`` also holds:
    the ``step`` of ``opt.step()`` is not a global ``step``)."""
    out = []
    for cell in getattr(target, "__closure__", None) or ():
        try:
            out.append((lambda c=cell: c.cell_contents, cell.cell_contents))
        except ValueError:  # an empty cell
            continue
    code = getattr(target, "__code__", None)
    if code is not None:
        g = getattr(target, "__globals__", {})
        names = {i.argval for i in dis.get_instructions(code) if i.opname == "LOAD_GLOBAL"}
        out += [(lambda n=n, g=g: g.get(n), g[n]) for n in sorted(names) if n in g]
    return out


def _direct_refs(fn: Callable) -> list:
    """What a function names directly and a trace freezes: (getter, "tensor", id) for a
    tensor (its identity is guarded), (getter, "value", value) for a plain Python value
    (read as a constant: its value is guarded)."""
    refs = []
    for getter, value in _named(getattr(fn, "__func__", fn)):
        if isinstance(value, Tensor):
            refs.append((getter, "tensor", id(value)))
        elif isinstance(value, _PLAIN):
            refs.append((getter, "value", value))
    return refs


def _arg_key(flat: list[tuple[str, Any]]) -> tuple:
    key = []
    for _path, leaf in flat:
        if isinstance(leaf, Tensor):
            key.append(("T", leaf.data.shape, leaf.data.dtype, leaf.requires_grad))
        else:
            try:
                hash(leaf)
                key.append(("v", type(leaf).__name__, leaf))
            except TypeError:
                key.append(("id", id(leaf)))
    key.append(autograd.is_grad_enabled())
    return tuple(key)


# ---------------------------------------------------------------- the compiled function


class CompiledFunction:
    """``tg.compile(fn)``: call it like ``fn``. See `cache_info()` and `source()`."""

    def __init__(self, fn: Callable, backend: str = "auto"):
        if backend not in ("auto", "numpy"):
            raise ValueError(
                f"tg.compile: backend {backend!r} is not available; use 'numpy' (or 'auto', "
                f"which picks the best available backend)"
            )
        self.fn = fn
        self.backend = backend
        self.variants: dict[tuple, list[Variant]] = {}
        self.hits = 0
        self.misses = 0
        self.miss_reasons: list[str] = []
        self._warm = False
        self._warned = False
        self.last_variant: Variant | None = None
        self._fast: Variant | None = None  # the variant of the last all-tensor call
        self._order: list[tuple] = []  # (key, variant), oldest first
        functools.update_wrapper(self, fn, updated=())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if tensor_mod._tracer is not None:  # called inside another trace: just run inline
            return self.fn(*args, **kwargs)
        if not self._warm:
            # The first call runs eagerly: state created lazily (optimizer moments, running
            # statistics) then exists before anything is captured.
            self._warm = True
            return self.fn(*args, **kwargs)
        fast = self._fast
        if fast is not None and not kwargs:
            # The common case, quickly: the variant of the last all-tensor call, whose entry
            # checks every guard (argument shapes and dtypes included).
            for a in args:
                if type(a) is not Tensor:
                    break
            else:
                result = fast.entry(args)
                if type(result) is not Miss:
                    self.hits += 1
                    return result if fast.backward is None else \
                        self._differentiable(fast, result, args)
        positional = not kwargs and all(type(a) is Tensor for a in args)
        if positional:
            tensors: Any = args
            key = tuple([("T", a.data.shape, a.data.dtype, a.requires_grad) for a in args]
                        + [autograd._mode.enabled])
        else:
            flat = flatten_args(args, kwargs)
            key = _arg_key(flat)
            tensors = [leaf for _, leaf in flat if isinstance(leaf, Tensor)]
        variant, reason = None, None
        for v in self.variants.get(key, ()):
            result = v.entry(tensors)
            if type(result) is not Miss:
                variant = v
                break
            if reason is None:  # why the newest variant does not fit: the one to report
                reason = str(result)
        if variant is None:
            if reason is None:
                reason = ("first compiled call" if not self.variants else
                          "new argument shapes, dtypes, requires_grad, Python values or "
                          "grad mode")
            with paused_gc():
                variant = self._compile(args, kwargs, key, reason)
            result = variant.entry(tensors)
            if type(result) is Miss:  # a guard the fresh variant fails: a bug of ours
                raise AssertionError(f"tg.compile: a new variant fails its own guard: {result}")
        else:
            self.hits += 1
        self.last_variant = variant
        self._fast = variant if positional else None
        return result if variant.backward is None else \
            self._differentiable(variant, result, tensors)

    def _differentiable(self, variant: Variant, outs: tuple, tensors: Any) -> Any:
        """The result of a differentiable variant: its tensors point back to the compiled
        backward program, with the values this run saved for it."""
        outs = variant.finish(outs)
        owns = variant._owns

        def array(i: int) -> np.ndarray:  # the program's own new memory, or a copy
            return outs[i] if owns[i] else np.array(outs[i], copy=True)

        targets = tuple(tensors[src] if kind == "arg" else src
                        for kind, src in variant.capture.grad_targets)
        which = {k: j for j, (k, _) in enumerate(variant.capture.cotangents)}
        saved = variant.saved

        def leaf(i: int) -> Tensor:
            t = _leaf(array(i))
            if i in which:
                t.requires_grad = True
                t._op = CompiledBackward(variant.backward, saved, which[i], len(which))
                t._seq = autograd.next_seq()
                t._children = targets
                t._attrs = {}
                t._versions = tuple(x._vc[0] for x in targets)
            return t

        return build_tree(variant.capture.out_tree, leaf)

    def _compile(self, args: tuple, kwargs: dict, key: tuple, reason: str) -> Variant:
        self.misses += 1
        self.miss_reasons = self.miss_reasons[-63:] + [reason]  # the latest 64
        t0 = time.perf_counter()
        roots = _roots(self.fn, args)
        modules = _modules_of(roots)
        epoch = tensor_mod._structure_epoch[0]
        graph, capture = run_traced(self.fn, args, kwargs,
                                    differentiable=autograd.is_grad_enabled(),
                                    grad_buffers=True)
        backward, n_saved = None, 0
        if capture.n_grad_outputs:
            graph, bgraph, n_saved = _split_backward(graph, capture)
            cot_shapes = [(n.shape, n.dtype) for _, n in capture.cotangents]
            backward = BackwardProgram(bgraph, cot_shapes)
        graph, records = optimize(graph, _donations(capture))
        program = Program(graph)
        variant = Variant(
            graph=graph, program=program, capture=capture,
            feeders=_feeders(graph, capture),
            n_user_outputs=len(graph.outputs) - len(capture.data_writes)
            - sum(1 for _, n in capture.grad_writes if n is not None) - n_saved,
            modules=modules, training=tuple(m.training for m in modules),
            settings=_settings(roots, modules),
            structure_epoch=epoch, direct_refs=_direct_refs(self.fn) + _group_tensors(roots),
            records=records,
            backward=backward, n_saved=n_saved,
            arg_types=[(k[1], k[2], k[3]) for k in key[:-1] if k[0] == "T"],
            grad_enabled=key[-1],
        )
        variant.compile_seconds = time.perf_counter() - t0
        bucket = self.variants.setdefault(key, [])
        bucket.insert(0, variant)
        self._order.append((key, variant))
        if len(self._order) > MAX_KEPT:  # the oldest variant goes: memory stays bounded
            old_key, old = self._order.pop(0)
            self.variants[old_key].remove(old)
            if not self.variants[old_key]:
                del self.variants[old_key]
        if self.misses > MAX_VARIANTS and not self._warned:
            self._warned = True
            warnings.warn(
                f"tg.compile: {getattr(self.fn, '__name__', 'the function')} has been compiled "
                f"{self.misses} times (last reason: {reason}). {_advice(reason)}",
                stacklevel=3,
            )
        return variant

    # ---------------------------------------------------------------- introspection

    def cache_info(self) -> "CacheInfo":
        variants = sum(len(b) for b in self.variants.values())
        return CacheInfo(variants, self.hits, self.misses, list(self.miss_reasons))

    def source(self) -> str:
        """The generated Python source of the most recently used variant."""
        if self.last_variant is None:
            raise RuntimeError("source(): the function has not been compiled yet (call it "
                               "twice: the first call runs eagerly, the second compiles)")
        return self.last_variant.program.source()

    @property
    def graph(self) -> Graph:
        if self.last_variant is None:
            raise RuntimeError("graph: the function has not been compiled yet")
        return self.last_variant.graph

    def __getattr__(self, name: str) -> Any:
        # A compiled Module still looks like the Module: parameters(), train(), state_dict().
        fn = self.__dict__.get("fn")
        if fn is None:
            raise AttributeError(name)
        return getattr(fn, name)

    def __repr__(self) -> str:
        return f"compiled({self.fn!r})"

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        return functools.partial(self, obj)


@dataclass
class CacheInfo:
    variants: int
    hits: int
    misses: int
    reasons: list

    def __str__(self) -> str:
        lines = [f"{self.variants} variant(s), {self.hits} hit(s), {self.misses} miss(es)"]
        lines += [f"  compiled because: {r}" for r in self.reasons]
        return "\n".join(lines)


def compile(fn: Callable | None = None, *, backend: str = "auto") -> Any:
    """Compile a function or an ``nn.Module``: the first call runs eagerly, the second
    traces the graph, optimizes it and runs the generated program; later calls run the
    program while the guards hold.

    >>> @tg.compile
    ... def step(x, y):
    ...     opt.zero_grad(); loss = F.cross_entropy(model(x), y)
    ...     loss.backward(); opt.step(); return loss
    """
    if fn is None:
        return lambda f: compile(f, backend=backend)
    return CompiledFunction(fn, backend)


__all__ = ["CompiledFunction", "Explanation", "TensorSpec", "compile", "explain", "optimize"]
