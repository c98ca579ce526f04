"""How ``tg.compile`` makes and runs a dynamic variant (the sizes themselves, their
fitting and their guard are dynamic.py's): which dimensions of a call become the symbol
``n`` (`dynamic_dims`), the three traces at three sizes (`traces`), the variant built from
them (`dynamic_variant`), and a call at a size the variant has not run at (`new_size`).
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import TraceError
from ..tensor import _leaf
from .dynamic import (
    MIN_SIZE,
    Affine,
    NotDynamic,
    Recorder,
    fit_graphs,
    other_sizes,
    plain,
    prune,
    resize,
    size_guard,
)
from .dynamic_program import DynamicProgram, EagerRun, SymbolicProgram, VerifyRun
from .entry import Miss
from .guards import ReadRecorder
from .ir import Graph
from .optimize import optimize
from .partition import donations, feeders
from .trace import Capture, flatten_args, paused_gc, raised_by_function, rebuild_args, run_traced
from .variants import Variant


def dynamic_dims(compiled: Any, key: tuple) -> tuple | None:
    """([(key index, axis)], n, [other sizes seen]) when this call should compile a
    dynamic variant: ``dynamic=`` names the axes, or a dimension changed size since an
    earlier call of the same structure (see dynamic.py); else None."""
    if compiled.dynamic is False:
        return None
    if isinstance(compiled.dynamic, dict):
        dims = []
        for i, axes in compiled.dynamic.items():
            for ax in (axes if isinstance(axes, (tuple, list)) else (axes,)):
                if not (0 <= i < len(key) - 1 and key[i][0] == "T"
                        and -len(key[i][1]) <= ax < len(key[i][1])):
                    raise ValueError(f"tg.compile: dynamic={compiled.dynamic!r} names "
                                     f"argument {i} axis {ax}, which this call does not "
                                     f"have (a tensor argument's axis)")
                dims.append((i, ax % len(key[i][1])))
        sizes = {key[i][1][ax] for i, ax in dims}
        if len(sizes) != 1:
            compiled.dynamic_notes.append(f"the dynamic axes have different sizes {sizes}: "
                                      f"one symbol only")
            return None
        return dims, sizes.pop(), []
    for old in reversed(compiled._seen):
        if len(old) != len(key) or old[-1] != key[-1]:
            continue
        dims, before, now = [], set(), set()
        for i, (a, b) in enumerate(zip(old[:-1], key[:-1])):
            if a[0] != b[0] or (a[0] != "T" and a != b):
                break
            if a[0] == "T":
                if a[2:] != b[2:] or len(a[1]) != len(b[1]):
                    break
                for ax, (x, y) in enumerate(zip(a[1], b[1])):
                    if x != y:
                        dims.append((i, ax))
                        before.add(x)
                        now.add(y)
        else:
            if dims and len(before) == 1 and len(now) == 1:
                n = now.pop()
                if n >= MIN_SIZE:
                    return dims, n, [before.pop()]
    return None


def traces(compiled: Any, args: tuple, kwargs: dict, key: tuple, dynamic: tuple,
           recorder: ReadRecorder, values: bool, settings: list) -> tuple:
    """Trace the call at three sizes of n (two made by resizing the dynamic arguments,
    then the call itself, last, as a static compile traces it); fit them (dynamic.py).
    Returns (graph, capture, template, size guard) of the call's own trace."""
    dims, n, seen = dynamic
    sizes = [n] + other_sizes(n, seen)
    flat = flatten_args(args, kwargs)
    axes: dict[int, list[int]] = {}
    for i, ax in dims:
        axes.setdefault(i, []).append(ax)
    results = []
    for size in sizes[1:] + [n]:
        resized: dict[int, Any] = {}
        if size != n:
            for i, ax in axes.items():
                leaf = flat[i][1]
                t = _leaf(resize(leaf._data, ax, size))
                t.requires_grad = leaf.requires_grad
                resized[id(leaf)] = t
        # (every position of a tensor passed twice: one object, as in the call)
        a2, k2 = rebuild_args(args, kwargs, {path: resized[id(leaf)] for path, leaf in flat
                                             if id(leaf) in resized})
        sym = Recorder()
        try:
            if size == n:
                with recorder, sym:
                    graph, capture = run_traced(compiled.fn, a2, k2, differentiable=True,
                                                grad_buffers=True, values=values,
                                                settings=settings, symbolic=sym)
            else:
                with sym:
                    graph, capture = run_traced(compiled.fn, a2, k2, differentiable=True,
                                                grad_buffers=True, values=values,
                                                settings=settings, symbolic=sym)
        except TraceError:
            raise
        except Exception as e:  # noqa: BLE001 - the function fails at another size
            if size == n:
                raise
            raise NotDynamic(f"the function raised {type(e).__name__} at n = "
                                 f"{size}: {e}") from None
        results.append((prune(graph), capture, sym))
    results.insert(0, results.pop())  # the call's own first
    for _, capture, _ in results:
        if capture.n_grad_outputs:
            raise NotDynamic("the outputs are differentiable (a compiled backward "
                                 "program): dynamic sizes are for functions that run "
                                 "their own backward, or none")
        counts = [len(getattr(capture, f)) for f in ("captured", "grad_inputs",
                                                        "data_writes", "grad_writes")]
        if counts != [len(getattr(results[0][1], f)) for f in (
                "captured", "grad_inputs", "data_writes", "grad_writes")]:
            raise NotDynamic("the traces at different sizes read or write "
                                 "different tensors")
    trees = [plain(c.out_tree) for _, c, _ in results]
    if any(t != trees[0] for t in trees[1:]):
        raise NotDynamic("the function returns a Python value that changes with the "
                             "size")
    results[0][1].out_tree = trees[0]  # (SymInts in it become plain ints)
    template = fit_graphs([g for g, _, _ in results], sizes)
    template.exposed = any(r.exposed for _, _, r in results)
    guard = size_guard([r for _, _, r in results], sizes, template)
    graph, capture = results[0][0], results[0][1]
    args_of = {id(node) for _, node in capture.arg_paths}
    for node, shape in zip(graph.inputs, template.shapes):
        if id(node) not in args_of and any(type(d) is Affine for d in shape):
            raise NotDynamic(f"a tensor the function did not get as an argument "
                                 f"({node.name}) changes shape with the size")
    return graph, capture, template, guard


