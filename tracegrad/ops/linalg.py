"""matmul, with NumPy's rules for 1-d operands and batch broadcasting; linear; and the
matrix functions under tg.linalg (inv, solve, det, slogdet, cholesky, eigh, svd, qr, pinv)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import DTypeError, LinAlgError, ShapeError
from .base import align, broadcast_shapes, register, sum_to_shape


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


# ---------------------------------------------------------------- factorizations and inverses
#
# The matrix functions of tg.linalg that are not products: each one NumPy (LAPACK) call on
# the last two dimensions, batched over the leading ones, with the standard gradients
# (Giles 2008, "An extended collection of matrix derivative results"; Seeger et al. 2017;
# PyTorch's FunctionsManual.cpp for the same formulas). A decomposition with several results
# (eigh, svd, qr, slogdet) is one primitive whose value *packs* them along its last
# dimension, each flattened (`layout` gives their shapes): the IR has one value per node,
# and the gradient needs every part at once. tracegrad/linalg.py unpacks them for the user.
#
# The rules call the other primitives of this family through ``x._prim(name, ...)`` (on
# tensors and on the backward engine's arrays alike), and build triangles and diagonals by
# multiplying with constant masks, so they stay differentiable and traceable.


def check_matrix(op: str, shape: tuple, dtype: Any, square: bool = True) -> None:
    """The errors of torch.linalg for an operand that is not a (batch of) float matrices."""
    shape = tuple(shape)
    if len(shape) < 2:
        raise ShapeError(f"{op}: the input must have at least 2 dimensions (a matrix, or a "
                         f"batch of them), got shape {shape}")
    if square and shape[-1] != shape[-2]:
        raise ShapeError(f"{op}: expects square matrices in the last two dimensions, got "
                         f"shape {shape} ({shape[-2]} x {shape[-1]})")
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise DTypeError(f"{op}: expects a float32 or float64 tensor, got {np.dtype(dtype)}; "
                         f"cast it first (A.double(), A.float())")


def layout(op: str, shape: tuple, **attrs: Any) -> tuple:
    """The trailing shapes of the parts a packed decomposition of matrices of ``shape``
    holds, in order."""
    m, n = shape[-2:]
    k = min(m, n)
    if op == "slogdet":
        return ((), ())
    if op == "eigh":
        return ((n,), (n, n))
    if op == "svd":
        if attrs["full_matrices"]:
            return ((m, m), (k,), (n, n))
        return ((m, k), (k,), (k, n))
    if op == "qr":
        if attrs["mode"] == "complete":
            return ((m, m), (m, n))
        return ((m, k), (k, n))
    raise KeyError(op)


def unpack(packed: Any, parts: tuple) -> list:
    """The parts (trailing shapes ``parts``) of a packed value; any leading dimensions
    (a batch of matrices, a batch of tangents) are kept."""
    lead = tuple(packed.shape[:-1])
    out, start = [], 0
    for shape in parts:
        size = math.prod(shape)
        piece = packed._getitem((Ellipsis, slice(start, start + size)))
        out.append(piece.reshape(lead + shape))
        start += size
    return out


def _pack_arrays(batch: tuple, *parts: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(p).reshape(batch + (math.prod(p.shape[len(batch):]),))
                           for p in parts], axis=-1)


def _pack(parts: list, shapes: tuple) -> Any:
    """Tensors (or tangents with leading batch dimensions) packed as `unpack` reads them."""
    flat = []
    for p, shape in zip(parts, shapes):
        lead = tuple(p.shape[:p.ndim - len(shape)])
        flat.append(p.reshape(lead + (math.prod(shape),)))
    if len(flat) == 1:
        return flat[0]
    return flat[0]._prim("cat", *flat[1:], dim=flat[0].ndim - 1)


def _packed_infer(op: str, square: bool):
    def infer(a, **attrs):
        check_matrix(f"linalg.{op}", a.shape, a.dtype, square)
        parts = layout(op, tuple(a.shape), **attrs)
        return tuple(a.shape[:-2]) + (sum(math.prod(s) for s in parts),), a.dtype
    return infer


def _mT(x):
    return x.transpose(-1, -2)


def _eye(n: int, x: Any) -> np.ndarray:
    return np.eye(n, dtype=x.dtype)


def _diag(x):
    """The diagonal of (a batch of) square matrices."""
    return (x * _eye(x.shape[-1], x)).sum(-1)


def _diag_embed(v):
    return v.unsqueeze(-1) * _eye(v.shape[-1], v)


def _tril(x, k: int = 0):
    return x * np.tri(x.shape[-2], x.shape[-1], k, dtype=x.dtype)


def _sym(x):
    return (x + _mT(x)) * 0.5


def _singular(op: str, a: np.ndarray, what: str, fix: str):
    where = "" if a.ndim == 2 else " (at least one matrix of the batch)"
    return LinAlgError(f"linalg.{op}: the input of shape {a.shape}{where} is {what}; {fix}")


_SINGULAR_FIX = ("use tg.linalg.pinv or tg.linalg.lstsq for a least-squares answer, or add a "
                 "small multiple of the identity (A + eps * I)")


def _square_infer(op: str):
    def infer(a):
        check_matrix(f"linalg.{op}", a.shape, a.dtype)
        return tuple(a.shape), a.dtype
    return infer


# ---- inv: d(A^-1) = -A^-1 dA A^-1


def _inv_forward(a):
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError:
        raise _singular("inv", a, "singular (not invertible)", _SINGULAR_FIX) from None


register("inv", "linalg", _inv_forward, _square_infer("inv"),
         lambda g, out, a: (-(_mT(out) @ g @ _mT(out)),), inputs="a", reads="out",
         jvp=lambda tangents, out, a: -(out @ tangents[0] @ out))


# ---- solve: X = A^-1 B for matrices B (..., n, k); batch dimensions broadcast


def _solve_forward(a, b):
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        raise _singular("solve", a, "singular", _SINGULAR_FIX) from None


def _solve_infer(a, b):
    check_matrix("linalg.solve", a.shape, a.dtype)
    sa, sb = tuple(a.shape), tuple(b.shape)
    if len(sb) < 2 or sb[-2] != sa[-1]:
        raise ShapeError(f"linalg.solve: A of shape {sa} and B of shape {sb} do not fit: B "
                         f"must be (..., {sa[-1]}, k) (or (..., {sa[-1]}) for vectors)")
    if a.dtype != b.dtype:
        raise DTypeError(f"linalg.solve: A and B have dtypes {a.dtype} and {b.dtype}; cast "
                         f"one to the other")
    batch = broadcast_shapes("linalg.solve", sa[:-2], sb[:-2])
    return batch + sb[-2:], a.dtype


def _solve_vjp(g, out, a, b):
    gb = _mT(a)._prim("solve", g)
    ga = -(gb @ _mT(out)) if a.requires_grad else None
    return (None if ga is None else sum_to_shape(ga, tuple(a.shape)),
            sum_to_shape(gb, tuple(b.shape)) if b.requires_grad else None)


def _solve_jvp(tangents, out, a, b):
    ta, tb = tangents
    # (each tangent's batch dimensions kept apart from the broadcast batch dimensions)
    ta = None if ta is None else align(ta, out, a)
    tb = None if tb is None else align(tb, out, b)
    rhs = tb if ta is None else (-(ta @ out) if tb is None else tb - ta @ out)
    return a._prim("solve", rhs)


register("solve", "linalg", _solve_forward, _solve_infer, _solve_vjp, inputs="a b",
         reads={"a": "a out", "b": "a"}, jvp=_solve_jvp)


# ---- det: d det A = <cof A, dA>, cof A = det(A) A^-T the matrix of cofactors (adj(A)^T).
# `cofactor` is a primitive of its own so that det's gradient exists at singular matrices
# too (as PyTorch's): its forward goes through an SVD there. Its own derivative (det's second
# one) uses A^-1, so it needs an invertible matrix.


def _det_infer(a):
    check_matrix("linalg.det", a.shape, a.dtype)
    return tuple(a.shape[:-2]), a.dtype


register("det", "linalg", np.linalg.det, _det_infer,
         lambda g, out, a: (g.unsqueeze(-1).unsqueeze(-1) * a._prim("cofactor"),),
         inputs="a", reads="a",
         jvp=lambda tangents, out, a: (a._prim("cofactor") * tangents[0]).sum((-2, -1)))


def _cofactor_forward(a):
    try:
        return np.linalg.det(a)[..., None, None] * np.swapaxes(np.linalg.inv(a), -1, -2)
    except np.linalg.LinAlgError:  # a singular matrix in the batch: A = U S Vh, and
        pass  # cof A = det(U) det(Vh) U diag(prod of the other singular values) Vh
    u, s, vh = np.linalg.svd(a)
    eye = np.eye(s.shape[-1], dtype=bool)
    others = np.prod(np.where(eye, 1, s[..., None, :]), axis=-1)
    sign = np.linalg.det(u) * np.linalg.det(vh)
    return ((u * (sign[..., None] * others)[..., None, :]) @ vh).astype(a.dtype, copy=False)


def _cofactor_vjp(g, out, a):
    # d cof = cof tr(A^-1 dA) - A^-T dA^T cof, so gA = <g, cof> A^-T - cof g^T A^-T
    inv_t = _mT(a._prim("inv"))
    return ((g * out).sum((-2, -1)).unsqueeze(-1).unsqueeze(-1) * inv_t
            - out @ _mT(g) @ inv_t,)


def _cofactor_jvp(tangents, out, a):
    t = tangents[0]
    trace = _diag(a._prim("solve", t)).sum(-1).unsqueeze(-1).unsqueeze(-1)
    return out * trace - _mT(a._prim("inv")) @ _mT(t) @ out


register("cofactor", "linalg", _cofactor_forward, _square_infer("cofactor"), _cofactor_vjp,
         inputs="a", reads="a out", jvp=_cofactor_jvp)


# ---- slogdet: (sign, log|det A|) packed as (..., 2); only log|det| has a gradient


def _slogdet_forward(a):
    sign, logabs = np.linalg.slogdet(a)
    return np.stack([sign, logabs], axis=-1).astype(a.dtype, copy=False)


def _slogdet_vjp(g, out, a):
    glog = g._getitem((Ellipsis, 1))
    return (glog.unsqueeze(-1).unsqueeze(-1) * _mT(a._prim("inv")),)


def _slogdet_jvp(tangents, out, a):
    tlog = _diag(a._prim("solve", tangents[0])).sum(-1).unsqueeze(-1)
    nd = tlog.ndim
    return tlog._prim("pad", pads=((0, 0),) * (nd - 1) + ((1, 0),), value=0.0)


register("slogdet", "linalg", _slogdet_forward, _packed_infer("slogdet", True), _slogdet_vjp,
         inputs="a", reads="a", jvp=_slogdet_jvp)


# ---- cholesky: A = L L^T, L lower. Only A's lower triangle is read (as LAPACK does); the
# gradient is the symmetric one (as PyTorch's), the derivative along symmetric directions,
# and the tangent of a direction is that of its symmetric part.


def _cholesky_forward(a):
    try:
        return np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        raise _singular("cholesky", a, "not positive-definite",
                        "cholesky needs a symmetric positive-definite matrix: check that it "
                        "is symmetric, or add a small multiple of the identity "
                        "(A + eps * I) if it is only semi-definite") from None


def _phi(x):
    """The lower triangle, its diagonal halved."""
    return _tril(x) - _diag_embed(_diag(x)) * 0.5


def _cholesky_vjp(g, out, a):
    # gA = sym(L^-T Phi(L^T gL) L^-1)   (Murray 2016)
    linv = out._prim("inv")
    ga = _mT(linv) @ _phi(_mT(out) @ g) @ linv
    return (_sym(ga),)


def _cholesky_jvp(tangents, out, a):
    # dL = L Phi(L^-1 sym(dA) L^-T)
    linv = out._prim("inv")
    return out @ _phi(linv @ _sym(tangents[0]) @ _mT(linv))


register("cholesky", "linalg", _cholesky_forward, _square_infer("cholesky"), _cholesky_vjp,
         inputs="a", reads="out", jvp=_cholesky_jvp)


# ---- eigh: A = V diag(L) V^T of a symmetric A (one triangle read, UPLO), L ascending.
# The vectors' derivative divides by the gaps L_j - L_i (`_gaps`).


def _eigh_forward(a, UPLO="L"):
    values, vectors = np.linalg.eigh(a, UPLO=UPLO)
    return _pack_arrays(a.shape[:-2], values, vectors)


def _reciprocal(x):
    """1 / x, and 0 where x is exactly 0 (see `_gaps`). Linear rules stay linear in g: the
    mask depends on the forward values only."""
    zero = x == 0
    return zero._select(0.0, zero._select(1.0, x) ** -1)


def _gaps(values):
    """F_ij = 1 / (L_j - L_i) off the diagonal, 0 on it, and 0 for exactly equal values:
    the rotations within a repeated eigenspace are left out of the vectors' derivative
    (PyTorch gives inf/nan there). So differentiating only the values of eigh (svd) of a
    matrix with repeated ones gives PyTorch's gradient, and a function of the vectors that
    does not depend on the basis chosen in such an eigenspace gets its true gradient."""
    return _reciprocal(values.unsqueeze(-2) - values.unsqueeze(-1))


def _eigh_vjp(g, out, a, UPLO="L"):
    parts = layout("eigh", tuple(a.shape))
    gl, gv = unpack(g, parts)
    values, vectors = unpack(out, parts)
    x = _mT(vectors) @ gv
    inner = (x - _mT(x)) * 0.5 * _gaps(values) + _diag_embed(gl)
    return (vectors @ inner @ _mT(vectors),)


def _eigh_jvp(tangents, out, a, UPLO="L"):
    parts = layout("eigh", tuple(a.shape))
    values, vectors = unpack(out, parts)
    x = _mT(vectors) @ _sym(tangents[0]) @ vectors
    return _pack([_diag(x), vectors @ (x * _gaps(values))], parts)


register("eigh", "linalg", _eigh_forward, _packed_infer("eigh", True), _eigh_vjp,
         inputs="a", reads="out", jvp=_eigh_jvp)


def _eigvalsh_infer(a, UPLO="L"):
    check_matrix("linalg.eigvalsh", a.shape, a.dtype)
    return tuple(a.shape[:-1]), a.dtype


def _eigvalsh_vjp(g, out, a, UPLO="L"):
    _, vectors = unpack(a._prim("eigh", UPLO=UPLO), layout("eigh", tuple(a.shape)))
    return ((vectors * g.unsqueeze(-2)) @ _mT(vectors),)


def _eigvalsh_jvp(tangents, out, a, UPLO="L"):
    _, vectors = unpack(a._prim("eigh", UPLO=UPLO), layout("eigh", tuple(a.shape)))
    return (vectors * (_sym(tangents[0]) @ vectors)).sum(-2)


register("eigvalsh", "linalg", lambda a, UPLO="L": np.linalg.eigvalsh(a, UPLO=UPLO),
         _eigvalsh_infer, _eigvalsh_vjp, inputs="a", reads="a", jvp=_eigvalsh_jvp)


# ---- svd: A = U diag(S) Vh, S descending. The gradient is PyTorch's svd_backward; with
# full_matrices only the first min(m, n) columns of U (rows of Vh) have one (the others are
# any basis of a complement). The vectors' derivative divides by the gaps S_k^2 - S_j^2
# (`_gaps`) and by S.


def _svd_forward(a, full_matrices=False):
    u, s, vh = np.linalg.svd(a, full_matrices=full_matrices)
    return _pack_arrays(a.shape[:-2], u, s, vh)


def _svd_parts(packed, a, full_matrices):
    """U, S, Vh of a packed svd (or its gradient/tangent), U and Vh cut to k vectors."""
    m, n = tuple(a.shape[-2:])
    k = min(m, n)
    u, s, vh = unpack(packed, layout("svd", tuple(a.shape), full_matrices=full_matrices))
    if full_matrices:
        u = u._getitem((Ellipsis, slice(0, k))) if m > k else u
        vh = vh._getitem((Ellipsis, slice(0, k), slice(None))) if n > k else vh
    return u, s, vh


def _svd_vjp(g, out, a, full_matrices=False):
    m, n = tuple(a.shape[-2:])
    gu, gs, gvh = _svd_parts(g, a, full_matrices)
    u, s, vh = _svd_parts(out, a, full_matrices)
    v, gv = _mT(vh), _mT(gvh)
    uhgu, vhgv = _mT(u) @ gu, _mT(v) @ gv
    uhgu, vhgv = uhgu - _mT(uhgu), vhgv - _mT(vhgv)
    # 1 / (S_k^2 - S_j^2) at (j, k), 0 on the diagonal and at ties (see _gaps)
    f = _gaps(s * s)
    core = (uhgu * s.unsqueeze(-2) + s.unsqueeze(-1) * vhgv) * f + _diag_embed(gs)
    if m > n:
        gusinv = gu * _reciprocal(s).unsqueeze(-2)
        ga = u @ core + gusinv - u @ (_mT(u) @ gusinv)
        return (ga @ vh,)
    if m < n:
        sinvgvh = gvh * _reciprocal(s).unsqueeze(-1)
        ga = core @ vh + sinvgvh - (sinvgvh @ v) @ vh
        return (u @ ga,)
    return (u @ core @ vh,)


def _svd_jvp(tangents, out, a, full_matrices=False):
    ta = tangents[0]
    m, n = tuple(a.shape[-2:])
    u, s, vh = _svd_parts(out, a, full_matrices)
    v = _mT(vh)
    k = s.shape[-1]
    dp = _mT(u) @ ta @ v
    ds = _diag(dp)
    f = _gaps(s * s)
    du = u @ ((dp * s.unsqueeze(-2) + s.unsqueeze(-1) * _mT(dp)) * f)
    dv = v @ ((s.unsqueeze(-1) * dp + _mT(dp) * s.unsqueeze(-2)) * f)
    sinv = _reciprocal(s).unsqueeze(-2)
    if m > k:
        x = ta @ v * sinv
        du = du + x - u @ (_mT(u) @ x)
    if n > k:
        y = _mT(ta) @ u * sinv
        dv = dv + y - v @ (_mT(v) @ y)
    dvh = _mT(dv)
    if full_matrices and m > k:  # (the complement's vectors: no derivative, as PyTorch)
        du = du._prim("pad", pads=((0, 0),) * (du.ndim - 1) + ((0, m - k),), value=0.0)
    if full_matrices and n > k:
        dvh = dvh._prim("pad", pads=((0, 0),) * (dvh.ndim - 2) + ((0, n - k), (0, 0)),
                        value=0.0)
    return _pack([du, ds, dvh], layout("svd", tuple(a.shape), full_matrices=full_matrices))


register("svd", "linalg", _svd_forward, _packed_infer("svd", False), _svd_vjp, inputs="a",
         reads="out", jvp=_svd_jvp)


def _svdvals_infer(a):
    check_matrix("linalg.svdvals", a.shape, a.dtype, square=False)
    return tuple(a.shape[:-2]) + (min(a.shape[-2:]),), a.dtype


def _svdvals_vjp(g, out, a):
    u, _, vh = _svd_parts(a._prim("svd", full_matrices=False), a, False)
    return ((u * g.unsqueeze(-2)) @ vh,)


def _svdvals_jvp(tangents, out, a):
    u, _, vh = _svd_parts(a._prim("svd", full_matrices=False), a, False)
    return (u * (tangents[0] @ _mT(vh))).sum(-2)


register("svdvals", "linalg", lambda a: np.linalg.svd(a, compute_uv=False), _svdvals_infer,
         _svdvals_vjp, inputs="a", reads="a", jvp=_svdvals_jvp)


# ---- qr: A = Q R, Q with orthonormal columns, R upper triangular (LAPACK's signs, as
# PyTorch). Differentiable in "reduced" mode, and in "complete" mode when m <= n (the same
# factors); Q of a complete QR of a tall matrix has columns without a derivative.


def _qr_forward(a, mode="reduced"):
    q, r = np.linalg.qr(a, mode=mode)
    return _pack_arrays(a.shape[:-2], q, r)


def _copyltu(x):
    """The symmetric matrix with x's lower triangle."""
    return _tril(x) + _mT(_tril(x, -1))


