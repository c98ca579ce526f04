"""Convolution layers: `Conv1d`, `Conv3d` and `ConvTranspose1d`/`2d`/`3d` here, `Conv2d` in
`layers.py`, all on `_ConvNd`.

PyTorch's arguments, parameter shapes and default initialisation, so a PyTorch state dict
loads: ``weight`` (C_out, C_in / groups, *kernel) -- (C_in, C_out / groups, *kernel) for a
transposed convolution -- ~ kaiming_uniform(a=sqrt(5)), ``bias`` (C_out,) ~
U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in from the weight's second dimension and kernel.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from .. import dtypes
from .. import functional as F
from ..tensor import Tensor
from . import init, spatial
from .module import Module, Parameter
from .padding import conv_input_padding

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """What Conv1d and Conv2d share: argument checks, parameters, init and printing."""

    _nd = 0
    _fn: Any = None
    _transposed = False
    output_padding: tuple = ()

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros"):
        super().__init__()
        name, nd = type(self).__name__, self._nd
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"{name}: groups must be a positive int, got {groups!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{name}: in_channels={in_channels} and out_channels={out_channels} must both "
                f"be divisible by groups={groups}"
            )
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got "
                             f"{padding_mode!r}")
        if padding_mode != "zeros" and self._transposed:
            raise ValueError(f"{name}: only padding_mode='zeros' is supported for a "
                             f"transposed convolution (as in PyTorch), got {padding_mode!r}")
        op = name.lower()
        kernel = F._tuple(kernel_size, nd, "kernel_size", name)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = kernel
        self.stride = F._tuple(stride, nd, "stride", name)
        self.dilation = F._tuple(dilation, nd, "dilation", name)
        F._positive(kernel, "kernel_size", name)
        F._positive(self.stride, "stride", name)
        F._positive(self.dilation, "dilation", name)
        if isinstance(padding, str) and self._transposed:
            raise ValueError(f"{name}: padding must be an int or a tuple of {nd} ints, got "
                             f"{padding!r} (PyTorch's transposed convolutions take no string "
                             f"padding)")
        if isinstance(padding, str):
            F._conv_padding(padding, kernel, self.stride, self.dilation, op)  # checks it
            self.padding: Any = padding
        else:
            self.padding = F._tuple(padding, nd, "padding", name)
        self.groups, self.padding_mode = groups, padding_mode
        channels = (in_channels, out_channels // groups) if self._transposed else \
            (out_channels, in_channels // groups)
        self.weight = Parameter(np.empty(channels + kernel, dtype=dtypes.default_float))
        self.bias = Parameter(np.empty(out_channels, dtype=dtypes.default_float)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_reset(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        params, padding = self._parameters, self.padding
        if self.padding_mode != "zeros":  # (the input padded by F.pad, then no padding)
            x = F.pad(x, conv_input_padding(padding, self.kernel_size, self.dilation),
                      self.padding_mode)
            padding = 0
        return type(self)._fn(x, params["weight"], params.get("bias"), self.stride,
                              padding, self.dilation, self.groups)

    def extra_repr(self) -> str:  # as PyTorch prints it
        nd = self._nd
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * nd:  # (a string unquoted, as PyTorch prints it)
            s += f", padding={self.padding}"
        if self.dilation != (1,) * nd:
            s += f", dilation={self.dilation}"
        if self.output_padding and self.output_padding != (0,) * nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """1-d convolution over (N, C_in, L) inputs; weight (C_out, C_in/groups, k).

    >>> conv = tg.nn.Conv1d(2, 4, kernel_size=3, padding="same")
    >>> conv(tg.randn(8, 2, 10)).shape
    (8, 4, 10)
    """

    _nd = 1
    _fn = staticmethod(F.conv1d)


class Conv3d(_ConvNd):
    """3-d convolution over (N, C_in, D, H, W) inputs; weight (C_out, C_in/groups, kd, kh, kw).

    >>> conv = tg.nn.Conv3d(2, 4, kernel_size=3, padding=1)
    >>> conv(tg.randn(1, 2, 5, 6, 7)).shape
    (1, 4, 5, 6, 7)
    """

    _nd = 3
    _fn = staticmethod(F.conv3d)


class _ConvTransposeNd(_ConvNd):
    """PyTorch's transposed convolution layers: its argument order (output_padding after
    padding, dilation last), weight (C_in, C_out / groups, *kernel), and ``forward(x,
    output_size=None)``, which picks the output_padding that gives that size."""

    _transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, output_padding: Any = 0, groups: int = 1, bias: bool = True,
                 dilation: Any = 1, padding_mode: str = "zeros"):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode)
        name = type(self).__name__
        self.output_padding = F._tuple(output_padding, self._nd, "output_padding", name)
        if builtins.any(e >= builtins.max(s, d) for e, s, d in
                        zip(self.output_padding, self.stride, self.dilation)):
            raise ValueError(f"{name}: output_padding {self.output_padding} must be smaller "
                             f"than either stride {self.stride} or dilation {self.dilation}")

    def _output_padding(self, x: Tensor, output_size: Any) -> tuple:
        if output_size is None:
            return self.output_padding
        nd, name = self._nd, type(self).__name__
        sizes = tuple(output_size)
        if len(sizes) == x.ndim:  # PyTorch accepts the whole shape too
            sizes = sizes[x.ndim - nd:]
        if len(sizes) != nd:
            raise ValueError(f"{name}: output_size must have {nd} or {x.ndim} elements, got "
                             f"{tuple(output_size)}")
        least = tuple((i - 1) * s - 2 * p + d * (k - 1) + 1 for i, s, p, d, k in zip(
            x.shape[-nd:], self.stride, self.padding, self.dilation, self.kernel_size))
        extra = tuple(o - m for o, m in zip(sizes, least))
        if builtins.any(not 0 <= e < s for e, s in zip(extra, self.stride)):
            raise ValueError(f"{name}: requested an output size of {sizes}, but the input "
                             f"{x.shape} gives sizes from {least} to "
                             f"{tuple(m + s - 1 for m, s in zip(least, self.stride))}")
        return extra

    def forward(self, x: Tensor, output_size: Any = None) -> Tensor:
        params = self._parameters
        return type(self)._fn(x, params["weight"], params.get("bias"), self.stride,
                              self.padding, self._output_padding(x, output_size),
                              self.groups, self.dilation)


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-d convolution over (N, C_in, L); weight (C_in, C_out/groups, k).

    >>> up = tg.nn.ConvTranspose1d(4, 2, kernel_size=4, stride=2, padding=1)
    >>> up(tg.randn(8, 4, 10)).shape
    (8, 2, 20)
    """

    _nd = 1
    _fn = staticmethod(spatial.conv_transpose1d)


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-d convolution over (N, C_in, H, W); weight (C_in, C_out/groups, kh, kw).

    >>> up = tg.nn.ConvTranspose2d(4, 2, kernel_size=3, stride=2, padding=1)
    >>> up(tg.randn(1, 4, 5, 5), output_size=(10, 10)).shape
    (1, 2, 10, 10)
    """

    _nd = 2
    _fn = staticmethod(spatial.conv_transpose2d)


class ConvTranspose3d(_ConvTransposeNd):
    """Transposed 3-d convolution over (N, C_in, D, H, W); weight (C_in, C_out/groups, kd, kh,
    kw).

    >>> up = tg.nn.ConvTranspose3d(4, 2, kernel_size=2, stride=2)
    >>> up(tg.randn(1, 4, 3, 3, 3)).shape
    (1, 2, 6, 6, 6)
    """

    _nd = 3
    _fn = staticmethod(spatial.conv_transpose3d)


__all__ = ["Conv1d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]
