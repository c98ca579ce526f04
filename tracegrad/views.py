"""Version counters and views: which tensors share memory, how an in-place write reaches them.

Every tensor has a version counter (``_vc``, a one-element list) that an in-place change bumps
and that backward checks against the versions its nodes saved. Tensors that share memory share
one counter (`_SharedVersion`), which also keeps weak references to the family's views.

As in PyTorch, slicing, reshape, permute, expand (and so squeeze, unsqueeze, .T, ...) return
views when NumPy gives one: the result shares its base's memory and version counter, so an
in-place op through either is seen by both, and by every backward that saved them. A view
remembers its base (a tensor that is no view) and the movement steps that lead from the base
to it: replaying the steps re-derives the view from the base's current graph node, and
`_write_through` composes the base's new value from primitives after an in-place op on the
view (PyTorch's CopySlices), so gradients of every order flow through it.
"""

from __future__ import annotations

import importlib
import math
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from .anomaly import _Anomaly, _check_anomaly
from .autograd import _mode
from .ops import PRIMITIVES as P
from .ops.movement import SLOT

# The tensor module (Tensor, apply, _leaf), read at call time: it imports this one. (Not
# `from . import tensor`: once tracegrad is imported, tg.tensor is the creation function.)
_tensor = importlib.import_module(__package__ + ".tensor")

if TYPE_CHECKING:
    from .tensor import Tensor

_UNCHANGED_PAIR = (0, 0)
# The version counter of every tensor whose data was never changed in place and that shares
# its counter with no alias. Never incremented: `_bump` gives a tensor its own counter first.
_UNCHANGED = [0]


def _bump(t: "Tensor") -> None:
    """Count an in-place change of ``t``'s data (its version, which backward checks)."""
    vc = t._vc
    if vc is _UNCHANGED:
        t._vc = [1]
    else:
        vc[0] += 1




class _SharedVersion(list):
    """The version counter of tensors that share memory (a base, its views, ``detach``
    aliases), with weak references to the family's views, which an in-place op under grad
    mode re-derives from their base."""

    __slots__ = ("views", "prune_at")

    def __init__(self, version: int):
        super().__init__((version,))
        self.views: list = []
        self.prune_at = 64  # forget the dead views when the list grows this long


class _View:
    """What makes a tensor a view: its base, the steps (primitive, attrs) from the base to it,
    and whether it was made under grad mode (PyTorch refuses to record an in-place op on a
    view made under no_grad of a base that requires grad)."""

    __slots__ = ("base", "steps", "grad_mode")

    def __init__(self, base: "Tensor", steps: tuple, grad_mode: bool):
        self.base, self.steps, self.grad_mode = base, steps, grad_mode


class _Alias:
    """What makes a tensor a ``detach()`` alias: the tensor that owns its memory (held
    weakly, so that a detached loss kept for logging does not keep a graph alive) and the
    view steps from it. For autograd an alias is a root of its own; the compiler's tracer and
    writes into read-only memory follow it to the owner."""

    __slots__ = ("of", "steps")

    def __init__(self, owner: "Tensor", steps: tuple):
        self.of, self.steps = weakref.ref(owner), steps


def _shared_counter(t: "Tensor") -> _SharedVersion:
    """``t``'s version counter, made shareable first (it keeps its value). A tensor whose
    counter is not shared yet is no view: it becomes the root of a family (``_view`` None,
    which is quicker to read than an unset slot)."""
    vc = t._vc
    if type(vc) is not _SharedVersion:
        vc = t._vc = _SharedVersion(vc[0])
        t._view = None
    return vc


def _as_view(parent: "Tensor", out: "Tensor", prim: Any, attrs: dict) -> "Tensor":
    """Make ``out``, the result of movement primitive ``prim`` on ``parent``, a view of
    ``parent``'s base when NumPy gave a view (a reshape that had to copy is no view; an empty
    one is a view, as in PyTorch, whatever NumPy made)."""
    if prim is _RESHAPE and out._data.size and not np.may_share_memory(out._data, parent._data):
        return out
    _shared_counter(parent)
    pv = parent._view
    if type(pv) is _View:
        _join(parent, out, _View(pv.base, pv.steps + ((prim, attrs),), _mode.enabled))
    else:
        _join(parent, out, _View(parent, ((prim, attrs),), _mode.enabled))
    return out