def _qr_not_differentiable(a, mode):
    m, n = tuple(a.shape[-2:])
    if mode == "complete" and m > n:
        raise RuntimeError(f"linalg.qr: mode='complete' of a {m} x {n} matrix (more rows than "
                           f"columns) has no derivative (Q's last {m - n} columns are any "
                           f"basis of a complement); use mode='reduced' to differentiate")


def _qr_square_vjp(gq, gr, q, r):
    # gA = (gQ + Q copyltu(M)) R^-T, M = R gR^T - gQ^T Q   (m >= n)
    m = r @ _mT(gr) - _mT(gq) @ q
    b = gq + q @ _copyltu(m)
    return _mT(r._prim("solve", _mT(b)))


def _qr_vjp(g, out, a, mode="reduced"):
    _qr_not_differentiable(a, mode)
    m, n = tuple(a.shape[-2:])
    gq, gr = unpack(g, layout("qr", tuple(a.shape), mode=mode))
    q, r = unpack(out, layout("qr", tuple(a.shape), mode=mode))
    if m >= n:
        return (_qr_square_vjp(gq, gr, q, r),)
    # A = Q [X | Y]: X square upper triangular, Y = Q^T A's last n - m columns
    left, right = (Ellipsis, slice(None), slice(0, m)), (Ellipsis, slice(None), slice(m, n))
    x, y = r._getitem(left), r._getitem(right)
    gx, gy = gr._getitem(left), gr._getitem(right)
    gax = _qr_square_vjp(gq + q @ (y @ _mT(gy)), gx, q, x)
    gay = q @ gy
    return (gax._prim("cat", gay, dim=gax.ndim - 1),)


