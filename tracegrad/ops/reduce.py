"""Reductions: sum and max (with their gradients), argmax (without), log_softmax, softmax."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from .base import normalize_axes, register


def _reduced_shape(shape: tuple, axes: tuple, keepdim: bool) -> tuple:
    if keepdim:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def _kept(g, x, axes, keepdim):
    """``g`` with the reduced dimensions put back as size 1, ready to broadcast against x."""
    if keepdim or not axes:
        return g
    return g.reshape(_reduced_shape(tuple(x.shape), axes, True))


# ---------------------------------------------------------------- sum


def _sum_forward(x, *, axes, keepdim):
    if x.dtype.kind == "f":  # the ufunc's own reduce: np.sum adds a Python layer on top
        return np.add.reduce(x, axis=axes, keepdims=keepdim)
    return np.sum(x, axis=axes, keepdims=keepdim, dtype=np.int64)


def _sum_infer(x, *, axes, keepdim):
    normalize_axes("sum", axes, len(x.shape))
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.int64)
    return _reduced_shape(tuple(x.shape), axes, keepdim), dtype


def _sum_vjp(g, out, x, *, axes, keepdim):
    return (_kept(g, x, axes, keepdim).expand(tuple(x.shape)),)


# (reads only x's shape)
register("sum", "reduce", _sum_forward, _sum_infer, _sum_vjp,
         linear=lambda attrs, batch: {"axes": tuple(a + len(batch) for a in attrs["axes"]),
                                      "keepdim": attrs["keepdim"]})


# ---------------------------------------------------------------- max, min


def _extremum_infer(name):
    def infer(x, *, axes, keepdim):
        for a in axes:
            if x.shape[a] == 0:
                raise ShapeError(
                    f"{name}: cannot reduce dimension {a} of size 0 (shape {tuple(x.shape)}); "
                    f"the {name}imum of nothing is undefined"
                )
        return _reduced_shape(tuple(x.shape), axes, keepdim), x.dtype

    return infer


def _extremum_vjp(g, out, x, *, axes, keepdim):
    # The gradient goes to the extreme elements, split evenly among ties (PyTorch's amax).
    hit = x == _kept(out, x, axes, keepdim)
    count = hit.sum(dim=axes, keepdim=True).to(x.dtype)
    return (hit._select(_kept(g, x, axes, keepdim) / count, 0),)


def _extremum_jvp(tangents, out, x, *, axes, keepdim):
    # The mean of the tangents of the extreme elements (ties share, as in the VJP).
    t = tangents[0]
    nb = t.ndim - x.ndim
    hit = x == _kept(out, x, axes, keepdim)
    count = hit.sum(dim=axes, keepdim=keepdim).to(x.dtype)
    return (t * hit).sum(dim=tuple(a + nb for a in axes), keepdim=keepdim) / count


def _arg_infer(name):
    def infer(x, *, axis, keepdim):
        if axis is None:
            if 0 in tuple(x.shape):
                raise ShapeError(f"{name}: the tensor is empty")
            return ((1,) * len(x.shape) if keepdim else ()), np.dtype(np.int64)
        if not len(x.shape):  # a 0-d tensor: dim 0 or -1 names the tensor itself
            normalize_axes(name, axis, 0)
            return (), np.dtype(np.int64)
        (a,) = normalize_axes(name, axis, len(x.shape))
        if len(x.shape) and x.shape[a] == 0:
            raise ShapeError(f"{name}: dimension {a} of shape {tuple(x.shape)} is empty")
        return _reduced_shape(tuple(x.shape), (a,) if len(x.shape) else (), keepdim), \
            np.dtype(np.int64)

    return infer


def _extremum(reduce, arg):
    """``reduce`` (np.maximum.reduce or np.minimum.reduce) over ``axes``. Over the last axis
    of a C-ordered array of many short rows, NumPy runs one short loop per row, several times
    slower than one long loop. So rows of fewer than 32 (logits: (128, 10)) are reduced as a
    column-major copy, 4-10x faster, copy included; longer rows (attention's scores: (B, H,
    T, T)) by ``arg`` (np.argmax, vectorized) and a gather, 2-2.5x faster. The extreme is one
    of the elements either way (a NaN if there is one): the same number."""

    def forward(x, *, axes, keepdim):
        n = x.shape[-1] if x.ndim else 0
        if axes == (x.ndim - 1,) and x.ndim >= 2 and 1 < n <= 1024 and x.flags.c_contiguous \
                and x.size >= 16 * n:
            if n < 32 and x.ndim == 2:
                return reduce(np.asfortranarray(x), axis=axes, keepdims=keepdim)
            if n >= 32:
                index = np.expand_dims(arg(x, axis=-1), -1)
                out = np.take_along_axis(x, index, -1)
                return out if keepdim else out.reshape(x.shape[:-1])
        return reduce(x, axis=axes, keepdims=keepdim)

    return forward


# name, NumPy reduction, NumPy arg-reduction
EXTREMA = [("max", np.maximum.reduce, "argmax", np.argmax),
           ("min", np.minimum.reduce, "argmin", np.argmin)]
_reduce_max = _extremum(np.maximum.reduce, np.argmax)

for _name, _fn, _argname, _argfn in EXTREMA:
    register(_name, "reduce", _extremum(_fn, _argfn), _extremum_infer(_name), _extremum_vjp,
             reads="out x", jvp=_extremum_jvp)
    register(_argname, "reduce",
             lambda x, *, axis, keepdim, _f=_argfn: np.asarray(
                 _f(x, axis=axis, keepdims=keepdim), dtype=np.int64),
             _arg_infer(_argname), None)


# ---------------------------------------------------------------- argsort (no gradient)


def _argsort_infer(x, *, axis, descending):
    normalize_axes("argsort", axis, len(x.shape))
    return tuple(x.shape), np.dtype(np.int64)


def _argsort_forward(x, *, axis, descending):
    # NaN sorts as the largest value (NumPy puts it last), as in PyTorch. Descending is the
    # ascending order of the reversed values, reversed: NaN first, equal values in their
    # order, and no negation (which would keep NaN last and fail for bools and INT_MIN).
    if not descending:
        return np.argsort(x, axis=axis, kind="stable").astype(np.int64, copy=False)
    order = np.flip(np.argsort(np.flip(x, axis), axis=axis, kind="stable"), axis)
    return (x.shape[axis] - 1 - order).astype(np.int64, copy=False)


register("argsort", "reduce", _argsort_forward, _argsort_infer, None)


# ---------------------------------------------------------------- searchsorted (no gradient)
# Where each value of v would go in the last dimension of the sorted seq (1-d: one sequence
# for every value; n-d: v's leading dimensions). Eager runs NumPy's binary search; tracing
# records the count of smaller entries (n * m comparisons), which every backend and ONNX run.


def _searchsorted_infer(seq, v, *, right):
    return tuple(v.shape), np.dtype(np.int64)


def _searchsorted_forward(seq, v, *, right):
    side = "right" if right else "left"
    if seq.ndim == 1:
        return np.searchsorted(seq, v, side=side).astype(np.int64, copy=False)
    out = np.empty(v.shape, np.int64)
    if not out.size:
        return out
    rows = seq.reshape(-1, seq.shape[-1])
    vals, outs = v.reshape(rows.shape[0], -1), out.reshape(rows.shape[0], -1)
    for k in range(rows.shape[0]):  # (one binary search per row of the sequence)
        outs[k] = np.searchsorted(rows[k], vals[k], side=side)
    return out


def _searchsorted_decomposition(seq, v, *, right):
    s = seq.unsqueeze(-2) if seq.ndim > 1 else seq
    below = (s <= v.unsqueeze(-1)) if right else (s < v.unsqueeze(-1))
    return below.sum(-1).long()


register("searchsorted", "reduce", _searchsorted_forward, _searchsorted_infer, None,
         inputs="seq v", decomposition=_searchsorted_decomposition)


# ---------------------------------------------------------------- log_softmax
#
# ``x - log(sum(exp(x)))`` along one axis, the max taken out first, as one node for eager
# execution (cross-entropy's first step). Tracing records its decomposition into max, sub,
# exp, sum and log instead, for the compiler to fuse; the tests check that the two agree.


def _log_softmax_forward(x, *, axis):
    z = x - _reduce_max(x, axes=(axis,), keepdim=True)
    z -= np.log(np.add.reduce(np.exp(z), axis=axis, keepdims=True))
    return z


def _normalizing_infer(name: str):
    """The shape rule of (log_)softmax along ``axis``: a float tensor, that axis not empty."""

    def infer(x, *, axis):
        (axis,) = normalize_axes(name, axis, len(x.shape))
        if not len(x.shape) or x.shape[axis] == 0:
            raise ShapeError(f"{name}: dimension {axis} of shape {tuple(x.shape)} is empty")
        if x.dtype.kind != "f":
            raise TypeError(f"{name}: needs a float tensor, got {x.dtype}; use x.float()")
        return tuple(x.shape), x.dtype

    return infer


_log_softmax_infer = _normalizing_infer("log_softmax")


def _log_softmax_vjp(g, out, x, *, axis):
    # d out_i / d x_j = [i = j] - softmax_j, and softmax = exp(out)
    return (g - out.exp() * g.sum((axis,), keepdim=True),)


def _log_softmax_decomposition(x, *, axis):
    shifted = x - x._amax((axis,), keepdim=True).detach()
    return shifted - shifted.exp().sum((axis,), keepdim=True).log()


def _log_softmax_jvp(tangents, out, x, *, axis):
    t = tangents[0]
    nb = t.ndim - x.ndim
    return t - (out.exp() * t).sum((axis + nb,), keepdim=True)


register("log_softmax", "reduce", _log_softmax_forward, _log_softmax_infer, _log_softmax_vjp,
         reads="out", decomposition=_log_softmax_decomposition, jvp=_log_softmax_jvp)


# ---------------------------------------------------------------- softmax
#
# ``exp(x - max) / sum(exp(x - max))`` along one axis, as one node for eager execution
# (attention's weights): one temporary instead of four, and a gradient of three passes,
# ``out * (g - sum(g * out))``, where the composite's takes a dozen. Tracing records the
# decomposition, for the compiler to fuse; the tests check that the two agree.


def _softmax_forward(x, *, axis):
    e = x - _reduce_max(x, axes=(axis,), keepdim=True)
    np.exp(e, out=e)
    e /= np.add.reduce(e, axis=axis, keepdims=True)
    return e


_softmax_infer = _normalizing_infer("softmax")


def _softmax_vjp(g, out, x, *, axis):
    return (out * (g - (g * out).sum((axis,), keepdim=True)),)


def _softmax_decomposition(x, *, axis):
    e = (x - x._amax((axis,), keepdim=True).detach()).exp()
    return e / e.sum((axis,), keepdim=True)


def _softmax_jvp(tangents, out, x, *, axis):
    t = tangents[0]
    nb = t.ndim - x.ndim
    return out * (t - (out * t).sum((axis + nb,), keepdim=True))


register("softmax", "reduce", _softmax_forward, _softmax_infer, _softmax_vjp, reads="out",
         decomposition=_softmax_decomposition, jvp=_softmax_jvp)



# ---------------------------------------------------------------- picked negative log-likelihood
#
# ``-sum(logp[i, t[i]])`` over the rows whose target is not ``ignore_index`` (divided by their
# count for "mean"): cross-entropy's and nll_loss's last step on (M, C) log-probabilities, as
# one node for eager execution. Its gradient is a one-hot product (no scatter); tracing records
# its decomposition, a gather with masks, which also reads each call's labels. The labels'
# range is checked on the data by the caller (functional._indexed_loss).


def _nll_forward(logp, t, *, ignore_index, reduction):
    m = t.shape[0]
    valid = t != ignore_index
    every = valid.all()
    picked = logp[np.arange(m), t if every else np.where(valid, t, 0)]
    if not every:
        picked = picked * valid
    total = -np.add.reduce(picked, axis=None)
    if reduction == "mean":
        count = m if every else int(np.count_nonzero(valid))
        total = total / count if count else np.nan  # the mean of nothing, as PyTorch
    return np.asarray(total, dtype=logp.dtype)


def _nll_infer(logp, t, *, ignore_index, reduction):
    if len(logp.shape) != 2 or tuple(t.shape) != tuple(logp.shape[:1]):
        raise ShapeError(f"nll: needs log-probabilities (M, C) and targets (M,), got "
                         f"{tuple(logp.shape)} and {tuple(t.shape)}")
    if logp.dtype.kind != "f" or t.dtype != np.int64:
        raise TypeError(f"nll: needs float log-probabilities and int64 targets, got "
                        f"{logp.dtype} and {t.dtype}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"nll: reduction must be 'mean' or 'sum', got {reduction!r}")
    return (), logp.dtype


def _nll_weights(logp, t, ignore_index, reduction):
    """Per row, what its picked log-probability counts in the loss: -1/n for the n rows that
    are not ignored with "mean" (0 for all when n is 0), -1 with "sum"; and the mean's nan."""
    w = (t != ignore_index).to(logp.dtype)
    if reduction == "sum":
        return -w, None
    count = w.sum()
    nothing = count == 0
    return -w / nothing._select(1.0, count), nothing


