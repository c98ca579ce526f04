"""The static graph: a list of nodes in topological order, in SSA form, printable like a jaxpr.

A `Node` is one value: an input, a constant, one primitive applied to earlier nodes, or a
fused ``kernel`` (a small chain of primitives run as one unit). A `Graph` lists its inputs,
its nodes (each defined once, after everything it uses) and its outputs. It prints as typed
text (``%7:f32[128,256] = mul %5 %6``), checks itself (`Graph.check`) and runs itself with
the reference interpreter (`Graph.__call__`), against which every backend is tested.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from ..dtypes import short_name
from ..ops import PRIMITIVES
from ..ops.movement import SLOT


class Node:
    """One SSA value. ``op`` is a primitive name, ``"input"``, ``"const"`` or ``"kernel"``."""

    __slots__ = ("id", "op", "inputs", "attrs", "shape", "dtype", "value", "name")

    def __init__(self, op: str, inputs: Sequence["Node"], attrs: dict, shape: tuple,
                 dtype: np.dtype, value: Any = None, name: str = ""):
        self.id = -1
        self.op = op
        self.inputs = tuple(inputs)
        self.attrs = attrs
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.value = value  # the array of a "const"; the body (list of steps) of a "kernel"
        self.name = name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def with_inputs(self, inputs: Sequence["Node"]) -> "Node":
        """This node reading ``inputs`` instead: the node itself when they are the same
        nodes, else a new node (a pass never changes a node that the graph it was given
        holds). A kernel's steps are pointed at the new inputs too."""
        inputs = tuple(inputs)
        old = self.inputs
        if len(inputs) == len(old) and all(a is b for a, b in zip(inputs, old)):
            return self
        value = self.value
        if self.op == "kernel":
            to = {id(a): b for a, b in zip(old, inputs)}
            value = [Step(st.op, [(k, to.get(id(r), r)) if k == "input" else (k, r)
                                  for k, r in st.refs], st.attrs, st.shape, st.dtype)
                     for st in value]
        return Node(self.op, inputs, self.attrs, self.shape, self.dtype, value, self.name)


    @property
    def nbytes(self) -> int:
        n = self.dtype.itemsize
        for d in self.shape:
            n *= d
        return n

    def type_str(self) -> str:
        return f"{short_name(self.dtype)}[{','.join(str(d) for d in self.shape)}]"

    def __repr__(self) -> str:
        return f"%{self.id}:{self.type_str()}"


def rewire(node: Node, replaced: dict[int, Node]) -> Node:
    """``node`` reading ``replaced[id(i)]`` in place of each input ``i`` found there: the
    node itself when none is, else a new node (`Node.with_inputs`)."""
    if not replaced or not any(id(i) in replaced for i in node.inputs):
        return node
    return node.with_inputs([replaced.get(id(i), i) for i in node.inputs])


def format_attr(value: Any) -> str:
    if isinstance(value, np.ndarray):
        if value.size <= 4:
            return f"array({value.tolist()})"
        return f"array<{short_name(value.dtype)}{list(value.shape)}>"
    if isinstance(value, np.dtype):
        return short_name(value)
    if isinstance(value, slice):
        parts = ["" if v is None else str(v) for v in (value.start, value.stop, value.step)]
        return ":".join(parts[:2]) if value.step is None else ":".join(parts)
    if value is SLOT:
        return "#"
    if value is Ellipsis:
        return "..."
    if isinstance(value, tuple):
        inner = ", ".join(format_attr(v) for v in value)
        return "(" + inner + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def format_const(value: np.ndarray) -> str:
    if value.size == 1:
        v = value.reshape(())[()]
        return str(v) if value.dtype.kind in "fiub" else repr(v.item())
    if value.size <= 6:
        return str(value.tolist())
    return f"<{value.size} values>"


