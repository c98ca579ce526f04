"""tracegrad.viz: drawings of Value graphs, micrograd's draw_dot style."""

from __future__ import annotations

import html
import re
import shutil
import sys
import warnings

import numpy as np
import pytest
from helpers import reference_example

from tracegrad import Value, viz
from tracegrad.viz import draw, to_dot

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz's dot program is not installed"
)


def micrograd_reference() -> tuple[Value, Value, Value]:
    """The expression from micrograd's test_engine.py, labelled and backpropagated."""
    a, b, g = reference_example(Value)
    a.label, b.label, g.label = "a", "b", "g"
    g.backward()
    return a, b, g


def walk(root: Value) -> list[Value]:
    """Every distinct node under root, found independently of viz (a stack, by id)."""
    seen, stack, out = {id(root)}, [root], []
    while stack:
        node = stack.pop()
        out.append(node)
        for child in node._children:
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return out


def dot_names(source: str, shape: str) -> list[str]:
    return re.findall(rf"^\s*(\w+) \[shape={shape}\b", source, flags=re.M)


def svg_node_titles(svg: str) -> list[str]:
    # Graphviz writes each node as <g id="nodeN" class="node"><title>NAME</title>...
    return re.findall(r'<g id="node\d+" class="node">\s*<title>([^<]*)</title>', svg)


