"""Convolution layers: `Conv1d`, `ConvTranspose1d`, `ConvTranspose2d` here, `Conv2d` in
`layers.py`, all on `_ConvNd`.

PyTorch's arguments, parameter shapes and default initialisation, so a PyTorch state dict
loads: ``weight`` (C_out, C_in / groups, *kernel) -- (C_in, C_out / groups, *kernel) for a
transposed convolution -- ~ kaiming_uniform(a=sqrt(5)), ``bias`` (C_out,) ~
U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in from the weight's second dimension and kernel.
"""

from __future__ import annotations

import builtins
import inspect
from typing import Any

import numpy as np

from .. import dtypes
from .. import functional as F
from ..tensor import Tensor
from . import init, spatial
from .module import Module, Parameter


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
        if self.output_padding and self.output_padding != (0,) * nd:
            s += f", output_padding={self.output_padding}"
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


# ---------------------------------------------------------------- resampling


class Upsample(Module):
    """`F.interpolate` as a layer, PyTorch's arguments and printing.

    >>> tg.nn.Upsample(scale_factor=2, mode="bilinear")(tg.ones(1, 3, 4, 5)).shape
    (1, 3, 8, 10)
    """

    def __init__(self, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                 align_corners: bool | None = None, recompute_scale_factor: bool | None = None):
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, (tuple, list)):
            self.scale_factor: Any = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, x: Tensor) -> Tensor:
        return spatial.interpolate(x, self.size, self.scale_factor, self.mode,
                                   self.align_corners, self.recompute_scale_factor)

    def extra_repr(self) -> str:
        info = (f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None
                else f"size={self.size!r}")
        return f"{info}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """``Upsample(mode="nearest")`` for (N, C, H, W)."""

    def __init__(self, size: Any = None, scale_factor: Any = None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """``Upsample(mode="bilinear", align_corners=True)`` for (N, C, H, W)."""

    def __init__(self, size: Any = None, scale_factor: Any = None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


# ---------------------------------------------------------------- shuffles, unfold and fold


def _layer(name: str, fn: Any, params: tuple, doc: str, shown: int | None = None) -> type:
    """A Module that stores ``params`` (PyTorch's constructor arguments, in order) and
    calls ``fn(x, *params)``; it prints them (the first ``shown``) as PyTorch does."""
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        Module.__init__(self)
        names = [p for p, _ in params]
        if len(args) > len(names) or set(kwargs) - set(names):
            raise TypeError(f"{name}() takes the arguments {', '.join(names)}")
        values = dict(params)
        values.update(zip(names, args))
        values.update(kwargs)
        for p, v in values.items():
            if v is _REQUIRED:
                raise TypeError(f"{name}() missing the argument {p!r}")
            setattr(self, p, v)

    def forward(self, x: Tensor) -> Tensor:
        return fn(x, *(getattr(self, p) for p, _ in params))

    def extra_repr(self) -> str:
        return ", ".join(f"{p}={getattr(self, p)}" for p, _ in params[:shown])

    __init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                             **({} if v is _REQUIRED else {"default": v})) for p, v in params])
    return type(name, (Module,), {"__init__": __init__, "forward": forward,
                                  "extra_repr": extra_repr, "__doc__": doc,
                                  "__module__": __name__})


_REQUIRED = object()
PixelShuffle = _layer("PixelShuffle", spatial.pixel_shuffle,
                      (("upscale_factor", _REQUIRED),),
                      "(*, C * r**2, H, W) to (*, C, H * r, W * r): `F.pixel_shuffle`.")
PixelUnshuffle = _layer("PixelUnshuffle", spatial.pixel_unshuffle,
                        (("downscale_factor", _REQUIRED),),
                        "(*, C, H * r, W * r) to (*, C * r**2, H, W): `F.pixel_unshuffle`.")
ChannelShuffle = _layer("ChannelShuffle", spatial.channel_shuffle, (("groups", _REQUIRED),),
                        "Interleave the channels of ``groups`` groups: `F.channel_shuffle`.")
Unfold = _layer("Unfold", spatial.unfold,
                (("kernel_size", _REQUIRED), ("dilation", 1), ("padding", 0), ("stride", 1)),
                "The sliding windows as columns (N, C * kh * kw, L): `F.unfold`.")
Fold = _layer("Fold", spatial.fold,
              (("output_size", _REQUIRED), ("kernel_size", _REQUIRED), ("dilation", 1),
               ("padding", 0), ("stride", 1)),
              "Columns (N, C * kh * kw, L) added back into images: `F.fold`.")


# ---------------------------------------------------------------- pools

AdaptiveAvgPool1d = _layer("AdaptiveAvgPool1d", spatial.adaptive_avg_pool1d,
                           (("output_size", _REQUIRED),),
                           "Average (N, C, L) down to ``output_size``: `F.adaptive_avg_pool1d`.")
AdaptiveMaxPool1d = _layer("AdaptiveMaxPool1d", spatial.adaptive_max_pool1d,
                           (("output_size", _REQUIRED), ("return_indices", False)),
                           "Maximum of (N, C, L) over adaptive windows: "
                           "`F.adaptive_max_pool1d`.", shown=1)
AdaptiveMaxPool2d = _layer("AdaptiveMaxPool2d", spatial.adaptive_max_pool2d,
                           (("output_size", _REQUIRED), ("return_indices", False)),
                           "Maximum of (N, C, H, W) over adaptive windows: "
                           "`F.adaptive_max_pool2d`.", shown=1)
LPPool1d = _layer("LPPool1d", spatial.lp_pool1d,
                  (("norm_type", _REQUIRED), ("kernel_size", _REQUIRED), ("stride", None),
                   ("ceil_mode", False)),
                  "The p-norm of each window of (N, C, L): `F.lp_pool1d`.")
LPPool2d = _layer("LPPool2d", spatial.lp_pool2d,
                  (("norm_type", _REQUIRED), ("kernel_size", _REQUIRED), ("stride", None),
                   ("ceil_mode", False)),
                  "The p-norm of each window of (N, C, H, W): `F.lp_pool2d`.")


class _MaxUnpoolNd(Module):
    """PyTorch's MaxUnpool: tuples of kernel_size, stride (the kernel's by default) and
    padding; ``forward(x, indices, output_size=None)``."""

    _nd = 0
    _fn: Any = None

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0):
        super().__init__()
        name, nd = type(self).__name__, self._nd
        self.kernel_size = F._tuple(kernel_size, nd, "kernel_size", name)
        self.stride = F._tuple(kernel_size if stride is None else stride, nd, "stride", name)
        self.padding = F._tuple(padding, nd, "padding", name)

    def forward(self, x: Tensor, indices: Tensor, output_size: Any = None) -> Tensor:
        return type(self)._fn(x, indices, self.kernel_size, self.stride, self.padding,
                              output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """`F.max_unpool1d`: values back at the indices `max_pool1d` returned, zeros elsewhere."""

    _nd = 1
    _fn = staticmethod(spatial.max_unpool1d)


class MaxUnpool2d(_MaxUnpoolNd):
    """`F.max_unpool2d`: values back at the indices `max_pool2d` returned, zeros elsewhere.

    >>> y, i = tg.nn.functional.max_pool2d(tg.randn(1, 1, 4, 4), 2, return_indices=True)
    >>> tg.nn.MaxUnpool2d(2)(y, i).shape
    (1, 1, 4, 4)
    """

    _nd = 2
    _fn = staticmethod(spatial.max_unpool2d)


__all__ = ["Conv1d", "ConvTranspose1d", "ConvTranspose2d", "Upsample", "UpsamplingNearest2d",
           "UpsamplingBilinear2d", "PixelShuffle", "PixelUnshuffle", "ChannelShuffle", "Unfold",
           "Fold", "AdaptiveAvgPool1d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "LPPool1d",
           "LPPool2d", "MaxUnpool1d", "MaxUnpool2d"]
