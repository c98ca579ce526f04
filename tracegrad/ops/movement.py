"""Movement primitives: reshape, permute, expand, pad, indexing and its adjoint, cat.

They move or select elements without arithmetic, so each gradient is the opposite movement:
reshape back, permute back, sum the expanded copies, slice the padding off, scatter-add the
selected elements into zeros.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ShapeError
from .base import align, register, sum_to_shape

# ---------------------------------------------------------------- reshape


def resolve_shape(op: str, old: tuple, new: tuple) -> tuple:
    """``new`` with a ``-1`` filled in; ShapeError if the element counts differ."""
    new = tuple(int(n) for n in new)
    size = math.prod(old)
    if new.count(-1) > 1:
        raise ShapeError(f"{op}: only one dimension can be -1, got {new}")
    if -1 in new:
        rest = math.prod(n for n in new if n != -1)
        if rest == 0 or size % rest:
            raise ShapeError(
                f"{op}: cannot fit shape {old} ({size} elements) into {new}; "
                f"the known dimensions multiply to {rest}, which does not divide {size}"
            )
        new = tuple(size // rest if n == -1 else n for n in new)
    if any(n < 0 for n in new) or math.prod(new) != size:
        raise ShapeError(
            f"{op}: cannot reshape {old} ({size} elements) into {new} "
            f"({math.prod(new)} elements); the element counts must match"
        )
    return new


def _reshape_infer(x, *, shape):
    return resolve_shape("reshape", tuple(x.shape), shape), x.dtype


register(
    "reshape", "movement",
    lambda x, *, shape: np.reshape(x, shape),
    _reshape_infer,
    lambda g, out, x, *, shape: (g.reshape(tuple(x.shape)),),
    linear=lambda attrs, batch: {"shape": batch + tuple(attrs["shape"])}, facts="view",
)

# ---------------------------------------------------------------- permute


def _inverse(dims: tuple) -> tuple:
    """The permutation that undoes ``dims``."""
    inv = [0] * len(dims)
    for i, d in enumerate(dims):
        inv[d] = i
    return tuple(inv)


def _permute_infer(x, *, dims):
    if sorted(dims) != list(range(len(x.shape))):
        raise ShapeError(
            f"permute: dims {tuple(dims)} is not an ordering of the {len(x.shape)} dimensions "
            f"of a tensor of shape {tuple(x.shape)}"
        )
    return tuple(x.shape[d] for d in dims), x.dtype


register(
    "permute", "movement",
    lambda x, *, dims: np.transpose(x, dims),
    _permute_infer,
    lambda g, out, x, *, dims: (g.permute(_inverse(dims)),),
    linear=lambda attrs, batch: {"dims": tuple(range(len(batch))) + tuple(
        d + len(batch) for d in attrs["dims"])}, facts="view",
)

# ---------------------------------------------------------------- expand


def _expand_infer(x, *, shape):
    old = tuple(x.shape)
    ok = len(shape) >= len(old) and all(
        o == n or o == 1 for o, n in zip(old[::-1], shape[::-1])
    )
    if not ok:
        raise ShapeError(
            f"expand: cannot expand shape {old} to {tuple(shape)}; only size-1 dimensions "
            f"can grow, and new dimensions go in front"
        )
    return tuple(shape), x.dtype


def broadcast_view(x: np.ndarray, shape: tuple) -> np.ndarray:
    """``np.broadcast_to(x, shape)``, a read-only view. For a C-ordered ``x`` the strides are
    worked out here and the view made by one ndarray call: NumPy's own goes through a
    Python layer and an nditer, which costs more than the rest of a small gradient rule."""
    shape = tuple(shape)
    if not x.flags.c_contiguous or x.ndim > len(shape):
        return np.broadcast_to(x, shape)
    lead = len(shape) - x.ndim
    strides = [0] * lead
    for n, m, stride in zip(x.shape, shape[lead:], x.strides):
        if n == m:
            strides.append(stride)
        elif n == 1:
            strides.append(0)
        else:  # does not broadcast: NumPy's error
            return np.broadcast_to(x, shape)
    out = np.ndarray(shape, x.dtype, x, 0, tuple(strides))
    out.flags.writeable = False
    return out


register(
    "expand", "movement",
    lambda x, *, shape: broadcast_view(x, shape),
    _expand_infer,
    lambda g, out, x, *, shape: (sum_to_shape(g, tuple(x.shape)),),
    # (linear: the tangent expanded the same way, its batch dimensions kept in front)
    jvp=lambda ts, out, x, *, shape: align(ts[0], out, x).expand(
        tuple(ts[0].shape[:ts[0].ndim - x.ndim]) + tuple(shape)), facts="view",
)

# ---------------------------------------------------------------- pad


def _pad_infer(x, *, pads, value):
    if len(pads) != len(x.shape) or any(lo < 0 or hi < 0 for lo, hi in pads):
        raise ShapeError(f"pad: pads {pads} do not fit shape {tuple(x.shape)}")
    return tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, pads)), x.dtype


def _pad_vjp(g, out, x, *, pads, value):
    return (g._getitem(tuple(slice(lo, lo + n) for n, (lo, _) in zip(x.shape, pads))),)


register(
    "pad", "movement",
    lambda x, *, pads, value: np.pad(x, pads, constant_values=value),
    _pad_infer,
    _pad_vjp,
    # (the tangent of the padding itself is zero, whatever value it holds)
    linear=lambda attrs, batch: {"pads": ((0, 0),) * len(batch) + tuple(attrs["pads"]),
                                 "value": 0},
)  # (each of these gradients reads only x's shape, or nothing)

# ---------------------------------------------------------------- indexing
#
# An index is a template tuple (ints, slices, None, Ellipsis, bool masks) in which integer
# index arrays stand as SLOT; the arrays themselves are operands of the primitive, so indices
# held in tensors (class labels, token ids) are data, not constants baked into the graph.


class _Slot:
    __slots__ = ()

    def __repr__(self) -> str:
        return "#"


SLOT = _Slot()
_SLOTS = (SLOT,) * 32  # an index of n arrays and nothing else is _SLOTS[:n]


def fill_index(index: tuple, arrays: tuple) -> tuple:
    if not arrays:
        return index
    it = iter(arrays)
    return tuple(next(it) if i is SLOT else i for i in index)


def is_basic_index(index: tuple) -> bool:
    """Ints, slices, None and Ellipsis only: NumPy gives a view, and no element twice."""
    return all(
        i is None or i is Ellipsis or isinstance(i, (int, slice, np.integer)) for i in index
    )


def _getitem_forward(x, *ix, index):
    out = x[fill_index(index, ix)]
    if type(out) is not np.ndarray:  # one element, as a NumPy scalar: as a 0-d view instead
        out = x[fill_index(index, ix) + (Ellipsis,)]
    elif ix and not out.flags.c_contiguous:
        # NumPy lays out x[:, idx] with the indexed dim first, then transposes: a copy in C
        # order, as PyTorch's (so that `.view` works on it as there)
        out = np.ascontiguousarray(out)
    return out


def _getitem_infer(x, *ix, index):
    probe = np.broadcast_to(np.empty((), dtype=x.dtype), tuple(x.shape))
    for a in ix:
        if a.dtype.kind not in "iu":
            raise IndexError(f"getitem: index arrays must be integers, got {a.dtype}")
    zeros = tuple(np.zeros(tuple(a.shape), dtype=np.int64) for a in ix)
    try:
        return probe[fill_index(index, zeros)].shape, x.dtype
    except IndexError as e:
        raise IndexError(
            f"getitem: index {_show(index, ix)} does not fit shape {tuple(x.shape)}: {e}"
        ) from None


def _show(index: tuple, ix: tuple = ()) -> str:
    parts, it = [], iter(ix)
    for i in index:
        if i is SLOT:
            a = next(it, None)
            parts.append(f"int array of shape {tuple(a.shape)}" if a is not None else "#")
        elif isinstance(i, np.ndarray):
            parts.append(f"array(shape={i.shape}, dtype={i.dtype})")
        elif i is Ellipsis:
            parts.append("...")
        else:
            parts.append(repr(i))
    return "[" + ", ".join(parts) + "]"


def _getitem_vjp(g, out, x, *ix, index):
    return (g._scatter_add(index, tuple(x.shape), *ix),) + (None,) * len(ix)


# (the index arrays are read; x only for its shape)
def _getitem_jvp(tangents, out, x, *ix, index):
    # Linear in x; batch dimensions go last while indexing, so that advanced indices
    # separated by slices (whose dimensions NumPy moves to the front) cannot mix with them.
    t = tangents[0]
    nb = t.ndim - x.ndim
    if not nb:
        return t._getitem(index, *ix)
    full = explicit_ellipsis(index, x.ndim, ix)
    return _batch_first(_batch_last(t, nb)._getitem(full, *ix), nb)


def explicit_ellipsis(index: tuple, ndim: int, ix: tuple = ()) -> tuple:
    """``index`` with its Ellipsis (if any) written out as slices for an operand of ``ndim``
    dimensions, and a trailing Ellipsis' worth of slices: so that dimensions appended to the
    operand stay untouched, at the end."""
    arrays = iter(ix)
    used = 0
    for i in index:
        if i is None or i is Ellipsis:
            continue
        if i is SLOT:
            next(arrays, None)
            used += 1
        elif isinstance(i, np.ndarray) and i.dtype == np.bool_:
            used += i.ndim
        else:
            used += 1
    fill = (slice(None),) * (ndim - used)
    if any(i is Ellipsis for i in index):
        k = next(k for k, i in enumerate(index) if i is Ellipsis)
        return index[:k] + fill + index[k + 1:]
    return index + fill


def _batch_last(t, nb: int):
    """``t`` with its ``nb`` leading (batch) dimensions moved to the end."""
    n = t.ndim
    return t.permute(tuple(range(nb, n)) + tuple(range(nb)))


def _batch_first(t, nb: int):
    """The inverse of `_batch_last`."""
    n = t.ndim
    return t.permute(tuple(range(n - nb, n)) + tuple(range(n - nb)))


register("getitem", "movement", _getitem_forward, _getitem_infer, _getitem_vjp,
         inputs="x *ix", reads="ix", jvp=_getitem_jvp, facts="view")  # (a basic index's)


def _scatter_add_forward(g, *ix, index, shape):
    if len(ix) == len(index) and index == _SLOTS[:len(ix)]:  # index arrays only: no slices
        full = ix
    else:
        full = fill_index(index, ix)
        if is_basic_index(full):
            out = np.zeros(shape, dtype=g.dtype)
            out[full] = g
            return out
    out = np.zeros(shape, dtype=g.dtype)
    add_at(out, full, g)
    return out


def add_at(out: np.ndarray, full: tuple, g: np.ndarray) -> None:
    """``np.add.at(out, full, g)`` for an ``out`` of zeros, bit for bit: repeated indices add
    up in the order they come. For rows picked by one integer array (an embedding's
    gradient), a stable sort groups each row's occurrences in that order and each group is
    summed by ``np.add.reduce`` over axis 0, which adds row after row as ``np.add.at`` does
    (4-5x faster than ``np.add.at``; ``np.add.reduceat`` would not do: it sums a segment
    pairwise). Row sums start from the zero in ``out``, as ``np.add.at``'s, so even the sign
    of a zero agrees. Anything else goes to ``np.add.at``."""
    idx = full[0] if len(full) == 1 else None
    width = math.prod(out.shape[1:])
    if idx is None or not isinstance(idx, np.ndarray) or idx.dtype.kind not in "iu" \
            or idx.size < 2 or width < 2 or g.shape != idx.shape + out.shape[1:] \
            or not out.flags.c_contiguous or idx.min() < 0:
        np.add.at(out, full, g)
        return
    # (width >= 2: a reduction over one column would be pairwise, not row after row)
    flat = idx.reshape(-1)
    order = np.argsort(flat, kind="stable")
    rows_of = flat[order]
    rows = g.reshape(flat.size, width)[order]
    starts = np.flatnonzero(np.concatenate(([True], rows_of[1:] != rows_of[:-1])))
    ends = np.append(starts[1:], flat.size)
    single = ends - starts == 1
    table = out.reshape(out.shape[0], width)
    table[rows_of[starts[single]]] += rows[starts[single]]
    for a, b in zip(starts[~single].tolist(), ends[~single].tolist()):
        table[rows_of[a]] += np.add.reduce(rows[a:b], axis=0)


def _scatter_add_vjp(gg, out, g, *ix, index, shape):
    return (gg._getitem(index, *ix),) + (None,) * len(ix)


def _scatter_add_jvp(tangents, out, g, *ix, index, shape):
    t = tangents[0]  # (linear in g; batch dimensions last, as for getitem)
    nb = t.ndim - g.ndim
    if not nb:
        return t._scatter_add(index, tuple(shape), *ix)
    full = explicit_ellipsis(index, len(shape), ix)
    return _batch_first(_batch_last(t, nb)._scatter_add(
        full, tuple(shape) + tuple(t.shape[:nb]), *ix), nb)


register(
    "scatter_add", "movement",
    _scatter_add_forward,
    lambda g, *ix, index, shape: (tuple(shape), g.dtype),
    _scatter_add_vjp,
    inputs="g *ix", reads="ix", jvp=_scatter_add_jvp,
)

# ---------------------------------------------------------------- as_strided
#
# PyTorch's as_strided, on x's elements in C order (its memory, when x is one C-ordered
# block): the element at (i_0, ..., i_k) is flat element ``offset + sum(i_j * strides[j])``,
# strides and offset counted in elements. Views that no slice and reshape make go through
# it: the diagonals of a batch of sliced matrices, overlapping windows (Tensor.unfold).


def strided_positions(shape: tuple, strides: tuple, offset: int) -> np.ndarray:
    """The flat position each element of such a view reads, as an int64 array of ``shape``."""
    pos = np.full(tuple(shape), int(offset), dtype=np.int64)
    for k, (n, s) in enumerate(zip(shape, strides)):
        pos += (np.arange(n, dtype=np.int64) * s).reshape((n,) + (1,) * (len(shape) - k - 1))
    return pos


def overlapping(shape: tuple, strides: tuple, offset: int = 0) -> bool:
    """Whether two elements of such a view are one location (overlapping windows, a stride
    of 0): each dimension's stride passing the span of the smaller ones rules it out at once;
    otherwise the positions are compared."""
    span = 0
    for s, n in sorted((abs(s), n) for n, s in zip(shape, strides) if n > 1):
        if s <= span:
            pos = strided_positions(shape, strides, offset).reshape(-1)
            return np.unique(pos).size < pos.size
        span += s * (n - 1)
    return False


def _as_strided_forward(x, *, shape, strides, offset):
    if not x.flags.c_contiguous:  # (the same elements, copied)
        return np.ascontiguousarray(x).reshape(-1)[strided_positions(shape, strides, offset)]
    flat = x.reshape(-1)
    if math.prod(shape) == 0:
        return flat[:0].reshape(shape)
    size = flat.itemsize
    return np.lib.stride_tricks.as_strided(
        flat[offset:], tuple(shape), tuple(s * size for s in strides),
        writeable=x.flags.writeable and not overlapping(shape, strides))


def _as_strided_infer(x, *, shape, strides, offset):
    n = math.prod(tuple(x.shape))
    if len(shape) != len(strides) or any(d < 0 for d in shape) or offset < 0:
        raise ShapeError(f"as_strided: needs one stride per dimension, sizes >= 0 and an "
                         f"offset >= 0; got shape {tuple(shape)}, strides {tuple(strides)}, "
                         f"offset {offset}")
    if math.prod(shape):
        lo = offset + sum(s * (d - 1) for d, s in zip(shape, strides) if s < 0)
        hi = offset + sum(s * (d - 1) for d, s in zip(shape, strides) if s > 0)
        if lo < 0 or hi >= n:
            raise ShapeError(
                f"as_strided: shape {tuple(shape)}, strides {tuple(strides)} and offset "
                f"{offset} reach elements {lo} to {hi} of an operand of {n} elements; they "
                f"must stay in [0, {n})")
    return tuple(shape), x.dtype


def _as_strided_vjp(g, out, x, *, shape, strides, offset):
    # (overlapping elements are one location: their gradients add up)
    n = math.prod(tuple(x.shape))
    pos = strided_positions(shape, strides, offset)
    return (g._scatter_add((pos,), (n,)).reshape(tuple(x.shape)),)


def _as_strided_jvp(tangents, out, x, *, shape, strides, offset):
    t = tangents[0]  # (linear; batch dimensions in front)
    batch = tuple(t.shape[:t.ndim - x.ndim])
    return t.reshape(batch + (-1,))._getitem(
        (Ellipsis, strided_positions(shape, strides, offset)))


register("as_strided", "movement", _as_strided_forward, _as_strided_infer, _as_strided_vjp,
         jvp=_as_strided_jvp, facts="view")

def _setitem_forward(x, v, *ix, index):
    out = x.copy()
    full = fill_index(index, ix)
    target_ndim = out[full].ndim
    if v.ndim > target_ndim:  # extra leading size-1 dims, which the shape rule allowed
        v = v.reshape(v.shape[v.ndim - target_ndim:])
    out[full] = v  # as NumPy: with repeated indices the last write wins
    return out


def _setitem_infer(x, v, *ix, index):
    target, _ = _getitem_infer(x, *ix, index=index)
    try:
        np.broadcast_shapes(tuple(v.shape), target)
        if len(v.shape) > len(target) and any(n != 1 for n in v.shape[:len(v.shape) - len(target)]):
            raise ValueError
    except ValueError:
        raise ShapeError(
            f"setitem: a value of shape {tuple(v.shape)} does not fit the selected part of "
            f"shape {target}"
        ) from None
    if v.dtype != x.dtype:
        raise TypeError(f"setitem: value dtype {v.dtype} differs from the tensor's {x.dtype}")
    return tuple(x.shape), x.dtype


def _setitem_vjp(g, out, x, v, *ix, index):
    gx = g._setitem(index, 0, *ix) if x.requires_grad else None
    gv = None
    if v.requires_grad:
        gv = g._getitem(index, *ix)
        if gv.ndim < v.ndim:  # the value had extra leading size-1 dims
            gv = gv.reshape((1,) * (v.ndim - gv.ndim) + tuple(gv.shape))
        gv = sum_to_shape(gv, tuple(v.shape))
    return (gx, gv) + (None,) * len(ix)


def _setitem_jvp(tangents, out, x, v, *ix, index):
    # Linear in (x, v) jointly: the tangent of x with the selected part replaced by v's.
    tx, tv = tangents[0], tangents[1]
    t = tx if tx is not None else tv
    nb = t.ndim - (x.ndim if tx is not None else v.ndim)
    if tx is None:
        tx = (out.detach() * 0).expand(tuple(t.shape[:nb]) + tuple(x.shape))
    if not nb:
        return tx._setitem(index, 0 if tv is None else tv, *ix)
    full = explicit_ellipsis(index, x.ndim, ix)
    value = 0 if tv is None else _batch_last(tv, nb)
    return _batch_first(_batch_last(tx, nb)._setitem(full, value, *ix), nb)


register("setitem", "movement", _setitem_forward, _setitem_infer, _setitem_vjp,
         inputs="x v *ix", reads="ix", jvp=_setitem_jvp)

# ---------------------------------------------------------------- cat


def _cat_infer(*xs, dim):
    first = xs[0]
    nd = len(first.shape)
    for x in xs[1:]:
        if len(x.shape) != nd or any(
            a != b for i, (a, b) in enumerate(zip(x.shape, first.shape)) if i != dim
        ):
            raise ShapeError(
                f"cat: shapes {', '.join(str(tuple(t.shape)) for t in xs)} differ outside "
                f"dim {dim}; all other dimensions must match"
            )
        if x.dtype != first.dtype:
            raise TypeError(f"cat: dtypes {first.dtype} and {x.dtype} differ; cast first")
    shape = list(first.shape)
    shape[dim] = sum(x.shape[dim] for x in xs)
    return tuple(shape), first.dtype


def _cat_vjp(g, out, *xs, dim):
    grads, start = [], 0
    for x in xs:
        n = x.shape[dim]
        if x.requires_grad:
            grads.append(g._getitem((slice(None),) * dim + (slice(start, start + n),)))
        else:
            grads.append(None)
        start += n
    return tuple(grads)


register(
    "cat", "movement",
    lambda *xs, dim: np.concatenate(xs, axis=dim),
    _cat_infer,
    _cat_vjp,
    inputs="*xs", # (reads only their shapes)
    linear=lambda attrs, batch: {"dim": attrs["dim"] + len(batch)},
)

# ---------------------------------------------------------------- im2col and col2im
#
# The windows of a convolution or a pool over dimensions 1..nd of x, nd = len(kernel) (x is
# (C, *spatial, *rest): channels first, the batch last, so that each window's copy runs
# along the contiguous batch): for each kernel offset (row-major), the strided slice
# ``x[:, o*d : o*d + s*(out-1) + 1 : s, ...]`` of every output position, stacked along a new
# first axis: ``(K, C, *out, *rest)``, K = prod(kernel). One copy through one strided view
# (no index arrays). Its adjoint, col2im, adds each offset's slab back into zeros of x's
# shape: one in-place add per kernel offset into a strided view (no np.add.at). Each is the
# other's VJP.


def window_sizes(op: str, shape: tuple, kernel: tuple, stride: tuple, dilation: tuple
                 ) -> tuple:
    """How many windows fit along each of dimensions 1..len(kernel) of ``shape``."""
    nd = len(kernel)
    if not 0 < nd < len(shape) or not len(stride) == len(dilation) == nd:
        raise ShapeError(f"{op}: kernel {kernel}, stride {stride} and dilation {dilation} do "
                         f"not fit dimensions 1..{nd} of shape {tuple(shape)}")
    out = tuple((n - d * (k - 1) - 1) // s + 1
                for n, k, s, d in zip(shape[1:nd + 1], kernel, stride, dilation))
    if any(o <= 0 for o in out):
        raise ShapeError(f"{op}: dimensions 1..{nd} of shape {tuple(shape)} are smaller than "
                         f"the kernel {kernel} with dilation {dilation}")
    return out


def _windows(x: np.ndarray, kernel: tuple, stride: tuple, dilation: tuple, out: tuple,
             writeable: bool = False) -> np.ndarray:
    """The view ``kernel + (C,) + out + rest`` of ``x``'s windows (no copy)."""
    nd = len(kernel)
    step = x.strides[1:nd + 1]
    strides = (tuple(t * d for t, d in zip(step, dilation)) + x.strides[:1]
               + tuple(t * s for t, s in zip(step, stride)) + x.strides[nd + 1:])
    return np.lib.stride_tricks.as_strided(x, kernel + x.shape[:1] + out + x.shape[nd + 1:],
                                           strides, writeable=writeable)


