"""Variants: `Variant`, one compiled form of a tensor function (its graph, program, guards
and generated entry), and the variant cache that both compilers keep (tensor programs in
api.py, Value programs in values_api.py): variants by cache key, newest first, at most
`MAX_KEPT` in all (the oldest goes), and one warning once a function has compiled more than
`MAX_VARIANTS` times."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

from .. import autograd, dtypes
from ..tensor import Tensor
from .aliasing import alias_plan, overlapping
from .entry import build_entry
from .ir import Graph
from .trace import Capture, tensor_mod

MAX_VARIANTS = 8  # compiles after which a warning says why the function keeps recompiling
MAX_KEPT = 32  # variants kept per compiled function (the oldest is dropped)


def keep(variants: dict, order: list, key: Any, variant: Any) -> None:
    """Put ``variant`` first under ``key``; drop the oldest variant beyond `MAX_KEPT`, so
    memory stays bounded."""
    variants.setdefault(key, []).insert(0, variant)
    order.append((key, variant))
    if len(order) > MAX_KEPT:
        old_key, old = order.pop(0)
        variants[old_key].remove(old)
        if not variants[old_key]:
            del variants[old_key]


def warn_recompiling(fn: Any, misses: int, reason: str, advice: str) -> None:
    """The warning for a function compiled more than `MAX_VARIANTS` times."""
    warnings.warn(
        f"tg.compile: {getattr(fn, '__name__', 'the function')} has been compiled "
        f"{misses} times (last reason: {reason}). {advice}", stacklevel=4)


@dataclass
class Variant:
    graph: Graph
    program: Any  # the backend's program: (*input arrays) -> outputs
    capture: Capture
    feeders: list  # per graph input: ("arg", k) | ("data", T) | ("grad", T)
    n_user_outputs: int
    modules: list  # the Modules whose training flags were guarded
    training: tuple
    structure_epoch: int
    guards: list  # (what, getter, fingerprint): Python values the trace read (see guards.py)
    records: list = field(default_factory=list)
    compile_seconds: float = 0.0
    backward: Any = None  # a BackwardProgram when the outputs are differentiable
    settings: list = field(default_factory=list)  # (what, dict, keys, values at trace time)
    n_saved: int = 0
    # per program input argument: ("T", shape, dtype, requires_grad) for a tensor,
    # ("A", shape, dtype) for a NumPy array, ("F",) for a float
    arg_types: list = field(default_factory=list)
    arg_fps: list = field(default_factory=list)  # (index in the flat args, fingerprint)
    grad_enabled: bool = True
    volatile: bool = False  # the trace changed what it read: never reused
    anomaly: bool = False  # compiled under tg.detect_anomaly(): checks every value
    # a dynamic variant (see dynamic.py): ([(argument, axis)] of size n, its DynamicProgram)
    dynamic: Any = None
    values: bool = True  # (a dynamic variant traces new sizes as it was traced)
    trace_settings: list = field(default_factory=list)

    def __post_init__(self) -> None:
        # (made right after its trace: a backward in it baked in the hooks there are now)
        self.hooks_epoch = autograd.hooks_changed[0] if self.capture.called_backward else None
        self.default_float = dtypes.default_float  # (Python floats' dtype in the trace)
        self._owns = [self.program.owns(k) for k in range(len(self.graph.outputs))]
        # A user output that is a gradient the function also wrote (``return loss, x.grad``)
        # is handed out as that very ``.grad`` tensor, as in eager mode: no copy.
        outs, k = self.graph.outputs, self.n_user_outputs + len(self.capture.data_writes)
        self._grad_alias: dict[int, Any] = {}
        for t, node in self.capture.grad_writes:
            if node is None:
                continue
            for i in range(self.n_user_outputs):
                if outs[i] is outs[k] and i not in self._grad_alias:
                    j = self.capture.arg_index.get(id(t)) if self.capture.arg_index else None
                    self._grad_alias[i] = ("arg", j) if j is not None else ("tensor", t)
                    # the .grad takes the program's new memory that output i would have had
                    self._owns[k], self._owns[i] = self._owns[k] or self._owns[i], False
            k += 1
        self.entry = build_entry(self, tensor_mod._structure_epoch, autograd._mode)
        # The tensors this variant reads or writes besides its arguments, by identity, when
        # it writes any (else None): an argument that is one of them, or one tensor at two
        # argument places, makes eager's result depend on the aliasing (see `aliased`), as
        # does memory shared with an array the variant writes (see aliasing.py).
        c = self.capture
        self.state_ids = frozenset(
            id(t) for t, *_ in c.captured + c.grad_inputs + c.grad_buffers + c.data_writes
            + c.grad_writes) if c.data_writes or c.grad_writes else None
        self._alias_plan = alias_plan(c)

    def aliased(self, inputs: Any) -> bool:
        """Whether a call's tensors alias each other or this variant's state while it writes
        tensors: the program, traced without that aliasing, would not see it."""
        ids = self.state_ids
        if ids is None:
            return False
        seen: set[int] = set()
        for a in inputs:
            if isinstance(a, Tensor):
                i = id(a)
                if i in ids or i in seen:
                    return True
                seen.add(i)
        return overlapping(inputs, self._alias_plan)

