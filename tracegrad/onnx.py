"""``tg.onnx.export``: write a model (or a function of tensors) as an ONNX file, checked.

The model is traced in eval mode into the compiler's static graph (`tg.trace`), cleaned by
the graph passes (dce, cse, constant folding, simplify), and lowered op by op through the
ONNX lowering table (`tracegrad.compiler.backends.onnx.LOWERINGS`); parameters and buffers
become initializers under their state_dict names. Before anything is written, the model
goes through ``onnx.checker`` and ONNX shape inference and, with ``verify=True`` and
onnxruntime installed, runs in ONNX Runtime on the example inputs (and, with
``dynamic_axes``, at a second size of each dynamic axis), its outputs compared with
tracegrad's own.

``onnx`` and ``onnxruntime`` are optional (``pip install tracegrad[onnx]``); this module
imports them only when `export` runs.

>>> model = tg.nn.Sequential(tg.nn.Linear(4, 8), tg.nn.ReLU(), tg.nn.Linear(8, 3))
>>> tg.onnx.export(model, tg.randn(2, 4), "model.onnx", input_names=["x"],
...                output_names=["scores"], dynamic_axes={"x": {0: "batch"}})  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import os
import tempfile
import warnings
from typing import Any, Callable

import numpy as np

# The opset written by default (21, which onnxruntime supports fully since 1.20) and the
# error raised: both from the lowering table, which imports no onnx.
from .compiler.backends.onnx import DEFAULT_OPSET, ExportError

__all__ = ["export", "graph", "ExportError", "DEFAULT_OPSET", "is_available"]

_INSTALL_HINT = 'pip install "tracegrad[onnx]"'


def is_available() -> bool:
    """Whether the ``onnx`` package is installed (ONNX Runtime is needed only to verify)."""
    try:
        importlib.import_module("onnx")
    except ImportError:
        return False
    return True


def _need(module: str, why: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"tg.onnx.export needs the {module!r} package {why}, which is not "
                          f"installed; install it with: {_INSTALL_HINT}") from e


def export(
    model_or_fn: Callable,
    args: Any,
    f: Any,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    dynamic_axes: dict | None = None,
    opset_version: int | None = None,
    verify: bool = True,
) -> Any:
    """Trace ``model_or_fn(*args)`` and write it to ``f`` (a path or a binary file object)
    as an ONNX model; returns the ``onnx.ModelProto`` written.

    PyTorch's signature (``torch.onnx.export``): ``args`` is one tensor or a tuple of
    arguments, a dict at its end holding keyword arguments (tensors become the model's
    inputs, in that order; anything else is fixed); ``input_names``
    and ``output_names`` name the graph's inputs and outputs (default ``input0``, ...,
    ``output0``, ...); ``dynamic_axes`` maps an input's or output's name to the axes that
    may change size, as a list (``{"x": [0]}``) or with symbol names (``{"x": {0:
    "batch"}}``); ``opset_version`` defaults to `DEFAULT_OPSET` (21). A Module in training
    mode is exported in eval mode (with a warning) and put back afterwards.

    With ``verify`` (the default) and onnxruntime installed, the model is run in ONNX
    Runtime on ``args`` and compared with tracegrad's own outputs; a difference beyond
    float rounding raises `ExportError` with the largest difference, and nothing is
    written.

    >>> model = tg.nn.Linear(4, 2)
    >>> tg.onnx.export(model, tg.randn(3, 4), "linear.onnx",
    ...                dynamic_axes={"input0": {0: "batch"}})  # doctest: +SKIP
    """
    onnx = _need("onnx", "to build the file")
    from .compiler.api import CompiledFunction
    from .compiler.backends import onnx as backend
    from .nn.module import Module

    if isinstance(model_or_fn, CompiledFunction):  # tg.compile(model): the model itself
        model_or_fn = model_or_fn.fn

    opset = DEFAULT_OPSET if opset_version is None else int(opset_version)
    newest = onnx.defs.onnx_opset_version()
    if not backend.MIN_OPSET <= opset <= newest:
        raise ValueError(f"tg.onnx.export: opset_version={opset_version}; tracegrad exports "
                         f"opsets {backend.MIN_OPSET} to {newest} (the installed onnx's "
                         f"newest); the default is {DEFAULT_OPSET}")
    args = _as_args(args)
    modes = []
    if isinstance(model_or_fn, Module):
        modes = [(m, m.training) for m in model_or_fn.modules()]
        if model_or_fn.training or any(t for _, t in modes):
            warnings.warn("tg.onnx.export: the model is in training mode; exporting it in "
                          "eval mode (as PyTorch does: no dropout, batch norm with its "
                          "running statistics). It is put back in training mode afterwards.",
                          UserWarning, stacklevel=2)
            model_or_fn.eval()
    try:
        exporter = _Exporter(onnx, backend, model_or_fn, args, input_names, output_names,
                             dynamic_axes, opset)
        model = exporter.build()
        if verify:
            exporter.verify(model)
    finally:
        for m, training in modes:
            object.__setattr__(m, "training", training)
    _write(model, f)
    return model


def graph(model_or_fn: Callable, args: Any) -> Any:
    """The IR `export` lowers: ``model_or_fn(*args)`` traced (a Module in eval mode) and
    cleaned by the passes dce, cse, fold_constants and simplify. Needs no onnx.

    >>> print(tg.onnx.graph(tg.nn.Linear(3, 2), tg.randn(1, 3)))  # doctest: +SKIP
    """
    from .compiler.trace import run_traced
    from .nn.module import Module

    args = _as_args(args)
    modes = [(m, m.training) for m in model_or_fn.modules()] \
        if isinstance(model_or_fn, Module) else []
    try:
        for m, _ in modes:
            object.__setattr__(m, "training", False)
        traced, capture = run_traced(model_or_fn, *_split(args))
    finally:
        for m, training in modes:
            object.__setattr__(m, "training", training)
    return _optimize(traced, capture.n_user)


# --------------------------------------------------------------------------------------


def _as_args(args: Any) -> tuple:
    from .tensor import Tensor

    if isinstance(args, list):
        args = tuple(args)
    if not isinstance(args, tuple):
        args = (args,)
    return tuple(Tensor(np.asarray(a)) if isinstance(a, np.ndarray) else a for a in args)


def _split(args: tuple) -> tuple[tuple, dict]:
    """PyTorch's convention: a dict at the end of ``args`` holds keyword arguments."""
    if args and type(args[-1]) is dict:
        return args[:-1], args[-1]
    return args, {}


