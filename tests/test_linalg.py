"""tg.linalg against torch.linalg: values, gradients (first and second order) against torch
and against float64 central finite differences, batched and unbatched, float32 and float64;
forward mode against torch.func.jvp; compiled functions against eager; torch's top-level
names and Tensor methods; the errors.

Each case is written once, as a function of the library (``lib`` is ``tg`` or ``torch``: the
APIs are the same), returning one tensor. Decompositions whose vectors are unique only up to
sign (eigh, svd) return sign-free functions of them (squares), so that LAPACK builds that
pick other signs still agree.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradcheck import check_grads, compare_with_torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracegrad as tg

torch = pytest.importorskip("torch")


def _mT(x):
    return x.transpose(-1, -2)


def _flat(lib, *parts):
    return lib.cat([p.reshape(-1) for p in parts])


def _spd(lib, a):
    """A symmetric positive-definite matrix made from any square ``a`` (smooth in a)."""
    n = a.shape[-1]
    return a @ _mT(a) + lib.eye(n, dtype=a.dtype) * n


def _sym(a):
    return a + _mT(a)


def _eigh(lib, a, uplo="L"):
    values, vectors = lib.linalg.eigh(_sym(a), UPLO=uplo)
    return _flat(lib, values, vectors ** 2)


def _svd(lib, a, full):
    u, s, vh = lib.linalg.svd(a, full_matrices=full)
    k = s.shape[-1]
    return _flat(lib, s, u[..., :k] ** 2, vh[..., :k, :] ** 2)


def _qr(lib, a, mode):
    q, r = lib.linalg.qr(a, mode=mode)
    return _flat(lib, q, r)


def _slogdet(lib, a):
    sign, logabs = lib.linalg.slogdet(a)
    return _flat(lib, sign, logabs)


def _lstsq(lib, a, b):
    if lib is torch:
        return torch.linalg.lstsq(a, b, driver="gelsd").solution
    return tg.linalg.lstsq(a, b).solution


SQ = [(3, 3), (2, 3, 3)]           # square: unbatched and batched
TALL_WIDE = [(4, 3), (3, 4), (2, 4, 3)]

# name -> (function of (lib, *inputs), input shapes for each variant, kind of inputs)
# kind "square": a well-conditioned square matrix (random + 2 n I); "any": random
CASES = {
    "inv": (lambda lib, a: lib.linalg.inv(a), [[s] for s in SQ], "square"),
    "solve": (lambda lib, a, b: lib.linalg.solve(a, b),
              [[(3, 3), (3, 2)], [(2, 3, 3), (3, 2)], [(3, 3), (2, 3, 2)]], "square"),
    "solve_vector": (lambda lib, a, b: lib.linalg.solve(a, b),
                     [[(3, 3), (3,)], [(2, 3, 3), (2, 3)]], "square"),
    "solve_right": (lambda lib, a, b: lib.linalg.solve(a, b, left=False),
                    [[(3, 3), (2, 3)], [(2, 3, 3), (2, 4, 3)]], "square"),
    "det": (lambda lib, a: lib.linalg.det(a), [[s] for s in SQ], "square"),
    "slogdet": (_slogdet, [[s] for s in SQ], "square"),
    "logdet": (lambda lib, a: lib.logdet(_spd(lib, a)), [[s] for s in SQ], "any"),
    "cholesky": (lambda lib, a: lib.linalg.cholesky(_spd(lib, a)), [[s] for s in SQ], "any"),
    "cholesky_upper": (lambda lib, a: lib.linalg.cholesky(_spd(lib, a), upper=True),
                       [[(3, 3)]], "any"),
    "eigh": (_eigh, [[s] for s in SQ], "any"),
    "eigvalsh": (lambda lib, a: lib.linalg.eigvalsh(_sym(a)), [[s] for s in SQ], "any"),
    "svd": (lambda lib, a: _svd(lib, a, False), [[s] for s in TALL_WIDE + SQ], "any"),
    "svd_full": (lambda lib, a: _svd(lib, a, True), [[s] for s in TALL_WIDE], "any"),
    "svdvals": (lambda lib, a: lib.linalg.svdvals(a), [[s] for s in TALL_WIDE], "any"),
    "qr": (lambda lib, a: _qr(lib, a, "reduced"), [[s] for s in TALL_WIDE + SQ], "any"),
    "qr_complete_wide": (lambda lib, a: _qr(lib, a, "complete"), [[(3, 4)]], "any"),
    "pinv": (lambda lib, a: lib.linalg.pinv(a), [[s] for s in TALL_WIDE], "any"),
    "lstsq": (_lstsq, [[(4, 3), (4, 2)], [(2, 4, 3), (2, 4, 2)], [(3, 4), (3, 2)]], "any"),
    "matrix_power_3": (lambda lib, a: lib.linalg.matrix_power(a, 3), [[s] for s in SQ],
                       "square"),
    "matrix_power_-2": (lambda lib, a: lib.linalg.matrix_power(a, -2), [[s] for s in SQ],
                        "square"),
    "matrix_power_0": (lambda lib, a: lib.linalg.matrix_power(a, 0) + a, [[(3, 3)]],
                       "square"),
    "matrix_exp": (lambda lib, a: lib.linalg.matrix_exp(a), [[s] for s in SQ], "any"),
    "matrix_exp_large": (lambda lib, a: lib.linalg.matrix_exp(a * 4), [[(3, 3)]], "any"),
    "cond": (lambda lib, a: _flat(lib, *[lib.linalg.cond(a, p) for p in (None, 2, -2)]),
             [[s] for s in SQ], "square"),
    "cond_norms": (lambda lib, a: _flat(lib, *[lib.linalg.cond(a, p) for p in
                                               ("fro", "nuc", 1, math.inf)]),
                   [[s] for s in SQ], "square"),
    "vecdot": (lambda lib, a, b: lib.linalg.vecdot(a, b, dim=0), [[(3, 4), (3, 1)]], "any"),
    "linalg.matmul": (lambda lib, a, b: lib.linalg.matmul(a, b), [[(2, 3, 4), (4, 2)]],
                      "any"),
    "multi_dot": (lambda lib, a, b, c, d: lib.linalg.multi_dot([a, b, c, d]),
                  [[(2, 5), (5, 3), (3, 4), (4, 1)], [(5,), (5, 3), (3, 4), (4,)]], "any"),
    "cross": (lambda lib, a, b: lib.linalg.cross(a, b), [[(4, 3), (4, 3)]], "any"),
    "diagonal": (lambda lib, a: lib.linalg.diagonal(a, offset=1), [[(2, 3, 4)]], "any"),
    "vector_norm": (lambda lib, x: _flat(lib, *[
        lib.linalg.vector_norm(x, ord) for ord in (2, 1, 3, 0.5, math.inf, -math.inf, -1)],
        lib.linalg.vector_norm(x, 2, dim=1, keepdim=True),
        lib.linalg.vector_norm(x, 3, dim=(0, 2))), [[(2, 3, 4)]], "any"),
    "matrix_norm": (lambda lib, a: _flat(lib, *[
        lib.linalg.matrix_norm(a, ord) for ord in
        ("fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf)],
        lib.linalg.matrix_norm(a, 1, dim=(0, 2), keepdim=True),
        lib.linalg.matrix_norm(a, "nuc", dim=(2, 0))), [[(2, 3, 4)]], "any"),
    "norm": (lambda lib, x: _flat(
        lib, lib.linalg.norm(x), lib.linalg.norm(x, dim=1), lib.linalg.norm(x, 3, dim=(2,)),
        lib.linalg.norm(x, "fro", dim=(0, 1)), lib.linalg.norm(x[0], 2),
        lib.linalg.norm(x[0, 0], math.inf)), [[(2, 3, 4)]], "any"),
    # torch's top-level names
    "inverse": (lambda lib, a: lib.inverse(a), [[(3, 3)]], "square"),
    "torch.svd": (lambda lib, a: _flat(lib, *[p ** 2 for p in lib.svd(a)]), [[(4, 3)]],
                  "any"),
    "pinverse": (lambda lib, a: lib.pinverse(a), [[(3, 4)]], "any"),
    "det_method": (lambda lib, a: a.det() + a.logdet() * 0 + a.slogdet()[1], [[(3, 3)]],
                   "spd"),
    "methods": (lambda lib, a: _flat(lib, a.inverse(), _spd(lib, a).cholesky(), a.pinverse(),
                                     a.matrix_power(2), a.svd()[1], a.matrix_exp(),
                                     lib.matrix_exp(a)), [[(3, 3)]], "spd"),
}

# no second derivative to compare: torch's lstsq has none
FIRST_ORDER_ONLY = {"lstsq"}
# values only against torch: torch 2.13's backward of cond for these p raises (its inverse's
# output is written in place); the gradients are checked against finite differences
VALUES_ONLY = {"cond_norms"}


def _inputs(kind: str, shapes: list, dtype, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for shape in shapes:
        a = rng.standard_normal(shape)
        if kind in ("square", "spd") and len(shape) >= 2 and shape[-1] == shape[-2] \
                and len(out) == 0:
            a = a + 2 * shape[-1] * np.eye(shape[-1]) if kind == "square" else \
                a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1])
        out.append(a.astype(dtype))
    return out


def _variants():
    for name, (_, shapes, kind) in CASES.items():
        for k, s in enumerate(shapes):
            yield pytest.param(name, s, kind, id=f"{name}-{k}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, shapes, kind", list(_variants()))
def test_values_and_gradients_match_torch(name, shapes, kind, dtype):
    fn = CASES[name][0]
    arrays = _inputs(kind, shapes, dtype)
    tol = {} if dtype == np.float64 else {"rtol": 2e-4, "atol": 2e-4}
    if dtype == np.float64:
        tol = {"rtol": 1e-8, "atol": 1e-10}
    order = 1 if name in FIRST_ORDER_ONLY or dtype == np.float32 else 2
    order = 0 if name in VALUES_ONLY else order
    out = compare_with_torch(lambda *xs: fn(tg, *xs), lambda *xs: fn(torch, *xs), *arrays,
                             order=order, **tol)
    assert out.dtype == dtype and out.numel() > 0


@pytest.mark.parametrize("name, shapes, kind", list(_variants()))
def test_gradients_match_finite_differences(name, shapes, kind):
    if name in ("vector_norm", "matrix_norm", "norm"):
        pytest.skip("(test_norms_match_finite_differences: away from the norms' kinks)")
    fn = CASES[name][0]
    arrays = _inputs(kind, shapes, np.float64)
    check_grads(lambda *xs: fn(tg, *xs), *arrays, order=2, rtol=1e-5, atol=1e-6)


def test_norms_match_finite_differences():
    # smooth ords only (inf, 1 and 0 have kinks where FD straddles them)
    x = _inputs("any", [(2, 3, 4)], np.float64)[0]
    check_grads(lambda t: _flat(tg, tg.linalg.vector_norm(t), tg.linalg.vector_norm(t, 3, 1),
                                tg.linalg.vector_norm(t, 0.5, (0, 2)),
                                tg.linalg.matrix_norm(t, "fro"),
                                tg.linalg.matrix_norm(t, "nuc"), tg.linalg.matrix_norm(t, 2),
                                tg.linalg.matrix_norm(t, -2)), x)


# ---------------------------------------------------------------- plain values


def test_values_against_numpy_and_torch_directly():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((2, 4, 4)) + 8 * np.eye(4)
    t = tg.tensor(a)
    np.testing.assert_allclose(tg.linalg.inv(t).numpy(), np.linalg.inv(a), rtol=1e-12)
    np.testing.assert_allclose(tg.linalg.det(t).numpy(), torch.linalg.det(torch.tensor(a)),
                               rtol=1e-12)
    sign, logabs = tg.linalg.slogdet(tg.tensor(-a))
    np.testing.assert_array_equal(sign.numpy(), [1.0, 1.0])  # (-1)^4
    np.testing.assert_allclose(logabs.numpy(), np.log(np.abs(np.linalg.det(a))), rtol=1e-12)
    # singular: sign 0, log -inf; det 0; logdet of a negative determinant is nan
    s0, l0 = tg.linalg.slogdet(tg.zeros(3, 3))
    assert s0.item() == 0 and l0.item() == -math.inf
    assert tg.linalg.det(tg.ones(3, 3)).item() == 0
    assert math.isnan(tg.logdet(tg.tensor([[0.0, 1.0], [1.0, 0.0]])).item())
    # a decomposition multiplies back
    u, s, vh = tg.linalg.svd(t, full_matrices=False)
    np.testing.assert_allclose(((u * s.unsqueeze(-2)) @ vh).numpy(), a, atol=1e-12)
    q, r = tg.linalg.qr(t, mode="complete")
    np.testing.assert_allclose((q @ r).numpy(), a, atol=1e-12)
    assert tg.linalg.qr(t, mode="r").Q.numel() == 0
    L = tg.linalg.cholesky(tg.tensor(a @ np.swapaxes(a, -1, -2)))
    np.testing.assert_allclose((L @ L.transpose(-1, -2)).numpy(), a @ np.swapaxes(a, -1, -2),
                               rtol=1e-12)
    values, vectors = tg.linalg.eigh(tg.tensor(a + np.swapaxes(a, -1, -2)))
    assert (np.diff(values.numpy(), axis=-1) > 0).all()
    # full_matrices: square U and Vh, orthogonal
    u, s, vh = tg.linalg.svd(tg.tensor(rng.standard_normal((5, 3))))
    assert u.shape == (5, 5) and s.shape == (3,) and vh.shape == (3, 3)
    np.testing.assert_allclose((u.T @ u).numpy(), np.eye(5), atol=1e-12)
    # torch.svd: V, not Vh; reduced
    A = rng.standard_normal((5, 3))
    U, S, V = tg.svd(tg.tensor(A))
    assert U.shape == (5, 3) and V.shape == (3, 3)
    np.testing.assert_allclose(((U * S) @ V.T).numpy(), A, atol=1e-12)
    np.testing.assert_allclose(tg.linalg.matrix_power(tg.tensor(a), 0).numpy(),
                               np.broadcast_to(np.eye(4), a.shape))
    inf = tg.full((3, 3), math.inf, requires_grad=True)
    power0 = tg.linalg.matrix_power(inf, 0)
    np.testing.assert_array_equal(power0.numpy(), np.eye(3))
    assert power0.requires_grad


def test_matrix_rank_matches_torch():
    rng = np.random.default_rng(5)
    low = rng.standard_normal((3, 5, 2)) @ rng.standard_normal((3, 2, 4))  # rank 2
    full = rng.standard_normal((5, 4))
    sym = low[0] @ low[0].T
    for a, kw in ((low, {}), (full, {}), (full, {"atol": 1.0}), (full, {"rtol": 0.5}),
                  (sym, {"hermitian": True}), (np.zeros((3, 3)), {})):
        ours = tg.linalg.matrix_rank(tg.tensor(a), **kw)
        theirs = torch.linalg.matrix_rank(torch.tensor(a), **kw)
        assert ours.dtype == np.int64
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal(tg.linalg.matrix_rank(tg.tensor(low)).numpy(), [2, 2, 2])


def test_repeated_eigenvalues_give_finite_gradients_of_the_values_as_torch():
    """Exactly equal eigenvalues (singular values): differentiating the values alone gives
    torch's gradient (no 0 / 0), as the rotations within the repeated eigenspace are left
    out of the vectors' part of the rule."""
    a = np.diag([2.0, 2.0, 5.0])
    b = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # singular values 1, 1
    for ours, theirs, x in (
            (lambda t: (tg.linalg.eigh(t)[0] * tg.tensor([1.0, 2.0, 3.0])).sum(),
             lambda t: (torch.linalg.eigh(t)[0] * torch.tensor([1.0, 2.0, 3.0])).sum(), a),
            (lambda t: (tg.linalg.svd(t, full_matrices=False)[1] ** 2).sum(),
             lambda t: (torch.linalg.svd(t, full_matrices=False)[1] ** 2).sum(), b),
            (lambda t: tg.linalg.svd(t.T, full_matrices=False)[1].sum(),
             lambda t: torch.linalg.svd(t.T, full_matrices=False)[1].sum(), b),
            (lambda t: tg.linalg.svd(t.T)[1].sum(), lambda t: torch.linalg.svd(t.T)[1].sum(),
             np.zeros((3, 2)))):
        t = tg.tensor(x, requires_grad=True)
        ours(t).backward()
        tt = torch.tensor(x, requires_grad=True)
        theirs(tt).backward()
        assert np.isfinite(t.grad.numpy()).all()
        np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_a_basis_free_function_of_repeated_eigenvectors_has_its_true_gradient():
    """The projector onto the eigenspace of a repeated eigenvalue does not depend on the
    basis chosen in it, and is smooth: its gradient is finite and matches finite
    differences (torch gives inf/nan here)."""
    w = np.random.default_rng(6).standard_normal((3, 3))

    def projector(x):
        vectors = tg.linalg.eigh(x + x.transpose(-1, -2))[1]
        low = vectors[:, :2]
        return (low @ low.transpose(-1, -2) * tg.tensor(w)).sum()

    check_grads(projector, np.diag([1.0, 1.0, 2.5]), order=1)


