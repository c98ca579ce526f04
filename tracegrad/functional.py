"""Composite ops, built only from primitives (so they differentiate, trace and compile for free).

Each function here is a few lines of tensor code; none touches NumPy arrays directly except
to build constant index arrays. The ones PyTorch has as methods are listed in
tensor_methods.py (`CompositeMethods`, which `Tensor` inherits).
"""

from __future__ import annotations

import builtins
import functools
import itertools
import math
from collections import namedtuple
from typing import Any, Sequence

import numpy as np

from . import dtypes
from .arguments import _normalize_index, checked
from .autograd import no_grad as _no_grad
from .device import on_cpu
from .errors import DTypeError, ShapeError, ValueRangeError
from .ops import PRIMITIVES as P
from .ops.base import check_dim, normalize_axes
from .ops.linalg import check_linear_features
from .rng import generator_attrs
from .tensor import (
    Tensor,
    _dim_args,
    _leaf,
    _operand,
    _result_dtype,
    _shape_arg,
    _static_data,
    _unary,
    apply,
    cat,
    stack,
    where,
)
from .views import _memory as views_memory
from .views import strided

_where = where  # (the three-argument form; `where` below also takes one argument)

__all__ = [
    "abs", "amax", "amin", "avg_pool2d", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "cat", "clamp", "conv1d", "conv2d", "cross_entropy",
    "dropout",
    "embedding", "gelu", "l1_loss", "layer_norm", "linear", "log_softmax", "logsumexp", "max",
    "max_pool2d", "maximum", "mean", "min", "minimum", "mse_loss", "nll_loss", "one_hot", "pad",
    "relu", "sigmoid", "silu", "softmax", "softplus", "logsigmoid", "stack", "std", "tanh",
    "take_along_dim", "var", "where", "t", "square", "reciprocal", "rsqrt", "log1p", "expm1",
    "norm", "masked_fill", "any", "all", "dot", "flip", "roll", "split", "chunk", "repeat",
    "cumsum", "sort", "topk", "logical_and", "logical_or", "logical_xor", "logical_not",
    "max_pool1d", "avg_pool1d", "conv3d", "max_pool3d", "avg_pool3d",
]

MaxMin = namedtuple("MaxMin", ["values", "indices"])