def _write(model: Any, f: Any) -> None:
    data = model.SerializeToString()
    if hasattr(f, "write"):
        f.write(data)
        return
    path = os.fspath(f)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tracegrad-onnx-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)  # whole or not at all
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _optimize(graph: Any, n_user: int, dynamic: bool = False) -> Any:
    """The function's own outputs (the first ``n_user``; the rest are write-backs into
    captured tensors, which are not exported), and the passes that make the graph smaller
    without changing what it computes (no fusion nor memory planning: those are for
    tracegrad's own backends). With ``dynamic`` axes, equal constants stay apart: two sizes
    equal in the example (an 8 x 8 image) may differ at another size."""
    from .compiler.passes import cse, dce, fold_constants, simplify

    def dead(g: Any) -> Any:  # (an exported model keeps no generator: unused draws go)
        return dce(g, draws=False)

    def merge(g: Any) -> Any:
        return cse(g, consts=not dynamic)

    graph.outputs = graph.outputs[:n_user]
    if dynamic:
        graph = _unshare_constants(graph)
    for step in (dead, merge, fold_constants, simplify, dead):
        graph, _ = step(graph)
    return graph


def _unshare_constants(graph: Any) -> Any:
    """``graph`` with a copy of a constant just before each use of it: tracing shares one
    constant among the uses of a Python number (the 8 that averages both sides of an 8 x 8
    image), which at another size may be two numbers."""
    from .compiler.ir import Graph, Node

    nodes: list = []
    new: dict[int, Any] = {}

    def fresh(node: Any) -> Any:
        if node.op != "const":
            return new.get(id(node), node)
        nodes.append(Node("const", (), {}, node.shape, node.dtype, value=node.value))
        return nodes[-1]

    for node in graph.nodes:
        if node.op != "const":
            new[id(node)] = node.with_inputs([fresh(i) for i in node.inputs])
            nodes.append(new[id(node)])
    outputs = [fresh(o) for o in graph.outputs]
    return Graph(graph.inputs, nodes, outputs)


def _outputs_of(result: Any) -> list:
    from .compiler.trace import _map_tree

    leaves: list = []
    _map_tree(result, lambda t: leaves.append(t) or len(leaves) - 1)
    return leaves


