"""Spatial transformers: `affine_grid` makes a sampling grid from affine matrices,
`grid_sample` reads an image at a grid's points, as PyTorch's functions of those names.

Both are composites of existing primitives, written once for 2 and 3 spatial dimensions.
`grid_sample` turns each grid coordinate into pixel units (and applies the padding mode),
then sums a few taps per point: each tap is a gather of the flattened image at an index
computed from the (detached) coordinates, times a weight that is a polynomial of the
coordinate's fraction. So the input's gradient is the gather's (a scatter-add) and the
grid's flows through the weights (and the padding mode's clip and reflection), as in
PyTorch's kernels (aten/src/ATen/native/GridSampler.h); under tg.compile the indices are
traced tensors, computed anew on each call.
"""

from __future__ import annotations

import builtins
import itertools
import math
from typing import Any

import numpy as np

from .. import functional as F
from ..errors import ShapeError
from ..tensor import Tensor, _leaf
from .spatial import _cubic_weights

_MODES = ("bilinear", "nearest", "bicubic")
_PADDING_MODES = ("zeros", "border", "reflection")


def _base_coords(n: int, align_corners: bool) -> np.ndarray:
    """The normalized coordinates, in [-1, 1], of ``n`` pixels (PyTorch's linspace)."""
    if n <= 1:
        return np.zeros(n)
    coords = np.linspace(-1.0, 1.0, n)
    return coords if align_corners else coords * (n - 1) / n


def affine_grid(theta: Tensor, size: Any, align_corners: bool | None = None) -> Tensor:
    """The sampling grid (N, H, W, 2) -- or (N, D, H, W, 3) -- of affine maps ``theta``
    (N, 2, 3) -- or (N, 3, 4) -- for an output of ``size`` (N, C, H, W) -- or (N, C, D, H,
    W): each output pixel's normalized (x, y[, z]) times theta, as
    ``torch.nn.functional.affine_grid``.

    >>> affine_grid(tg.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]), (1, 1, 1, 2),
    ...             align_corners=True).tolist()
    [[[[-1.0, 0.0], [1.0, 0.0]]]]
    """
    op = "affine_grid"
    size = tuple(int(v) for v in size)
    nd = len(size) - 2
    if nd not in (2, 3):
        raise ValueError(f"{op}: size must be (N, C, H, W) or (N, C, D, H, W), got {size}")
    if not isinstance(theta, Tensor) or theta.dtype.kind != "f" or \
            tuple(theta.shape) != (size[0], nd, nd + 1):
        raise ShapeError(f"{op}: theta must be a floating tensor of shape (N, {nd}, {nd + 1}) = "
                         f"{(size[0], nd, nd + 1)} for size {size}, got "
                         f"{getattr(theta, 'shape', type(theta).__name__)}")
    if builtins.any(v < 1 for v in size):
        raise ValueError(f"{op}: size must be positive, got {size}")
    spatial = size[2:]
    # (*spatial, nd + 1): each pixel's (x, y[, z], 1), x along the last dimension
    axes = [_base_coords(n, bool(align_corners)) for n in spatial]
    mesh = np.meshgrid(*axes, indexing="ij")
    base = np.stack(list(mesh[::-1]) + [np.ones(spatial)], axis=-1).astype(theta.dtype)
    points = _leaf(base.reshape(1, -1, nd + 1))
    grid = points @ theta.transpose(1, 2)  # (N, P, nd)
    return grid.reshape((size[0],) + spatial + (nd,))


def _unnormalize(g: Tensor, n: int, align_corners: bool) -> Tensor:
    """Grid coordinates in [-1, 1] as pixel positions along a dimension of ``n``."""
    if align_corners:
        return (g + 1) * ((n - 1) / 2)
    return ((g + 1) * n - 1) / 2


def _clip(c: Tensor, n: int) -> Tensor:
    """Clamped to [0, n - 1], with no gradient at or beyond the ends (PyTorch's rule)."""
    inside = ((c > 0) & (c < n - 1)).detach()
    return F.where(inside, c, c.detach().clamp(0, n - 1))


def _reflect(c: Tensor, twice_low: int, twice_high: int) -> Tensor:
    """``c`` reflected off the ends ``twice_low / 2`` and ``twice_high / 2`` until inside."""
    if twice_low == twice_high:
        return c.detach() * 0
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    d = c - low
    d = F.where((d < 0).detach(), -d, d)  # (a gradient of +1 at 0, as PyTorch)
    flips = (d.detach() / span).floor()
    extra = d - flips * span
    odd = (flips - 2 * (flips / 2).floor()) > 0
    return F.where(odd, span - extra + low, extra + low)


