"""Common-subexpression elimination: one node for each distinct (op, inputs, attributes).

Equal small constants merge too (unless ``consts=False``: the ONNX exporter compares graphs
traced at two sizes of a dynamic axis node for node, and a size that equals another one in
one trace only must not merge there). Random nodes never merge: two draws are two values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...ops.base import having
from ..ir import Graph, Node, rewire

# Impure primitives ("random": new numbers on every run): never merged nor folded.
RANDOM = having("random")

_MAX_CONST_KEY = 256  # constants larger than this are compared by identity only


def freeze(value: Any) -> Any:
    """A hashable stand-in for an attribute value (arrays, slices, dtypes, nested tuples)."""
    if isinstance(value, np.ndarray):
        return ("ndarray", value.shape, value.dtype.str, value.tobytes())
    if isinstance(value, slice):
        return ("slice", value.start, value.stop, value.step)
    if isinstance(value, (tuple, list)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    if isinstance(value, np.dtype):
        return ("dtype", value.str)
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return value


def node_key(node: Node, canonical: dict[int, Node], consts: bool = True) -> Any:
    if node.op == "input" or node.op in RANDOM:
        return None
    if node.op == "const":
        if not consts or node.value.size > _MAX_CONST_KEY:
            return None
        return ("const", node.value.dtype.str, node.value.shape, node.value.tobytes())
    return (node.op, tuple(id(canonical.get(id(i), i)) for i in node.inputs),
            freeze(node.attrs))


def cse(graph: Graph, backend: Any = None, consts: bool = True) -> tuple[Graph, str]:
    seen: dict[Any, Node] = {}
    canonical: dict[int, Node] = {}
    kept: list[Node] = []
    for original in graph.nodes:
        node = rewire(original, canonical)
        key = node_key(node, canonical, consts)
        if key is not None and key in seen:
            canonical[id(original)] = seen[key]
            continue
        if node is not original:
            canonical[id(original)] = node
        if key is not None:
            seen[key] = node
        kept.append(node)
    outputs = [canonical.get(id(o), o) for o in graph.outputs]
    merged = len(graph.nodes) - len(kept)
    return Graph(graph.inputs, kept, outputs), f"merged {merged} duplicate node(s)"
