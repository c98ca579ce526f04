"""Differentiable compiled outputs: a compiled function whose outputs require grad hands
out tensors whose backward runs the compiled backward program (as ``torch.compile`` does),
so that ``model = tg.compile(model)`` drops into an ordinary training loop.

`BackwardProgram` is the backward half of such a function's joint graph (see
partition.py), `CompiledBackward` the pseudo-primitive its outputs point to, and
`differentiable` builds the result of one run.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ..autograd import _mode
from ..gradarray import GradArray
from ..node import _NO_ATTRS
from ..ops.base import rule_facts
from ..tensor import Tensor, _leaf, _result
from ..views import view_of
from .backends import Backend
from .ir import Graph
from .optimize import optimize
from .trace import build_tree


class CompiledBackward:
    """The pseudo-primitive that a differentiable compiled output points to: its VJP runs
    the compiled backward program on the values the forward program saved."""

    name = "compiled"
    kind = "compiled"
    passes_gradient = False

    def __init__(self, backward: "BackwardProgram", saved: list, which: int, n_outputs: int):
        self.backward, self.saved, self.which, self.n_outputs = backward, saved, which, n_outputs

    def vjp(self, g: Tensor, out: Tensor, *targets: Tensor) -> tuple:
        if _mode.enabled:  # create_graph: the gradients would have no graph of their own
            raise RuntimeError(
                "backward through the result of a compiled function with create_graph=True "
                "(a gradient penalty, a Hessian-vector product): its compiled backward gives "
                "first-order gradients only, so the gradients' own gradients would be "
                "missing. Compile the whole computation, gradient included (tg.compile of a "
                "function that calls tg.autograd.grad(..., create_graph=True)), or call the "
                "function eagerly")
        return self.backward.run(self.saved, self.which, g, targets)

    reads, per_input, arithmetic = rule_facts(vjp)  # as a primitive's (ops.base)


class BackwardProgram:
    """The backward half of a differentiable compiled function: (saved values, cotangents)
    -> gradients for each target (argument or captured tensor that requires grad)."""

    def __init__(self, graph: Graph, cot_shapes: list, backend: Backend,
                 check_finite: bool = False):
        self.graph, plan, self.records = optimize(graph, backend=backend)
        self.program = backend.program(self.graph, plan, check_finite)
        self.lock = threading.Lock()
        self.cot_shapes = cot_shapes  # (shape, dtype) per differentiable output

    def run(self, saved: list, which: int, g: Tensor, targets: tuple) -> tuple:
        cots = [np.zeros(shape, dtype) for shape, dtype in self.cot_shapes]
        cots[which] = np.asarray(g._data, dtype=self.cot_shapes[which][1])
        with self.lock:  # one run at a time: the program's buffers are reused
            outs = [np.array(o, copy=True) for o in self.program(*saved, *cots)]
        if isinstance(g, GradArray):
            return tuple(GradArray(o) for o in outs)
        return tuple(_leaf(o) for o in outs)


def differentiable(variant: Any, outs: tuple, tensors: Any) -> Any:
    """The result of a differentiable variant: its tensors point back to the compiled
    backward program, with the values this run saved for it."""
    # (the entry handed over memory of their own: this run's, whoever runs next)
    saved = list(outs[len(outs) - variant.n_saved:]) if variant.n_saved else []
    targets = tuple(tensors[src] if kind == "arg" else src
                    for kind, src in variant.capture.grad_targets)
    which = {k: j for j, (k, _) in enumerate(variant.capture.cotangents)}

    def leaf(i: int) -> Tensor:
        view = variant.capture.views.get(i)
        if view is not None:  # an argument or a tensor read, or a view of it, as in eager
            (where, src), steps = view
            return view_of(tensors[src] if where == "arg" else src, steps,
                           i in variant.capture.grad_views)
        if i in which:
            op = CompiledBackward(variant.backward, saved, which[i], len(which))
            return _result(outs[i], op, targets, _NO_ATTRS, True)
        return _leaf(outs[i])

    return build_tree(variant.capture.out_tree, leaf)
