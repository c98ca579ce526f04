"""Convolution layers: `Conv1d` here, `Conv2d` in `layers.py`, both on `_ConvNd`.

PyTorch's arguments, parameter shapes and default initialisation, so a PyTorch state dict
loads: ``weight`` (C_out, C_in / groups, *kernel) ~ kaiming_uniform(a=sqrt(5)), ``bias``
(C_out,) ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from .. import functional as F
from ..tensor import Tensor
from . import init
from .module import Module, Parameter


class _ConvNd(Module):
    """What Conv1d and Conv2d share: argument checks, parameters, init and printing."""

    _nd = 0
    _fn: Any = None

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
        if padding_mode != "zeros":
            raise ValueError(f"{name}: only padding_mode='zeros' is supported, got "
                             f"{padding_mode!r}; pad the input with F.pad instead")
        op = name.lower()
        kernel = F._tuple(kernel_size, nd, "kernel_size", name)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = kernel
        self.stride = F._tuple(stride, nd, "stride", name)
        self.dilation = F._tuple(dilation, nd, "dilation", name)
        F._positive(kernel, "kernel_size", name)
        F._positive(self.stride, "stride", name)
        F._positive(self.dilation, "dilation", name)
        if isinstance(padding, str):
            F._conv_padding(padding, kernel, self.stride, self.dilation, op)  # checks it
            self.padding: Any = padding
        else:
            self.padding = F._tuple(padding, nd, "padding", name)
        self.groups, self.padding_mode = groups, padding_mode
        self.weight = Parameter(np.empty((out_channels, in_channels // groups) + kernel,
                                         dtype=dtypes.default_float))
        self.bias = Parameter(np.empty(out_channels, dtype=dtypes.default_float)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_reset(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        params = self._parameters
        return type(self)._fn(x, params["weight"], params.get("bias"), self.stride,
                              self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:  # as PyTorch prints it
        nd = self._nd
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * nd:  # (a string unquoted, as PyTorch prints it)
            s += f", padding={self.padding}"
        if self.dilation != (1,) * nd:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv1d(_ConvNd):
    """1-d convolution over (N, C_in, L) inputs; weight (C_out, C_in/groups, k).

    >>> conv = tg.nn.Conv1d(2, 4, kernel_size=3, padding="same")
    >>> conv(tg.randn(8, 2, 10)).shape
    (8, 4, 10)
    """

    _nd = 1
    _fn = staticmethod(F.conv1d)


__all__ = ["Conv1d"]