def dynamic_variant(graph: Graph, capture: Capture, template: Any, guard: Any,
                    dynamic: tuple, key: tuple, fps: list, modules: list,
                    settings: list, epoch: int, reads: list, setting_guards: list,
                    anomaly: bool, t0: float, lowering: Any = None) -> Variant:
    """The variant of a dynamic trace: its program is one program for every size of n when
    the programs generated at the traced sizes fit one (on the C backend, when
    ``lowering`` is it and the C fits too, else on NumPy), else one NumPy program per size
    (see dynamic_program.py)."""
    from .backends.numpy import NUMPY

    dims, n, _ = dynamic
    if capture.views:  # (their steps hold the traced size)
        raise NotDynamic("an output is an argument or a view of one")
    index = {id(node): k for k, node in enumerate(graph.inputs)}
    gifts = [(j, index[id(node)]) for j, node in donations(capture)]
    order: list = []

    def build(g: Graph) -> Any:
        opt, plan, _ = optimize(g, [(j, g.inputs[k]) for j, k in gifts], NUMPY,
                                measure=False)
        at = {id(node): k for k, node in enumerate(g.inputs)}
        got = [at.get(id(node)) for node in opt.inputs]
        if order and got != order:
            raise NotDynamic("the program's inputs change with the size")
        order[:] = got
        program = NUMPY.program(opt, plan, anomaly)
        program.optimized = opt
        return program

    first = build(graph)
    opt = first.optimized
    feeds = feeders(opt, capture)
    symbolic, why, c_why = None, "", ""
    if getattr(lowering, "name", None) == "c" and not anomaly:
        try:
            symbolic = _c_program(template, guard, gifts, order)
        except NotDynamic as e:
            c_why = str(e)
    if symbolic is None:
        try:
            programs = [first] + [build(template.instantiate(s)) for s in template.sizes[1:]]
            symbolic = SymbolicProgram(programs, template.sizes)
        except NotDynamic as e:
            why = str(e)
    program = DynamicProgram(template, build, first, n, guard, symbolic, why)
    program.c_why = c_why
    arg_types = []
    dynamic_axes = {}
    for i, k in enumerate(key[:-1]):
        if k[0] not in ("T", "A", "F"):
            continue
        if k[0] == "T":
            shape = tuple(None if (i, ax) in dims else d for ax, d in enumerate(k[1]))
            if None in shape:
                dynamic_axes[len(arg_types)] = [ax for ax, d in enumerate(shape)
                                                if d is None]
            k = ("T", shape) + k[2:]
        arg_types.append(k[:-1])  # (without the path)
    variant = Variant(
        graph=opt, program=program, capture=capture, feeders=feeds,
        n_user_outputs=len(opt.outputs) - len(capture.data_writes)
        - sum(1 for _, node in capture.grad_writes if node is not None),
        modules=modules, training=tuple(m.training for m in modules),
        settings=settings, structure_epoch=epoch, guards=reads + setting_guards,
        records=[], arg_types=arg_types, arg_fps=fps, grad_enabled=key[-1],
        anomaly=anomaly, dynamic=(dynamic_axes, program))
    variant.compile_seconds = time.perf_counter() - t0
    return variant


