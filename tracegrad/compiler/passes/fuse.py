"""Operator fusion: chains of elementwise ops (with a trailing reduction where possible)
become one ``kernel`` node.

A chain grows while the next op is elementwise, reads the previous result (once), keeps its
shape and dtype, and the previous result has no other reader. Where two chains meet
(``a * b + c * d``), the longer one continues and the other becomes an input.
Which ops a kernel may hold is the backend's answer (`Backend.fuses`, by default the
primitives declaring "fusible"; `Backend.reductions` for the trailing reduction). The NumPy
backend runs a kernel as a sequence of in-place ufunc calls on one buffer (no temporaries);
the C backend makes it one loop nest.
"""

from __future__ import annotations

from typing import Any

from ..ir import Graph, Node, Step, rewire


def fuse(graph: Graph, backend: Any = None) -> tuple[Graph, str]:
    if backend is None:
        from ..backends import get_backend
        backend = get_backend("numpy")
    fusible: dict[str, bool] = {}
    reductions = backend.reductions

    def fuses(op: str) -> bool:
        yes = fusible.get(op)
        if yes is None:
            yes = fusible[op] = bool(backend.fuses(op))
        return yes

    users = graph.users()
    outputs = {id(o) for o in graph.outputs}

    def single_use(n: Node) -> bool:
        return id(n) not in outputs and len(users[id(n)]) == 1

    chain_of: dict[int, list[Node]] = {}  # id(last node of a chain) -> the chain
    chains: list[list[Node]] = []
    for node in graph.nodes:
        if node.op not in reductions and not fuses(node.op):
            continue
        prev = [i for i in node.inputs if id(i) in chain_of and single_use(i)]
        if node.op in reductions:
            if len(node.inputs) == 1 and prev and prev[0].dtype == node.dtype:
                chain = chain_of.pop(id(prev[0]))
                chain.append(node)  # a trailing reduction closes the chain
            continue
        # Continue one chain (the longest, when several end here: the others become
        # inputs of the kernel), if it keeps the shape and dtype and is read only once.
        prev = [p for p in prev if p.shape == node.shape and p.dtype == node.dtype
                and sum(1 for i in node.inputs if i is p) == 1]
        if prev:
            p = max(prev, key=lambda p: len(chain_of[id(p)]))
            chain = chain_of.pop(id(p))
            chain.append(node)
            chain_of[id(node)] = chain
        else:
            chain = [node]
            chains.append(chain)
            chain_of[id(node)] = chain

    kernels = {id(c[-1]): c for c in chains if len(c) >= 2}
    members = {id(n) for c in kernels.values() for n in c}
    replaced: dict[int, Node] = {}
    nodes: list[Node] = []
    for node in graph.nodes:
        if id(node) in kernels:
            k = _make_kernel(kernels[id(node)], replaced)
            replaced[id(node)] = k
            nodes.append(k)
        elif id(node) not in members:
            new = rewire(node, replaced)
            if new is not node:
                replaced[id(node)] = new
            nodes.append(new)
    outs = [replaced.get(id(o), o) for o in graph.outputs]
    fused = sum(len(c) for c in kernels.values())
    return Graph(graph.inputs, nodes, outs), \
        f"fused {fused} node(s) into {len(kernels)} kernel(s)"


def _make_kernel(chain: list[Node], replaced: dict[int, Node]) -> Node:
    position = {id(n): k for k, n in enumerate(chain)}
    inputs: list[Node] = []
    seen: set[int] = set()  # ids of the inputs (a long chain may read thousands)
    steps: list[Step] = []
    for n in chain:
        refs = []
        for i in n.inputs:
            if id(i) in position:
                refs.append(("step", position[id(i)]))
            elif i.op == "const" and i.value.size == 1:
                refs.append(("const", i.value))
            else:
                src = replaced.get(id(i), i)
                if id(src) not in seen:
                    seen.add(id(src))
                    inputs.append(src)
                refs.append(("input", src))
        steps.append(Step(n.op, refs, dict(n.attrs), n.shape, n.dtype))
    last = chain[-1]
    return Node("kernel", inputs, {}, last.shape, last.dtype, value=steps)
