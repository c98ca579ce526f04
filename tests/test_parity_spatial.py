"""PyTorch's spatial functions and layers beyond conv and the plain pools (tracegrad/nn/spatial.py,
tracegrad/nn/conv.py): transposed convolutions, interpolation, pixel and channel shuffles,
unfold/fold, adaptive max pools, ceil_mode and indices of the pools, max unpooling and power
pools. Values and gradients (to second order where the op is smooth) against torch 2.13 in
float64, finite differences, modules with torch's parameters and printing, and compiled
against eager."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradcheck import check_grads, compare_with_torch
from helpers import compiled_matches_eager
from hypothesis import given, settings
from hypothesis import strategies as st

import tracegrad as tg
from tracegrad import nn
from tracegrad.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- transposed convolution

# (C_in, C_out, groups, kernel, stride, padding, output_padding, dilation, size)
TRANSPOSE_CASES = [
    (3, 4, 1, 3, 1, 0, 0, 1, 5),
    (4, 6, 2, 3, 2, 1, 1, 1, 7),
    (2, 2, 2, 2, 3, 2, 2, 1, 4),  # depthwise, output_padding > padding
    (3, 2, 1, 3, 1, 1, 1, 2, 6),  # output_padding >= stride, allowed by the dilation
    (4, 4, 4, 1, 2, 0, 1, 1, 5),
    (1, 3, 1, 4, 2, 1, 0, 1, 1),  # one input position
]


@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("case", TRANSPOSE_CASES)
def test_conv_transpose_matches_torch(nd, case):
    cin, cout, g, k, s, p, op, d, size = case
    rng = _rng()
    x = rng.normal(size=(2, cin) + (size,) * nd)
    w = rng.normal(size=(cin, cout // g) + (k,) * nd)
    b = rng.normal(size=cout)
    name = f"conv_transpose{nd}d"
    compare_with_torch(lambda x, w, b: getattr(F, name)(x, w, b, s, p, op, g, d),
                       lambda x, w, b: getattr(TF, name)(x, w, b, s, p, op, g, d), x, w, b)


def test_conv_transpose_rectangular_unbatched_and_finite_differences():
    rng = _rng(1)
    x, w = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 3, 2, 3))
    args = dict(stride=(2, 1), padding=(0, 1), output_padding=(1, 0), dilation=(1, 2))
    compare_with_torch(lambda x, w: F.conv_transpose2d(x, w, **args),
                       lambda x, w: TF.conv_transpose2d(x, w, **args), x, w)
    check_grads(lambda x, w: F.conv_transpose2d(x, w, **args), x[None], w)


def test_conv_transpose_is_the_gradient_of_conv():
    rng = _rng(2)
    x, w, v = rng.normal(size=(2, 3, 7, 6)), rng.normal(size=(4, 3, 3, 3)), None
    xt = tg.tensor(x, requires_grad=True)
    y = F.conv2d(xt, tg.tensor(w), stride=2, padding=1)
    v = rng.normal(size=y.shape)
    (y * tg.tensor(v)).sum().backward()
    got = F.conv_transpose2d(tg.tensor(v), tg.tensor(w), stride=2, padding=1, output_padding=(0, 1))
    np.testing.assert_allclose(got.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("nd", [1, 2])
def test_conv_transpose_modules_match_torch(nd):
    name = f"ConvTranspose{nd}d"
    kwargs = dict(stride=2, padding=1, output_padding=1, groups=2, dilation=1)
    ours, theirs = getattr(nn, name)(4, 6, 3, **kwargs), getattr(torch.nn, name)(4, 6, 3, **kwargs)
    assert repr(ours) == repr(theirs)
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    # torch's init bound: 1/sqrt(fan_in), fan_in = (C_out/groups) * kernel
    bound = 1 / np.sqrt(3 * 3 ** nd)
    assert np.abs(ours.weight.numpy()).max() <= bound and np.abs(ours.bias.numpy()).max() <= bound
    assert np.abs(ours.weight.numpy()).max() > 0.8 * bound
    ours.load_state_dict({k: tg.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    x = _rng().normal(size=(2, 4) + (5,) * nd).astype(np.float32)
    np.testing.assert_allclose(ours(tg.tensor(x)).detach().numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    plain, torch_plain = getattr(nn, name)(2, 3, 4, stride=3, bias=False), \
        getattr(torch.nn, name)(2, 3, 4, stride=3, bias=False)
    assert repr(plain) == repr(torch_plain)
    plain.load_state_dict({"weight": tg.tensor(torch_plain.weight.detach().numpy())})
    x = _rng(1).normal(size=(1, 2) + (4,) * nd).astype(np.float32)
    for size in [(13,) * nd, (14,) * nd, (15,) * nd, (1, 3) + (14,) * nd]:
        np.testing.assert_allclose(
            plain(tg.tensor(x), output_size=size).detach().numpy(),
            torch_plain(torch.tensor(x), output_size=size).detach().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="output size"):
        plain(tg.tensor(x), output_size=(16,) * nd)


def test_conv_transpose_errors():
    x, w = tg.ones(1, 4, 5, 5), tg.ones(4, 2, 3, 3)
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(x, w, stride=2, output_padding=2)
    with pytest.raises(tg.ShapeError, match="C_in=4"):
        F.conv_transpose2d(tg.ones(1, 3, 5, 5), w)
    with pytest.raises(ValueError, match="string"):
        F.conv_transpose2d(x, w, padding="same")
    with pytest.raises(tg.ShapeError, match="less padding"):
        F.conv_transpose2d(tg.ones(1, 4, 1, 1), tg.ones(4, 2, 1, 1), padding=1)
    with pytest.raises(tg.ShapeError, match="bias"):
        F.conv_transpose2d(x, w, tg.ones(4))
    with pytest.raises(ValueError, match="output_padding"):
        nn.ConvTranspose2d(4, 2, 3, stride=1, output_padding=1)


def test_conv_transpose_compiled_matches_eager():
    layer = nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1).double()
    x = _rng().normal(size=(2, 3, 5, 4))
    compiled_matches_eager(lambda x: layer(x * 1.0), x)


# ---------------------------------------------------------------- interpolation

INTERPOLATE_SIZES = [dict(scale_factor=2), dict(scale_factor=1.7), dict(scale_factor=0.6),
                     dict(size=3), dict(size=11), dict(size=1), dict(scale_factor=1.1),
                     dict(scale_factor=1.7, recompute_scale_factor=True)]
INTERPOLATE_MODES = {3: ["nearest", "nearest-exact", "area", "linear"],
                     4: ["nearest", "nearest-exact", "area", "bilinear", "bicubic"],
                     5: ["nearest", "trilinear"]}


@pytest.mark.parametrize("shape", [(2, 3, 5), (1, 2, 4, 7), (1, 1, 3, 2, 4)])
def test_interpolate_matches_torch(shape):
    x = _rng().normal(size=shape)
    for mode in INTERPOLATE_MODES[len(shape)]:
        corners = [None, True, False] if mode in ("linear", "bilinear", "bicubic",
                                                  "trilinear") else [None]
        for kw in INTERPOLATE_SIZES:
            # torch 2.13's 1-d nearest and its bicubic backward copy a tensor whose size
            # stays (5 by 1.1), though their forwards do not (1-d nearest picks rows
            # 0 0 1 2 3): only the values are compared there (the gradients are checked
            # against finite differences below)
            order = 0 if mode in ("nearest", "bicubic") and kw == dict(scale_factor=1.1) else 1
            for ac in corners:
                compare_with_torch(
                    lambda x, m=mode, a=ac, k=kw: F.interpolate(x, mode=m, align_corners=a, **k),
                    lambda x, m=mode, a=ac, k=kw: TF.interpolate(x, mode=m, align_corners=a, **k),
                    x,
                    order=order)


def test_gradients_where_torch_backward_is_not_the_gradient_of_its_forward():
    x = _rng(4).normal(size=(1, 2, 5))
    check_grads(lambda x: F.interpolate(x, scale_factor=1.1) ** 2, x)
    check_grads(lambda x: F.interpolate(x, scale_factor=1.1, mode="bicubic") ** 2,
                x.reshape(1, 1, 2, 5))
    x = tg.tensor(x, requires_grad=True)
    F.interpolate(x, scale_factor=1.1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], [2.0, 1.0, 1.0, 1.0, 0.0])


def test_interpolate_rectangular_float32_and_second_order():
    x = _rng(1).normal(size=(2, 3, 5, 6)).astype(np.float32)
    for mode in ("nearest", "nearest-exact", "bilinear", "bicubic"):
        for kw in (dict(size=(7, 4)), dict(scale_factor=(1.5, 0.5))):
            compare_with_torch(lambda x, m=mode, k=kw: F.interpolate(x, mode=m, **k),
                               lambda x, m=mode, k=kw: TF.interpolate(x, mode=m, **k), x,
                               order=1)
    check_grads(lambda x: F.interpolate(x, scale_factor=1.5, mode="bicubic") ** 2,
                x[:1, :1].astype(np.float64))


def test_nearest_picks_torch_rows_for_many_sizes():
    # (the float32 index arithmetic: e.g. 5 -> 8 by scale 1.7 picks rows 0 0 1 1 2 2 3 4)
    for n in range(1, 24):
        x = np.arange(float(n)).reshape(1, 1, n)
        for kw in [dict(size=m) for m in range(1, 30)] + \
                [dict(scale_factor=f) for f in (0.3, 0.7, 1.1, 1.3, 2.5, 3.3)]:
            for mode in ("nearest", "linear"):
                if kw.get("size", 1) < 1 or np.floor(n * kw.get("scale_factor", 1)) < 1:
                    continue
                np.testing.assert_allclose(
                    F.interpolate(tg.tensor(x), mode=mode, **kw).numpy(),
                    TF.interpolate(torch.tensor(x), mode=mode, **kw).numpy(), atol=1e-12)


def test_upsample_modules_and_aliases():
    x = _rng(2).normal(size=(1, 2, 3, 4))
    for ours, theirs in [(nn.Upsample(scale_factor=2), torch.nn.Upsample(scale_factor=2)),
                         (nn.Upsample(size=(5, 7), mode="bicubic", align_corners=True),
                          torch.nn.Upsample(size=(5, 7), mode="bicubic", align_corners=True)),
                         (nn.Upsample(scale_factor=(2, 3), mode="bilinear"),
                          torch.nn.Upsample(scale_factor=(2, 3), mode="bilinear")),
                         (nn.UpsamplingNearest2d(size=5), torch.nn.UpsamplingNearest2d(size=5)),
                         (nn.UpsamplingBilinear2d(scale_factor=2),
                          torch.nn.UpsamplingBilinear2d(scale_factor=2))]:
        assert repr(ours) == repr(theirs)
        np.testing.assert_allclose(ours(tg.tensor(x)).numpy(), theirs(torch.tensor(x)).numpy(),
                                   rtol=1e-12, atol=1e-12)
    with pytest.warns(UserWarning, match="deprecated"):
        y = F.upsample_bilinear(tg.tensor(x), scale_factor=2)
    np.testing.assert_allclose(y.numpy(), TF.interpolate(torch.tensor(x), scale_factor=2,
                                                         mode="bilinear", align_corners=True),
                               rtol=1e-12, atol=1e-12)
    with pytest.warns(UserWarning, match="deprecated"):
        y = F.upsample_nearest(tg.tensor(x), size=(6, 6))
    np.testing.assert_array_equal(y.numpy(), TF.interpolate(torch.tensor(x), size=(6, 6)))
    with pytest.warns(UserWarning, match="deprecated"):
        assert F.upsample(tg.tensor(x), scale_factor=3).shape == (1, 2, 9, 12)


def test_interpolate_errors():
    x = tg.ones(1, 2, 4, 4)
    with pytest.raises(ValueError, match="exactly one"):
        F.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(ValueError, match="exactly one"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="align_corners"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(tg.ShapeError, match="4-d input"):
        F.interpolate(tg.ones(1, 2, 4), scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="mode must be"):
        F.interpolate(x, scale_factor=2, mode="cubic")
    with pytest.raises(ValueError, match="antialias"):
        F.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True)
    with pytest.raises(ValueError, match="2 positive ints"):
        F.interpolate(x, size=(3, 4, 5))
    with pytest.raises(tg.ShapeError, match="expects input"):
        F.interpolate(tg.ones(4, 4), size=2)


def test_interpolate_compiled_matches_eager():
    x = _rng(3).normal(size=(2, 3, 5, 4))
    for mode in ("nearest", "bilinear", "bicubic", "area"):
        compiled_matches_eager(lambda x, mode=mode: F.interpolate(x * 1.0, size=(7, 3),
                                                                   mode=mode), x)


# ---------------------------------------------------------------- shuffles


@pytest.mark.parametrize("shape,r", [((2, 8, 3, 5), 2), ((18, 2, 1), 3), ((2, 3, 4, 1, 1), 1),
                                     ((1, 2, 4, 3, 2), 2)])
def test_pixel_shuffle_and_unshuffle_match_torch(shape, r):
    x = _rng().normal(size=shape)
    y = compare_with_torch(lambda x: F.pixel_shuffle(x, r), lambda x: TF.pixel_shuffle(x, r), x)
    back = compare_with_torch(lambda y: F.pixel_unshuffle(y, r),
                              lambda y: TF.pixel_unshuffle(y, r), y.numpy())
    np.testing.assert_array_equal(back.numpy(), x)
    assert repr(nn.PixelShuffle(r)) == repr(torch.nn.PixelShuffle(r))
    assert repr(nn.PixelUnshuffle(downscale_factor=r)) == repr(torch.nn.PixelUnshuffle(r))
    np.testing.assert_array_equal(nn.PixelShuffle(r)(tg.tensor(x)).numpy(), y.numpy())


@pytest.mark.parametrize("shape,g", [((2, 6, 3, 5), 3), ((1, 4, 7), 2), ((2, 5, 2, 1, 3), 5)])
def test_channel_shuffle_matches_torch(shape, g):
    x = _rng().normal(size=shape)
    compare_with_torch(lambda x: F.channel_shuffle(x, g),
                       lambda x: torch.nn.ChannelShuffle(g)(x), x)
    assert repr(nn.ChannelShuffle(g)) == repr(torch.nn.ChannelShuffle(g))
    np.testing.assert_array_equal(nn.ChannelShuffle(groups=g)(tg.tensor(x)).numpy(),
                                  torch.nn.ChannelShuffle(g)(torch.tensor(x)).numpy())


def test_shuffle_errors():
    with pytest.raises(tg.ShapeError, match="divisible"):
        F.pixel_shuffle(tg.ones(1, 6, 2, 2), 2)
    with pytest.raises(tg.ShapeError, match="divisible"):
        F.pixel_unshuffle(tg.ones(1, 1, 3, 4), 2)
    with pytest.raises(ValueError, match="upscale_factor must be a positive int"):
        F.pixel_shuffle(tg.ones(1, 4, 2, 2), 0)
    with pytest.raises(tg.ShapeError, match="groups=4"):
        F.channel_shuffle(tg.ones(1, 6, 2), 4)
    with pytest.raises(TypeError, match="upscale_factor"):
        nn.PixelShuffle()


def test_shuffles_compiled_match_eager():
    x = _rng().normal(size=(2, 8, 3, 4))
    compiled_matches_eager(
        lambda x: F.channel_shuffle(F.pixel_unshuffle(F.pixel_shuffle(x * 1.0, 2), 1), 2) ** 2,
        x)


# ---------------------------------------------------------------- unfold and fold

# (kernel_size, dilation, padding, stride, (H, W))
FOLD_CASES = [(2, 1, 0, 1, (4, 5)), (3, 1, 1, 2, (7, 6)), ((2, 3), (2, 1), (1, 0), (1, 2), (6, 7)),
              (1, 1, 0, 3, (5, 5)), (3, 2, 2, 1, (3, 4))]


@pytest.mark.parametrize("case", FOLD_CASES)
def test_unfold_and_fold_match_torch(case):
    k, d, p, s, size = case
    x = _rng().normal(size=(2, 3) + size)
    cols = compare_with_torch(lambda x: F.unfold(x, k, d, p, s),
                              lambda x: TF.unfold(x, k, d, p, s), x)
    compare_with_torch(lambda c: F.fold(c, size, k, d, p, s),
                       lambda c: TF.fold(c, size, k, d, p, s), cols.numpy())
    compare_with_torch(lambda c: F.fold(c, size, k, d, p, s),  # unbatched
                       lambda c: TF.fold(c, size, k, d, p, s), cols.numpy()[0])
    compare_with_torch(lambda x: F.unfold(x, k, d, p, s), lambda x: TF.unfold(x, k, d, p, s),
                       x[0])
    args = dict(kernel_size=k, dilation=d, padding=p, stride=s)
    assert repr(nn.Unfold(**args)) == repr(torch.nn.Unfold(**args))
    assert repr(nn.Fold(size, **args)) == repr(torch.nn.Fold(size, **args))
    np.testing.assert_array_equal(nn.Fold(size, **args)(nn.Unfold(**args)(tg.tensor(x))).numpy(),
                                  TF.fold(TF.unfold(torch.tensor(x), **args), size, **args))


def test_fold_errors():
    with pytest.raises(tg.ShapeError, match=r"\(N, C \* 4, 12\)"):
        F.fold(tg.ones(1, 8, 11), (4, 5), 2)
    with pytest.raises(tg.ShapeError, match="C \\* 4"):
        F.fold(tg.ones(1, 7, 12), (4, 5), 2)
    with pytest.raises(tg.ShapeError, match="smaller than the kernel"):
        F.unfold(tg.ones(1, 1, 2, 2), 3)
    with pytest.raises(tg.ShapeError, match="expects input"):
        F.unfold(tg.ones(2, 2), 1)
    with pytest.raises(ValueError, match="stride must be positive"):
        F.unfold(tg.ones(1, 1, 2, 2), 1, stride=0)


def test_unfold_fold_compiled_match_eager():
    x = _rng().normal(size=(2, 3, 6, 5))
    compiled_matches_eager(lambda x: F.fold(F.unfold(x * 1.0, 3, padding=1, stride=2) ** 2,
                                             (6, 5), 3, padding=1, stride=2), x)


# ---------------------------------------------------------------- pools

# (kernel, stride, padding, dilation)
POOL_CASES = [(2, 2, 0, 1), (3, 2, 1, 1), (3, 3, 1, 1), (2, 3, 1, 1), (3, 2, 1, 2), (4, 3, 2, 1),
              (1, 2, 0, 1)]


@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("size", [5, 6, 8])
def test_max_and_avg_pool_ceil_mode_and_indices_match_torch(nd, size):
    rng = _rng(size)
    for k, s, p, d in POOL_CASES:
        for ceil in (False, True):
            x = rng.normal(size=(2, 3) + (size,) * nd)
            name = f"max_pool{nd}d"
            y, i = getattr(F, name)(tg.tensor(x), k, s, p, d, ceil, True)
            ty, ti = getattr(TF, name)(torch.tensor(x), k, s, p, d, ceil, True)
            assert i.dtype == np.int64
            np.testing.assert_array_equal(i.numpy(), ti.numpy())
            np.testing.assert_array_equal(y.numpy(), ty.numpy())
            args = (k, s, p, d, ceil)
            compare_with_torch(lambda x, n=name, a=args: getattr(F, n)(x, *a),
                               lambda x, n=name, a=args: getattr(TF, n)(x, *a), x, order=1)
            if d != 1:
                continue
            for cip in (True, False):
                kw = dict(ceil_mode=ceil, count_include_pad=cip)
                compare_with_torch(
                    lambda x, kw=kw, a=(k, s, p): getattr(F, f"avg_pool{nd}d")(x, *a, **kw),
                    lambda x, kw=kw, a=(k, s, p): getattr(TF, f"avg_pool{nd}d")(x, *a, **kw),
                    x)
    x = rng.normal(size=(3,) + (size,) * nd)  # unbatched
    y, i = getattr(F, f"max_pool{nd}d")(tg.tensor(x), 3, 2, 1, ceil_mode=True, return_indices=True)
    ty, ti = getattr(TF, f"max_pool{nd}d")(torch.tensor(x), 3, 2, 1, ceil_mode=True,
                                           return_indices=True)
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    np.testing.assert_array_equal(y.numpy(), ty.numpy())


def test_avg_pool2d_ceil_mode_with_divisor_override_and_with_indices_functions():
    x = _rng().normal(size=(2, 3, 7, 6))
    compare_with_torch(lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, divisor_override=5),
                       lambda x: TF.avg_pool2d(x, 3, 2, 1, ceil_mode=True, divisor_override=5), x)
    y, i = F.max_pool2d_with_indices(tg.tensor(x), 2, ceil_mode=True)
    ty, ti = TF.max_pool2d_with_indices(torch.tensor(x), 2, ceil_mode=True)
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    y, i = F.max_pool1d_with_indices(tg.tensor(x[0]), 3, 2)
    ty, ti = TF.max_pool1d_with_indices(torch.tensor(x[0]), 3, 2)
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    np.testing.assert_array_equal(y.numpy(), ty.numpy())


@pytest.mark.parametrize("size", [1, 5, 7, 13])
def test_adaptive_pools_match_torch(size):
    rng = _rng(size)
    for out in (1, 2, 3, 5, 7, (3, None), (None, 2)):
        x = rng.normal(size=(2, 3, size, size + 2))
        compare_with_torch(lambda x, o=out: F.adaptive_max_pool2d(x, o),
                           lambda x, o=out: TF.adaptive_max_pool2d(x, o), x, order=1)
        for xx in (x, x[0]):
            y, i = F.adaptive_max_pool2d(tg.tensor(xx), out, return_indices=True)
            ty, ti = TF.adaptive_max_pool2d(torch.tensor(xx), out, return_indices=True)
            np.testing.assert_array_equal(i.numpy(), ti.numpy())
            np.testing.assert_array_equal(y.numpy(), ty.numpy())
        if isinstance(out, tuple):
            continue
        x = x[:, :, 0]
        compare_with_torch(lambda x, o=out: F.adaptive_avg_pool1d(x, o),
                           lambda x, o=out: TF.adaptive_avg_pool1d(x, o), x)
        compare_with_torch(lambda x, o=out: F.adaptive_max_pool1d(x, o),
                           lambda x, o=out: TF.adaptive_max_pool1d(x, o), x, order=1)
        y, i = F.adaptive_max_pool1d(tg.tensor(x), out, return_indices=True)
        np.testing.assert_array_equal(i.numpy(), TF.adaptive_max_pool1d(torch.tensor(x), out,
                                                                        True)[1].numpy())


def test_max_pools_send_the_gradient_to_the_first_maximum_of_a_tie():
    x = np.zeros((1, 1, 4, 5))
    for f, tf in [(lambda x: F.adaptive_max_pool2d(x, 3), lambda x: TF.adaptive_max_pool2d(x, 3)),
                  (lambda x: F.max_pool2d(x, 3, 2, ceil_mode=True),
                   lambda x: TF.max_pool2d(x, 3, 2, ceil_mode=True))]:
        compare_with_torch(f, tf, x, order=1)


@pytest.mark.parametrize("nd", [1, 2])
def test_max_unpool_matches_torch(nd):
    rng = _rng(nd)
    for size, (k, s, p) in [(4, (2, 2, 0)), (7, (3, 2, 1)), (5, (2, 1, 0)), (6, (3, 3, 1))]:
        x = rng.normal(size=(2, 3) + (size,) * nd)
        y, i = getattr(F, f"max_pool{nd}d")(tg.tensor(x), k, s, p, return_indices=True)
        ty, ti = getattr(TF, f"max_pool{nd}d")(torch.tensor(x), k, s, p, return_indices=True)
        for out in (None, (size,) * nd, (2, 3) + (size,) * nd):
            try:
                getattr(TF, f"max_unpool{nd}d")(ty, ti, k, s, p, out)
            except RuntimeError:  # (an index past the default output size)
                with pytest.raises(IndexError, match=f"max_unpool{nd}d"):
                    getattr(F, f"max_unpool{nd}d")(y, i, k, s, p, out)
                continue
            compare_with_torch(
                lambda y, i=i, a=(k, s, p, out): getattr(F, f"max_unpool{nd}d")(y, i, *a),
                lambda y, i=ti, a=(k, s, p, out): getattr(TF, f"max_unpool{nd}d")(y, i, *a),
                y.numpy())
            ours = getattr(nn, f"MaxUnpool{nd}d")(k, s, p)
            theirs = getattr(torch.nn, f"MaxUnpool{nd}d")(k, s, p)
            assert repr(ours) == repr(theirs)
            np.testing.assert_array_equal(ours(y, i, output_size=out).numpy(),
                                          theirs(ty, ti, output_size=out).numpy())
    with pytest.raises(ValueError, match="within one stride"):
        getattr(F, f"max_unpool{nd}d")(y, i, k, s, p, (size + 5,) * nd)


@pytest.mark.parametrize("nd", [1, 2])
def test_lp_pool_matches_torch(nd):
    x = np.abs(_rng().normal(size=(2, 3) + (7,) * nd)) + 0.1
    for norm in (1, 2, 3.5):
        for k, s, ceil in [(2, None, False), (3, 2, True), (2, 3, True)]:
            compare_with_torch(
                lambda x, a=(norm, k, s, ceil): getattr(F, f"lp_pool{nd}d")(x, *a),
                lambda x, a=(norm, k, s, ceil): getattr(TF, f"lp_pool{nd}d")(x, *a), x)
    ours = getattr(nn, f"LPPool{nd}d")(2, 3, stride=2, ceil_mode=True)
    theirs = getattr(torch.nn, f"LPPool{nd}d")(2, 3, stride=2, ceil_mode=True)
    assert repr(ours) == repr(theirs)
    np.testing.assert_allclose(ours(tg.tensor(x)).numpy(), theirs(torch.tensor(x)).numpy(),
                               rtol=1e-12)


def test_pool_modules_match_torch():
    x = _rng().normal(size=(2, 3, 7, 5))
    for ours, theirs in [(nn.AdaptiveMaxPool2d((3, None)), torch.nn.AdaptiveMaxPool2d((3, None))),
                         (nn.AdaptiveMaxPool2d(2, return_indices=True),
                          torch.nn.AdaptiveMaxPool2d(2, return_indices=True))]:
        assert repr(ours) == repr(theirs)
        got, want = ours(tg.tensor(x)), theirs(torch.tensor(x))
        for a, b in zip(got if isinstance(got, tuple) else [got],
                        want if isinstance(want, tuple) else [want]):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    x = x[:, :, 0]
    for ours, theirs in [(nn.AdaptiveAvgPool1d(3), torch.nn.AdaptiveAvgPool1d(3)),
                         (nn.AdaptiveMaxPool1d(4), torch.nn.AdaptiveMaxPool1d(4))]:
        assert repr(ours) == repr(theirs)
        np.testing.assert_allclose(ours(tg.tensor(x)).numpy(), theirs(torch.tensor(x)).numpy(),
                                   rtol=1e-12)


def test_pool_errors():
    with pytest.raises(ValueError, match="output_size must be positive"):
        F.adaptive_max_pool2d(tg.ones(1, 1, 4, 4), (0, 2))
    with pytest.raises(tg.ShapeError, match="adaptive_max_pool1d: expects"):
        F.adaptive_max_pool1d(tg.ones(1, 1, 4, 4), 2)
    with pytest.raises(tg.ShapeError, match="indices must be"):
        F.max_unpool2d(tg.ones(1, 1, 2, 2), tg.zeros(1, 1, 2, dtype=tg.int64), 2)
    with pytest.raises(ValueError, match="at most half"):
        F.max_pool2d(tg.ones(1, 1, 4, 4), 2, padding=2, ceil_mode=True)


def test_pools_compiled_match_eager():
    x = _rng().normal(size=(2, 3, 7, 6))

    def pools(x):
        y, i = F.max_pool2d(x * 1.0, 3, 2, 1, ceil_mode=True, return_indices=True)
        z = F.max_unpool2d(y, i, 3, 2, 1, output_size=(7, 6))
        a, _ = F.adaptive_max_pool2d(z, (3, 2), return_indices=True)
        b = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False, ceil_mode=True)
        c = F.lp_pool2d(x * x + 0.5, 2, 2, ceil_mode=True)
        return a.sum() + b.sum() * 2 + c.sum() * 3 + F.adaptive_avg_pool1d(x[:, :, 0], 4).sum()

    compiled_matches_eager(pools, x)


def test_max_pools_give_the_index_of_the_last_nan_as_torch():
    x = np.array([[[1.0, math.nan, 3.0, math.nan, 0.0, 7.0, 2.0, 1.0, math.nan, 1.0, math.nan,
                    math.nan, 3.0]]])
    for f, tf in [(lambda x: F.max_pool1d(x, 3, return_indices=True),
                   lambda x: TF.max_pool1d(x, 3, return_indices=True)),
                  (lambda x: F.max_pool1d(x, 4, 3, 1, ceil_mode=True, return_indices=True),
                   lambda x: TF.max_pool1d(x, 4, 3, 1, ceil_mode=True, return_indices=True)),
                  (lambda x: F.adaptive_max_pool1d(x, 5, True),
                   lambda x: TF.adaptive_max_pool1d(x, 5, True))]:
        (y, i), (ty, ti) = f(tg.tensor(x)), tf(torch.tensor(x))
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
        np.testing.assert_array_equal(y.numpy(), ty.numpy())


# ---------------------------------------------------------------- random shapes, forward mode


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_conv_transpose2d_random_shapes_match_torch(data):
    draw = lambda s: data.draw(s)  # noqa: E731
    groups = draw(st.integers(1, 3))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    op = tuple(draw(st.integers(0, max(a, b) - 1)) for a, b in zip(s, d))
    size = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    out = [(i - 1) * a - 2 * b + c * (kk - 1) + e + 1
           for i, a, b, c, kk, e in zip(size, s, p, d, k, op)]
    if min(out) < 1:
        with pytest.raises(tg.ShapeError):
            F.conv_transpose2d(tg.ones(1, cin, *size), tg.ones(cin, cout // groups, *k),
                               stride=s, padding=p, output_padding=op, dilation=d, groups=groups)
        return
    rng = _rng(draw(st.integers(0, 99)))
    x, w = rng.normal(size=(2, cin) + size), rng.normal(size=(cin, cout // groups) + k)
    args = (None, s, p, op, groups, d)
    compare_with_torch(lambda x, w: F.conv_transpose2d(x, w, *args),
                       lambda x, w: TF.conv_transpose2d(x, w, *args), x, w, order=1)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_interpolate_random_sizes_match_torch(data):
    mode = data.draw(st.sampled_from(["nearest", "bilinear", "bicubic", "area"]))
    size = (data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9)))
    out = (data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12)))
    corners = data.draw(st.sampled_from([None, True])) if mode in ("bilinear", "bicubic") \
        else None
    x = _rng().normal(size=(1, 2) + size)
    compare_with_torch(lambda x: F.interpolate(x, out, mode=mode, align_corners=corners),
                       lambda x: TF.interpolate(x, out, mode=mode, align_corners=corners), x,
                       order=1)


@pytest.mark.parametrize("fn", [
    lambda x: F.conv_transpose2d(x, tg.tensor(np.ones((2, 3, 2, 3))), stride=2, padding=1),
    lambda x: F.interpolate(x, scale_factor=1.5, mode="bicubic"),
    lambda x: F.fold(F.unfold(x, 2), x.shape[2:], 2),
    lambda x: F.adaptive_max_pool2d(x, 2),
    lambda x: F.lp_pool2d(x * x + 1.0, 2, 2, ceil_mode=True),
    lambda x: F.pixel_shuffle(x[:, :1].expand(1, 4, 3, 4), 2),
], ids=["conv_transpose2d", "interpolate", "fold_unfold", "adaptive_max", "lp_pool",
        "pixel_shuffle"])
def test_forward_mode_matches_central_differences(fn):
    rng = _rng(7)
    x, t = rng.normal(size=(1, 2, 3, 4)), rng.normal(size=(1, 2, 3, 4))
    _, tangent = tg.jvp(fn, (tg.tensor(x),), (tg.tensor(t),))
    h = 1e-6
    numeric = (fn(tg.tensor(x + h * t)).numpy() - fn(tg.tensor(x - h * t)).numpy()) / (2 * h)
    np.testing.assert_allclose(tangent.numpy(), numeric, rtol=1e-6, atol=1e-7)


def test_interpolate_by_slices_equals_by_gathers_and_torch():
    # An up/down scale of small integers resamples by slices of the edge-padded input;
    # the same map as the gathers it replaces (which are its reference), and torch's.
    from tracegrad.nn.spatial import _resample, _taps

    rng = _rng(5)
    for mode, n_in, n_out, ac in [("nearest", 6, 12, False), ("nearest", 12, 4, False),
                                  ("nearest", 8, 12, False), ("bilinear", 8, 16, False),
                                  ("bilinear", 12, 18, False), ("bilinear", 16, 8, False),
                                  ("bicubic", 8, 16, False), ("bicubic", 12, 18, False),
                                  ("nearest-exact", 6, 9, False)]:
        idx, w, steps = _taps(mode, n_in, n_out, None, ac, 2)
        assert steps is not None, (mode, n_in, n_out)
        x = rng.normal(size=(2, 3, n_in, 5))
        np.testing.assert_allclose(_resample(tg.tensor(x), 2, idx, w, steps).numpy(),
                                   _resample(tg.tensor(x), 2, idx, w, None).numpy(),
                                   rtol=1e-13, atol=1e-14)
        compare_with_torch(lambda x, m=mode, o=n_out: F.interpolate(x, size=(o, 5), mode=m),
                           lambda x, m=mode, o=n_out: TF.interpolate(x, size=(o, 5), mode=m),
                           x, order=1)
