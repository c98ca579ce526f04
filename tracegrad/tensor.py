"""`Tensor`: an n-d NumPy array that records the primitives applied to it.

Every op a tensor runs goes through one function, `apply`, and every result is built by one,
`_result`: it runs the primitive's NumPy forward and, when a gradient is wanted, remembers
(primitive, inputs, attributes) on the result. (The arithmetic methods, `_make_binary`, run
the same steps spelled out for their common case, two tensors of one dtype: that is nearly
every op of a model, and a second call per op costs a tenth of it.) That record is the graph;
`tracegrad.autograd` walks it backwards with the primitive's VJP rule, calling the node hooks
of node.py (`_vjp`, `_accumulate_grad`). This file holds the class, creation, dtype promotion and
the primitives as methods; the rest of the tensor lives next door:

- node.py: the autograd node's side the backward engine calls (`_vjp`, `_accumulate_grad`);
- views.py: version counters, views and aliases (what shares memory), writes into them;
- inplace.py: the in-place methods (``add_``, ``copy_``, ``x[i] = v``), a mixin of `Tensor`;
- anomaly.py: ``tg.detect_anomaly()`` and the check every op makes under it;
- arguments.py: shapes, dims, indices and ``.to(...)`` arguments in PyTorch's spellings;
- combine.py: ``where``, ``cat``, ``stack``;
- printing.py: ``repr``, ``format`` and ``grad_fn``;
- tensor_methods.py: the composite ops that are methods (``x.mean()``), one list of them;
- functional.py: the composite ops themselves (mean, softmax, conv2d, ...).

The compiler and forward mode set `_tracer` and `_forward` on this module (one ``is not None``
test per op when neither is on); the other modules read them here, as ``tensor._tracer``.
"""

from __future__ import annotations

import copy
import math
import warnings
from threading import get_ident as _get_ident
from typing import Any

import numpy as np

from . import autograd, dtypes
from .anomaly import _Anomaly, _check_anomaly
from .arguments import _dim_args, _normalize_index, _shape_arg, _static_data, _to_args  # noqa: F401
from .autograd import seqs as _seqs
from .errors import LinAlgError, ShapeError
from .inplace import InPlaceOps
from .node import _NO_ATTRS, NodeHooks
from .ops import PRIMITIVES
from .ops.base import check_dim, normalize_axes
from .ops.methods import BINARY_METHODS, FLOAT_ONLY, UNARY_ALIASES, UNARY_METHODS
from .ops.movement import is_basic_index, resolve_shape
from .printing import GradFn, _backward_name, tensor_format, tensor_repr
from .tensor_methods import CompositeMethods
from .views import (
    _UNCHANGED,
    _UNCHANGED_PAIR,
    _Alias,
    _as_view,
    _join,
    _memory,
    _SharedVersion,
    _View,
    view_of,
)

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
_off_threads = autograd.off_threads  # grad mode is on where `not _off_threads[0]` (autograd)
_ndarray = np.ndarray

_SCALARS = (int, float, bool, np.number, np.bool_)
_CPU: Any = None  # tracegrad.device.CPU, set below (device.py imports nothing of ours)


def _failed(prim: Any, inputs: tuple, attrs: dict, e: Exception) -> Exception:
    """The error to raise when a primitive's forward fails: the shape rule's message, which
    is what a user should read; or, if it accepts the operands, the op and the shapes."""
    prim.infer(*inputs, **attrs)
    if isinstance(e, LinAlgError) or prim.name == "check":  # (messages naming the op already)
        return e
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
    return _result(out, prim, inputs, attrs or _NO_ATTRS,
                   prim.vjp is not None and (not _off_threads[0] or _mode.enabled)
                   and out.dtype.kind == "f"
                   and any([x.requires_grad for x in inputs]))


def _result(out: np.ndarray, prim: Any, inputs: tuple, attrs: dict, record: bool) -> "Tensor":
    """The one place a tensor computed by an op is built: ``out`` (an ndarray), the result
    of ``prim`` on ``inputs`` with ``attrs`` (`_NO_ATTRS` when it has none), and, when
    ``record``, its node for backward (the op, its inputs and their versions then).
    Checked under detect_anomaly; recorded while traced."""
    t = _new(Tensor)
    t._data = out
    t._grad = None
    t._vc = _UNCHANGED
    if record:
        t.requires_grad = True
        t._op = prim
        t._seq = next(_seqs)
        t._children = inputs
        t._attrs = attrs
        if len(inputs) == 2:
            a, b = inputs
            t._versions = _UNCHANGED_PAIR if a._vc is _UNCHANGED is b._vc \
                else (a._vc[0], b._vc[0])
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


