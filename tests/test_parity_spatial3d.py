"""The 3-d convolutions and pools (conv3d, conv_transpose3d, max/avg/adaptive/LP pools,
max_unpool3d) and their layers: values, indices and gradients (input and weight) against
torch 2.13 in float64 and float32, float64 finite differences on small cases, unbatched
inputs, and compiled against eager. They share the n-d code of the 1-d and 2-d ops."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_grads, compare_with_torch
from helpers import compiled_matches_eager

import tracegrad as tg
from tracegrad import nn
from tracegrad.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- convolution

# (C_in, C_out, groups, kernel, stride, padding, dilation, bias, size)
CONV_CASES = [
    (2, 3, 1, 3, 1, 0, 1, True, (5, 6, 4)),
    (4, 6, 2, (2, 3, 1), (2, 1, 3), (1, 0, 1), 1, False, (6, 5, 7)),
    (3, 3, 3, 3, 1, "same", (2, 1, 1), True, (7, 4, 5)),  # depthwise, dilated
    (2, 4, 1, (2, 2, 3), 1, "same", 1, True, (4, 5, 6)),  # even kernels: odd pad after
    (2, 2, 1, 2, 2, "valid", 2, True, (6, 6, 7)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv3d_matches_torch(case, dtype):
    c_in, c_out, groups, k, s, p, d, bias, size = case
    kernel = (k,) * 3 if isinstance(k, int) else k
    rng = _rng()
    x = rng.standard_normal((2, c_in) + size).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups) + kernel).astype(dtype)
    arrays = [x, w] + ([rng.standard_normal(c_out).astype(dtype)] if bias else [])

    def call(conv):
        return lambda x, w, *b: conv(x, w, b[0] if b else None, s, p, d, groups)

    rtol = 1e-4 if dtype == np.float32 else None
    compare_with_torch(call(F.conv3d), call(TF.conv3d), *arrays, order=1, rtol=rtol,
                       atol=1e-4 if dtype == np.float32 else None)


def test_conv3d_unbatched_and_second_order():
    rng = _rng(1)
    x = rng.standard_normal((2, 4, 3, 5))
    w = rng.standard_normal((3, 2, 2, 2, 3))
    out = compare_with_torch(lambda x, w: F.conv3d(x, w, padding=1) ** 2,
                             lambda x, w: TF.conv3d(x, w, padding=1) ** 2, x, w, order=2)
    assert out.shape == (3, 5, 4, 5)


def test_conv3d_and_conv_transpose3d_match_finite_differences():
    rng = _rng(2)
    x = rng.standard_normal((1, 2, 3, 3, 4))
    w = rng.standard_normal((2, 1, 2, 1, 2))
    b = rng.standard_normal(2)
    check_grads(lambda x, w, b: F.conv3d(x, w, b, stride=(1, 2, 1), padding=1, groups=2),
                x, w, b, order=1)
    wt = rng.standard_normal((2, 3, 2, 2, 2))
    check_grads(lambda x, w: F.conv_transpose3d(x, w, stride=2, padding=1,
                                                output_padding=(1, 0, 1)), x, wt, order=1)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_conv3d_module_loads_torch_weights_and_agrees(mode):
    torch.manual_seed(0)
    ref = torch.nn.Conv3d(4, 6, (3, 2, 3), stride=(1, 2, 1), padding=(1, 1, 2), groups=2,
                          padding_mode=mode).double()
    mine = nn.Conv3d(4, 6, (3, 2, 3), stride=(1, 2, 1), padding=(1, 1, 2), groups=2,
                     padding_mode=mode).double()
    mine.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    assert repr(mine) == repr(ref)
    x = _rng(3).standard_normal((2, 4, 5, 6, 5))
    y = mine(tg.tensor(x, requires_grad=True))
    r = ref(torch.tensor(x))
    np.testing.assert_allclose(y.numpy(), r.detach().numpy(), rtol=1e-10, atol=1e-12)
    y.sum().backward()
    r.sum().backward()
    np.testing.assert_allclose(mine.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(mine.bias.grad.numpy(), ref.bias.grad.numpy(), rtol=1e-10)


# (C_in, C_out, groups, kernel, stride, padding, output_padding, dilation, size)
TRANSPOSE_CASES = [
    (3, 4, 1, 3, 1, 0, 0, 1, (3, 4, 2)),
    (4, 6, 2, (3, 2, 2), (2, 1, 2), (1, 0, 1), (1, 0, 1), 1, (3, 3, 4)),
    (2, 2, 2, 2, 3, 2, 2, 1, (2, 3, 2)),  # depthwise, output_padding > padding
    (3, 2, 1, 3, 1, 1, 1, 2, (4, 3, 3)),  # output_padding >= stride, allowed by the dilation
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", TRANSPOSE_CASES)
def test_conv_transpose3d_matches_torch(case, dtype):
    c_in, c_out, groups, k, s, p, op, d, size = case
    kernel = (k,) * 3 if isinstance(k, int) else k
    rng = _rng(4)
    x = rng.standard_normal((2, c_in) + size).astype(dtype)
    w = rng.standard_normal((c_in, c_out // groups) + kernel).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)

    def call(conv):
        return lambda x, w, b: conv(x, w, b, s, p, op, groups, d)

    tol = 1e-4 if dtype == np.float32 else None
    compare_with_torch(call(F.conv_transpose3d), call(TF.conv_transpose3d), x, w, b, order=1,
                       rtol=tol, atol=tol)
    compare_with_torch(lambda x, w, b: call(F.conv_transpose3d)(x[0], w, b),  # unbatched
                       lambda x, w, b: call(TF.conv_transpose3d)(x[0], w, b), x, w, b,
                       order=1, rtol=tol, atol=tol)


def test_conv_transpose3d_module_output_size_as_torch():
    torch.manual_seed(1)
    ref = torch.nn.ConvTranspose3d(2, 3, 3, stride=2, padding=1).double()
    mine = nn.ConvTranspose3d(2, 3, 3, stride=2, padding=1).double()
    mine.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    assert repr(mine) == repr(ref)
    x = _rng(5).standard_normal((1, 2, 3, 4, 5))
    y = mine(tg.tensor(x), output_size=(6, 8, 9))
    r = ref(torch.tensor(x), output_size=(6, 8, 9))
    assert y.shape == (1, 3, 6, 8, 9)
    np.testing.assert_allclose(y.numpy(), r.detach().numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- pools

# (kernel, stride, padding, dilation, ceil_mode, size)
POOL_CASES = [
    (2, None, 0, 1, False, (4, 6, 4)),
    ((3, 2, 2), (2, 1, 2), (1, 0, 1), 1, True, (5, 5, 6)),
    (3, 2, 1, (2, 1, 1), True, (7, 6, 5)),
    ((2, 3, 2), 3, (1, 1, 0), 1, True, (5, 7, 4)),  # ceil_mode's partial last windows
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool3d_values_indices_and_gradients_match_torch(case, dtype):
    k, s, p, d, ceil, size = case
    x = _rng(6).permutation(2 * 3 * int(np.prod(size))).reshape((2, 3) + size).astype(dtype)
    compare_with_torch(lambda x: F.max_pool3d(x, k, s, p, d, ceil),
                       lambda x: TF.max_pool3d(x, k, s, p, d, ceil), x, order=1)
    y, i = F.max_pool3d(tg.tensor(x), k, s, p, d, ceil, return_indices=True)
    ry, ri = TF.max_pool3d(torch.tensor(x), k, s, p, d, ceil, return_indices=True)
    np.testing.assert_array_equal(y.numpy(), ry.numpy())
    np.testing.assert_array_equal(i.numpy(), ri.numpy())
    yu, iu = F.max_pool3d_with_indices(tg.tensor(x[0]), k, s, p, d, ceil)  # unbatched
    np.testing.assert_array_equal(iu.numpy(), ri.numpy()[0])
    if d != 1:
        return
    # max_unpool3d puts each maximum back at its index
    out = F.max_unpool3d(y, i, k, s, p, output_size=size)
    ref = TF.max_unpool3d(ry, ri, k, s, p, output_size=size)
    np.testing.assert_array_equal(out.numpy(), ref.numpy())
    layer = nn.MaxUnpool3d(k, s, p)
    np.testing.assert_array_equal(layer(y, i, output_size=size).numpy(), ref.numpy())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("divisor", [None, 5])
@pytest.mark.parametrize("case", POOL_CASES)
def test_avg_pool3d_matches_torch(case, count_include_pad, divisor, dtype):
    k, s, p, _, ceil, size = case
    x = _rng(7).standard_normal((2, 3) + size).astype(dtype)
    compare_with_torch(lambda x: F.avg_pool3d(x, k, s, p, ceil, count_include_pad, divisor),
                       lambda x: TF.avg_pool3d(x, k, s, p, ceil, count_include_pad, divisor),
                       x, order=1)
    compare_with_torch(lambda x: F.avg_pool3d(x[1], k, s, p, ceil, count_include_pad, divisor),
                       lambda x: TF.avg_pool3d(x[1], k, s, p, ceil, count_include_pad,
                                               divisor), x, order=1)


def test_pools3d_match_finite_differences():
    x = _rng(8).permutation(2 * 3 * 4 * 5).reshape(1, 2, 3, 4, 5) / 7.0
    check_grads(lambda x: F.max_pool3d(x, 2, (1, 2, 2), 1, ceil_mode=True), x, order=1)
    check_grads(lambda x: F.avg_pool3d(x, (2, 3, 2), 2, 1, True, False), x, order=1)
    check_grads(lambda x: F.adaptive_max_pool3d(x, (2, 3, 4)), x, order=1)
    check_grads(lambda x: F.lp_pool3d(x + 3.0, 3, 2, 1), x, order=1)


@pytest.mark.parametrize("out", [1, (2, 3, 2), (None, 2, 4), (3, 5, 3)])
def test_adaptive_pools3d_match_torch(out):
    x = _rng(9).permutation(2 * 3 * 5 * 7 * 4).reshape(2, 3, 5, 7, 4).astype(np.float64)
    compare_with_torch(lambda x: F.adaptive_avg_pool3d(x, out),
                       lambda x: TF.adaptive_avg_pool3d(x, out), x, order=1)
    compare_with_torch(lambda x: F.adaptive_max_pool3d(x, out),
                       lambda x: TF.adaptive_max_pool3d(x, out), x, order=1)
    compare_with_torch(lambda x: F.adaptive_max_pool3d(x[0], out),  # unbatched
                       lambda x: TF.adaptive_max_pool3d(x[0], out), x, order=1)
    y, i = F.adaptive_max_pool3d_with_indices(tg.tensor(x), out)
    ry, ri = TF.adaptive_max_pool3d_with_indices(torch.tensor(x), out)
    np.testing.assert_array_equal(y.numpy(), ry.numpy())
    np.testing.assert_array_equal(i.numpy(), ri.numpy())
    layer, ref = nn.AdaptiveMaxPool3d(out, return_indices=True), \
        torch.nn.AdaptiveMaxPool3d(out, return_indices=True)
    np.testing.assert_array_equal(layer(tg.tensor(x))[1].numpy(), ref(torch.tensor(x))[1].numpy())
    assert repr(nn.AdaptiveAvgPool3d(out)) == repr(torch.nn.AdaptiveAvgPool3d(out))
    np.testing.assert_allclose(nn.AdaptiveAvgPool3d(out)(tg.tensor(x)).numpy(),
                               torch.nn.AdaptiveAvgPool3d(out)(torch.tensor(x)).numpy(),
                               rtol=1e-12)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_adaptive_max_pool_with_indices_as_torch(nd):
    x = _rng(10).standard_normal((2, 3) + (7, 5, 6)[:nd])
    out = (3, 2, 4)[:nd]
    mine = getattr(F, f"adaptive_max_pool{nd}d_with_indices")(tg.tensor(x), out)
    ref = getattr(TF, f"adaptive_max_pool{nd}d_with_indices")(torch.tensor(x), out)
    np.testing.assert_array_equal(mine[0].numpy(), ref[0].numpy())
    np.testing.assert_array_equal(mine[1].numpy(), ref[1].numpy())


@pytest.mark.parametrize("p", [1.0, 2.0, 3.5])
def test_lp_pool3d_matches_torch(p):
    x = _rng(11).uniform(0.5, 2.0, (2, 3, 5, 6, 5))
    for ceil in (False, True):
        compare_with_torch(lambda x, c=ceil: F.lp_pool3d(x, p, (2, 3, 2), 2, c),
                           lambda x, c=ceil: TF.lp_pool3d(x, p, (2, 3, 2), 2, c), x,
                           order=1)
    layer, ref = nn.LPPool3d(p, 2), torch.nn.LPPool3d(p, 2)
    assert repr(layer) == repr(ref)
    np.testing.assert_allclose(layer(tg.tensor(x)).numpy(), ref(torch.tensor(x)).numpy(),
                               rtol=1e-12)


def test_pool3d_layers_print_and_agree_as_torch():
    x = _rng(12).standard_normal((1, 2, 5, 6, 7))
    for args in [(2,), ((3, 2, 2), 2, 1)]:
        for mine, ref in [(nn.MaxPool3d(*args, ceil_mode=True),
                           torch.nn.MaxPool3d(*args, ceil_mode=True)),
                          (nn.AvgPool3d(*args, divisor_override=3),
                           torch.nn.AvgPool3d(*args, divisor_override=3))]:
            assert repr(mine) == repr(ref)
            np.testing.assert_allclose(mine(tg.tensor(x)).numpy(), ref(torch.tensor(x)).numpy(),
                                       rtol=1e-12)
    y, i = nn.MaxPool3d(2, return_indices=True)(tg.tensor(x))
    ry, ri = torch.nn.MaxPool3d(2, return_indices=True)(torch.tensor(x))
    np.testing.assert_array_equal(i.numpy(), ri.numpy())


def test_errors_name_the_3d_dimensions():
    with pytest.raises(tg.ShapeError, match=r"max_pool3d.*\(N, C, D, H, W\)"):
        F.max_pool3d(tg.zeros(3, 4, 4), 2)
    with pytest.raises(tg.ShapeError, match=r"conv3d.*\(N, 4, D, H, W\)"):
        F.conv3d(tg.zeros(1, 3, 4, 4, 4), tg.zeros(2, 4, 1, 1, 1))
    with pytest.raises(tg.ShapeError, match=r"adaptive_max_pool3d.*\(C, D, H, W\)"):
        F.adaptive_max_pool3d(tg.zeros(4, 4), 2)


# ---------------------------------------------------------------- compiled


def test_compiled_conv3d_and_pools_match_eager():
    rng = _rng(13)
    x = rng.standard_normal((2, 2, 5, 6, 5))
    w = rng.standard_normal((3, 2, 2, 3, 2))
    compiled_matches_eager(lambda x, w: F.conv3d(x, w, stride=(1, 2, 1), padding=1), x, w)
    compiled_matches_eager(lambda x: F.max_pool3d(x, 2, 2, 1, ceil_mode=True), x)
    compiled_matches_eager(lambda x: F.avg_pool3d(x, 3, 2, 1, count_include_pad=False), x)
    compiled_matches_eager(lambda x, w: F.conv_transpose3d(x, w.transpose(0, 1), stride=2),
                            x[:, :, :3], w)
    compiled_matches_eager(lambda x: F.adaptive_max_pool3d(x, (2, 4, 3)), x)
    compiled_matches_eager(lambda x: F.adaptive_avg_pool3d(x, (2, 4, 3)), x)