def _qr_square_jvp(ta, q, r):
    # C = Q^T dA R^-1; dR = (triu(C) + tril(C, -1)^T) R; dQ = dA R^-1 - Q (dR R^-1)
    dar = _mT(_mT(r)._prim("solve", _mT(ta)))
    c = _mT(q) @ dar
    low = _tril(c, -1)
    upper = c - low + _mT(low)
    return dar - q @ upper, upper @ r


def _qr_jvp(tangents, out, a, mode="reduced"):
    _qr_not_differentiable(a, mode)
    ta = tangents[0]
    m, n = tuple(a.shape[-2:])
    parts = layout("qr", tuple(a.shape), mode=mode)
    q, r = unpack(out, parts)
    if m >= n:
        return _pack(list(_qr_square_jvp(ta, q, r)), parts)
    left, right = (Ellipsis, slice(None), slice(0, m)), (Ellipsis, slice(None), slice(m, n))
    x, y = r._getitem(left), r._getitem(right)
    dq, dx = _qr_square_jvp(ta._getitem(left), q, x)
    dy = _mT(q) @ (ta._getitem(right) - dq @ y)
    return _pack([dq, dx._prim("cat", dy, dim=dx.ndim - 1)], parts)


register("qr", "linalg", _qr_forward, _packed_infer("qr", False), _qr_vjp, inputs="a", reads="out",
         jvp=_qr_jvp)


