"""`Tensor`: an n-d NumPy array that records the primitives applied to it.

Every op a tensor runs goes through one function, `apply`: it runs the primitive's NumPy
forward and, when a gradient is wanted, remembers (primitive, inputs, attributes) on the
result. (The arithmetic methods, `_make_binary`, run the same steps spelled out for their
common case, two tensors of one dtype: that is nearly every op of a model, and a second call
per op costs a tenth of it.) That record is the graph; `tracegrad.autograd` walks it
backwards with the primitive's VJP rule. Composite ops (mean, softmax, conv2d, ...) live in
`functional.py` and are attached to `Tensor` there, so this file only knows primitives,
creation, dtype promotion and the PyTorch-shaped surface (properties, printing, in-place
updates).
"""

from __future__ import annotations

import math
import threading
import warnings
import weakref
from threading import get_ident as _get_ident
from typing import Any, Sequence

import numpy as np

from . import autograd, dtypes
from .autograd import next_seq as _next_seq
from .errors import ShapeError
from .gradarray import GradArray, IntoArray
from .ops import PRIMITIVES
from .ops.base import check_dim, normalize_axes
from .ops.methods import BINARY_METHODS, FLOAT_ONLY, UNARY_METHODS
from .ops.movement import SLOT, is_basic_index, resolve_shape

# Like PyTorch, tensor math gives inf/nan quietly (tg.detect_anomaly() finds where); NumPy's
# RuntimeWarnings from inside tracegrad would only point at this file, not at the user's line.
warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"tracegrad\.")

P = PRIMITIVES
_new = object.__new__
# The compiler's tracer while a function is being captured (tracegrad.compiler.trace), else
# None. Every hook below is one `is not None` test when nothing is being traced.
_tracer: Any = None
# tracegrad.forward while a forward-mode level (tg.jvp) is open in some thread, else None.
_forward: Any = None
# Bumped whenever a Module or Optimizer changes which tensors it holds: compiled variants
# that captured the old ones are stale then.
_structure_epoch = [0]
_grad_enabled = autograd.is_grad_enabled
_mode = autograd._mode
_ndarray = np.ndarray

_SCALARS = (int, float, bool, np.number, np.bool_)
_CPU: Any = None  # tracegrad.device.CPU, set below (device.py imports nothing of ours)



class _ThreadAnomaly(threading.local):
    on = False  # this thread is inside detect_anomaly()
    backward_of: tuple | None = None  # (op, line) whose gradient this thread is computing


class _Anomaly:
    """``tg.detect_anomaly()``'s switches. ``enabled`` is True while some thread is inside the
    block: the one class-attribute check every op makes when it is off. Then ``here.on``
    says whether this thread is (a thread in the block does not turn it on for the others)."""

    enabled = False
    blocks = 0  # detect_anomaly() blocks open, in all threads
    lock = threading.Lock()
    here = _ThreadAnomaly()
    created: dict = {}  # id(tensor) -> (weakref, the user's line that created it)


def _user_line() -> str:
    import traceback

    frames = [f for f in traceback.extract_stack()
              if "/tracegrad/" not in f.filename.replace("\\", "/")]
    last = frames[-1] if frames else None
    return f"{last.filename}:{last.lineno}: {last.line}" if last else "?"


def _check_anomaly(t: "Tensor", prim_name: str) -> None:
    """detect_anomaly's check of one result: raise if it holds nan/inf, else remember the
    user's line that made it (so a later backward failure can point at it)."""
    here = _Anomaly.here
    if not here.on:
        return
    arr = t._data
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = "nan" if np.isnan(arr).any() else "inf"
        if here.backward_of is not None:
            op, line = here.backward_of
            raise FloatingPointError(
                f"detect_anomaly: the gradient of {op} produced {bad} in the backward pass "
                f"(in its rule's {prim_name}); the {op} was created at {line}"
            )
        raise FloatingPointError(
            f"detect_anomaly: {prim_name} produced {bad} in the forward pass "
            f"(created at {_user_line()})"
        )
    if here.backward_of is None and t._op is not None:
        created = _Anomaly.created
        if len(created) > 100_000:
            created.clear()
        created[id(t)] = (weakref.ref(t), _user_line())


# Shared by the nodes of the common case, instead of a new object per node.
_NO_ATTRS: dict = {}
# A unary rule writes into an owned gradient (see Tensor._vjp) from this many elements on:
# below, a new array is as cheap as NumPy's small-block cache makes it, and the in-place
# call costs more than it saves.
_IN_PLACE_MIN_SIZE = 4096
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


# ---------------------------------------------------------------- views
#
# As in PyTorch, slicing, reshape, permute, expand (and so squeeze, unsqueeze, .T, ...) return
# views when NumPy gives one: the result shares its base's memory and version counter, so an
# in-place op through either is seen by both, and by every backward that saved them. A view
# remembers its base (a tensor that is no view) and the movement steps that lead from the base
# to it: replaying the steps re-derives the view from the base's current graph node, and
# `_write_through` composes the base's new value from primitives after an in-place op on the
# view (PyTorch's CopySlices), so gradients of every order flow through it.


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
        t = apply(prim, t, **attrs)
        t._vc = vc
    return t


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
        return apply(P["setitem"], base, value, index=steps[0][1]["index"])
    shape, n = base._data.shape, base._data.size
    where = _leaf(np.ascontiguousarray(_positions(shape, steps)).reshape(-1))
    flat = apply(P["setitem"], apply(P["reshape"], base, shape=(n,)),
                 apply(P["reshape"], value, shape=(value._data.size,)), where, index=(SLOT,))
    return apply(P["reshape"], flat, shape=shape)


_VIEW_OPS = frozenset(P[name] for name in ("reshape", "permute", "expand", "getitem"))
_RESHAPE = P["reshape"]


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
    old = _new(Tensor)
    for slot in ("_data", "_grad", "requires_grad", "_op", "_children", "_vc"):
        setattr(old, slot, getattr(t, slot))
    if t._op is not None:  # (leaves never set these three)
        old._attrs, old._versions, old._seq = t._attrs, t._versions, t._seq
    if copy:
        old._data, old._vc = t._data.copy(), [t._vc[0]]
    if _tracer is not None:
        _tracer.alias(old, t)
    if _forward is not None:
        _forward.moved(old, t)
    return old


def _adopt(t: "Tensor", new: "Tensor") -> None:
    """``t`` becomes ``new``'s graph node (made after its inputs, so after ``t``'s old node);
    its data stays."""
    t._op, t._children = new._op, new._children
    if new._op is not None:
        t._seq = new._seq
    t._attrs = getattr(new, "_attrs", None)
    t._versions = getattr(new, "_versions", ())
    t.requires_grad = new.requires_grad
    if _forward is not None:
        _forward.moved(t, new)


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
            _tracer.alias(v, _replay(base, how.steps))


