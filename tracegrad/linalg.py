"""``tg.linalg``: torch.linalg's functions, with torch's signatures and return conventions.

The factorizations and inverses are primitives (``ops/linalg.py``: forward, shape rule, VJP
and JVP in one place); the norms, ``matrix_power``, ``multi_dot`` and the like are composed
from them and from tensor ops. Every function takes a matrix or a batch of matrices (leading
dimensions) of float32 or float64, and differentiates, compiles (``tg.compile``) and runs in
forward mode (``tg.func.jvp``, ``jacfwd``).

>>> A = tg.tensor([[4.0, 1.0], [1.0, 3.0]])
>>> tg.linalg.det(A)
tensor(11.)

Caveats (docs/linalg.md): the eigenvectors of ``eigh`` and the singular vectors of ``svd``
are not unique where eigenvalues (singular values) repeat; at an exact repeat their gradient
leaves out the rotations within the repeated eigenspace (PyTorch gives inf/nan), which is
PyTorch's gradient when only the values are used. ``det``'s gradient (the cofactors) exists
at singular matrices too, its second derivative and ``slogdet``'s gradient need an
invertible one; ``pinv``'s holds where the rank does not change.
"""

from __future__ import annotations

import builtins
import math
from collections import namedtuple
from typing import Any, Sequence

import numpy as np

from . import functional as F
from .creation import eye, tensor
from .errors import DTypeError, LinAlgError, ShapeError
from .ops import PRIMITIVES as P
from .ops.linalg import check_matrix, layout, unpack
from .tensor import Tensor, apply

__all__ = [
    "LinAlgError", "cholesky", "cond", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv",
    "lstsq", "matmul", "matrix_exp", "matrix_norm", "matrix_power", "matrix_rank",
    "multi_dot", "norm", "pinv", "qr", "slogdet", "solve", "svd", "svdvals", "vecdot",
    "vector_norm",
]

SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
QRResult = namedtuple("QRResult", ["Q", "R"])
EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])
LstsqResult = namedtuple("LstsqResult", ["solution", "residuals", "rank", "singular_values"])


def _matrix(op: str, A: Any, square: bool = True) -> Tensor:
    A = A if isinstance(A, Tensor) else tensor(A)
    check_matrix(f"linalg.{op}", A.shape, A.dtype, square)
    return A


def _unpacked(packed: Tensor, op: str, shape: tuple, **attrs: Any) -> list:
    return unpack(packed, layout(op, tuple(shape), **attrs))


def inv(A: Tensor) -> Tensor:
    """The inverse of a square matrix (or of each in a batch).

    >>> tg.linalg.inv(tg.tensor([[2.0, 0.0], [0.0, 4.0]]))
    tensor([[0.5000, 0.0000],
            [0.0000, 0.2500]])
    """
    return apply(P["inv"], _matrix("inv", A))


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:
    """X with ``A @ X = B``; B is a matrix (..., n, k) or vectors (..., n), batch dimensions
    broadcast (torch's rule: B is vectors when 1-d, or when its shape is A's without the
    last dimension). ``left=False`` solves ``X @ A = B``.

    >>> tg.linalg.solve(tg.tensor([[2.0, 0.0], [0.0, 4.0]]), tg.tensor([2.0, 2.0]))
    tensor([1.0000, 0.5000])
    """
    A = _matrix("solve", A)
    B = B if isinstance(B, Tensor) else tensor(B, dtype=A.dtype)
    if not left:  # X A = B  <=>  A^T X^T = B^T
        return solve(A.transpose(-1, -2), B.transpose(-1, -2)).transpose(-1, -2)
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and B.shape == A.shape[:-1])
    rhs = B.unsqueeze(-1) if vector else B
    P["solve"].infer(A, rhs)  # (NumPy would promote mixed dtypes; torch refuses them)
    X = apply(P["solve"], A, rhs)
    return X.squeeze(-1) if vector else X


def det(A: Tensor) -> Tensor:
    """The determinant of a square matrix (or of each in a batch)."""
    return apply(P["det"], _matrix("det", A))


