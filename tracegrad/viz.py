"""Drawings of computation graphs, the way micrograd's ``draw_dot`` taught people to read them.

Every `Value` becomes a record ``label | data 1.2345 | grad 0.5000``, every operation a small
ellipse wired ``children -> op -> result``, laid out left to right. The DOT text is written
here by hand, so ``.dot`` files need nothing installed; ``.svg``/``.png``/``.pdf`` go through
the ``graphviz`` package and Graphviz's ``dot`` program, both optional.

A compiler `Graph` (from ``tg.trace``, ``compiled.graph`` or ``tg.explain(...).graph``) is
drawn the same way, one record ``%7 | mul | f32[128,256]`` per IR node, wired from its
operands; a fused ``kernel`` node becomes a box (a Graphviz cluster) holding its steps, its
operands' arrows going straight to the steps that read them; outputs are green and say
``output k``.

Drawing happens in two steps: a *walker* turns a root object into a `_Sketch` (nodes, edges,
clusters, optional title; it alone knows the object's type), and `_emit` turns any sketch
into DOT text. `_WALKERS` maps each drawable type to its walker (`_sketch_value`,
`_sketch_graph`); another kind of graph needs one more walker and one more entry.

A graph with more than ``max_nodes`` values (IR nodes) is drawn as a summary (with a
warning): the nodes nearest the output(s) in full, and the cut-off remainder folded into a
few boxes that say how many nodes of which ops they hide. A 10,000-node hairball is
unreadable and can take Graphviz minutes; the part near the output is usually what one
wants to see.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .compiler.ir import Graph, Node, format_attr, format_const
from .scalar import Value

# Suffix -> Graphviz output format. `.dot`/`.gv` are written directly, without Graphviz.
_TEXT_SUFFIXES = (".dot", ".gv")
_RENDERED_SUFFIXES = {".svg": "svg", ".png": "png", ".pdf": "pdf"}
_RANKDIRS = ("LR", "RL", "TB", "BT")

# A summary never shows more than this many boxes; the smallest cut-off parts share the last.
_MAX_SUMMARY_BOXES = 8
# Ops listed by name in one summary box; the rarer ones are only counted.
_MAX_OPS_LISTED = 6
# An IR label longer than this (attributes, a kernel step) is cut short with an ellipsis.
_MAX_LABEL = 40


# --------------------------------------------------------------------------------------
# Public functions


def to_dot(root: Any, *, rankdir: str = "LR", max_nodes: int = 500) -> str:
    """The Graphviz DOT source of the graph under ``root``; needs nothing installed.

    Useful where rendering happens elsewhere (a notebook, https://dreampuf.github.io/
    GraphvizOnline, ``dot -Tsvg``), and for tests, which can read the text.

    >>> a = Value(2.0, label="a"); b = (a * a).relu()
    >>> print(to_dot(b))  # doctest: +ELLIPSIS
    digraph tracegrad {...
    """
    return _dot_source(root, rankdir, max_nodes)


def draw(
    root: Any, path: str | os.PathLike, *, rankdir: str = "LR", max_nodes: int = 500
) -> Path:
    """Draw the graph under ``root`` into ``path`` (.svg, .png, .pdf, or .dot/.gv).

    ``root`` is a `Value` (usually a loss) or a compiler `Graph`. ``rankdir="LR"`` reads
    inputs-to-output left to right like micrograd's pictures; "TB" suits tall, narrow
    graphs (a compiled training step). Above ``max_nodes`` values a summary is drawn (see the module
    docstring) so the result stays readable and Graphviz stays fast.

    >>> a = Value(-4.0, label="a"); b = Value(2.0, label="b")
    >>> loss = (a * b + b**3).relu(); loss.backward()
    >>> draw(loss, "loss.svg")  # doctest: +SKIP
    PosixPath('loss.svg')
    >>> g = tg.explain(lambda x: (x * 2 + 1).relu().sum(), tg.TensorSpec((1024,))).graph
    >>> draw(g, "fused.svg", rankdir="TB")  # doctest: +SKIP
    PosixPath('fused.svg')
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _TEXT_SUFFIXES and suffix not in _RENDERED_SUFFIXES:
        accepted = ", ".join((*_RENDERED_SUFFIXES, *_TEXT_SUFFIXES))
        raise ValueError(
            f"draw: cannot write {path.name!r}: the file suffix {suffix or '(none)'!r} is not "
            f"one draw knows; use one of {accepted} (.dot needs no Graphviz)"
        )
    source = _dot_source(root, rankdir, max_nodes)
    if suffix in _TEXT_SUFFIXES:
        path.write_text(source, encoding="utf-8")
        return path
    path.write_bytes(_render(source, _RENDERED_SUFFIXES[suffix]))
    return path


def _dot_source(root: Any, rankdir: str, max_nodes: int) -> str:
    _check_options(rankdir, max_nodes)
    sketch = _walker_for(root)(root, max_nodes)
    if sketch.warning:
        # stacklevel 3: the caller of draw() or to_dot(), where the fix (max_nodes=) goes.
        warnings.warn(sketch.warning, stacklevel=3)
    return _emit(sketch, rankdir)


# --------------------------------------------------------------------------------------
# Rendering through the optional graphviz package and the `dot` program

_NO_DOT = (
    "draw: Graphviz's `dot` program was not found on PATH; it renders .{fmt} files. "
    "Install it with `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` "
    "(macOS), or `conda install -c conda-forge graphviz`, or see https://graphviz.org/download/. "
    "Writing a .dot file needs nothing installed."
)


def _render(source: str, fmt: str) -> bytes:
    try:
        import graphviz
    except ImportError as e:
        raise ImportError(
            f"draw: writing .{fmt} files needs the `graphviz` Python package: "
            f'pip install "tracegrad[viz]" (a .dot file needs nothing installed)'
        ) from e
    import shutil  # (here, not at the top: import tracegrad stays light)

    if shutil.which("dot") is None:
        raise RuntimeError(_NO_DOT.format(fmt=fmt))
    try:
        return graphviz.Source(source).pipe(format=fmt)
    except graphviz.ExecutableNotFound as e:
        raise RuntimeError(_NO_DOT.format(fmt=fmt)) from e


# --------------------------------------------------------------------------------------
# The sketch: what to draw, independent of the kind of graph it came from


@dataclass
class _Sketch:
    # (name, fields): a record node; fields are shown side by side, the label first.
    records: list[tuple[str, list[str]]] = field(default_factory=list)
    # (name, text): a small ellipse for an operation.
    ops: list[tuple[str, str]] = field(default_factory=list)
    # (name, lines): a box standing for nodes that were not drawn.
    summaries: list[tuple[str, list[str]]] = field(default_factory=list)
    # (tail, head, dashed)
    edges: list[tuple[str, str, bool]] = field(default_factory=list)
    # (name, label, member node names): a box drawn around nodes listed above.
    clusters: list[tuple[str, str, list[str]]] = field(default_factory=list)
    # name -> extra DOT attributes for that node (colours, pen width).
    styles: dict[str, str] = field(default_factory=dict)
    title: str = ""
    # Said once to the user (warnings.warn) when the drawing leaves something out.
    warning: str = ""


def _check_options(rankdir: str, max_nodes: int) -> None:
    if rankdir not in _RANKDIRS:
        raise ValueError(f"draw: rankdir={rankdir!r}; use one of {', '.join(_RANKDIRS)}")
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
        raise ValueError(f"draw: max_nodes={max_nodes!r}; use a positive int")


def _walker_for(root: Any) -> Callable[[Any, int], _Sketch]:
    for kind, walker in _WALKERS.items():
        if isinstance(root, kind):
            return walker
    if type(root).__name__ == "ModelProto" and hasattr(root, "graph"):  # (no onnx import)
        return _sketch_onnx
    accepted = " or ".join(k.__name__ for k in _WALKERS)
    raise TypeError(
        f"draw: cannot draw a {type(root).__module__}.{type(root).__qualname__}; it draws a "
        f"{accepted} (the output of a computation, e.g. a loss, or a graph from tg.trace, "
        f"compiled.graph or tg.explain(...).graph)"
    )


# --------------------------------------------------------------------------------------
# Value graphs


def _number(x: Any) -> str:
    try:
        return "%.4f" % x  # micrograd's format, so pictures look the same
    except TypeError:
        return str(x)  # someone stored something unusual in .grad; show it anyway


def _sketch_value(root: Value, max_nodes: int) -> _Sketch:
    # Breadth-first from the root, by id(): the first max_nodes nodes are the ones nearest
    # the output, which is what a summary keeps. A deque and a dict, never recursion.
    index: dict[int, int] = {id(root): 0}
    nodes: list[Value] = [root]
    depth: list[int] = [0]
    queue = deque([root])
    while queue:
        node = queue.popleft()
        d = depth[index[id(node)]] + 1
        for child in node._children:
            if id(child) not in index:
                index[id(child)] = len(nodes)
                nodes.append(child)
                depth.append(d)
                queue.append(child)

    shown = min(len(nodes), max_nodes)
    sketch = _Sketch()
    for i in range(shown):
        node = nodes[i]
        fields = [f"data {_number(node.data)}", f"grad {_number(node.grad)}"]
        if node.label:
            fields.insert(0, str(node.label))
        sketch.records.append((f"v{i}", fields))
        if node._op:
            sketch.ops.append((f"v{i}op", str(node._op)))
            sketch.edges.append((f"v{i}op", f"v{i}", False))

    def head(i: int) -> str:  # where the inputs of node i arrive: its op, as in micrograd
        return f"v{i}op" if nodes[i]._op else f"v{i}"

    for i in range(shown):
        for child in nodes[i]._children:
            j = index[id(child)]
            if j < shown:
                sketch.edges.append((f"v{j}", head(i), False))

    if shown < len(nodes):
        kids = [[index[id(c)] for c in node._children] for node in nodes]
        ops = [str(node._op) if node._op else "" for node in nodes]
        _summarize_rest(
            sketch, kids, ops, depth, shown, lambda i, j: [head(i)], lambda j: f"v{j}"
        )
        sketch.title = f"summary: the {shown:,} values nearest the output, of {len(nodes):,}"
        sketch.warning = (
            f"draw: the graph has {len(nodes):,} Value nodes, more than max_nodes={max_nodes:,}; "
            f"drawing a summary: the {shown:,} nearest the root, the other "
            f"{len(nodes) - shown:,} folded into {len(sketch.summaries)} box(es). "
            f"Pass a larger max_nodes to draw more."
        )
    return sketch


def _summarize_rest(
    sketch: _Sketch,
    kids: list[list[int]],
    ops: list[str],
    depth: list[int | None],
    shown: int,
    arrive: Callable[[int, int], list[str]],
    name: Callable[[int], str],
) -> None:
    # Nodes are numbered nearest-the-output first; kids[i] are the operands of node i, ops[i]
    # its op ("" for a leaf), depth[i] its distance from the output (None: not used by it).
    # arrive(i, j) names where the value of node j arrives in drawn node i, name(j) the drawn
    # node j itself. The hidden nodes (positions shown..end) fall into the connected pieces
    # of the hidden subgraph; each piece becomes one box, so no node is counted twice and a
    # box's arrows say exactly where its part of the graph feeds the drawn part. Union-find,
    # iterative.
    n_hidden = len(kids) - shown
    parent = list(range(n_hidden))

    def find(k: int) -> int:
        r = k
        while parent[r] != r:
            r = parent[r]
        while parent[k] != r:
            parent[k], k = r, parent[k]
        return r

    for i in range(shown, len(kids)):
        for j in kids[i]:
            if j >= shown:
                a, b = find(i - shown), find(j - shown)
                if a != b:
                    parent[max(a, b)] = min(a, b)

    pieces: dict[int, list[int]] = {}
    for k in range(n_hidden):
        pieces.setdefault(find(k), []).append(k + shown)
    # Lone inputs and constants cut off at the edge would each get a box of their own; one
    # box holds them all. The biggest pieces come first, the smallest share the last box.
    groups = sorted((g for g in pieces.values() if any(ops[i] for i in g)), key=len, reverse=True)
    lone_leaves = [i for g in pieces.values() if not any(ops[i] for i in g) for i in g]
    if lone_leaves:
        groups.append(sorted(lone_leaves))
    if len(groups) > _MAX_SUMMARY_BOXES:
        rest = [i for g in groups[_MAX_SUMMARY_BOXES - 1 :] for i in g]
        groups = groups[: _MAX_SUMMARY_BOXES - 1] + [rest]
    box_of = {}
    for b, group in enumerate(groups):
        for i in group:
            box_of[i] = f"s{b}"

    for b, group in enumerate(groups):
        counts = Counter(ops[i] for i in group)
        leaves = counts.pop("", 0)
        parts = [f"{op} {count:,}" for op, count in counts.most_common(_MAX_OPS_LISTED)]
        if len(counts) > _MAX_OPS_LISTED:
            other = sum(c for _, c in counts.most_common()[_MAX_OPS_LISTED:])
            parts.append(f"other {other:,}")
        lines = [f"\u2026 {len(group):,} more node{'s' if len(group) != 1 else ''}"]
        if parts:
            lines.append(f"ops: {', '.join(parts)}")
        if leaves:
            lines.append(f"{leaves:,} lea{'ves' if leaves != 1 else 'f'} (inputs, constants)")
        depths = [depth[i] for i in group if depth[i] is not None]
        if depths:
            lo, hi = min(depths), max(depths)
            steps = f"{lo:,}" if lo == hi else f"{lo:,}\u2013{hi:,}"
            lines.append(f"{steps} steps from the output")
        else:
            lines.append("not used by the outputs")
        sketch.summaries.append((f"s{b}", lines))

    # Drawn nodes computed from hidden ones get an arrow from the box; drawn nodes used by
    # hidden ones (shared weights, inputs) get a dashed arrow into it. One arrow per pair.
    seen: set[tuple[str, str]] = set()
    for i in range(len(kids)):
        for j in kids[i]:
            if i < shown <= j:
                edges = [(box_of[j], a, False) for a in arrive(i, j)]
            elif j < shown <= i:
                edges = [(name(j), box_of[i], True)]
            else:
                continue
            for edge in edges:
                if edge[:2] not in seen:
                    seen.add(edge[:2])
                    sketch.edges.append(edge)


# --------------------------------------------------------------------------------------
# Compiler graphs


def _short(text: str) -> str:
    return text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 1] + "\u2026"


