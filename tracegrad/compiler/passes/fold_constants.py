"""Constant folding: a node whose inputs are all constants is computed now, once.

Folding is skipped where it would only make a big constant out of a small one (an expand of
a scalar to a large shape is cheaper to keep as a view than to store).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...ops.base import having
from ..ir import Graph, Node, evaluate, rewire

# Impure primitives ("random": new numbers on every run): never merged nor folded.
RANDOM = having("random")

_MAX_GROWTH_ELEMENTS = 4096


def fold_constants(graph: Graph, backend: Any = None) -> tuple[Graph, str]:
    folded = 0
    replaced: dict[int, Node] = {}
    nodes: list[Node] = []
    for original in graph.nodes:
        node = rewire(original, replaced)
        if node is not original:
            replaced[id(original)] = node
        if node.op not in ("const", "input") and node.op not in RANDOM and node.inputs and all(
            i.op == "const" for i in node.inputs
        ):
            size = int(np.prod(node.shape))
            biggest_input = max(int(i.value.size) for i in node.inputs)
            if size <= max(biggest_input, _MAX_GROWTH_ELEMENTS):
                with np.errstate(all="ignore"):
                    value = np.array(evaluate(node, [i.value for i in node.inputs]), copy=True)
                const = Node("const", (), {}, node.shape, node.dtype, value=value)
                replaced[id(original)] = const
                nodes.append(const)
                folded += 1
                continue
        nodes.append(node)
    outputs = [replaced.get(id(o), o) for o in graph.outputs]
    return Graph(graph.inputs, nodes, outputs), f"folded {folded} node(s) into constants"