def _pad_coords(c: Tensor, n: int, padding_mode: str, align_corners: bool) -> Tensor:
    """Pixel positions moved inside [0, n - 1] as the padding mode says ('zeros': as they
    are, the taps outside then read zeros)."""
    if padding_mode == "border":
        return _clip(c, n)
    if padding_mode == "reflection":
        c = _reflect(c, 0, 2 * (n - 1)) if align_corners else _reflect(c, -1, 2 * n - 1)
        return _clip(c, n)
    return c


def grid_sample(input: Tensor, grid: Tensor, mode: str = "bilinear",
                padding_mode: str = "zeros", align_corners: bool | None = None) -> Tensor:
    """``input`` (N, C, H, W) -- or (N, C, D, H, W) -- read at the points of ``grid`` (N,
    H_out, W_out, 2) -- or (N, D_out, H_out, W_out, 3) -- whose last dimension is (x, y[,
    z]) normalized to [-1, 1] (-1 the first pixel's center with ``align_corners``, else its
    outer edge), as ``torch.nn.functional.grid_sample``: ``mode`` 'bilinear' (trilinear
    for 5-d), 'nearest' or 'bicubic' (4-d), ``padding_mode`` 'zeros', 'border' or
    'reflection'. Differentiable in both the input and the grid.

    >>> image = tg.arange(4.0).reshape(1, 1, 2, 2)
    >>> grid_sample(image, tg.zeros(1, 1, 1, 2), align_corners=True).item()
    1.5
    """
    op = "grid_sample"
    if mode not in _MODES:
        raise ValueError(f"{op}: mode must be one of {_MODES}, got {mode!r}")
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"{op}: padding_mode must be one of {_PADDING_MODES}, got "
                         f"{padding_mode!r}")
    if not isinstance(input, Tensor) or not isinstance(grid, Tensor):
        raise TypeError(f"{op}: input and grid must be tensors, got {type(input).__name__} "
                        f"and {type(grid).__name__}")
    nd = input.ndim - 2
    if nd not in (2, 3) or grid.ndim != nd + 2 or grid.shape[-1] != nd or \
            grid.shape[0] != input.shape[0]:
        raise ShapeError(f"{op}: expects input (N, C, H, W) with grid (N, H_out, W_out, 2), "
                         f"or input (N, C, D, H, W) with grid (N, D_out, H_out, W_out, 3); "
                         f"got input {input.shape} and grid {grid.shape}")
    if mode == "bicubic" and nd != 2:
        raise ValueError(f"{op}: mode='bicubic' needs a 4-d input (as in PyTorch), got "
                         f"{input.shape}")
    if input.dtype != grid.dtype or input.dtype.kind != "f":
        raise TypeError(f"{op}: input and grid must have one floating dtype, got "
                        f"{input.dtype} and {grid.dtype}")
    align = bool(align_corners)
    n, c, *spatial = input.shape
    out = tuple(grid.shape[1:-1])
    # pixel positions along each spatial dimension (the grid's last axis is x, y[, z]:
    # the spatial dimensions from last to first), each (N, P)
    points = grid.reshape((n, -1, nd))
    coords = [_unnormalize(points[..., nd - 1 - i], spatial[i], align) for i in range(nd)]
    if mode == "bicubic":  # 4 x 4 taps, each tap's integer position padded
        taps = []
        for pos, size in zip(coords, spatial):
            first = pos.detach().floor()
            weights = _cubic_weights(pos - first)
            taps.append([(_pad_coords(first + (j - 1), size, padding_mode, align), w)
                         for j, w in enumerate(weights)])
    else:
        taps = []
        for pos, size in zip(coords, spatial):
            pos = _pad_coords(pos, size, padding_mode, align)
            if mode == "nearest":  # (round half to even, as PyTorch's nearbyint)
                taps.append([(pos.detach().round(), None)])
            else:
                first = pos.detach().floor()
                frac = pos - first
                taps.append([(first, 1 - frac), (first + 1, frac)])
    flat = input.reshape((n, c, -1))
    total = None
    for corner in itertools.product(*taps):
        index, weight, inside = None, None, None
        for (pos, w), size, stride in zip(corner, spatial, _strides(spatial)):
            ok = (pos >= 0) & (pos <= size - 1)  # (False for NaN: no wild index)
            inside = ok if inside is None else inside & ok
            term = F.where(ok, pos, 0.0).long() * stride
            index = term if index is None else index + term
            if w is not None:
                weight = w if weight is None else weight * w
        mask = inside.to(input.dtype)
        weight = mask if weight is None else weight * mask
        values = F.take_along_dim(flat, index.unsqueeze(1).expand((n, c, index.shape[1])), -1)
        part = values * weight.unsqueeze(1)
        total = part if total is None else total + part
    return total.reshape((n, c) + out)


def _strides(spatial: tuple) -> tuple:
    """Row-major element strides of ``spatial``."""
    return tuple(math.prod(spatial[i + 1:]) for i in range(len(spatial)))


__all__ = ["affine_grid", "grid_sample"]