def _t(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _count(x: Tensor, dim: Any) -> int:
    axes = normalize_axes("mean", dim, x.ndim)
    return math.prod(x.shape[a] for a in axes)


# ---------------------------------------------------------------- reductions


def mean(x: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None,
         axis: Any = None, keepdims: bool | None = None) -> Tensor:
    """Average over ``dim`` (all dimensions by default), computed in ``dtype`` if given."""
    dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
    if dtype is not None:
        x = x.to(dtype)
    if x.dtype.kind != "f":
        raise TypeError(f"mean: needs a float tensor, got {x.dtype}; use x.float().mean() "
                        f"or mean(dtype=tg.float32)")
    return x.sum(dim, keepdim) / _count(x, dim)


def var(x: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: Any = None, axis: Any = None, keepdims: bool | None = None) -> Tensor:
    """Variance; unbiased (``correction=1``) by default, as in PyTorch. The positional
    arguments are PyTorch's: ``var(x, dim, unbiased, keepdim)``, and ``var(x, False)`` is
    the biased variance of all elements.

    >>> tg.tensor([1.0, 2.0, 4.0]).var(0, False)
    tensor(1.5556)
    """
    if isinstance(dim, bool):  # torch's var(x, unbiased)
        dim, unbiased = None, dim
    dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
    correction = _correction("var", unbiased, correction)
    centered = x - mean(x, dim, keepdim=True)
    return (centered * centered).sum(dim, keepdim) / builtins.max(_count(x, dim) - correction, 0)


def std(x: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: Any = None, axis: Any = None, keepdims: bool | None = None) -> Tensor:
    """Standard deviation, ``sqrt(var)`` (same arguments as `var`); its gradient is 0 where
    it is 0 (a constant row), as in PyTorch, not nan."""
    return safe_root(var(x, dim, unbiased, keepdim, correction=correction, axis=axis,
                         keepdims=keepdims))


def safe_root(s: Tensor, p: float = 2) -> Tensor:
    """``s ** (1 / p)`` of a sum of powers or a variance, with derivative 0 where ``s`` is 0:
    PyTorch's choice for the norm of a zero vector and a zero standard deviation (the true
    derivative is infinite there, and times the zero inner derivative gives nan). The root
    is taken of 1 where ``s`` is 0, so that no inf enters either mode's rules."""
    zero = s == 0
    safe = where(zero, 1.0, s)
    return where(zero, 0.0, safe.sqrt() if p == 2 else safe ** (1.0 / p))


def amax(x: Tensor, dim: Any = None, keepdim: bool = False, *, axis: Any = None,
         keepdims: bool | None = None) -> Tensor:
    return x._amax(*_dim_args(dim, keepdim, axis, keepdims))


def amin(x: Tensor, dim: Any = None, keepdim: bool = False, *, axis: Any = None,
         keepdims: bool | None = None) -> Tensor:
    return x._amin(*_dim_args(dim, keepdim, axis, keepdims))


def max(x: Tensor, dim: Any = None, keepdim: bool = False, *, axis: Any = None,
        keepdims: bool | None = None) -> Any:
    """``x.max()`` is a 0-d tensor; ``x.max(dim)`` is ``(values, indices)``, as in PyTorch.

    ``tg.max(a, b)`` with a tensor second argument is the elementwise maximum.
    """
    if isinstance(dim, Tensor):
        return maximum(x, dim)
    dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
    if dim is None:
        return x._amax(None, False)
    indices = x.argmax(dim, keepdim)
    return MaxMin(_pick(x, indices, dim, keepdim), indices)


def min(x: Tensor, dim: Any = None, keepdim: bool = False, *, axis: Any = None,
        keepdims: bool | None = None) -> Any:
    """Like `max`, for the minimum."""
    if isinstance(dim, Tensor):
        return minimum(x, dim)
    dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
    if dim is None:
        return amin(x)
    indices = x.argmin(dim, keepdim)
    return MaxMin(_pick(x, indices, dim, keepdim), indices)


def _pick(x: Tensor, indices: Tensor, dim: int, keepdim: bool) -> Tensor:
    """``x``'s elements at ``indices`` along ``dim`` (the result of an arg-reduction), so the
    gradient goes to exactly those elements, as PyTorch's max(dim) does."""
    if x.ndim == 0:
        return x
    d = dim % x.ndim
    idx = indices if keepdim else indices.unsqueeze(d)
    return take_along_dim(x, idx, d) if keepdim else take_along_dim(x, idx, d).squeeze(d)


def take_along_dim(x: Tensor, indices: Tensor, dim: int) -> Tensor:
    """``np.take_along_axis``: pick along ``dim`` with ``indices`` shaped like ``x`` except
    in ``dim``; differentiable in ``x``."""
    d = dim % x.ndim
    index = []
    for k, n in enumerate(indices.shape):
        if k == d:
            index.append(indices)
        else:
            shape = [1] * indices.ndim
            shape[k] = n
            index.append(_leaf(np.arange(n).reshape(shape)))
    return x[tuple(index)]


def logsumexp(x: Tensor, dim: Any = None, keepdim: bool = False, *, axis: Any = None,
              keepdims: bool | None = None) -> Tensor:
    """``log(sum(exp(x)))`` without overflow: the max is taken out first."""
    dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
    axes = normalize_axes("logsumexp", dim, x.ndim)
    if builtins.any(x.shape[a] == 0 for a in axes):  # the sum of nothing is 0: log -inf
        shape = tuple(1 if i in axes else n for i, n in enumerate(x.shape)) if keepdim else \
            tuple(n for i, n in enumerate(x.shape) if i not in axes)
        return _leaf(np.full(shape, -np.inf, dtype=x.dtype))
    m = x._amax(dim, keepdim=True).detach()
    m = where(m.abs() == math.inf, 0.0, m)  # a row of -inf stays -inf instead of nan
    out = (x - m).exp().sum(dim, keepdim=True).log() + m
    if keepdim:
        return out
    axes = normalize_axes("logsumexp", dim, x.ndim)
    return out.reshape(tuple(n for i, n in enumerate(x.shape) if i not in axes))


def softmax(x: Tensor, dim: int = -1, *, dtype: Any = None) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``dim``, stable for large inputs (computed in
    ``dtype`` if given, as PyTorch's ``dtype=``)."""
    if dtype is not None:
        x = x.to(dtype)
    axes = normalize_axes("softmax", dim, x.ndim)
    if axes and x.shape[axes[0]] == 0:
        return x
    if axes and x.dtype.kind == "f":  # one node eagerly; traced, its decomposition
        return apply(P["softmax"], x, axis=axes[0])
    e = (x - x._amax(dim, keepdim=True).detach()).exp()  # (a 0-d or an integer tensor)
    return e / e.sum(dim, keepdim=True)


def log_softmax(x: Tensor, dim: int = -1, *, dtype: Any = None) -> Tensor:
    """``x - logsumexp(x)`` along ``dim``, stable for large inputs (computed in ``dtype``
    if given)."""
    if dtype is not None:
        x = x.to(dtype)
    axes = normalize_axes("log_softmax", dim, x.ndim)
    if axes and x.shape[axes[0]] == 0:
        return x
    if axes and x.dtype.kind == "f":  # one node eagerly; traced, its decomposition
        return apply(P["log_softmax"], x, axis=axes[0])
    return P["log_softmax"].decomposition(x, axis=dim)  # (a 0-d or an integer tensor)


# ---------------------------------------------------------------- elementwise


def abs(x: Tensor) -> Tensor:
    return apply(P["abs"], x)


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum; ties split the gradient evenly, as in PyTorch."""
    a = _t(a) if not isinstance(b, Tensor) else (a if isinstance(a, Tensor) else _operand(a, b))
    return a.maximum(b)


def minimum(a: Any, b: Any) -> Tensor:
    a = _t(a) if not isinstance(b, Tensor) else (a if isinstance(a, Tensor) else _operand(a, b))
    return -((-a).maximum(-_operand(b, a)))


def clamp(x: Tensor, min: Any = None, max: Any = None) -> Tensor:
    """Limit to [min, max]; the gradient passes where min <= x <= max, as in PyTorch."""
    if min is None and max is None:
        raise ValueError("clamp: give min, max or both")
    out = x
    if min is not None:
        out = where(out < min, min, out)
    if max is not None:
        out = where(out > max, max, out)
    return out


def relu(x: Tensor) -> Tensor:
    return x.relu()


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def silu(x: Tensor) -> Tensor:
    return x * x.sigmoid()


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta x)) / beta`` (linear above ``threshold``, as PyTorch)."""
    if beta == 1.0:
        sp = x.softplus()
    else:
        sp = (x * beta).softplus() * (1.0 / beta)
    return where(x * beta > threshold, x, sp)


def logsigmoid(x: Tensor) -> Tensor:
    """``log(sigmoid(x))`` without underflow: ``-softplus(-x)``."""
    return -((-x).softplus())


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU, ``x * Phi(x)``: exact (erf), or the tanh approximation with
    ``approximate="tanh"``. Phi is a primitive (`normal_cdf`, `normal_cdf_tanh`) whose
    gradient reads its own value, so the backward is a few operations per element.

    >>> F.gelu(tg.tensor([0.0, 1.0]), approximate="tanh")
    tensor([0.0000, 0.8412])
    """
    if approximate == "none":
        return x * _unary("normal_cdf", x)
    if approximate == "tanh":
        return x * _unary("normal_cdf_tanh", x)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


# ---------------------------------------------------------------- layers as functions


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` with PyTorch's (out, in) weight layout."""
    if isinstance(bias, Tensor) and isinstance(weight, Tensor) and isinstance(x, Tensor):
        xd, wd, bd = x._data, weight._data, bias._data
        if wd.ndim == 2 and bd.ndim == 1 and xd.ndim and xd.dtype == wd.dtype == bd.dtype:
            # one node eagerly; traced, its decomposition (see ops/linalg.py)
            return apply(P["linear"], x, weight, bias)
    # no bias, or operands the primitive does not take
    dts = {t.dtype for t in (x, weight, bias) if isinstance(t, Tensor)}
    if len(dts) > 1:  # PyTorch refuses to mix them rather than promote
        raise DTypeError(
            f"linear: input, weight{' and bias' if bias is not None else ''} have dtypes "
            f"{x.dtype}, {weight.dtype}{f' and {bias.dtype}' if bias is not None else ''}; "
            f"PyTorch refuses to mix them too. Cast the input (x.to(weight.dtype)) or the "
            f"model (model.double())"
        )
    check_linear_features(tuple(x.shape), tuple(weight.shape))
    out = x @ weight.T
    return out + bias if bias is not None else out


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (in training)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    from .creation import rand

    keep = rand(*x.shape, dtype=x.dtype) >= p  # a graph node: fresh in every compiled run
    return x * keep * (1 / (1 - p))


def layer_norm(x: Tensor, normalized_shape: Any, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize over the last ``len(normalized_shape)`` dimensions, then scale and shift."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(x.shape[-len(shape):]) != shape:
        raise ShapeError(
            f"layer_norm: normalized_shape {shape} does not match the last dimensions of the "
            f"input {x.shape}"
        )
    dims = tuple(range(x.ndim - len(shape), x.ndim))
    mu = mean(x, dims, keepdim=True)
    centered = x - mu
    v = mean(centered * centered, dims, keepdim=True)
    # (one reciprocal per row, then a product per element, as PyTorch computes it: a
    # division per element, and three in the backward, cost more than the rest of the math)
    out = centered * (1.0 / (v + eps).sqrt())
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def _padding_index(padding_idx: int | None, rows: int) -> int | None:
    if padding_idx is None:
        return None
    if not -rows <= padding_idx < rows:
        raise ValueError(f"embedding: padding_idx {padding_idx} must be within the "
                         f"{rows} rows of the table")
    return padding_idx % rows


def embedding(indices: Any, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` picked by integer ``indices``. Positions whose index is
    ``padding_idx`` send no gradient to that row, as in PyTorch."""
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: max_norm, scale_grad_by_freq and sparse are not "
                                  "supported by tracegrad")
    idx = indices if isinstance(indices, Tensor) else Tensor(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got {idx.dtype}")
    idx = checked(idx, "in_range", (0, weight.shape[0]), IndexError,
                  f"embedding: indices range over [{{lo}}, {{hi}}] but the table has "
                  f"{weight.shape[0]} rows")
    if idx.ndim == 0:
        return embedding(idx.reshape(1), weight, padding_idx).reshape(weight.shape[1:])
    out = weight[idx]
    padding_idx = _padding_index(padding_idx, weight.shape[0])
    if padding_idx is not None and out.requires_grad:
        pad = (idx == padding_idx).unsqueeze(-1)
        out = _where(pad, out.detach(), out)
    return out


def one_hot(indices: Any, num_classes: int = -1) -> Tensor:
    """Integer class indices to one-hot rows (int64), ``num_classes`` wide."""
    idx = indices if isinstance(indices, Tensor) else Tensor(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, got {idx.dtype}")
    if num_classes < 0:  # the width from the values: refused while tracing
        if not idx.numel():
            raise ValueError("one_hot: cannot infer the number of classes from an empty "
                             "tensor; pass num_classes")
        num_classes = int(_static_data(idx, "one_hot without num_classes (the largest "
                                            "index sets the width; pass num_classes)").max()) + 1
    idx = checked(idx, "in_range", (0, num_classes), ValueError,
                  f"one_hot: class indices range over [{{lo}}, {{hi}}], outside [0, "
                  f"{num_classes}) for num_classes={num_classes}")
    n = num_classes
    return (idx.unsqueeze(-1) == _leaf(np.arange(n, dtype=idx.dtype))).long()


_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _pad_dim(x: Tensor, d: int, mode: str, lo: int, hi: int) -> Tensor:
    """``x`` padded along ``d`` by (``lo``, ``hi``) in a non-constant mode, a negative
    amount cropping: slices, flips and one cat (their gradients are slices and adds, no
    scatter). Circular padding wraps around what cropping leaves, as PyTorch's does;
    reflect and replicate pad from the input's own ends, then crop."""
    size = x.shape[d]

    def part(start: int, stop: int, of: Tensor = x) -> Tensor:
        return of[(slice(None),) * d + (slice(start, stop),)]

    if mode == "circular":
        if size + lo + hi == 0:  # (all cropped: empty, whatever it would have wrapped)
            return part(0, 0)
        core = part(builtins.max(-lo, 0), size + builtins.min(hi, 0))
        kept = core.shape[d]
        lo, hi = builtins.max(lo, 0), builtins.max(hi, 0)
        if not lo and not hi:
            return core
        pieces = [part(kept - lo, kept, core), core, part(0, hi, core)]
        return cat([p for p in pieces if p.shape[d]], d)
    left, right = builtins.max(lo, 0), builtins.max(hi, 0)
    if mode == "reflect":
        pieces = [flip(part(1, left + 1), [d]), x, flip(part(size - right - 1, size - 1), [d])]
    else:  # replicate

        def edge(i: int, n: int) -> Tensor:
            return part(i, i + 1).expand(x.shape[:d] + (n,) + x.shape[d + 1:])

        pieces = [edge(0, left), x, edge(size - 1, right)]
    out = cat([p for p in pieces if p.shape[d]], d) if left or right else x
    if lo < 0 or hi < 0:
        out = part(builtins.max(-lo, 0), left + size + hi, out)
    return out


def _check_pad_modes(x: Tensor, pads: list, n: int, mode: str, pad: tuple) -> None:
    """PyTorch's rules for the non-constant modes: 1, 2 or 3 trailing dimensions padded
    of an input with one or two more (the channels, and optionally the batch)."""
    if n not in (1, 2, 3) or x.ndim not in (n + 1, n + 2):
        raise NotImplementedError(
            f"pad: mode={mode!r} pads the last 1, 2 or 3 dimensions of a 2-3, 3-4 or 4-5 "
            f"dimensional input (channels and an optional batch first); got a {x.ndim}-d "
            f"input of shape {x.shape} and pad={pad} ({n} dimensions)"
        )
    if mode != "circular" and builtins.any(s == 0 for s in x.shape[x.ndim - n - 1:]):
        raise ShapeError(f"pad: mode={mode!r} needs non-empty dimensions other than the "
                         f"batch, got an input of shape {x.shape}")
    for d in range(x.ndim - n, x.ndim):
        (lo, hi), size = pads[d], x.shape[d]
        if mode == "reflect" and (lo >= size or hi >= size):
            raise ValueError(f"pad: mode='reflect' needs each padding less than the size of "
                             f"its dimension, got ({lo}, {hi}) for dimension {d} of an "
                             f"input of shape {x.shape}")
        # (circular wraps around what is left after cropping, as PyTorch does)
        kept = size + builtins.min(lo, 0) + builtins.min(hi, 0)
        if mode == "circular" and (builtins.max(lo, hi) > size or (
                builtins.max(lo, hi) > kept and size + lo + hi)):
            raise ValueError(f"pad: mode='circular' needs each padding at most the size of "
                             f"its dimension after cropping (it wraps around once), got "
                             f"({lo}, {hi}) for dimension {d} of an input of shape {x.shape}")


def pad(x: Tensor, pad: Sequence[int], mode: str = "constant",
        value: float | None = None) -> Tensor:
    """PyTorch's ``F.pad``: ``pad`` lists (left, right) pairs starting from the LAST dimension.

    ``mode``: "constant" (``value``, 0 by default; a negative padding crops), "reflect",
    "replicate" or "circular" (the last 1-3 dimensions of an input with channels first).

    >>> F.pad(tg.tensor([[1.0, 2.0, 3.0]]), (2, 1), mode="reflect")
    tensor([[3., 2., 1., 2., 3., 2.]])
    """
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode must be one of {', '.join(map(repr, _PAD_MODES))}, "
                         f"got {mode!r}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ShapeError(
            f"pad: needs (left, right) pairs for at most {x.ndim} dimensions, got {pad}"
        )
    n = len(pad) // 2
    pads = [(0, 0)] * x.ndim
    for i in range(n):
        pads[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    # (PyTorch's limits on cropping: constant mode crops first, the others look at the
    # sizes that result; reflect and replicate must leave some padded dimension non-empty)
    for d, (lo, hi) in enumerate(pads):
        size = x.shape[d] + (lo + hi if mode != "constant" else
                             builtins.min(lo, 0) + builtins.min(hi, 0))
        if size < 0:
            raise ShapeError(f"pad: negative padding ({lo}, {hi}) crops more than the "
                             f"{x.shape[d]} elements of dimension {d} of an input of shape "
                             f"{x.shape}")
    if mode in ("reflect", "replicate") and builtins.all(
            x.shape[d] + lo + hi < 1 for d, (lo, hi) in enumerate(pads[x.ndim - n:], x.ndim - n)):
        raise ShapeError(f"pad: negative padding {pad} leaves nothing of the input of shape "
                         f"{x.shape}")
    if mode != "constant":
        if value is not None and value != 0:
            raise ValueError(f"pad: mode={mode!r} takes no value, got value={value}")
        _check_pad_modes(x, pads, n, mode, pad)
        for d in range(x.ndim - n, x.ndim):
            if pads[d] != (0, 0):
                x = _pad_dim(x, d, mode, *pads[d])
        return x
    # constant: crop the negative ends, then pad the positive ones
    crop = tuple(slice(builtins.max(-lo, 0), s + builtins.min(hi, 0))
                 for s, (lo, hi) in zip(x.shape, pads))
    if builtins.any(lo < 0 or hi < 0 for lo, hi in pads):
        x = x[crop]
    pads = [(builtins.max(lo, 0), builtins.max(hi, 0)) for lo, hi in pads]
    if builtins.all(lo == 0 and hi == 0 for lo, hi in pads):
        return x
    return apply(P["pad"], x, pads=tuple(pads), value=0.0 if value is None else value)


# ---------------------------------------------------------------- convolution and pooling
#
# A convolution is im2col and one matmul. The im2col primitive (ops/movement.py) copies the
# (padded) input's windows through one strided view: for each kernel offset, the element
# under it at every output position; its gradient, col2im, adds each offset's slab back
# into a strided view of zeros (no scatter with repeated indices, no `np.add.at`). The work
# runs in (C, N, *spatial) order: the windows are then one (K*C, N*L) matrix, the product is
# one GEMM per group, and its result, viewed back as (N, C_out, *spatial), keeps that layout,
# so the next layer's permute to (C, N, ...) is free. Pools reduce the same windows.


def _tuple(v: Any, n: int, name: str, op: str) -> tuple[int, ...]:
    """An int or a sequence of ``n`` ints as an ``n``-tuple."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return (int(v),) * n
    try:
        t = tuple(v)
    except TypeError:
        t = None
    if t is None or len(t) != n or not builtins.all(
            isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in t):
        raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints, got {v!r}")
    return tuple(int(i) for i in t)


def _dims(nd: int) -> str:
    """The names of ``nd`` spatial dimensions, for messages: "L", "H, W" or "D, H, W"."""
    return "L" if nd == 1 else ", ".join("DHW"[3 - nd:])


def _pair(v: Any, name: str) -> tuple[int, int]:
    return _tuple(v, 2, name, "conv2d")


def _positive(values: tuple, name: str, op: str) -> None:
    if builtins.any(v < 1 for v in values):
        raise ValueError(f"{op}: {name} must be positive, got {values}")


def _conv_padding(padding: Any, kernel: tuple, stride: tuple, dilation: tuple,
                  op: str) -> tuple[tuple[int, int], ...]:
    """(before, after) per spatial dimension; ``"same"`` pads as PyTorch does (the odd one
    of an even kernel's padding goes after)."""
    nd = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding != "same":
            raise ValueError(f"{op}: padding must be 'valid', 'same', an int or a tuple of "
                             f"{nd} ints, got {padding!r}")
        if builtins.any(s != 1 for s in stride):
            raise ValueError(f"{op}: padding='same' needs stride 1 (as in PyTorch), got "
                             f"stride {stride}; pad explicitly for a strided convolution")
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    p = _tuple(padding, nd, "padding", op)
    if builtins.any(v < 0 for v in p):
        raise ValueError(f"{op}: padding must be non-negative, got {p}")
    return tuple((v, v) for v in p)


def _out_size(size: tuple, kernel: tuple, stride: tuple, dilation: tuple, op: str,
              shape: tuple) -> tuple[int, ...]:
    out = tuple((n - d * (k - 1) - 1) // s + 1
                for n, k, s, d in zip(size, kernel, stride, dilation))
    if builtins.any(o <= 0 for o in out):
        raise ShapeError(
            f"{op}: the input {shape} is {size} after padding, smaller than the kernel "
            f"{kernel} with dilation {dilation}; use a smaller kernel or more padding"
        )
    return out


def _conv_operands(x: Any, weight: Any, nd: int, op: str, layout: str) -> None:
    """A convolution's (or transposed one's) input and weight are tensors, the weight of
    shape (``layout``, *kernel)."""
    if not isinstance(x, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"{op}: input and weight must be tensors, got "
                        f"{type(x).__name__} and {type(weight).__name__}")
    if weight.ndim != nd + 2:
        raise ShapeError(f"{op}: weight must be ({layout}, {', '.join(['k'] * nd)}), got "
                         f"shape {weight.shape}")


def _conv_bias(x: Tensor, weight: Tensor, bias: Tensor | None, c_out: int, op: str,
               how: str) -> None:
    """A convolution's input, weight and bias share a dtype, and the bias has ``c_out``
    elements (``how``: what in the weight says so, for the message)."""
    if x.dtype != weight.dtype or (bias is not None and bias.dtype != x.dtype):
        raise TypeError(f"{op}: input, weight and bias dtypes differ ({x.dtype}, "
                        f"{weight.dtype}{', ' + str(bias.dtype) if bias is not None else ''});"
                        f" cast them to one")
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise ShapeError(f"{op}: bias must have shape ({c_out},) for weight {weight.shape}"
                         f"{how}, got {bias.shape}")


def _conv(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Any, padding: Any,
          dilation: Any, groups: int, nd: int, op: str) -> Tensor:
    """N-d convolution (cross-correlation, as in PyTorch) over the last ``nd`` dimensions."""
    dims = f"(N, C_in, {_dims(nd)})"
    _conv_operands(x, weight, nd, op, "C_out, C_in/groups")
    if x.ndim == nd + 1:  # one sample without the batch dimension, as PyTorch allows
        return _conv(x.unsqueeze(0), weight, bias, stride, padding, dilation, groups, nd,
                     op).squeeze(0)
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    groups = int(groups)
    c_out, c_group, *kernel = weight.shape
    kernel = tuple(kernel)
    if x.ndim != nd + 2 or x.shape[1] != c_group * groups:
        raise ShapeError(
            f"{op}: input {x.shape} does not fit weight {weight.shape} with groups={groups}: "
            f"the input needs shape {dims.replace('C_in', str(c_group * groups))}"
            + (f"; or set groups={x.shape[1] // c_group}" if x.ndim == nd + 2 and c_group
               and x.shape[1] % c_group == 0 and c_out % (x.shape[1] // c_group) == 0 else "")
        )
    if c_out % groups:
        raise ShapeError(f"{op}: weight {weight.shape} has C_out={c_out} channels, not "
                         f"divisible by groups={groups}")
    _conv_bias(x, weight, bias, c_out, op, "")
    stride = _tuple(stride, nd, "stride", op)
    dilation = _tuple(dilation, nd, "dilation", op)
    _positive(stride, "stride", op)
    _positive(dilation, "dilation", op)
    pads = _conv_padding(padding, kernel, stride, dilation, op)
    n = x.shape[0]
    xc = _batch_last(x, pads)  # (C, *S, N)
    out = _out_size(tuple(xc.shape[1:nd + 1]), kernel, stride, dilation, op, x.shape)
    cols = xc._im2col(kernel, stride, dilation)  # (K, C, *O, N): one strided copy
    k = math.prod(kernel)
    length = n * math.prod(out)
    # The weight's columns in the windows' (offset, channel) order: a copy of the (small)
    # weight instead of a transpose of the (large) windows.
    kernel_dims = tuple(range(2, nd + 2))
    if groups == 1:
        w = weight.permute((0,) + kernel_dims + (1,)).reshape((c_out, k * c_group))
        y = w @ cols.reshape((k * c_group, length))
    else:
        w = weight.reshape((groups, c_out // groups, c_group, k)).permute((0, 1, 3, 2))
        cols = cols.reshape((k, groups, c_group, length)).permute((1, 0, 2, 3))
        y = w.reshape((groups, c_out // groups, k * c_group)) @ \
            cols.reshape((groups, k * c_group, length))
    y = y.reshape((c_out,) + out + (n,))
    if bias is not None:
        y = y + bias.reshape((c_out,) + (1,) * (nd + 1))
    return _batch_first(y)  # (N, C_out, *O), a view of the (C_out, *O, N) result


def _batch_last(x: Tensor, pads: tuple) -> Tensor:
    """(N, C, *S) as (C, *S, N) (a view; free when x is itself such a view), padded."""
    nd = x.ndim - 2
    xc = x.permute(tuple(range(1, nd + 2)) + (0,))
    if builtins.any(lo or hi for lo, hi in pads):
        xc = apply(P["pad"], xc, pads=((0, 0),) + tuple(pads) + ((0, 0),), value=0.0)
    return xc


def _batch_first(y: Tensor) -> Tensor:
    """(C, *S, N) as (N, C, *S): a view."""
    return y.permute((y.ndim - 1,) + tuple(range(y.ndim - 1)))


def conv1d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """1-d convolution (cross-correlation, as in PyTorch): ``x`` (N, C_in, L) or (C_in, L),
    ``weight`` (C_out, C_in / groups, k); ``padding`` an int, ``"valid"`` or ``"same"``.

    >>> conv1d(tg.ones(1, 1, 4), tg.ones(1, 1, 2)).tolist()
    [[[2.0, 2.0, 2.0]]]
    """
    return _conv(x, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-d convolution (cross-correlation, as in PyTorch) by im2col and one matmul.

    ``x``: (N, C_in, H, W) or (C_in, H, W); ``weight``: (C_out, C_in / groups, kh, kw);
    ``stride``, ``padding``, ``dilation``: ints or pairs, and ``padding`` may be ``"valid"``
    or ``"same"``; ``groups`` > 1 for grouped and depthwise convolutions.

    >>> conv2d(tg.ones(1, 1, 3, 3), tg.ones(1, 1, 2, 2), padding="same").shape
    (1, 1, 3, 3)
    """
    return _conv(x, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def conv3d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """3-d convolution (cross-correlation, as in PyTorch), as `conv2d` over one more
    dimension: ``x`` (N, C_in, D, H, W) or (C_in, D, H, W), ``weight`` (C_out, C_in / groups,
    kd, kh, kw).

    >>> conv3d(tg.ones(1, 1, 3, 3, 3), tg.ones(1, 1, 2, 2, 2)).shape
    (1, 1, 2, 2, 2)
    """
    return _conv(x, weight, bias, stride, padding, dilation, groups, 3, "conv3d")


def _pool_setup(x: Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
                ceil_mode: bool, op: str, nd: int = 2) -> tuple:
    """Checked (kernel, stride, padding, dilation) ``nd``-tuples, the output size of a pool
    and its (before, after) padding: with ``ceil_mode`` a last, partial window where one
    starts inside the input or the left padding (PyTorch's rule), padded after."""
    if not isinstance(x, Tensor) or x.ndim not in (nd + 1, nd + 2):
        dims = _dims(nd)
        raise ShapeError(f"{op}: expects input of shape (N, C, {dims}) or (C, {dims}), got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    k = _tuple(kernel_size, nd, "kernel_size", op)
    empty = stride is None or (isinstance(stride, (list, tuple)) and not stride)
    s = k if empty else _tuple(stride, nd, "stride", op)
    p = _tuple(padding, nd, "padding", op)
    d = _tuple(dilation, nd, "dilation", op)
    for values, name in ((k, "kernel_size"), (s, "stride"), (d, "dilation")):
        _positive(values, name, op)
    if builtins.any(pv < 0 or 2 * pv > kv for pv, kv in zip(p, k)):
        raise ValueError(f"{op}: padding {p} must be non-negative and at most half the "
                         f"kernel size {k}, as in PyTorch")
    n = tuple(x.shape[-nd:])
    size = tuple(m + 2 * pv for m, pv in zip(n, p))
    out = _out_size(size, k, s, d, op, x.shape)
    if ceil_mode:
        out = tuple(o + 1 if (z - dv * (kv - 1) - 1) % sv and o * sv < m + pv else o
                    for o, z, m, kv, sv, pv, dv in zip(out, size, n, k, s, p, d))
    pads = tuple((pv, pv + builtins.max(0, (o - 1) * sv + dv * (kv - 1) + 1 - z))
                 for o, z, kv, sv, pv, dv in zip(out, size, k, s, p, d))
    return k, s, p, d, out, pads


def _max_pool(x: Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
              ceil_mode: bool, return_indices: bool, nd: int, op: str) -> Any:
    k, s, p, d, out, pads = _pool_setup(x, kernel_size, stride, padding, dilation, ceil_mode,
                                        op, nd)
    if x.ndim == nd + 1:  # one sample without the batch dimension
        y = _max_pool(x.unsqueeze(0), k, s, p, d, ceil_mode, return_indices, nd, op)
        return tuple(t.squeeze(0) for t in y) if return_indices else y.squeeze(0)
    # The value is the maximum over each window (np.maximum: fast, NaN wins); the gradient
    # goes through a product with a one-hot mask of each window's first maximum, found
    # without gradient. (The max reduction's own gradient splits ties; np.where with an
    # unpredictable condition is ~100x slower than a product.)
    cols = _batch_last(x, pads)._im2col(k, s, d)  # (K, C, *out, N)
    with _no_grad():
        plain = cols.detach() if not builtins.any(hi for _, hi in pads) else \
            apply(P["pad"], _batch_last(x.detach(), ()), value=-math.inf,
                  pads=((0, 0),) + pads + ((0, 0),))._im2col(k, s, d)
        best = plain._amax(0)
        # The mask offset by offset (NumPy's argmax along the first axis is a hundred times
        # slower than these few passes).
        hits = plain == best
        taken = hits[0]
        masks = [taken]
        for i in range(1, plain.shape[0]):
            masks.append(hits[i] > taken)
            taken = taken | hits[i]
        mask = stack(masks)
    picked = (cols * mask.to(x.dtype)).sum(0)
    # Where a window holds inf or NaN, the products are NaN or wrong: take the maximum.
    values = _batch_first(where(picked == best, picked, best))
    if not return_indices:
        return values
    # Each window's first maximum as a flat index into the input's (unpadded) spatial
    # dimensions, as PyTorch returns it: the mask times a table of the positions.
    with _no_grad():
        where_at = [np.arange(o)[:, None] * sv - pv + np.arange(kv)[None, :] * dv
                    for o, sv, pv, kv, dv in zip(out, s, p, k, d)]
        flat = np.zeros((1,) * (2 * nd), dtype=np.int64)
        for i, (w, size) in enumerate(zip(where_at, x.shape[2:])):
            flat = flat * size + w.reshape((1,) * i + w.shape[:1] + (1,) * (nd - 1 - i) +
                                           (1,) * i + w.shape[1:] + (1,) * (nd - 1 - i))
        # (out..., kernel...) to (K, 1, *out, 1), the windows' layout
        table = flat.reshape(math.prod(out), -1).T.reshape((-1, 1) + out + (1,))
        # a window's maximum is NaN where it holds one (no hit above): PyTorch gives the
        # index of its last NaN
        nan = plain != plain
        later = nan[-1]
        last = [later]
        for i in range(plain.shape[0] - 2, -1, -1):
            last.append(nan[i] > later)
            later = later | nan[i]
        chosen = mask | stack(last[::-1])
        indices = _batch_first((chosen.long() * _leaf(table)).sum(0))
    return values, indices


def max_pool1d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """Maximum over each window of (N, C, L) or (C, L), as `max_pool2d` in one dimension.

    >>> max_pool1d(tg.tensor([[[1.0, 3.0, 2.0, 0.0]]]), 2).tolist()
    [[[3.0, 2.0]]]
    """
    return _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1,
                     "max_pool1d")


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """Maximum over each window; padding counts as -inf. As PyTorch's, the gradient goes to
    the first maximum of a window, and a NaN in a window is its maximum (a window that holds
    an inf or a NaN passes no gradient). ``ceil_mode`` keeps a last partial window;
    ``return_indices`` also returns each maximum's flat index into H*W (for max_unpool2d).

    >>> max_pool2d(tg.arange(16.0).reshape(1, 1, 4, 4), 2).tolist()
    [[[[5.0, 7.0], [13.0, 15.0]]]]
    """
    return _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2,
                     "max_pool2d")


def max_pool3d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """Maximum over each window of (N, C, D, H, W) or (C, D, H, W), as `max_pool2d` in three
    dimensions (``return_indices``: flat indices into D*H*W, for max_unpool3d).

    >>> max_pool3d(tg.arange(8.0).reshape(1, 1, 2, 2, 2), 2).flatten().tolist()
    [7.0]
    """
    return _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 3,
                     "max_pool3d")


def _avg_pool(x: Tensor, kernel_size: Any, stride: Any, padding: Any,
              count_include_pad: bool, ceil_mode: bool, divisor_override: int | None,
              nd: int, op: str) -> Tensor:
    k, s, p, d, out, pads = _pool_setup(x, kernel_size, stride, padding, 1, ceil_mode, op,
                                        nd)
    if x.ndim == nd + 1:  # one sample without the batch dimension
        return _avg_pool(x.unsqueeze(0), k, s, p, count_include_pad, ceil_mode,
                         divisor_override, nd, op).squeeze(0)
    size = tuple(x.shape[-nd:])
    total = _batch_first(_batch_last(x, pads)._im2col(k, s, d).sum(0))
    if divisor_override is not None:
        if divisor_override == 0:
            raise ValueError(f"{op}: divisor_override must be nonzero")
        return total / divisor_override
    partial = builtins.any(hi > lo for lo, hi in pads)  # (ceil_mode's last windows)
    if not partial and (count_include_pad or not builtins.any(p)):
        return total / math.prod(k)
    # Each window's divisor, per dimension, then outer: as PyTorch, the padding counts
    # (count_include_pad) up to the end of the padded input, not into ceil_mode's overhang.
    counts = []
    for n, kv, sv, pv, m in zip(size, k, s, p, out):
        start = np.arange(m) * sv - pv
        end = np.minimum(start + kv, n + pv)
        inside = np.minimum(end, n) - np.maximum(start, 0)
        counts.append((end - start if count_include_pad else inside).astype(x.dtype))
    return total / _leaf(functools.reduce(np.multiply.outer, counts))


def avg_pool1d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Mean over each window of (N, C, L) or (C, L) (PyTorch's argument order).

    >>> avg_pool1d(tg.tensor([[[1.0, 3.0, 2.0, 0.0]]]), 2).tolist()
    [[[2.0, 1.0]]]
    """
    return _avg_pool(x, kernel_size, stride, padding, count_include_pad, ceil_mode, None, 1,
                     "avg_pool1d")


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """Mean over each window (padding counted as zeros, as PyTorch's default), with
    PyTorch's arguments in its order.

    >>> avg_pool2d(tg.arange(16.0).reshape(1, 1, 4, 4), 2).tolist()
    [[[[2.5, 4.5], [10.5, 12.5]]]]
    """
    return _avg_pool(x, kernel_size, stride, padding, count_include_pad, ceil_mode,
                     divisor_override, 2, "avg_pool2d")


def avg_pool3d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """Mean over each window of (N, C, D, H, W) or (C, D, H, W), as `avg_pool2d`.

    >>> avg_pool3d(tg.arange(8.0).reshape(1, 1, 2, 2, 2), 2).flatten().tolist()
    [3.5]
    """
    return _avg_pool(x, kernel_size, stride, padding, count_include_pad, ceil_mode,
                     divisor_override, 3, "avg_pool3d")


# ---------------------------------------------------------------- losses


def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    target = _operand(target, input)
    if input.shape != target.shape:
        raise ShapeError(
            f"mse_loss: input {input.shape} and target {target.shape} differ; give the target "
            f"the input's shape (broadcasting here is usually a bug)"
        )
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


def l1_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    target = _operand(target, input)
    if input.shape != target.shape:
        raise ShapeError(f"l1_loss: input {input.shape} and target {target.shape} differ")
    return _reduce(abs(input - target), reduction, "l1_loss")


def binary_cross_entropy_with_logits(input: Tensor, target: Any, weight: Any = None,
                                     reduction: str = "mean", pos_weight: Any = None) -> Tensor:
    """``-[y log sigmoid(x) + (1-y) log(1 - sigmoid(x))]``, computed stably from logits:
    ``(1-y) x + softplus(-x)``, with ``pos_weight`` scaling the positive term, as PyTorch."""
    target = _operand(target, input)
    if input.shape != target.shape:
        raise ShapeError(
            f"binary_cross_entropy_with_logits: input {input.shape} and target {target.shape} "
            f"differ"
        )
    sp = (-input).softplus()  # -log sigmoid(x)
    if pos_weight is not None:
        loss = (1 - target) * input + (1 + (pos_weight - 1) * target) * sp
    else:
        loss = (1 - target) * input + sp
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


_TINY = {np.dtype(np.float16): 6e-8, np.dtype(np.float32): 1e-44, np.dtype(np.float64): 1e-300}


def binary_cross_entropy(input: Tensor, target: Any, weight: Any = None,
                         reduction: str = "mean") -> Tensor:
    """BCE on probabilities; logs are clamped at -100 as in PyTorch (and so are their
    gradients at exactly 0 and 1: finite, not nan)."""
    target = _operand(target, input)
    if input.shape != target.shape:
        raise ShapeError(
            f"binary_cross_entropy: input {input.shape} and target {target.shape} differ"
        )
    input = checked(input, "in_interval", (0, 1), ValueRangeError,
                    f"binary_cross_entropy: all elements of input should be between 0 and 1 "
                    f"(they are probabilities; for logits use "
                    f"binary_cross_entropy_with_logits); the input of shape {input.shape} "
                    f"has values in [{{lo}}, {{hi}}]")
    tiny = _TINY.get(input.dtype, 1e-44)
    log_p = clamp(clamp(input, min=tiny).log(), min=-100)
    log_q = clamp(clamp(1 - input, min=tiny).log(), min=-100)
    loss = -(target * log_p + (1 - target) * log_q)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


def nll_loss(input: Tensor, target: Any, weight: Any = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices, given log-probabilities (N, C, ...)."""
    return _indexed_loss(input, target, weight, ignore_index, reduction, 0.0, "nll_loss",
                         log_probs=input)


def cross_entropy(input: Tensor, target: Any, weight: Any = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of logits ``input`` (N, C) or (N, C, d1, ...) against class indices
    (int, shape (N,) or (N, d1, ...)) or class probabilities (float, the input's shape).
    """
    if input.ndim == 0:
        raise ShapeError("cross_entropy: input must have a class dimension")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    class_dim = 0 if input.ndim == 1 else 1
    logp = log_softmax(input, class_dim)
    target_t = target if isinstance(target, Tensor) else Tensor(target)
    if target_t.dtype.kind == "f":  # probabilities
        if target_t.shape != input.shape:
            raise ShapeError(
                f"cross_entropy: probability targets must have the input's shape {input.shape}, "
                f"got {target_t.shape}"
            )
        c = input.shape[class_dim]
        if label_smoothing:
            target_t = target_t * (1 - label_smoothing) + label_smoothing / c
        w = 1.0
        if weight is not None:
            shape = [1] * input.ndim
            shape[class_dim] = c
            w = _t(weight).reshape(tuple(shape))
        loss = -(logp * target_t * w).sum(class_dim)
        if reduction == "mean":
            return loss.sum() / (loss.numel() if loss.ndim else 1)
        return _reduce(loss, reduction, "cross_entropy")
    return _indexed_loss(input, target_t, weight, ignore_index, reduction, label_smoothing,
                         "cross_entropy", log_probs=logp)


def _indexed_loss(input: Tensor, target: Tensor, weight: Any, ignore_index: int,
                  reduction: str, label_smoothing: float, op: str, log_probs: Tensor) -> Tensor:
    # Written with tensor ops only: the targets are data, so a compiled loss reads each
    # batch's labels instead of baking the first batch's in.
    target = target if isinstance(target, Tensor) else Tensor(target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: class-index targets must be integers, got {target.dtype}")
    logp = log_probs
    if logp.ndim == 1:  # a single sample (C,)
        logp, target = logp.unsqueeze(0), target.reshape(1)
    n, c = logp.shape[0], logp.shape[1]
    expected = (n,) + tuple(logp.shape[2:])
    if tuple(target.shape) != expected:
        raise ShapeError(
            f"{op}: input {input.shape} needs class-index targets of shape {expected}, "
            f"got {target.shape}"
        )
    target = checked(target, "in_range", (0, c, ignore_index), IndexError,
                     f"{op}: target classes range over [{{lo}}, {{hi}}] but the input has {c} "
                     f"classes (use ignore_index={ignore_index} for padding)")
    # Move classes last and flatten: (M, C) against (M,).
    if logp.ndim > 2:
        logp = logp.permute((0,) + tuple(range(2, logp.ndim)) + (1,))
    if logp.ndim != 2:
        logp = logp.reshape(-1, c)
    t = target if target.ndim == 1 else target.reshape(-1)
    if t.dtype != np.int64:
        t = t.long()
    m = t.shape[0]
    if weight is None and not label_smoothing and reduction in ("mean", "sum") and m:
        # one node eagerly; traced, its decomposition (see ops/reduce.py)
        return apply(P["nll"], logp, t, ignore_index=ignore_index, reduction=reduction)
    valid = t != ignore_index
    safe_t = where(valid, t, 0)
    picked = logp[_leaf(np.arange(m)), safe_t]
    if weight is None:
        w = valid.to(logp.dtype)
    else:
        w_table = _t(weight).to(logp.dtype)
        w = w_table[safe_t] * valid.to(logp.dtype)
    loss = -(picked * w)
    if label_smoothing:
        # PyTorch: (1 - eps) * nll + eps * (the mean over classes of -w_c log p_c)
        w_row = 1.0 if weight is None else w_table
        smooth = -(logp * w_row).sum(1) * (1.0 / c) * valid.to(logp.dtype)
        loss = loss * (1 - label_smoothing) + smooth * label_smoothing
    if reduction == "mean":
        # Every target ignored: the mean of nothing is nan, as in PyTorch, and the gradient
        # is 0 (not 0/0), so a fully padded batch leaves the parameters alone.
        total = w.sum()
        nothing = total == 0
        return loss.sum() / where(nothing, 1.0, total) + where(nothing, math.nan, 0.0)
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss.reshape(tuple(target.shape) if log_probs.ndim > 1 else ())
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


# ---------------------------------------------------------------- more of PyTorch's surface
# Each a line or two of primitives, so each differentiates, traces and compiles.


def t(x: Tensor) -> Tensor:
    """Transpose of a matrix (a 0-d or 1-d tensor is returned as is), as ``torch.t``."""
    if x.ndim > 2:
        raise ShapeError(f"t: expects at most 2 dimensions, got shape {x.shape}; use transpose")
    return x.T


def square(x: Tensor) -> Tensor:
    return x * x


def reciprocal(x: Tensor) -> Tensor:
    return 1.0 / x


def rsqrt(x: Tensor) -> Tensor:
    return 1.0 / x.sqrt()


def log1p(x: Tensor) -> Tensor:
    return (x + 1).log()


def expm1(x: Tensor) -> Tensor:
    return x.exp() - 1


def norm(x: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False, *,
         dtype: Any = None) -> Tensor:
    """``torch.norm``: the vector p-norm over ``dim`` (all elements by default) for any real
    ``p``, inf and -inf; ``"fro"`` (the default) is the 2-norm, ``"nuc"`` the nuclear norm of
    the matrices in ``dim``. As `tg.linalg.vector_norm`, which it calls (its gradient at a
    zero vector is 0, as in PyTorch).

    >>> tg.tensor([3.0, -4.0]).norm()
    tensor(5.)
    """
    from . import linalg  # (linalg is built on this module; torch.norm calls it likewise)

    if p == "nuc":
        return linalg.matrix_norm(x, "nuc", (-2, -1) if dim is None else dim, keepdim,
                                  dtype=dtype)
    if p == "fro":
        p = 2
    if isinstance(p, str) or not isinstance(p, (int, float, np.number)):
        raise ValueError(f"norm: p must be a number, inf, -inf, 'fro' or 'nuc', got {p!r}")
    return linalg.vector_norm(x, p, dim, keepdim, dtype=dtype)


def masked_fill(x: Tensor, mask: Any, value: Any) -> Tensor:
    """``value`` where ``mask`` is True, else ``x``."""
    return where(mask, _operand(value, x).to(x.dtype), x)


def any(x: Tensor, dim: Any = None, keepdim: bool = False, *, axis: Any = None,
        keepdims: bool | None = None) -> Tensor:
    dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
    return (x != 0).sum(dim, keepdim) > 0


def all(x: Tensor, dim: Any = None, keepdim: bool = False, *, axis: Any = None,
        keepdims: bool | None = None) -> Tensor:
    dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
    return (x != 0).sum(dim, keepdim) == _count(x, dim)


def dot(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim != 1 or b.ndim != 1:
        raise ShapeError(f"dot: expects two 1-d tensors, got {a.shape} and {b.shape}")
    return a @ b


def flip(x: Tensor, *args: Any, dims: Any = None) -> Tensor:
    """Reverse the order of the elements along ``dims``: ``x.flip(0, 1)``,
    ``x.flip((0, 1))`` or ``flip(x, dims=[0])``, as in PyTorch."""
    if dims is None:
        dims = args[0] if len(args) == 1 else args
    elif args:
        raise TypeError("flip: give the dims once (positionally or as dims=)")
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    axes = normalize_axes("flip", dims, x.ndim)
    return x[tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(x.ndim))]


def roll(x: Tensor, shifts: Any, dims: Any = None) -> Tensor:
    """Shift elements along ``dims``, wrapping around (flattened when ``dims`` is None)."""
    if dims is None:
        return roll(x.flatten(), shifts, 0).reshape(x.shape)
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    for s, d in zip(shifts, dims):
        d = d % x.ndim
        n = x.shape[d]
        if n == 0 or s % n == 0:
            continue
        k = s % n
        head = x[(slice(None),) * d + (slice(n - k, None),)]
        tail = x[(slice(None),) * d + (slice(0, n - k),)]
        x = cat([head, tail], d)
    return x


def split(x: Tensor, split_size: Any, dim: int = 0) -> tuple:
    """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or of the sizes listed."""
    d = dim % x.ndim
    n = x.shape[d]
    sizes = split_size if isinstance(split_size, (list, tuple)) else \
        [split_size] * (n // split_size) + ([n % split_size] if n % split_size else [])
    if builtins.sum(sizes) != n:
        raise ShapeError(f"split: sizes {list(sizes)} do not add up to {n} (dim {dim} of "
                         f"{x.shape})")
    out, start = [], 0
    for size in sizes:
        out.append(x[(slice(None),) * d + (slice(start, start + size),)])
        start += size
    return tuple(out)


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple:
    n = x.shape[dim % x.ndim]
    return split(x, -(-n // chunks) if n else 1, dim)


def tensor_split(x: Tensor, indices_or_sections: Any, dim: int = 0) -> tuple:
    """Views along ``dim``: ``sections`` pieces as equal as can be (the first ``n % sections``
    one longer), or the pieces between the listed indices, as ``torch.tensor_split``."""
    d = check_dim("tensor_split", dim, x.shape)
    n = x.shape[d]
    if isinstance(indices_or_sections, int):
        k = indices_or_sections
        if k < 1:
            raise ValueError(f"tensor_split: the number of sections must be at least 1, "
                             f"got {k}")
        sizes = [n // k + (i < n % k) for i in range(k)]
        cuts = [builtins.sum(sizes[:i]) for i in range(1, k)]
    else:
        cuts = [int(c) for c in indices_or_sections]
    # the pieces are x[0:c0], x[c0:c1], ..., x[ck:]: Python's slices, so negative indices,
    # indices past the end and indices that go back give what PyTorch's do
    return tuple(x[(slice(None),) * d + (slice(a, b),)]
                 for a, b in zip([0, *cuts], [*cuts, None]))


def _split_along(name: str, dim: int, least: int):
    def fn(x: Tensor, indices_or_sections: Any) -> tuple:
        if x.ndim < least:
            raise ShapeError(f"{name}: needs a tensor of at least {least} dimensions, got "
                             f"shape {x.shape}")
        d = dim if x.ndim > 1 or least > 1 else 0
        if isinstance(indices_or_sections, int) and x.shape[d] % indices_or_sections:
            raise ShapeError(f"{name}: dimension {d} of size {x.shape[d]} does not split into "
                             f"{indices_or_sections} equal parts; use tensor_split")
        return tensor_split(x, indices_or_sections, d)

    fn.__name__ = name
    fn.__doc__ = f"``tensor_split`` along dimension {dim}, into equal parts when a number."
    return fn


hsplit = _split_along("hsplit", 1, 1)
vsplit = _split_along("vsplit", 0, 2)
dsplit = _split_along("dsplit", 2, 3)


def repeat(x: Tensor, *sizes: Any) -> Tensor:
    """Tile ``x``: ``sizes[i]`` copies along dimension ``i`` (PyTorch's ``repeat``)."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    if len(sizes) < x.ndim:
        raise ShapeError(f"repeat: needs at least {x.ndim} sizes for shape {x.shape}")
    x = x.reshape((1,) * (len(sizes) - x.ndim) + tuple(x.shape))
    paired = tuple(v for n in x.shape for v in (1, n))
    grown = tuple(v for r, n in zip(sizes, x.shape) for v in (r, n))
    return x.reshape(paired).expand(grown).reshape(tuple(r * n for r, n in zip(sizes,
                                                                              x.shape)))


def cumsum(x: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    """Running sums along ``dim``: for floats a product with a triangular matrix of ones
    (one BLAS call); integers and bools stay exact, as int64 (a scan of additions)."""
    x = _integer_result(x, dtype)
    if x.dtype.kind != "f":
        return _scan(x, dim, lambda a, b: a + b, 0)
    if x.ndim == 0:
        return x
    d = check_dim("cumsum", dim, x.shape)
    n = x.shape[d]
    lower = _leaf(np.tril(np.ones((n, n), dtype=x.dtype)))
    moved = x.transpose(d, -1) if d != x.ndim - 1 else x
    out = moved @ lower.T
    return out.transpose(d, -1) if d != x.ndim - 1 else out


Sorted = namedtuple("Sorted", ["values", "indices"])


def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
    """(values, indices), sorted along ``dim``; the gradient follows the values. The sort
    is always stable (equal elements keep their order)."""
    if x.ndim == 0:
        check_dim("sort", dim, ())
        return Sorted(x, _leaf(np.zeros((), np.int64)))
    d = check_dim("sort", dim, x.shape)
    indices = apply(P["argsort"], x, axis=d, descending=descending)
    return Sorted(take_along_dim(x, indices, d), indices)


def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
    """The ``k`` largest (or smallest) values along ``dim`` and their indices (always
    sorted)."""
    if x.ndim == 0:
        return sort(x, dim)
    d = check_dim("topk", dim, x.shape)
    if not 0 <= k <= x.shape[d]:
        raise ShapeError(f"topk: k={k} is out of range for dimension {dim} of {x.shape}")
    values, indices = sort(x, d, descending=largest)
    index = (slice(None),) * d + (slice(0, k),)
    return Sorted(values[index], indices[index])


def _unary_inplace(name: str):
    def method(x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        return x._inplace(lambda s: getattr(s, name)(*args, **kwargs))

    method.__name__ = name + "_"
    return method


# ---------------------------------------------------------------- logic
# The logical_* functions take any nonzero value as True. The operators & | ^ ~ are these on
# bool tensors (masks), and bitwise (below) on integers, as in PyTorch. Bools multiply as
# "and" and add as "or", so each is one primitive.


def _truth(x: Any) -> Tensor:
    x = _t(x)
    return x if x.dtype == np.bool_ else x != 0


def logical_and(a: Any, b: Any) -> Tensor:
    return _truth(a) * _truth(b)


def logical_or(a: Any, b: Any) -> Tensor:
    return _truth(a) + _truth(b)


def logical_xor(a: Any, b: Any) -> Tensor:
    return _truth(a) != _truth(b)


def logical_not(a: Any) -> Tensor:
    return _truth(a) == False  # noqa: E712  (elementwise)


# Bit operations of integers (and bools), each one primitive (ops/elementwise.py INTEGER):
# the operands promoted as PyTorch does (int32 & int64 is int64, a Python int keeps the
# tensor's dtype), then the primitive.


def _integer_op(name: str) -> Any:
    def fn(input: Any, other: Any) -> Tensor:
        a, b = _promoted(input, other)
        return apply(P[name], a, b)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``torch.{name}`` of two integer (or bool) tensors or numbers, elementwise."
    return fn


bitwise_and = _integer_op("bitwise_and")
bitwise_or = _integer_op("bitwise_or")
bitwise_xor = _integer_op("bitwise_xor")
bitwise_left_shift = _integer_op("bitwise_left_shift")
bitwise_right_shift = _integer_op("bitwise_right_shift")
gcd = _integer_op("gcd")
lcm = _integer_op("lcm")


def bitwise_not(input: Tensor) -> Tensor:
    """Each bit flipped (``~x``; for bools, not), as ``torch.bitwise_not``."""
    return apply(P["bitwise_not"], _t(input))


_BITWISE = {"&": bitwise_and, "|": bitwise_or, "^": bitwise_xor, "~": bitwise_not,
            "<<": bitwise_left_shift, ">>": bitwise_right_shift}


def _mask_operator(symbol: str, fn: Any, reverse: bool = False) -> Any:
    """The operator ``symbol``: ``fn`` (the logical op) on bool masks, the bitwise op on
    integers."""
    def method(x: Tensor, *other: Any) -> Any:
        kinds = set()
        for v in (x, *other):
            if not isinstance(v, (Tensor, np.ndarray, builtins.bool, int, float, list, tuple,
                                  np.number, np.bool_)):
                return NotImplemented
            kinds.add((v.dtype if isinstance(v, Tensor) else np.asarray(v).dtype).kind)
        if kinds - {"b", "i", "u"}:
            raise TypeError(
                f"{symbol} works on bool tensors (masks) and integers, got a float; compare "
                f"first (x > 0), or use tg.logical_and/or/xor/not, which take any nonzero as "
                f"True")
        op = fn if kinds == {"b"} and fn is not None else _BITWISE[symbol]
        return op(*other, x) if reverse else op(x, *other)

    return method


MASK_OPERATORS = {
    "__and__": _mask_operator("&", logical_and), "__rand__": _mask_operator("&", logical_and),
    "__or__": _mask_operator("|", logical_or), "__ror__": _mask_operator("|", logical_or),
    "__xor__": _mask_operator("^", logical_xor), "__rxor__": _mask_operator("^", logical_xor),
    "__invert__": _mask_operator("~", logical_not),
    "__lshift__": _mask_operator("<<", None), "__rlshift__": _mask_operator("<<", None, True),
    "__rshift__": _mask_operator(">>", None), "__rrshift__": _mask_operator(">>", None, True),
    "logical_and": logical_and, "logical_or": logical_or, "logical_xor": logical_xor,
    "logical_not": logical_not,
}



stack = stack
cat = cat


# ---------------------------------------------------------------- PyTorch parity (issue 17)
# Composites of the ops above, with torch.nn.functional's signatures and defaults.


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """``x`` where positive, ``negative_slope * x`` elsewhere.

    >>> F.leaky_relu(tg.tensor([-2.0, 3.0]))
    tensor([-0.0200,  3.0000])
    """
    return where(x > 0, x, x * negative_slope)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere."""
    # expm1 of min(x, 0): the unused branch never overflows, so its gradient stays 0, not nan.
    return where(x > 0, x, clamp(x, max=0.0).expm1() * alpha)


def _pieces(x: Tensor, *branches: tuple) -> Tensor:
    """``x`` piecewise: each branch (condition, value) in turn, the last value else. The
    value of a branch that does not apply contributes no gradient, so at a boundary the
    gradient is that of the branch taken (PyTorch's backward formulas decide which)."""
    out = branches[-1]
    for cond, value in reversed(branches[:-1]):
        out = where(cond, value, out)
    return out


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """``x`` clamped to [min_val, max_val]; its gradient is 0 at the ends, as in PyTorch
    (``clamp``'s is 1 there)."""
    return _pieces(x, (x <= min_val, _constant_like(x, min_val)),
                   (x >= max_val, _constant_like(x, max_val)), x)


def relu6(x: Tensor) -> Tensor:
    """``min(max(x, 0), 6)``."""
    return hardtanh(x, 0.0, 6.0)


def hardsigmoid(x: Tensor) -> Tensor:
    """0 below -3, 1 above 3, ``x / 6 + 1 / 2`` between."""
    return _pieces(x, (x <= -3, _constant_like(x, 0.0)), (x >= 3, _constant_like(x, 1.0)),
                   x / 6 + 0.5)


def hardswish(x: Tensor) -> Tensor:
    """``x * hardsigmoid(x)``: 0 up to -3, ``x`` from 3 on (with those pieces' gradients at
    -3 and 3, as in PyTorch), ``x (x + 3) / 6`` between."""
    return _pieces(x, (x <= -3, x * 0), (x >= 3, x), x * (x + 3) / 6)


def selu(x: Tensor) -> Tensor:
    """``scale * elu(x, alpha)`` with the self-normalizing constants."""
    return elu(x, 1.6732632423543772848170429916717) * 1.0507009873554804934193349852946


def celu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """``x`` where positive, ``alpha * (exp(x / alpha) - 1)`` elsewhere."""
    return where(x > 0, x, (clamp(x, max=0.0) / alpha).expm1() * alpha)


def softsign(x: Tensor) -> Tensor:
    """``x / (1 + |x|)``."""
    return x / (x.abs() + 1)


def tanhshrink(x: Tensor) -> Tensor:
    """``x - tanh(x)``."""
    return x - x.tanh()


def hardshrink(x: Tensor, lambd: float = 0.5) -> Tensor:
    """``x`` where ``|x| > lambd``, else 0."""
    return where((x > lambd) | (x < -lambd), x, x * 0)


def softshrink(x: Tensor, lambd: float = 0.5) -> Tensor:
    """``x`` moved ``lambd`` towards 0, and 0 within ``lambd`` of it."""
    if lambd < 0:
        raise ValueError(f"softshrink: lambd must be >= 0, got {lambd}")
    return _pieces(x, (x > lambd, x - lambd), (x < -lambd, x + lambd), x * 0)


def threshold(x: Tensor, threshold: float, value: float) -> Tensor:
    """``x`` where ``x > threshold``, else ``value``."""
    return where(x > threshold, x, _constant_like(x, value))


def mish(x: Tensor) -> Tensor:
    """``x * tanh(softplus(x))``."""
    return x * softplus(x).tanh()


def glu(x: Tensor, dim: int = -1) -> Tensor:
    """The gated linear unit: the first half of ``dim`` times the sigmoid of the second."""
    d = check_dim("glu", dim, x.shape)
    if x.shape[d] % 2:
        raise ShapeError(f"glu: halving dimension {d} of a tensor of shape {x.shape} needs an "
                         f"even size, got {x.shape[d]}")
    a, b = x.chunk(2, d)
    return a * b.sigmoid()


def softmin(x: Tensor, dim: int | None = None, *, dtype: Any = None) -> Tensor:
    """``softmax(-x, dim)``."""
    if dim is None:
        raise TypeError("softmin: pass dim= (PyTorch picks one from the number of dimensions "
                        "only with a warning)")
    return softmax(-x, dim, dtype=dtype)


def _constant_like(x: Tensor, value: float) -> Tensor:
    return _operand(value, x).expand(x.shape) if x.ndim else _operand(value, x)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """``input / max(||input||_p, eps)`` along ``dim``.

    >>> F.normalize(tg.tensor([[3.0, 4.0]]))
    tensor([[0.6000, 0.8000]])
    """
    return input / clamp(norm(input, p, dim, keepdim=True), min=eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Cosine of the angle between ``x1`` and ``x2`` along ``dim`` (they broadcast); each
    norm is clamped at ``eps``, as PyTorch does."""
    x2 = _operand(x2, x1)
    try:
        shape = np.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise ShapeError(f"cosine_similarity: x1 {x1.shape} and x2 {x2.shape} do not "
                         f"broadcast") from None
    if not -len(shape) <= dim < builtins.max(len(shape), 1):
        raise ShapeError(f"cosine_similarity: dim={dim} is out of range for shape {shape}")
    n1 = clamp(norm(x1, 2, dim, keepdim=True), min=eps)
    n2 = clamp(norm(x2, 2, dim, keepdim=True), min=eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def _same_shape(input: Tensor, target: Any, op: str) -> Tensor:
    target = _operand(target, input)
    if input.shape != target.shape:
        raise ShapeError(f"{op}: input {input.shape} and target {target.shape} differ; give "
                         f"the target the input's shape")
    return target


def smooth_l1_loss(input: Tensor, target: Any, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """``0.5 d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``d = input -
    target``); ``beta=0`` is the L1 loss."""
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    d = abs(input - _same_shape(input, target, "smooth_l1_loss"))
    if beta == 0:
        return _reduce(d, reduction, "smooth_l1_loss")
    loss = where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta)
    return _reduce(loss, reduction, "smooth_l1_loss")


def huber_loss(input: Tensor, target: Any, reduction: str = "mean",
               delta: float = 1.0) -> Tensor:
    """``0.5 d**2`` where ``|d| <= delta``, else ``delta (|d| - 0.5 delta)``."""
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta}")
    d = abs(input - _same_shape(input, target, "huber_loss"))
    loss = where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta)
    return _reduce(loss, reduction, "huber_loss")


def kl_div(input: Tensor, target: Any, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """KL divergence ``target * (log target - input)`` with ``input`` log-probabilities
    (``target`` too if ``log_target``); ``0 log 0 = 0``. ``reduction="batchmean"`` divides
    the sum by the batch size (the true KL); ``"mean"`` averages over every element, as
    PyTorch does."""
    target = _same_shape(input, target, "kl_div")
    if log_target:
        loss = target.exp() * (target - input)
    else:
        positive = target > 0
        safe = where(positive, target, _operand(1.0, target))
        loss = where(positive, target * safe.log(), _operand(0.0, target)) - target * input
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction, "kl_div")


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Any = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None) -> Tensor:
    """``softmax(q @ k^T * scale + mask) @ v`` over (..., L, E), (..., S, E), (..., S, Ev).

    ``attn_mask`` is a bool mask (True = may attend) or a float mask added to the scores;
    ``is_causal`` lets position i attend to positions <= i; ``scale`` defaults to
    ``1/sqrt(E)``.

    >>> q = tg.randn(2, 4, 8)
    >>> F.scaled_dot_product_attention(q, q, q, is_causal=True).shape
    (2, 4, 8)
    """
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2 or query.shape[-1] != key.shape[-1] \
            or key.shape[-2] != value.shape[-2]:
        raise ShapeError(
            f"scaled_dot_product_attention: query {query.shape}, key {key.shape} and value "
            f"{value.shape} must be (..., L, E), (..., S, E) and (..., S, Ev)"
        )
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal, not both")
    L, S = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = (query @ key.transpose(-2, -1)) * scale
    if is_causal:  # (-inf above the diagonal, added: as PyTorch, and far faster than where)
        scores = scores + _leaf(np.triu(np.full((L, S), -np.inf, dtype=scores.dtype), 1))
    elif attn_mask is not None:
        mask = attn_mask if isinstance(attn_mask, Tensor) else Tensor(attn_mask)
        if mask.dtype == np.bool_:  # the (small) mask made additive, then one add
            zeros = _leaf(np.zeros((), dtype=scores.dtype))
            mask = masked_fill(zeros, logical_not(mask), -math.inf)
        scores = scores + mask
    attn = softmax(scores, -1)
    if dropout_p > 0.0:
        attn = dropout(attn, dropout_p, True)
    return attn @ value


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize (N, C, ...) over each group of ``C / num_groups`` channels and the spatial
    dimensions, then scale and shift per channel."""
    if input.ndim < 2 or input.shape[1] % num_groups:
        raise ShapeError(
            f"group_norm: input {input.shape} must be (N, C, ...) with C divisible by "
            f"num_groups={num_groups}"
        )
    n, c = input.shape[0], input.shape[1]
    g = input.reshape(n, num_groups, -1)
    mu = mean(g, 2, keepdim=True)
    centered = g - mu
    v = mean(centered * centered, 2, keepdim=True)
    out = (centered / (v + eps).sqrt()).reshape(input.shape)
    shape = (1, c) + (1,) * (input.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def _adaptive_avg(x: Tensor, dim: int, out: int) -> Tensor:
    size = x.shape[dim]
    if size % out == 0:
        k = size // out
        return mean(x.reshape(x.shape[:dim] + (out, k) + x.shape[dim + 1:]), dim + 1)
    # PyTorch's windows: [floor(i*size/out), ceil((i+1)*size/out)) for output i.
    pieces = []
    for i in range(out):
        lo, hi = (i * size) // out, -((-(i + 1) * size) // out)
        index = (slice(None),) * dim + (slice(lo, hi),)
        pieces.append(mean(x[index], dim, keepdim=True))
    return cat(pieces, dim)


def _output_sizes(x: Tensor, output_size: Any, nd: int, op: str) -> tuple:
    """An adaptive pool's checked output sizes: ``output_size`` an int or ``nd`` entries,
    None keeping that side of ``x`` (N, C, *spatial) or (C, *spatial)."""
    dims = _dims(nd)
    if not isinstance(x, Tensor) or x.ndim not in (nd + 1, nd + 2):
        raise ShapeError(f"{op}: expects input (N, C, {dims}) or (C, {dims}), got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    sizes = (output_size,) * nd if output_size is None or isinstance(
        output_size, (int, np.integer)) else tuple(output_size)
    if len(sizes) != nd:
        raise ValueError(f"{op}: output_size must be an int or a tuple of {nd}, got "
                         f"{output_size!r}")
    sizes = tuple(n if o is None else o for o, n in zip(sizes, x.shape[-nd:]))
    if builtins.any(not isinstance(o, (int, np.integer)) or o < 1 for o in sizes):
        raise ValueError(f"{op}: output_size must be positive ints (or None for 'keep'), "
                         f"got {output_size!r}")
    return tuple(int(o) for o in sizes)


def _adaptive_avg_pool(x: Tensor, output_size: Any, nd: int, op: str) -> Tensor:
    """The 1-, 2- and 3-d adaptive average pools: one dimension at a time (an average of
    averages over disjoint boxes)."""
    sizes = _output_sizes(x, output_size, nd, op)
    for i, out in enumerate(sizes):
        x = _adaptive_avg(x, x.ndim - nd + i, out)
    return x


def adaptive_avg_pool2d(x: Tensor, output_size: Any) -> Tensor:
    """Average (N, C, H, W) or (C, H, W) down to ``output_size`` (an int, or a pair whose
    entries may be None for "keep"), with PyTorch's windows."""
    return _adaptive_avg_pool(x, output_size, 2, "adaptive_avg_pool2d")


def unflatten(x: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    """Split dimension ``dim`` into ``sizes`` (one entry may be -1)."""
    d = dim % x.ndim
    return x.reshape(x.shape[:d] + tuple(sizes) + x.shape[d + 1:])


__all__ += [
    "leaky_relu", "elu", "hardtanh", "relu6", "hardsigmoid", "hardswish", "selu", "celu",
    "softsign", "tanhshrink", "hardshrink", "softshrink", "threshold", "mish", "glu",
    "softmin", "normalize", "cosine_similarity", "smooth_l1_loss", "huber_loss",
    "kl_div", "scaled_dot_product_attention", "group_norm", "adaptive_avg_pool2d", "unflatten",
]


# ---------------------------------------------------------------- PyTorch parity: tensor ops
# (issue 17 item 3) Every one a composite of the primitives, so each differentiates to any
# order, traces and compiles; none is a primitive of its own. Index arrays that only depend
# on shapes (aranges, triangular masks) are constants; index tensors are operands.


def _indices(index: Any, size: int, op: str, what: str = "index") -> Tensor:
    """``index`` as an int64 tensor of positions into a dimension of ``size``. Out of range
    (negative included, as PyTorch's gather/scatter/index_select refuse them) raises
    IndexError, in a compiled function too (on each call's values)."""
    idx = index if isinstance(index, Tensor) else Tensor(index)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: {what} must be an integer tensor (int64), got {idx.dtype}")
    if idx.dtype != np.int64:
        idx = idx.long()
    return checked(idx, "in_range", (0, size), IndexError,
                   f"{op}: {what} {{bad}} is out of range for a dimension of size {size}; "
                   f"give indices in [0, {size - 1}]")


def _along(op: str, input: Tensor, dim: int, index: Any) -> tuple:
    """For gather/scatter along ``dim``: (dim, index tensor, the full index of ``input``'s
    elements that ``index`` names: ``index`` along ``dim``, aranges elsewhere)."""
    d = check_dim(op, dim, input.shape)
    size = input.shape[d] if input.ndim else 1
    idx = _indices(index, size, op)
    if idx.ndim != input.ndim:
        raise ShapeError(f"{op}: index has {idx.ndim} dimension(s) but the input {input.shape} "
                         f"has {input.ndim}; they must have the same number")
    for k, (m, n) in enumerate(zip(idx.shape, input.shape)):
        if k != d and m > n:
            raise ShapeError(f"{op}: index {idx.shape} is larger than the input {input.shape} "
                             f"in dimension {k}")
    if input.ndim == 0:
        return d, idx, (idx.reshape(1),)
    full = []
    for k, m in enumerate(idx.shape):
        if k == d:
            full.append(idx)
        else:
            shape = [1] * idx.ndim
            shape[k] = m
            full.append(_leaf(np.arange(m, dtype=np.int64).reshape(shape)))
    return d, idx, tuple(full)


def _slots(n: int) -> tuple:
    from .ops.movement import SLOT

    return (SLOT,) * n


def gather(input: Tensor, dim: int, index: Any, *, sparse_grad: bool = False) -> Tensor:
    """``out[i][j] = input[index[i][j]][j]`` (for dim 0), as ``torch.gather``; the gradient
    is scattered back (added where an index repeats).

    >>> tg.gather(tg.tensor([[1., 2.], [3., 4.]]), 1, tg.tensor([[1], [0]]))
    tensor([[2.],
            [3.]])
    """
    _, idx, full = _along("gather", input, dim, index)
    if input.ndim == 0:
        return input.reshape(1)._getitem(_slots(1), *full).reshape(())
    return input._getitem(_slots(len(full)), *full)


def _source(src: Any, input: Tensor, idx: Tensor, op: str) -> Tensor:
    """The part of ``src`` that an index of ``idx``'s shape scatters (PyTorch reads the
    leading corner), in the input's dtype; a number is broadcast."""
    if not isinstance(src, Tensor):
        return _operand(src, input).to(input.dtype)
    if src.ndim != idx.ndim or builtins.any(s < m for s, m in zip(src.shape, idx.shape)):
        raise ShapeError(f"{op}: src {src.shape} must have the index's number of dimensions "
                         f"and be at least as large as the index {idx.shape} in each")
    if src.shape != idx.shape:
        src = src[tuple(slice(0, m) for m in idx.shape)]
    if src.dtype != input.dtype:
        raise TypeError(f"{op}: src is {src.dtype} but the input is {input.dtype}; cast one")
    return src


def scatter(input: Tensor, dim: int, index: Any, src: Any = None, *, value: Any = None,
            reduce: str | None = None) -> Tensor:
    """A copy of ``input`` with ``src`` (a tensor, or a number) written at ``index`` along
    ``dim``: ``out[index[i][j]][j] = src[i][j]`` (dim 0), as ``torch.scatter``. Where an
    index repeats, one of the writes wins (PyTorch leaves which unspecified too).
    ``reduce="add"`` is `scatter_add`."""
    if src is None:
        src = value
    if src is None:
        raise TypeError("scatter: give src (a tensor) or value (a number)")
    if reduce == "add":
        return scatter_add(input, dim, index, src if isinstance(src, Tensor) else
                           full_like_index(input, index, src))
    if reduce is not None:
        raise ValueError(f"scatter: reduce must be None or 'add', got {reduce!r}")
    _, idx, full = _along("scatter", input, dim, index)
    v = _source(src, input, idx, "scatter")
    if input.ndim == 0:
        return input.reshape(1)._setitem(_slots(1), v.reshape(-1) if v.ndim else v,
                                         *full).reshape(())
    return input._setitem(_slots(len(full)), v, *full)


def full_like_index(input: Tensor, index: Any, value: Any) -> Tensor:
    shape = index.shape if isinstance(index, Tensor) else np.shape(index)
    return _leaf(np.full(shape, value, dtype=input.dtype))


def scatter_add(input: Tensor, dim: int, index: Any, src: Tensor) -> Tensor:
    """``input`` plus ``src`` added at ``index`` along ``dim`` (repeated indices add up), as
    ``torch.scatter_add``."""
    _, idx, full = _along("scatter_add", input, dim, index)
    v = _source(src, input, idx, "scatter_add")
    if input.ndim == 0:
        return input + v.reshape(1)._scatter_add(_slots(1), (1,), *full).reshape(())
    return input + v._scatter_add(_slots(len(full)), tuple(input.shape), *full)


def _vector_index(op: str, input: Tensor, dim: int, index: Any) -> tuple:
    d = check_dim(op, dim, input.shape)
    idx = _indices(index, input.shape[d] if input.ndim else 1, op)
    if idx.ndim > 1:
        raise ShapeError(f"{op}: index must be 1-d, got shape {idx.shape}")
    return d, idx.reshape(-1)


def index_select(input: Tensor, dim: int, index: Any) -> Tensor:
    """The slices of ``input`` at positions ``index`` (1-d) along ``dim``.

    >>> tg.index_select(tg.arange(6).reshape(2, 3), 1, tg.tensor([2, 0]))
    tensor([[2, 0],
            [5, 3]])
    """
    d, idx = _vector_index("index_select", input, dim, index)
    if input.ndim == 0:
        return input.reshape(1)._getitem(_slots(1), idx)
    return input._getitem((slice(None),) * d + _slots(1), idx)


def index_add(input: Tensor, dim: int, index: Any, source: Tensor, *,
              alpha: Any = 1) -> Tensor:
    """``input`` with ``alpha * source[i]`` added to the slice ``index[i]`` along ``dim``
    (repeated indices add up), as ``torch.index_add``."""
    d, idx = _vector_index("index_add", input, dim, index)
    source = _operand(source, input)
    want = input.shape[:d] + (idx.shape[0],) + input.shape[d + 1:]
    if source.shape != want and not (input.ndim == 0 and source.numel() == idx.shape[0]):
        raise ShapeError(f"index_add: source has shape {source.shape}; for an input "
                         f"{input.shape} and {idx.shape[0]} indices along dim {d} it must "
                         f"be {want}")
    if source.dtype != input.dtype:
        raise TypeError(f"index_add: source is {source.dtype} but the input is {input.dtype}")
    if not (isinstance(alpha, (int, float)) and alpha == 1):
        source = source * alpha
    if input.ndim == 0:
        return input + source.reshape(-1)._scatter_add(_slots(1), (1,), idx).reshape(())
    return input + source._scatter_add((slice(None),) * d + _slots(1), tuple(input.shape), idx)


def index_put(input: Tensor, indices: Any, values: Any, accumulate: bool = False) -> Tensor:
    """``input`` with ``input[indices] = values`` done on a copy, as ``torch.index_put``:
    ``indices`` is a tuple of index tensors (int, or bool masks), one per leading dimension;
    ``values`` broadcast to the selected part. With ``accumulate=True`` the values are added
    instead, repeated indices adding up (else the last write wins, as in NumPy). Gradients
    flow to ``input`` (not to overwritten elements) and to ``values``.

    >>> tg.zeros(3).index_put((tg.tensor([0, 0, 2]),), tg.tensor(1.0), accumulate=True)
    tensor([2., 0., 1.])
    """
    if not isinstance(indices, (tuple, list)) or not builtins.all(
            isinstance(i, Tensor) for i in indices):
        raise TypeError(f"index_put: indices must be a tuple of tensors, got "
                        f"{type(indices).__name__}; write x.index_put((i, j), v)")
    for i in indices:
        if i.dtype.kind not in "biu":
            raise IndexError(f"index_put: tensors used as indices must be int or bool "
                             f"tensors, got {i.dtype}")
    values = _operand(values, input)
    if values.dtype != input.dtype:
        raise TypeError(f"index_put: values are {values.dtype} but the tensor is "
                        f"{input.dtype}; they must match (values.to({input.dtype}))")
    index, ix = _normalize_index(tuple(indices))
    try:
        target, _ = P["getitem"].infer(input, *ix, index=index)
        if np.broadcast_shapes(values.shape, target) != target:  # (no extra dims either)
            raise ValueError(f"they cannot be broadcast to the indexed part's {target}")
    except (IndexError, ValueError) as e:
        values_misfit = isinstance(e, ValueError)  # (PyTorch: IndexError for the indices)
        what = f"values of shape {values.shape}" if values_misfit else "indices"
        raise (ShapeError if values_misfit else IndexError)(
            f"index_put: {what} do not fit a tensor of shape {input.shape} indexed by "
            f"{len(indices)} tensor(s) of shape(s) {', '.join(str(i.shape) for i in indices)}"
            f": {e}") from None
    if not accumulate:
        return input._setitem(index, values, *ix)
    if values.shape != target:
        values = values.expand(target)
    return input + values._scatter_add(index, tuple(input.shape), *ix)


def masked_select(input: Tensor, mask: Any) -> Tensor:
    """The elements of ``input`` where ``mask`` (broadcast against it) is True, as a 1-d
    tensor. Its length depends on the mask's values, so in a compiled function the mask must
    be a constant (else `tg.TraceError`)."""
    mask = mask if isinstance(mask, Tensor) else Tensor(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"masked_select: the mask must be a bool tensor, got {mask.dtype}")
    try:
        shape = tuple(np.broadcast_shapes(input.shape, mask.shape))
    except ValueError:
        raise ShapeError(f"masked_select: input {input.shape} and mask {mask.shape} do not "
                         f"broadcast") from None
    m = np.broadcast_to(_static_data(mask, "masked_select (its result's length depends on "
                                           "the mask's values)"), shape)
    return input.expand(shape)._getitem((np.ascontiguousarray(m),))


def nonzero(input: Tensor, *, as_tuple: bool = False) -> Any:
    """The positions of the nonzero elements: an int64 (n, ndim) tensor, or with
    ``as_tuple=True`` one 1-d tensor per dimension. Its size depends on the values, so in a
    compiled function the input must be a constant (else `tg.TraceError`)."""
    data = _static_data(_t(input), "nonzero (its result's size depends on the values)")
    found = np.argwhere(data).astype(np.int64)
    if as_tuple:
        if data.ndim == 0:
            return (_leaf(np.zeros(found.shape[0], np.int64)),)
        return tuple(_leaf(np.ascontiguousarray(found[:, k])) for k in range(data.ndim))
    return _leaf(found)


def argwhere(input: Tensor) -> Tensor:
    return nonzero(input)


def where(condition: Any, input: Any = None, other: Any = None) -> Any:
    """``tg.where(cond, a, b)``: ``a`` where ``cond`` holds, else ``b`` (gradients flow to
    both); ``tg.where(cond)`` is ``tg.nonzero(cond, as_tuple=True)``."""
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    return _where(condition, input, other)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched matrix product of (b, n, m) and (b, m, p); no broadcasting, as in PyTorch."""
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0]:
        raise ShapeError(f"bmm: expects (b, n, m) and (b, m, p) with the same b, got "
                         f"{input.shape} and {mat2.shape}; use matmul to broadcast")
    return input @ mat2


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """Matrix product of two 2-d tensors (no broadcasting, as in PyTorch)."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise ShapeError(f"mm: expects two matrices, got shapes {input.shape} and "
                         f"{mat2.shape}; use matmul for other shapes")
    return input @ mat2


def mv(input: Tensor, vec: Tensor) -> Tensor:
    """Matrix (n, m) times vector (m,)."""
    if input.ndim != 2 or vec.ndim != 1:
        raise ShapeError(f"mv: expects a matrix and a vector, got shapes {input.shape} and "
                         f"{vec.shape}")
    return input @ vec


def outer(input: Tensor, vec2: Any) -> Tensor:
    """``input[i] * vec2[j]`` for two vectors."""
    vec2 = _operand(vec2, input)
    if input.ndim != 1 or vec2.ndim != 1:
        raise ShapeError(f"outer: expects two vectors, got shapes {input.shape} and "
                         f"{vec2.shape}")
    return input.reshape(-1, 1) * vec2.reshape(1, -1)


def _triangle(op: str, x: Tensor, keep: np.ndarray) -> Tensor:
    if x.ndim < 2:
        raise ShapeError(f"{op}: expects at least 2 dimensions, got shape {x.shape}")
    return _where(_leaf(keep), x, _leaf(np.zeros((), x.dtype)))


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dimensions (on and below ``diagonal``), zeros
    elsewhere."""
    n, m = input.shape[-2:] if input.ndim >= 2 else (0, 0)
    return _triangle("tril", input, np.tri(n, m, diagonal, dtype=bool))


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dimensions (on and above ``diagonal``)."""
    n, m = input.shape[-2:] if input.ndim >= 2 else (0, 0)
    return _triangle("triu", input, ~np.tri(n, m, diagonal - 1, dtype=bool))


def _last_dim(x: Tensor, d: int) -> Tensor:
    return x if d == x.ndim - 1 else x.movedim(d, -1)


def movedim(input: Tensor, source: Any, destination: Any) -> Tensor:
    """Move dimension(s) ``source`` to position(s) ``destination``, the others keeping
    their order."""
    src = (source,) if isinstance(source, int) else tuple(source)
    dst = (destination,) if isinstance(destination, int) else tuple(destination)
    if len(src) != len(dst):
        raise ValueError(f"movedim: source {src} and destination {dst} differ in length")
    src = tuple(check_dim("movedim", s, input.shape) for s in src)
    dst = tuple(check_dim("movedim", s, input.shape) for s in dst)
    order = [k for k in range(input.ndim) if k not in src]
    for s, t in sorted(zip(dst, src)):
        order.insert(s, t)
    return input.permute(tuple(order))


def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal of the (dim1, dim2) planes (``offset`` above the main one, below if
    negative), as the last dimension of the result. As in PyTorch it is a view, so
    ``x.diagonal().add_(eps)`` changes ``x``: when the two dimensions flatten into one
    without a copy, in either order (a contiguous matrix, its transpose, a batch of them),
    every ``m + 1``-th element of that flat view; otherwise (sliced or permuted planes) the
    elements its strides reach in its base's memory (`views.strided`). A copy only where the
    base's memory is not one C-ordered block (made from a strided NumPy array)."""
    d1, d2 = check_dim("diagonal", dim1, input.shape), check_dim("diagonal", dim2, input.shape)
    if d1 == d2:
        raise ShapeError(f"diagonal: dim1 and dim2 must differ, both are {d1}")
    # (the same elements, in the same order, are diagonal -offset of the planes (dim2, dim1))
    for a, b, k in ((d1, d2, offset), (d2, d1, -offset)):
        x = movedim(input, (a, b), (-2, -1))
        n, m = x.shape[-2:]
        strides = x._data.strides
        if n <= 1 or m <= 1 or strides[-2] == m * strides[-1]:  # the flat view needs no copy
            length = builtins.max(0, builtins.min(n + builtins.min(k, 0), m - builtins.max(k, 0)))
            start = k if k >= 0 else -k * m
            flat = x.reshape(*x.shape[:-2], n * m)
            return flat[..., start:start + length * (m + 1):m + 1]
    x = movedim(input, (d1, d2), (-2, -1))
    n, m = x.shape[-2:]
    length = builtins.max(0, builtins.min(n + builtins.min(offset, 0), m - builtins.max(offset, 0)))
    *lead, s1, s2 = x._data.strides
    view = strided(x, x.shape[:-2] + (length,), (*lead, s1 + s2),
                   builtins.max(-offset, 0) * s1 + builtins.max(offset, 0) * s2)
    if view is not None:
        return view
    rows = np.arange(length, dtype=np.int64) - builtins.min(offset, 0)
    cols = np.arange(length, dtype=np.int64) + builtins.max(offset, 0)
    return x._getitem((Ellipsis,) + _slots(2), _leaf(rows), _leaf(cols))


def _unfold(input: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """``Tensor.unfold``: the windows of ``size`` elements, ``step`` apart, along
    ``dimension``, which becomes the number of windows; each window is a new last dimension.

    >>> tg.arange(5.0).unfold(0, 2, 2)
    tensor([[0., 1.],
            [2., 3.]])

    As in PyTorch it is a view (``x.unfold(0, 2, 2).zero_()`` changes ``x``; gradients of
    every order): disjoint windows are a slice, a reshape and a slice; overlapping ones
    (``step < size``) are strided over the base's memory (`views.strided`), and read-only: an
    in-place op on them is refused, as PyTorch refuses it. (A copy only where the base's
    memory is not one C-ordered block: made by the im2col primitive, whose gradient, col2im,
    sums the overlapping windows.)
    (Not ``tg.nn.functional.unfold``, which PyTorch makes the im2col of a batch of images.)
    """
    d = check_dim("unfold", dimension, input.shape)
    length = input.shape[d] if input.ndim else 1
    if step <= 0:
        raise ValueError(f"unfold: step is {step} but must be > 0")
    if not 0 <= size <= length:
        raise ShapeError(f"unfold: windows of size {size} do not fit dimension {d} of a "
                         f"tensor of shape {input.shape} (length {length}); use a size in "
                         f"[0, {length}]")
    if input.ndim == 0:
        return input.reshape(1)
    n = (length - size) // step + 1
    lead = (slice(None),) * d
    if n == 1:  # one window: a view
        return input[lead + (slice(0, size),)].unsqueeze(d).movedim(d + 1, -1)
    if size <= step and n * step <= length:  # disjoint windows: a view
        tiles = input[lead + (slice(0, n * step),)]
        tiles = tiles.reshape(input.shape[:d] + (n, step) + input.shape[d + 1:])
        return tiles[lead + (slice(None), slice(0, size))].movedim(d + 1, -1)
    s = input._data.strides
    view = strided(input, input.shape[:d] + (n,) + input.shape[d + 1:] + (size,),
                   s[:d] + (step * s[d],) + s[d + 1:] + (s[d],))
    if view is not None:
        return view
    if size == 0:  # empty windows (im2col has none), one more than the length
        return input.reshape(-1)[:0].reshape(input.shape[:d] + (n,) + input.shape[d + 1:] + (0,))
    rows = input.movedim(d, 0).unsqueeze(0)  # (1, L, *rest): im2col's (C, *spatial, *rest)
    cols = rows._im2col((size,), (step,), (1,))[:, 0]  # (size, n, *rest)
    return cols.movedim(1, d + 1).movedim(0, -1)


def as_strided(input: Tensor, size: Sequence[int], stride: Sequence[int],
               storage_offset: int | None = None) -> Tensor:
    """PyTorch's ``as_strided``: the elements of ``input``'s memory (its base's) at
    ``storage_offset + sum(i_k * stride[k])`` for i in ``size``, counted in elements, as a view
    (read-only where two elements are one location). ``storage_offset`` defaults to
    ``input.storage_offset()``. Sliding windows, for one:

    >>> tg.arange(5.0).as_strided((3, 2), (1, 1))
    tensor([[0., 1.],
            [1., 2.],
            [2., 3.]])
    """
    size = tuple(int(n) for n in size)
    stride = tuple(int(s) for s in stride)
    if len(size) != len(stride) or builtins.any(n < 0 for n in size):
        raise ShapeError(f"as_strided: needs one stride per dimension and sizes >= 0, got "
                         f"size {size} and stride {stride}")
    if builtins.any(s < 0 for s in stride):
        raise ValueError(f"as_strided: negative strides are not supported (nor in PyTorch), "
                         f"got stride {stride}; flip() the result instead")
    here = input.storage_offset()
    offset = here if storage_offset is None else int(storage_offset)
    if offset < 0:
        raise ValueError(f"as_strided: storage_offset must be >= 0, got {offset}")
    item = input.element_size()
    view = strided(input, size, tuple(s * item for s in stride), (offset - here) * item)
    if view is not None:
        return view
    owner = views_memory(input)[0]
    if not owner._data.flags.c_contiguous:
        raise RuntimeError(f"as_strided: the memory of this tensor (of shape {input.shape}) "
                           f"is not one C-ordered block (its base was made from a strided "
                           f"NumPy array); call .contiguous() first")
    n = owner._data.size
    hi = offset + builtins.sum((d - 1) * s for d, s in zip(size, stride))
    raise ShapeError(f"as_strided: size {size}, stride {stride} and storage_offset {offset} "
                     f"reach element {hi} of a memory of {n} elements (its base's, of shape "
                     f"{owner.shape}); they must stay below {n}")


def fill_diagonal_(input: Tensor, fill_value: Any, wrap: bool = False) -> Tensor:
    """Set the main diagonal of a matrix (or of a tensor whose dimensions are all equal) to
    ``fill_value``, in place, as ``torch.Tensor.fill_diagonal_``; with ``wrap``, a tall
    matrix's diagonal starts again below every ``m + 1`` rows."""
    if input.ndim < 2 or (input.ndim > 2 and len(set(input.shape)) != 1):
        raise ShapeError(f"fill_diagonal_: needs a matrix or a tensor whose dimensions are "
                         f"all equal, got shape {input.shape}")
    if input.ndim == 2 and not wrap:
        input.diagonal().fill_(fill_value)
        return input
    n, m = input.shape[0], input.shape[-1]
    step = builtins.sum(m ** k for k in range(input.ndim))  # (i, i, ..., i) in C order
    stop = input.numel() if wrap or input.ndim > 2 else builtins.min(n, m) * step
    rows = _leaf(np.arange(0, stop, step, dtype=np.int64))
    input.view(-1)[rows] = fill_value  # (refuses a tensor that cannot be flattened)
    return input


def trace(input: Tensor) -> Tensor:
    """The sum of a matrix's diagonal."""
    if input.ndim != 2:
        raise ShapeError(f"trace: expects a matrix, got shape {input.shape}")
    return diagonal(input).sum()


def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """A vector's square matrix with it on diagonal ``diagonal``; a matrix's diagonal."""
    if input.ndim == 2:
        return globals()["diagonal"](input, diagonal)
    if input.ndim != 1:
        raise ShapeError(f"diag: expects a vector or a matrix, got shape {input.shape}")
    n = input.shape[0] + builtins.abs(diagonal)
    ar = np.arange(input.shape[0], dtype=np.int64)
    rows, cols = ar - builtins.min(diagonal, 0), ar + builtins.max(diagonal, 0)
    return input._scatter_add(_slots(2), (n, n), _leaf(rows), _leaf(cols))


def _integer_result(x: Tensor, dtype: Any = None) -> Tensor:
    """``x`` in the dtype a sum/prod/cumsum/cumprod computes in: ``dtype`` if given, else
    int64 for bools and integers (PyTorch's)."""
    if dtype is not None:
        return x.to(dtype)
    return x.long() if x.dtype.kind in "biu" and x.dtype != np.int64 else x


def _product_last(x: Tensor) -> Tensor:
    """The product over the last dimension, multiplying halves (log n steps), so every
    gradient (at zeros too, to any order) comes from plain products."""
    n = x.shape[-1]
    if n == 0:  # the product of nothing is 1 (kept in the graph, with a zero-size gradient)
        return x.sum(-1) * 0 + 1
    while n > 1:
        half = n // 2
        y = x[..., :half] * x[..., half:2 * half]
        x = cat([y, x[..., 2 * half:]], -1) if n % 2 else y
        n = x.shape[-1]
    return x[..., 0]


def prod(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """The product of all elements, or along ``dim``; exact gradients where elements are 0.

    >>> tg.tensor([[1., 2.], [3., 4.]]).prod(1)
    tensor([ 2., 12.])
    """
    x = _integer_result(input, dtype)
    if dim is None:
        return _product_last(x.reshape(-1))
    d = check_dim("prod", dim, x.shape)
    if x.ndim == 0:
        return x
    out = _product_last(_last_dim(x, d))
    return out.unsqueeze(d) if keepdim else out


def _scan(x: Tensor, dim: int, combine: Any, identity: Any) -> Tensor:
    """Inclusive scan along ``dim`` (Hillis-Steele: log n steps of ``combine`` with a copy
    shifted by 1, 2, 4, ... and filled with ``identity``)."""
    if x.ndim == 0:
        return x
    d = check_dim("scan", dim, x.shape)
    y = _last_dim(x, d)
    n, k = y.shape[-1], 1
    while k < n:
        fill = _leaf(np.full(y.shape[:-1] + (k,), identity, dtype=y.dtype))
        y = combine(y, cat([fill, y[..., :n - k]], -1))
        k *= 2
    return y if d == x.ndim - 1 else y.movedim(-1, d)


def cumprod(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    """Running products along ``dim`` (exact gradients at zeros too)."""
    x = _integer_result(input, dtype)
    return _scan(x, dim, lambda a, b: a * b, 1)


def _round(input: Tensor, *, decimals: int = 0) -> Tensor:
    """Round half to even (as PyTorch and NumPy), to ``decimals`` places. No gradient (it is
    zero almost everywhere)."""
    if decimals == 0:
        return apply(P["round"], input)
    scale = 10.0 ** decimals
    return apply(P["round"], input * scale) / scale


def trunc(input: Tensor) -> Tensor:
    """Round toward zero."""
    return _where(input >= 0, input.floor(), input.ceil())


def frac(input: Tensor) -> Tensor:
    """``input - trunc(input)`` (its gradient is 1)."""
    return input - trunc(input).detach()


def contiguous(input: Tensor, memory_format: Any = None) -> Tensor:
    """This tensor if its elements are laid out in C order, else a C-ordered copy (so that
    ``.view`` works on it), as in PyTorch."""
    if input._data.flags.c_contiguous:
        return input
    flat = input.reshape(-1)
    if np.may_share_memory(flat._data, input._data):  # (evenly spaced elements: still a view)
        flat = flat._getitem(_slots(1), _leaf(np.arange(flat._data.size, dtype=np.int64)))
    return flat.reshape(input.shape)


def view_as(input: Tensor, other: Tensor) -> Tensor:
    return input.view(other.shape)


def reshape_as(input: Tensor, other: Tensor) -> Tensor:
    return input.reshape(other.shape)


def select(input: Tensor, dim: int, index: int) -> Tensor:
    """The slice at ``index`` along ``dim`` (that dimension removed), a view."""
    d = check_dim("select", dim, input.shape)
    return input[(slice(None),) * d + (index,)]


def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    """``length`` elements from ``start`` along ``dim``, a view."""
    d = check_dim("narrow", dim, input.shape)
    n = input.shape[d]
    start = start + n if start < 0 else start
    if not 0 <= start <= start + length <= n:
        raise IndexError(f"narrow: start {start} and length {length} do not fit dimension "
                         f"{d} of size {n}")
    return input[(slice(None),) * d + (slice(start, start + length),)]


def unbind(input: Tensor, dim: int = 0) -> tuple:
    """The slices along ``dim``, as a tuple (that dimension removed)."""
    d = check_dim("unbind", dim, input.shape)
    if input.ndim == 0:
        raise ShapeError("unbind: a 0-d tensor has no dimension to unbind")
    return tuple(select(input, d, i) for i in range(input.shape[d]))


def repeat_interleave(input: Tensor, repeats: Any = None, dim: int | None = None, *,
                      output_size: int | None = None) -> Tensor:
    """Repeat each element (each slice along ``dim``) ``repeats`` times, as
    ``torch.repeat_interleave``; ``repeats`` is a number or one count per slice (whose
    values fix the result's shape: a constant in a compiled function). With no ``repeats``,
    ``input`` holds the counts and the result repeats their positions."""
    if repeats is None:
        counts = _t(input)
        return repeat_interleave(_leaf(np.arange(counts.shape[0], dtype=np.int64)), counts)
    x = input.reshape(-1) if dim is None else input
    if x.ndim == 0:
        x = x.reshape(1)
    d = 0 if dim is None else check_dim("repeat_interleave", dim, x.shape)
    if isinstance(repeats, Tensor) and repeats.numel() == 1 and repeats.ndim <= 1:
        repeats = int(_static_data(repeats, "repeat_interleave's repeats").reshape(()))
    if isinstance(repeats, (int, np.integer)):
        if repeats < 0:
            raise ValueError(f"repeat_interleave: repeats must be >= 0, got {repeats}")
        y = x.unsqueeze(d + 1)
        grown = y.expand(y.shape[:d + 1] + (int(repeats),) + y.shape[d + 2:])
        return grown.reshape(x.shape[:d] + (x.shape[d] * int(repeats),) + x.shape[d + 1:])
    counts = np.asarray(_static_data(_t(repeats), "repeat_interleave's repeats (they fix "
                                                  "the result's shape)"))
    if counts.ndim != 1 or counts.shape[0] != x.shape[d] or counts.dtype.kind not in "iu" \
            or (counts.size and counts.min() < 0):
        raise ValueError(f"repeat_interleave: repeats must be non-negative integers, one per "
                         f"element of dimension {d} ({x.shape[d]}), got {counts}")
    where_from = np.repeat(np.arange(x.shape[d], dtype=np.int64), counts)
    return index_select(x, d, _leaf(where_from))


def _integer_divisor(a: Tensor, b: Tensor, op: str) -> Tensor:
    """``b``, checked: integer division by zero raises, as in PyTorch (in a compiled
    function too, on each call's values)."""
    if a.dtype.kind in "iub" and b.dtype.kind in "iub":
        return checked(b, "nonzero", (), ZeroDivisionError, f"{op}: integer division by zero")
    return b


def _division_operands(a: Any, b: Any, op: str) -> tuple:
    if isinstance(a, Tensor):
        b = _operand(b, a)
    else:
        b = _t(b)
        a = _operand(a, b)
    if a.dtype != b.dtype:
        dt = _result_dtype(a, b)
        a, b = a.to(dt), b.to(dt)
    if a.dtype == np.bool_:
        a, b = a.long(), b.long()
    return a, _integer_divisor(a, b, op)


def _floor_quotient(a: Tensor, b: Tensor) -> Tensor:
    if a.dtype.kind == "f":
        return (a / b).floor()
    # In float64 the quotient of two integers below 2**53 rounds to the right side of every
    # integer, so its floor is the exact integer quotient.
    return (a.double() / b.double()).floor().to(a.dtype)


def floor_divide(input: Any, other: Any) -> Tensor:
    """``floor(input / other)`` (Python's ``//``), elementwise with broadcasting; integers
    stay integers. No gradient (PyTorch has none either)."""
    a, b = _division_operands(input, other, "floor_divide")
    return _floor_quotient(a, b).detach()


def remainder(input: Any, other: Any) -> Tensor:
    """``input - floor(input / other) * other`` (Python's ``%``: the sign of ``other``);
    differentiable in both, as in PyTorch."""
    a, b = _division_operands(input, other, "remainder")
    return a - _floor_quotient(a, b).detach() * b


def _trunc_quotient(a: Tensor, b: Tensor) -> Tensor:
    # (exact for integers below 2**53, as `_floor_quotient`)
    return trunc(a / b) if a.dtype.kind == "f" else trunc(a.double() / b.double()).to(a.dtype)


def fmod(input: Any, other: Any) -> Tensor:
    """``input - trunc(input / other) * other`` (C's ``fmod``: the sign of ``input``)."""
    a, b = _division_operands(input, other, "fmod")
    return a - _trunc_quotient(a, b).detach() * b


def add(input: Tensor, other: Any, *, alpha: Any = 1) -> Tensor:
    """``input + alpha * other``, as ``torch.add``.

    >>> tg.tensor([1.0, 2.0]).add(tg.tensor([1.0, 1.0]), alpha=-0.5)
    tensor([0.5000, 1.5000])
    """
    return input + _times(other, alpha)


def sub(input: Tensor, other: Any, *, alpha: Any = 1) -> Tensor:
    """``input - alpha * other``, as ``torch.sub``."""
    return input - _times(other, alpha)


def _times(x: Any, alpha: Any) -> Any:
    return x if isinstance(alpha, (int, float)) and alpha == 1 else x * alpha


def div(input: Tensor, other: Any, *, rounding_mode: str | None = None) -> Tensor:
    """``input / other``, as ``torch.div``: true division (ints give floats) by default;
    ``rounding_mode="trunc"`` rounds the quotient toward zero, ``"floor"`` down (`//`), and
    integers then stay integers (no gradient, as in PyTorch).

    >>> tg.tensor([-7, 7]).div(2, rounding_mode="trunc")
    tensor([-3,  3])
    """
    if rounding_mode is None:
        return input / other
    if rounding_mode == "floor":
        return floor_divide(input, other)
    if rounding_mode == "trunc":
        a, b = _division_operands(input, other, "div")
        return _trunc_quotient(a, b).detach()
    raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', "
                     f"got {rounding_mode!r}")


def _reflected(fn: Any) -> Any:
    def method(self: Tensor, other: Any) -> Any:
        if not isinstance(other, (Tensor, np.ndarray, list, tuple, *_NUMBERS)):
            return NotImplemented
        return fn(other, self)

    return method


def _forward_op(fn: Any) -> Any:
    def method(self: Tensor, other: Any) -> Any:
        if not isinstance(other, (Tensor, np.ndarray, list, tuple, *_NUMBERS)):
            return NotImplemented
        return fn(self, other)

    return method


_NUMBERS = (int, float, bool, np.number, np.bool_)


def isnan(input: Tensor) -> Tensor:
    return input != input


def isinf(input: Tensor) -> Tensor:
    if input.dtype.kind != "f":
        return input != input  # (all False)
    return abs(input) == math.inf


def isposinf(input: Tensor) -> Tensor:
    return input == math.inf if input.dtype.kind == "f" else input != input


def isneginf(input: Tensor) -> Tensor:
    return input == -math.inf if input.dtype.kind == "f" else input != input


def isfinite(input: Tensor) -> Tensor:
    """True where neither inf nor nan (``x - x`` is 0 exactly there)."""
    if input.dtype.kind != "f":
        return input == input
    return (input - input) == 0


def isclose(input: Tensor, other: Any, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Tensor:
    """``|input - other| <= atol + rtol * |other|`` (or equal, infinities included), as
    ``torch.isclose``."""
    a = input
    b = _operand(other, a)
    if a.dtype != b.dtype:
        dt = _result_dtype(a, b)
        a, b = a.to(dt), b.to(dt)
    close = a == b
    if a.dtype == np.bool_:
        return close
    if a.dtype.kind != "f":
        a, b = a.double(), b.double()
    if equal_nan:
        close = logical_or(close, logical_and(isnan(a), isnan(b)))
    error = abs(a - b)
    ok = logical_and(isfinite(error), error <= atol + rtol * abs(b))
    return logical_or(close, ok).detach()


def allclose(input: Tensor, other: Any, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    """Whether every element `isclose` (a Python bool)."""
    return bool(all(isclose(input, other, rtol, atol, equal_nan)))


def nan_to_num(input: Tensor, nan: float = 0.0, posinf: float | None = None,
               neginf: float | None = None) -> Tensor:
    """nan -> ``nan``, inf -> ``posinf``, -inf -> ``neginf`` (default: the dtype's largest
    and smallest finite values); the gradient passes where the input is finite."""
    if input.dtype.kind != "f":
        return input
    big = float(np.finfo(input.dtype).max)
    out = _where(isnan(input), _operand(float(nan), input), input)
    out = _where(input == math.inf, _operand(big if posinf is None else float(posinf), input),
                 out)
    return _where(input == -math.inf,
                  _operand(-big if neginf is None else float(neginf), input), out)


def _draw(shape: tuple, dtype: Any, dist: str, generator: Any, who: str) -> Tensor:
    """The ``rand`` primitive's numbers ("uniform" in [0, 1), or "normal"), from ``generator``
    or the global one; a compiled function draws them afresh on every call, as eager does."""
    return apply(P["rand"], shape=tuple(shape), dtype=np.dtype(dtype), dist=dist,
                 **generator_attrs(generator, who))


def _uniform(shape: tuple, dtype: Any, generator: Any, op: str) -> Tensor:
    return _draw(shape, dtype, "uniform", generator, op)


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *,
                generator: Any = None) -> Tensor:
    """``num_samples`` category indices drawn with probabilities proportional to ``input``
    (1-d, or 2-d: one row of weights per draw), int64; without ``replacement`` each
    category at most once per row. Not PyTorch's stream of numbers, its distribution."""
    if input.ndim not in (1, 2) or input.dtype.kind != "f":
        raise ValueError(f"multinomial: expects a 1-d or 2-d float tensor of weights, got "
                         f"{input.dtype} of shape {input.shape}")
    n = input.shape[-1]
    if num_samples <= 0 or n == 0:
        raise ValueError(f"multinomial: needs num_samples > 0 and at least one category, got "
                         f"{num_samples} samples from {n} categories")
    w = checked(input.detach(), "weights", (1 if replacement else num_samples,), ValueError,
                "multinomial: {problem}")
    rows = input.shape[:-1]
    if replacement:
        c = cumsum(w, -1)
        cdf = c / c[..., n - 1:]  # the last entry exactly 1, above every uniform draw
        u = _uniform(rows + (num_samples,), w.dtype, generator, "multinomial")
        return (cdf.unsqueeze(-2) <= u.unsqueeze(-1)).sum(-1)
    # Without replacement: the num_samples smallest of -log(u) / w (exponential races,
    # Efraimidis-Spirakis), the order of the draws included.
    u = _uniform(rows + (n,), w.dtype, generator, "multinomial")
    keys = -(1 - u).log() / w
    order = apply(P["argsort"], keys, axis=keys.ndim - 1, descending=False)
    return order[..., :num_samples]


# ---------------------------------------------------------------- einsum


def einsum(equation: str, *operands: Any) -> Tensor:
    """Einstein summation, as ``torch.einsum``: ``"ij,jk->ik"``, ``"bij,bjk->bik"``,
    ``"ii->i"``, ``"...ij->...ji"``, implicit outputs (``"ij,jk"``). Operands are contracted
    two at a time as batched matrix products.

    >>> tg.einsum("i,i->", tg.tensor([1., 2.]), tg.tensor([3., 4.]))
    tensor(11.)
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    xs = [_t(x) for x in operands]
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(xs):
        raise ValueError(f"einsum: {equation!r} names {len(terms)} operand(s), got {len(xs)}")
    used = set(eq)
    spare = [chr(c) for c in range(0x3b1, 0x3b1 + 64) if chr(c) not in used]  # for "..."
    n_ell = 0
    for term, x in zip(terms, xs):
        if "..." in term:
            n_ell = builtins.max(n_ell, x.ndim - (len(term) - 3))
    labels_of = []
    for term, x in zip(terms, xs):
        if "..." in term:
            k = x.ndim - (len(term) - 3)
            if k < 0:
                raise ShapeError(f"einsum: operand {term!r} has more labels than the "
                                 f"{x.ndim} dimensions of shape {x.shape}")
            term = term.replace("...", "".join(spare[n_ell - k:n_ell]))
        if not builtins.all(c.isalpha() for c in term) or len(term) != x.ndim:
            raise ShapeError(f"einsum: operand {term!r} does not fit a tensor of shape "
                             f"{x.shape} (one letter per dimension)")
        labels_of.append(list(term))
    if arrow:
        out = list(rhs.replace("...", "".join(spare[:n_ell])))
    else:
        counts = {}
        for labels in labels_of:
            for c in labels:
                counts[c] = counts.get(c, 0) + 1
        out = spare[:n_ell] + sorted(c for c, k in counts.items() if k == 1 and c not in spare)
    everywhere = [c for labels in labels_of for c in labels]
    for c in out:
        if c not in everywhere or out.count(c) > 1:
            raise ValueError(f"einsum: output label {c!r} of {equation!r} must appear once in "
                             f"the output and somewhere in the inputs")
    sizes: dict = {}
    for labels, x in zip(labels_of, xs):
        for c, n in zip(labels, x.shape):
            if sizes.get(c, 1) != 1 and n != 1 and sizes[c] != n:
                raise ShapeError(f"einsum: label {c!r} is {sizes[c]} in one operand and {n} "
                                 f"in another, in {equation!r}")
            sizes[c] = n if sizes.get(c, 1) == 1 else sizes[c]
    pairs = [_einsum_diagonals(x, labels) for x, labels in zip(xs, labels_of)]
    x, labels = pairs[0]
    for k in range(1, len(pairs) + 1):
        later = set(out).union(*(p[1] for p in pairs[k:]))
        x, labels = _einsum_sum_unused(x, labels, later, pairs[k][1] if k < len(pairs) else [])
        if k == len(pairs):
            break
        y, ylabels = pairs[k]
        y, ylabels = _einsum_sum_unused(y, ylabels, later, labels)
        x, labels = _einsum_pair(x, labels, y, ylabels, later, sizes)
    shape = tuple(sizes[c] for c in out)
    x = x.permute(tuple(labels.index(c) for c in out)) if labels != out else x
    return x if x.shape == shape else x.expand(shape)


def _einsum_diagonals(x: Tensor, labels: list) -> tuple:
    """Take the diagonal for each label that repeats within one operand ("ii->i")."""
    while len(set(labels)) != len(labels):
        c = next(c for c in labels if labels.count(c) > 1)
        i = labels.index(c)
        j = labels.index(c, i + 1)
        if x.shape[i] != x.shape[j]:
            raise ShapeError(f"einsum: label {c!r} repeats over dimensions of sizes "
                             f"{x.shape[i]} and {x.shape[j]}")
        others = [k for k in range(x.ndim) if k not in (i, j)]
        x = x.permute(tuple(others + [i, j]))
        ar = _leaf(np.arange(x.shape[-1], dtype=np.int64))
        x = x._getitem((Ellipsis,) + _slots(2), ar, ar)
        labels = [labels[k] for k in others] + [c]
    return x, labels


def _einsum_sum_unused(x: Tensor, labels: list, later: set, partner: list) -> tuple:
    """Sum over the labels no one needs any more (not in the output, a later operand or the
    operand this one is about to meet)."""
    gone = [k for k, c in enumerate(labels) if c not in later and c not in partner]
    if not gone:
        return x, labels
    return x.sum(tuple(gone)), [c for k, c in enumerate(labels) if k not in gone]


def _einsum_pair(x: Tensor, xl: list, y: Tensor, yl: list, later: set, sizes: dict) -> tuple:
    """Contract two operands as one batched matrix product: (batch, left, summed) @
    (batch, summed, right)."""
    batch = [c for c in xl if c in yl and c in later]
    summed = [c for c in xl if c in yl and c not in later]
    left = [c for c in xl if c not in yl]
    right = [c for c in yl if c not in xl]

    def arrange(t: Tensor, tl: list, order: list) -> Tensor:
        t = t.permute(tuple(tl.index(c) for c in order))
        want = tuple(sizes[c] if c in batch or c in summed else t.shape[k]
                     for k, c in enumerate(order))
        return t if t.shape == want else t.expand(want)

    bshape = tuple(sizes[c] for c in batch)
    ln = math.prod(sizes[c] for c in left)
    rn = math.prod(sizes[c] for c in right)
    kn = math.prod(sizes[c] for c in summed)
    a = arrange(x, xl, batch + left + summed).reshape(bshape + (ln, kn))
    b = arrange(y, yl, batch + summed + right).reshape(bshape + (kn, rn))
    prod_ = a @ b
    labels = batch + left + right
    return prod_.reshape(bshape + tuple(sizes[c] for c in left + right)), labels


# ---------------------------------------------------------------- tensors like others


@on_cpu
def full_like(input: Tensor, fill_value: Any, *, dtype: Any = None,
              requires_grad: bool = False, memory_format: Any = None) -> Tensor:
    dt = dtypes.to_dtype(dtype) if dtype is not None else input.dtype
    return _leaf(np.full(input.shape, fill_value, dt), requires_grad)


@on_cpu
def empty_like(input: Tensor, *, dtype: Any = None, requires_grad: bool = False,
               memory_format: Any = None) -> Tensor:
    """A new tensor of ``input``'s shape (zeros: tracegrad never hands out uninitialized
    memory)."""
    return full_like(input, 0, dtype=dtype, requires_grad=requires_grad)


def _like_random(input: Tensor, dtype: Any, dist: str, requires_grad: bool,
                 generator: Any) -> Tensor:
    dt = dtypes.to_dtype(dtype) if dtype is not None else input.dtype
    if dt.kind != "f":
        raise TypeError(f"{dist} numbers are floats; {dt} was asked for")
    t = _draw(input.shape, dt, dist, generator, f"{'randn' if dist == 'normal' else 'rand'}"
              f"_like")
    return t.requires_grad_() if requires_grad else t


@on_cpu
def rand_like(input: Tensor, *, generator: Any = None, dtype: Any = None,
              requires_grad: bool = False, memory_format: Any = None) -> Tensor:
    return _like_random(input, dtype, "uniform", requires_grad, generator)


@on_cpu
def randn_like(input: Tensor, *, generator: Any = None, dtype: Any = None,
               requires_grad: bool = False, memory_format: Any = None) -> Tensor:
    return _like_random(input, dtype, "normal", requires_grad, generator)


@on_cpu
def randint_like(input: Tensor, low: int = 0, high: int | None = None, *,
                 generator: Any = None, dtype: Any = None,
                 requires_grad: bool = False) -> Tensor:
    if high is None:
        low, high = 0, low
    dt = dtypes.to_dtype(dtype) if dtype is not None else input.dtype
    return apply(P["rand"], shape=tuple(input.shape), dtype=np.dtype(np.int64),
                 dist="integers", low=int(low), high=int(high),
                 **generator_attrs(generator, "randint_like")).to(dt)


@on_cpu
def empty(*size: Any, dtype: Any = None, requires_grad: bool = False,
          memory_format: Any = None) -> Tensor:
    """A new tensor of ``size`` (zeros: tracegrad never hands out uninitialized memory)."""
    dt = dtypes.default_float if dtype is None else dtypes.to_dtype(dtype)
    return _leaf(np.zeros(_shape_arg(size), dt), requires_grad)


@on_cpu
def randperm(n: int, *, generator: Any = None, dtype: Any = None,
             requires_grad: bool = False) -> Tensor:
    """A random permutation of ``0 .. n-1`` (int64), drawn fresh on every call of a
    compiled function."""
    if n < 0:
        raise ValueError(f"randperm: n must be >= 0, got {n}")
    u = _uniform((int(n),), np.float64, generator, "randperm")
    out = apply(P["argsort"], u, axis=0, descending=False)
    return out if dtype is None else out.to(dtype)


# ---------------------------------------------------------------- in place


# Tensor.X_(params, *, generator=None), as PyTorch's: (the numbers drawn, the parameters with
# their defaults, the distribution's numbers from the draws, the parameters' check). All
# draw through the rand primitive, so compiled code draws as eager code does.
_FILLS = {
    "normal_": ("normal", (("mean", 0.0), ("std", 1.0)),
                lambda z, mean, std: z * std + mean,
                lambda mean, std: std >= 0, "normal expects std >= 0.0, but found std={std}"),
    "uniform_": ("uniform", (("from", 0.0), ("to", 1.0)),
                 lambda u, lo, hi: u * (hi - lo) + lo,
                 lambda lo, hi: lo <= hi, "uniform_ expects to return a [from, to) range, "
                                          "but found from={from} > to={to}"),
    "exponential_": ("uniform", (("lambd", 1.0),),
                     lambda u, lambd: -(-u).log1p() / lambd,
                     lambda lambd: lambd > 0, "exponential_ expects lambda > 0.0, but found "
                                              "lambda={lambd}"),
    "cauchy_": ("uniform", (("median", 0.0), ("sigma", 1.0)),
                lambda u, median, sigma: ((u - 0.5) * math.pi).tan() * sigma + median,
                lambda median, sigma: sigma > 0, "cauchy_ expects sigma > 0.0, but found "
                                                 "sigma={sigma}"),
    "log_normal_": ("normal", (("mean", 1.0), ("std", 2.0)),
                    lambda z, mean, std: (z * std + mean).exp(),
                    lambda mean, std: std > 0, "log_normal_ expects std > 0.0, but found "
                                               "std={std}"),
    # trials up to the first success: 1 + floor(log(1 - u) / log(1 - p))
    "geometric_": ("uniform", (("p", None),),
                   lambda u, p: ((-u).log1p() / math.log1p(-p)).floor() + 1,
                   lambda p: 0 < p < 1, "geometric_ expects p to be in (0, 1), but got p={p}"),
}


def _random_fill(name: str):
    dist, params, transform, valid, message = _FILLS[name]
    names = [n for n, _ in params]

    def method(self: Tensor, *args: Any, generator: Any = None, **kwargs: Any) -> Tensor:
        if len(args) > len(names) or set(kwargs) - set(names) - {"from_"}:
            raise TypeError(f"{name}: takes ({', '.join(names)}, *, generator=None), got "
                            f"{len(args)} positional and {sorted(kwargs)}")
        values = dict(params)
        values.update(zip(names, args))
        values.update({("from" if k == "from_" else k): v for k, v in kwargs.items()})
        if builtins.any(v is None for v in values.values()):
            raise TypeError(f"{name}: missing {[k for k, v in values.items() if v is None]}")
        values = {k: float(v) for k, v in values.items()}
        if not valid(*values.values()):
            raise ValueRangeError(message.format(**values))
        floats = self.dtype.kind == "f"
        if not floats and name != "geometric_":
            raise TypeError(f"{name}: draws floats, needs a float tensor, got {self.dtype}")
        draw = _draw(self.shape, self.dtype if floats else np.float64, dist, generator, name)
        # (copy_ is recorded: requires grad still, a zero gradient, as in PyTorch)
        return self.copy_(transform(draw, *values.values()))

    method.__name__ = name
    method.__doc__ = (f"Fill in place with numbers from ``{name[:-1]}({', '.join(names)})``, "
                      f"as ``torch.Tensor.{name}``; from ``generator`` (a tg.Generator), else "
                      f"the global generator (``tg.manual_seed``).")
    return method


def random_(self: Tensor, *bounds: Any, to: Any = None, generator: Any = None) -> Tensor:
    """Fill with integers drawn uniformly from ``[from, to)``, in place, as
    ``torch.Tensor.random_``: ``x.random_(to)``, ``x.random_(from, to)``, ``x.random_(from,
    None)``; with no ``to``, up to the largest integer the dtype holds exactly (``2**24`` for
    float32, included; the dtype's maximum for an integer tensor; 1 for bool). Reproducible
    after ``tg.manual_seed``.

    >>> x = tg.empty(3).random_(10)       # e.g. tensor([4., 0., 7.])
    """
    if len(bounds) > 2 or (len(bounds) == 2 and to is not None):
        raise TypeError(f"random_: expects (to), (from, to) or nothing, got {len(bounds)} "
                        f"bounds{' and to=' if to is not None else ''}")
    if len(bounds) == 2 or (len(bounds) == 1 and to is not None):
        low, high = bounds[0], bounds[1] if len(bounds) == 2 else to
    else:
        low, high = 0, bounds[0] if bounds else to
    dt = self._data.dtype
    if dt.kind == "f":
        top = 2 ** (np.finfo(dt).nmant + 1)  # (the largest run of integers it holds exactly)
        lowest, highest = -top, top
    elif dt.kind == "b":
        lowest, highest = 0, 1
    else:
        lowest, highest = int(np.iinfo(dt).min), int(np.iinfo(dt).max)
    low = int(low)
    high = highest + 1 if high is None else int(high)
    if not low < high:
        raise ValueRangeError(f"random_: expects 'from' to be less than 'to', but got "
                              f"from={low} >= to={high}")
    if not lowest <= low or high - 1 > highest:
        raise ValueRangeError(f"random_: [{low}, {high}) does not fit a {dt} tensor, whose "
                              f"integers run from {lowest} to {highest}; give bounds in there")
    value = apply(P["rand"], shape=tuple(self.shape), dtype=dt, dist="integers", low=low,
                  high=high, **generator_attrs(generator, "random_"))
    return self.copy_(value)  # (recorded: requires grad still, a zero gradient, as in PyTorch)


def _bernoulli(shape: tuple, p: Any, dtype: Any, generator: Any, who: str) -> Tensor:
    """1 where a uniform draw falls below ``p`` (a probability, or a tensor of them that
    broadcasts to ``shape``), else 0, as ``dtype``. A tensor ``p``'s values are checked (in a
    compiled function too, on each call's)."""
    if isinstance(p, Tensor):
        p = checked(p, "in_interval", (0, 1), ValueRangeError,
                    f"{who}: p must hold probabilities in [0, 1], got values from {{lo}} to "
                    f"{{hi}}")
        try:
            ok = len(p.shape) <= len(shape) and np.broadcast_shapes(p.shape, shape) == shape
        except ValueError:
            ok = False
        if not ok:
            raise ShapeError(f"{who}: p of shape {p.shape} does not broadcast to the "
                             f"tensor's shape {shape}")
        p = p.detach()
    elif not 0 <= p <= 1:
        raise ValueRangeError(f"{who}: expects p to be in [0, 1], but got p={p}")
    dt = np.dtype(dtype)
    draw = _uniform(shape, dt if dt.kind == "f" else np.float64, generator, who)
    return (draw < p).to(dt)


def bernoulli_(self: Tensor, p: Any = 0.5, *, generator: Any = None) -> Tensor:
    """Fill with 1 where a uniform draw falls below ``p`` (a probability, or a tensor of them
    that broadcasts to this tensor), else 0, in place, as ``torch.Tensor.bernoulli_``.
    Reproducible after ``tg.manual_seed``, or from ``generator``.

    >>> mask = tg.empty(2, 3).bernoulli_(0.9)
    """
    return self.copy_(_bernoulli(tuple(self.shape), p, self._data.dtype, generator,
                                 "bernoulli_"))


def bernoulli(input: Tensor, p: float | None = None, *, generator: Any = None) -> Tensor:
    """0 or 1 for each probability in ``input`` (1 with that probability), as
    ``torch.bernoulli``; with ``p``, every element 1 with probability ``p``. No gradient
    flows back (PyTorch's is zero).

    >>> tg.bernoulli(tg.tensor([0.0, 1.0]))
    tensor([0., 1.])
    """
    return _bernoulli(tuple(input.shape), input if p is None else p, input.dtype, generator,
                      "bernoulli")


def normal(mean: Any, std: Any = 1.0, size: Any = None, *, generator: Any = None,
           dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Normal numbers with means ``mean`` and standard deviations ``std`` (tensors that
    broadcast, or numbers with ``size``), as ``torch.normal``. No gradient flows back to
    ``mean`` and ``std`` (PyTorch's is zero).

    >>> tg.normal(2.0, 0.5, (3,), generator=tg.Generator().manual_seed(0))
    """
    tensors = [x for x in (mean, std) if isinstance(x, Tensor)]
    if tensors:
        if size is not None:
            raise TypeError("normal: size= goes with a float mean and std; a tensor mean or "
                            "std gives the shape")
        shape = np.broadcast_shapes(*[t.shape for t in tensors])
        dt = np.result_type(*[t.dtype for t in tensors])
    else:
        if size is None:
            raise TypeError("normal: with a float mean and std, give size (as torch.normal("
                            "0.0, 1.0, (3,)))")
        shape = _shape_arg((size,)) if isinstance(size, (tuple, list)) else (int(size),)
        dt = dtypes.default_float
    dt = dtypes.to_dtype(dtype) if dtype is not None else dt
    if dt.kind != "f":
        raise TypeError(f"normal: draws floats; mean and std are {dt}")
    if isinstance(std, Tensor):
        std = checked(std.detach(), "in_interval", (0, np.inf), ValueRangeError,
                      "normal expects all elements of std >= 0.0, got {lo}")
    elif not std >= 0:
        raise ValueRangeError(f"normal expects std >= 0.0, but found std {std}")
    if isinstance(mean, Tensor):
        mean = mean.detach()
    out = (_draw(shape, dt, "normal", generator, "normal") * std + mean).to(dt)
    return out.requires_grad_() if requires_grad else out


def poisson(input: Tensor, generator: Any = None) -> Tensor:
    """A Poisson count for each rate in ``input`` (floats, as ``torch.poisson``). No
    gradient flows back (PyTorch's is zero).

    >>> tg.poisson(tg.full((3,), 4.0))   # e.g. tensor([3., 6., 4.])
    """
    if input.dtype.kind != "f":
        raise TypeError(f"poisson: expects a float tensor of rates, got {input.dtype}")
    rates = input.detach()
    return apply(P["poisson"], rates, **generator_attrs(generator, "poisson"))


def _inplace_of(fn: Any, name: str) -> Any:
    def method(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        return self._inplace(lambda s: fn(s, *args, **kwargs),
                             next((a for a in args if isinstance(a, Tensor) and
                                   a.dtype.kind == "f"), None))

    method.__name__ = name
    method.__doc__ = f"In-place ``{fn.__name__}``."
    return method


def _type_as(input: Tensor, other: Tensor) -> Tensor:
    return input.to(other.dtype)


def _new_full(self: Tensor, size: Any, fill_value: Any, *, dtype: Any = None,
              requires_grad: bool = False, device: Any = None) -> Tensor:
    dt = dtypes.to_dtype(dtype) if dtype is not None else self.dtype
    return _leaf(np.full(_shape_arg((size,)) if isinstance(size, (tuple, list)) else
                         (int(size),), fill_value, dt), requires_grad)


def _new_filled(value: int):
    def method(self: Tensor, *size: Any, dtype: Any = None, requires_grad: bool = False,
               device: Any = None) -> Tensor:
        dt = dtypes.to_dtype(dtype) if dtype is not None else self.dtype
        return _leaf(np.full(_shape_arg(size), value, dt), requires_grad)

    return method


def _new_tensor(self: Tensor, data: Any, *, dtype: Any = None, requires_grad: bool = False,
                device: Any = None) -> Tensor:
    from .creation import tensor  # (a copy; of a traced tensor, traced: see tg.tensor)

    return tensor(data, dtype=dtype if dtype is not None else self.dtype,
                  requires_grad=requires_grad)


# ---------------------------------------------------------------- more elementwise math
# (one line each of existing ops, so each differentiates and compiles)

_LN2, _LN10 = math.log(2.0), math.log(10.0)


def log2(input: Tensor) -> Tensor:
    return input.log() * (1.0 / _LN2)


def log10(input: Tensor) -> Tensor:
    return input.log() * (1.0 / _LN10)


def exp2(input: Tensor) -> Tensor:
    return (input * _LN2).exp()


def sinh(input: Tensor) -> Tensor:
    return (input.exp() - (-input).exp()) * 0.5


def cosh(input: Tensor) -> Tensor:
    return (input.exp() + (-input).exp()) * 0.5


def logaddexp(input: Tensor, other: Any) -> Tensor:
    """``log(exp(input) + exp(other))`` without overflow."""
    other = _operand(other, input)
    m = maximum(input, other).detach()
    m = _where(m.abs() == math.inf, _operand(0.0, m), m)
    return ((input - m).exp() + (other - m).exp()).log() + m


def hypot(input: Tensor, other: Any) -> Tensor:
    other = _operand(other, input)
    return (input * input + other * other).sqrt()


def lerp(input: Tensor, end: Any, weight: Any) -> Tensor:
    """``input + weight * (end - input)``."""
    return input + (_operand(end, input) - input) * weight


def _scaled_sum(name: str, product: Any, shapes: str) -> Any:
    """PyTorch's ``beta * input + alpha * product(a, b)`` family (addmm, addmv, addr,
    baddbmm, addbmm): ``input`` broadcasts to the product's shape; with ``beta=0`` it is
    not read at all (nan and inf in it do not propagate), as there."""

    def fn(input: Any, a: Tensor, b: Tensor, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
        prod_ = product(a, b)
        prod_ = prod_ if _is_number(alpha, 1) else prod_ * alpha
        if _is_number(beta, 0):
            return prod_
        input = _operand(input, prod_)
        try:
            fits = np.broadcast_shapes(input.shape, prod_.shape) == prod_.shape
        except ValueError:
            fits = False
        if not fits:
            raise ShapeError(f"{name}: input of shape {input.shape} does not broadcast to "
                             f"the product's shape {prod_.shape} ({shapes})")
        return prod_ + (input if _is_number(beta, 1) else input * beta)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``beta * input + alpha * ({shapes})``, as ``torch.{name}``."
    return fn


def _is_number(value: Any, n: int) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, builtins.bool) \
        and value == n


addmm = _scaled_sum("addmm", lambda a, b: mm(a, b), "mat1 @ mat2, two matrices")
addmv = _scaled_sum("addmv", lambda a, b: mv(a, b), "mat @ vec")
addr = _scaled_sum("addr", lambda a, b: outer(a, b), "the outer product of vec1 and vec2")
baddbmm = _scaled_sum("baddbmm", lambda a, b: bmm(a, b), "batch1 @ batch2, batch by batch")
addbmm = _scaled_sum("addbmm", lambda a, b: bmm(a, b).sum(0),
                     "the sum over the batch of batch1 @ batch2")


def is_nonzero(input: Tensor) -> bool:
    """Whether the one element of ``input`` is not zero, as ``torch.is_nonzero``."""
    input = _t(input)
    if input.numel() != 1:
        raise RuntimeError(f"is_nonzero: the tensor has {input.numel()} elements (shape "
                           f"{input.shape}); a truth value needs exactly one (use .any() or "
                           f".all())")
    return builtins.bool(input.item())


def addcmul(input: Tensor, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:
    return input + _operand(tensor1, input) * tensor2 * value


def addcdiv(input: Tensor, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:
    return input + _operand(tensor1, input) / tensor2 * value


def logit(input: Tensor, eps: float | None = None) -> Tensor:
    x = input if eps is None else clamp(input, eps, 1 - eps)
    return (x / (1 - x)).log()


# ---------------------------------------------------------------- PyTorch's other elementwise math
# (the NumPy-ufunc ones that are not primitives: composites of the ones that are)


def _promoted(input: Any, other: Any, floating: bool = False) -> tuple[Tensor, Tensor]:
    """Both operands in PyTorch's result dtype (the default float dtype where that is not
    a float and ``floating``)."""
    if isinstance(input, Tensor):
        other = _operand(other, input)
    else:
        other = _t(other)
        input = _operand(input, other)
    dt = _result_dtype(input, other)
    if floating and dt.kind != "f":
        dt = dtypes.default_float
    return input.to(dt), other.to(dt)


def _floating(input: Any) -> Tensor:
    x = _t(input)
    return x if x.dtype.kind == "f" else x.to(dtypes.default_float)


def sinc(input: Tensor) -> Tensor:
    """``sin(pi x) / (pi x)``, and 1 at 0 (where its gradient is 0), as ``torch.sinc``."""
    x = _floating(input)
    zero = x == 0
    px = _where(zero, 1.0, x) * math.pi  # (no 0/0 in the branch not taken, nor its gradient)
    return _where(zero, 1.0, px.sin() / px)


def heaviside(input: Tensor, values: Any) -> Tensor:
    """0 where ``input < 0`` (and at nan), ``values`` where it is 0, 1 where it is > 0, as
    ``torch.heaviside``. No gradient (zero almost everywhere), as `floor`."""
    x, v = _promoted(input, values)
    x, v = x.detach(), v.detach()
    return _where(x == 0, v, (x > 0).to(x.dtype))


def signbit(input: Any) -> Tensor:
    """True where the sign bit is set: negative numbers, -0.0 and a negative nan."""
    x = _t(input)
    if x.dtype == dtypes.bool_:
        return x != x  # (all False)
    return apply(P["signbit"], x)


def copysign(input: Any, other: Any) -> Tensor:
    """``|input|`` with the sign of ``other`` (its sign bit: -0.0 counts as negative), as
    ``torch.copysign``; the gradient goes to ``input``."""
    x, y = _promoted(input, other, floating=True)
    magnitude = abs(x)  # (-0.0 at x = -0.0: the sign bit is set where the two differ)
    return _where(signbit(y) != signbit(magnitude), -magnitude, magnitude)


def fmax(input: Any, other: Any) -> Tensor:
    """The elementwise maximum ignoring nan (nan only where both are), as ``torch.fmax``;
    a tie sends the gradient to ``input``, as PyTorch does."""
    a, b = _promoted(input, other)
    return _where(logical_or(a >= b, b != b), a, b)


def fmin(input: Any, other: Any) -> Tensor:
    """The elementwise minimum ignoring nan, as ``torch.fmin`` (see `fmax`)."""
    a, b = _promoted(input, other)
    return _where(logical_or(a <= b, b != b), a, b)


def float_power(input: Any, exponent: Any) -> Tensor:
    """``input ** exponent`` computed in float64, as ``torch.float_power``."""
    x, e = _promoted(input, exponent)
    return x.to(dtypes.float64) ** e.to(dtypes.float64)


def deg2rad(input: Tensor) -> Tensor:
    return _floating(input) * (math.pi / 180)


def rad2deg(input: Tensor) -> Tensor:
    return _floating(input) * (180 / math.pi)


def logaddexp2(input: Tensor, other: Any) -> Tensor:
    """``log2(2**input + 2**other)`` without overflow."""
    x, y = _promoted(input, other, floating=True)
    m = maximum(x, y).detach()
    m = _where(m.abs() == math.inf, _operand(0.0, m), m)
    return log2(exp2(x - m) + exp2(y - m)) + m


def positive(input: Tensor) -> Tensor:
    """``input`` itself, as ``torch.positive`` (which refuses a bool tensor)."""
    if input.dtype == dtypes.bool_:
        raise TypeError("positive: not defined for a bool tensor (as in PyTorch); use the "
                        "tensor itself, or cast it first")
    return input


__all__ += [
    "gather", "scatter", "scatter_add", "index_select", "index_add", "masked_select",
    "nonzero", "argwhere", "bmm", "mm", "mv", "outer", "tril", "triu", "movedim", "prod",
    "cumprod", "trunc", "frac", "select", "narrow", "unbind", "repeat_interleave",
    "floor_divide", "remainder", "fmod", "isnan", "isinf", "isposinf", "isneginf", "isfinite",
    "isclose", "allclose", "nan_to_num", "multinomial", "einsum", "full_like", "empty_like",
    "rand_like", "randn_like", "randint_like", "empty", "randperm", "diagonal", "trace", "diag",
    "as_strided",
]


# ---------------------------------------------------------------- PyTorch parity: array functions
# Joining, broadcasting, rotating, differencing and products of arrays, each a composite of
# cat, stack, reshape, expand, flip, getitem and matmul, with torch's signatures, result
# dtypes and errors.


def _tensors(op: str, tensors: tuple) -> list:
    """``f(a, b)`` and ``f([a, b])`` alike, as a list of Tensors (at least one)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if not tensors:
        raise ValueError(f"{op}: needs at least one tensor")
    return [_t(x) for x in tensors]


def tile(input: Tensor, dims: Sequence[int]) -> Tensor:
    """``repeat`` with ones put in front of ``dims`` when it is shorter than ``input.ndim``.

    >>> tg.tile(tg.tensor([1, 2]), (2,))
    tensor([1, 2, 1, 2])
    """
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    return repeat(input, (1,) * (input.ndim - len(dims)) + dims)


concat = concatenate = cat


def _atleast(x: Tensor, n: int) -> Tensor:
    if x.ndim >= n:
        return x
    if n == 3 and x.ndim == 2:
        return x.unsqueeze(-1)
    shape = {1: (-1,), 2: (1, -1), 3: (1, -1, 1)}[n]
    return x.reshape(shape if x.ndim else (1,) * n)


def _atleast_nd(n: int):
    def fn(*tensors: Any) -> Any:
        one = len(tensors) == 1 and not isinstance(tensors[0], (list, tuple))
        out = tuple(_atleast(x, n) for x in _tensors(f"atleast_{n}d", tensors))
        return out[0] if one else out

    fn.__name__ = f"atleast_{n}d"
    fn.__doc__ = (f"Each tensor with at least {n} dimension(s) (a view); one tensor for one, "
                  f"a tuple for several or a list.")
    return fn


atleast_1d, atleast_2d, atleast_3d = _atleast_nd(1), _atleast_nd(2), _atleast_nd(3)


def hstack(tensors: Sequence[Tensor]) -> Tensor:
    """Join along dimension 1 (0 for vectors), as ``torch.hstack``."""
    ts = [_atleast(x, 1) for x in _tensors("hstack", (tensors,))]
    return cat(ts, 0 if ts[0].ndim == 1 else 1)


def vstack(tensors: Sequence[Tensor]) -> Tensor:
    """Join rows: vectors become (1, n) rows, then ``cat`` along dimension 0."""
    return cat([_atleast(x, 2) for x in _tensors("vstack", (tensors,))], 0)


def dstack(tensors: Sequence[Tensor]) -> Tensor:
    """Join along dimension 2, each tensor made 3-d as ``atleast_3d`` does."""
    return cat([_atleast(x, 3) for x in _tensors("dstack", (tensors,))], 2)


def column_stack(tensors: Sequence[Tensor]) -> Tensor:
    """Join as columns: vectors (and numbers) become (n, 1) columns, then ``hstack``."""
    ts = _tensors("column_stack", (tensors,))
    return cat([x.reshape(-1, 1) if x.ndim < 2 else x for x in ts], 1)


def broadcast_shapes(*shapes: Any) -> tuple:
    """The shape that tensors of these shapes broadcast to (a number ``n`` is ``(n,)``).

    >>> tg.broadcast_shapes((2, 1), (3,))
    (2, 3)
    """
    shapes = [(s,) if isinstance(s, (int, np.integer)) else tuple(s) for s in shapes]
    for s in shapes:
        if builtins.any(n < 0 for n in s):
            raise ShapeError(f"broadcast_shapes: sizes must be non-negative, got {s}")
    nd = builtins.max((len(s) for s in shapes), default=0)
    out = []
    for k in range(nd):
        sizes = {s[k - nd + len(s)] for s in shapes if k - nd + len(s) >= 0} - {1}
        if len(sizes) > 1:
            raise ShapeError(f"broadcast_shapes: shapes {', '.join(map(str, shapes))} do not "
                             f"broadcast (sizes {sorted(sizes)} meet in dimension {k - nd}); "
                             f"each size must be equal or 1")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def broadcast_to(input: Tensor, size: Any) -> Tensor:
    """``input`` expanded to ``size`` (-1 keeps a dimension), as ``torch.broadcast_to``."""
    size = _shape_arg((size,))
    lead = len(size) - input.ndim
    if lead < 0:
        raise ShapeError(f"broadcast_to: cannot broadcast {input.shape} to {size}, which has "
                         f"fewer dimensions")
    size = tuple(input.shape[k - lead] if n == -1 and k >= lead else n
                 for k, n in enumerate(size))
    if builtins.any(n < 0 for n in size) or builtins.any(
            m not in (1, n) for m, n in zip(input.shape, size[lead:])):
        raise ShapeError(f"broadcast_to: cannot broadcast {input.shape} to {size}; each size "
                         f"of the input must be 1 or equal the target's")
    return input.expand(size)


def broadcast_tensors(*tensors: Any) -> tuple:
    """The tensors expanded to their common shape (views), as ``torch.broadcast_tensors``."""
    ts = [_t(x) for x in tensors]
    shape = broadcast_shapes(*(x.shape for x in ts))
    return tuple(x.expand(shape) for x in ts)


def meshgrid(*tensors: Any, indexing: str | None = None) -> tuple:
    """Coordinate grids of vectors: with ``indexing="ij"`` (the default) output ``k`` varies
    along dimension ``k``; with ``"xy"`` the first two dimensions are swapped (Cartesian).

    >>> tg.meshgrid(tg.tensor([1, 2]), tg.tensor([3, 4, 5]), indexing="ij")[0].shape
    (2, 3)
    """
    ts = _tensors("meshgrid", tensors)
    indexing = indexing or "ij"
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    for x in ts:
        if x.ndim > 1:
            raise ShapeError(f"meshgrid: expects 0-d or 1-d tensors, got shape {x.shape}")
        if x.dtype != ts[0].dtype:
            raise DTypeError(f"meshgrid: expects tensors of one dtype, got {ts[0].dtype} and "
                             f"{x.dtype}; cast them first")
    place = list(range(len(ts)))
    if indexing == "xy" and len(ts) > 1:
        place[0], place[1] = 1, 0
    shape = [0] * len(ts)
    for x, p in zip(ts, place):
        shape[p] = x.numel()
    out = []
    for x, p in zip(ts, place):
        lifted = [1] * len(ts)
        lifted[p] = -1
        out.append(x.reshape(lifted).expand(tuple(shape)))
    return tuple(out)


def ravel(input: Tensor) -> Tensor:
    """The elements as a 1-d tensor (a view when it can be one)."""
    return input.reshape(-1)


def rot90(input: Tensor, k: int = 1, dims: Sequence[int] = (0, 1)) -> Tensor:
    """Rotate by 90 degrees ``k`` times in the plane ``dims``, from the first axis towards
    the second, as ``torch.rot90``."""
    dims = tuple(dims)
    if len(dims) != 2:
        raise ShapeError(f"rot90: expects two rotation dims, got dims={dims}")
    if input.ndim < 2:
        raise ShapeError(f"rot90: expects a tensor of at least 2 dimensions, got shape "
                         f"{input.shape}")
    d0, d1 = (check_dim("rot90", d, input.shape) for d in dims)
    if d0 == d1:
        raise ShapeError(f"rot90: the rotation dims must differ, got dims={dims}")
    k %= 4
    if k == 1:
        return flip(input, d1).transpose(d0, d1)
    if k == 2:
        return flip(input, (d0, d1))
    if k == 3:
        return flip(input, d0).transpose(d0, d1)
    return input


def fliplr(input: Tensor) -> Tensor:
    """Reverse dimension 1 (left and right)."""
    if input.ndim < 2:
        raise ShapeError(f"fliplr: expects at least 2 dimensions, got shape {input.shape}")
    return flip(input, 1)


def flipud(input: Tensor) -> Tensor:
    """Reverse dimension 0 (up and down)."""
    if input.ndim < 1:
        raise ShapeError("flipud: expects at least 1 dimension, got a 0-d tensor")
    return flip(input, 0)


def diff(input: Tensor, n: int = 1, dim: int = -1, prepend: Any = None,
         append: Any = None) -> Tensor:
    """The ``n``-th forward difference along ``dim`` (``x[i+1] - x[i]``; for bools
    ``x[i+1] != x[i]``), after joining ``prepend`` and ``append`` to ``input``.

    >>> tg.diff(tg.tensor([1, 2, 4, 7]))
    tensor([1, 2, 3])
    """
    if input.ndim == 0:
        raise ShapeError("diff: expects a tensor of at least 1 dimension, got a 0-d tensor")
    if n < 0:
        raise ValueError(f"diff: the order n must be non-negative, got {n}")
    d = check_dim("diff", dim, input.shape)
    parts = [_operand(p, input) for p in (prepend, input, append) if p is not None]
    for p in parts:
        if p.ndim != input.ndim:
            raise ShapeError(f"diff: prepend and append must have the input's number of "
                             f"dimensions ({input.shape}), got {p.shape}")
    if n == 0:  # (as PyTorch: the input itself, prepend and append ignored)
        return input
    x = cat(parts, d) if len(parts) > 1 else input
    head = (slice(None),) * d
    for _ in range(n):
        later, earlier = x[head + (slice(1, None),)], x[head + (slice(None, -1),)]
        x = later != earlier if x.dtype == np.bool_ else later - earlier
    return x


def take(input: Tensor, index: Any) -> Tensor:
    """The elements of ``input`` (read as if flattened) at ``index``, in ``index``'s shape;
    negative indices count from the end."""
    n = input.numel()
    idx = index if isinstance(index, Tensor) else Tensor(index)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"take: index must be an integer tensor (int64), got {idx.dtype}")
    idx = checked(idx.long(), "in_range", (-n, n), IndexError,
                  f"take: index {{bad}} is out of range for a tensor of {n} elements "
                  f"({input.shape}); give indices in [-{n}, {n - 1}]")
    idx = _where(idx < 0, idx + n, idx)
    return input.reshape(-1)._getitem(_slots(1), idx)


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Matrices with the last dimension of ``input`` on diagonal ``offset`` of the planes
    (``dim1``, ``dim2``) of the result, zeros elsewhere, as ``torch.diag_embed``."""
    if input.ndim == 0:
        raise ShapeError("diag_embed: expects a tensor of at least 1 dimension, got a 0-d "
                         "tensor; use diag_embed(x.reshape(1))")
    out_shape = input.shape[:-1] + (0, 0)
    d1, d2 = check_dim("diag_embed", dim1, out_shape), check_dim("diag_embed", dim2, out_shape)
    if d1 == d2:
        raise ShapeError(f"diag_embed: dim1 and dim2 must differ, both are {d1}")
    x = input
    k = x.shape[-1]
    n = k + builtins.abs(offset)
    ar = np.arange(k, dtype=np.int64)
    rows, cols = ar - builtins.min(offset, 0), ar + builtins.max(offset, 0)
    out = x._scatter_add((Ellipsis,) + _slots(2), x.shape[:-1] + (n, n), _leaf(rows),
                         _leaf(cols))
    return movedim(out, (-2, -1), (d1, d2))


def diagflat(input: Tensor, offset: int = 0) -> Tensor:
    """A square matrix with the flattened ``input`` on diagonal ``offset``."""
    return diag(input.reshape(-1), offset)


def block_diag(*tensors: Any) -> Tensor:
    """The tensors (0-d, 1-d as one row, or 2-d) as blocks down the diagonal of one matrix,
    zeros elsewhere; the dtype is their common one.

    >>> tg.block_diag(tg.tensor([[1, 2]]), tg.tensor(3)).shape
    (2, 3)
    """
    ts = []
    for x in (_t(x) for x in tensors):
        if x.ndim > 2:
            raise ShapeError(f"block_diag: expects tensors of at most 2 dimensions, got shape "
                             f"{x.shape}")
        ts.append(x.reshape((1,) * (2 - x.ndim) + x.shape))
    if not ts:
        return _leaf(np.zeros((1, 0), dtypes.default_float))
    dt = functools.reduce(dtypes.promote, (x.dtype for x in ts))
    width = builtins.sum(x.shape[1] for x in ts)
    rows, left = [], 0
    for x in ts:
        r, c = x.shape
        zeros = [_leaf(np.zeros((r, w), dt)) for w in (left, width - left - c)]
        rows.append(cat([zeros[0], x.to(dt), zeros[1]], 1))
        left += c
    return cat(rows, 0)


# ---------------------------------------------------------------- products


def cross(input: Tensor, other: Any, dim: int | None = None) -> Tensor:
    """The cross product of 3-vectors along ``dim`` (broadcast over the other dimensions);
    without ``dim``, the first dimension of size 3, as ``torch.cross``."""
    other = _operand(other, input)
    if input.ndim != other.ndim:
        raise ShapeError(f"cross: inputs must have the same number of dimensions, got "
                         f"{input.shape} and {other.shape}; unsqueeze one")
    a, b = broadcast_tensors(input, other)
    if dim is None:
        found = [k for k, n in enumerate(a.shape) if n == 3]
        if not found:
            raise ShapeError(f"cross: no dimension of size 3 in {a.shape}; pass dim")
        dim = found[0]
    d = check_dim("cross", dim, a.shape)
    if a.shape[d] != 3:
        raise ShapeError(f"cross: dimension {dim} must have size 3, got shapes {input.shape} "
                         f"and {b.shape}")
    a0, a1, a2 = unbind(a, d)
    b0, b1, b2 = unbind(b, d)
    return stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], d)


def kron(input: Tensor, other: Any) -> Tensor:
    """The Kronecker product: block ``(i, j, ...)`` is ``input[i, j, ...] * other``.

    >>> tg.kron(tg.tensor([1, 2]), tg.tensor([1, 10]))
    tensor([ 1, 10,  2, 20])
    """
    other = _operand(other, input)
    nd = builtins.max(input.ndim, other.ndim)
    sa = (1,) * (nd - input.ndim) + input.shape
    sb = (1,) * (nd - other.ndim) + other.shape
    a = input.reshape(tuple(v for n in sa for v in (n, 1)))
    b = other.reshape(tuple(v for n in sb for v in (1, n)))
    return (a * b).reshape(tuple(m * n for m, n in zip(sa, sb)))


def tensordot(a: Tensor, b: Tensor, dims: Any = 2) -> Tensor:
    """Sum the products over ``dims``: the last ``dims`` dimensions of ``a`` with the first
    of ``b``, or the pairs of lists ``([a's dims], [b's dims])``; one matrix product.

    >>> tg.tensordot(tg.ones(2, 3, 4), tg.ones(3, 4, 5)).shape
    (2, 5)
    """
    if isinstance(dims, (int, np.integer)):
        if dims < 0:
            raise ValueError(f"tensordot: dims must be non-negative, got {dims}")
        if dims > builtins.min(a.ndim, b.ndim):
            raise ShapeError(f"tensordot: cannot contract {dims} dimensions of {a.shape} and "
                             f"{b.shape}")
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        da, db = ([d] if isinstance(d, int) else list(d) for d in dims)
        da = [check_dim("tensordot", d, a.shape) for d in da]
        db = [check_dim("tensordot", d, b.shape) for d in db]
    if a.dtype != b.dtype:
        raise DTypeError(f"tensordot: both inputs must have one dtype, got {a.dtype} and "
                         f"{b.dtype}; cast one")
    if len(da) != len(db):
        raise ShapeError(f"tensordot: both sides must name as many dimensions, got {da} and "
                         f"{db}")
    for i, j in zip(da, db):
        if a.shape[i] != b.shape[j]:
            raise ShapeError(f"tensordot: contracted dimensions must match, {a.shape} has "
                             f"{a.shape[i]} in dim {i} and {b.shape} has {b.shape[j]} in dim {j}")
    fa = [k for k in range(a.ndim) if k not in da]
    fb = [k for k in range(b.ndim) if k not in db]
    size = math.prod(a.shape[k] for k in da)
    left = a.permute(fa + da).reshape(math.prod(a.shape[k] for k in fa), size)
    right = b.permute(db + fb).reshape(size, math.prod(b.shape[k] for k in fb))
    return (left @ right).reshape(tuple(a.shape[k] for k in fa) + tuple(b.shape[k] for k in fb))


def inner(input: Tensor, other: Any) -> Tensor:
    """Sum of products over the last dimension of both (a product if either is a number)."""
    other = _operand(other, input)
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    if input.shape[-1] != other.shape[-1]:
        raise ShapeError(f"inner: the last dimensions must match, got {input.shape} and "
                         f"{other.shape}")
    return tensordot(input, other, ([-1], [-1]))


def vdot(input: Tensor, other: Tensor) -> Tensor:
    """The dot product of two vectors (no conjugation: tracegrad has no complex numbers)."""
    if input.dtype != other.dtype:
        raise DTypeError(f"vdot: expects two vectors of one dtype, got {input.dtype} and "
                         f"{other.dtype}")
    return dot(input, other)


def trapezoid(y: Tensor, x: Any = None, *, dx: Any = None, dim: int = -1) -> Tensor:
    """The trapezoidal rule along ``dim``: with sample points ``x`` (a vector along ``dim``
    or a tensor of ``y``'s shape) or a spacing ``dx`` (1 by default).

    >>> tg.trapezoid(tg.tensor([1., 2., 3.]))
    tensor(4.)
    """
    if x is not None and dx is not None:
        raise ValueError("trapezoid: give the sample points x or the spacing dx, not both")
    if y.dtype == np.bool_:
        raise TypeError("trapezoid: y is a bool tensor; give numbers (y.float())")
    if y.ndim == 0:
        raise ShapeError("trapezoid: y is a 0-d tensor; give samples along a dimension")
    if y.dtype.kind != "f":
        y = y.to(dtypes.default_float)
    d = check_dim("trapezoid", dim, y.shape)
    n = y.shape[d]
    head = (slice(None),) * d
    if x is None:
        if n == 0:
            return y.sum(d)
        ends = y[head + (0,)] + y[head + (-1,)]
        return (y.sum(d) - ends * 0.5) * (1 if dx is None else dx)
    x = _operand(x, y)
    if x.ndim == 1:
        if x.shape[0] != n:
            raise ShapeError(f"trapezoid: x has {x.shape[0]} points but y {y.shape} has {n} "
                             f"along dim {dim}")
        spacing = diff(x).reshape((-1,) + (1,) * (y.ndim - d - 1))
    else:
        spacing = diff(x, dim=d - y.ndim)
    if n == 0:
        return y.sum(d)
    mids = y[head + (slice(1, None),)] + y[head + (slice(None, -1),)]
    return (spacing * mids).sum(d) / 2


def trapz(y: Tensor, x: Any = None, *, dx: Any = None, dim: int = -1) -> Tensor:
    """``trapezoid`` (its older name)."""
    return trapezoid(y, x, dx=dx, dim=dim)


def cartesian_prod(*tensors: Any) -> Tensor:
    """Every combination of the vectors' elements, one per row (``itertools.product``).

    >>> tg.cartesian_prod(tg.tensor([1, 2]), tg.tensor([3, 4])).tolist()
    [[1, 3], [1, 4], [2, 3], [2, 4]]
    """
    ts = _tensors("cartesian_prod", tensors)
    for x in ts:
        if x.ndim != 1:
            raise ShapeError(f"cartesian_prod: expects 1-d tensors, got shape {x.shape}")
    if len(ts) == 1:
        return ts[0]
    return stack([g.reshape(-1) for g in meshgrid(*ts, indexing="ij")], 1)


def combinations(input: Tensor, r: int = 2, with_replacement: bool = False) -> Tensor:
    """The length-``r`` combinations of a vector's elements, one per row, in
    ``itertools.combinations`` order (``combinations_with_replacement`` if asked)."""
    if input.ndim != 1:
        raise ShapeError(f"combinations: expects a 1-d tensor, got shape {input.shape}")
    if r < 0:
        raise ValueError(f"combinations: r must be non-negative, got {r}")
    if r == 0:
        return input[:0]
    pick = itertools.combinations_with_replacement if with_replacement else \
        itertools.combinations
    index = np.array(list(pick(range(input.shape[0]), r)), np.int64).reshape(-1, r)
    return input._getitem(_slots(1), _leaf(index))


def vander(x: Tensor, N: int | None = None, increasing: bool = False) -> Tensor:
    """The Vandermonde matrix: column ``j`` is ``x ** (N - 1 - j)`` (``x ** j`` when
    ``increasing``); integer and bool inputs give int64."""
    if x.ndim != 1:
        raise ShapeError(f"vander: expects a 1-d tensor, got shape {x.shape}")
    N = x.shape[0] if N is None else N
    if N < 0:
        raise ValueError(f"vander: N must be non-negative, got {N}")
    x = _integer_result(x)
    n = x.shape[0]
    if N == 0:
        return x.reshape(n, 1)[:, :0]
    ones = _leaf(np.ones((n, 1), x.dtype))
    powers = cat([ones, cumprod(x.reshape(n, 1).expand(n, N - 1), 1)], 1) if N > 1 else ones
    return powers if increasing else flip(powers, 1)


# ---------------------------------------------------------------- statistics


def nansum(input: Tensor, dim: Any = None, keepdim: bool = False, *,
           dtype: Any = None) -> Tensor:
    """The sum with NaNs counted as zero (their gradient is zero)."""
    x = _integer_result(input, dtype)
    if x.dtype.kind == "f":
        x = _where(isnan(x), _leaf(np.zeros((), x.dtype)), x)
    return x.sum(dim, keepdim, dtype=dtype)


def nanmean(input: Tensor, dim: Any = None, keepdim: bool = False, *,
            dtype: Any = None) -> Tensor:
    """The mean of the elements that are not NaN (NaN where all are)."""
    x = input if dtype is None else input.to(dtype)
    if x.dtype.kind != "f":
        raise TypeError(f"nanmean: needs a float tensor, got {x.dtype}; use x.float()")
    return nansum(x, dim, keepdim) / (~isnan(x)).sum(dim, keepdim).to(x.dtype)


def _correction(op: str, unbiased: Any, correction: Any) -> Any:
    if unbiased is not None and correction is not None:
        raise ValueError(f"{op}: give unbiased or correction, not both")
    if unbiased is not None:
        return 1 if unbiased else 0
    return 1 if correction is None else correction


def var_mean(input: Tensor, dim: Any = None, unbiased: bool | None = None,
             keepdim: bool = False, *, correction: Any = None) -> tuple:
    """``(var, mean)`` over ``dim``, as ``torch.var_mean`` (``correction=1`` by default;
    the older ``unbiased`` flag is accepted, also as ``var_mean(x, True)``)."""
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    c = _correction("var_mean", unbiased, correction)
    return var(input, dim, keepdim=keepdim, correction=c), mean(input, dim, keepdim)


def std_mean(input: Tensor, dim: Any = None, unbiased: bool | None = None,
             keepdim: bool = False, *, correction: Any = None) -> tuple:
    """``(std, mean)`` over ``dim``, as ``torch.std_mean``."""
    v, m = var_mean(input, dim, unbiased, keepdim, correction=correction)
    return safe_root(v), m


def count_nonzero(input: Tensor, dim: Any = None) -> Tensor:
    """How many elements are not zero (int64), over ``dim`` (all by default)."""
    return (input != 0).sum(dim).long()


def equal(input: Tensor, other: Tensor) -> bool:
    """True if both have the same shape and the same elements: a Python bool, so inside
    `tg.compile` it raises `tg.TraceError` (as any Python value read from a traced tensor)."""
    other = _t(other)
    if input.shape != other.shape:
        return False
    return builtins.bool((input == other).all().item())


def logcumsumexp(input: Tensor, dim: int) -> Tensor:
    """``log(cumsum(exp(input)))`` along ``dim`` without overflow (a scan of logaddexp)."""
    if input.dtype.kind != "f":
        raise TypeError(f"logcumsumexp: needs a float tensor, got {input.dtype}; use "
                        f"x.float()")
    check_dim("logcumsumexp", dim, input.shape)
    return _scan(input, dim, logaddexp, -math.inf)


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0,
          compute_mode: str = "use_mm_for_euclid_dist_if_necessary") -> Tensor:
    """The p-norm distances between the rows of ``x1`` (..., P, M) and of ``x2``
    (..., R, M): a (..., P, R) tensor; the gradient at a zero distance is zero."""
    if x1.ndim < 2 or x2.ndim < 2 or x1.shape[-1] != x2.shape[-1]:
        raise ShapeError(f"cdist: expects (..., P, M) and (..., R, M) with one M, got "
                         f"{x1.shape} and {x2.shape}")
    if p < 0:
        raise ValueError(f"cdist: p must be non-negative, got {p}")
    gap = x1.unsqueeze(-2) - x2.unsqueeze(-3)
    if p == 0:
        return (gap != 0).sum(-1).to(gap.dtype)
    if p == math.inf:
        if gap.shape[-1] == 0:
            return gap.sum(-1)
        return amax(gap.abs(), -1)
    if p == 1:
        return gap.abs().sum(-1)
    total = (gap * gap if p == 2 else gap.abs() ** p).sum(-1)
    zero = total == 0
    root = _where(zero, _operand(1.0, total), total) ** (1.0 / p)
    return _where(zero, _operand(0.0, total), root)


def cov(input: Tensor, *, correction: int = 1, fweights: Any = None,
        aweights: Any = None) -> Tensor:
    """The covariance matrix of the variables in the rows of ``input`` (observations in
    columns; a vector is one variable, whose variance comes back 0-d), optionally weighted
    by frequency ``fweights`` and importance ``aweights``, as ``torch.cov``."""
    if input.ndim > 2:
        raise ShapeError(f"cov: expects a vector or a matrix, got shape {input.shape}")
    if input.dtype == np.bool_:
        raise TypeError("cov: the input is a bool tensor; give numbers (x.float())")
    x = input.reshape(1, -1) if input.ndim < 2 else input
    if x.dtype.kind != "f":
        x = x.to(dtypes.default_float)
    n = x.shape[1]
    w = None
    for name, given in (("fweights", fweights), ("aweights", aweights)):
        if given is None:
            continue
        given = _t(given)
        if given.shape != (n,):
            raise ShapeError(f"cov: {name} must be a vector of {n} weights (one per "
                             f"observation), got shape {given.shape}")
        if name == "fweights" and given.dtype.kind not in "iu":
            raise TypeError(f"cov: fweights must be integers, got {given.dtype}")
        given = given.to(x.dtype)
        w = given if w is None else w * given
    if w is None:
        avg, norm = x.mean(1), n - correction
        centered = x - avg.unsqueeze(1)
        c = centered @ centered.T
        return (c / builtins.max(norm, 0)).squeeze()
    w_sum = w.sum()
    avg = (x * w).sum(1) / w_sum
    if aweights is None:
        norm = w_sum - correction
    else:
        norm = w_sum - correction * (w * _t(aweights).to(x.dtype)).sum() / w_sum
    norm = _where(norm <= 0, _operand(0.0, norm), norm)
    centered = x - avg.unsqueeze(1)
    return ((centered * w) @ centered.T / norm).squeeze()


def corrcoef(input: Tensor) -> Tensor:
    """Pearson's correlation coefficients of the rows of ``input`` (as ``cov``), clipped to
    [-1, 1]."""
    c = cov(input)
    if c.ndim == 0:
        return c / c
    spread = diagonal(c).sqrt()
    return clamp(c / spread.unsqueeze(1) / spread.unsqueeze(0), -1, 1)