def _nll_vjp(g, out, logp, t, *, ignore_index, reduction):
    m, c = tuple(logp.shape)
    coef, _ = _nll_weights(logp, t, ignore_index, reduction)
    hit = t.reshape((m, 1)) == np.arange(c)  # one-hot rows of the targets
    return (coef.reshape((m, 1)) * g) * hit, None


def _nll_decomposition(logp, t, *, ignore_index, reduction):
    m = tuple(logp.shape)[0]
    coef, nothing = _nll_weights(logp, t, ignore_index, reduction)
    picked = logp[np.arange(m), (t != ignore_index)._select(t, 0)]
    total = (picked * coef).sum()
    return total if nothing is None else total + nothing._select(np.nan, 0.0)


def _nll_jvp(tangents, out, logp, t, *, ignore_index, reduction):
    # Linear in logp: the same weighted sum of the picked entries of its tangent.
    tl = tangents[0]
    nb = tl.ndim - logp.ndim
    m = tuple(logp.shape)[0]
    coef, _ = _nll_weights(logp, t, ignore_index, reduction)
    picked = tl[(slice(None),) * nb + (np.arange(m), (t != ignore_index)._select(t, 0))]
    return (picked * coef).sum((nb,))


register("nll", "reduce", _nll_forward, _nll_infer, _nll_vjp, inputs="logp t", reads="t",
         decomposition=_nll_decomposition, jvp=_nll_jvp)