def slogdet(A: Tensor) -> SlogdetResult:
    """``(sign, logabsdet)``: the sign of the determinant (0 for a singular matrix) and the
    log of its absolute value (-inf then); accurate where ``det`` over- or underflows."""
    A = _matrix("slogdet", A)
    sign, logabs = _unpacked(apply(P["slogdet"], A), "slogdet", A.shape)
    return SlogdetResult(sign.detach(), logabs)


def logdet(A: Tensor) -> Tensor:
    """log(det A): nan where the determinant is negative, -inf where it is 0 (as torch)."""
    sign, logabs = slogdet(A)
    return F.where(sign < 0, math.nan, logabs)


def cholesky(A: Tensor, *, upper: bool = False) -> Tensor:
    """L, lower triangular with ``A = L @ L.mT``, of a symmetric positive-definite A (its
    lower triangle is read); ``upper=True`` gives ``L.mT``."""
    L = apply(P["cholesky"], _matrix("cholesky", A))
    return L.transpose(-1, -2) if upper else L


def _uplo(op: str, A: Tensor, UPLO: str) -> Tensor:
    if UPLO not in ("L", "U"):
        raise ValueError(f"linalg.{op}: UPLO must be 'L' or 'U', got {UPLO!r}")
    return _matrix(op, A)


def eigh(A: Tensor, UPLO: str = "L") -> EighResult:
    """``(eigenvalues, eigenvectors)`` of a symmetric matrix, eigenvalues ascending; only
    the ``UPLO`` triangle is read. The eigenvectors' gradient is inf/nan where eigenvalues
    repeat (see the module docstring)."""
    A = _uplo("eigh", A, UPLO)
    values, vectors = _unpacked(apply(P["eigh"], A, UPLO=UPLO), "eigh", A.shape)
    return EighResult(values, vectors)


def eigvalsh(A: Tensor, UPLO: str = "L") -> Tensor:
    """The eigenvalues of a symmetric matrix, ascending."""
    return apply(P["eigvalsh"], _uplo("eigvalsh", A, UPLO), UPLO=UPLO)


def svd(A: Tensor, full_matrices: bool = True) -> SVDResult:
    """``(U, S, Vh)`` with ``A = U @ diag(S) @ Vh``, S descending. ``full_matrices=True``
    (torch's default) gives square U and Vh; only their first min(m, n) vectors have a
    gradient."""
    A = _matrix("svd", A, square=False)
    u, s, vh = _unpacked(apply(P["svd"], A, full_matrices=full_matrices), "svd", A.shape,
                         full_matrices=full_matrices)
    return SVDResult(u, s, vh)


def svdvals(A: Tensor) -> Tensor:
    """The singular values, descending."""
    return apply(P["svdvals"], _matrix("svdvals", A, square=False))


def qr(A: Tensor, mode: str = "reduced") -> QRResult:
    """``(Q, R)`` with ``A = Q @ R``: ``mode`` "reduced" (Q (m, k), R (k, n)), "complete"
    (Q (m, m)) or "r" (R only, Q empty)."""
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"linalg.qr: mode must be 'reduced', 'complete' or 'r', got {mode!r}")
    A = _matrix("qr", A, square=False)
    packed_mode = "reduced" if mode == "r" else mode
    q, r = _unpacked(apply(P["qr"], A, mode=packed_mode), "qr", A.shape, mode=packed_mode)
    if mode == "r":
        return QRResult(tensor(np.empty((0,), A.dtype)), r)
    return QRResult(q, r)


def pinv(A: Tensor, *, atol: float | None = None, rtol: float | None = None,
         hermitian: bool = False) -> Tensor:
    """The Moore-Penrose pseudo-inverse; singular values at or below
    ``max(atol, rtol * largest)`` count as zero (torch's defaults: ``rtol`` is
    ``max(m, n) * eps`` when neither is given, 0 when only ``atol`` is)."""
    A = _matrix("pinv", A, square=hermitian)
    if rtol is None:
        rtol = 0.0 if atol is not None and atol > 0 else \
            builtins.max(A.shape[-2:]) * float(np.finfo(A.dtype).eps)
    return apply(P["pinv"], A, atol=float(atol or 0.0), rtol=float(rtol),
                 hermitian=bool(hermitian))