def _join(parent: "Tensor", t: "Tensor", how: "_View | _Alias") -> None:
    """``t`` shares ``parent``'s memory (``how``): one version counter, and a place in the
    family's list of views."""
    vc = t._vc = _shared_counter(parent)
    t._view = how
    views = vc.views
    if len(views) >= vc.prune_at:  # (twice the live ones: amortized O(1) per view)
        views[:] = [r for r in views if r() is not None]
        vc.prune_at = max(64, 2 * len(views))
    views.append(weakref.ref(t))


def _memory(t: "Tensor") -> tuple:
    """(the tensor that owns ``t``'s memory, the view steps from it to ``t``)."""
    steps: tuple = ()
    while True:
        how = getattr(t, "_view", None)
        if type(how) is _View:
            steps, t = how.steps + steps, how.base
        elif type(how) is _Alias and how.of() is not None:
            steps, t = how.steps + steps, how.of()
        else:
            return t, steps


def _replay(t: "Tensor", steps: tuple) -> "Tensor":
    """The view ``steps`` lead to from ``t``, recorded afresh from ``t``'s current node. The
    results share ``t``'s counter: a view op's node does not check its input's version (see
    `Tensor._changed_in_place`)."""
    for prim, attrs in steps:
        vc = t._vc
        t = _tensor.apply(prim, t, **attrs)
        t._vc = vc
    return t


def view_of(t: "Tensor", steps: tuple, grad: bool = False) -> "Tensor":
    """The view ``steps`` lead to from ``t`` as eager mode makes it, sharing ``t``'s memory
    and version counter (``t`` itself for no steps; a copy where NumPy copies, as eager's
    reshape does); of ``t.detach()`` when ``t`` requires grad, unless ``grad`` (the compiler
    hands out this way a result that eager mode returned as a view of an argument: one that
    needs grad is recorded, its gradient going to ``t``, as in eager mode)."""
    if t.requires_grad and not grad:
        t = t.detach()
    for prim, attrs in steps:
        t = _as_view(t, _tensor.apply(prim, t, **attrs), prim, attrs)
    return t