def test_torch_svd_without_uv_and_the_mT_property():
    a = np.random.default_rng(7).standard_normal((2, 4, 3))
    ours, theirs = tg.svd(tg.tensor(a), compute_uv=False), torch.svd(torch.tensor(a),
                                                                     compute_uv=False)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.numpy(), t.numpy(), rtol=1e-12, atol=1e-12)
    U, S, V = tg.svd(tg.tensor(a), some=False)
    assert U.shape == (2, 4, 4) and V.shape == (2, 3, 3)
    t = tg.tensor(a)
    np.testing.assert_array_equal(t.mT.numpy(), np.swapaxes(a, -1, -2))
    np.testing.assert_array_equal(t.mH.numpy(), torch.tensor(a).mH.numpy())
    with pytest.raises(tg.ShapeError, match="mT: expects"):
        _ = tg.ones(3).mT


def test_an_empty_batch_gives_empty_results_of_torch_shapes():
    for name in ("svd", "eigh", "qr", "slogdet", "inv", "det", "svdvals", "cholesky"):
        ours = getattr(tg.linalg, name)(tg.zeros(0, 3, 3))
        theirs = getattr(torch.linalg, name)(torch.zeros(0, 3, 3))
        ours, theirs = (ours, theirs) if isinstance(ours, tuple) else ((ours,), (theirs,))
        assert [tuple(o.shape) for o in ours] == [tuple(t.shape) for t in theirs], name


