"""`GradArray`: the values a first-order backward pass computes with.

The VJP rules in ``ops/`` are written with tensor methods, so that gradients can themselves
be differentiated (``create_graph=True``) and traced. When neither is wanted, which is most
of the time, running those same rules on `Tensor` pays for graph bookkeeping nobody will
use. A GradArray is an ndarray with just the tensor methods the rules call, each executed
directly by the primitive's NumPy forward, with the same dtype promotion, recording nothing.
Same rules, same numbers, a fraction of the overhead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import dtypes
from .ops import PRIMITIVES
from .ops.base import normalize_axes
from .ops.linalg import matmul
from .ops.methods import BINARY_METHODS, FLOAT_ONLY, UNARY_METHODS
from .ops.movement import broadcast_view, resolve_shape

P = PRIMITIVES
_SCALARS = (int, float, bool, np.number, np.bool_)
_NUMBERS = (int, float)  # Python numbers, for the fast path of the binary methods
_ndarray = np.ndarray


_numbers: dict[tuple, np.ndarray] = {}  # (type, value, dtype of the array) -> 0-d array


def _promote(x: np.ndarray, y: np.ndarray) -> np.dtype:
    """PyTorch's promotion of two arrays (a 0-d array acts like a number), as `Tensor`."""
    return dtypes.result_dtype(x.dtype, x.ndim, y.dtype, y.ndim)


class GradArray:
    """An ndarray with the tensor methods VJP rules use; no graph."""

    __slots__ = ("_data", "requires_grad", "owned")

    def __init__(self, data: np.ndarray, requires_grad: bool = False, owned: bool = False):
        self._data = data  # always an ndarray (0-d included), never a NumPy scalar
        self.requires_grad = requires_grad
        # Whether ``data`` is memory no one else holds: a leaf may then adopt it as its
        # ``.grad`` without copying, and a unary rule may multiply into it in place. True for
        # memory an op just allocated, handed on to a view of it (only one holder at a time),
        # and given up when a leaf adopts it or when one array goes to two inputs (add's
        # gradient). The seed and the forward values are never owned. An owned GradArray's
        # object is the gradient's alone too: a rule may put its result in it (node._carry).
        self.owned = owned

    @property
    def data(self) -> np.ndarray:
        """The array (as a tensor's ``.data``)."""
        return self._data

    def _view(self, data: np.ndarray) -> "GradArray":
        """A view of this array's memory: it takes over the ownership."""
        owned, self.owned = self.owned, False
        return GradArray(data, owned=owned)

    shape = property(lambda self: self._data.shape)
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)

    def numel(self) -> int:
        return self._data.size

    def _array(self, other: Any) -> np.ndarray:
        if isinstance(other, GradArray):
            return other._data
        if isinstance(other, _SCALARS):
            key = (type(other), other, self._data.dtype, dtypes.sign_bit(other))
            c = _numbers.get(key)
            if c is None:  # rules use a handful of numbers (1, 0.5, ...): made once each
                if len(_numbers) > 1024:
                    _numbers.clear()
                c = _numbers[key] = np.asarray(
                    other, dtype=dtypes.promote_with_scalar(self._data.dtype, other))
                c.flags.writeable = False
            return c
        return np.asarray(other._data if hasattr(other, "_data") else other)

    def _binary(self, name: str, other: Any, reverse: bool) -> "GradArray":
        x = self._data
        y = self._array(other)
        if reverse:
            x, y = y, x
        if x.dtype != y.dtype:
            dt = _promote(x, y)
            # A bool mask times a float array (ReLU's gradient): NumPy promotes it the same
            # way, without a float copy of the mask.
            if x.dtype != dt and (x.dtype != np.bool_ or y.dtype.kind != "f"):
                x = x.astype(dt)
            if y.dtype != dt and (y.dtype != np.bool_ or x.dtype.kind != "f"):
                y = y.astype(dt)
        if name in FLOAT_ONLY and x.dtype.kind != "f":
            x, y = x.astype(dtypes.default_float), y.astype(dtypes.default_float)
        return _fresh(np.asarray(P[name].forward(x, y)), x, y)

    def _unary(self, name: str) -> "GradArray":
        x = self._data
        if name in FLOAT_ONLY and x.dtype.kind != "f":
            x = x.astype(dtypes.default_float)
        return _fresh(np.asarray(P[name].forward(x)), x)

    def _polygamma(self, n: int) -> "GradArray":
        """The n-th derivative of digamma (the gradients of lgamma and its kin)."""
        return _fresh(P["polygamma"].forward(self._data, n=n), self._data)

    def __neg__(self) -> "GradArray":
        return GradArray(np.asarray(np.negative(self._data)), owned=True)

    def __matmul__(self, other: "GradArray") -> "GradArray":
        x, y = self._data, self._array(other)
        if x.dtype != y.dtype:
            dt = dtypes.promote(x.dtype, y.dtype)
            x, y = x.astype(dt), y.astype(dt)
        return GradArray(np.asarray(matmul(x, y)), owned=True)

    matmul = __matmul__

    def to(self, dtype: Any) -> "GradArray":
        dt = dtypes.to_dtype(dtype)
        return self if dt == self._data.dtype else GradArray(self._data.astype(dt), owned=True)

    def sum(self, dim: Any = None, keepdim: bool = False) -> "GradArray":
        x = self._data if self._data.dtype != np.bool_ else self._data.astype(np.int64)
        axes = normalize_axes("sum", dim, x.ndim)
        return _fresh(np.asarray(np.add.reduce(x, axis=axes, keepdims=keepdim)), x)

    def reshape(self, *shape: Any) -> "GradArray":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        if -1 in shape:
            shape = resolve_shape("reshape", self._data.shape, shape)
        return self._view(self._data.reshape(shape))

    def permute(self, *dims: Any) -> "GradArray":
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        return self._view(self._data.transpose(dims))

    def transpose(self, dim0: int, dim1: int) -> "GradArray":
        return self._view(self._data.swapaxes(dim0, dim1))

    def expand(self, *shape: Any) -> "GradArray":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return self._view(broadcast_view(self._data, shape))

    def unsqueeze(self, dim: int) -> "GradArray":
        return self._view(np.expand_dims(self._data, dim % (self._data.ndim + 1)))

    def _select(self, a: Any, b: Any) -> "GradArray":
        """``where(self, a, b)`` for a bool array, with `Tensor`'s promotion."""
        av = np.asarray(a._data) if isinstance(a, GradArray) else a
        bv = np.asarray(b._data) if isinstance(b, GradArray) else b
        if not isinstance(av, np.ndarray):
            av = np.asarray(av, dtype=bv.dtype if isinstance(bv, np.ndarray) else None)
        if not isinstance(bv, np.ndarray):
            bv = np.asarray(bv, dtype=av.dtype)
        if av.dtype != bv.dtype:
            dt = _promote(av, bv)
            av, bv = av.astype(dt), bv.astype(dt)
        return GradArray(np.where(self._data, av, bv), owned=True)

    def _getitem(self, index: tuple, *ix: Any) -> "GradArray":
        return self._view(np.asarray(P["getitem"].forward(
            self._data, *[i._data for i in ix], index=index)))

    def _scatter_add(self, index: tuple, shape: tuple, *ix: Any) -> "GradArray":
        return _fresh(P["scatter_add"].forward(
            self._data, *[i._data for i in ix], index=index, shape=shape), self._data)

    def _setitem(self, index: tuple, value: Any, *ix: Any) -> "GradArray":
        v = self._array(value).astype(self._data.dtype, copy=False)
        return _fresh(P["setitem"].forward(self._data, v, *[i._data for i in ix], index=index),
                      self._data, v)

    def _prim(self, name: str, *others: "GradArray", **attrs: Any) -> "GradArray":
        return GradArray(np.asarray(P[name].forward(
            self._data, *[self._array(o) for o in others], **attrs)), owned=True)

    def _im2col(self, kernel: tuple, stride: tuple, dilation: tuple) -> "GradArray":
        return GradArray(P["im2col"].forward(self._data, kernel=kernel, stride=stride,
                                             dilation=dilation), owned=True)

    def _col2im(self, kernel: tuple, stride: tuple, dilation: tuple,
                shape: tuple) -> "GradArray":
        return GradArray(P["col2im"].forward(self._data, kernel=kernel, stride=stride,
                                             dilation=dilation, shape=shape), owned=True)


