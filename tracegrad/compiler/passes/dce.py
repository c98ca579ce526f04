"""Dead-code elimination: drop every node no output depends on."""

from __future__ import annotations

from typing import Any

from ..ir import Graph, walk_topological


def dce(graph: Graph, backend: Any = None) -> tuple[Graph, str]:
    live = {id(n) for n in walk_topological(graph.outputs)}
    kept = [n for n in graph.nodes if id(n) in live]
    removed = len(graph.nodes) - len(kept)
    return Graph(graph.inputs, kept, graph.outputs), f"removed {removed} dead node(s)"
