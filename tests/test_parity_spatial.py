"""PyTorch's spatial functions and layers beyond conv and the plain pools (tracegrad/nn/spatial.py,
tracegrad/nn/conv.py): transposed convolutions, interpolation, pixel and channel shuffles,
unfold/fold, adaptive max pools, ceil_mode and indices of the pools, max unpooling and power
pools. Values and gradients (to second order where the op is smooth) against torch 2.13 in
float64, finite differences, modules with torch's parameters and printing, and compiled
against eager."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_grads, compare_with_torch

import tracegrad as tg
from tracegrad import nn
from tracegrad.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _compiled_matches_eager(fn, *arrays, rtol=1e-12):
    """``fn`` and ``tg.compile(fn)`` give the same values and input gradients, on two calls
    (the second one reuses the compiled program)."""
    compiled = tg.compile(fn)
    for scale in (1.0, 0.5):
        got = []
        for f in (fn, compiled):
            xs = [tg.tensor(a * scale, requires_grad=True) for a in arrays]
            y = f(*xs)
            (y * y).sum().backward()
            got.append([y.detach().numpy()] + [x.grad.numpy() for x in xs])
        for a, b in zip(got[1], got[0]):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12)


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
    _compiled_matches_eager(lambda x: layer(x * 1.0), x)