def _attrs_text(attrs: dict) -> str:
    if not attrs:
        return ""
    return _short("[" + ", ".join(f"{k}={format_attr(v)}" for k, v in attrs.items()) + "]")


_INPUT_STYLE = 'style=filled, fillcolor="#e3edf9"'
_CONST_STYLE = 'style=filled, fillcolor="#f0f0f0", fontcolor="#555555"'
_KERNEL_STYLE = 'style=filled, fillcolor="#fde9c4"'
_OUTPUT_STYLE = 'style=filled, fillcolor="#d9f0d9", penwidth=2'
_CLUSTER_STYLE = 'style="rounded,filled", fillcolor="#fff8ec", color="#d9a440"'


def _sketch_graph(graph: Graph, max_nodes: int) -> _Sketch:
    # Breadth-first from the outputs over operands, as for Values: the first max_nodes are
    # the nodes nearest the outputs. Nodes the outputs do not use (a constant a fused
    # kernel inlined, a dead node before dce) come last, with no depth.
    everything: list[Node] = [*graph.inputs, *graph.nodes]
    position = {id(n): k for k, n in enumerate(everything)}  # DOT names follow the IR order
    index: dict[int, int] = {}
    nodes: list[Node] = []
    depth: list[int | None] = []
    queue: deque[Node] = deque()
    for out in graph.outputs:
        if id(out) not in index:
            index[id(out)] = len(nodes)
            nodes.append(out)
            depth.append(0)
            queue.append(out)
    while queue:
        node = queue.popleft()
        d = depth[index[id(node)]] + 1  # type: ignore[operator]
        for child in node.inputs:
            if id(child) not in index:
                index[id(child)] = len(nodes)
                nodes.append(child)
                depth.append(d)
                queue.append(child)
    for node in everything:
        if id(node) not in index:
            index[id(node)] = len(nodes)
            nodes.append(node)
            depth.append(None)

    outputs: dict[int, list[int]] = {}
    for k, out in enumerate(graph.outputs):
        outputs.setdefault(id(out), []).append(k)

    def name(i: int) -> str:
        return f"n{position.get(id(nodes[i]), i)}"

    def arrive(i: int, j: int) -> list[str]:
        # Where the value of node j enters node i: a kernel's steps that read it.
        node, child = nodes[i], nodes[j]
        if node.op != "kernel":
            return [name(i)]
        steps = [
            f"{name(i)}t{k}"
            for k, step in enumerate(node.value)
            if any(r[0] == "input" and r[1] is child for r in step.refs)
        ]
        return steps or [name(i)]

    shown = min(len(nodes), max_nodes)
    sketch = _Sketch()
    for i in sorted(range(shown), key=lambda i: position.get(id(nodes[i]), i)):
        node = nodes[i]
        fields = _graph_fields(node)
        style = {"input": _INPUT_STYLE, "const": _CONST_STYLE, "kernel": _KERNEL_STYLE}.get(
            node.op, ""
        )
        if id(node) in outputs:
            fields.append("output " + ", ".join(str(k) for k in outputs[id(node)]))
            style = _OUTPUT_STYLE
        sketch.records.append((name(i), fields))
        if style:
            sketch.styles[name(i)] = style
        if node.op == "kernel":
            _sketch_kernel(sketch, node, name(i))

    for i in range(shown):
        node = nodes[i]
        # One arrow per use, as for Values; into a kernel, straight to the step that reads it.
        if node.op == "kernel":
            uses = [(r[1], f"{name(i)}t{k}") for k, st in enumerate(node.value) for r in st.refs
                    if r[0] == "input"]
            read = {id(child) for child, _ in uses}
            uses += [(child, name(i)) for child in node.inputs if id(child) not in read]
        else:
            uses = [(child, name(i)) for child in node.inputs]
        for child, head in uses:
            j = index[id(child)]
            if j < shown:
                sketch.edges.append((name(j), head, False))

    kernels = sum(1 for n in graph.nodes if n.op == "kernel")
    sketch.title = (
        f"{_count(len(graph.inputs), 'input')}, {_count(len(graph.nodes), 'node')}"
        + (f" ({_count(kernels, 'fused kernel')})" if kernels else "")
        + f", {_count(len(graph.outputs), 'output')}.  blue: inputs, grey: constants, "
        + ("orange boxes: fused kernels, " if kernels else "")
        + "green: outputs"
    )
    if shown < len(nodes):
        kids = [[index[id(c)] for c in node.inputs] for node in nodes]
        ops = ["" if node.op in ("input", "const") else node.op for node in nodes]
        _summarize_rest(sketch, kids, ops, depth, shown, arrive, name)
        sketch.title = (
            f"summary: the {shown:,} IR nodes nearest the outputs, of {len(nodes):,}\n"
            + sketch.title
        )
        sketch.warning = (
            f"draw: the graph has {len(nodes):,} IR nodes, more than max_nodes={max_nodes:,}; "
            f"drawing a summary: the {shown:,} nearest the outputs, the other "
            f"{len(nodes) - shown:,} folded into {len(sketch.summaries)} box(es). "
            f"Pass a larger max_nodes to draw more."
        )
    return sketch


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _graph_fields(node: Node) -> list[str]:
    ident = f"%{node.id}"
    if node.op == "input":
        return [f"{ident} {node.name}" if node.name else ident, "input", node.type_str()]
    if node.op == "const":
        return [ident, _short(f"const {format_const(node.value)}"), node.type_str()]
    if node.op == "kernel":
        return [ident, f"kernel: {_count(len(node.value), 'fused op')}", node.type_str()]
    return [ident, node.op + _attrs_text(node.attrs), node.type_str()]


