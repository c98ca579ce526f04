"""The spatial layers without weights, each a thin Module over a function of `spatial.py`
with PyTorch's arguments and printing: resampling (`Upsample`), rearranging
(`PixelShuffle`, `ChannelShuffle`, `Unfold`, `Fold`) and the pools `layers.py` does not
have (adaptive max, LP, unpooling). The convolutions are in `conv.py`."""

from __future__ import annotations

import inspect
from typing import Any

from .. import functional as F
from ..tensor import Tensor
from . import spatial
from .module import Module

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
AdaptiveAvgPool3d = _layer("AdaptiveAvgPool3d", spatial.adaptive_avg_pool3d,
                           (("output_size", _REQUIRED),),
                           "Average (N, C, D, H, W) down to ``output_size``: "
                           "`F.adaptive_avg_pool3d`.")
AdaptiveMaxPool3d = _layer("AdaptiveMaxPool3d", spatial.adaptive_max_pool3d,
                           (("output_size", _REQUIRED), ("return_indices", False)),
                           "Maximum of (N, C, D, H, W) over adaptive windows: "
                           "`F.adaptive_max_pool3d`.", shown=1)
LPPool1d = _layer("LPPool1d", spatial.lp_pool1d,
                  (("norm_type", _REQUIRED), ("kernel_size", _REQUIRED), ("stride", None),
                   ("ceil_mode", False)),
                  "The p-norm of each window of (N, C, L): `F.lp_pool1d`.")
LPPool2d = _layer("LPPool2d", spatial.lp_pool2d,
                  (("norm_type", _REQUIRED), ("kernel_size", _REQUIRED), ("stride", None),
                   ("ceil_mode", False)),
                  "The p-norm of each window of (N, C, H, W): `F.lp_pool2d`.")
LPPool3d = _layer("LPPool3d", spatial.lp_pool3d,
                  (("norm_type", _REQUIRED), ("kernel_size", _REQUIRED), ("stride", None),
                   ("ceil_mode", False)),
                  "The p-norm of each window of (N, C, D, H, W): `F.lp_pool3d`.")


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


class MaxUnpool3d(_MaxUnpoolNd):
    """`F.max_unpool3d`: values back at the indices `max_pool3d` returned, zeros elsewhere."""

    _nd = 3
    _fn = staticmethod(spatial.max_unpool3d)


__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "PixelShuffle",
           "PixelUnshuffle", "ChannelShuffle", "Unfold", "Fold", "AdaptiveAvgPool1d",
           "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "LPPool1d", "LPPool2d", "MaxUnpool1d",
           "MaxUnpool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool3d", "LPPool3d", "MaxUnpool3d"]