def lstsq(A: Tensor, B: Tensor, rcond: float | None = None, *,
          driver: str | None = None) -> LstsqResult:
    """The least-squares solution of ``A @ X = B`` (through the pseudo-inverse, as torch's
    "gelsd" driver), with torch's fields; ``residuals``, ``rank`` and ``singular_values``
    are empty, as torch's default CPU driver ("gelsy") returns them."""
    A = _matrix("lstsq", A, square=False)
    B = B if isinstance(B, Tensor) else tensor(B, dtype=A.dtype)
    vector = B.ndim == A.ndim - 1
    rhs = B.unsqueeze(-1) if vector else B
    if rhs.shape[-2] != A.shape[-2]:
        raise ShapeError(f"linalg.lstsq: A {A.shape} and B {B.shape} do not fit: B must have "
                         f"{A.shape[-2]} rows")
    x = pinv(A, rtol=rcond) @ rhs
    empty = tensor(np.empty((0,), A.dtype))
    return LstsqResult(x.squeeze(-1) if vector else x, empty,
                       tensor(np.empty((0,), np.int64)), empty)


def matrix_exp(A: Tensor) -> Tensor:
    """The matrix exponential, sum of A^k / k! (scaling and squaring, Pade degree 13).

    >>> tg.linalg.matrix_exp(tg.zeros(2, 2))
    tensor([[1., 0.],
            [0., 1.]])
    """
    return apply(P["matrix_exp"], _matrix("matrix_exp", A))


def matrix_power(A: Tensor, n: int) -> Tensor:
    """A multiplied by itself ``n`` times (by squaring); the identity for 0, powers of the
    inverse for negative ``n``."""
    A = _matrix("matrix_power", A)
    if not isinstance(n, (int, np.integer)):
        raise TypeError(f"linalg.matrix_power: n must be an int, got {type(n).__name__}")
    if n == 0:
        # (the identity, connected to A with a zero gradient, as torch's; not I + 0 * A,
        # which an inf in A would turn into nan)
        return F.where(tensor(True), eye(A.shape[-1], dtype=A.dtype), A)
    if n < 0:
        A, n = inv(A), -n
    result, base = None, A
    while n:
        if n & 1:
            result = base if result is None else result @ base
        n >>= 1
        if n:
            base = base @ base
    return result


def multi_dot(tensors: Sequence[Tensor]) -> Tensor:
    """The product of a chain of matrices, in the cheapest order (the first may be a row
    vector, the last a column vector, as torch)."""
    ts = [t if isinstance(t, Tensor) else tensor(t) for t in tensors]
    if len(ts) < 2:
        raise ValueError(f"linalg.multi_dot: expects at least two tensors, got {len(ts)}")
    first_vec, last_vec = ts[0].ndim == 1, ts[-1].ndim == 1
    if first_vec:
        ts[0] = ts[0].unsqueeze(0)
    if last_vec:
        ts[-1] = ts[-1].unsqueeze(-1)
    for k, t in enumerate(ts):
        if t.ndim != 2:
            raise ShapeError(f"linalg.multi_dot: tensor {k} must be 2-d (the first and last "
                             f"may be 1-d), got shape {t.shape}")
    for k in range(len(ts) - 1):
        if ts[k].shape[1] != ts[k + 1].shape[0]:
            raise ShapeError(f"linalg.multi_dot: tensors {k} and {k + 1} do not fit: "
                             f"{ts[k].shape} @ {ts[k + 1].shape}")
    dims = [ts[0].shape[0]] + [t.shape[1] for t in ts]
    out = _chain(ts, _chain_order(dims), 0, len(ts) - 1)
    if first_vec:
        out = out.squeeze(0)
    if last_vec:
        out = out.squeeze(-1)
    return out


def _chain_order(dims: list) -> list:
    """The matrix-chain split points (the textbook dynamic programme)."""
    n = len(dims) - 1
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in builtins.range(1, n):
        for i in builtins.range(n - length):
            j = i + length
            cost[i][j] = math.inf
            for k in builtins.range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k
    return split


def _chain(ts: list, split: list, i: int, j: int) -> Tensor:
    if i == j:
        return ts[i]
    k = split[i][j]
    return _chain(ts, split, i, k) @ _chain(ts, split, k + 1, j)


def cross(input: Tensor, other: Tensor, *, dim: int = -1) -> Tensor:
    """The cross product of 3-vectors along ``dim`` (the last by default, unlike tg.cross)."""
    return F.cross(input, other, dim=dim)


