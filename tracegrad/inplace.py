"""In-place updates: ``add_``, ``mul_``, ``copy_``, ``x[i] = v``, ``+=``, and what runs under them.

`InPlaceOps` is a mixin of `Tensor`. Outside graph recording an in-place op writes straight
into the tensor's memory (an optimizer's update, with BLAS's axpy where it applies). Under grad
mode it is recorded as PyTorch does: the old node moves to a fresh object and the tensor
becomes the new node (a rebase); on memory shared with views, the base's node becomes the old
base with the view's part replaced and every view is re-derived from it (see views.py).
"""

from __future__ import annotations

import importlib
from threading import get_ident
from typing import TYPE_CHECKING, Any

import numpy as np

from . import dtypes
from .anomaly import _Anomaly, _check_anomaly
from .arguments import _normalize_index
from .autograd import _mode
from .autograd import seqs as _seqs
from .errors import ShapeError, TraceError
from .ops import PRIMITIVES as P
from .views import (
    _Alias,
    _bump,
    _check_writable,
    _memory,
    _replay,
    _SharedVersion,
    _View,
    _write,
    _write_through,
    overlap_positions,
)

# The tensor module (Tensor, apply, _tracer, _forward), read at call time: it imports this one. (Not
# `from . import tensor`: once tracegrad is imported, tg.tensor is the creation function.)
_tensor = importlib.import_module(__package__ + ".tensor")

if TYPE_CHECKING:
    from .tensor import Tensor

_new = object.__new__


def _records(t: "Tensor", source: Any) -> bool:
    """Whether an in-place op on ``t`` with operand ``source`` is recorded for backward: under
    grad mode, when either requires grad, or ``t`` is a view of a tensor that does."""
    if not _mode.enabled:
        return False
    if t.requires_grad or getattr(source, "requires_grad", False):
        return True
    view = getattr(t, "_view", None)
    return type(view) is _View and view.base.requires_grad


def _snapshot(t: "Tensor", copy: bool) -> "Tensor":
    """A new object holding ``t``'s graph node and value, before an in-place op changes ``t``:
    with ``copy``, a copy of the values and a counter of its own (``t``'s memory is about to
    be overwritten); else the same array and counter (``t`` is about to get new ones)."""
    old = _new(_tensor.Tensor)
    for slot in ("_data", "_grad", "requires_grad", "_op", "_children", "_vc"):
        setattr(old, slot, getattr(t, slot))
    if t._op is not None:  # (leaves never set these three, nor the result's version)
        old._attrs, old._versions, old._seq = t._attrs, t._versions, t._seq
        old._outv = getattr(t, "_outv", 0)
    if copy:
        old._data, old._vc = t._data.copy(), [t._vc[0]]
    if _tensor._tracer is not None:
        _tensor._tracer.alias(old, t)
    if _tensor._forward is not None:
        _tensor._forward.moved(old, t)
    return old


def _cut_aliases(result: "Tensor", since: int, changing: Any, snapshots: dict) -> None:
    """Make the nodes under ``result`` made after ``since`` (an in-place op's, and those of
    its operands made since its tensor's node was) read their operands as they are now: each
    operand the op is about to change (``changing(t)``: the tensor itself, or a view or alias
    of its memory) is replaced there by a snapshot of it (``snapshots``: id -> snapshot,
    filled as needed), its node and values before the op; a snapshot of a view reads its
    base's snapshot in turn. Otherwise ``x += x``, ``v[i] += y`` (whose last step writes the
    view ``v[i]`` back into ``v``) or ``v[i] = f(v[j])`` would refer to the tensor's node
    after the op, and backward refuses them. (The change is none for anything else that
    reads those nodes: the snapshot is the node they read.)"""

    def cut(children: tuple) -> tuple:
        return tuple(snapshot(c) if changing(c) else c for c in children)

    def snapshot(t: "Tensor") -> "Tensor":
        snap = snapshots.get(id(t))
        if snap is None:
            snap = snapshots[id(t)] = _snapshot(t, copy=True)
            if any(changing(c) for c in snap._children):  # (a view: its base, as it is now)
                snap._children = cut(snap._children)
        return snap

    stack, seen = [result], set()
    while stack:
        n = stack.pop()
        if n._op is None or n._seq <= since or id(n) in seen:
            continue
        seen.add(id(n))
        if any(changing(c) for c in n._children):
            n._children = cut(n._children)
        stack.extend(n._children)