def _sketch_kernel(sketch: _Sketch, node: Node, name: str) -> None:
    # The kernel's steps as small ellipses in a box around them and the kernel's own record;
    # step-to-step arrows inside, the last step into the record, which its users read.
    members = []
    for k, step in enumerate(node.value):
        refs = []
        for kind, ref in step.refs:
            if kind == "step":
                refs.append(f"t{ref}")
                sketch.edges.append((f"{name}t{ref}", f"{name}t{k}", False))
            elif kind == "input":
                refs.append(f"%{ref.id}")
            else:
                refs.append(format_const(ref))
        text = f"t{k} = {step.op}{_attrs_text(step.attrs)} {' '.join(refs)}".rstrip()
        sketch.ops.append((f"{name}t{k}", _short(text)))
        members.append(f"{name}t{k}")
    if node.value:
        sketch.edges.append((f"{name}t{len(node.value) - 1}", name, False))
    members.append(name)
    sketch.clusters.append((f"cluster_{name}", f"fused kernel %{node.id}", members))


_WALKERS: dict[type, Callable[[Any, int], _Sketch]] = {Value: _sketch_value, Graph: _sketch_graph}


def _sketch_onnx(model: Any, max_nodes: int) -> _Sketch:
    """An ONNX model (``tg.onnx.export``'s, or any ``onnx.ModelProto``) drawn like an IR
    graph: one record per ONNX node ``name | op_type | outputs``, the graph's inputs in
    blue, initializers (parameters) in grey, outputs in green."""
    g = model.graph
    sketch = _Sketch()
    where: dict[str, str] = {}  # value name -> the record that makes it
    for k, vi in enumerate(g.input):
        sketch.records.append((f"i{k}", [vi.name, "input"]))
        sketch.styles[f"i{k}"] = _INPUT_STYLE
        where[vi.name] = f"i{k}"
    for k, init in enumerate(g.initializer):
        dims = "x".join(str(d) for d in init.dims) or "scalar"
        sketch.records.append((f"w{k}", [_short(init.name), dims]))
        sketch.styles[f"w{k}"] = _CONST_STYLE
        where[init.name] = f"w{k}"
    shown = g.node[:max_nodes]
    outputs = {o.name for o in g.output}
    for k, node in enumerate(shown):
        attrs = ", ".join(f"{a.name}={_onnx_attr(a)}" for a in node.attribute)
        fields = [_short(node.name or f"n{k}"), _short(node.op_type + (f"[{attrs}]" if attrs
                                                                      else ""))]
        fields.append(_short(", ".join(node.output)))
        sketch.records.append((f"n{k}", fields))
        if outputs & set(node.output):
            sketch.styles[f"n{k}"] = _OUTPUT_STYLE
        for name in node.input:
            if name in where:
                sketch.edges.append((where[name], f"n{k}", False))
        for name in node.output:
            where[name] = f"n{k}"
    sketch.title = (f"ONNX opset {model.opset_import[0].version if model.opset_import else '?'}"
                    f": {_count(len(g.node), 'node')}, {_count(len(g.initializer), 'initializer')}"
                    f".  blue: inputs, grey: initializers, green: outputs")
    if len(g.node) > max_nodes:
        sketch.warning = (f"draw: the ONNX graph has {len(g.node):,} nodes; drawing the first "
                          f"{max_nodes:,} (max_nodes)")
    return sketch