class IntoArray:
    """The gradient handed to a unary rule ``(g * e,)``, ``(g / e,)`` or ``(-g,)`` (one that
    declares the "into_g" fact, see `ops.base.FACTS`) whose memory no one else holds: that
    one operation writes its result into g's own memory."""

    __slots__ = ("_data",)

    def __init__(self, data: np.ndarray):
        self._data = data

    def __mul__(self, other: Any) -> "IntoArray":
        np.multiply(self._data, other, out=self._data)
        return self

    def __truediv__(self, other: Any) -> "IntoArray":
        np.divide(self._data, other, out=self._data)
        return self

    def __neg__(self) -> "IntoArray":
        np.negative(self._data, out=self._data)
        return self


def _fresh(out: np.ndarray, x: np.ndarray, y: Any = None) -> GradArray:
    """The result of an op on ``x`` (and ``y``): owned when it is new memory (not an
    operand, not a view)."""
    return GradArray(out, False, out.base is None and out is not x and out is not y)


def _make_unary(name: str):
    def method(self: GradArray) -> GradArray:
        return self._unary(name)

    method.__name__ = name
    return method


def _make_binary(prim: str, reverse: bool):
    forward = P[prim].forward
    general = prim in FLOAT_ONLY  # (these may need a cast first: always the general path)

    def method(self: GradArray, other: Any) -> GradArray:
        # The commonest cases, inline: another GradArray of the same dtype, or a number
        # (``1 - t * t``) that takes this array's dtype.
        if not general:
            x = self._data
            t = type(other)
            y = other._data if t is GradArray else self._array(other) if t in _NUMBERS else None
            if y is not None and (y.dtype is x.dtype or y.dtype == x.dtype):
                out = forward(y, x) if reverse else forward(x, y)
                if type(out) is not _ndarray:
                    out = np.asarray(out)
                return GradArray(out, False, True)  # a ufunc's result is new memory: owned
        return self._binary(prim, other, reverse)

    return method


for _name in UNARY_METHODS:
    setattr(GradArray, _name, _make_unary(_name))
for _mname, _prim, _rev in BINARY_METHODS:
    setattr(GradArray, _mname, _make_binary(_prim, _rev))
GradArray.maximum = _make_binary("maximum", False)  # type: ignore[attr-defined]
GradArray.__hash__ = object.__hash__  # type: ignore[assignment]
