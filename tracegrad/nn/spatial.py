"""PyTorch's spatial functions beyond conv and the plain pools: transposed convolution,
interpolation, pixel and channel shuffles, unfold/fold, adaptive max pools, max unpooling
and power-average pools.

Each is a composite of existing primitives, so it differentiates, traces and compiles. The
transposed convolution and `fold` are col2im (the adjoint of the im2col that `conv` and
`unfold` use) after one matmul; the resamplers take rows (slices of the input for an
integer scale, else gathers by index arrays that depend only on shapes: constants of a
trace) and mix them with constant weights, one dimension at a time.
"""

from __future__ import annotations

import builtins
import functools
import math
import warnings
from typing import Any

import numpy as np

from .. import functional as F
from ..autograd import no_grad
from ..errors import ShapeError
from ..ops import PRIMITIVES as P
from ..tensor import Tensor, _leaf, apply, cat, stack

# ---------------------------------------------------------------- transposed convolution
#
# conv_transpose is the gradient of conv with respect to its input: each input element
# scatters weight * value over a window of the output. Here: one matmul gives every
# (kernel offset, output channel) contribution at every input position, col2im adds them
# into the output windows, and the padding is cut off (output_padding adds rows at the end).


def _spatial_tuple(v: Any, nd: int, name: str, op: str, least: int = 0) -> tuple:
    t = F._tuple(v, nd, name, op)
    if builtins.any(i < least for i in t):
        raise ValueError(f"{op}: {name} must be {'positive' if least else 'non-negative'}, "
                         f"got {t}")
    return t


def _conv_transpose(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Any,
                    padding: Any, output_padding: Any, groups: int, dilation: Any, nd: int,
                    op: str) -> Tensor:
    F._conv_operands(x, weight, nd, op, "C_in, C_out/groups")
    if x.ndim == nd + 1:  # one sample without the batch dimension
        return _conv_transpose(x.unsqueeze(0), weight, bias, stride, padding, output_padding,
                               groups, dilation, nd, op).squeeze(0)
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    groups = int(groups)
    c_in, c_group_out, *kernel = weight.shape
    kernel = tuple(kernel)
    if x.ndim != nd + 2 or x.shape[1] != c_in or c_in % groups:
        raise ShapeError(f"{op}: input {x.shape} does not fit weight {weight.shape} with "
                         f"groups={groups}: the input needs {nd + 2} dimensions with "
                         f"C_in={c_in} channels (weight.shape[0]), divisible by groups")
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a tuple of {nd} ints (PyTorch's "
                         f"transposed convolutions take no string padding), got {padding!r}")
    c_out = c_group_out * groups
    F._conv_bias(x, weight, bias, c_out, op, f" and groups={groups}")
    stride = _spatial_tuple(stride, nd, "stride", op, 1)
    dilation = _spatial_tuple(dilation, nd, "dilation", op, 1)
    pads = _spatial_tuple(padding, nd, "padding", op)
    extra = _spatial_tuple(output_padding, nd, "output_padding", op)
    if builtins.any(e >= builtins.max(s, d) for e, s, d in zip(extra, stride, dilation)):
        raise ValueError(f"{op}: output_padding {extra} must be smaller than either stride "
                         f"{stride} or dilation {dilation}, as in PyTorch")
    n, size = x.shape[0], tuple(x.shape[2:])
    full = tuple((i - 1) * s + d * (k - 1) + 1
                 for i, s, d, k in zip(size, stride, dilation, kernel))
    out = tuple(f - 2 * p + e for f, p, e in zip(full, pads, extra))
    if builtins.any(o < 1 for o in out):
        raise ShapeError(f"{op}: the output of input {x.shape} with kernel {kernel}, stride "
                         f"{stride}, padding {pads} would be {out}; use less padding")
    k, cig, cgo = math.prod(kernel), c_in // groups, c_group_out
    length = n * math.prod(size)
    xc = F._batch_last(x, ()).reshape((groups, cig, length))  # (C_in, *I, N) by group
    # the weight as (group, (offset, C_out of the group), C_in of the group)
    w = weight.reshape((groups, cig, cgo, k)).permute((0, 3, 2, 1)).reshape((groups, k * cgo,
                                                                             cig))
    cols = (w @ xc).reshape((groups, k, cgo, length)).permute((1, 0, 2, 3))
    y = cols.reshape((k, c_out) + size + (n,))._col2im(kernel, stride, dilation,
                                                        (c_out,) + full + (n,))
    if builtins.any(e > p for e, p in zip(extra, pads)):
        y = apply(P["pad"], y, value=0.0, pads=((0, 0),) + tuple(
            (0, builtins.max(e - p, 0)) for e, p in zip(extra, pads)) + ((0, 0),))
    if builtins.any(pads):
        y = y[(slice(None),) + tuple(slice(p, p + o) for p, o in zip(pads, out))]
    if bias is not None:
        y = y + bias.reshape((c_out,) + (1,) * (nd + 1))
    return F._batch_first(y)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: Any = 1, padding: Any = 0, output_padding: Any = 0,
                     groups: int = 1, dilation: Any = 1) -> Tensor:
    """Transposed 1-d convolution (the gradient of `conv1d` with respect to its input):
    ``input`` (N, C_in, L) or (C_in, L), ``weight`` (C_in, C_out / groups, k); the output
    length is ``(L - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``.

    >>> conv_transpose1d(tg.ones(1, 1, 3), tg.ones(1, 1, 2)).tolist()
    [[[1.0, 2.0, 2.0, 1.0]]]
    """
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 1, "conv_transpose1d")


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: Any = 1, padding: Any = 0, output_padding: Any = 0,
                     groups: int = 1, dilation: Any = 1) -> Tensor:
    """Transposed 2-d convolution ("deconvolution"), PyTorch's arguments: ``input``
    (N, C_in, H, W) or (C_in, H, W), ``weight`` (C_in, C_out / groups, kh, kw).

    >>> conv_transpose2d(tg.ones(1, 4, 5, 5), tg.ones(4, 2, 4, 4), stride=2, padding=1).shape
    (1, 2, 10, 10)
    """
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 2, "conv_transpose2d")


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: Any = 1, padding: Any = 0, output_padding: Any = 0,
                     groups: int = 1, dilation: Any = 1) -> Tensor:
    """Transposed 3-d convolution, PyTorch's arguments: ``input`` (N, C_in, D, H, W) or
    (C_in, D, H, W), ``weight`` (C_in, C_out / groups, kd, kh, kw).

    >>> conv_transpose3d(tg.ones(1, 2, 3, 3, 3), tg.ones(2, 1, 2, 2, 2), stride=2).shape
    (1, 1, 6, 6, 6)
    """
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 3, "conv_transpose3d")



