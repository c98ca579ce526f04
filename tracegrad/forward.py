"""Forward mode: tangents pushed through the primitives as they run.

A *level* is one ``tg.jvp`` (or ``jacfwd``) in progress: a table from (live) tensors to
their tangents. While a level is open on a thread, `tensor.apply` hands every primitive it runs to
`push`, which computes the output's tangent with the primitive's JVP rule (declared next to
its VJP in ``ops/``) from the tangents of its inputs. The rules are written with tensor ops,
so the tangent computation is itself recorded: by reverse mode (``tg.grad`` of a ``jvp``),
by an enclosing level (``jvp`` of ``jvp``), and by the compiler's tracer (a compiled ``jvp``
is one static graph).

Nested levels do not confuse their perturbations (JAX's levels): a rule for level ``i`` runs
with only the levels outside it active, after those have their tangents of the same output.

A tangent of ``x`` has shape ``batch + x.shape``, where ``batch`` is the level's: ``()`` for
``jvp``, ``(n,)`` when ``jacfwd`` pushes the n vectors of a basis at once.

Forward mode does not depend on grad mode (``no_grad`` stops recording for reverse mode
only), as in PyTorch; ``detach()`` cuts tangents too.
"""

from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np


class Level:
    """One forward-mode computation: the tangent of each tensor that has one, and the batch
    shape. Tensors are held weakly: a value the program no longer holds lets go of its
    tangent too, so forward mode through a long loop keeps only what is live (what it is
    for: memory that does not grow with the depth of the computation)."""

    __slots__ = ("entries", "batch", "prune_at")

    def __init__(self, batch: tuple = ()):
        self.entries: dict[int, tuple] = {}  # id(tensor) -> (weak reference, tangent)
        self.batch = tuple(batch)
        self.prune_at = 256

    def tangent(self, x: Any) -> Any:
        """``x``'s tangent, or None (zero)."""
        e = self.entries.get(id(x))
        return e[1] if e is not None and e[0]() is x else None

    def set(self, x: Any, t: Any) -> None:
        entries = self.entries
        entries[id(x)] = (weakref.ref(x), t)
        if len(entries) > self.prune_at:  # drop the dead (amortized: twice the live ones)
            for key in [k for k, (r, _) in entries.items() if r() is None]:
                del entries[key]
            self.prune_at = max(256, 2 * len(entries))

    def drop(self, x: Any) -> None:
        e = self.entries.get(id(x))
        if e is not None and e[0]() is x:
            del self.entries[id(x)]


class _State(threading.local):
    def __init__(self) -> None:
        self.levels: list[Level] = []
        self.depth = 0  # levels[:depth] are active (a rule runs with the inner ones off)


_state = _State()
_lock = threading.Lock()
_open = [0]  # levels open, in all threads: tensor.py calls `push` only while there are any


def active() -> bool:
    """Whether a forward-mode level is active on this thread."""
    return _state.depth > 0


@contextmanager
def level(batch: tuple = ()) -> Iterator[Level]:
    """Open a forward-mode level for the block."""
    import sys

    tensor = sys.modules["tracegrad.tensor"]  # (the module; tg.tensor is a function)
    lv = Level(batch)
    st = _state
    # (opened while a rule runs, with inner levels suspended: those stay out of sight)
    saved_levels, saved = st.levels, st.depth
    st.levels = saved_levels[:saved] + [lv]
    st.depth = len(st.levels)
    with _lock:
        _open[0] += 1
        tensor._forward = sys.modules[__name__]
    try:
        yield lv
    finally:
        st.levels, st.depth = saved_levels, saved
        with _lock:
            _open[0] -= 1
            if not _open[0]:
                tensor._forward = None


def push(prim: Any, inputs: tuple, attrs: dict, out: Any) -> None:
    """Give ``out`` (the result of ``prim`` on ``inputs``) its tangent at every active level
    where an input has one. Outer levels first: an inner level's rule reads ``out``, whose
    outer tangents must be there already."""
    st = _state
    depth = st.depth
    if not depth or out._data.dtype.kind != "f":
        return
    levels = st.levels
    for i in range(depth):
        lv = levels[i]
        get = lv.tangent
        ts = [get(x) for x in inputs]
        if all(t is None for t in ts):
            continue
        st.depth = i  # the rule's own ops: tangents of the outer levels only
        try:
            t = _rule(prim, ts, out, inputs, attrs, lv.batch)
        finally:
            st.depth = depth
        if t is not None:
            lv.set(out, _checked(prim, t, out, lv.batch))


def _rule(prim: Any, ts: list, out: Any, inputs: tuple, attrs: dict, batch: tuple) -> Any:
    if prim.vjp is None:  # no derivative (sign, floor, comparisons): a zero tangent
        return None
    if prim.linear is not None:
        return _linear_jvp(prim, ts, out, inputs, attrs, batch)
    if prim.jvp is None:
        raise NotImplementedError(
            f"forward mode: primitive {prim.name!r} has a VJP but no JVP rule; declare one in "
            f"its register(...) in tracegrad/ops/ (jvp=..., or linear=... for a linear op), "
            f"or use reverse mode (tg.jacrev, tg.vjp)"
        )
    return prim.jvp(tuple(ts), out, *inputs, **attrs)


def _linear_jvp(prim: Any, ts: list, out: Any, inputs: tuple, attrs: dict,
                batch: tuple) -> Any:
    """A linear primitive's tangent: the primitive applied to the tangents of its float
    operands (zeros where there are none), the others as they are."""
    from .ops.base import align
    from .tensor import apply

    args = []
    for x, t in zip(inputs, ts):
        if x._data.dtype.kind != "f":
            args.append(x)
            continue
        if t is None:
            t = zeros(batch + tuple(x.shape), x._data.dtype)
        if batch and prim.elementwise:
            t = align(t, out, x)
        args.append(t)
    return apply(prim, *args, **(prim.linear(attrs, batch) if batch else attrs))


def zeros(shape: tuple, dtype: Any) -> Any:
    """A zero tangent (a broadcast view: no memory)."""
    from .tensor import _leaf

    return _leaf(np.broadcast_to(np.zeros((), dtype=dtype), shape))


def _checked(prim: Any, t: Any, out: Any, batch: tuple) -> Any:
    want = batch + tuple(out.shape)
    if tuple(t.shape) != want:
        if t.ndim != len(want):  # a rule that lost the batch alignment: our bug
            raise AssertionError(f"the JVP rule of {prim.name} gave a tangent of shape "
                                 f"{tuple(t.shape)} for an output of shape {want}")
        t = t.expand(want)
    if t._data.dtype != out._data.dtype:
        t = t.to(out._data.dtype)
    return t


def moved(dst: Any, src: Any) -> None:
    """``dst`` now stands for ``src``'s value (an in-place op, an alias for ``tg.grad``):
    it takes ``src``'s tangents."""
    st = _state
    for lv in st.levels[:st.depth]:
        t = lv.tangent(src)
        if t is None:
            lv.drop(dst)
        else:
            want = lv.batch + tuple(dst.shape)
            if tuple(t.shape) != want:
                t = align(t, dst, src).expand(want)
            lv.set(dst, t)


def align(t: Any, out: Any, x: Any) -> Any:
    from .ops.base import align as _align

    return _align(t, out, x)