class Graph:
    """A static computation: ``inputs -> nodes -> outputs``.

    >>> g = tg.trace(lambda x: (x * 2).exp().sum(), tg.TensorSpec((3,)))
    >>> print(g)          # the IR
    >>> g(np.ones(3, np.float32))   # the reference interpreter
    """

    def __init__(self, inputs: list[Node], nodes: list[Node], outputs: list[Node]):
        self.inputs = list(inputs)
        self.nodes = list(nodes)
        self.outputs = list(outputs)
        self.renumber()

    # ---------------------------------------------------------------- structure

    def renumber(self) -> None:
        """Give nodes consecutive ids in order (inputs first), as the printout shows them.
        A node shared by two graphs (a pass keeps the nodes it does not change) has the
        number of the graph that was numbered last: printing and lowering number first."""
        for i, n in enumerate(self.inputs):
            n.id = i
        for j, n in enumerate(self.nodes, start=len(self.inputs)):
            n.id = j

    def users(self) -> dict[int, list[Node]]:
        """id(node) -> the nodes that read it (outputs not counted)."""
        out: dict[int, list[Node]] = {id(n): [] for n in self.inputs + self.nodes}
        for n in self.nodes:
            for i in n.inputs:
                out[id(i)].append(n)
        return out

    def copy(self) -> "Graph":
        """A new Graph with new Node objects (passes may then rewrite it freely)."""
        mapping: dict[int, Node] = {}

        def clone(n: Node) -> Node:
            value = n.value
            if n.op == "kernel":  # the steps refer to input nodes: point them at the copies
                value = [Step(st.op, [(k, mapping[id(r)] if k == "input" else r)
                                      for k, r in st.refs], dict(st.attrs), st.shape, st.dtype)
                         for st in n.value]
            c = Node(n.op, [mapping[id(i)] for i in n.inputs], dict(n.attrs), n.shape,
                     n.dtype, value, n.name)
            mapping[id(n)] = c
            return c

        inputs = [clone(n) for n in self.inputs]
        nodes = [clone(n) for n in self.nodes]
        return Graph(inputs, nodes, [mapping[id(o)] for o in self.outputs])

    def kernel_count(self) -> int:
        return sum(1 for n in self.nodes if n.op not in ("const",))

    # ---------------------------------------------------------------- checking

    def check(self) -> "Graph":
        """Validate SSA order and every node's shape and dtype against its primitive's rule.

        Raises ``ValueError`` naming the first bad node; returns the graph for chaining.
        """
        defined: set[int] = set()
        for n in self.inputs:
            if n.op != "input":
                raise ValueError(f"graph input %{n.id} has op {n.op!r}, expected 'input'")
            defined.add(id(n))
        for n in self.nodes:
            for i in n.inputs:
                if id(i) not in defined:
                    raise ValueError(f"%{n.id} = {n.op} uses %{i.id} before it is defined")
            if n.op == "const":
                if not isinstance(n.value, np.ndarray) or n.value.shape != n.shape:
                    raise ValueError(f"const %{n.id} does not hold an array of shape {n.shape}")
            elif n.op == "kernel":
                self._check_kernel(n)
            else:
                shape, dtype = PRIMITIVES[n.op].infer(*n.inputs, **n.attrs)
                if tuple(shape) != n.shape or np.dtype(dtype) != n.dtype:
                    raise ValueError(
                        f"%{n.id} = {n.op}: recorded as {n.type_str()}, but the shape rule "
                        f"gives {short_name(np.dtype(dtype))}{list(shape)}"
                    )
            if id(n) in defined:
                raise ValueError(f"%{n.id} is defined twice")
            defined.add(id(n))
        for o in self.outputs:
            if id(o) not in defined:
                raise ValueError(f"output %{o.id} is not defined by the graph")
        return self

    def _check_kernel(self, n: Node) -> None:
        inputs = {id(i) for i in n.inputs}
        for k, step in enumerate(n.value):
            if step.op not in PRIMITIVES:
                raise ValueError(f"kernel %{n.id} holds an unknown op {step.op!r}")
            for kind, ref in step.refs:
                if kind == "input" and id(ref) not in inputs:
                    raise ValueError(f"kernel %{n.id} step {k} reads a node that is not one "
                                     f"of the kernel's inputs")
                if kind == "step" and not 0 <= ref < k:
                    raise ValueError(f"kernel %{n.id} step {k} reads step {ref}")

    # ---------------------------------------------------------------- running

    def __call__(self, *args: Any) -> list[np.ndarray]:
        """Run the graph with the reference interpreter; returns the output arrays."""
        if len(args) != len(self.inputs):
            raise TypeError(f"the graph takes {len(self.inputs)} inputs, got {len(args)}")
        env: dict[int, np.ndarray] = {}
        for node, a in zip(self.inputs, args):
            arr = np.asarray(a._data if hasattr(a, "_data") and not isinstance(a, np.ndarray)
                             else a)
            if arr.shape != node.shape:
                raise ValueError(f"input %{node.id} expects shape {node.shape}, got {arr.shape}")
            env[id(node)] = arr
        with np.errstate(all="ignore"):
            for node in self.nodes:
                env[id(node)] = evaluate(node, [env[id(i)] for i in node.inputs])
        return [env[id(o)] for o in self.outputs]

    # ---------------------------------------------------------------- printing

    def __str__(self) -> str:
        self.renumber()
        head = ", ".join(f"%{n.id}:{n.type_str()}" + (f" {n.name}" if n.name else "")
                         for n in self.inputs)
        lines = [f"graph({head}) {{"]
        for n in self.nodes:
            lines.extend("  " + line for line in format_node(n))
        lines.append("  return " + ", ".join(f"%{o.id}" for o in self.outputs))
        lines.append("}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<Graph: {len(self.inputs)} inputs, {len(self.nodes)} nodes, "
                f"{len(self.outputs)} outputs>")