# ---------------------------------------------------------------- interpolation
#
# Every mode is separable: the output along one spatial dimension is a weighted sum of a few
# input rows (1 for nearest, 2 for linear, 4 for bicubic), so an n-d resize is n of these,
# one dimension at a time. The rows and weights come from PyTorch's source-index formulas
# (aten/src/ATen/native/UpSample.h), computed here in NumPy from the sizes alone: constants
# of a trace. Nearest's index is computed in float32, as PyTorch does, so that the same rows
# are picked (PyTorch's vectorised kernel can still round a tie, (i + 0.5) * in/out an exact
# integer, the other way for nearest-exact: a few size pairs in a hundred). PyTorch's 2-d
# nearest (only) copies a dimension whose size stays and halves indices for a doubled one,
# whatever the scale_factor said (5 by 1.1 picks rows 0 1 2 3 4 there, 0 0 1 2 3 in 1-d).

_LINEAR = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")


def _nearest_taps(n_in: int, n_out: int, scale: float | None, exact: bool,
                  shortcuts: bool) -> tuple:
    if shortcuts and n_out in (n_in, 2 * n_in):  # PyTorch's 2-d nearest, whatever the scale
        return (np.arange(n_out) * n_in // n_out)[:, None], None
    ratio = np.float32(1.0 / scale if scale else n_in / n_out)
    dst = np.arange(n_out)
    src = (dst + 0.5) * np.float64(ratio) if exact else dst.astype(np.float32) * ratio
    idx = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), n_in - 1)
    return idx[:, None], None


def _cubic_weights(t: Any, a: float = -0.75) -> tuple:
    """Keys' cubic convolution weights of the 4 rows around a point ``t`` past the second
    (arithmetic only: ``t`` an array, or a tensor for weights that differentiate)."""
    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return far(t + 1), near(t), near(1 - t), far(2 - t)