def strided(t: "Tensor", shape: tuple, strides: tuple, offset: int = 0) -> "Tensor | None":
    """The elements of ``t`` at ``offset + sum(i_k * strides[k])`` bytes from its first one,
    for i in ``shape``, as a view that shares ``t``'s memory (NumPy's strides: the diagonals
    of a batch of sliced matrices, overlapping windows), or None where it cannot be one.
    Made from ``t``'s base, whose memory must be one C-ordered block, as the ``as_strided``
    primitive of its flat view (two view steps from the base, so writes through it reach
    ``t`` and its family, and back). Overlapping elements make a read-only view: an in-place
    op on it is refused (`_check_writable`)."""
    base, _ = _memory(t)  # (through views and detach() aliases: the memory's owner)
    a, b = t._data, base._data
    size = a.itemsize
    if not b.flags.c_contiguous or a.dtype != b.dtype or (
            a.size and not np.may_share_memory(a, b)) or \
            any(s % size for s in strides) or offset % size:  # (bounds only: a views b)
        return None
    start = (a.__array_interface__["data"][0] - b.__array_interface__["data"][0] + offset) \
        // size if a.size else 0
    attrs = {"shape": tuple(int(n) for n in shape),
             "strides": tuple(int(s) // size for s in strides), "offset": int(start)}
    try:
        P["as_strided"].infer(b, **attrs)
    except Exception:  # (outside the base's memory: not a view of it)
        return None
    steps = ((_RESHAPE, {"shape": (b.size,)}), (P["as_strided"], attrs))
    return view_of(base, steps, grad=t.requires_grad)


def _positions(shape: tuple, steps: tuple) -> np.ndarray:
    """For each element of the view ``steps`` lead to from a base of ``shape``, its position
    in the base (C order)."""
    pos = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)
    for prim, attrs in steps:
        pos = prim.forward(pos, **attrs)
    return pos


def _write_through(base: "Tensor", value: "Tensor", steps: tuple) -> "Tensor":
    """``base`` with the elements the view ``steps`` select replaced by ``value``, made of
    primitives (a setitem), so that it differentiates (to any order) and traces."""
    if not steps:
        return value
    if len(steps) == 1 and steps[0][0] is P["getitem"]:
        return _tensor.apply(P["setitem"], base, value, index=steps[0][1]["index"])
    shape, n = base._data.shape, base._data.size
    pos = np.ascontiguousarray(_positions(shape, steps)).reshape(-1)
    apply = _tensor.apply
    flat_value = apply(P["reshape"], value, shape=(value._data.size,))
    first = np.unique(pos, return_index=True)[1]
    if first.size < pos.size:  # (an overlapping view, written one value per location: each
        # location once, so that its gradient goes to one of its elements, not to each)
        pos = pos[first]
        flat_value = apply(P["getitem"], flat_value, _tensor._leaf(first), index=(SLOT,))
    flat = apply(P["setitem"], apply(P["reshape"], base, shape=(n,)), flat_value,
                 _tensor._leaf(pos), index=(SLOT,))
    return apply(P["reshape"], flat, shape=shape)


_RESHAPE = P["reshape"]




def overlap_positions(t: "Tensor") -> np.ndarray | None:
    """For a view two of whose elements are one memory location (expanded from a smaller
    tensor, overlapping windows of unfold or as_strided): each element's position in the
    memory of the tensor that owns it (C order, ``t``'s shape); None for any other tensor."""
    a = t._data
    if a.flags.writeable or type(t._vc) is not _SharedVersion or a.size < 2:
        return None
    expanded = any(s == 0 and n > 1 for s, n in zip(a.strides, a.shape))
    owner, steps = _memory(t)
    if not expanded and not any(prim is P["as_strided"] for prim, _ in steps):
        return None
    pos = _positions(owner._data.shape, steps)
    return pos if expanded or np.unique(pos).size < pos.size else None


def _check_writable(t: "Tensor", op: str, uniform: bool = False) -> None:
    """Refuse an in-place op whose result would be ambiguous or lost: a view in which two
    elements are one memory location (expanded from a smaller tensor, overlapping windows),
    unless the op writes each location one value whichever of its elements it goes through
    (``uniform``: fill_, zero_, masked_fill_, as PyTorch allows); or read-only memory that a
    view or alias shares (a copy would part them)."""
    a = t._data
    if a.flags.writeable or type(t._vc) is not _SharedVersion:
        return
    if not uniform and overlap_positions(t) is not None:
        how = "expanded from a smaller one" if any(
            s == 0 and n > 1 for s, n in zip(a.strides, a.shape)) else \
            "whose elements overlap in memory (overlapping windows of unfold or as_strided)"
        raise RuntimeError(
            f"in-place {op} on a tensor of shape {a.shape} {how}: more than one of its "
            f"elements refers to the same memory location, so the result would depend on "
            f"the order they are written in (PyTorch refuses this too, but for fill_, zero_, "
            f"masked_fill_ and assigning to a part that does not overlap itself); clone() "
            f"it before the in-place op"
        )
    owner, _ = _memory(t)
    if not owner._data.flags.writeable:
        raise RuntimeError(
            f"in-place {op} on a tensor of shape {a.shape} whose memory is read-only (a "
            f"read-only NumPy array given to tg.from_numpy) and shared with views or aliases; "
            f"clone() it first, or make the array writeable"
        )


def _write(t: "Tensor", values: np.ndarray, op: str, uniform: bool = False) -> None:
    """Store ``values`` into ``t``'s memory (so its base and views see them), count the change
    and, under detect_anomaly, check it (``uniform``: see `_check_writable`)."""
    a = t._data
    if a.flags.writeable:
        np.copyto(a, values, casting="same_kind")
    elif type(t._vc) is not _SharedVersion:  # read-only memory of its own: a private copy
        t._data = np.array(np.broadcast_to(values, a.shape), dtype=a.dtype)
    else:  # a view NumPy made read-only (expand): through its base's memory
        _check_writable(t, op, uniform)
        owner, steps = _memory(t)
        owner._data.flat[_positions(owner._data.shape, steps).reshape(-1)] = \
            np.broadcast_to(values, a.shape).reshape(-1)
    _bump(t)
    if _Anomaly.enabled:
        _check_anomaly(t, f"in-place {op}")