def format_node(n: Node) -> list[str]:
    lhs = f"%{n.id}:{n.type_str()}"
    if n.op == "const":
        return [f"{lhs} = const {format_const(n.value)}"]
    args = " ".join(f"%{i.id}" for i in n.inputs)
    if n.op == "kernel":
        lines = [f"{lhs} = kernel {args} {{"]
        for k, step in enumerate(n.value):
            refs = " ".join(_step_ref(r) for r in step.refs)
            attrs = _attrs_str(step.attrs)
            lines.append(f"    t{k} = {step.op}{attrs} {refs}")
        lines.append("  }")
        return lines
    return [f"{lhs} = {n.op}{_attrs_str(n.attrs)} {args}".rstrip()]


def _attrs_str(attrs: dict) -> str:
    if not attrs:
        return ""
    return "[" + ", ".join(f"{k}={format_attr(v)}" for k, v in attrs.items()) + "]"


def _step_ref(ref: Any) -> str:
    kind, i = ref
    return f"t{i}" if kind == "step" else f"%{i.id}" if kind == "input" else format_const(i)


class Step:
    """One primitive inside a fused kernel: ``refs`` are ("input", node), ("step", k) for
    the k-th earlier step, or ("const", array)."""

    __slots__ = ("op", "refs", "attrs", "shape", "dtype")

    def __init__(self, op: str, refs: list, attrs: dict, shape: tuple, dtype: np.dtype):
        self.op, self.refs, self.attrs, self.shape, self.dtype = op, refs, attrs, shape, dtype


def evaluate(node: Node, args: list[np.ndarray]) -> np.ndarray:
    """One node's value from its inputs' values (the interpreter's single step)."""
    if node.op == "const":
        return node.value
    if node.op == "kernel":
        by_input = {id(i): a for i, a in zip(node.inputs, args)}
        results: list[np.ndarray] = []
        for step in node.value:
            vals = [results[r[1]] if r[0] == "step" else by_input[id(r[1])] if r[0] == "input"
                    else r[1] for r in step.refs]
            results.append(np.asarray(PRIMITIVES[step.op].forward(*vals, **step.attrs)))
        return results[-1]
    return np.asarray(PRIMITIVES[node.op].forward(*args, **node.attrs))


def walk_topological(outputs: Iterable[Node]) -> list[Node]:
    """Every node the outputs depend on, in a valid order (iterative DFS post-order)."""
    order: list[Node] = []
    seen: set[int] = set()
    for root in outputs:
        if id(root) in seen:
            continue
        stack = [(root, iter(root.inputs))]
        seen.add(id(root))
        while stack:
            node, it = stack[-1]
            for child in it:
                if id(child) not in seen:
                    seen.add(id(child))
                    stack.append((child, iter(child.inputs)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order