def _linear_taps(n_in: int, n_out: int, scale: float | None, align_corners: bool,
                 cubic: bool) -> tuple:
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    else:
        src = (1.0 / scale if scale else n_in / n_out) * (dst + 0.5) - 0.5
        if not cubic:
            src = np.maximum(src, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    t = np.clip(src - i0, 0.0, 1.0)
    if cubic:
        idx = np.clip(i0[:, None] + np.arange(-1, 3), 0, n_in - 1)
        return idx, np.stack(_cubic_weights(t), axis=1)
    return np.stack([i0, np.minimum(i0 + 1, n_in - 1)], 1), np.stack([1 - t, t], 1)


@functools.lru_cache(maxsize=512)
def _taps(mode: str, n_in: int, n_out: int, scale: float | None, align_corners: bool,
          nd: int) -> tuple:
    """(rows, weights, steps) of a resampling of one dimension: ``rows`` (n_out, taps)
    input positions, ``weights`` alike (None: one tap of weight 1), and `_steps`' periodic
    form when there is one."""
    if mode in _LINEAR:
        idx, w = _linear_taps(n_in, n_out, scale, align_corners, mode == "bicubic")
    else:
        idx, w = _nearest_taps(n_in, n_out, scale, mode == "nearest-exact",
                               mode == "nearest" and nd == 2)
    return idx, w, _steps(idx, w, n_in, n_out)


def _steps(idx: np.ndarray, w: np.ndarray | None, n_in: int, n_out: int) -> tuple | None:
    """For a scale of ``up / down`` (small ints) whose taps repeat from step to step (up to
    the clamping at the ends), ``(up, down, left, right, phases)``: output ``up * s + m`` is
    ``sum(weight * x[down * s + offset])`` over phase m's (offset, weight) pairs, x padded
    by repeating its ends ``left`` and ``right`` times. Those are slices of the padded
    input, whose gradients are slices too (a gather's is a scatter-add: far slower)."""
    steps = math.gcd(n_in, n_out)
    up, down = n_out // steps, n_in // steps
    if up > 8 or steps < 2:  # (up slices per tap, each of `steps` rows: too many, too short)
        return None
    w = np.ones(idx.shape) if w is None else w
    # The taps of one step, as offsets from its first input row: of a middle step, or, where
    # that one is clamped at an end (few steps), of the next ones out.
    v = np.random.default_rng(0).uniform(1.0, 2.0, size=(n_in, 2))
    want = (w[..., None] * v[idx]).sum(1)
    for mid in sorted(range(steps), key=lambda t: abs(2 * t - steps + 1))[:3]:
        phases = []
        for m in range(up):
            row = mid * up + m
            taps: dict = {}
            for off, wt in zip(idx[row] - mid * down, w[row]):
                taps[int(off)] = taps.get(int(off), 0.0) + float(wt)
            phases.append(tuple((off, wt) for off, wt in sorted(taps.items()) if wt != 0.0))
        # The same linear map? Both applied to random vectors (equal maps give equal
        # results; different ones differ, but for a chance of about none).
        got = np.zeros((steps, up, 2))
        for m, taps_m in enumerate(phases):
            for off, wt in taps_m:
                got[:, m] += wt * v[np.clip(np.arange(steps) * down + off, 0, n_in - 1)]
        if np.allclose(got.reshape(n_out, 2), want, rtol=1e-12, atol=0.0):
            break
    else:
        return None
    offsets = [off for taps_m in phases for off, _ in taps_m]
    left = max(0, -min(offsets))
    right = max(0, (steps - 1) * down + max(offsets) - (n_in - 1))
    return up, down, left, right, tuple(phases)


def _resample(x: Tensor, dim: int, idx: np.ndarray, weights: np.ndarray | None,
              steps: tuple | None) -> Tensor:
    """Along ``dim``: output row i = sum_j weights[i, j] * x[idx[i, j]]."""
    lead = (slice(None),) * dim
    if steps is not None:
        up, down, left, right, phases = steps
        n = x.shape[dim]
        if left or right:
            x = cat([x[lead + (slice(0, 1),)]] * left + [x] +
                    [x[lead + (slice(n - 1, n),)]] * right, dim)
        count = len(idx) // up
        outs = []
        for taps in phases:
            out = None
            for off, wt in taps:
                start = off + left
                term = x[lead + (slice(start, start + (count - 1) * down + 1, down),)]
                term = term if wt == 1.0 else term * wt
                out = term if out is None else out + term
            outs.append(out)
        if up == 1:
            return outs[0]
        y = stack(outs, dim + 1)
        return y.reshape(y.shape[:dim] + (count * up,) + y.shape[dim + 2:])
    if weights is None:
        return x[lead + (idx[:, 0],)]
    shape = (-1,) + (1,) * (x.ndim - dim - 1)
    out = None
    for j in range(idx.shape[1]):
        term = x[lead + (idx[:, j],)] * _leaf(weights[:, j].astype(x.dtype).reshape(shape))
        out = term if out is None else out + term
    return out


def _interpolate_sizes(x: Tensor, size: Any, scale_factor: Any, nd: int,
                       recompute_scale_factor: bool | None) -> tuple:
    """The output sizes, and the scale factors the kernels use (None: from the sizes)."""
    op = "interpolate"
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor, got size={size!r} "
                         f"and scale_factor={scale_factor!r}")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(f"{op}: recompute_scale_factor needs scale_factor, not size")
        sizes = (size,) * nd if isinstance(size, (int, np.integer)) else tuple(size)
        if len(sizes) != nd or builtins.any(
                not isinstance(v, (int, np.integer)) or v < 1 for v in sizes):
            raise ValueError(f"{op}: size must be a positive int or a tuple of {nd} positive "
                             f"ints for input {x.shape} ({nd} spatial dimensions), got "
                             f"{size!r}")
        return tuple(int(v) for v in sizes), (None,) * nd
    factors = (scale_factor,) * nd if isinstance(scale_factor, (int, float, np.number)) \
        else tuple(scale_factor)
    if len(factors) != nd or builtins.any(not f > 0 for f in factors):
        raise ValueError(f"{op}: scale_factor must be a positive number or a tuple of {nd} "
                         f"for input {x.shape} ({nd} spatial dimensions), got "
                         f"{scale_factor!r}")
    sizes = tuple(math.floor(float(n) * float(f)) for n, f in zip(x.shape[2:], factors))
    if builtins.any(v < 1 for v in sizes):
        raise ValueError(f"{op}: scale_factor {scale_factor!r} makes input {x.shape} empty "
                         f"({sizes})")
    return sizes, (None,) * nd if recompute_scale_factor else tuple(map(float, factors))


