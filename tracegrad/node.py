"""The autograd node: what the backward engine (tracegrad.autograd) calls on a tensor.

A tensor made by an op is also its graph node (``_op``, ``_children``, ``_attrs``, the inputs'
``_versions``; see `tensor._result`). `NodeHooks`, a mixin of `Tensor`, holds the engine's side
of it: `_vjp` runs the primitive's VJP rule (first-order gradients on bare arrays, as
`GradArray`s, with the common cases spelled out as this runs once per node), after checking
that no input was changed in place since; `_accumulate_grad` sums into a leaf's ``.grad``;
`_run_hooks` runs ``register_hook`` hooks; `_backward` starts the engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from . import autograd
from .anomaly import _Anomaly, _check_anomaly
from .autograd import _mode
from .errors import ShapeError
from .gradarray import GradArray, IntoArray
from .ops.base import reads_for
from .views import _UNCHANGED, _UNCHANGED_PAIR

# The tensor module (_leaf, _tracer, _forward), read at call time: it imports this one. (Not
# `from . import tensor`: once tracegrad is imported, tg.tensor is the creation function.)
_tensor = importlib.import_module(__package__ + ".tensor")

if TYPE_CHECKING:
    from .tensor import Tensor

_new = object.__new__
_ndarray = np.ndarray
# Shared by the nodes of the common case, instead of a new object per node.
_NO_ATTRS: dict = {}
# A unary rule writes into an owned gradient (see NodeHooks._vjp) from this many elements on:
# below, a new array is as cheap as NumPy's small-block cache makes it, and the in-place
# call costs more than it saves.
_IN_PLACE_MIN_SIZE = 4096


def _fresh_grad(x: Any) -> GradArray:
    """A gradient a plain arithmetic rule computed on arrays (see ops.base.FACTS):
    new memory, which a leaf may adopt. (Built slot by slot: calling GradArray(...) runs its
    __init__ in a frame of its own, a tenth of a backward step on small arrays.)"""
    ga = _new(GradArray)
    ga._data = x if type(x) is _ndarray else np.asarray(x)
    ga.requires_grad = False
    ga.owned = True
    return ga


def _carry(g: GradArray, x: Any) -> GradArray:
    """`_fresh_grad`, in ``g``'s own object when ``g`` is owned (this node's alone, see
    GradArray.owned: nothing else holds the object either): a chain of ops then passes one
    object down instead of making and freeing one per node."""
    if not g.owned:
        return _fresh_grad(x)
    g._data = x if type(x) is _ndarray else np.asarray(x)
    return g


class NodeHooks:
    """The engine's side of a tensor's graph node (a mixin of `Tensor`: it holds no data)."""

    __slots__ = ()

    def _run_hooks(self, g: "Tensor", hooks: list) -> "Tensor":
        """The engine calls this with this tensor's whole gradient (see autograd.hooks).
        As in PyTorch, retain_grad() keeps the gradient after every other hook ran. (On the
        first-order path the gradient is a GradArray: the hooks see it as a tensor.)"""
        bare = type(g) is GradArray
        given = g
        if bare:
            g = _tensor._leaf(g._data)
        for hook in list(hooks):
            if hook is autograd.RETAIN:
                continue
            new = hook(g)
            if new is None:
                continue
            if not isinstance(new, _tensor.Tensor) or new.shape != g.shape:
                what = f"shape {new.shape}" if isinstance(new, _tensor.Tensor) else \
                    type(new).__name__
                raise ShapeError(
                    f"register_hook: the hook {getattr(hook, '__name__', hook)!r} returned "
                    f"{what} for a gradient of shape {g.shape}; a hook must return None or a "
                    f"tensor of the gradient's shape"
                )
            g = new if new.dtype == g.dtype else new.to(g.dtype)
        if autograd.RETAIN in hooks:
            # (a copy on the first-order path: a later rule may write into that memory)
            kept = _tensor._leaf(np.array(g._data)) if bare else g if _mode.enabled else g.detach()
            self._grad = kept if self._grad is None else self._grad + kept
        if bare:
            if g._data is not given._data:
                return GradArray(g._data)
            if len(hooks) > (autograd.RETAIN in hooks):
                # a hook saw this memory and may keep it: no later rule may write into it
                given.owned = False
            return given
        return g

    def _backward(self, seed: "Tensor", policy: Any, create_graph: bool) -> None:
        if _tensor._tracer is not None:
            _tensor._tracer.backward_called()
        elif not create_graph and not _Anomaly.enabled and (
                _tensor._forward is None or not _tensor._forward.active()):
            # First-order, nothing to record: the rules run on bare arrays (see gradarray.py).
            seed = GradArray(seed._data)
        saved = _mode.enabled  # (grad mode as enable_grad()/no_grad() would set it)
        _mode.enabled = create_graph
        try:
            autograd.backpropagate(self, seed, policy)
        finally:
            _mode.enabled = saved

    def _chain(self, g: Any, free: bool, hooks: Any = None) -> tuple:
        """The engine's shortcut down a chain (see autograd._propagate, which calls this
        when nothing else is waiting): while the node's gradient is a first-order
        `GradArray` that its rule passes to one input only, an interior one, by plain
        arithmetic on arrays of one shape (``y * c``, ``y + d``, ``y.tanh()``), run the rule
        here and go on to that input. Returns the node this stopped at with its (whole)
        gradient, for the engine's general step; it stops at anything else: a second input
        requiring grad, a leaf, broadcasting, a value changed in place, another rule, an
        input with hooks (``hooks``: the engine's, by id), which the engine's step runs. Each
        step is what `_vjp` and the engine do for such a node, without the round trip."""
        node = self
        if type(g) is not GradArray:
            return node, g
        while node._vc is _UNCHANGED:
            children = node._children
            if len(children) == 2:
                a, b = children
                if b.requires_grad or not a._children or a._vc is not _UNCHANGED \
                        or b._vc is not _UNCHANGED or (hooks and id(a) in hooks):
                    break
                op = node._op
                per_input = op.per_input
                ad, bd = a._data, b._data
                if per_input is None or ad.shape != bd.shape:
                    break
                if not op.passes_gradient:
                    if not op.arithmetic[1][1]:
                        break
                    g = _carry(g, per_input[0](g._data, node._data, ad, bd))
            elif len(children) == 1:
                (a,) = children
                op = node._op
                if not a._children or a._vc is not _UNCHANGED or not op.arithmetic[0][1] \
                        or (op.in_place and g.owned and g._data.size >= _IN_PLACE_MIN_SIZE) \
                        or (hooks and id(a) in hooks):
                    break  # (a large owned gradient: `_vjp` writes into it)
                (dx,) = op.vjp(g._data, node._data, a._data)
                g = _carry(g, dx)
            else:
                break
            if free:  # (as `_vjp` does)
                node._children = ()
            node = a
        return node, g

    def _is_leaf(self) -> bool:
        return self._op is None

    def _vjp(self, g: "Tensor", free: bool = False) -> tuple:
        children, versions, attrs = self._children, self._versions, self._attrs
        if self._vc is not _UNCHANGED:  # (changed in place, or shares memory: rarely)
            self._check_result(children)
        if free:  # the graph is not kept: let go of the inputs now (see autograd)
            self._children = ()
            if attrs is not _NO_ATTRS:
                self._attrs = None
        if versions is _UNCHANGED_PAIR or len(children) == 2:  # most ops: spelled out
            a, b = children
            # (Unchanged inputs recorded unchanged: identity tests, no tuple built.)
            if (a._vc is not _UNCHANGED or b._vc is not _UNCHANGED
                    or versions is not _UNCHANGED_PAIR) and (a._vc[0], b._vc[0]) != versions:
                self._changed_in_place(children, versions, attrs)
            if type(g) is GradArray:
                op = self._op
                per_input = op.per_input
                ad, bd = a._data, b._data
                rb = b.requires_grad
                # Equal shapes (then the output's, and the gradient's, are the same too):
                # nothing is summed back, so an elementwise rule's own functions will do.
                same = per_input is not None and ad.shape == bd.shape
                if same:
                    if op.passes_gradient:
                        if not rb:  # the commonest case (x + constant)
                            return g, None
                        if a.requires_grad:  # one array for both: neither may write into it
                            g.owned = False
                            return g, g
                        return None, g
                    if not rb:  # the commonest case (x * constant): `_carry` inline
                        if op.arithmetic[1][1]:  # plain arithmetic: on the arrays
                            dx = per_input[0](g._data, self._data, ad, bd)
                            if g.owned:
                                g._data = dx if type(dx) is _ndarray else np.asarray(dx)
                                return g, None
                            return _fresh_grad(dx), None
                    elif op.arithmetic[1][a.requires_grad + 2]:
                        fa, fb = per_input
                        gd, od = g._data, self._data
                        return (_fresh_grad(fa(gd, od, ad, bd)) if a.requires_grad else None), \
                            _carry(g, fb(gd, od, ad, bd))
                ra = a.requires_grad
                mask = ra + 2 * rb
                # Only the values the rule reads become GradArrays (see Primitive.reads).
                ro, wa, wb = op.reads[1][mask]
                out = GradArray(self._data, True) if ro else self
                a = GradArray(ad, ra) if wa else a
                b = GradArray(bd, rb) if wb else b
                if same:
                    fa, fb = per_input
                    return (fa(g, out, a, b) if ra else None), (fb(g, out, a, b) if rb else None)
                return op.vjp(g, out, a, b) if attrs is _NO_ATTRS else \
                    op.vjp(g, out, a, b, **attrs)
        elif len(children) == 1:  # unary ops, spelled out too
            (a,) = children
            if a._vc[0] != versions[0]:
                self._changed_in_place(children, versions, attrs)
            if type(g) is GradArray:
                op = self._op
                if op.arithmetic[0][1]:  # plain arithmetic: on the arrays themselves
                    gd = g._data
                    if op.in_place and g.owned and gd.size >= _IN_PLACE_MIN_SIZE \
                            and gd.flags.writeable:
                        # g is this node's alone (new memory no one else holds, see
                        # GradArray.owned): the result goes into it, as a hand-written
                        # backward would do (g *= out > 0), instead of into new memory.
                        op.vjp(IntoArray(gd), self._data, a._data)
                        return (g,)
                    (dx,) = op.vjp(gd, self._data, a._data)
                    return (_carry(g, dx),)
                ro, wa = op.reads[0][1]
                out = GradArray(self._data, True) if ro else self
                a = GradArray(a._data, True) if wa else a
                return op.vjp(g, out, a) if attrs is _NO_ATTRS else op.vjp(g, out, a, **attrs)
        else:
            for x, v in zip(children, versions):
                if x._vc[0] != v:
                    self._changed_in_place(children, versions, attrs)
            if type(g) is GradArray:
                return self._op.vjp(g, GradArray(self._data, True),
                                    *[GradArray(x._data, x.requires_grad) for x in children],
                                    **attrs)
        if not _Anomaly.enabled:
            return self._op.vjp(g, self, *children, **attrs)
        ref, line = _Anomaly.created.get(id(self), (None, "an unknown line"))
        here = _Anomaly.here
        saved = here.backward_of
        here.backward_of = (self._op.name, line if ref is not None and ref() is self
                                else "an unknown line")
        try:
            grads = self._op.vjp(g, self, *children, **attrs)
            for x in grads:
                if x is not None:
                    _check_anomaly(x, self._op.name)
        finally:
            here.backward_of = saved
        return grads

    def _check_result(self, children: tuple) -> None:
        """Raise if this node's result was changed in place since it was computed (under
        no_grad, through a view or a ``detach()`` alias: a recorded in-place op moves the
        node to a snapshot instead) and the gradient reads it: it would use the new values."""
        if self._vc[0] == getattr(self, "_outv", 0):
            return
        op, n = self._op, len(children)
        if reads_for(op, n, sum(x.requires_grad << i for i, x in enumerate(children)))[0]:
            raise RuntimeError(
                f"backward: the result of {op.name} (shape {self.shape}) was changed in place "
                f"after it was computed, and its gradient needs that result; use an "
                f"out-of-place op (y = y * 2 instead of y *= 2) or change a .clone() of it")

    def _changed_in_place(self, children: tuple, versions: tuple, attrs: dict) -> None:
        """Raise for an input changed in place since this node was recorded. Not for the
        input of a view op that shares the input's counter (it is a view of it) when the
        input's node is older than this one (only its values changed, under no_grad): the
        gradient reads no values and goes to that node, as PyTorch's regenerated view sends
        it. (An input rebased by a recorded in-place op has a newer node: refused, as the
        graph recorded before no longer holds; its live views got fresh nodes anyway.)"""
        op, n = self._op, len(children)
        reads = op.reads[n - 1][sum(x.requires_grad << i for i, x in enumerate(children))] \
            if op.reads is not None and n <= 2 else (True,) * (n + 1)
        for i, (x, v) in enumerate(zip(children, versions)):
            if x._vc[0] != v and not (op.view and x._vc is self._vc and (
                    x._op is None or x._seq < self._seq)):
                self._children, self._attrs = children, attrs  # (as it was: nothing computed)
                why = ("its gradient needs the old value" if reads[i + 1] else
                       "the graph recorded before the change no longer holds (tracegrad "
                       "refuses every changed input, PyTorch only those a gradient reads)")
                raise RuntimeError(
                    f"backward: an input of {op.name} (shape {x.shape}) was changed in place "
                    f"after it was used, and {why}; use an out-of-place op (x = x + 1 "
                    f"instead of x += 1) or .clone() first"
                )

    def _accumulate_grad(self, g: "Tensor") -> None:
        if type(g) is GradArray:
            # Adopt the memory the backward pass just computed, if nothing else holds it and
            # it is C-ordered (strided gradients make every optimizer update slow); else copy.
            a = g._data
            flags = a.flags
            if not (g.owned and a.dtype == self._data.dtype and flags.c_contiguous
                    and flags.writeable):
                a = np.array(a, dtype=self._data.dtype, order="C", copy=True)
            g.owned = False
            if a.shape != self._data.shape:  # a VJP rule returned the wrong shape: our bug
                raise AssertionError(f"gradient of shape {a.shape} for a leaf of {self.shape}")
            self._grad = _tensor._leaf(a) if self._grad is None else self._grad + _tensor._leaf(a)
            return
        if g.shape != self.shape:  # a VJP rule returned the wrong shape: a bug of ours
            raise AssertionError(f"gradient of shape {g.shape} for a leaf of shape {self.shape}")
        if g._data.dtype != self._data.dtype:
            g = g.to(self._data.dtype)
        if _tensor._tracer is not None:  # no copies: in the graph every value is immutable anyway
            # accumulating reads this tensor's .grad (an input fed from `.grad` on every
            # call, or a guard that it is None), not the .grad tensor object there now
            _tensor._tracer.grad_read(self)
            _tensor._tracer.grad_written(self)
            self._grad = g if self._grad is None else self._grad + g
            return
        if self._grad is None:
            # Own, writable memory: a VJP may hand the same array to several leaves, or a
            # read-only broadcast view.
            self._grad = g.contiguous() if g.requires_grad else \
                _tensor._leaf(np.array(g._data, order="C", copy=True))
        else:
            self._grad = self._grad + g

    def _grad_input(self) -> "Tensor":
        if self.requires_grad:
            return self
        t = _tensor._leaf(self._data, requires_grad=True)
        if _tensor._tracer is not None:  # the same value: a compiled tg.grad reads each input
            _tensor._tracer.alias(t, self)
        if _tensor._forward is not None:  # and the same tangents (tg.jacfwd of tg.grad)
            _tensor._forward.moved(t, self)
        return t

    def _grad_wrt(self, inputs: Sequence["Tensor"], create_graph: bool) -> list:
        # The graph is kept: it may contain nodes the caller built outside the function and
        # still wants to backpropagate through (the function's own nodes die with it).
        policy = autograd.GradsInTable(retain_graph=True, targets=inputs)
        self._backward(_tensor._leaf(np.ones(self.shape, dtype=self.dtype)), policy, create_graph)
        out = []
        for x in inputs:
            g = policy.results.get(id(x))
            if type(g) is GradArray:
                g = _tensor._leaf(np.array(g._data, dtype=x.dtype, copy=True))
            out.append(g if g is not None else _tensor._leaf(np.zeros(x.shape, dtype=x.dtype)))
        return out
