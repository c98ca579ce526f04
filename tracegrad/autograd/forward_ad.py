"""``tg.autograd.forward_ad``: PyTorch's forward-mode API (dual tensors), on the same levels
as ``tg.jvp`` (``tracegrad/forward.py``).

>>> import tracegrad.autograd.forward_ad as fwAD
>>> with fwAD.dual_level():
...     x = fwAD.make_dual(primal, tangent)
...     y = f(x)
...     jvp = fwAD.unpack_dual(y).tangent
"""

from __future__ import annotations

import threading
from collections import namedtuple
from contextlib import contextmanager
from typing import Any, Iterator

from .. import forward
from ..errors import ShapeError
from ..ops import PRIMITIVES
from ..tensor import Tensor, apply

__all__ = ["dual_level", "make_dual", "unpack_dual", "UnpackedDualTensor"]

UnpackedDualTensor = namedtuple("UnpackedDualTensor", ["primal", "tangent"])


class _Levels(threading.local):
    def __init__(self) -> None:
        self.stack: list = []


_levels = _Levels()


@contextmanager
def dual_level() -> Iterator[int]:
    """A forward-mode level for the block: dual tensors made inside carry their tangents
    through every op until it ends."""
    with forward.level(()) as lv:
        _levels.stack.append(lv)
        try:
            yield len(_levels.stack) - 1
        finally:
            _levels.stack.pop()


def _current(op: str) -> Any:
    if not _levels.stack:
        raise RuntimeError(f"forward_ad.{op}: no dual level is open; call it inside "
                           f"`with tg.autograd.forward_ad.dual_level():`")
    return _levels.stack[-1]


def _alias(x: Tensor) -> Tensor:
    """A new tensor with ``x``'s value (and reverse-mode graph), without tangents."""
    st = forward._state
    depth = st.depth
    st.depth = 0
    try:
        return apply(PRIMITIVES["reshape"], x, shape=tuple(x.shape))
    finally:
        st.depth = depth


def make_dual(tensor: Tensor, tangent: Tensor, *, level: int | None = None) -> Tensor:
    """``tensor`` with ``tangent`` attached (same shape and dtype), at the current level."""
    lv = _current("make_dual")
    if not isinstance(tensor, Tensor) or not isinstance(tangent, Tensor):
        raise TypeError("forward_ad.make_dual: expects two tensors (primal, tangent)")
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise ShapeError(f"forward_ad.make_dual: the tangent has shape {tuple(tangent.shape)} "
                         f"but the primal has shape {tuple(tensor.shape)}; they must match")
    if tangent.dtype != tensor.dtype or tensor.dtype.kind != "f":
        raise TypeError(f"forward_ad.make_dual: primal {tensor.dtype} and tangent "
                        f"{tangent.dtype} must be the same float dtype")
    dual = _alias(tensor)
    lv.set(dual, tangent)
    return dual


def unpack_dual(tensor: Tensor, *, level: int | None = None) -> UnpackedDualTensor:
    """``(primal, tangent)`` of a tensor at the current level (tangent None if it has
    none)."""
    lv = _levels.stack[-1] if _levels.stack else None
    t = lv.tangent(tensor) if lv is not None else None
    return UnpackedDualTensor(_alias(tensor) if t is not None else tensor, t)