def interpolate(input: Tensor, size: Any = None, scale_factor: Any = None,
                mode: str = "nearest", align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None, antialias: bool = False) -> Tensor:
    """Resize (N, C, L), (N, C, H, W) or (N, C, D, H, W) to ``size`` or by ``scale_factor``,
    as ``torch.nn.functional.interpolate``: modes ``nearest``, ``nearest-exact``, ``linear``
    (3-d input), ``bilinear`` and ``bicubic`` (4-d), ``trilinear`` (5-d) and ``area``, with
    PyTorch's source positions (``align_corners``) and its float32 nearest indices.

    >>> interpolate(tg.tensor([[[1.0, 3.0]]]), scale_factor=2, mode="linear").tolist()
    [[[1.0, 1.5, 2.5, 3.0]]]
    """
    op = "interpolate"
    if not isinstance(input, Tensor) or input.ndim not in (3, 4, 5):
        raise ShapeError(f"{op}: expects input of shape (N, C, L), (N, C, H, W) or "
                         f"(N, C, D, H, W), got {getattr(input, 'shape', type(input).__name__)}")
    if mode not in _MODES:
        raise ValueError(f"{op}: mode must be one of {', '.join(_MODES)}, got {mode!r}")
    nd = input.ndim - 2
    if mode in _LINEAR and _LINEAR[mode] != nd:
        raise ShapeError(f"{op}: mode {mode!r} needs a {_LINEAR[mode] + 2}-d input, got "
                         f"{input.shape}; use "
                         f"{ {1: 'linear', 2: 'bilinear or bicubic', 3: 'trilinear'}[nd]}")
    if align_corners is not None and mode not in _LINEAR:
        raise ValueError(f"{op}: align_corners can only be set with the interpolating modes "
                         f"linear, bilinear, bicubic and trilinear, not {mode!r}")
    if antialias:
        raise ValueError(f"{op}: antialias=True is not supported; resize without it, or "
                         f"smooth first (e.g. avg_pool2d) when shrinking")
    sizes, scales = _interpolate_sizes(input, size, scale_factor, nd, recompute_scale_factor)
    x = input
    for i, (n_out, scale) in enumerate(zip(sizes, scales)):
        dim, n_in = i + 2, input.shape[i + 2]
        if mode == "area":
            x = F._adaptive_avg(x, dim, n_out)
            continue
        if n_in == n_out and mode in _LINEAR and mode != "bicubic":
            continue  # (PyTorch copies such a dimension, whatever the scale_factor)
        x = _resample(x, dim, *_taps(mode, n_in, n_out, scale, bool(align_corners), nd))
    return x


def _deprecated(name: str) -> None:
    warnings.warn(f"`nn.functional.{name}` is deprecated. Use `nn.functional.interpolate` "
                  f"instead.", stacklevel=3)


def upsample(input: Tensor, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
             align_corners: bool | None = None) -> Tensor:
    """`interpolate` under its old name (deprecated, as in PyTorch)."""
    _deprecated("upsample")
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size: Any = None, scale_factor: Any = None) -> Tensor:
    """``interpolate(mode="nearest")`` (deprecated, as in PyTorch)."""
    _deprecated("upsample_nearest")
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size: Any = None, scale_factor: Any = None) -> Tensor:
    """``interpolate(mode="bilinear", align_corners=True)`` (deprecated, as in PyTorch)."""
    _deprecated("upsample_bilinear")
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ---------------------------------------------------------------- shuffles: reshapes and permutes


