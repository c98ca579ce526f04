"""matmul, with NumPy's rules for 1-d operands and batch broadcasting; and linear."""

from __future__ import annotations

import math

import numpy as np

from ..errors import ShapeError
from .base import broadcast_shapes, register, sum_to_shape


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.matmul``, with a batch of rows times one matrix (a Linear layer on (B, T, C)) as
    one matrix product over all the rows: NumPy calls BLAS once per batch element, which
    takes 1.4x as long at a small GPT's sizes."""
    if a.ndim > 2 and b.ndim == 2 and a.flags.c_contiguous and \
            (out is None or out.flags.c_contiguous):
        rows = a.reshape(math.prod(a.shape[:-1]), a.shape[-1])
        if out is None:
            return np.matmul(rows, b).reshape(a.shape[:-1] + b.shape[1:])
        np.matmul(rows, b, out=out.reshape(rows.shape[0], b.shape[1]))
        return out
    return np.matmul(a, b, out=out)


def _matmul_infer(a, b):
    sa, sb = tuple(a.shape), tuple(b.shape)
    if not sa or not sb:
        raise ShapeError(f"matmul: both operands need at least 1 dimension, got {sa} and {sb}; "
                         f"use * to multiply by a scalar")
    if a.dtype != b.dtype:
        raise TypeError(f"matmul: operands have dtypes {a.dtype} and {b.dtype}; cast one")
    k_a = sa[-1]
    k_b = sb[0] if len(sb) == 1 else sb[-2]
    if k_a != k_b:
        raise ShapeError(
            f"matmul: shapes {sa} @ {sb} do not fit: the last dimension of the left operand "
            f"({k_a}) must equal the {'only' if len(sb) == 1 else 'second-to-last'} dimension "
            f"of the right one ({k_b}); transpose one of them (x.T) or fix the layer sizes"
        )
    batch = broadcast_shapes("matmul", sa[:-2], sb[:-2])
    out = batch + (sa[-2:-1] if len(sa) > 1 else ()) + (sb[-1:] if len(sb) > 1 else ())
    return out, a.dtype


def _matmul_vjp(g, out, a, b):
    if a.ndim == 2 and b.ndim == 2:  # the common case: nothing to lift or sum back
        return _product_grads(g, a, b, a.requires_grad, b.requires_grad)
    if a.ndim == 1 and b.ndim == 1:  # a dot product
        return (g * b if a.requires_grad else None), (g * a if b.requires_grad else None)
    # Lift 1-d operands to matrices, differentiate the matrix product, undo the lift.
    a2 = a.reshape((1, a.shape[0])) if a.ndim == 1 else a
    b2 = b.reshape((b.shape[0], 1)) if b.ndim == 1 else b
    g2 = g
    if a.ndim == 1:
        g2 = g2.unsqueeze(-2)
    if b.ndim == 1:
        g2 = g2.unsqueeze(-1)
    need_b = b.requires_grad
    db = None
    if need_b and b2.ndim == 2 and a2.ndim > 2:
        # A batch of rows times one matrix (a Linear layer on (B, T, C)): b's gradient is
        # one matrix product over all the rows, not a batch of products summed afterwards
        (k, n), rows = tuple(b2.shape), math.prod(tuple(a2.shape)[:-1])
        _, db = _product_grads(g2.reshape((rows, n)), a2.reshape((rows, k)), b2, False, True)
        need_b = False
    # (a lifted operand is a view: the flags come from the operands themselves)
    da, db_batched = _product_grads(g2, a2, b2, a.requires_grad, need_b)
    if da is not None:
        da = sum_to_shape(da, tuple(a2.shape)).reshape(tuple(a.shape))
    if db_batched is not None:
        db = sum_to_shape(db_batched, tuple(b2.shape))
    if db is not None:
        db = db.reshape(tuple(b.shape))
    return da, db


def _product_grads(g, a, b, need_a, need_b):
    """The gradients of ``a @ b`` (each at least 2-d) for the operands that need them,
    before summing back over broadcast batch dimensions."""
    da = g @ b.transpose(-1, -2) if need_a else None
    db = None
    if need_b:
        if _transposed(b):
            # b is a transposed view (the ``x @ W.T`` of a Linear layer): compute its gradient
            # transposed too, so that W's gradient comes out C-ordered, with no copy.
            db = (g.transpose(-1, -2) @ a).transpose(-1, -2)
        else:
            db = a.transpose(-1, -2) @ g
    return da, db


def _transposed(t) -> bool:
    """Whether a matrix's values are stored column by column (the transpose of a C array)."""
    flags = getattr(t._data, "flags", None)
    return t.ndim == 2 and flags is not None and flags.f_contiguous and not flags.c_contiguous


def _matmul_jvp(tangents, out, a, b):
    # Bilinear: ta @ b + a @ tb. 1-d operands are lifted to matrices first, and a tangent's
    # batch dimensions are kept apart from the operands' own batch dimensions (align).
    ta, tb = tangents
    t, x = (ta, a) if ta is not None else (tb, b)
    nb = t.ndim - x.ndim
    batch = tuple(t.shape[:nb])
    if not nb and ta is not None and tb is not None:
        return ta @ b + a @ tb
    if not nb:
        return ta @ b if ta is not None else a @ tb
    a2 = a.reshape((1, a.shape[0])) if a.ndim == 1 else a
    b2 = b.reshape((b.shape[0], 1)) if b.ndim == 1 else b
    rank = max(a2.ndim, b2.ndim)
    total = None
    for tx, x2, left in ((ta, a2, True), (tb, b2, False)):
        if tx is None:
            continue
        if rank == 2:  # plain matrices: the batch folded into one product, not a loop
            part = _folded(tx, batch, x2, a2, b2, left)
        else:
            lifted = tx.reshape(batch + (1,) * (rank - x2.ndim) + tuple(x2.shape))
            part = lifted @ b2 if left else a2 @ lifted
        total = part if total is None else total + part
    return total.reshape(batch + tuple(out.shape))


