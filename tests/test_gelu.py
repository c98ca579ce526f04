"""GELU: ``F.gelu(x)`` is x times a primitive, Phi(x) (`normal_cdf`) or its tanh approximation
(`normal_cdf_tanh`), whose gradient reads its own value (ops/elementwise.py). Checked against
PyTorch's GELU (values, gradients, second order, forward mode), float64 finite differences,
and across eager, the NumPy backend and the C backend; the compiled backward computes no
second tanh.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_grads, compare_with_torch

import tracegrad as tg
import tracegrad.nn.functional as F
from tracegrad.compiler.backends import c as cbackend

torch = pytest.importorskip("torch")
TF = torch.nn.functional
FORMS = ["none", "tanh"]
needs_c = pytest.mark.skipif(cbackend.available() is not None,
                             reason=f"no C backend here: {cbackend.available()}")


def _points(dtype) -> np.ndarray:
    """Both tails, the bend around 0 (exact 0 and -0 too) and random values."""
    rng = np.random.default_rng(0)
    fixed = [0.0, -0.0, 1e-6, -1e-6, 0.5, -0.5, 1.0, -1.0, 2.5, -2.5, 4.0, -4.0, 6.0, -6.0,
             9.0, -9.0]
    return np.concatenate([fixed, rng.uniform(-5, 5, 48)]).astype(dtype)


@pytest.mark.parametrize("approximate", FORMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_matches_torch_to_second_order(approximate, dtype):
    def compare(**tolerances):
        compare_with_torch(lambda x: F.gelu(x, approximate=approximate),
                           lambda x: TF.gelu(x, approximate=approximate), _points(dtype),
                           **tolerances)

    if dtype == np.float64:
        compare()
    else:
        # In float32 the tails lose bits to cancellation, in the gradient's 1 - t^2 (PyTorch)
        # or u (1 - u) (tracegrad's, t = 2u - 1): PyTorch's second derivative (1/cosh^2)
        # does not, so the second order agrees to the first order's absolute error
        compare(order=1, atol=3e-6)
        compare(order=2, atol=3e-5)


@pytest.mark.parametrize("approximate", FORMS)
def test_gelu_float64_gradients_match_finite_differences(approximate):
    x = tg.tensor(_points(np.float64)[:20].reshape(4, 5))
    check_grads(lambda t: F.gelu(t, approximate=approximate), x, order=2)


@pytest.mark.parametrize("approximate", FORMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_extreme_values(approximate, dtype):
    big = np.finfo(dtype).max
    x = np.array([1e20, -1e20, 30.0, -30.0, 1e-30, -1e-30, 0.0, -0.0, np.nan], dtype)
    got = F.gelu(tg.tensor(x), approximate=approximate).numpy()
    want = TF.gelu(torch.tensor(x), approximate=approximate).numpy()
    np.testing.assert_array_equal(got, want)
    # x Phi(x) at the ends of the range: x, -0 (a tiny negative), inf, and -inf * 0 = nan
    # (PyTorch overflows to inf at the largest float and gives nan at inf in the tanh form)
    with np.errstate(all="ignore"):
        got = F.gelu(tg.tensor(np.array([big, -big, np.inf, -np.inf], dtype)),
                     approximate=approximate).numpy()
    np.testing.assert_array_equal(got, np.array([big, -0.0, np.inf, np.nan], dtype))


@pytest.mark.parametrize("approximate", FORMS)
def test_gelu_forward_mode_matches_torch(approximate):
    x, v = _points(np.float64), np.random.default_rng(1).standard_normal(64)
    _, tangent = tg.jvp(lambda t: F.gelu(t, approximate=approximate), (tg.tensor(x),),
                        (tg.tensor(v),))
    _, want = torch.func.jvp(lambda t: TF.gelu(t, approximate=approximate),
                             (torch.tensor(x),), (torch.tensor(v),))
    np.testing.assert_allclose(tangent.numpy(), want.numpy(), rtol=1e-12, atol=1e-14)


def test_gelu_is_x_times_one_primitive_and_its_backward_has_no_second_tanh():
    def step(x):
        y = F.gelu(x, approximate="tanh")
        (y * y).sum().backward()
        return x.grad

    graph = tg.trace(step, tg.TensorSpec((3, 4), requires_grad=True))
    ops = [n.op for n in graph.nodes]
    assert ops.count("normal_cdf_tanh") == 1 and "tanh" not in ops, ops
    graph = tg.trace(lambda x: F.gelu(x), tg.TensorSpec((3, 4)))
    assert [n.op for n in graph.nodes if n.op != "const"] == ["normal_cdf", "mul"]


def _step(approximate):
    def f(x, r):
        y = F.gelu(x, approximate=approximate)
        (y * r).sum().backward()
        return y, x.grad

    return f


BACKENDS = ["numpy", pytest.param("c", marks=needs_c)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("approximate", FORMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5, 7), (64, 128), (200, 120)])
def test_compiled_gelu_agrees_with_eager_and_torch(backend, approximate, dtype, shape, tmp_path,
                                                   monkeypatch):
    # (5, 7): one small C program; (64, 128): a row program; (200, 120): large kernels
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(2)
    x0 = (rng.standard_normal(shape) * 3).astype(dtype)
    r = tg.tensor(rng.standard_normal(shape).astype(dtype))
    f = _step(approximate)
    compiled = tg.compile(f, backend=backend)
    for _ in range(3):  # (the first call traces, the later ones run the compiled program)
        x = tg.tensor(x0, requires_grad=True)
        got = [o.numpy() for o in compiled(x, r)]
    x = tg.tensor(x0, requires_grad=True)
    want = [o.numpy() for o in f(x, r)]
    xt = torch.tensor(x0, requires_grad=True)
    yt = TF.gelu(xt, approximate=approximate)
    (yt * torch.tensor(r.numpy())).sum().backward()
    torch_values = [yt.detach().numpy(), xt.grad.numpy()]
    # float32: the C backend's tanh is within 1.5 ulp of the exact value, NumPy's too, not
    # the same bits; float64: libm's tanh/erf against NumPy's and SciPy's
    # (and in the tails a last-bit difference of tanh near -1 moves a gradient by 2e-6)
    tol = 2e-5 if dtype == np.float32 else 1e-13
    for name, g, w, t in zip(("y", "x.grad"), got, want, torch_values):
        assert g.dtype == w.dtype == dtype
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol, err_msg=f"{name}: compiled")
        np.testing.assert_allclose(w, t, rtol=10 * tol, atol=10 * tol, err_msg=f"{name}: torch")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("approximate", FORMS)
def test_compiled_second_derivative_agrees_with_torch(backend, approximate, tmp_path,
                                                      monkeypatch):
    # GELU'' through the gate's VJP, itself differentiated: compiled, eager and torch
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    x0 = _points(np.float64)

    def second(x):
        (d1,) = tg.autograd.grad(F.gelu(x, approximate=approximate).sum(), x,
                                 create_graph=True)
        (d2,) = tg.autograd.grad(d1.sum(), x)
        return d1, d2

    compiled = tg.compile(second, backend=backend)
    for _ in range(3):
        got = [o.numpy() for o in compiled(tg.tensor(x0, requires_grad=True))]
    want = [o.numpy() for o in second(tg.tensor(x0, requires_grad=True))]
    xt = torch.tensor(x0, requires_grad=True)
    (d1,) = torch.autograd.grad(TF.gelu(xt, approximate=approximate).sum(), xt,
                                create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), xt)
    for g, w, t in zip(got, want, (d1.detach().numpy(), d2.numpy())):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(w, t, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("approximate", FORMS)
def test_gelu_jacobians_and_hessian_match_torch(approximate):
    # jacfwd pushes a batch of tangents through the gate's rule at once; hessian is forward
    # over reverse
    x = np.linspace(-3, 3, 7)

    def f(t):
        return F.gelu(t, approximate=approximate)

    def ft(t):
        return TF.gelu(t, approximate=approximate)

    jf = tg.jacfwd(f)(tg.tensor(x)).numpy()
    np.testing.assert_array_equal(jf, tg.jacrev(f)(tg.tensor(x)).numpy())
    np.testing.assert_allclose(jf, torch.func.jacfwd(ft)(torch.tensor(x)).numpy(),
                               rtol=1e-12, atol=1e-14)
    h = tg.hessian(lambda t: f(t).sum())(tg.tensor(x)).numpy()
    want = torch.func.hessian(lambda t: ft(t).sum())(torch.tensor(x)).numpy()
    np.testing.assert_allclose(h, want, rtol=1e-10, atol=1e-12)
