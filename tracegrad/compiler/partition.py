"""Splitting a traced forward+backward graph, and wiring a program's inputs and outputs.

A compiled function whose outputs must support ``.backward()`` outside it is traced as one
joint graph; `split_backward` cuts it into the forward program (which also outputs what the
backward needs) and the backward program (AOTAutograd's partition). `feeders` says where
each program input comes from on a call, `donations` which outputs may be computed in the
memory of the input they replace.
"""

from __future__ import annotations

from .ir import Graph, Node
from .trace import Capture


def split_backward(graph: Graph, capture: Capture) -> tuple[Graph, Graph, int]:
    """Partition a joint forward+backward graph: the forward part also outputs every value
    the backward part needs (AOTAutograd's "save what is needed" partition)."""
    from .ir import walk_topological

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


def donations(capture: Capture) -> list:
    """(output index, input node) for each write-back of a tensor the graph also reads."""
    input_of = {id(t): node for t, node in capture.captured}
    for tid, index in capture.arg_index.items():  # (a scan per argument was quadratic)
        if index < len(capture.arg_paths):
            input_of[tid] = capture.arg_paths[index][1]
    out = [(capture.n_user + j, input_of[id(t)])
           for j, (t, _) in enumerate(capture.data_writes) if id(t) in input_of]
    return out + [(j, node) for _, node, j in capture.grad_buffers]


def feeders(graph: Graph, capture: Capture) -> list:
    by_node: dict[int, tuple] = {}
    for k, (_, node) in enumerate(capture.arg_paths):
        by_node[id(node)] = ("arg", k)
    for t, node in capture.captured:
        by_node[id(node)] = ("data", (t, node))
    for t, node in capture.grad_inputs:
        by_node[id(node)] = ("grad", (t, node))
    for t, node, _ in capture.grad_buffers:
        by_node[id(node)] = ("grad", (t, node))
    for d, key, node in capture.setting_inputs:  # key: (name, index in a tuple or None)
        by_node[id(node)] = ("setting", (d, key))
    return [by_node[id(n)] for n in graph.inputs]