def _family_since(base: "Tensor", since: int) -> int:
    """The oldest node among ``base`` and its live views (a node that reads one of them is
    newer): where `_cut_aliases` can stop."""
    for t in [base] + [ref() for ref in base._vc.views]:
        if t is not None and t._op is not None and t._seq < since:
            since = t._seq
    return since


def _adopt(t: "Tensor", new: "Tensor") -> None:
    """``t`` becomes ``new``'s graph node (made after its inputs, so after ``t``'s old node);
    its data stays."""
    t._op, t._children = new._op, new._children
    if new._op is not None:
        t._seq = new._seq
    t._attrs = getattr(new, "_attrs", None)
    t._versions = getattr(new, "_versions", ())
    t._outv = t._vc[0]  # (t holds the node's result now: a later change is seen, see node.py)
    t.requires_grad = new.requires_grad
    if _tensor._forward is not None:
        _tensor._forward.moved(t, new)


def _refresh_views(base: "Tensor") -> None:
    """After ``base``'s node changed (a recorded in-place op): each live view of it takes
    its node and requires_grad afresh from it, as PyTorch regenerates a view's grad_fn."""
    for ref in base._vc.views:
        v = ref()
        if v is not None and type(v._view) is _View and v._view.base is base:
            _adopt(v, _replay(base, v._view.steps))


def _retrace_family(vc: _SharedVersion) -> None:
    """After a write into memory that views and aliases share, while tracing: each live one
    reads afresh from its base (in the order they were made, so a view of a view reads its
    new base)."""
    for ref in vc.views:
        v = ref()
        if v is None:
            continue
        how = v._view
        base = how.of() if type(how) is _Alias else how.base
        if base is not None:
            _tensor._tracer.alias(v, _replay(base, how.steps))


def _move_family(t: "Tensor", steps: tuple, back: tuple) -> None:
    """``t``'s shape changed in place by the movement ``steps`` (undone by ``back``): how it
    and the views and aliases of its memory reach their elements from now on."""
    how = getattr(t, "_view", None)
    if type(how) is _View:
        t._view = _View(how.base, how.steps + steps, how.grad_mode)
    elif type(how) is _Alias:
        if how.of() is not None:
            t._view = _Alias(how.of(), how.steps + steps)
    elif type(t._vc) is _SharedVersion:  # the base: its views start from its old shape
        for ref in t._vc.views:
            v = ref()
            h = None if v is None else v._view
            if type(h) is _View and h.base is t:
                v._view = _View(t, back + h.steps, h.grad_mode)
            elif type(h) is _Alias and h.of() is t:
                v._view = _Alias(t, back + h.steps)


def _moved(a: np.ndarray, steps: tuple) -> np.ndarray:
    """``a`` moved by ``steps`` (reshapes of size-1 dimensions, permutes): a view of it."""
    for prim, attrs in steps:
        a = prim.forward(a, **attrs)
    return a


_AXPY: dict | None = None  # dtype -> BLAS axpy, once SciPy is imported (None: not yet)


def _axpy(x: np.ndarray, y: np.ndarray, a: float) -> bool:
    """``x += a * y`` in place by BLAS's axpy (SciPy's binding), in one pass over memory
    with no temporary ``a * y``: the update ``p.sub_(grad, alpha=lr)`` of every optimizer
    step. False, doing nothing, where it does not apply (no SciPy, not float32/float64, not
    C-ordered)."""
    global _AXPY
    if _AXPY is None:
        try:
            from scipy.linalg.blas import daxpy, saxpy
            _AXPY = {np.dtype(np.float32): saxpy, np.dtype(np.float64): daxpy}
        except ImportError:  # pragma: no cover - exercised only without SciPy
            _AXPY = {}
    axpy = _AXPY.get(x.dtype)
    if axpy is None or not x.size or not (x.flags.c_contiguous and y.flags.c_contiguous):
        return False
    flat = x.reshape(-1)
    out = axpy(y.reshape(-1), flat, a=a)
    if out is not flat and not np.may_share_memory(out, x):  # (the binding had to copy)
        flat[...] = out
    return True




def _scaled(x: Any, alpha: Any) -> Any:
    """``x * alpha`` for ``add_``/``sub_``; ``alpha`` may be a tensor (a learning rate)."""
    if isinstance(alpha, (int, float)) and alpha == 1:
        return x
    return x * alpha