# ---- pinv: the Moore-Penrose inverse, singular values at or below max(atol, rtol * the
# largest) taken as zero. The gradient (Golub and Pereyra 1973) holds where the rank does
# not change.


def _pinv_forward(a, atol=0.0, rtol=0.0, hermitian=False):
    if hermitian:
        values, vectors = np.linalg.eigh(a)
        mags = np.abs(values)
        cut = np.maximum(atol, rtol * mags.max(-1, initial=0.0, keepdims=True))
        inv = np.where(mags > cut, 1 / np.where(mags > cut, values, 1), 0).astype(a.dtype)
        return (vectors * inv[..., None, :]) @ np.swapaxes(vectors, -1, -2)
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    cut = np.maximum(atol, rtol * s.max(-1, initial=0.0, keepdims=True))
    inv = np.where(s > cut, 1 / np.where(s > cut, s, 1), 0).astype(a.dtype)
    return np.swapaxes(vh, -1, -2) * inv[..., None, :] @ np.swapaxes(u, -1, -2)


def _pinv_infer(a, atol=0.0, rtol=0.0, hermitian=False):
    check_matrix("linalg.pinv", a.shape, a.dtype, square=hermitian)
    return tuple(a.shape[:-2]) + (a.shape[-1], a.shape[-2]), a.dtype