def svg_texts(svg: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


def summary_counts(source: str) -> list[int]:
    return [int(n.replace(",", "")) for n in re.findall(r"\u2026 ([\d,]+) more node", source)]


# ---------------------------------------------------------------------------------------
# The full drawing


def test_dot_has_one_record_per_value_and_one_ellipse_per_op():
    _, _, g = micrograd_reference()
    nodes = walk(g)
    source = to_dot(g)
    assert len(dot_names(source, "record")) == len(nodes) == 39
    assert len(dot_names(source, "ellipse")) == sum(1 for n in nodes if n._op)
    # children -> op, op -> result: one arrow per operand, plus one per op
    edges = re.findall(r"^\s*\w+ -> \w+", source, flags=re.M)
    assert len(edges) == sum(len(n._children) + 1 for n in nodes if n._op)
    assert "rankdir=LR" in source
    assert "data 24.7041 | grad 1.0000" in source  # g, formatted %.4f like micrograd


@needs_dot
def test_reference_expression_renders_every_node_to_svg(tmp_path):
    pytest.importorskip("graphviz")
    a, b, g = micrograd_reference()
    nodes = walk(g)
    out = draw(g, tmp_path / "g.svg")
    assert out == tmp_path / "g.svg"
    svg = out.read_text(encoding="utf-8")

    titles = svg_node_titles(svg)
    assert len(re.findall(r'<g id="node', svg)) == len(titles)
    values = [t for t in titles if re.fullmatch(r"v\d+", t)]
    ops = [t for t in titles if re.fullmatch(r"v\d+op", t)]
    assert len(values) == len(nodes)
    assert len(ops) == sum(1 for n in nodes if n._op)
    assert len(values) + len(ops) == len(titles)
    assert len(re.findall(r'<g id="edge', svg)) == sum(
        len(n._children) + 1 for n in nodes if n._op
    )

    texts = svg_texts(svg)
    assert "data 24.7041" in texts and "grad 1.0000" in texts
    assert f"grad {a.grad:.4f}" == "grad 138.8338" and "grad 138.8338" in texts
    assert f"grad {b.grad:.4f}" == "grad 645.5773" and "grad 645.5773" in texts
    assert {"a", "b", "g"} <= set(texts)
    assert {"+", "*", "**2", "**3", "**-1", "ReLU"} <= set(texts)


@needs_dot
def test_png_and_pdf(tmp_path):
    pytest.importorskip("graphviz")
    _, _, g = micrograd_reference()
    assert draw(g, tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert draw(g, str(tmp_path / "g.PDF")).read_bytes()[:5] == b"%PDF-"


def test_label_part_only_when_label_is_set():
    x = Value(0.5)
    y = (x * 2).tanh()
    y.label = "y"
    source = to_dot(y)
    assert '"{ y | data 0.7616 | grad 0.0000 }"' in source
    assert '"{ data 0.5000 | grad 0.0000 }"' in source


def test_leaf_without_op_has_no_op_node():
    source = to_dot(Value(1.5, label="w"))
    assert dot_names(source, "record") == ["v0"]
    assert dot_names(source, "ellipse") == []
    assert "->" not in source


def test_repeated_operand_gets_one_arrow_per_use():
    a = Value(3.0, label="a")
    source = to_dot(a * a)
    assert len(dot_names(source, "record")) == 2
    assert source.count("v1 -> v0op") == 2


@needs_dot
def test_labels_with_dot_and_record_syntax_survive(tmp_path):
    pytest.importorskip("graphviz")
    a = Value(1.0, label='{a|b} <x> "q" \\ back')
    b = Value(2.0, label="two\nlines")
    c = a * b
    c._op = 'we"ird\\op'  # an op name from a custom node
    svg = draw(c, tmp_path / "c.svg").read_text(encoding="utf-8")
    texts = svg_texts(svg)
    assert '{a|b} <x> "q" \\ back' in texts
    assert {"two", "lines"} <= set(texts)
    assert 'we"ird\\op' in texts


# ---------------------------------------------------------------------------------------
# Outputs, dependencies and errors


def test_dot_file_needs_neither_package_nor_program(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # `import graphviz` now fails
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    _, _, g = micrograd_reference()
    out = draw(g, tmp_path / "g.dot")
    assert out.read_text(encoding="utf-8") == to_dot(g)
    assert draw(g, tmp_path / "g.gv").read_text(encoding="utf-8").startswith("digraph")


def test_missing_graphviz_package_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    with pytest.raises(ImportError, match=re.escape('pip install "tracegrad[viz]"')):
        draw(Value(1.0), tmp_path / "x.svg")


def test_missing_dot_program_says_how_to_install(tmp_path, monkeypatch):
    pytest.importorskip("graphviz")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(RuntimeError) as info:
        draw(Value(1.0), tmp_path / "x.png")
    message = str(info.value)
    assert "apt-get install graphviz" in message
    assert "brew install graphviz" in message
    assert "conda" in message
    assert ".dot" in message
    assert not (tmp_path / "x.png").exists()


def test_missing_dot_program_found_by_graphviz_itself(tmp_path, monkeypatch):
    # shutil.which may find a `dot` that graphviz cannot run; its error is translated too.
    graphviz = pytest.importorskip("graphviz")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: "/usr/bin/dot")

    def pipe(self, *args, **kwargs):
        raise graphviz.ExecutableNotFound(["dot", "-Tsvg"])

    monkeypatch.setattr(graphviz.Source, "pipe", pipe)
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        draw(Value(1.0), tmp_path / "x.svg")


def test_missing_dot_on_path(tmp_path, monkeypatch):
    pytest.importorskip("graphviz")
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no dot on it
    with pytest.raises(RuntimeError, match="brew install graphviz"):
        draw(Value(1.0), tmp_path / "x.svg")


@pytest.mark.parametrize("name", ["g.jpg", "g.txt", "g", "g.svg.bak"])
def test_unknown_suffix_names_the_ones_that_work(tmp_path, name):
    with pytest.raises(ValueError) as info:
        draw(Value(1.0), tmp_path / name)
    for suffix in (".svg", ".png", ".pdf", ".dot"):
        assert suffix in str(info.value)
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize("thing", [3.0, [Value(1.0)], None, "loss"])
def test_non_value_is_a_type_error_naming_the_type(tmp_path, thing):
    with pytest.raises(TypeError, match=type(thing).__name__) as info:
        draw(thing, tmp_path / "x.dot")
    assert "Value" in str(info.value)
    with pytest.raises(TypeError, match="Value"):
        to_dot(thing)


def test_bad_options():
    with pytest.raises(ValueError, match="rankdir"):
        to_dot(Value(1.0), rankdir="sideways")
    with pytest.raises(ValueError, match="max_nodes"):
        to_dot(Value(1.0), max_nodes=0)
    assert "rankdir=TB" in to_dot(Value(1.0), rankdir="TB")


# ---------------------------------------------------------------------------------------
# Large graphs: a summary instead of a hairball


def test_no_warning_at_or_below_the_limit():
    _, _, g = micrograd_reference()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        source = to_dot(g, max_nodes=39)
    assert len(dot_names(source, "record")) == 39
    assert dot_names(source, "box") == []
    assert summary_counts(source) == []


def test_summary_above_the_limit_keeps_the_nearest_nodes_and_counts_the_rest():
    _, _, g = micrograd_reference()
    with pytest.warns(UserWarning, match=r"39 Value nodes.*max_nodes=10.*summary") as record:
        source = to_dot(g, max_nodes=10)
    assert record[0].filename == __file__  # the warning points at the call to fix
    records, boxes = dot_names(source, "record"), dot_names(source, "box")
    assert len(records) == 10
    assert 1 <= len(boxes) <= viz._MAX_SUMMARY_BOXES
    assert sum(summary_counts(source)) == 39 - 10  # every hidden node counted exactly once
    assert "v0 " in source and "data 24.7041" in source  # the root is always drawn
    assert "summary: the 10 values nearest the output, of 39" in source
    # every box is wired into the drawing
    for box in boxes:
        assert re.search(rf"^\s*{box} -> \w+", source, flags=re.M)


def test_summary_box_lists_the_ops_it_hides():
    x = Value(0.5)
    for _ in range(300):
        x = (x * 0.9 + 0.1).relu()
    with pytest.warns(UserWarning):
        source = to_dot(x, max_nodes=20)
    assert sum(summary_counts(source)) == len(walk(x)) - 20
    # the first box is the biggest piece: the rest of the chain
    box = re.search(r"s0 \[shape=box, label=\"([^\"]*)\"", source).group(1)
    assert re.search(r"ops: (\* 29\d|\+ 29\d|ReLU 29\d)", box)
    assert "leaves" in box and "steps from the output" in box


def test_wide_graph_has_few_boxes_and_exact_counts():
    # A sum of 2,000 independent products: the cut-off part falls apart into many small
    # pieces; the drawing shows at most _MAX_SUMMARY_BOXES boxes, and no node is lost.
    terms = [Value(float(i)) * Value(2.0) for i in range(2000)]
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    n = len(walk(total))
    with pytest.warns(UserWarning, match=f"{n:,} Value nodes"):
        source = to_dot(total, max_nodes=100)
    assert len(dot_names(source, "record")) == 100
    assert len(dot_names(source, "box")) <= viz._MAX_SUMMARY_BOXES
    assert sum(summary_counts(source)) == n - 100


@needs_dot
def test_summary_renders_with_at_most_max_nodes_plus_a_few(tmp_path):
    pytest.importorskip("graphviz")
    _, _, g = micrograd_reference()
    with pytest.warns(UserWarning, match="summary"):
        svg = draw(g, tmp_path / "g.svg", max_nodes=12).read_text(encoding="utf-8")
    titles = svg_node_titles(svg)
    values = [t for t in titles if re.fullmatch(r"v\d+", t)]
    boxes = [t for t in titles if re.fullmatch(r"s\d+", t)]
    assert len(values) == 12
    assert 1 <= len(boxes) <= viz._MAX_SUMMARY_BOXES
    assert len(titles) <= 2 * 12 + viz._MAX_SUMMARY_BOXES  # values, their ops, the boxes


def test_100000_deep_chain_draws_a_summary_without_recursion(tmp_path):
    x = Value(1.0, label="x")
    for _ in range(100_000):
        x = x + 1
    x.label = "out"
    with pytest.warns(UserWarning, match="200,001 Value nodes"):
        out = draw(x, tmp_path / "chain.dot", max_nodes=50)
    source = out.read_text(encoding="utf-8")
    assert len(dot_names(source, "record")) == 50
    counts = summary_counts(source)
    assert sum(counts) == 200_001 - 50 and len(counts) <= 2  # the chain, its cut-off constants
    assert "ops: + 99,9" in source  # the box names the op it hides
    assert "data 100001.0000" in source  # the output is drawn


@needs_dot
def test_deep_chain_renders(tmp_path):
    pytest.importorskip("graphviz")
    x = Value(0.0)
    for _ in range(100_000):
        x = (x * 0.5).tanh() + 1
    with pytest.warns(UserWarning):
        svg = draw(x, tmp_path / "chain.svg", max_nodes=30).read_text(encoding="utf-8")
    titles = svg_node_titles(svg)
    assert len([t for t in titles if re.fullmatch(r"v\d+", t)]) == 30
    assert "more nodes" in svg


# ---------------------------------------------------------------------------------------
# Compiler graphs: one record per IR node, fused kernels as clusters


def traced_graph():
    import tracegrad as tg

    return tg.trace(lambda x, w: ((x @ w) * 2 + 1).relu().sum(), tg.TensorSpec((8, 4)),
                    tg.TensorSpec((4, 3)))


def fused_graph():
    import tracegrad as tg

    graph = tg.explain(lambda x, w: ((x @ w) * 2 + 1).relu().sum(), tg.TensorSpec((8, 4)),
                       tg.TensorSpec((4, 3))).graph
    assert any(n.op == "kernel" for n in graph.nodes)  # else this test shows nothing
    return graph


def ir_ids(source: str) -> set[int]:
    return {int(i) for i in re.findall(r"%(\d+)", source)}


def test_traced_graph_has_one_record_per_ir_node_wired_from_operands():
    graph = traced_graph()
    everything = graph.inputs + graph.nodes
    source = to_dot(graph)
    assert dot_names(source, "record") == [f"n{n.id}" for n in everything]
    assert ir_ids(source) == {n.id for n in everything}
    for n in graph.nodes:  # every operand arrow, one per use
        for i in n.inputs:
            assert f"n{i.id} -> n{n.id};" in source
    assert source.count("->") == sum(len(n.inputs) for n in graph.nodes)
    # op, short attributes and type in the label; the output marked
    assert '"{ %0 arg0 | input | f32[8,4] }"' in source
    assert "| matmul | f32[8,3] }" in source
    assert "| const 2.0 | f32[] }" in source
    assert re.search(r"sum\[axes=\(0, 1\), keepdim=False\] \| f32\[\] \| output 0 }", source)
    assert "subgraph" not in source


def test_fused_graph_draws_each_kernel_as_a_cluster_of_its_steps():
    graph = fused_graph()
    everything = graph.inputs + graph.nodes
    kernels = [n for n in graph.nodes if n.op == "kernel"]
    source = to_dot(graph)
    assert ir_ids(source) >= {n.id for n in everything}
    assert dot_names(source, "record") == [f"n{n.id}" for n in everything]
    for k in kernels:
        body = re.search(rf"subgraph cluster_n{k.id} \{{(.*?)\n  \}}", source, flags=re.S)
        assert body, f"kernel %{k.id} is not a cluster"
        body = body.group(1)
        assert f"fused kernel %{k.id}" in body
        assert f"n{k.id} [shape=record" in body  # the kernel's own node, inside its box
        steps = re.findall(rf"(n{k.id}t\d+) \[shape=ellipse", body)
        assert len(steps) == len(k.value)
        assert f"t0 = {k.value[0].op}" in body
        # the kernel's operands point into the cluster, at the steps that read them
        for operand in k.inputs:
            assert re.search(rf"^  n{operand.id} -> n{k.id}t\d+;", source, flags=re.M)
        assert f"{steps[-1]} -> n{k.id};" in source
    out = graph.outputs[0]
    assert re.search(rf"n{out.id} \[shape=record, label=\"[^\"]*output 0 }}\"", source)


def test_graph_outputs_are_all_marked_with_their_positions():
    import tracegrad as tg

    def f(x):
        y = x.exp()
        return y, x * 3, y  # one node returned twice

    graph = tg.trace(f, tg.TensorSpec((2,)))
    source = to_dot(graph)
    assert re.search(r"\| exp \| f32\[2\] \| output 0, 2 }", source)
    assert re.search(r"\| mul \| f32\[2\] \| output 1 }", source)
    assert source.count("output ") == 2


def test_big_graph_draws_a_summary_nearest_the_outputs():
    import tracegrad as tg

    def chain(x):
        for _ in range(200):
            x = (x * 0.5).tanh()
        return x.sum()

    graph = tg.trace(chain, tg.TensorSpec((4,)))
    n = len(graph.inputs) + len(graph.nodes)
    with pytest.warns(UserWarning, match=f"{n:,} IR nodes.*max_nodes=30.*summary") as record:
        source = to_dot(graph, max_nodes=30)
    assert record[0].filename == __file__
    assert len(dot_names(source, "record")) == 30
    assert sum(summary_counts(source)) == n - 30
    assert f"n{graph.outputs[0].id} " in source  # the output is always drawn
    assert "ops: " in source and "tanh" in source
    assert f"summary: the 30 IR nodes nearest the outputs, of {n}" in source


@needs_dot
@pytest.mark.parametrize("make", [traced_graph, fused_graph])
def test_graph_svg_parses_and_shows_every_node(tmp_path, make):
    import xml.etree.ElementTree as ET

    pytest.importorskip("graphviz")
    graph = make()
    out = draw(graph, tmp_path / "g.svg", rankdir="TB")
    ET.parse(out)  # well-formed XML
    svg = out.read_text(encoding="utf-8")
    titles = svg_node_titles(svg)
    assert {f"n{n.id}" for n in graph.inputs + graph.nodes} <= set(titles)
    texts = set(svg_texts(svg))
    assert {f"%{n.id}" for n in graph.nodes if n.op != "input"} <= texts
    kernels = [n for n in graph.nodes if n.op == "kernel"]
    assert len(re.findall(r'class="cluster"', svg)) == len(kernels)
    assert draw(graph, tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compiled_function_graph_draws(tmp_path):
    import numpy as np

    import tracegrad as tg

    step = tg.compile(lambda x: (x * 2 + 1).relu().sum())
    x = tg.tensor(np.ones(5, np.float32))
    step(x), step(x)  # the first call runs eagerly, the second compiles
    source = draw(step.graph, tmp_path / "compiled.dot").read_text(encoding="utf-8")
    assert "subgraph cluster_" in source
    assert "output 0" in source


def test_training_curves_writes_a_png_of_a_run(tmp_path):
    pytest.importorskip("matplotlib")
    from types import SimpleNamespace

    from tracegrad.plots import training_curves

    run = SimpleNamespace(losses=list(np.linspace(2.0, 0.1, 12)), epochs=3,
                          test_accuracies=[0.8, 0.9, 0.95], test_accuracy=0.95)
    path = training_curves(run, tmp_path / "run.png", "a run")
    assert path == tmp_path / "run.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
