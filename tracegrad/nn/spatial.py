"""PyTorch's spatial functions beyond conv and the plain pools: transposed convolution,
interpolation, pixel and channel shuffles, unfold/fold, adaptive max pools, max unpooling
and power-average pools.

Each is a composite of existing primitives, so it differentiates, traces and compiles. The
transposed convolution and `fold` are col2im (the adjoint of the im2col that `conv` and
`unfold` use) after one matmul; the resamplers gather rows by index arrays that depend only
on shapes (constants of a trace) and mix them with constant weights, one dimension at a
time.
"""

from __future__ import annotations

import builtins
import math
from typing import Any

import numpy as np

from .. import functional as F
from ..errors import ShapeError
from ..ops import PRIMITIVES as P
from ..tensor import Tensor, apply

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
    if not isinstance(x, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"{op}: input and weight must be tensors, got "
                        f"{type(x).__name__} and {type(weight).__name__}")
    if weight.ndim != nd + 2:
        raise ShapeError(f"{op}: weight must be (C_in, C_out/groups, "
                         f"{', '.join(['k'] * nd)}), got shape {weight.shape}")
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
    if x.dtype != weight.dtype or (bias is not None and bias.dtype != x.dtype):
        raise TypeError(f"{op}: input, weight and bias dtypes differ ({x.dtype}, "
                        f"{weight.dtype}{', ' + str(bias.dtype) if bias is not None else ''});"
                        f" cast them to one")
    c_out = c_group_out * groups
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise ShapeError(f"{op}: bias must have shape ({c_out},) for weight {weight.shape} "
                         f"and groups={groups}, got {bias.shape}")
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


__all__ = ["conv_transpose1d", "conv_transpose2d"]