def _c_program(template: Any, guard: Any, gifts: list, order: list) -> SymbolicProgram:
    """The C backend's program for every size of n: generated at five sizes, the traced
    ones and two more, and fitted into one (`dynamic_program._fit_c`); or, when a size
    happens to make other choices (a memory plan that pairs an (n, 16) value with a
    (16, 5) one at n = 5), at five primes. (Any sizes do: the template is the graph at
    every n, and the plan of the first size is the program's at every n.) C that does not
    compile leaves the variant on NumPy too."""
    from .backends.c import C_BACKEND, CProgram
    from .backends.toolchain import CompileError

    def fitted(sizes: list[int]) -> SymbolicProgram:
        programs = []
        for s in sizes:
            g = template.instantiate(s)
            opt, plan, _ = optimize(g, [(j, g.inputs[k]) for j, k in gifts], C_BACKEND,
                                    measure=False)
            at = {id(node): k for k, node in enumerate(g.inputs)}
            if [at.get(id(node)) for node in opt.inputs] != order:
                raise NotDynamic("the C program's inputs change with the size")
            programs.append(CProgram(opt, plan, sized=s))
        try:
            return SymbolicProgram(programs, sizes)
        except CompileError as e:
            raise NotDynamic(f"its C did not compile: {e}") from None

    sizes = list(template.sizes)
    low, top = min(sizes), max(sizes)
    for s in (top + 1, guard.hi if guard.hi is not None else 4 * top + 7, 2 * top + 3,
              (low + top) // 2, low + 1, top - 1, low - 1):
        if guard.holds(s) and s not in sizes and len(sizes) < 5:
            sizes.append(s)
    try:
        return fitted(sizes)
    except NotDynamic as e:
        primes = [p for p in _PRIMES if guard.holds(p) and p not in sizes]
        if len(primes) < 5:
            raise
        first = str(e)
    try:
        return fitted(primes[:5])
    except NotDynamic as e:
        raise NotDynamic(f"{first}; at n = {primes[:5]}: {e}") from None


# sizes to generate a program for every size at, the first ones the likeliest to make the
# choices of most sizes (larger than most fixed dimensions, and no product of small ones)
_PRIMES = [101, 103, 107, 109, 113, 61, 59, 53, 47, 43, 41, 37, 31, 29, 23, 19, 17, 13, 11, 7]


def new_size(compiled: Any, variant: Variant, what: str, args: tuple, kwargs: dict,
             inputs: Any) -> Any:
    """A call of a dynamic variant at a size it has not run at, that its program cannot
    serve unchecked (see dynamic_program.py): an `EagerRun` runs the function eagerly; a
    `VerifyRun` traces it, and the program runs if the trace is the variant's template at
    that size, else a `Miss` (compile anew)."""
    if type(what) is EagerRun:
        return compiled.fn(*args, **kwargs)
    program, n = variant.dynamic[1], what.n
    with compiled._lock, paused_gc():
        try:
            with Recorder() as sym:  # (traced as the template's traces were)
                graph, capture = run_traced(
                    compiled.fn, args, kwargs, differentiable=True,
                    grad_buffers=True, values=variant.values,
                    settings=variant.trace_settings, symbolic=sym)
        except TraceError:
            program.refused[n] = Miss(f"the dynamic variant does not serve n = {n} "
                                      f"(its trace raised TraceError)")
            return program.refused[n]
        except Exception as e:
            if not raised_by_function(e):
                raise
            failed = True
        else:
            failed = False
            if not program.verify(n, prune(graph), capture, variant.capture):
                return program.refused[n]
    if failed:  # (the function raised: eagerly, it raises with eager's state, see trace.py)
        return compiled.fn(*args, **kwargs)
    result = variant.entry(inputs)
    if type(result) is Miss or type(result) in (EagerRun, VerifyRun):
        raise AssertionError(f"tg.compile: a verified dynamic size fails its own guard: "
                             f"{result}")
    compiled.hits += 1
    compiled.last_variant = variant
    return result
