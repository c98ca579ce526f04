"""Dead-code elimination: drop every node no output depends on, except random draws (an
unused draw still advances its generator in eager code, so the program makes it too) and
value checks (eager code raises on bad values whether or not the result is used)."""

from __future__ import annotations

from typing import Any

from ...ops.base import having
from ..ir import Graph, walk_topological

RANDOM, RAISES = having("random"), having("raises")


def dce(graph: Graph, backend: Any = None, *, draws: bool = True) -> tuple[Graph, str]:
    """Without ``draws``, unused random draws and checks go too (an exported model keeps no
    generator and raises nothing)."""
    roots = list(graph.outputs) + [n for n in graph.nodes
                                   if draws and (n.op in RANDOM or n.op in RAISES)]
    live = {id(n) for n in walk_topological(roots)}
    kept = [n for n in graph.nodes if id(n) in live]
    removed = len(graph.nodes) - len(kept)
    return Graph(graph.inputs, kept, graph.outputs), f"removed {removed} dead node(s)"