def _folded(tx, batch: tuple, x2, a2, b2, left: bool):
    """``tx @ b2`` (left) or ``a2 @ tx`` for a batch of matrices ``tx`` (``batch + x2``'s
    shape) and a matrix, as one matrix product: the batch joins the rows (left) or the
    columns (right). NumPy would otherwise loop over the batch (matrix-vector products,
    for a 1-d operand)."""
    n = len(batch)
    (r, c) = tuple(x2.shape)
    if left:  # (B.., r, c) -> (B..r, c) @ (c, k) -> (B.., r, k)
        return (tx.reshape((-1, c)) @ b2).reshape(batch + (r, tuple(b2.shape)[1]))
    # (B.., r, c) -> (r, B.., c) -> (r, B..c); a2 @ it -> (m, B.., c) -> (B.., m, c)
    cols = tx.reshape(batch + (r, c)).permute((n,) + tuple(range(n)) + (n + 1,))
    prod = a2 @ cols.reshape((r, -1))
    m = tuple(a2.shape)[0]
    return prod.reshape((m,) + batch + (c,)).permute(tuple(range(1, n + 1)) + (0, n + 1))


# (the layout of b, not its values, when only b needs a gradient: see _product_grads)
register("matmul", "linalg", matmul, _matmul_infer, _matmul_vjp, inputs="a b",
         reads={"a": "b", "b": "a"}, jvp=_matmul_jvp)


# ---------------------------------------------------------------- linear
#
# ``x @ weight.T + bias``, PyTorch's Linear, as one node for eager execution: a Linear layer
# is then one node instead of three (the transpose, the product, the bias add), the bias is
# added in place, and weight's gradient is computed in weight's own layout. Tracing records
# the same function written with matmul and add (see ``functional.linear``), whose kernels the
# compiler fuses with whatever follows; the tests check that the two agree.


def _linear_forward(x, weight, bias):
    out = matmul(x, weight.T)
    out += bias
    return out


def check_linear_features(x_shape: tuple, weight_shape: tuple) -> None:
    """The error for an input whose features do not fit a (out, in) weight."""
    if x_shape and len(weight_shape) == 2 and x_shape[-1] != weight_shape[1]:
        raise ShapeError(
            f"linear: the input's last dimension ({x_shape[-1]}) must equal the weight's "
            f"in_features ({weight_shape[1]}); input {x_shape}, weight {weight_shape} (out, in)"
        )


def _linear_infer(x, weight, bias):
    sx, sw, sb = tuple(x.shape), tuple(weight.shape), tuple(bias.shape)
    if len(sw) != 2 or not sx or sb not in (sw[:1], (1,)):
        raise ShapeError(
            f"linear: weight must be (out, in) and bias (out,), and the input at least 1-d; "
            f"got input {sx}, weight {sw}, bias {sb}"
        )
    check_linear_features(sx, sw)
    if not x.dtype == weight.dtype == bias.dtype:
        raise TypeError(f"linear: input, weight and bias have dtypes {x.dtype}, {weight.dtype} "
                        f"and {bias.dtype}; cast them to one")
    return sx[:-1] + sw[:1], x.dtype


def _linear_vjp(g, out, x, weight, bias):
    gx = g @ weight if x.requires_grad else None
    if not (weight.requires_grad or bias.requires_grad):
        return gx, None, None
    if x.ndim == 2:  # a batch of rows already
        rows, x_rows = g, x
    else:  # every leading dimension is a batch of rows
        n_out, n_in = tuple(weight.shape)
        n = math.prod(tuple(x.shape)[:-1])
        rows, x_rows = g.reshape((n, n_out)), x.reshape((n, n_in))
    gw = rows.transpose(-1, -2) @ x_rows if weight.requires_grad else None
    gb = None
    if bias.requires_grad:
        gb = rows.sum((0,))
        if bias.shape != gb.shape:  # a bias of one number, broadcast to every output
            gb = gb.sum((0,), keepdim=True)
    return gx, gw, gb


def _linear_decomposition(x, weight, bias):
    return x @ weight.T + bias


def _linear_jvp(tangents, out, x, weight, bias):
    tx, tw, tb = tangents
    total = None
    if tx is not None:  # (every leading dimension, batch included, as rows of one product)
        n_out, n_in = tuple(weight.shape)
        rows = tx.reshape((-1, n_in)) @ weight.transpose(-1, -2)
        total = rows.reshape(tuple(tx.shape[:-1]) + (n_out,))
    if tw is not None:  # (as many dimensions as x between the batch and (in, out))
        nb = tw.ndim - 2
        lifted = tw.transpose(-1, -2)
        if x.ndim > 2:
            lifted = lifted.reshape(tuple(tw.shape[:nb]) + (1,) * (x.ndim - 2) +
                                    tuple(lifted.shape[nb:]))
        part = x @ lifted
        total = part if total is None else total + part
    if tb is not None:  # (at the output's rank, so it broadcasts over the rows)
        lifted = tb.reshape(tuple(tb.shape[:tb.ndim - 1]) + (1,) * (out.ndim - 1) +
                            tuple(tb.shape[-1:]))
        total = lifted if total is None else total + lifted
    return total


register("linear", "linalg", _linear_forward, _linear_infer, _linear_vjp,
         inputs="x weight bias", reads={"x": "weight", "weight": "x"},
         decomposition=_linear_decomposition, jvp=_linear_jvp)