class _Exporter:
    def __init__(self, onnx: Any, backend: Any, fn: Callable, args: tuple,
                 input_names: Any, output_names: Any, dynamic_axes: Any, opset: int):
        from .compiler.trace import flatten_args, run_traced
        from .scalar import Value
        from .tensor import Tensor

        self.onnx, self.backend, self.fn, self.args, self.opset = onnx, backend, fn, args, opset
        self.leaves = [(path, t) for path, t in flatten_args(args, {}) if isinstance(t, Tensor)]
        if any(isinstance(t, Value) for _, t in flatten_args(args, {})):
            raise TypeError("tg.onnx.export: args holds a scalar Value; ONNX export takes "
                            "functions of tensors (a Value program is compiled with "
                            "tg.compile, not exported)")
        if not self.leaves:
            raise TypeError("tg.onnx.export: args holds no tensor; pass the example input(s) "
                            "the model is called with, e.g. tg.randn(1, 64)")
        graph, capture = run_traced(fn, *_split(args), source_lines=True)
        graph.outputs = graph.outputs[:capture.n_user]
        self._refuse_unexportable(graph, capture.lines)
        self.capture = capture
        self.graph = _optimize(graph, capture.n_user, bool(dynamic_axes))
        n_in = len(self.leaves)
        self.input_names = _names(input_names, n_in, "input", "input_names")
        n_out = capture.n_user
        self.output_names = _names(output_names, n_out, "output", "output_names")
        self.symbols, self.alt_args, self.alt_graphs = self._dynamic(dynamic_axes)
        self.param_names = {}
        from .nn.module import Module

        if isinstance(fn, Module):
            for name, t in [*fn.named_parameters(), *fn.named_buffers()]:
                self.param_names.setdefault(id(t), name)

    # ---------------------------------------------------------------- refusals

    def _refuse_unexportable(self, graph: Any, lines: dict) -> None:
        from .compiler.passes import dce

        live, _ = dce(graph, draws=False)
        for node in live.nodes:
            if node.op in ("const", "input") or node.op in self.backend.LOWERINGS:
                continue
            why = self.backend.REFUSED.get(node.op, "it has no ONNX lowering yet")
            line = lines.get(id(node), "<unknown>")
            raise ExportError(
                f"tg.onnx.export: the op {node.op!r} cannot be exported to ONNX: {why}.\n"
                f"  made at {line}\n"
                f"The ops that can be exported: "
                f"{', '.join(sorted(self.backend.LOWERINGS))} (docs/onnx.md).")

    # ---------------------------------------------------------------- dynamic axes

    def _dynamic(self, dynamic_axes: Any) -> tuple[list, list, list]:
        """The symbols of ``dynamic_axes`` (name, size here, other size, [(input, axis)]),
        the arguments at the other size of each, and the graphs traced from them."""
        from .compiler.trace import run_traced

        self.output_dims: dict[tuple, str] = {}
        self.unseen_args: list[tuple] = []
        if not dynamic_axes:
            return [], [], []
        known = set(self.input_names) | set(self.output_names)
        by_symbol: dict[str, list] = {}
        for name, axes in dynamic_axes.items():
            if name not in known:
                raise ValueError(f"tg.onnx.export: dynamic_axes names {name!r}, which is "
                                 f"neither an input ({', '.join(self.input_names)}) nor an "
                                 f"output ({', '.join(self.output_names)})")
            if isinstance(axes, dict):
                pairs = [(int(a), str(s)) for a, s in axes.items()]
            else:
                pairs = [(int(a), f"{name}_dynamic_axes_{k + 1}") for k, a in enumerate(axes)]
            if name in self.output_names:
                k = self.output_names.index(name)
                for a, s in pairs:
                    self.output_dims[(k, a)] = s
                continue
            k = self.input_names.index(name)
            shape = tuple(self.leaves[k][1].shape)
            for a, s in pairs:
                if not -len(shape) <= a < len(shape):
                    raise ValueError(f"tg.onnx.export: dynamic_axes[{name!r}] has axis {a}, "
                                     f"but {name} has shape {shape}")
                by_symbol.setdefault(s, []).append((k, a % len(shape)))
        symbols, alt_args, alt_graphs, resizing = [], [], [], []
        for s, places in by_symbol.items():
            sizes = {self.leaves[k][1].shape[a] for k, a in places}
            if len(sizes) != 1:
                raise ValueError(f"tg.onnx.export: the dynamic axes named {s!r} have "
                                 f"different sizes in the example inputs ({sorted(sizes)})")
            (base,) = sizes
            other = base + 1
            args = self._resized([(places, base, other)])
            try:
                graph, capture = run_traced(self.fn, *_split(args))
            except Exception as err:
                same = "" if len(by_symbol) == 1 else (
                    "; axes that must keep one size (the batch of the inputs and of the "
                    "targets) need one name, {'x': {0: 'batch'}, 'y': {0: 'batch'}} (a "
                    "list gives each axis a name of its own)")
                raise ExportError(
                    f"tg.onnx.export: the model fails at size {other} of the dynamic axis "
                    f"{s!r} (the exporter traces it at a second size to find what follows "
                    f"that axis): {type(err).__name__}: {err}\nMake the axis static (drop "
                    f"it from dynamic_axes), or give an example size the model also runs "
                    f"at plus one{same}") from err
            graph = _optimize(graph, capture.n_user, True)
            self._same_structure(graph, s, base, other)
            symbols.append((s, base, other, [(self.input_names[k], a) for k, a in places]))
            alt_args.append(args)
            alt_graphs.append(graph)
            resizing.append((places, base))
        # Sizes no trace has seen, every symbol at once: verify runs the model there too,
        # which catches a size the lowerings took for a constant (x[: x.shape[0] // 2])
        # (the first the model runs at: b + 5, a few steps on from b + 1 yet cheap at a
        # large example size, else b + 2)
        self.unseen_args = [self._resized([(places, base, grow(base))
                                           for places, base in resizing])
                            for grow in (lambda b: b + 5, lambda b: b + 2)]
        return symbols, alt_args, alt_graphs

    def _resized(self, resizes: list) -> tuple:
        """The example arguments with the axes of each ``(places, base, size)`` of
        ``resizes`` at ``size`` (the example's entries repeated, so that indices stay
        valid)."""
        from .compiler.trace import rebuild_args
        from .tensor import Tensor

        table = {}
        for k, (path, t) in enumerate(self.leaves):
            data = t.numpy()
            for places, base, size in resizes:
                for kk, a in places:
                    if kk == k:
                        data = np.take(data, np.arange(size) % base, axis=a)
            table[path] = Tensor(np.ascontiguousarray(data))
        return rebuild_args(self.args, {}, table)[0]

    def _same_structure(self, other: Any, symbol: str, base: int, size: int) -> None:
        g = self.graph
        problem = None
        if len(g.inputs) != len(other.inputs) or len(g.nodes) != len(other.nodes) or \
                len(g.outputs) != len(other.outputs):
            problem = (f"{len(g.nodes)} nodes at size {base}, {len(other.nodes)} at size "
                       f"{size}")
        else:
            pos = {id(n): k for k, n in enumerate([*g.inputs, *g.nodes])}
            opos = {id(n): k for k, n in enumerate([*other.inputs, *other.nodes])}
            for a, b in zip(g.nodes, other.nodes):
                if a.op != b.op or [pos[id(i)] for i in a.inputs] != \
                        [opos[id(i)] for i in b.inputs] or a.dtype != b.dtype or \
                        (a.op not in _SHAPED and a.op != "const" and a.attrs != b.attrs):
                    problem = f"%{a.id} = {a.op} at size {base} is %{b.id} = {b.op} at {size}"
                    break
            if [pos[id(o)] for o in g.outputs] != [opos[id(o)] for o in other.outputs]:
                problem = problem or "the outputs come from different nodes"
        if problem:
            raise ExportError(
                f"tg.onnx.export: the traced graph changes with the size of the dynamic axis "
                f"{symbol!r} ({problem}), so one ONNX graph cannot serve every size. Make "
                f"the axis static, or avoid code that depends on that size (a Python branch "
                f"on x.shape, a squeeze of a size-1 axis); an example size above 1 helps")

    # ---------------------------------------------------------------- building

    def build(self) -> Any:
        onnx, backend, helper = self.onnx, self.backend, self.onnx.helper
        g = self.graph
        e = backend.Emitter(onnx, g, self.alt_graphs, self.symbols)
        names = e.names
        inputs_vi = []
        dyn = {(k, a): s for s, _, _, places in self.symbols for k, a in
               [(self.input_names.index(n), a) for n, a in places]}
        arg_nodes = [node for _, node in self.capture.arg_paths]
        captured = {id(node): t for t, node in self.capture.captured}
        used = {id(i) for n in g.nodes for i in n.inputs} | {id(o) for o in g.outputs}
        for node in g.inputs:
            if node in arg_nodes:
                k = arg_nodes.index(node)
                name = self.input_names[k]
                shape = [dyn.get((k, a), d) for a, d in enumerate(node.shape)]
                inputs_vi.append(helper.make_tensor_value_info(
                    name, backend.tensor_type(onnx, node.dtype), shape))
            elif id(node) in captured:
                t = captured[id(node)]
                name = self.param_names.get(id(t)) or e.fresh("constant")
                if id(node) in used:
                    e.const(np.ascontiguousarray(t.numpy()), name=name)
            else:
                raise ExportError(f"tg.onnx.export: graph input %{node.id} ({node.name}) is "
                                  f"neither an argument nor a parameter; export a function "
                                  f"of its inputs only (no .grad, no optimizer)")
            names[id(node)] = name
        wanted = {}
        for k, o in enumerate(g.outputs):
            wanted.setdefault(id(o), self.output_names[k])
        produced: dict[str, Any] = {}
        for node in g.nodes:
            if node.op == "const":
                names[id(node)] = backend.lower_const(e, node, e.fresh("const"))
            else:
                start = len(e.nodes)
                value = backend.lower_node(e, node, [names[id(i)] for i in node.inputs])
                names[id(node)] = value
                for proto in e.nodes[start:]:
                    for out in proto.output:
                        produced[out] = proto
        outputs_vi = []
        for k, o in enumerate(g.outputs):
            name, value = self.output_names[k], names[id(o)]
            proto = produced.get(value)
            if wanted[id(o)] == name and proto is not None and value not in self.output_names:
                _rename(e.nodes, value, name)
                names[id(o)] = name
                del produced[value]
            elif value != name:
                e.op("Identity", [value], out=name)
            dims = e.shape_of(o)
            shape = [self.output_dims.get((k, a)) or _dim_param(d, self.symbols)
                     for a, d in enumerate(dims)]
            outputs_vi.append(helper.make_tensor_value_info(
                name, backend.tensor_type(onnx, o.dtype), shape))
        graph = helper.make_graph(e.nodes, "tracegrad", inputs_vi, outputs_vi,
                                  initializer=e.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)],
                                  producer_name="tracegrad")
        model.ir_version = min(model.ir_version, _IR_FOR_ORT)
        try:
            onnx.checker.check_model(model, full_check=True)
            model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        except Exception as err:  # onnx raises its own ValidationError/InferenceError
            raise ExportError(f"tg.onnx.export: the ONNX model fails onnx's checks (a bug in "
                              f"the exporter; please report it with the model): {err}") from err
        return model

    # ---------------------------------------------------------------- verifying

    def verify(self, model: Any) -> None:
        try:
            ort = importlib.import_module("onnxruntime")
        except ImportError:
            return
        options = ort.SessionOptions()
        options.log_severity_level = 4  # (its errors are raised, not logged)
        try:
            session = ort.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's own exception types
            raise ExportError(
                f"tg.onnx.export: ONNX Runtime {ort.__version__} cannot run the exported "
                f"model: {err}\nThe model is valid ONNX (onnx.checker passed); onnxruntime "
                f"lacks some kernels (e.g. Erf, and so exact GELU, for float64): export in "
                f"float32, or pass verify=False to write the file anyway") from err
        for args in [self.args, *self.alt_args]:
            self._compare(session, args, self._eager(args))
        for args in self.unseen_args:  # the first of these sizes the model runs at
            try:
                expected = self._eager(args)
            except Exception:  # (a size the model itself refuses)
                continue
            try:
                self._compare(session, args, expected)
            except ExportError as err:
                raise ExportError(
                    f"{err}\nThese sizes of the dynamic axes were seen by no trace: the "
                    f"model uses a size in a way the exported graph does not follow (such "
                    f"as x[: x.shape[0] // 2] or min(x.shape[0], 5), which become "
                    f"constants; or a pool or strided convolution over a dynamic side, "
                    f"whose output has one size at n and n + 1 for an even n: give an odd "
                    f"example size). Make the axis static (drop it from dynamic_axes), or "
                    f"compute from tensors rather than from sizes") from None
            break

    def _eager(self, args: tuple) -> list[np.ndarray]:
        """tracegrad's outputs on ``args``."""
        from .autograd import no_grad

        # the eager run may update captured tensors (write-backs): undone, as tracing does
        saved = [(t, t.numpy().copy()) for t, _ in self.capture.data_writes]
        try:
            with no_grad():
                positional, keywords = _split(args)
                result = self.fn(*positional, **keywords)
                return [t.numpy().copy() for t in _outputs_of(result)]
        finally:
            for t, data in saved:
                np.copyto(t._data, data)

    def _compare(self, session: Any, args: tuple, expected: list[np.ndarray]) -> None:
        from .compiler.trace import flatten_args
        from .tensor import Tensor

        feed = {name: t.numpy() for name, (_, t) in
                zip(self.input_names, [(p, t) for p, t in flatten_args(args, {})
                                       if isinstance(t, Tensor)])}
        feed = {i.name: feed[i.name] for i in session.get_inputs()}
        try:
            got = session.run(self.output_names, feed)
        except Exception as err:  # onnxruntime's own exception types
            sizes = ", ".join(f"{k}{list(v.shape)}" for k, v in feed.items())
            raise ExportError(f"tg.onnx.export: ONNX Runtime fails to run the exported model "
                              f"on inputs {sizes}: {err}") from err
        for name, a, b in zip(self.output_names, got, expected):
            check_close(name, np.asarray(a), np.asarray(b), feed)