def _im2col_shape(shape: tuple, kernel: tuple, out: tuple) -> tuple:
    return (math.prod(kernel), shape[0]) + out + tuple(shape[len(kernel) + 1:])


def _im2col_forward(x, *, kernel, stride, dilation):
    out = window_sizes("im2col", x.shape, kernel, stride, dilation)
    if x.ndim > len(kernel) + 1 and x.strides[-1] != x.itemsize:
        # The copy below runs along the last dimension: when that is strided (a batch-last
        # view of batch-first memory), one transposing copy first is far cheaper.
        x = np.ascontiguousarray(x)
    cols = np.empty(kernel + x.shape[:1] + out + x.shape[len(kernel) + 1:], dtype=x.dtype)
    np.copyto(cols, _windows(x, kernel, stride, dilation, out))
    return cols.reshape(_im2col_shape(x.shape, kernel, out))


def _im2col_infer(x, *, kernel, stride, dilation):
    shape = tuple(x.shape)
    out = window_sizes("im2col", shape, kernel, stride, dilation)
    return _im2col_shape(shape, kernel, out), x.dtype


def _im2col_vjp(g, out, x, *, kernel, stride, dilation):
    return (g._col2im(kernel, stride, dilation, tuple(x.shape)),)


def _batch_to_end(t, nb: int):
    """A tangent's ``nb`` leading batch dimensions moved last, where im2col and col2im carry
    them along as more trailing dimensions."""
    return t.permute(tuple(range(nb, t.ndim)) + tuple(range(nb)))