def _onnx_attr(a: Any) -> str:
    # onnx.AttributeProto: ints, floats, a string or one number (type 1 float, 2 int, 3 str)
    if a.ints:
        return str(list(a.ints))
    if a.floats:
        return str(list(a.floats))
    if a.type == 3:
        return a.s.decode()
    if a.type == 1:
        return f"{a.f:g}"
    return str(a.i)


# --------------------------------------------------------------------------------------
# DOT text


def _quoted(text: str) -> str:
    # Inside a DOT string only `"` needs escaping for the parser, but Graphviz then reads
    # backslash sequences in labels (\n, \l, \N ...), so a literal backslash is doubled too.
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r\n", "\n").replace("\n", "\\n") + '"'


def _record_field(text: str) -> str:
    # Record labels give { } | < > a meaning and drop leading, trailing and repeated spaces;
    # escape those to show them. A single inner space is left plain so the .dot stays
    # readable ("data 1.0000", as micrograd writes it).
    out = []
    for k, ch in enumerate(text):
        if ch in "{}|<>\\" or (
            ch == " " and (k == 0 or k == len(text) - 1 or text[k - 1] == " ")
        ):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == '"':
            out.append('\\"')
        else:
            out.append(ch)
    return "".join(out)


def _emit(sketch: _Sketch, rankdir: str) -> str:
    lines = [
        "digraph tracegrad {",
        f"  graph [rankdir={rankdir}];",
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [color="#555555", arrowsize=0.7];',
    ]
    if sketch.title:
        lines.append(
            f'  graph [label={_quoted(sketch.title)}, labelloc=t, fontname="Helvetica", '
            f"fontsize=11];"
        )
    # Node statements first by kind; those inside a cluster are written in its subgraph.
    statements: list[tuple[str, str]] = []
    for name, fields in sketch.records:
        label = "{ " + " | ".join(_record_field(f) for f in fields) + " }"
        statements.append((name, f'shape=record, label="{label}"'))
    for name, text in sketch.ops:
        statements.append((
            name,
            f"shape=ellipse, label={_quoted(text)}, fontsize=10, height=0.3, "
            f'margin="0.04,0.02", style=filled, fillcolor="#eeeeee"',
        ))
    for name, text_lines in sketch.summaries:
        label = "".join(_quoted(t)[1:-1] + "\\l" for t in text_lines)
        statements.append((
            name,
            f'shape=box, label="{label}", style="dashed,rounded,filled", '
            f'fillcolor="#f7f7f7", color="#888888", fontcolor="#333333"',
        ))
    text_of = {
        name: f"{name} [{attrs}{', ' + sketch.styles[name] if name in sketch.styles else ''}];"
        for name, attrs in statements
    }
    in_cluster = {m for _, _, members in sketch.clusters for m in members}
    lines += [f"  {text_of[name]}" for name, _ in statements if name not in in_cluster]
    for cluster, label, members in sketch.clusters:
        lines.append(f"  subgraph {cluster} {{")
        lines.append(
            f'    graph [label={_quoted(label)}, fontname="Helvetica", fontsize=10, '
            f"{_CLUSTER_STYLE}];"
        )
        lines += [f"    {text_of[m]}" for m in members]
        lines.append("  }")
    for tail, head, dashed in sketch.edges:
        attrs = ' [style=dashed, color="#999999"]' if dashed else ""
        lines.append(f"  {tail} -> {head}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"
