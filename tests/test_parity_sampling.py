"""Spatial transformers (tracegrad/nn/sampling.py): `F.affine_grid` and `F.grid_sample` in
2-d and 3-d, every mode and padding mode, values and gradients (input, grid, theta) against
torch 2.13 in float64 and float32, against float64 finite differences, and compiled against
eager."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from gradcheck import check_grads, compare_with_torch

import tracegrad as tg
from tracegrad.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

MODES = ["bilinear", "nearest", "bicubic"]
PADDING = ["zeros", "border", "reflection"]


def _case(nd: int, dtype=np.float64, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3) + (5, 6, 4)[:nd]).astype(dtype)
    # points inside and outside [-1, 1] (reflection folds them back more than once)
    grid = rng.uniform(-2.7, 2.7, (2,) + (3, 4, 2)[:nd] + (nd,)).astype(dtype)
    return x, grid


@pytest.mark.parametrize("nd", [2, 3])
@pytest.mark.parametrize("mode,padding_mode,align_corners",
                         list(itertools.product(MODES, PADDING, [False, True])))
def test_grid_sample_matches_torch(nd, mode, padding_mode, align_corners):
    if mode == "bicubic" and nd == 3:
        pytest.skip("bicubic is 2-d only, as in PyTorch")
    x, grid = _case(nd)

    def call(fn):
        return lambda x, g: fn(x, g, mode, padding_mode, align_corners)

    compare_with_torch(call(F.grid_sample), call(TF.grid_sample), x, grid, order=1)


@pytest.mark.parametrize("mode", MODES)
def test_grid_sample_float32_matches_torch(mode):
    x, grid = _case(2, np.float32, seed=1)
    compare_with_torch(lambda x, g: F.grid_sample(x, g, mode, "reflection"),
                       lambda x, g: TF.grid_sample(x, g, mode, "reflection",
                                                   align_corners=False),
                       x, grid, order=1, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("padding_mode", PADDING)
def test_grid_sample_matches_finite_differences(mode, padding_mode):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2, 3, 4))
    # away from pixel centres and the reflection's fold points, where it is not smooth
    grid = rng.uniform(-1.4, 1.4, (1, 2, 3, 2))
    check_grads(lambda x, g: F.grid_sample(x, g, mode, padding_mode, align_corners=False),
                x, grid, order=1)


@pytest.mark.parametrize("padding_mode", PADDING)
def test_trilinear_grid_sample_matches_finite_differences(padding_mode):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 2, 3, 2, 3))
    grid = rng.uniform(-1.4, 1.4, (1, 2, 1, 2, 3))
    check_grads(lambda x, g: F.grid_sample(x, g, "bilinear", padding_mode, align_corners=True),
                x, grid, order=1)


@pytest.mark.parametrize("nd", [2, 3])
def test_affine_grid_float32_matches_torch(nd):
    theta = np.random.default_rng(9).standard_normal((3, nd, nd + 1)).astype(np.float32)
    size = (3, 1, 7, 5, 6)[:nd + 2]
    compare_with_torch(lambda t: F.affine_grid(t, size, False),
                       lambda t: TF.affine_grid(t, size, False), theta, order=1)


@pytest.mark.parametrize("nd", [2, 3])
@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_grid_matches_torch(nd, align_corners):
    rng = np.random.default_rng(3)
    theta = rng.standard_normal((2, nd, nd + 1))
    size = (2, 3, 4, 5, 6)[:nd + 2]
    compare_with_torch(lambda t: F.affine_grid(t, size, align_corners),
                       lambda t: TF.affine_grid(t, size, align_corners), theta, order=1)
    one = (2, 3) + (1,) * nd  # a single pixel sits at 0 either way
    compare_with_torch(lambda t: F.affine_grid(t, one, align_corners),
                       lambda t: TF.affine_grid(t, one, align_corners), theta, order=1)


def test_spatial_transformer_gradient_to_theta_matches_torch():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 6, 5))
    theta = np.array([[[0.9, 0.2, 0.1], [-0.1, 1.1, 0.05]],
                      [[1.2, -0.3, -0.2], [0.25, 0.8, 0.1]]])

    def stn(lib):
        fn = lib.nn.functional
        return lambda x, t: fn.grid_sample(x, fn.affine_grid(t, (2, 3, 4, 7), False),
                                           align_corners=False)

    compare_with_torch(stn(tg), stn(torch), x, theta, order=1)


def test_identity_grid_reproduces_the_image():
    x = np.random.default_rng(5).standard_normal((1, 2, 4, 5))
    for align in (False, True):
        grid = F.affine_grid(tg.tensor([[[1.0, 0, 0], [0, 1.0, 0]]], dtype=tg.float64),
                             (1, 2, 4, 5), align)
        for mode in MODES:
            y = F.grid_sample(tg.tensor(x), grid, mode, "border", align)
            np.testing.assert_allclose(y.numpy(), x, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_grid_sample_with_non_finite_points_as_torch_for_zeros_padding(mode):
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    grid = np.array([[[[np.nan, 0.0], [0.1, np.inf], [-np.inf, 0.2], [5.0, 1e30],
                       [0.3, -0.4]]]])
    y = F.grid_sample(tg.tensor(x), tg.tensor(grid), mode, align_corners=False)
    ref = TF.grid_sample(torch.tensor(x), torch.tensor(grid), mode, align_corners=False)
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-12, equal_nan=True)


def test_grid_sample_errors_name_the_shapes():
    with pytest.raises(tg.ShapeError, match=r"grid_sample.*\(N, H_out, W_out, 2\)"):
        F.grid_sample(tg.zeros(1, 1, 3, 3), tg.zeros(1, 2, 2, 3))
    with pytest.raises(ValueError, match="bicubic"):
        F.grid_sample(tg.zeros(1, 1, 2, 3, 3), tg.zeros(1, 2, 2, 2, 3), mode="bicubic")
    with pytest.raises(ValueError, match="padding_mode"):
        F.grid_sample(tg.zeros(1, 1, 3, 3), tg.zeros(1, 2, 2, 2), padding_mode="circular")
    with pytest.raises(tg.ShapeError, match=r"affine_grid.*\(N, 2, 3\)"):
        F.affine_grid(tg.zeros(1, 3, 4), (1, 1, 4, 4))


@pytest.mark.parametrize("nd,mode,padding_mode", [(2, "bilinear", "zeros"),
                                                  (2, "bicubic", "reflection"),
                                                  (2, "nearest", "border"),
                                                  (3, "bilinear", "reflection")])
def test_compiled_grid_sample_matches_eager(nd, mode, padding_mode):
    x, grid = _case(nd, seed=6)

    def fn(x, g):
        return F.grid_sample(x, g, mode, padding_mode, align_corners=False)

    compiled = tg.compile(fn)
    for scale in (1.0, 0.7):  # a second grid: the indices are the call's, not the trace's
        got = []
        for f in (fn, compiled):
            xs = [tg.tensor(x, requires_grad=True), tg.tensor(grid * scale, requires_grad=True)]
            y = f(*xs)
            (y * y).sum().backward()
            got.append([y.detach().numpy()] + [
                np.zeros(t.shape) if t.grad is None else t.grad.numpy() for t in xs])
        for a, b in zip(got[1], got[0]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        ref = TF.grid_sample(torch.tensor(x), torch.tensor(grid * scale), mode, padding_mode,
                             align_corners=False)
        np.testing.assert_allclose(got[1][0], ref.numpy(), rtol=1e-10, atol=1e-12)


def test_compiled_affine_grid_matches_eager():
    theta = np.random.default_rng(7).standard_normal((2, 3, 4))
    fn = lambda t: F.affine_grid(t, (2, 1, 3, 4, 5), align_corners=False)  # noqa: E731
    compiled = tg.compile(fn)
    for scale in (1.0, -0.5):
        a, b = tg.tensor(theta * scale, requires_grad=True), \
            tg.tensor(theta * scale, requires_grad=True)
        ya, yb = fn(a), compiled(b)
        (ya * ya).sum().backward()
        (yb * yb).sum().backward()
        np.testing.assert_allclose(yb.numpy(), ya.numpy(), rtol=1e-12)
        np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), rtol=1e-12)