_IR_FOR_ORT = 10  # the IR version onnxruntime 1.20+ reads (onnx 1.23 writes 11 by default)

# Ops whose attributes hold sizes, which differ between traces at different sizes.
_SHAPED = {"reshape", "expand", "getitem", "argsort", "rand", "scatter_add", "setitem",
           "col2im"}


def _names(given: Any, n: int, stem: str, what: str) -> list[str]:
    names = list(given or [])
    if len(names) > n:
        raise ValueError(f"tg.onnx.export: {what} has {len(names)} names, but the model has "
                         f"{n} {stem}(s)")
    names += [f"{stem}{k}" for k in range(len(names), n)]
    if len(set(names)) != len(names):
        raise ValueError(f"tg.onnx.export: {what} repeats a name: {names}")
    return names


def _dim_param(d: Any, symbols: list) -> Any:
    if not d.deps:
        return d.value
    if d.k is None:
        return None  # unknown size: ONNX leaves it unnamed
    parts = [symbols[j][0] for j in d.deps]
    return "*".join(([str(d.k)] if d.k != 1 else []) + parts)


def _rename(nodes: list, old: str, new: str) -> None:
    for proto in nodes:
        for i, v in enumerate(proto.output):
            if v == old:
                proto.output[i] = new
        for i, v in enumerate(proto.input):
            if v == old:
                proto.input[i] = new