def _pinv_vjp(g, out, a, atol=0.0, rtol=0.0, hermitian=False):
    # gA = -P^T g P^T + (I - A P) g^T P P^T + P^T P g^T (I - P A), P = pinv(A)
    p, pt = out, _mT(out)
    kpt = _mT(g) @ p @ pt
    w = pt @ (p @ _mT(g))
    return (-(pt @ g @ pt) + kpt - a @ (p @ kpt) + w - (w @ p) @ a,)


def _pinv_jvp(tangents, out, a, atol=0.0, rtol=0.0, hermitian=False):
    # dP = -P dA P + P P^T dA^T (I - A P) + (I - P A) dA^T P^T P
    ta = tangents[0]
    p, pt, tt = out, _mT(out), _mT(ta)
    x = p @ pt @ tt
    y = tt @ pt @ p
    return -(p @ ta @ p) + x - (x @ a) @ p + y - p @ (a @ y)


register("pinv", "linalg", _pinv_forward, _pinv_infer, _pinv_vjp, inputs="a", reads="a out",
         jvp=_pinv_jvp)


# ---- matrix_exp: scaling and squaring with a degree-13 Pade approximant (Higham 2005),
# computed in float64. Its derivative (the Frechet derivative L(A, E)) is the top-right block
# of exp([[A, E], [0, A]]) (Najfeld and Havel 1995), and the gradient is L(A^T, g): both are
# matrix_exp itself, so they differentiate again.