def _cofactors(a: np.ndarray) -> np.ndarray:
    """The matrix of cofactors from its definition (signed minors)."""
    n = a.shape[-1]
    c = np.zeros_like(a)
    for i in range(n):
        for j in range(n):
            minor = np.delete(np.delete(a, i, -2), j, -1)
            c[..., i, j] = (-1) ** (i + j) * np.linalg.det(minor)
    return c


def test_the_gradient_of_det_at_singular_matrices_is_the_matrix_of_cofactors():
    """det's gradient exists at singular matrices too: rank n - 1 gives nonzero cofactors,
    rank n - 2 zero ones; a batch mixes them with an invertible matrix. (torch 2.13 gives 0
    for the rank n - 1 one, whose LU determinant is exactly 0: compared on the others.)"""
    rng = np.random.default_rng(8)
    rank2 = rng.standard_normal((3, 2)) @ rng.standard_normal((2, 3))
    rank1 = np.outer(rng.standard_normal(3), rng.standard_normal(3))
    a = np.stack([rank2, rank1, rng.standard_normal((3, 3)), np.zeros((3, 3))])
    assert np.linalg.det(rank2) == 0.0  # (exactly: LU meets a zero pivot)
    w = rng.standard_normal(4)
    expected = w[:, None, None] * _cofactors(a)
    t = tg.tensor(a, requires_grad=True)
    (tg.linalg.det(t) * tg.tensor(w)).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), expected, rtol=1e-10, atol=1e-12)
    assert np.abs(t.grad.numpy()[0]).max() > 0.1 and np.abs(t.grad.numpy()[1]).max() < 1e-12
    tt = torch.tensor(a[1:], requires_grad=True)
    (torch.linalg.det(tt) * torch.tensor(w[1:])).sum().backward()
    np.testing.assert_allclose(t.grad.numpy()[1:], tt.grad.numpy(), rtol=1e-10, atol=1e-12)
    # compiled, with the same numbers
    compiled = tg.compile(lambda x: (tg.linalg.det(x) * tg.tensor(w)).sum())
    for _ in range(2):
        tc = tg.tensor(a, requires_grad=True)
        compiled(tc).backward()
        np.testing.assert_allclose(tc.grad.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_named_results_and_dtypes():
    a = tg.tensor([[4.0, 1.0], [1.0, 3.0]])
    r = tg.linalg.slogdet(a)
    assert r.sign.item() == 1.0 and abs(r.logabsdet.item() - math.log(11)) < 1e-6
    e = tg.linalg.eigh(a)
    assert e.eigenvalues.dtype == np.float32 and e.eigenvectors.shape == (2, 2)
    assert tg.linalg.svd(a).Vh.shape == (2, 2) and tg.linalg.qr(a).R.shape == (2, 2)
    assert tg.linalg.inv(a).dtype == np.float32 and tg.linalg.det(a.double()).dtype == np.float64


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.sampled_from([(), (1,), (2,), (2, 1), (1, 3)]), n=st.integers(1, 4),
       m=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_random_shapes_match_torch(batch, n, m, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(batch + (n, n)) + 2 * n * np.eye(n)
    b = rng.standard_normal(batch + (n, m))
    for f in (lambda lib, x, y: lib.linalg.solve(x, y),
              lambda lib, x, y: lib.linalg.inv(x) @ y * lib.linalg.det(x).unsqueeze(-1)
              .unsqueeze(-1),
              lambda lib, x, y: _flat(lib, lib.linalg.svdvals(y), lib.linalg.pinv(y),
                                      lib.linalg.qr(y)[1] ** 2),
              lambda lib, x, y: _flat(lib, lib.linalg.cholesky(_spd(lib, x)),
                                      lib.linalg.eigvalsh(_sym(x)),
                                      lib.linalg.matrix_exp(x * 0.3),
                                      lib.linalg.slogdet(x)[1])):
        compare_with_torch(lambda x, y, f=f: f(tg, x, y), lambda x, y, f=f: f(torch, x, y),
                           a, b, order=1, rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------------- forward mode


@pytest.mark.parametrize("name", ["inv", "solve", "det", "slogdet", "cholesky", "eigh",
                                  "eigvalsh", "svd", "svdvals", "qr", "pinv", "matrix_norm",
                                  "matrix_exp"])
def test_jvp_matches_torch_func(name):
    fn, shapes, kind = CASES[name]
    arrays = _inputs(kind, shapes[-1], np.float64)
    rng = np.random.default_rng(1)
    vs = [rng.standard_normal(a.shape) for a in arrays]
    _, ours = tg.func.jvp(lambda *xs: fn(tg, *xs), tuple(map(tg.tensor, arrays)),
                          tuple(map(tg.tensor, vs)))
    _, theirs = torch.func.jvp(lambda *xs: fn(torch, *xs), tuple(map(torch.tensor, arrays)),
                               tuple(map(torch.tensor, vs)))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-8, atol=1e-10)
    jf = tg.func.jacfwd(lambda x: fn(tg, x, *map(tg.tensor, arrays[1:])))(tg.tensor(arrays[0]))
    jr = tg.func.jacrev(lambda x: fn(tg, x, *map(tg.tensor, arrays[1:])))(tg.tensor(arrays[0]))
    np.testing.assert_allclose(jf.numpy(), jr.numpy(), rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------------- compiled


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_a_compiled_function_of_linalg_ops_matches_eager(backend):
    if backend == "c":
        from tracegrad.compiler.backends import toolchain

        if toolchain.find_compiler() is None:
            pytest.skip("no C compiler")
    rng = np.random.default_rng(2)

    def f(a, b):
        spd = a @ a.transpose(-1, -2) + tg.eye(3, dtype=a.dtype) * 3
        u, s, vh = tg.linalg.svd(b, full_matrices=False)
        values, vectors = tg.linalg.eigh(spd)
        q, r = tg.linalg.qr(b)
        x = tg.linalg.solve(spd, b)
        return (tg.linalg.logdet(spd) + tg.linalg.det(a) + tg.linalg.inv(a).sum() * 0.1
                + tg.linalg.cholesky(spd).sum() + s.sum() + (u ** 2 * 0.3).sum()
                + values.sum() + (vectors ** 2).mean() + (r ** 2).sum() + x.sum()
                + tg.linalg.pinv(b).sum() + tg.linalg.matrix_norm(b, "nuc")
                + tg.linalg.vector_norm(b) + tg.linalg.slogdet(a)[1]).tanh().sum()

    compiled = tg.compile(f, backend=backend)
    for _ in range(3):  # (the first call traces, the next ones run the program)
        a = rng.standard_normal((2, 3, 3)) + 4 * np.eye(3)
        b = rng.standard_normal((2, 3, 2))
        for dtype, rtol in ((np.float64, 1e-10), (np.float32, 1e-4)):
            ea, eb = (tg.tensor(x.astype(dtype), requires_grad=True) for x in (a, b))
            ca, cb = (tg.tensor(x.astype(dtype), requires_grad=True) for x in (a, b))
            eager = f(ea, eb)
            eager.backward()
            out = compiled(ca, cb)
            out.backward()
            np.testing.assert_allclose(out.numpy(), eager.numpy(), rtol=rtol)
            np.testing.assert_allclose(ca.grad.numpy(), ea.grad.numpy(), rtol=rtol, atol=rtol)
            np.testing.assert_allclose(cb.grad.numpy(), eb.grad.numpy(), rtol=rtol, atol=rtol)
    # the factorizations are nodes of their own in the program, run by their NumPy forward
    assert "= svd[full_matrices=False]" in str(compiled.graph)
    assert "= eigh" in compiled.source() and "= qr" in compiled.source()


def test_a_compiled_solve_of_a_singular_matrix_raises_as_eager():
    compiled = tg.compile(lambda a, b: tg.linalg.solve(a, b))
    a = tg.tensor(np.eye(2) + 1.0)
    b = tg.tensor(np.ones((2, 1)))
    np.testing.assert_allclose(compiled(a, b).numpy(), np.linalg.solve(a.numpy(), b.numpy()))
    with pytest.raises(tg.linalg.LinAlgError, match="singular"):
        compiled(tg.tensor(np.ones((2, 2))), b)


# ---------------------------------------------------------------- errors


def test_singular_and_indefinite_matrices_raise_clear_errors():
    with pytest.raises(tg.linalg.LinAlgError, match=r"linalg.inv: .*\(3, 3\).*singular.*pinv"):
        tg.linalg.inv(tg.ones(3, 3))
    with pytest.raises(RuntimeError, match=r"linalg.solve: .*\(2, 2, 2\).*batch.*singular"):
        tg.linalg.solve(tg.stack([tg.eye(2), tg.zeros(2, 2)]), tg.ones(2, 2, 1))
    with pytest.raises(RuntimeError, match="linalg.cholesky: .*not positive-definite.*eps"):
        tg.linalg.cholesky(-tg.eye(2))
    with pytest.raises(torch.linalg.LinAlgError):  # (what torch raises for the same)
        torch.linalg.cholesky(-torch.eye(2))


def test_shape_and_dtype_errors():
    with pytest.raises(tg.ShapeError, match=r"linalg.inv: expects square.*\(2, 3\)"):
        tg.linalg.inv(tg.ones(2, 3))
    with pytest.raises(tg.ShapeError, match="at least 2 dimensions"):
        tg.linalg.det(tg.ones(3))
    with pytest.raises(TypeError, match="linalg.inv: expects a float32 or float64.*int64"):
        tg.linalg.inv(tg.tensor([[1, 2], [3, 4]]))
    with pytest.raises(RuntimeError):  # torch refuses ints too
        torch.linalg.inv(torch.tensor([[1, 2], [3, 4]]))
    with pytest.raises(TypeError, match="linalg.solve: A and B have dtypes float32 and"):
        tg.linalg.solve(tg.eye(2), tg.ones(2, dtype=tg.float64))
    with pytest.raises(tg.ShapeError, match="linalg.solve: A of shape"):
        tg.linalg.solve(tg.eye(3), tg.ones(2, 1))
    with pytest.raises(RuntimeError, match="vector_norm: expects a floating point"):
        tg.linalg.vector_norm(tg.tensor([1, 2]))
    with pytest.raises(RuntimeError):  # (a TypeError too: tg.DTypeError)
        torch.linalg.vector_norm(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="matrix_norm: ord must be"):
        tg.linalg.matrix_norm(tg.eye(2), 3)
    with pytest.raises(tg.ShapeError, match="must be 1-d or 2-d"):
        tg.linalg.norm(tg.ones(2, 2, 2), 2)
    with pytest.raises(tg.ShapeError, match="multi_dot: tensors 0 and 1 do not fit"):
        tg.linalg.multi_dot([tg.ones(2, 3), tg.ones(2, 3)])
    a = tg.tensor(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True)
    q, r = tg.linalg.qr(a, mode="complete")
    with pytest.raises(RuntimeError, match="mode='complete'.*no derivative"):
        q.sum().backward()


def test_gradient_of_a_zero_vector_norm_is_zero_as_torch():
    x = tg.zeros(3, requires_grad=True)
    tg.linalg.vector_norm(x).backward()
    xt = torch.zeros(3, requires_grad=True)
    torch.linalg.vector_norm(xt).backward()
    np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(3))