def check_close(name: str, got: np.ndarray, expected: np.ndarray, feed: dict) -> None:
    """Raise `ExportError` unless ONNX Runtime's ``got`` equals tracegrad's ``expected`` up
    to float rounding (exactly, for ints and bools)."""
    sizes = ", ".join(f"{k}{list(v.shape)}" for k, v in feed.items())
    if got.shape != expected.shape or got.dtype != expected.dtype:
        raise ExportError(f"tg.onnx.export: ONNX Runtime's output {name!r} is "
                          f"{got.dtype}{list(got.shape)}, tracegrad's "
                          f"{expected.dtype}{list(expected.shape)} (inputs {sizes})")
    if expected.dtype.kind != "f":
        bad = got != expected
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ExportError(f"tg.onnx.export: ONNX Runtime's output {name!r} differs from "
                              f"tracegrad's at {idx}: {got[idx]} vs {expected[idx]} (inputs "
                              f"{sizes})")
        return
    eps = 1e-4 if expected.dtype.itemsize <= 4 else 1e-9
    scale = max(1.0, float(np.nanmax(np.abs(expected), initial=0.0)))
    diff = np.asarray(np.abs(got.astype(np.float64) - expected.astype(np.float64)))
    both_nan = np.isnan(got) & np.isnan(expected)
    diff[both_nan] = 0
    same_inf = np.isinf(got) & (got == expected)
    diff[same_inf] = 0
    tol = eps * (scale + np.abs(expected.astype(np.float64)))
    bad = ~(diff <= tol) & ~both_nan  # (where expected is nan, so is tol)
    if bad.any():
        worst = np.where(np.isnan(diff), np.inf, diff)
        idx = np.unravel_index(int(np.argmax(worst)), diff.shape)
        idx = tuple(int(i) for i in idx)
        raise ExportError(
            f"tg.onnx.export: ONNX Runtime's output {name!r} differs from tracegrad's beyond "
            f"float rounding: the largest difference is {float(diff[idx]):.3g} at {idx} "
            f"({got[idx]} vs {expected[idx]}; {int(bad.sum())} element(s) beyond "
            f"{eps:g} relative), inputs {sizes}. Nothing was written; please report this")