def _check_writable(t: "Tensor", op: str) -> None:
    """Refuse an in-place op whose result would be ambiguous or lost: a view expanded from a
    smaller tensor (several elements, one memory location), or read-only memory that a view
    or alias shares (a copy would part them)."""
    a = t._data
    if a.flags.writeable or type(t._vc) is not _SharedVersion:
        return
    if any(s == 0 and n > 1 for s, n in zip(a.strides, a.shape)):
        raise RuntimeError(
            f"in-place {op} on a tensor of shape {a.shape} expanded from a smaller one: more "
            f"than one of its elements refers to the same memory location (PyTorch refuses "
            f"this too); clone() it before the in-place op"
        )
    if not _memory(t)[0]._data.flags.writeable:
        raise RuntimeError(
            f"in-place {op} on a tensor of shape {a.shape} whose memory is read-only (a "
            f"read-only NumPy array given to tg.from_numpy) and shared with views or aliases; "
            f"clone() it first, or make the array writeable"
        )


def _write(t: "Tensor", values: np.ndarray, op: str) -> None:
    """Store ``values`` into ``t``'s memory (so its base and views see them), count the change
    and, under detect_anomaly, check it."""
    a = t._data
    if a.flags.writeable:
        np.copyto(a, values, casting="same_kind")
    elif type(t._vc) is not _SharedVersion:  # read-only memory of its own: a private copy
        t._data = np.array(np.broadcast_to(values, a.shape), dtype=a.dtype)
    else:  # a view NumPy made read-only (expand): through its base's memory
        _check_writable(t, op)
        owner, steps = _memory(t)
        owner._data.flat[_positions(owner._data.shape, steps).reshape(-1)] = \
            np.broadcast_to(values, a.shape).reshape(-1)
    _bump(t)
    if _Anomaly.enabled:
        _check_anomaly(t, f"in-place {op}")


def _failed(prim: Any, inputs: tuple, attrs: dict, e: Exception) -> Exception:
    """The error to raise when a primitive's forward fails: the shape rule's message, which
    is what a user should read; or, if it accepts the operands, the op and the shapes."""
    prim.infer(*inputs, **attrs)
    shapes = ", ".join(f"{t.dtype}{list(t.shape)}" for t in inputs)
    return type(e)(f"{prim.name} on {shapes}: {e}")


def apply(prim: Any, *inputs: "Tensor", **attrs: Any) -> "Tensor":
    """Run one primitive on tensors and record it for backward when needed. While this
    thread is traced, a primitive with a declared decomposition runs (and is recorded as)
    that decomposition, for the compiler to fuse (see ops.base.register)."""
    if _tracer is not None and prim.decomposition is not None and \
            _tracer.thread == _get_ident():
        return prim.decomposition(*inputs, **attrs)
    try:
        out = prim.forward(*[t._data for t in inputs], **attrs)
    except Exception as e:
        raise _failed(prim, inputs, attrs, e) from e
    if type(out) is not _ndarray:
        out = np.asarray(out)
    return _result(out, prim, inputs, attrs,
                   prim.vjp is not None and _mode.enabled and out.dtype.kind == "f"
                   and any([x.requires_grad for x in inputs]))


def _result(out: np.ndarray, prim: Any, inputs: tuple, attrs: dict, record: bool) -> "Tensor":
    """The one place a tensor computed by an op is built: ``out`` (an ndarray), the result
    of ``prim`` on ``inputs``, and, when ``record``, its node for backward (the op, its
    inputs and their versions then). Checked under detect_anomaly; recorded while traced."""
    t = _new(Tensor)
    t._data = out
    t._grad = None
    t._vc = _UNCHANGED
    if record:
        t.requires_grad = True
        t._op = prim
        t._seq = _next_seq()
        t._children = inputs
        t._attrs = attrs if attrs else _NO_ATTRS  # the call's own empty dict is freed at once
        if len(inputs) == 2:
            va, vb = inputs[0]._vc, inputs[1]._vc
            t._versions = _UNCHANGED_PAIR if va is vb is _UNCHANGED else (va[0], vb[0])
        else:
            t._versions = tuple([x._vc[0] for x in inputs])
    else:
        t.requires_grad = False
        t._op = None
        t._children = ()
    if _Anomaly.enabled:
        _check_anomaly(t, prim.name)
    if _tracer is not None:
        _tracer.record(prim, inputs, attrs, t)
    if _forward is not None:
        _forward.push(prim, inputs, attrs, t)
    return t


def _to_args(op: str, args: tuple, kwargs: dict) -> Any:
    """The dtype that ``.to(...)``'s arguments ask for (None: keep it), PyTorch's forms: a
    dtype, a device (checked: only the CPU), a tensor (its dtype), or keywords."""
    from .device import check_device

    dtype = kwargs.pop("dtype", None)
    check_device(kwargs.pop("device", None))
    kwargs.pop("non_blocking", None)
    kwargs.pop("copy", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"{op}: unexpected keyword(s) {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            dtype = a._data.dtype
        elif isinstance(a, str) or type(a).__name__ == "device":
            check_device(a)
        elif a is not None and not isinstance(a, bool):  # (non_blocking given by position)
            dtype = a
    return None if dtype is None else dtypes.to_dtype(dtype)


def _fresh_grad(x: Any) -> GradArray:
    """A gradient a plain arithmetic rule computed on arrays (see ops.base.FACTS):
    new memory, which a leaf may adopt."""
    return GradArray(x if type(x) is _ndarray else np.asarray(x), False, True)


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


_ONES: dict = {}  # (shape, dtype) -> a read-only array of ones: backward()'s implied seed


def _one(a: np.ndarray) -> np.ndarray:
    """Ones of ``a``'s (one-element) shape and dtype, made once per shape and dtype."""
    key = (a.shape, a.dtype)
    one = _ONES.get(key)
    if one is None:
        one = _ONES[key] = np.ones(a.shape, dtype=a.dtype)
        one.flags.writeable = False
    return one


def _scaled(x: Any, alpha: Any) -> Any:
    """``x * alpha`` for ``add_``/``sub_``; ``alpha`` may be a tensor (a learning rate)."""
    if isinstance(alpha, (int, float)) and alpha == 1:
        return x
    return x * alpha


def _init_leaf(t: "Tensor", array: np.ndarray, requires_grad: bool) -> None:
    t._data = array
    t._grad = None
    t._vc = _UNCHANGED
    t._op = None
    t._children = ()
    t.requires_grad = False
    if requires_grad:
        t.requires_grad_(True)


def _leaf(array: np.ndarray, requires_grad: bool = False) -> "Tensor":
    """A new leaf around ``array`` (not copied)."""
    t = Tensor.__new__(Tensor)
    _init_leaf(t, array, requires_grad)
    if _tracer is not None:
        _tracer.born_tensor(t)
    return t


def _as_array(data: Any, dtype: Any = None) -> np.ndarray:
    """Python data -> ndarray with PyTorch's dtype inference; clear errors for bad input."""
    if isinstance(data, Tensor):
        arr = data._data
    elif isinstance(data, (np.ndarray, np.generic)):
        arr = np.asarray(data)  # NumPy arrays and scalars keep their dtype
    else:
        try:
            arr = np.array(data, dtype=None if dtype is None else dtypes.to_dtype(dtype))
        except ValueError as e:
            raise ValueError(
                f"tensor: the nested lists have ragged lengths and do not form a rectangular "
                f"array ({e}); make every row the same length"
            ) from None
        if dtype is None and arr.dtype.kind == "f":
            arr = arr.astype(dtypes.default_float)
        elif dtype is None and arr.dtype.kind in "iu":
            arr = arr.astype(dtypes.default_int)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"tensor: cannot make a tensor from {type(data).__name__} data of dtype {arr.dtype}; "
            f"give numbers (bool, int or float), nested lists of them, or a numeric array"
        )
    if dtype is not None:
        arr = arr.astype(dtypes.to_dtype(dtype), copy=False)
    elif arr.dtype not in dtypes.SUPPORTED:
        arr = arr.astype(dtypes.default_float if arr.dtype.kind == "f" else dtypes.default_int)
    if _tracer is not None and type(data) is not _ndarray and isinstance(data, _ndarray):
        _tracer.array_read(data, arr)  # an array argument of a compiled function: an input
    return arr