_ONES: dict = {}  # (shape, dtype) -> a read-only array of ones: backward()'s implied seed


def _one(a: np.ndarray) -> np.ndarray:
    """Ones of ``a``'s (one-element) shape and dtype, made once per shape and dtype."""
    key = (a.shape, a.dtype)
    one = _ONES.get(key)
    if one is None:
        one = _ONES[key] = np.ones(a.shape, dtype=a.dtype)
        one.flags.writeable = False
    return one


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
    dtypes.not_an_operand(x, f"unsupported operand type for a tensor op: {type(x).__name__}; "
                             f"use a tg.Tensor, a number or a NumPy array")


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


class Tensor(NodeHooks, InPlaceOps, CompositeMethods):
    """An n-d array with automatic differentiation; PyTorch's interface on NumPy.

    >>> x = tg.tensor([[1.0, 2.0]], requires_grad=True)
    >>> y = (x * x).sum(); y.backward(); x.grad
    tensor([[2., 4.]])
    """

    # _vc is a one-element list, the version counter, shared with aliases (detach) so an
    # in-place change through any of them is seen by the graph that saved the data; until
    # either happens it is the shared `_UNCHANGED` (one list less per op).
    __slots__ = ("_data", "_grad", "requires_grad", "_op", "_children", "_attrs", "_versions",
                 "_vc", "_seq", "_view", "_outv", "__weakref__")
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
    def mT(self) -> "Tensor":
        """The transpose of the last two dimensions (a batch of matrices), as torch's."""
        if self.ndim < 2:
            raise ShapeError(f"mT: expects a tensor of at least 2 dimensions (matrices), got "
                             f"shape {self.shape}")
        return self.transpose(-2, -1)

    mH = mT  # (the conjugate transpose: tracegrad's dtypes are real)

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
        if self._data.size != 1:
            raise ValueError(
                f"item: only a one-element tensor converts to a Python number, "
                f"this one has shape {self.shape}"
            )
        if _tracer is not None:  # traced: a stand-in a compiled function may return
            deferred = _tracer.deferred_item(self)
            if deferred is not None:
                return deferred
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

    # The memory layout, as PyTorch reports it: counted in elements, the tensor's memory
    # being that of its base (the tensor that owns it; see views.py). (The stride of a
    # dimension of size one can differ from PyTorch's: NumPy may put any number there.)

    @property
    def itemsize(self) -> int:
        return self._data.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self._data.nbytes

    def stride(self, dim: int | None = None) -> Any:
        """The step in elements between neighbours along each dimension (of ``dim``)."""
        a = self._data
        strides = tuple(s // a.itemsize for s in a.strides)
        return strides if dim is None else strides[check_dim("stride", dim, self.shape)]

    def storage_offset(self) -> int:
        """Where this tensor's first element is in its base's memory, in elements."""
        a, owner = self._data, _memory(self)[0]._data
        return (a.__array_interface__["data"][0] - owner.__array_interface__["data"][0]) \
            // a.itemsize if a.size else 0

    def is_contiguous(self, memory_format: Any = None) -> bool:
        """Whether the elements lie in C order, each next to the last (a view that skips or
        reorders them is not)."""
        return bool(self._data.flags.c_contiguous)

    def data_ptr(self) -> int:
        """The address of the first element."""
        return self._data.__array_interface__["data"][0]

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

    def __deepcopy__(self, memo: dict) -> "Tensor":
        """A copy with memory and a version counter of its own (``copy.deepcopy(model)`` for
        a target network or an EMA copy), as PyTorch's: a leaf only; its ``.grad`` copied;
        a view stays a view of its base's copy, so tensors that shared memory still do."""
        if self._op is not None:
            raise RuntimeError(
                f"deepcopy: only tensors that are graph leaves can be deep-copied (as in "
                f"PyTorch); this one (shape {self.shape}) was computed by {self._op.name}. "
                f"Copy .detach() of it, or deep-copy what it was computed from")
        view = getattr(self, "_view", None)
        if type(view) is _View and type(self) is Tensor:
            new = view_of(copy.deepcopy(view.base, memo), view.steps)
        else:
            new = _new(type(self))
            _init_leaf(new, np.array(self._data, copy=True), False)
            new.requires_grad = self.requires_grad
        memo[id(self)] = new
        if self._grad is not None:
            new._grad = copy.deepcopy(self._grad, memo)
        return new

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
        if _tracer is not None:
            _tracer.hook_added(self, "retain_grad()")
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
        if _tracer is not None:
            _tracer.hook_added(self, "register_hook")
        return autograd.add_hook(self, hook)

    def backward(self, gradient: Any = None, retain_graph: bool = False,
                 create_graph: bool = False, inputs: Any = None) -> None:
        """Accumulate d self / d leaf into every leaf's ``.grad``, as ``torch.Tensor.backward``.

        The graph's saved arrays are freed afterwards unless ``retain_graph=True``.
        ``create_graph=True`` records the backward pass too, for higher-order gradients.
        With ``inputs`` (a tensor or a sequence of them), only their ``.grad`` is written.
        """
        if inputs is not None:
            from .autograd import api

            api.backward(self, gradient, retain_graph, create_graph, inputs=inputs)
            return
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

    # ---------------------------------------------------------------- primitives as methods

    def __neg__(self) -> "Tensor":
        return apply(P["neg"], self)

    def maximum(self, other: Any) -> "Tensor":
        return _binary("maximum", self, other)

    def where(self, condition: Any, other: Any) -> "Tensor":
        """PyTorch's ``x.where(cond, y)``: x where cond holds, else y."""
        return where(condition, self, other)

    def _select(self, a: Any, b: Any) -> "Tensor":
        """``where(self, a, b)`` for a bool tensor; used by the gradient rules."""
        return where(self, a, b)

    def _polygamma(self, n: int) -> "Tensor":
        """The n-th derivative of digamma (`special.polygamma`; the gradient rules')."""
        return apply(P["polygamma"], self, n=n)

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
        out = apply(P["sum"], x, axes=axes, keepdim=keepdim)
        # (an integer sum is int64, as in PyTorch, unless dtype= asks for another)
        return out if dtype is None or out.dtype == dtype else out.to(dtype)

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

    def _prim(self, name: str, *others: "Tensor", **attrs: Any) -> "Tensor":
        """Primitive ``name`` on this tensor and ``others``: for gradient rules that call a
        primitive with no method of its own (the linalg family's)."""
        return apply(P[name], self, *others, **attrs)

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

    # ---------------------------------------------------------------- printing (printing.py)

    def __format__(self, spec: str) -> str:
        return tensor_format(self, spec)

    def __repr__(self) -> str:
        return tensor_repr(self)

    __hash__ = object.__hash__


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
    dunder = method_name.startswith("__")  # (an operator lets Python try the other operand)

    def method(self: Tensor, other: Any) -> Tensor:
        # The two commonest cases run here, start to end: another tensor of the same dtype,
        # and a Python float with a float tensor. Everything else takes `_binary`.
        t = type(other)
        if t is Tensor:
            dt = self._data.dtype
            do = other._data.dtype
            if (do is not dt and do != dt) or (float_only and dt.kind != "f"):
                return _binary(prim, self, other, reverse)
        elif t is float and self._data.dtype.kind == "f":
            other = _constant(other, self._data.dtype)
        elif isinstance(other, accepted) or not dunder:  # (x.pow(obj) raises TypeError)
            return _binary(prim, self, other, reverse)
        else:
            return NotImplemented
        if reverse:
            a, b = other, self
        else:  # (two assignments: no tuple is built)
            a, b = self, other
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
                       (a.requires_grad or b.requires_grad) and differentiable
                       and (not _off_threads[0] or _mode.enabled))

    method.__name__ = method_name
    return method


for _name in UNARY_METHODS:
    if _name not in CompositeMethods.__dict__:  # (x.round(decimals=...) is functional's)
        setattr(Tensor, _name, _make_unary(_name))
for _mname, _prim in UNARY_ALIASES.items():
    setattr(Tensor, _mname, _make_unary(_prim))
for _mname, _prim, _rev in BINARY_METHODS:
    if _mname not in CompositeMethods.__dict__:  # (x.add(y, alpha=2) is functional's)
        setattr(Tensor, _mname, _make_binary(_mname, _prim, _rev))
Tensor.__hash__ = object.__hash__


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


from .combine import cat, stack, where  # noqa: E402, F401  (they build Tensors)
from .device import CPU as _CPU  # noqa: E402  (Tensor.device)
from .views import _bump  # noqa: E402, F401  (the compiler and nn import it from here)