def diagonal(A: Tensor, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """The diagonals of the matrices in the last two dimensions (a view)."""
    return F.diagonal(A, offset, dim1, dim2)


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """``input @ other`` (torch.linalg.matmul is torch.matmul)."""
    return (input if isinstance(input, Tensor) else tensor(input)) @ other


def vecdot(x: Tensor, y: Tensor, *, dim: int = -1) -> Tensor:
    """The dot product of vectors along ``dim`` (the others broadcast)."""
    return (x * y).sum(dim)


def matrix_rank(A: Tensor, *, atol: float | None = None, rtol: float | None = None,
                hermitian: bool = False) -> Tensor:
    """The number of singular values above ``max(atol, rtol * largest)`` (int64, no
    gradient), with torch's defaults (as `pinv`)."""
    A = _matrix("matrix_rank", A, square=hermitian)
    if rtol is None:
        rtol = 0.0 if atol is not None and atol > 0 else \
            builtins.max(A.shape[-2:]) * float(np.finfo(A.dtype).eps)
    s = (eigvalsh(A).abs() if hermitian else svdvals(A)).detach()
    cut = F.clamp(F.amax(s, -1, keepdim=True) * rtol, min=float(atol or 0.0))
    return (s > cut).sum(-1)


def cond(A: Tensor, p: Any = None) -> Tensor:
    """The condition number in norm ``p``: the ratio of the largest to the smallest singular
    value for None or 2 (the reverse for -2), else ``norm(A, p) * norm(inv(A), p)``."""
    if p in (None, 2, -2):
        s = svdvals(_matrix("cond", A, square=False))
        big, small = F.amax(s, -1), F.amin(s, -1)
        return big / small if p != -2 else small / big
    A = _matrix("cond", A)
    return matrix_norm(A, p) * matrix_norm(inv(A), p)


# ---------------------------------------------------------------- norms


def _norm_input(op: str, x: Any, dtype: Any) -> Tensor:
    x = x if isinstance(x, Tensor) else tensor(x)
    if dtype is not None:
        x = x.to(dtype)
    if x.dtype.kind != "f":
        raise DTypeError(f"linalg.{op}: expects a floating point tensor, got {x.dtype}; "
                        f"cast it first (x.float()) or pass dtype=")
    return x


def vector_norm(x: Tensor, ord: float = 2, dim: Any = None, keepdim: bool = False, *,
                dtype: Any = None) -> Tensor:
    """The ``ord``-norm of ``x`` over ``dim`` (all elements by default): any real ``ord``,
    inf, -inf (max and min of |x|) and 0 (the number of non-zeros).

    >>> tg.linalg.vector_norm(tg.tensor([3.0, -4.0]))
    tensor(5.)
    """
    x = _norm_input("vector_norm", x, dtype)
    if isinstance(dim, int):
        dim = (dim,)
    ord = float(ord)
    if x.ndim == 0:
        x = x.reshape(1) if dim is None else x
    a = x.abs()
    if ord == math.inf:
        return F.amax(a, dim=dim, keepdim=keepdim)
    if ord == -math.inf:
        return F.amin(a, dim=dim, keepdim=keepdim)
    if ord == 0:
        return (x != 0).to(x.dtype).sum(dim, keepdim)
    if ord == 1:
        return a.sum(dim, keepdim)
    if ord == 2:
        return F._safe_root((x * x).sum(dim, keepdim), 2)
    if ord < 0:  # no zero-vector issue to mask, but |x| = 0 gives inf ** -p = 0, as torch
        return (a ** ord).sum(dim, keepdim) ** (1.0 / ord)
    return F._safe_root((a ** ord).sum(dim, keepdim), ord)


_MATRIX_ORDS = ("fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf)


def matrix_norm(A: Tensor, ord: Any = "fro", dim: tuple = (-2, -1), keepdim: bool = False,
                *, dtype: Any = None) -> Tensor:
    """The matrix norm over the two dimensions ``dim``: "fro", "nuc" (sum of singular
    values), 2 and -2 (largest and smallest singular value), 1 and -1 (largest and smallest
    column sum of |A|), inf and -inf (largest and smallest row sum)."""
    A = _norm_input("matrix_norm", A, dtype)
    if ord not in _MATRIX_ORDS:
        raise ValueError(f"linalg.matrix_norm: ord must be one of 'fro', 'nuc', 1, -1, 2, "
                         f"-2, inf, -inf; got {ord!r}")
    if A.ndim < 2:
        raise ShapeError(f"linalg.matrix_norm: expects a matrix (at least 2 dimensions), got "
                         f"shape {A.shape}")
    if len(dim) != 2:
        raise ShapeError(f"linalg.matrix_norm: dim must name two dimensions, got {dim}")
    d0, d1 = (d % A.ndim for d in dim)
    if d0 == d1:
        raise ShapeError(f"linalg.matrix_norm: dim names the same dimension twice: {dim}")
    if ord == "fro":
        return vector_norm(A, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        s = svdvals(F.movedim(A, (d0, d1), (-2, -1)))
        r = s.sum(-1) if ord == "nuc" else F.amax(s, -1) if ord == 2 else F.amin(s, -1)
        if keepdim:
            for d in sorted((d0, d1)):
                r = r.unsqueeze(d)
        return r
    # 1, -1: column sums (over d0), then the largest/smallest over d1; inf, -inf: rows
    over, then = (d0, d1) if builtins.abs(ord) == 1 else (d1, d0)
    sums = A.abs().sum(over, keepdim=True)
    r = F.amax(sums, then, keepdim=True) if ord > 0 else F.amin(sums, then, keepdim=True)
    return r if keepdim else r.squeeze((d0, d1))


def norm(A: Tensor, ord: Any = None, dim: Any = None, keepdim: bool = False, *,
         dtype: Any = None) -> Tensor:
    """torch.linalg.norm's dispatch: ``dim`` an int (or one dimension) is a vector norm, two
    dimensions a matrix norm; with neither ``dim`` nor ``ord``, the 2-norm of all elements;
    with ``ord`` and no ``dim``, A must be 1-d (vector norm) or 2-d (matrix norm)."""
    A = A if isinstance(A, Tensor) else tensor(A)
    if isinstance(dim, int):
        dim = (dim,)
    if dim is not None:
        if len(dim) == 1:
            return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
        if len(dim) == 2:
            return matrix_norm(A, "fro" if ord is None else ord, tuple(dim), keepdim,
                               dtype=dtype)
        raise ShapeError(f"linalg.norm: dim must name one or two dimensions, got {dim}")
    if ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype)
    if A.ndim == 1:
        return vector_norm(A, ord, None, keepdim, dtype=dtype)
    if A.ndim == 2:
        return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
    raise ShapeError(f"linalg.norm: with ord={ord!r} and no dim, the input must be 1-d or "
                     f"2-d, got shape {A.shape}; pass dim")


# ---------------------------------------------------------------- torch's older names
#
# torch.inverse, torch.det, torch.svd, ... (and the Tensor methods of the same names):
# the functions above under their top-level names, with torch.svd's and torch.pinverse's
# own conventions.


inverse = inv


def svd_(input: Tensor, some: bool = True, compute_uv: bool = True) -> tuple:
    """torch.svd: ``(U, S, V)`` (V, not Vh), reduced unless ``some=False``; with
    ``compute_uv=False``, U and V are square zero matrices, as torch's."""
    if not compute_uv:
        S = svdvals(input)
        A = _matrix("svd", input, square=False)
        batch, (m, n) = A.shape[:-2], A.shape[-2:]
        return (tensor(np.zeros(batch + (m, m), A.dtype)), S,
                tensor(np.zeros(batch + (n, n), A.dtype)))
    U, S, Vh = svd(input, full_matrices=not some)
    return U, S, Vh.transpose(-1, -2)


def pinverse(input: Tensor, rcond: float = 1e-15) -> Tensor:
    """torch.pinverse: ``linalg.pinv`` with a relative cutoff ``rcond``."""
    return pinv(input, rtol=rcond)


# name -> function, for tg.X and Tensor.X
TOP_LEVEL = {"inverse": inverse, "det": det, "slogdet": slogdet, "logdet": logdet,
             "cholesky": cholesky, "svd": svd_, "pinverse": pinverse,
             "matrix_power": matrix_power, "matrix_exp": matrix_exp}