_constants: dict[tuple, "Tensor"] = {}


def _constant(value: Any, dtype: np.dtype) -> "Tensor":
    """A 0-d leaf for a Python number. Cached: a training loop reuses the same few numbers,
    and the gradient rules only read them."""
    key = (type(value), value, dtype, dtypes.sign_bit(value))  # 0.0 == -0.0, yet they differ
    t = _constants.get(key)
    if t is None:
        if len(_constants) > 4096:
            _constants.clear()
        t = _constants[key] = _leaf(np.asarray(value, dtype=dtype))
    return t


def _operand(x: Any, like: "Tensor") -> "Tensor":
    """The other operand of a binary op as a tensor; Python numbers take ``like``'s dtype."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, _SCALARS):
        return _constant(x, dtypes.promote_with_scalar(like._data.dtype, x))
    if isinstance(x, (np.ndarray, list, tuple)):
        return _leaf(_as_array(x))
    raise TypeError(
        f"unsupported operand type for a tensor op: {type(x).__name__}; "
        f"use a tg.Tensor, a number or a NumPy array"
    )


def _binary(name: str, a: "Tensor", b: Any, reverse: bool = False) -> "Tensor":
    tb = type(b)
    if tb is float and a._data.dtype.kind == "f":  # the common case, kept short
        b = _constant(b, a._data.dtype)
    elif tb is not Tensor:
        b = _operand(b, a)
    if reverse:
        a, b = b, a
    da, db = a._data.dtype, b._data.dtype
    if da is not db and da != db:
        dt = _result_dtype(a, b)
        a, b = a.to(dt), b.to(dt)
    if name in FLOAT_ONLY and a._data.dtype.kind != "f":
        a, b = a.to(dtypes.default_float), b.to(dtypes.default_float)
    return apply(P[name], a, b)


def _result_dtype(a: "Tensor", b: "Tensor") -> np.dtype:
    """PyTorch's promotion, including its rule that a 0-d tensor acts like a number: it
    cannot widen a dimensioned tensor of the same kind (float32[3] * float64[] is float32)."""
    da, db = a._data.dtype, b._data.dtype
    if type(a) is WeakScalar or type(b) is WeakScalar:  # (only while tracing)
        if type(a) is WeakScalar and type(b) is WeakScalar:
            return dtypes.promote(da, db)
        return dtypes.promote_with_scalar(db if type(a) is WeakScalar else da, 0.0)
    return dtypes.result_dtype(da, a._data.ndim, db, b._data.ndim)


def _unary(name: str, x: "Tensor") -> "Tensor":
    if name in FLOAT_ONLY and x._data.dtype.kind != "f":
        x = x.to(dtypes.default_float)
    return apply(P[name], x)


class Tensor:
    """An n-d array with automatic differentiation; PyTorch's interface on NumPy.

    >>> x = tg.tensor([[1.0, 2.0]], requires_grad=True)
    >>> y = (x * x).sum(); y.backward(); x.grad
    tensor([[2., 4.]])
    """

    # _vc is a one-element list, the version counter, shared with aliases (detach) so an
    # in-place change through any of them is seen by the graph that saved the data; until
    # either happens it is the shared `_UNCHANGED` (one list less per op).
    __slots__ = ("_data", "_grad", "requires_grad", "_op", "_children", "_attrs", "_versions",
                 "_vc", "_seq", "_view", "__weakref__")
    __array_priority__ = 1000  # NumPy defers to us: np.float64(2) * t is a Tensor

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None):
        arr = _as_array(data, dtype)
        _init_leaf(self, arr, requires_grad)
        if _tracer is not None:
            if isinstance(data, Tensor) and arr is data._data:
                _tracer.alias(self, data)
            else:
                _tracer.born_tensor(self)

    # ---------------------------------------------------------------- properties

    @property
    def data(self) -> "Tensor":
        """This tensor's values as a tensor with no gradient history that shares its memory,
        as PyTorch's ``x.data``: ``p.data -= lr * p.grad``, ``m.bias.data.fill_(0.01)`` and
        ``x.data.numpy()`` work as there. Unlike PyTorch, a change through it is counted
        (as through ``detach()``): a backward that needs the old values raises instead of
        computing with the new ones. In a compiled function it is a traced tensor, and an
        in-place change through it is a recorded write-back."""
        return self.detach()

    @data.setter
    def data(self, value: Any) -> None:
        """``x.data = y``: ``x`` takes ``y``'s values (its own identity, ``requires_grad``
        and ``.grad`` kept). Of the same shape and dtype they are written into ``x``'s
        memory, so views of ``x`` and a compiled function see them alike (PyTorch swaps the
        memory instead); of another shape or dtype ``x`` takes ``y``'s array itself, which a
        compiled function refuses (`tg.TraceError`)."""
        if isinstance(value, Tensor):
            arr = value._data
        elif isinstance(value, np.ndarray):
            arr = value
        else:
            raise TypeError(f"x.data = ...: expects a tg.Tensor or an ndarray, got "
                            f"{type(value).__name__}")
        if arr is self._data:  # `p.data -= ...` wrote into this memory already
            return
        if arr.shape == self._data.shape and arr.dtype == self._data.dtype:
            new = value.detach() if isinstance(value, Tensor) else Tensor(value)
            saved = _mode.enabled
            _mode.enabled = False
            try:
                self._assign(new)
            finally:
                _mode.enabled = saved
            return
        if _tracer is not None:
            from .errors import TraceError

            raise TraceError(
                f"x.data = y with a new shape or dtype ({self._data.dtype}{list(self.shape)} "
                f"-> {arr.dtype}{list(arr.shape)}) cannot be compiled; do it outside the "
                f"compiled function"
            )
        self._data = arr
        self._vc = [self._vc[0] + 1]  # a graph that saved the old values must not run
        self._view = None

    @property
    def shape(self) -> tuple:
        if _tracer is not None and _tracer.symbolic is not None:  # tg.compile(dynamic)
            return _tracer.symbolic_shape(self)
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def T(self) -> "Tensor":
        return self.permute(tuple(range(self.ndim - 1, -1, -1)))

    @property
    def is_leaf(self) -> bool:
        return self._op is None

    @property
    def grad_fn(self) -> "GradFn | None":
        """The op that made this tensor, for backward (None for a leaf): prints (and
        compares equal to) ``"<MulBackward>"``, with PyTorch's ``name()`` and
        ``next_functions``."""
        if self._op is None:
            return None
        if self._op.kind == "function":  # a tg.autograd.Function: its class name
            return GradFn(f"<{self._op.name}Backward>", self)
        return GradFn(f"<{_backward_name(self._op.name)}>", self)

    def size(self, dim: int | None = None) -> tuple | int:
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return self._data.size if _tracer is None else math.prod(self.shape)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    # ---------------------------------------------------------------- conversion

    def numpy(self) -> np.ndarray:
        """The data as an ndarray (shared, not copied), even when the tensor requires grad."""
        if _tracer is not None:
            _tracer.check_static(self, "x.numpy()")
        return self._data

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if _tracer is not None:
            _tracer.check_static(self, "np.asarray(x)")
        return self._data if dtype is None else self._data.astype(dtype)

    def item(self) -> float | int | bool:
        if _tracer is not None:
            _tracer.check_static(self, "x.item()")
        if self._data.size != 1:
            raise ValueError(
                f"item: only a one-element tensor converts to a Python number, "
                f"this one has shape {self.shape}"
            )
        return self._data.item()

    def tolist(self) -> Any:
        if _tracer is not None:
            _tracer.check_static(self, "x.tolist()")
        return self._data.tolist()

    def __float__(self) -> float:
        if _tracer is not None:
            _tracer.check_static(self, "float(x)")
        return float(self._data.item())

    def __int__(self) -> int:
        if _tracer is not None:
            _tracer.check_static(self, "int(x)")
        return int(self._data.item())

    def __index__(self) -> int:
        if _tracer is not None:
            _tracer.check_static(self, "using a tensor as a Python index")
        if self.dtype.kind not in "iu":
            raise TypeError(f"only integer tensors can be used as an index, not {self.dtype}")
        return int(self.item())

    def __bool__(self) -> bool:
        if _tracer is not None:
            _tracer.check_static(self, "bool(x) (an `if`, `while`, `and`/`or` on a tensor)")
        if self._data.size != 1:
            raise RuntimeError(
                f"the truth value of a tensor with {self._data.size} elements is ambiguous; "
                f"use .any() or .all() (or tg.where for elementwise choices)"
            )
        return bool(self._data)

    def to(self, *args: Any, **kwargs: Any) -> "Tensor":
        """Cast (differentiably between float dtypes), as ``torch.Tensor.to``:
        ``x.to(tg.float64)``, ``x.to("cpu")``, ``x.to(other)`` (its dtype),
        ``x.to(device, dtype)``, ``x.to(dtype=..., device=...)``."""
        dt = _to_args("Tensor.to", args, kwargs)
        if dt is None or dt == self._data.dtype:
            return self
        return apply(P["cast"], self, dtype=dt)

    @property
    def device(self) -> Any:
        """Always the CPU (see `tracegrad.device`)."""
        return _CPU

    def cpu(self) -> "Tensor":
        return self

    def cuda(self, *args: Any, **kwargs: Any) -> "Tensor":
        return self.to("cuda")  # raises: tracegrad runs on the CPU

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    def element_size(self) -> int:
        return self._data.dtype.itemsize

    def float(self) -> "Tensor":
        return self.to(dtypes.float32)

    def half(self) -> "Tensor":
        return self.to(dtypes.float16)

    def short(self) -> "Tensor":
        return self.to(dtypes.int16)

    def double(self) -> "Tensor":
        return self.to(dtypes.float64)

    def long(self) -> "Tensor":
        return self.to(dtypes.int64)

    def int(self) -> "Tensor":
        return self.to(dtypes.int32)

    def bool(self) -> "Tensor":
        return self.to(dtypes.bool_)

    def type(self, dtype: Any) -> "Tensor":
        return self.to(dtype)

    # ---------------------------------------------------------------- autograd

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self._data.dtype.kind != "f":
            raise TypeError(
                f"only float tensors can require gradients, this one is {self._data.dtype}; "
                f"create it with dtype=tg.float32 (or call .float() first)"
            )
        if not requires_grad and self._op is not None:
            raise RuntimeError(
                "requires_grad_(False) works on leaf tensors only; use .detach() on a result"
            )
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self) -> "Tensor":
        """The same data, cut from the graph (shares memory and the version counter, as in
        PyTorch, so an in-place change through it is caught by a backward that needs it)."""
        t = _leaf(self._data)
        _join(self, t, _Alias(*_memory(self)))
        if _tracer is not None:
            _tracer.alias(t, self)
        return t

    @property
    def _version(self) -> int:
        """How many times this tensor's data was changed in place."""
        return self._vc[0]

    @property
    def grad(self) -> "Tensor | None":
        """The accumulated gradient (None until a backward reaches this leaf)."""
        if _tracer is not None:
            _tracer.grad_read(self)
        return self._grad

    @grad.setter
    def grad(self, value: "Tensor | None") -> None:
        if _tracer is not None:
            _tracer.grad_written(self)
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"grad must be a tg.Tensor or None, got {type(value).__name__}"
                )
            if value.shape != self.shape:
                raise ShapeError(
                    f"grad of shape {value.shape} assigned to a tensor of shape {self.shape}; "
                    f"they must match"
                )
        self._grad = value

    def clone(self) -> "Tensor":
        if self.requires_grad:
            return self * 1
        t = _leaf(self._data.copy())
        if _tracer is not None:
            _tracer.alias(t, self)
        if _forward is not None:
            _forward.moved(t, self)
        return t

    def retain_grad(self) -> None:
        """Keep this (non-leaf) tensor's gradient in ``.grad`` when backward passes through
        it, as PyTorch does; a leaf keeps its gradient anyway."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad, so it gets no "
                               "gradient to retain")
        if self._op is None:
            return
        mine = autograd.hooks.get(id(self))
        if mine is None or autograd.RETAIN not in mine:
            autograd.add_hook(self, autograd.RETAIN)

    @property
    def retains_grad(self) -> bool:
        return autograd.RETAIN in autograd.hooks.get(id(self), ())

    def register_hook(self, hook: Any) -> Any:
        """Call ``hook(grad)`` whenever this tensor's gradient is computed; a tensor it
        returns replaces the gradient (same shape). Returns a handle: ``handle.remove()``.

        >>> x.register_hook(lambda g: g.clamp(-1, 1))     # clip the gradient
        """
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that does "
                               "not require gradient")
        if not callable(hook):
            raise TypeError(f"register_hook: expects a function of the gradient, got "
                            f"{type(hook).__name__}")
        return autograd.add_hook(self, hook)

    def _run_hooks(self, g: "Tensor", hooks: list) -> "Tensor":
        """The engine calls this with this tensor's whole gradient (see autograd.hooks).
        As in PyTorch, retain_grad() keeps the gradient after every other hook ran. (On the
        first-order path the gradient is a GradArray: the hooks see it as a tensor.)"""
        bare = type(g) is GradArray
        given = g
        if bare:
            g = _leaf(g._data)
        for hook in list(hooks):
            if hook is autograd.RETAIN:
                continue
            new = hook(g)
            if new is None:
                continue
            if not isinstance(new, Tensor) or new.shape != g.shape:
                what = f"shape {new.shape}" if isinstance(new, Tensor) else type(new).__name__
                raise ShapeError(
                    f"register_hook: the hook {getattr(hook, '__name__', hook)!r} returned "
                    f"{what} for a gradient of shape {g.shape}; a hook must return None or a "
                    f"tensor of the gradient's shape"
                )
            g = new if new.dtype == g.dtype else new.to(g.dtype)
        if autograd.RETAIN in hooks:
            # (a copy on the first-order path: a later rule may write into that memory)
            kept = _leaf(np.array(g._data)) if bare else g if _mode.enabled else g.detach()
            self._grad = kept if self._grad is None else self._grad + kept
        if bare:
            return given if g._data is given._data else GradArray(g._data)
        return g

    def backward(self, gradient: Any = None, retain_graph: bool = False,
                 create_graph: bool = False) -> None:
        """Accumulate d self / d leaf into every leaf's ``.grad``, as ``torch.Tensor.backward``.

        The graph's saved arrays are freed afterwards unless ``retain_graph=True``.
        ``create_graph=True`` records the backward pass too, for higher-order gradients.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad and has no graph; create the "
                "inputs with requires_grad=True (and do not compute it under tg.no_grad())"
            )
        if gradient is None:
            if self._data.size != 1:
                raise RuntimeError(
                    f"backward: the gradient can only be implied for a one-element tensor, this "
                    f"one has shape {self.shape}; reduce it (e.g. .sum()) or pass gradient= "
                    f"with that shape"
                )
            seed = _leaf(_one(self._data))
        else:
            seed = gradient if isinstance(gradient, Tensor) else Tensor(gradient, dtype=self.dtype)
            if seed.shape != self.shape:
                raise ShapeError(
                    f"backward: gradient has shape {seed.shape} but the tensor has shape "
                    f"{self.shape}; they must match"
                )
        self._backward(seed, autograd.GradsInTable(retain_graph or create_graph), create_graph)

    def _backward(self, seed: "Tensor", policy: Any, create_graph: bool) -> None:
        if _tracer is not None:
            _tracer.backward_called()
        elif not create_graph and not _Anomaly.enabled and (
                _forward is None or not _forward.active()):
            # First-order, nothing to record: the rules run on bare arrays (see gradarray.py).
            seed = GradArray(seed._data)
        saved = _mode.enabled  # (grad mode as enable_grad()/no_grad() would set it)
        _mode.enabled = create_graph
        try:
            autograd.backpropagate(self, seed, policy)
        finally:
            _mode.enabled = saved

    # Hooks the engine calls (tracegrad.autograd).

    def _is_leaf(self) -> bool:
        return self._op is None

    def _vjp(self, g: "Tensor", free: bool = False) -> tuple:
        children, versions, attrs = self._children, self._versions, self._attrs
        if free:  # the graph is not kept: let go of the inputs now (see autograd)
            self._children = ()
            if attrs is not _NO_ATTRS:
                self._attrs = None
        if len(children) == 2:  # most ops: spelled out, as this runs once per node
            a, b = children
            if a._vc[0] != versions[0] or b._vc[0] != versions[1]:
                self._changed_in_place(children, versions, attrs)
            if type(g) is GradArray:
                op = self._op
                ra, rb = a.requires_grad, b.requires_grad
                mask = ra + 2 * rb
                per_input = op.per_input
                # Equal shapes (then the output's, and the gradient's, are the same too):
                # nothing is summed back, so an elementwise rule's own functions will do.
                same = per_input is not None and a._data.shape == b._data.shape
                if same:
                    if op.passes_gradient:
                        if ra and rb:  # one array for both inputs: neither may write into it
                            g.owned = False
                        return (g if ra else None), (g if rb else None)
                    fa, fb = per_input
                    if op.arithmetic[1][mask]:  # plain arithmetic: on the arrays themselves
                        gd, od, ad, bd = g._data, self._data, a._data, b._data
                        return (_fresh_grad(fa(gd, od, ad, bd)) if ra else None), \
                            (_fresh_grad(fb(gd, od, ad, bd)) if rb else None)
                # Only the values the rule reads become GradArrays (see Primitive.reads).
                ro, wa, wb = op.reads[1][mask]
                out = GradArray(self._data, True) if ro else self
                a = GradArray(a._data, ra) if wa else a
                b = GradArray(b._data, rb) if wb else b
                if same:
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
                    return (_fresh_grad(dx),)
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
            if x._vc[0] != v and not (op in _VIEW_OPS and x._vc is self._vc and (
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
            self._grad = _leaf(a) if self._grad is None else self._grad + _leaf(a)
            return
        if g.shape != self.shape:  # a VJP rule returned the wrong shape: a bug of ours
            raise AssertionError(f"gradient of shape {g.shape} for a leaf of shape {self.shape}")
        if g._data.dtype != self._data.dtype:
            g = g.to(self._data.dtype)
        if _tracer is not None:  # no copies: in the graph every value is immutable anyway
            # accumulating reads this tensor's .grad (an input fed from `.grad` on every
            # call, or a guard that it is None), not the .grad tensor object there now
            _tracer.grad_read(self)
            _tracer.grad_written(self)
            self._grad = g if self._grad is None else self._grad + g
            return
        if self._grad is None:
            # Own, writable memory: a VJP may hand the same array to several leaves, or a
            # read-only broadcast view.
            self._grad = g if g.requires_grad else _leaf(np.array(g._data, order="C", copy=True))
        else:
            self._grad = self._grad + g

    def _grad_input(self) -> "Tensor":
        if self.requires_grad:
            return self
        t = _leaf(self._data, requires_grad=True)
        if _tracer is not None:  # the same value: a compiled tg.grad reads each call's input
            _tracer.alias(t, self)
        if _forward is not None:  # and the same tangents (tg.jacfwd of tg.grad)
            _forward.moved(t, self)
        return t

    def _grad_wrt(self, inputs: Sequence["Tensor"], create_graph: bool) -> list:
        # The graph is kept: it may contain nodes the caller built outside the function and
        # still wants to backpropagate through (the function's own nodes die with it).
        policy = autograd.GradsInTable(retain_graph=True, targets=inputs)
        self._backward(_leaf(np.ones(self.shape, dtype=self.dtype)), policy, create_graph)
        out = []
        for x in inputs:
            g = policy.results.get(id(x))
            if type(g) is GradArray:
                g = _leaf(np.array(g._data, dtype=x.dtype, copy=True))
            out.append(g if g is not None else _leaf(np.zeros(x.shape, dtype=x.dtype)))
        return out

    # ---------------------------------------------------------------- primitives as methods

    def __neg__(self) -> "Tensor":
        return apply(P["neg"], self)

    def sign(self) -> "Tensor":
        return apply(P["sign"], self)

    def maximum(self, other: Any) -> "Tensor":
        return _binary("maximum", self, other)

    def where(self, condition: Any, other: Any) -> "Tensor":
        """PyTorch's ``x.where(cond, y)``: x where cond holds, else y."""
        return where(condition, self, other)

    def _select(self, a: Any, b: Any) -> "Tensor":
        """``where(self, a, b)`` for a bool tensor; used by the gradient rules."""
        return where(self, a, b)

    def matmul(self, other: Any) -> "Tensor":
        other = _operand(other, self)
        a, b = self, other
        if a.dtype != b.dtype:
            dt = dtypes.promote(a.dtype, b.dtype)
            a, b = a.to(dt), b.to(dt)
        return apply(P["matmul"], a, b)

    __matmul__ = matmul

    def __rmatmul__(self, other: Any) -> "Tensor":
        return _operand(other, self).matmul(self)

    # reductions ---------------------------------------------------------

    def sum(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None,
            keepdims: bool | None = None, dtype: Any = None) -> "Tensor":
        dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
        x = self if dtype is None else self.to(dtype)
        if x.dtype == dtypes.bool_:
            x = x.to(dtypes.int64)
        axes = normalize_axes("sum", dim, x.ndim)
        return apply(P["sum"], x, axes=axes, keepdim=keepdim)

    def _amax(self, dim: Any = None, keepdim: bool = False) -> "Tensor":
        return apply(P["max"], self, axes=normalize_axes("max", dim, self.ndim), keepdim=keepdim)

    def _amin(self, dim: Any = None, keepdim: bool = False) -> "Tensor":
        return apply(P["min"], self, axes=normalize_axes("min", dim, self.ndim), keepdim=keepdim)

    def argmax(self, dim: int | None = None, keepdim: bool = False, *, axis: Any = None,
               keepdims: bool | None = None) -> "Tensor":
        dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
        return apply(P["argmax"], self, axis=dim, keepdim=keepdim)

    def argmin(self, dim: int | None = None, keepdim: bool = False, *, axis: Any = None,
               keepdims: bool | None = None) -> "Tensor":
        dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
        return apply(P["argmin"], self, axis=dim, keepdim=keepdim)

    # movement -----------------------------------------------------------

    def reshape(self, *shape: Any) -> "Tensor":
        shape = _shape_arg(shape)
        new = resolve_shape("reshape", self.shape, shape)
        if new == self.shape:
            return self
        return self._view_op("reshape", shape=new)

    def view(self, *shape: Any) -> "Tensor":
        """``reshape``, but always a view of this tensor's memory, as in PyTorch: refused when
        the elements cannot be laid out in the new shape without a copy."""
        out = self.reshape(*shape)
        if out is not self and out._data.size and type(out._vc) is not _SharedVersion:
            raise RuntimeError(
                f"view: a tensor of shape {self.shape} with strides {self._data.strides} (not "
                f"contiguous: a transpose or a slice with a step) cannot be viewed as shape "
                f"{out.shape} without a copy; use .reshape(...), which copies"
            )
        return out

    def _view_op(self, name: str, **attrs: Any) -> "Tensor":
        """Movement primitive ``name`` on this tensor: a view of it where NumPy gives one."""
        prim = P[name]
        return _as_view(self, apply(prim, self, **attrs), prim, attrs)

    def permute(self, *dims: Any) -> "Tensor":
        dims = tuple(check_dim("permute", d, self.shape) for d in _shape_arg(dims))
        if dims == tuple(range(self.ndim)):
            return self
        return self._view_op("permute", dims=dims)

    def transpose(self, dim0: int, dim1: int) -> "Tensor":
        if self.ndim == 0:
            check_dim("transpose", dim0, ()), check_dim("transpose", dim1, ())
            return self
        dim0 = check_dim("transpose", dim0, self.shape)
        dim1 = check_dim("transpose", dim1, self.shape)
        dims = list(range(self.ndim))
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return self.permute(tuple(dims))

    def expand(self, *shape: Any) -> "Tensor":
        shape = _shape_arg(shape)
        lead = len(shape) - self.ndim
        shape = tuple(
            self.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(shape)
        )
        if shape == self.shape:
            return self
        return self._view_op("expand", shape=shape)

    def expand_as(self, other: "Tensor") -> "Tensor":
        return self.expand(other.shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        if self.ndim == 0:
            return self.reshape(1)
        s, e = check_dim("flatten", start_dim, self.shape), check_dim("flatten", end_dim,
                                                                     self.shape)
        if s > e:
            raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        shape = self.shape[:s] + (math.prod(self.shape[s:e + 1]),) + self.shape[e + 1:]
        return self.reshape(shape)

    def squeeze(self, dim: Any = None) -> "Tensor":
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        dims = {check_dim("squeeze", d, self.shape)
                for d in ((dim,) if isinstance(dim, int) else dim)}
        return self.reshape(
            tuple(n for i, n in enumerate(self.shape) if not (i in dims and n == 1))
        )

    def unsqueeze(self, dim: int) -> "Tensor":
        nd = self.ndim + 1
        if not -nd <= dim < nd:
            raise ShapeError(
                f"unsqueeze: dim {dim} is out of range for a result with {nd} dimensions"
            )
        dim %= nd
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def _getitem(self, index: tuple, *ix: "Tensor") -> "Tensor":
        if ix or not is_basic_index(index):  # integer arrays or a mask: a copy, as in NumPy
            return apply(P["getitem"], self, *ix, index=index)
        return self._view_op("getitem", index=index)

    def _scatter_add(self, index: tuple, shape: tuple, *ix: "Tensor") -> "Tensor":
        return apply(P["scatter_add"], self, *ix, index=index, shape=shape)

    def _im2col(self, kernel: tuple, stride: tuple, dilation: tuple) -> "Tensor":
        """The windows of a convolution over dims 1..nd (ops.movement): (K, C, *out, ...)."""
        return apply(P["im2col"], self, kernel=kernel, stride=stride, dilation=dilation)

    def _col2im(self, kernel: tuple, stride: tuple, dilation: tuple,
                shape: tuple) -> "Tensor":
        return apply(P["col2im"], self, kernel=kernel, stride=stride, dilation=dilation,
                     shape=shape)

    def __getitem__(self, index: Any) -> "Tensor":
        template, ix = _normalize_index(index)
        return self._getitem(template, *ix)

    # in-place -----------------------------------------------------------

    def _assign(self, new: "Tensor") -> "Tensor":
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
        _check_writable(self, "op")
        if _tracer is not None:
            self._trace_write(new)
        _write(self, new._data, "op")
        if _forward is not None:
            _forward.moved(self, new)
        return self

    def _trace_write(self, new: "Tensor") -> None:
        """Tell the compiler's tracer that this tensor's value becomes ``new``'s: the value of
        the tensor that owns its memory changes (through `_write_through`), and every view
        and alias of that memory reads afresh from it."""
        owner, steps = _memory(self)
        if new.shape != self.shape or new.dtype != self.dtype:
            new = apply(P["expand"], new.to(self.dtype), shape=self.shape)
        _tracer.assign(owner, _write_through(owner, new, steps))
        if type(self._vc) is _SharedVersion:
            _retrace_family(self._vc)

    def _inplace(self, result_fn: Any, source: Any = None) -> "Tensor":
        """Make ``self`` hold ``result_fn(self)``, keeping its identity.

        Under grad mode, the old node moves to a fresh object and ``self`` becomes the new
        node (PyTorch's rebase); leaves that require grad refuse, as in PyTorch, because their
        old value is what the gradient is for. A tensor that shares memory (a view, a base
        with views, a detach alias) is written in place; see `_inplace_shared`.
        """
        if not _records(self, source):
            return self._assign(result_fn(self))
        if self._op is None and self.requires_grad:
            raise RuntimeError(
                "a leaf tensor that requires grad cannot be changed in place (its gradient "
                "would refer to a value that no longer exists); do the update inside "
                "`with tg.no_grad():`, as optimizers do, or use an out-of-place op"
            )
        if type(self._vc) is _SharedVersion:
            return self._inplace_shared(result_fn)
        old = _snapshot(self, copy=False)
        new = self._checked_result(result_fn(old))
        if _tracer is not None:
            _tracer.alias(self, new)
        self._data = new._data
        _adopt(self, new)
        self._vc = [old._vc[0] + 1]
        return self

    def _inplace_shared(self, result_fn: Any) -> "Tensor":
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
        _check_writable(self, "op")
        old = _snapshot(base, copy=True)  # the old values: the recorded graph may read them
        new = self._checked_result(result_fn(_replay(old, steps)))
        new_base = _write_through(old, new, steps)
        if _tracer is not None:
            self._trace_write(new)
        _write(self, new._data, "op")
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
        fwd = _forward is not None and _forward.active()
        if not recording and _tracer is None and not fwd and type(other) is Tensor \
                and type(alpha) in (int, float):
            # The common case (an optimizer's update), on the arrays: nothing to check,
            # nothing to convert. (A float32 array times a Python float stays float32.)
            x, y = self._data, other._data
            if y.shape == x.shape and y.dtype == x.dtype and x.dtype.kind == "f" \
                    and x.flags.writeable:
                if alpha == 1:
                    P[name].forward(x, y, out=x)
                elif not _axpy(x, y, alpha if name == "add" else -alpha):
                    P[name].forward(x, y * alpha, out=x)
                _bump(self)
                if _Anomaly.enabled:
                    _check_anomaly(self, f"in-place {name}")
                return self
        other = _scaled(other, alpha)
        if recording:
            return self._inplace(lambda s: _binary(name, s, other), other)
        if _tracer is not None or fwd:
            return self._assign(_binary(name, self, other))
        o = _operand(other, self)
        if o._data.dtype != self._data.dtype and dtypes.promote(self._data.dtype, o._data.dtype) \
                != self._data.dtype:
            raise TypeError(
                f"in-place {name}: the result of {self._data.dtype} {name} {o._data.dtype} is "
                f"{dtypes.promote(self._data.dtype, o._data.dtype)}, which cannot be stored in "
                f"this {self._data.dtype} tensor; use an out-of-place op"
            )
        prim = P[name]
        prim.infer(self, o.to(self._data.dtype))  # shape check before touching the data
        if np.broadcast_shapes(self.shape, o.shape) != self.shape:
            raise ShapeError(
                f"in-place {name}: an operand of shape {o.shape} would change the shape "
                f"{self.shape} of the tensor being updated"
            )
        _check_writable(self, name)
        x, y = self._data, o._data.astype(self._data.dtype, copy=False)
        if x.flags.writeable:
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
        v = _operand(value, self)
        if v.ndim:
            raise ShapeError(f"fill_: expects a number or a 0-d tensor, got shape {v.shape}")
        return self.copy_(v)

    def copy_(self, src: Any) -> "Tensor":
        """Overwrite every element with ``src`` (broadcast); gradients flow to ``src``."""
        src = _operand(src, self)
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
        v = _operand(value, self)
        if v.dtype != self.dtype:
            v = v.to(self.dtype)
        return apply(P["setitem"], self, v, *ix, index=index)

    def __setitem__(self, index: Any, value: Any) -> None:
        idx, ix = _normalize_index(index)
        self._inplace(lambda s: s._setitem(idx, value, *ix), value)

    # ---------------------------------------------------------------- printing

    def __format__(self, spec: str) -> str:
        """``f"{loss:.4f}"`` formats a 0-d tensor's number, as in PyTorch."""
        if self._data.ndim == 0:
            return format(self.item(), spec)
        return object.__format__(self, spec)

    def __repr__(self) -> str:
        data = self._data
        finite = (data[np.isfinite(data)].astype(np.float64) if data.dtype.kind == "f"
                  else data)
        integral = data.dtype.kind != "f" or bool(np.all(finite == np.round(finite)))
        formatter: dict = {}
        if data.dtype.kind == "b":
            formatter["bool"] = lambda b: "True" if b else "False"
        if data.dtype.kind == "f":
            big = finite.size and (np.abs(finite).max() >= 1e8 or (
                np.abs(finite).max() / max(np.abs(finite[finite != 0]).min(initial=np.inf),
                                           1e-300) > 1e3 and not integral))
            if big:
                formatter["float_kind"] = lambda v: f"{v:.4e}"
            elif integral:
                formatter["float_kind"] = lambda v: f"{v:.0f}." if np.isfinite(v) else f"{v}"
            else:
                formatter["float_kind"] = lambda v: f"{v:.4f}" if np.isfinite(v) else f"{v}"
        for kind, fmt in list(formatter.items()):  # pad to one width, as PyTorch prints
            if 0 < data.size <= 1000:
                shown = finite.flat if kind == "float_kind" and finite.size else data.flat
                width = max(len(fmt(v)) for v in shown)
                formatter[kind] = lambda v, fmt=fmt, width=width: fmt(v).rjust(width)
        with np.errstate(all="ignore"):
            body = np.array2string(data, separator=", ", prefix="tensor(", threshold=200,
                                   edgeitems=3, formatter=formatter)
        extras = []
        if self._data.dtype not in (dtypes.default_float, dtypes.default_int, dtypes.bool_) or (
            self._data.size == 0
        ):
            extras.append(f"dtype={self._data.dtype}")
        if self._op is not None and self.requires_grad:
            extras.append(f"grad_fn={self.grad_fn}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    __hash__ = object.__hash__


class GradFn(str):
    """``t.grad_fn``: the name of the op that made ``t`` (a string, as tracegrad has always
    shown it) with PyTorch's ``name()`` and ``next_functions`` (the grad_fn of each input:
    ``<AccumulateGrad>`` for a leaf that requires grad, None for one that does not)."""

    def __new__(cls, text: str, node: "Tensor | None") -> "GradFn":
        fn = super().__new__(cls, text)
        fn.node = node
        return fn

    def name(self) -> str:
        return self[1:-1]

    @property
    def next_functions(self) -> tuple:
        out = []
        for child in getattr(self.node, "_children", ()) or ():
            if child._op is not None:
                out.append((child.grad_fn, 0))
            elif child.requires_grad:
                acc = GradFn("<AccumulateGrad>", None)
                acc.variable = child
                out.append((acc, 0))
            else:
                out.append((None, 0))
        return tuple(out)


def _backward_name(prim_name: str) -> str:
    return "".join(part.capitalize() for part in prim_name.split("_")) + "Backward"


# -------------------------------------------------------------------- method tables

def _make_unary(name: str):
    def method(self: Tensor) -> Tensor:
        return _unary(name, self)

    method.__name__ = name
    method.__doc__ = f"Elementwise {name} (the `{name}` primitive)."
    return method


def _make_binary(method_name: str, prim: str, reverse: bool):
    accepted = (Tensor, np.ndarray, list, tuple) + _SCALARS
    primitive = P[prim]
    forward = primitive.forward
    float_only = prim in FLOAT_ONLY
    differentiable = primitive.vjp is not None

    def method(self: Tensor, other: Any) -> Tensor:
        # The two commonest cases run here, start to end: another tensor of the same dtype,
        # and a Python float with a float tensor. Everything else takes `_binary`.
        t = type(other)
        if t is Tensor:
            dt = self._data.dtype
            do = other._data.dtype
            if not ((do is dt or do == dt) and (not float_only or dt.kind == "f")):
                return _binary(prim, self, other, reverse)
        elif t is float and self._data.dtype.kind == "f":
            other = _constant(other, self._data.dtype)
        elif isinstance(other, accepted):
            return _binary(prim, self, other, reverse)
        else:
            return NotImplemented
        a, b = (other, self) if reverse else (self, other)
        # What `apply` does, for two operands of one dtype: this runs for nearly every op
        # of a model. (No check that the result is float before recording it: operands
        # that require grad are float, and these primitives make floats of floats.)
        try:
            out = forward(a._data, b._data)
        except Exception as e:
            raise _failed(primitive, (a, b), _NO_ATTRS, e) from e
        if type(out) is not _ndarray:
            out = np.asarray(out)
        return _result(out, primitive, (a, b), _NO_ATTRS,
                       (a.requires_grad or b.requires_grad) and differentiable and _mode.enabled)

    method.__name__ = method_name
    return method


for _name in UNARY_METHODS:
    setattr(Tensor, _name, _make_unary(_name))
for _mname, _prim, _rev in BINARY_METHODS:
    setattr(Tensor, _mname, _make_binary(_mname, _prim, _rev))
Tensor.__hash__ = object.__hash__


# -------------------------------------------------------------------- argument helpers


def _shape_arg(shape: tuple) -> tuple:
    """``reshape(2, 3)`` and ``reshape((2, 3))`` both mean (2, 3)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _dim_args(dim: Any, keepdim: bool, axis: Any, keepdims: bool | None) -> tuple:
    if axis is not None:
        if dim is not None:
            raise TypeError("pass dim= or axis=, not both")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    if isinstance(dim, list):
        dim = tuple(dim)
    return dim, bool(keepdim)


def _normalize_index(index: Any) -> tuple[tuple, tuple]:
    """A NumPy-style index as (template, integer index tensors).

    Integer arrays (lists, ndarrays, int tensors) become operands, standing in the template
    as ``SLOT``; bool masks stay in the template as ndarrays (their result's shape depends
    on their values, so they are always static).
    """
    if not isinstance(index, tuple):
        index = (index,)
    template, operands = [], []
    for i in index:
        if isinstance(i, Tensor):
            if i._data.dtype.kind in "iu" and i.ndim > 0:
                template.append(SLOT)
                operands.append(i)
                continue
            i = _static_data(i, "indexing with a bool mask or a 0-d tensor (x[mask])")
        elif isinstance(i, list):
            i = np.asarray(i)
        if isinstance(i, np.ndarray):
            if i.dtype.kind not in "biu":
                raise IndexError(f"getitem: index arrays must be integers or bools, got {i.dtype}")
            if i.dtype.kind in "iu":
                if i.ndim == 0:
                    template.append(int(i))
                else:
                    template.append(SLOT)
                    operands.append(_leaf(i.astype(np.int64, copy=False)))
                continue
        elif isinstance(i, np.integer):
            i = int(i)
        elif not (i is None or i is Ellipsis or isinstance(i, (int, slice))):
            raise IndexError(
                f"getitem: {type(i).__name__} is not a valid index; use ints, slices, None, "
                f"..., bool masks or integer arrays/tensors"
            )
        template.append(i)
    return tuple(template), tuple(operands)


def _static_data(t: "Tensor", why: str) -> np.ndarray:
    """``t``'s values where Python code needs them now (a shape, a mask); while tracing,
    refused for values that would differ from call to call."""
    if _tracer is not None:
        _tracer.check_static(t, why)
    return t._data


# -------------------------------------------------------------------- functions on tensors


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Elementwise ``a if condition else b``; gradients flow to a and b (not the condition)."""
    cond = condition if isinstance(condition, Tensor) else Tensor(condition)
    if cond.dtype != dtypes.bool_:
        raise TypeError(
            f"where: the condition must be a bool tensor, got {cond.dtype}; compare first "
            f"(e.g. x > 0) or cast with .bool()"
        )
    if isinstance(a, Tensor):
        b = _operand(b, a)
    elif isinstance(b, Tensor):
        a = _operand(a, b)
    else:
        a = Tensor(a)
        b = _operand(b, a)
    if a.dtype != b.dtype:
        dt = dtypes.promote(a.dtype, b.dtype)
        a, b = a.to(dt), b.to(dt)
    return apply(P["where"], cond, a, b)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing dimension."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat: needs at least one tensor")
    nd = tensors[0].ndim
    if nd == 0:
        raise ShapeError("cat: zero-dimensional tensors cannot be concatenated; use stack")
    if not -nd <= dim < nd:
        raise ShapeError(f"cat: dim {dim} is out of range for {nd}-dimensional tensors")
    dt = tensors[0].dtype
    for t in tensors[1:]:
        dt = dtypes.promote(dt, t.dtype)
    tensors = [t.to(dt) for t in tensors]
    return apply(P["cat"], *tensors, dim=dim % nd)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new dimension."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ShapeError(
            f"stack: all tensors must have the same shape, got {sorted(shapes)}"
        )
    nd = tensors[0].ndim + 1
    if not -nd <= dim < nd:
        raise ShapeError(f"stack: dim {dim} is out of range for a {nd}-dimensional result")
    return cat([t.unsqueeze(dim) for t in tensors], dim=dim)


class WeakScalar(Tensor):
    """A Python float that a compiled program takes as an input (a float argument, an
    optimizer's learning rate): while tracing, a 0-d float64 tensor that promotes like the
    Python number it stands for (``float32 tensor * lr`` stays float32, ``int tensor * lr``
    is float32), as JAX's weakly typed values do. Arithmetic with Python numbers keeps it
    weak; turning it into a Python value raises `TraceError` like any traced value."""

    __slots__ = ()


def _weak_method(name: str) -> Any:
    method = getattr(Tensor, name)

    def op(self: Tensor, *other: Any) -> Any:
        out = method(self, *other)
        if isinstance(out, Tensor) and all(type(o) is WeakScalar or type(o) in (int, float)
                                           for o in other):
            out.__class__ = WeakScalar
        return out

    op.__name__ = name
    return op


for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
              "__truediv__", "__rtruediv__", "__pow__", "__rpow__", "__neg__"):
    setattr(WeakScalar, _name, _weak_method(_name))


def _eager_only(what: str) -> None:
    """Refuse ``what`` (Python-side state, such as a random generator object's draws, that a
    compiled program would bake in) while this thread is traced."""
    if _tracer is not None and _tracer.thread == _get_ident():
        from .errors import TraceError

        raise TraceError(f"{what} cannot be compiled; do it outside the compiled function")


from .device import CPU as _CPU  # noqa: E402  (Tensor.device)