class InPlaceOps:
    """The in-place methods of `Tensor` (a mixin: it holds no data of its own)."""

    __slots__ = ()

    def _assign(self, new: "Tensor", uniform: bool = False) -> "Tensor":
        """Overwrite this tensor's values with ``new``'s, keeping its identity.

        The one place where tensor data is mutated outside graph recording: in-place ops,
        ``copy_`` and optimizers all end here, so it is also where the compiler records a
        write-back. The values go into this tensor's memory, so its base and views see them.
        """
        if new.shape != self.shape:
            if new.ndim > self.ndim or np.broadcast_shapes(new.shape, self.shape) != self.shape:
                raise ShapeError(
                    f"in-place op: a result of shape {new.shape} cannot be written into a "
                    f"tensor of shape {self.shape}; an in-place op cannot change the shape"
                )
        if new.requires_grad and not self.requires_grad and _mode.enabled:
            raise RuntimeError(
                "in-place op: writing a value that requires grad into a tensor that does "
                "not; use an out-of-place op"
            )
        _check_writable(self, "op", uniform)
        if _tensor._tracer is not None:
            self._trace_write(new)
        _write(self, new._data, "op", uniform)
        if _tensor._forward is not None:
            _tensor._forward.moved(self, new)
        return self

    def _trace_write(self, new: "Tensor") -> None:
        """Tell the compiler's tracer that this tensor's value becomes ``new``'s: the value of
        the tensor that owns its memory changes (through `_write_through`), and every view
        and alias of that memory reads afresh from it."""
        owner, steps = _memory(self)
        if new.shape != self.shape or new.dtype != self.dtype:
            new = _tensor.apply(P["expand"], new.to(self.dtype), shape=self.shape)
        _tensor._tracer.assign(owner, _write_through(owner, new, steps))
        if type(self._vc) is _SharedVersion:
            _retrace_family(self._vc)

    def _inplace(self, result_fn: Any, source: Any = None, uniform: bool = False) -> "Tensor":
        """Make ``self`` hold ``result_fn(self)``, keeping its identity (``uniform``: the
        result has one value per memory location, see `views._check_writable`).

        Under grad mode, the old node moves to a fresh object and ``self`` becomes the new
        node (PyTorch's rebase); leaves that require grad refuse, as in PyTorch, because their
        old value is what the gradient is for. A tensor that shares memory (a view, a base
        with views, a detach alias) is written in place; see `_inplace_shared`.
        """
        if not _records(self, source):
            return self._assign(result_fn(self), uniform)
        if self._op is None and self.requires_grad:
            if _tensor._tracer is not None:
                _tensor._tracer.leaf_changed(self)
            raise RuntimeError(
                "a leaf tensor that requires grad cannot be changed in place (its gradient "
                "would refer to a value that no longer exists); do the update inside "
                "`with tg.no_grad():`, as optimizers do, or use an out-of-place op"
            )
        if type(self._vc) is _SharedVersion:
            return self._inplace_shared(result_fn, uniform)
        old = _snapshot(self, copy=False)
        since = next(_seqs)
        new = self._checked_result(result_fn(old))
        _cut_aliases(new, min(since, old._seq) if old._op is not None else since,
                     lambda t: t is self, {id(self): old})
        if _tensor._tracer is not None:
            _tensor._tracer.alias(self, new)
        self._data = new._data
        self._vc = [old._vc[0] + 1]
        _adopt(self, new)
        return self

    def _inplace_shared(self, result_fn: Any, uniform: bool = False) -> "Tensor":
        """The recorded in-place op on a tensor that shares memory, as PyTorch does it: the
        new values go into the shared memory; the base's node becomes the old base with the
        view's part replaced (`_write_through`, PyTorch's CopySlices); and every view of the
        base, this one included, is re-derived from that node."""
        view = getattr(self, "_view", None)
        if type(view) is not _View:  # a base, or a detach alias: a root for autograd
            view = None
        base, steps = (self, ()) if view is None else (view.base, view.steps)
        if view is not None and base.requires_grad:
            if base._op is None:
                if _tensor._tracer is not None:
                    _tensor._tracer.leaf_changed(base)
                raise RuntimeError(
                    f"a view of a leaf tensor that requires grad is being used in an in-place "
                    f"op (view of shape {self.shape}, leaf of shape {base.shape}); PyTorch "
                    f"refuses this too. Do it under `with tg.no_grad():`, or change a "
                    f".clone() of the leaf"
                )
            if not view.grad_mode:
                raise RuntimeError(
                    f"a view (shape {self.shape}) made under tg.no_grad() of a tensor that "
                    f"requires grad is being changed in place with grad mode on; PyTorch "
                    f"refuses this too, as ambiguous. Make the view under grad mode, or do "
                    f"the in-place op under tg.no_grad() too"
                )
        _check_writable(self, "op", uniform)
        old = _snapshot(base, copy=True)  # the old values: the recorded graph may read them
        since = next(_seqs)
        new = self._checked_result(result_fn(_replay(old, steps)))
        new_base = _write_through(old, new, steps)
        family = base._vc
        _cut_aliases(new_base, _family_since(base, since), lambda t: t._vc is family,
                     {id(base): old})
        if _tensor._tracer is not None:
            self._trace_write(new)
        _write(self, new._data, "op", uniform)
        _adopt(base, new_base)
        _refresh_views(base)
        return self

    def _checked_result(self, new: "Tensor") -> "Tensor":
        """An in-place op's result, in this tensor's dtype (as in PyTorch) and shape."""
        if new.dtype != self.dtype:
            new = new.to(self.dtype)
        if new.shape != self.shape:
            raise ShapeError(
                f"in-place op: the result has shape {new.shape} but the tensor has shape "
                f"{self.shape}; an in-place op cannot change the shape"
            )
        return new

    def _inplace_binary(self, name: str, other: Any, alpha: Any = 1) -> "Tensor":
        """``self = self <op> other * alpha`` in place. Outside graph recording, NumPy writes
        straight into this tensor's memory (no temporary, which matters for optimizer
        updates)."""
        recording = _records(self, other)
        # (forward mode, like tracing, needs the op run as a primitive: for its tangent)
        fwd = _tensor._forward is not None and _tensor._forward.active()
        if not recording and _tensor._tracer is None and not fwd and type(alpha) in (int, float) \
                and type(other) in (_tensor.Tensor, float, int):
            # The common cases (an optimizer's update), on the arrays: nothing to check,
            # nothing to convert. (A float32 array times a Python float stays float32: the
            # number is the cached 0-d constant of the tensor's dtype that `_binary` uses.)
            x = self._data
            if type(other) is _tensor.Tensor:
                y = other._data
            elif alpha == 1 and x.dtype.kind == "f":  # (x.mul_(0.9), step.add_(1))
                y = _tensor._constant(other, x.dtype)._data
            else:
                y = None
            if y is not None and (y.shape == x.shape or (alpha == 1 and not y.ndim)) \
                    and y.dtype == x.dtype \
                    and x.dtype.kind == "f" and x.flags.writeable:
                if alpha == 1:
                    P[name].forward(x, y, out=x)
                elif not _axpy(x, y, alpha if name == "add" else -alpha):
                    P[name].forward(x, y * alpha, out=x)
                _bump(self)
                if _Anomaly.enabled:
                    _check_anomaly(self, f"in-place {name}")
                return self
        other = _scaled(other, alpha)
        o = _tensor._operand(other, self)
        result = dtypes.result_dtype(self._data.dtype, self.ndim, o._data.dtype, o.ndim)
        if not dtypes.can_cast(result, self._data.dtype):
            raise TypeError(
                f"in-place {name}: the result of {self._data.dtype} {name} {o._data.dtype} is "
                f"{result}, which cannot be stored in this {self._data.dtype} tensor; use an "
                f"out-of-place op"
            )
        if recording:
            return self._inplace(lambda s: _tensor._binary(name, s, other), other)
        if _tensor._tracer is not None or fwd:
            return self._assign(_tensor._binary(name, self, other))
        prim = P[name]
        prim.infer(self, o.to(self._data.dtype))  # shape check before touching the data
        if np.broadcast_shapes(self.shape, o.shape) != self.shape:
            raise ShapeError(
                f"in-place {name}: an operand of shape {o.shape} would change the shape "
                f"{self.shape} of the tensor being updated"
            )
        _check_writable(self, name)
        # (computed in the result's dtype, then stored, as PyTorch: float32 += float64)
        x, y = self._data, o._data.astype(result, copy=False)
        if x.flags.writeable and result == x.dtype:
            prim.forward(x, y, out=x)
            _bump(self)
            if _Anomaly.enabled:
                _check_anomaly(self, f"in-place {name}")
        else:
            _write(self, prim.forward(x, y), name)
        return self

    def add_(self, other: Any, alpha: Any = 1) -> "Tensor":
        return self._inplace_binary("add", other, alpha)

    def sub_(self, other: Any, alpha: Any = 1) -> "Tensor":
        return self._inplace_binary("sub", other, alpha)

    def mul_(self, other: Any) -> "Tensor":
        return self._inplace_binary("mul", other)

    def div_(self, other: Any) -> "Tensor":
        if self._data.dtype.kind != "f":
            raise TypeError(f"in-place div on a {self._data.dtype} tensor; the result is float")
        return self._inplace_binary("div", other)

    def zero_(self) -> "Tensor":
        return self.fill_(0)

    def fill_(self, value: Any) -> "Tensor":
        v = _tensor._operand(value, self)
        if v.ndim:
            raise ShapeError(f"fill_: expects a number or a 0-d tensor, got shape {v.shape}")
        # (one value everywhere: allowed on an expanded tensor too, as in PyTorch)
        return self._inplace(lambda s: s._setitem((Ellipsis,), v), v, uniform=True)

    def masked_fill_(self, mask: Any, value: Any) -> "Tensor":
        """In-place ``masked_fill``. On a tensor two of whose elements are one memory
        location (expanded), the location is filled where any of them is masked, as
        PyTorch does (whichever order it visits them in)."""
        from .functional import masked_fill

        pos = overlap_positions(self)
        if pos is not None:
            m = _tensor._static_data(_tensor._operand(mask, self), "masked_fill_ on an "
                                     "expanded tensor (its mask decides which locations)")
            hit = np.zeros(int(pos.max()) + 1, bool)
            np.logical_or.at(hit, pos, np.broadcast_to(m, pos.shape))
            mask = _tensor._leaf(hit[pos])
        source = value if isinstance(value, _tensor.Tensor) and value.dtype.kind == "f" \
            else None
        return self._inplace(lambda s: masked_fill(s, mask, value), source,
                             uniform=pos is not None)

    def copy_(self, src: Any) -> "Tensor":
        """Overwrite every element with ``src`` (broadcast); gradients flow to ``src``."""
        src = _tensor._operand(src, self)
        return self._inplace(lambda s: s._setitem((Ellipsis,), src), src)

    def __iadd__(self, other: Any) -> "Tensor":
        return self.add_(other)

    def __isub__(self, other: Any) -> "Tensor":
        return self.sub_(other)

    def __imul__(self, other: Any) -> "Tensor":
        return self.mul_(other)

    def __itruediv__(self, other: Any) -> "Tensor":
        return self.div_(other)

    def _setitem(self, index: tuple, value: Any, *ix: "Tensor") -> "Tensor":
        v = _tensor._operand(value, self)
        if v.dtype != self.dtype:
            v = v.to(self.dtype)
        return _tensor.apply(P["setitem"], self, v, *ix, index=index)

    def __setitem__(self, index: Any, value: Any) -> None:
        idx, ix = _normalize_index(index)
        if overlap_positions(self) is not None:  # (expanded, or overlapping windows)
            v = _tensor._operand(value, self)
            if v.ndim == 0:  # one value: every location the index reaches gets it
                def plain(i: Any) -> Any:  # (an index tensor's values pick the region)
                    return _tensor._static_data(i, "assigning to an expanded tensor "
                                                "through an index tensor") \
                        if isinstance(i, _tensor.Tensor) else i

                region = np.zeros(self.shape, bool)
                region[tuple(map(plain, index)) if isinstance(index, tuple) else
                       plain(index)] = True
                self.masked_fill_(_tensor._leaf(region), v)
                return
            if not ix:  # as PyTorch: through the part ``index`` selects, refused only if
                self[index].copy_(value)  # that part overlaps itself
                return
        self._inplace(lambda s: s._setitem(idx, value, *ix), value)


    # ------------------------------------------------------------ in-place shape and graph

    def _reshape_inplace(self, out_of_place: Any, op: str, *args: Any) -> "Tensor":
        """Give this tensor the shape ``out_of_place(self, *args)`` has (``squeeze_``, ``t_``,
        ...), keeping its identity and memory: its values do not change.

        The movement steps are those of the view ``out_of_place`` makes of a probe of this
        shape (so the dims are checked, and their errors worded, by the op itself). Every
        view and ``detach()`` alias keeps its elements (`_move_family`): this tensor, if it
        is one, gains the steps; those made from it, as their base, start with the steps
        back. As in PyTorch, the change counts as an in-place op (the version goes up, so a
        graph recorded before that reads this tensor refuses backward); a tensor that
        requires grad gets the movement as its new node, a leaf that requires grad refuses.
        """
        probe = _tensor._leaf(np.broadcast_to(np.zeros((), self._data.dtype), self.shape))
        out = out_of_place(probe, *args)
        if out is probe:  # (nothing moves: squeeze_ of no size-1 dim, t_ of a vector)
            return self
        steps, back, shape = out._view.steps, [], self.shape
        for prim, attrs in steps:  # (reshapes and permutes: each undone by one step)
            back.append((prim, {"shape": shape}) if prim is P["reshape"] else
                        (prim, {"dims": tuple(np.argsort(attrs["dims"]).tolist())}))
            shape = prim.infer(np.broadcast_to(np.zeros(()), shape), **attrs)[0]
        back = tuple(back[::-1])
        recording = _mode.enabled and self.requires_grad
        if recording and self._op is None:
            raise RuntimeError(
                f"{op}: a leaf tensor that requires grad (shape {self.shape}) cannot change "
                f"its shape in place (PyTorch refuses this too); use the out-of-place "
                f"{op[:-1]}, or do it under `with tg.no_grad():`")
        tracer = _tensor._tracer
        if tracer is not None and tracer.thread == get_ident() and not tracer.made(self):
            raise TraceError(
                f"tg.compile: {op} changes the shape of a tensor of shape {self.shape} that "
                f"the compiled function did not make (an argument, or one it reads): a "
                f"compiled call cannot change a caller's tensor's shape. Use the out-of-place "
                f"{op[:-1]}, or do it outside the compiled function")
        source = _snapshot(self, copy=True) if recording else self  # (the old node, values)
        new = None
        if recording or tracer is not None or _tensor._forward is not None:
            new = source
            for prim, attrs in steps:
                new = _tensor.apply(prim, new, **attrs)
            if tracer is not None:
                tracer.alias(self, new)
        self._data = _moved(self._data, steps)
        if tracer is not None:
            tracer.reshaped(self, lambda a: _moved(a, steps))
        _move_family(self, steps, back)
        _bump(self)
        if recording:
            _adopt(self, new)
            if type(self._vc) is _SharedVersion and self._view is None:
                _refresh_views(self)
        elif new is not None and _tensor._forward is not None:
            _tensor._forward.moved(self, new)
        return self

    def squeeze_(self, dim: Any = None) -> "Tensor":
        """``squeeze``, in place: this tensor loses its size-1 dimensions (those in ``dim``)."""
        return self._reshape_inplace(_tensor.Tensor.squeeze, "squeeze_", dim)

    def unsqueeze_(self, dim: int) -> "Tensor":
        """``unsqueeze``, in place: a size-1 dimension inserted at ``dim``."""
        return self._reshape_inplace(_tensor.Tensor.unsqueeze, "unsqueeze_", dim)

    def transpose_(self, dim0: int, dim1: int) -> "Tensor":
        """``transpose``, in place: dimensions ``dim0`` and ``dim1`` swapped."""
        return self._reshape_inplace(_tensor.Tensor.transpose, "transpose_", dim0, dim1)

    swapdims_ = swapaxes_ = transpose_

    def t_(self) -> "Tensor":
        """``t``, in place: a matrix transposed (a vector or a number stays as it is)."""
        if self.ndim > 2:
            raise ShapeError(f"t_: expects at most 2 dimensions, got shape {self.shape}; "
                             f"use transpose_")
        return self._reshape_inplace(_tensor.Tensor.transpose, "t_", 0, -1)

    def detach_(self) -> "Tensor":
        """Cut this tensor from the graph, in place, as ``torch.Tensor.detach_``: it becomes
        a leaf that does not require grad (the graph recorded so far is unchanged). A view
        refuses, as in PyTorch (its base would still be in the graph): use ``detach()``."""
        if type(getattr(self, "_view", None)) is _View:
            raise RuntimeError(
                f"detach_: a view (shape {self.shape}) cannot be detached in place (PyTorch "
                f"refuses this too); use .detach(), which returns a new tensor")
        tracer = _tensor._tracer
        if self.requires_grad and tracer is not None and tracer.thread == get_ident() \
                and not tracer.made(self):
            raise TraceError(
                f"tg.compile: detach_ on a tensor of shape {self.shape} that the compiled "
                f"function did not make (an argument, or one it reads): a compiled call "
                f"cannot stop a caller's tensor requiring grad. Use .detach(), or do it "
                f"outside the compiled function")
        self._op, self._children = None, ()
        self.requires_grad = False
        if _tensor._forward is not None:  # (no tangent either, as for detach())
            _tensor._forward.moved(self, self.detach())
        return self