_PADE13 = (64764752532480000.0, 32382376266240000.0, 7771770303897600.0,
           1187353796428800.0, 129060195264000.0, 10559470521600.0, 670442572800.0,
           33522128640.0, 1323241920.0, 40840800.0, 960960.0, 16380.0, 182.0, 1.0)
_THETA13 = 5.371920351148152  # the largest 1-norm the approximant takes without scaling


def _matrix_exp_forward(a):
    if a.size == 0:
        return a.copy()
    x = a.astype(np.float64)
    norm1 = float(np.abs(x).sum(-2).max())  # (the largest 1-norm in the batch)
    s = max(0, math.ceil(math.log2(norm1 / _THETA13))) if norm1 > _THETA13 else 0
    x = x / 2.0 ** s
    b = _PADE13
    eye = np.eye(a.shape[-1])
    x2 = x @ x
    x4 = x2 @ x2
    x6 = x4 @ x2
    u = x @ (x6 @ (b[13] * x6 + b[11] * x4 + b[9] * x2) + b[7] * x6 + b[5] * x4 + b[3] * x2
             + b[1] * eye)
    v = x6 @ (b[12] * x6 + b[10] * x4 + b[8] * x2) + b[6] * x6 + b[4] * x4 + b[2] * x2 \
        + b[0] * eye
    r = np.linalg.solve(v - u, v + u)
    for _ in range(s):
        r = r @ r
    return r.astype(a.dtype)


def _frechet_exp(a, e):
    """L(a, e): the top-right block of exp([[a, e], [0, a]]) (a broadcast to e's shape)."""
    n = a.shape[-1]
    a = a.expand(tuple(e.shape)) if tuple(a.shape) != tuple(e.shape) else a
    last = e.ndim - 1
    block = a._prim("cat", e, dim=last)._prim("cat", (a * 0)._prim("cat", a, dim=last),
                                               dim=last - 1)
    return block._prim("matrix_exp")._getitem((Ellipsis, slice(0, n), slice(n, 2 * n)))


register("matrix_exp", "linalg", _matrix_exp_forward, _square_infer("matrix_exp"),
         lambda g, out, a: (_frechet_exp(_mT(a), g),), inputs="a", reads="a",
         jvp=lambda tangents, out, a: _frechet_exp(a, tangents[0]))