def _positive_int(v: Any, name: str, op: str) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{op}: {name} must be a positive int, got {v!r}")
    return int(v)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C * r**2, H, W) to (*, C, H * r, W * r): each group of r*r channels becomes an
    r-by-r block of pixels (sub-pixel convolution).

    >>> pixel_shuffle(tg.arange(4.0).reshape(1, 4, 1, 1), 2).tolist()
    [[[[0.0, 1.0], [2.0, 3.0]]]]
    """
    op = "pixel_shuffle"
    r = _positive_int(upscale_factor, "upscale_factor", op)
    if input.ndim < 3 or input.shape[-3] % (r * r):
        raise ShapeError(f"{op}: expects input (*, C * {r * r}, H, W) (the channels divisible "
                         f"by upscale_factor**2 = {r * r}), got {input.shape}")
    *batch, c, h, w = input.shape
    b = len(batch)
    x = input.reshape((*batch, c // (r * r), r, r, h, w))
    x = x.permute(tuple(range(b)) + tuple(b + i for i in (0, 3, 1, 4, 2)))
    return x.reshape((*batch, c // (r * r), h * r, w * r))


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H * r, W * r) to (*, C * r**2, H, W), the inverse of `pixel_shuffle`.

    >>> pixel_unshuffle(tg.arange(4.0).reshape(1, 1, 2, 2), 2).flatten().tolist()
    [0.0, 1.0, 2.0, 3.0]
    """
    op = "pixel_unshuffle"
    r = _positive_int(downscale_factor, "downscale_factor", op)
    if input.ndim < 3 or input.shape[-2] % r or input.shape[-1] % r:
        raise ShapeError(f"{op}: expects input (*, C, H * {r}, W * {r}) (height and width "
                         f"divisible by downscale_factor={r}), got {input.shape}")
    *batch, c, h, w = input.shape
    b = len(batch)
    x = input.reshape((*batch, c, h // r, r, w // r, r))
    x = x.permute(tuple(range(b)) + tuple(b + i for i in (0, 2, 4, 1, 3)))
    return x.reshape((*batch, c * r * r, h // r, w // r))


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """(N, C, *) with its channels, seen as (groups, C / groups), transposed (ShuffleNet).

    >>> channel_shuffle(tg.arange(6.0).reshape(1, 6, 1), 2).flatten().tolist()
    [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    """
    op = "channel_shuffle"
    g = _positive_int(groups, "groups", op)
    if input.ndim < 3 or input.shape[1] % g:
        raise ShapeError(f"{op}: expects input (N, C, *) of at least 3 dimensions with C "
                         f"divisible by groups={g}, got {input.shape}")
    n, c, *rest = input.shape
    x = input.reshape((n, g, c // g, *rest)).transpose(1, 2)
    return x.reshape(input.shape)


# ---------------------------------------------------------------- unfold and fold
#
# PyTorch's im2col layout: (N, C * kh * kw, L), channel-major, L = the windows row by row.
# unfold is the im2col primitive and a permute; fold is its adjoint, col2im, which adds
# overlapping windows up.


def _fold_args(kernel_size: Any, dilation: Any, padding: Any, stride: Any, op: str) -> tuple:
    return (_spatial_tuple(kernel_size, 2, "kernel_size", op, 1),
            _spatial_tuple(dilation, 2, "dilation", op, 1),
            _spatial_tuple(padding, 2, "padding", op),
            _spatial_tuple(stride, 2, "stride", op, 1))


def unfold(input: Tensor, kernel_size: Any, dilation: Any = 1, padding: Any = 0,
           stride: Any = 1) -> Tensor:
    """The sliding windows of (N, C, H, W) or (C, H, W) as the columns of (N, C * kh * kw,
    L), as ``torch.nn.functional.unfold`` (im2col).

    >>> unfold(tg.arange(9.0).reshape(1, 1, 3, 3), 2).tolist()[0][0]
    [0.0, 1.0, 3.0, 4.0]
    """
    op = "unfold"
    k, d, p, s = _fold_args(kernel_size, dilation, padding, stride, op)
    if not isinstance(input, Tensor) or input.ndim not in (3, 4):
        raise ShapeError(f"{op}: expects input (N, C, H, W) or (C, H, W), got "
                         f"{getattr(input, 'shape', type(input).__name__)}")
    if input.ndim == 3:
        return unfold(input.unsqueeze(0), k, d, p, s).squeeze(0)
    n, c, h, w = input.shape
    out = F._out_size((h + 2 * p[0], w + 2 * p[1]), k, s, d, op, input.shape)
    cols = F._batch_last(input, tuple((v, v) for v in p))._im2col(k, s, d)  # (K, C, *O, N)
    return cols.permute((4, 1, 0, 2, 3)).reshape((n, c * k[0] * k[1], out[0] * out[1]))


def fold(input: Tensor, output_size: Any, kernel_size: Any, dilation: Any = 1,
         padding: Any = 0, stride: Any = 1) -> Tensor:
    """Add the columns of (N, C * kh * kw, L) or (C * kh * kw, L) back into (N, C, *output_size)
    windows, overlaps summed: the adjoint of `unfold` (col2im).

    >>> fold(tg.ones(1, 4, 4), (3, 3), 2)[0, 0].tolist()
    [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    op = "fold"
    k, d, p, s = _fold_args(kernel_size, dilation, padding, stride, op)
    size = _spatial_tuple(output_size, 2, "output_size", op, 1)
    if not isinstance(input, Tensor) or input.ndim not in (2, 3):
        raise ShapeError(f"{op}: expects input (N, C * kh * kw, L) or (C * kh * kw, L), got "
                         f"{getattr(input, 'shape', type(input).__name__)}")
    if input.ndim == 2:
        return fold(input.unsqueeze(0), size, k, d, p, s).squeeze(0)
    n, ck, length = input.shape
    kk = k[0] * k[1]
    padded = (size[0] + 2 * p[0], size[1] + 2 * p[1])
    out = F._out_size(padded, k, s, d, op, (n, ck) + size)
    if ck % kk or length != out[0] * out[1]:
        raise ShapeError(f"{op}: input {input.shape} does not fit output_size {size} with "
                         f"kernel {k}, dilation {d}, padding {p}, stride {s}: it needs "
                         f"(N, C * {kk}, {out[0] * out[1]})")
    c = ck // kk
    cols = input.reshape((n, c, kk) + out).permute((2, 1, 3, 4, 0))  # (K, C, *O, N)
    y = cols._col2im(k, s, d, (c,) + padded + (n,))
    if builtins.any(p):
        y = y[:, p[0]:p[0] + size[0], p[1]:p[1] + size[1]]
    return F._batch_first(y)


# ---------------------------------------------------------------- pools
#
# The plain pools (with ceil_mode and return_indices) live beside conv in
# tracegrad/functional.py; these are built on them, or gather windows by constant index
# arrays.


def max_pool1d_with_indices(input: Tensor, kernel_size: Any, stride: Any = None,
                            padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
                            return_indices: bool = False) -> tuple:
    """``max_pool1d(..., return_indices=True)``: (values, indices)."""
    return F.max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input: Tensor, kernel_size: Any, stride: Any = None,
                            padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
                            return_indices: bool = False) -> tuple:
    """``max_pool2d(..., return_indices=True)``: (values, flat indices into H*W)."""
    return F.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool3d_with_indices(input: Tensor, kernel_size: Any, stride: Any = None,
                            padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
                            return_indices: bool = False) -> tuple:
    """``max_pool3d(..., return_indices=True)``: (values, flat indices into D*H*W)."""
    return F.max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def adaptive_avg_pool1d(input: Tensor, output_size: Any) -> Tensor:
    """Average (N, C, L) or (C, L) down to ``output_size`` windows, PyTorch's windows
    ``[floor(i * L / out), ceil((i + 1) * L / out))``.

    >>> adaptive_avg_pool1d(tg.tensor([[[1.0, 2.0, 3.0]]]), 2).tolist()
    [[[1.5, 2.5]]]
    """
    return F._adaptive_avg_pool(input, output_size, 1, "adaptive_avg_pool1d")


def adaptive_avg_pool3d(input: Tensor, output_size: Any) -> Tensor:
    """Average (N, C, D, H, W) or (C, D, H, W) down to ``output_size`` (an int or a triple,
    None keeping a side), PyTorch's windows one dimension at a time.

    >>> adaptive_avg_pool3d(tg.arange(8.0).reshape(1, 1, 2, 2, 2), 1).flatten().tolist()
    [3.5]
    """
    return F._adaptive_avg_pool(input, output_size, 3, "adaptive_avg_pool3d")


def _adaptive_windows(n: int, out: int) -> np.ndarray:
    """(out, k) positions of PyTorch's adaptive windows along a dimension of ``n``, each
    padded to the longest window by repeating its last position."""
    lo = np.arange(out) * n // out
    hi = -(-(np.arange(out) + 1) * n // out)
    k = int((hi - lo).max())
    return np.minimum(lo[:, None] + np.arange(k), hi[:, None] - 1)


def _adaptive_max(x: Tensor, output_size: Any, return_indices: bool, nd: int,
                  op: str) -> Any:
    sizes = F._output_sizes(x, output_size, nd, op)
    if x.ndim == nd + 1:
        y = _adaptive_max(x.unsqueeze(0), sizes, return_indices, nd, op)
        return tuple(t.squeeze(0) for t in y) if return_indices else y.squeeze(0)
    spatial = tuple(x.shape[2:])
    windows = [_adaptive_windows(n, o) for n, o in zip(spatial, sizes)]
    if builtins.all(n % o == 0 for n, o in zip(spatial, sizes)):  # disjoint windows
        w = x.reshape(x.shape[:2] + tuple(v for idx in windows for v in idx.shape))
    else:  # (N, C, o1, k1, ..., rest): each window a slice, the short ones padded
        low = -math.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        w = x
        for i, idx in enumerate(windows):
            dim, k = 2 + 2 * i, idx.shape[1]
            parts = []
            for a, b in zip(idx[:, 0], idx[:, -1] + 1):
                part = w[(slice(None),) * dim + (slice(int(a), int(b)),)]
                if b - a < k:  # (never a window's first maximum, nor its last NaN)
                    part = apply(P["pad"], part, value=low, pads=((0, 0),) * dim + (
                        (0, k - int(b - a)),) + ((0, 0),) * (part.ndim - dim - 1))
                parts.append(part)
            w = stack(parts, dim)
    w = w.permute((0, 1) + tuple(range(2, 2 + 2 * nd, 2)) + tuple(range(3, 3 + 2 * nd, 2)))
    w = w.reshape(w.shape[:2 + nd] + (-1,))  # (N, C, *out, K)
    with no_grad():  # each window's first maximum, or its last NaN (as PyTorch)
        plain = w.detach()
        nan = (plain != plain).long()
        last_nan = (w.shape[-1] - 1) - F.flip(nan, (-1,)).argmax(-1, keepdim=True)
        local = F.where(nan.amax(-1, keepdim=True) > 0, last_nan,
                        plain.argmax(-1, keepdim=True))
    values = F.take_along_dim(w, local, -1).squeeze(-1)
    if not return_indices:
        return values
    # each window position as a flat index into the input's spatial dimensions
    flat = np.zeros((1,) * (2 * nd), dtype=np.int64)
    for i, (idx, n) in enumerate(zip(windows, spatial)):
        shape = [1] * (2 * nd)
        shape[i], shape[nd + i] = idx.shape
        flat = flat * n + idx.reshape(shape)
    table = _leaf(flat.reshape(sizes + (-1,))).expand(w.shape)
    return values, F.take_along_dim(table, local, -1).squeeze(-1)


def adaptive_max_pool1d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """Maximum of (N, C, L) or (C, L) over ``output_size`` adaptive windows (as
    `adaptive_avg_pool1d`'s); the gradient goes to each window's first maximum.

    >>> adaptive_max_pool1d(tg.tensor([[[1.0, 3.0, 2.0]]]), 2).tolist()
    [[[3.0, 3.0]]]
    """
    return _adaptive_max(input, output_size, return_indices, 1, "adaptive_max_pool1d")


def adaptive_max_pool2d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """Maximum of (N, C, H, W) or (C, H, W) over adaptive windows; ``output_size`` an int or
    a pair (None keeps a side); ``return_indices`` also gives flat indices into H*W."""
    return _adaptive_max(input, output_size, return_indices, 2, "adaptive_max_pool2d")


def adaptive_max_pool3d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """Maximum of (N, C, D, H, W) or (C, D, H, W) over adaptive windows; ``output_size`` an
    int or a triple (None keeps a side); ``return_indices`` also gives flat indices into
    D*H*W."""
    return _adaptive_max(input, output_size, return_indices, 3, "adaptive_max_pool3d")


def adaptive_max_pool1d_with_indices(input: Tensor, output_size: Any,
                                     return_indices: bool = False) -> tuple:
    """``adaptive_max_pool1d(..., return_indices=True)``: (values, indices)."""
    return _adaptive_max(input, output_size, True, 1, "adaptive_max_pool1d")


def adaptive_max_pool2d_with_indices(input: Tensor, output_size: Any,
                                     return_indices: bool = False) -> tuple:
    """``adaptive_max_pool2d(..., return_indices=True)``: (values, flat indices into H*W)."""
    return _adaptive_max(input, output_size, True, 2, "adaptive_max_pool2d")


def adaptive_max_pool3d_with_indices(input: Tensor, output_size: Any,
                                     return_indices: bool = False) -> tuple:
    """``adaptive_max_pool3d(..., return_indices=True)``: (values, flat indices into
    D*H*W)."""
    return _adaptive_max(input, output_size, True, 3, "adaptive_max_pool3d")


def _max_unpool(x: Tensor, indices: Tensor, kernel_size: Any, stride: Any, padding: Any,
                output_size: Any, nd: int, op: str) -> Tensor:
    k = _spatial_tuple(kernel_size, nd, "kernel_size", op, 1)
    s = k if stride is None else _spatial_tuple(stride, nd, "stride", op, 1)
    p = _spatial_tuple(padding, nd, "padding", op)
    dims = F._dims(nd)
    if not isinstance(x, Tensor) or x.ndim not in (nd + 1, nd + 2):
        raise ShapeError(f"{op}: expects input (N, C, {dims}) or (C, {dims}), got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    if not isinstance(indices, Tensor) or tuple(indices.shape) != tuple(x.shape):
        raise ShapeError(f"{op}: indices must be a tensor of the input's shape {x.shape} (as "
                         f"max_pool{nd}d(..., return_indices=True) returns them), got "
                         f"{getattr(indices, 'shape', type(indices).__name__)}")
    default = tuple((n - 1) * sv - 2 * pv + kv
                    for n, sv, pv, kv in zip(x.shape[-nd:], s, p, k))
    if output_size is None:
        size = default
    else:
        size = tuple(output_size)
        if len(size) in (nd + 1, nd + 2):
            size = size[len(size) - nd:]
        if len(size) != nd:
            raise ValueError(f"{op}: output_size must have {nd} entries, got "
                             f"{tuple(output_size)}")
        for o, m, sv in zip(size, default, s):
            if not m - sv < o < m + sv:
                raise ValueError(f"{op}: output_size {tuple(output_size)} must be within "
                                 f"one stride {s} of the default size {default}")
    lead = tuple(x.shape[:-nd])
    flat = x.reshape(lead + (-1,))
    out = _leaf(np.zeros(lead + (math.prod(size),), dtype=x.dtype))
    try:
        out = F.scatter(out, -1, indices.reshape(lead + (-1,)), flat)
    except IndexError as e:
        raise IndexError(f"{op}: an index does not fit the output size {size} ({e}); give "
                         f"the kernel_size, stride and padding of the pool, or output_size"
                         ) from None
    return out.reshape(lead + size)


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size: Any, stride: Any = None,
                 padding: Any = 0, output_size: Any = None) -> Tensor:
    """The inverse of `max_pool1d`: each value written at its index, zeros elsewhere.

    >>> y, i = tg.nn.functional.max_pool1d(tg.tensor([[[1.0, 3.0, 2.0, 0.0]]]), 2,
    ...                                     return_indices=True)
    >>> max_unpool1d(y, i, 2).tolist()
    [[[0.0, 3.0, 2.0, 0.0]]]
    """
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 1,
                       "max_unpool1d")


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size: Any, stride: Any = None,
                 padding: Any = 0, output_size: Any = None) -> Tensor:
    """The inverse of `max_pool2d`: each value written at its flat index into H*W."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 2,
                       "max_unpool2d")


def max_unpool3d(input: Tensor, indices: Tensor, kernel_size: Any, stride: Any = None,
                 padding: Any = 0, output_size: Any = None) -> Tensor:
    """The inverse of `max_pool3d`: each value written at its flat index into D*H*W."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 3,
                       "max_unpool3d")


def _lp_pool(x: Tensor, norm_type: float, kernel_size: Any, stride: Any, ceil_mode: bool,
             nd: int) -> Tensor:
    # PyTorch's formula: (the windows' mean of x**p, times the kernel size) ** (1/p), with
    # its sign * relu(abs) guard
    op = f"lp_pool{nd}d"
    k = F._tuple(kernel_size, nd, "kernel_size", op)
    out = F._avg_pool(x ** norm_type, k, stride, 0, True, ceil_mode, None, nd, op)
    return (out.sign() * F.relu(out.abs()) * math.prod(k)) ** (1.0 / norm_type)


def lp_pool1d(input: Tensor, norm_type: float, kernel_size: Any, stride: Any = None,
              ceil_mode: bool = False) -> Tensor:
    """The p-norm of each window of (N, C, L) or (C, L): ``sum(x**p) ** (1/p)``.

    >>> lp_pool1d(tg.tensor([[[3.0, 4.0]]]), 2, 2).tolist()
    [[[5.0]]]
    """
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 1)


def lp_pool2d(input: Tensor, norm_type: float, kernel_size: Any, stride: Any = None,
              ceil_mode: bool = False) -> Tensor:
    """The p-norm of each window of (N, C, H, W) or (C, H, W) (p=1: sum pooling, p=inf is
    not supported: use max_pool2d)."""
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 2)


def lp_pool3d(input: Tensor, norm_type: float, kernel_size: Any, stride: Any = None,
              ceil_mode: bool = False) -> Tensor:
    """The p-norm of each window of (N, C, D, H, W) or (C, D, H, W)."""
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 3)


__all__ = ["conv_transpose1d", "conv_transpose2d", "interpolate", "upsample", "upsample_nearest",
           "upsample_bilinear", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "unfold",
           "fold", "max_pool1d_with_indices", "max_pool2d_with_indices", "adaptive_avg_pool1d",
           "adaptive_max_pool1d", "adaptive_max_pool2d", "max_unpool1d", "max_unpool2d",
           "lp_pool1d", "lp_pool2d", "conv_transpose3d", "max_pool3d_with_indices",
           "adaptive_avg_pool3d", "adaptive_max_pool3d", "adaptive_max_pool1d_with_indices",
           "adaptive_max_pool2d_with_indices", "adaptive_max_pool3d_with_indices",
           "max_unpool3d", "lp_pool3d"]