def _batch_to_front(t, nb: int):
    n = t.ndim
    return t.permute(tuple(range(n - nb, n)) + tuple(range(n - nb)))


def _im2col_jvp(tangents, out, x, *, kernel, stride, dilation):
    t = tangents[0]
    nb = t.ndim - x.ndim
    if not nb:
        return t._im2col(kernel, stride, dilation)
    return _batch_to_front(_batch_to_end(t, nb)._im2col(kernel, stride, dilation), nb)


register("im2col", "movement", _im2col_forward, _im2col_infer, _im2col_vjp, jvp=_im2col_jvp)


def _col2im_forward(g, *, kernel, stride, dilation, shape):
    out = np.zeros(shape, dtype=g.dtype)
    sizes = window_sizes("col2im", shape, kernel, stride, dilation)
    views = _windows(out, kernel, stride, dilation, sizes, writeable=True)
    for k, offset in enumerate(np.ndindex(*kernel)):
        view = views[offset]
        np.add(view, g[k], out=view)  # (the windows of one offset never overlap)
    return out


def _col2im_infer(g, *, kernel, stride, dilation, shape):
    shape = tuple(shape)
    want = _im2col_shape(shape, kernel, window_sizes("col2im", shape, kernel, stride,
                                                        dilation))
    if tuple(g.shape) != want:
        raise ShapeError(f"col2im: windows of shape {tuple(g.shape)} do not fit shape {shape} "
                         f"with kernel {kernel}, stride {stride}, dilation {dilation}: they "
                         f"must be {want}")
    return shape, g.dtype


def _col2im_vjp(gg, out, g, *, kernel, stride, dilation, shape):
    return (gg._im2col(kernel, stride, dilation),)


def _col2im_jvp(tangents, out, g, *, kernel, stride, dilation, shape):
    t = tangents[0]
    nb = t.ndim - g.ndim
    if not nb:
        return t._col2im(kernel, stride, dilation, tuple(shape))
    batch = tuple(t.shape[:nb])
    return _batch_to_front(_batch_to_end(t, nb)._col2im(kernel, stride, dilation,
                                                       tuple(shape) + batch), nb)


register("col2im", "movement", _col2im_forward, _col2im_infer, _col2im_vjp, inputs="g",
         jvp=_col2im_jvp)
