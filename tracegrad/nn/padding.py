"""Padding layers: ``ZeroPad``, ``ConstantPad``, ``ReflectionPad``, ``ReplicationPad`` and
``CircularPad`` in 1, 2 and 3 dimensions, each `F.pad` with one mode, as PyTorch's.

``padding`` is an int (the same on every side) or PyTorch's tuple of (left, right) pairs,
last dimension first; a negative padding crops.
"""

from __future__ import annotations

from typing import Any

from .. import functional as F
from ..tensor import Tensor
from .module import Module


class _PadNd(Module):
    """``F.pad(x, padding, mode, value)`` for a fixed ``padding``."""

    _nd = 0
    _mode = "constant"

    def __init__(self, padding: Any, value: float | None = None):
        super().__init__()
        name, n = type(self).__name__, 2 * self._nd
        if isinstance(padding, int):
            padding = (padding,) * n
        padding = tuple(padding)
        if len(padding) != n or not all(isinstance(p, int) for p in padding):
            raise ValueError(f"{name}: padding must be an int or a tuple of {n} ints, "
                             f"got {padding!r}")
        self.padding = padding
        if value is not None:
            self.value = value

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x, self.padding, self._mode, getattr(self, "value", None))

    def extra_repr(self) -> str:  # as PyTorch prints them
        if type(self).__name__.startswith("ConstantPad"):
            return f"padding={self.padding}, value={self.value}"
        return f"{self.padding}"


def _constant_init(self: _PadNd, padding: Any, value: float) -> None:
    _PadNd.__init__(self, padding, value)


def _zero_init(self: _PadNd, padding: Any) -> None:
    _PadNd.__init__(self, padding, 0.0)


def _padding_layer(kind: str, mode: str, nd: int) -> type:
    init = {"Zero": _zero_init, "Constant": _constant_init}.get(kind, _PadNd.__init__)
    what = {"Zero": "zeros", "Constant": "``value``", "Reflection": "the input reflected "
            "about its edges", "Replication": "copies of the edge",
            "Circular": "the input wrapped around"}[kind]
    return type(f"{kind}Pad{nd}d", (_PadNd,), {
        "_nd": nd, "_mode": mode, "__init__": init,
        "__doc__": f"Pads the last {nd} dimension{'s' * (nd > 1)} with {what} "
                   f"(``F.pad(x, padding, mode={mode!r})``).",
    })


_KINDS = {"Zero": "constant", "Constant": "constant", "Reflection": "reflect",
          "Replication": "replicate", "Circular": "circular"}

__all__ = []
for _kind, _mode in _KINDS.items():
    for _nd in (1, 2, 3):
        _cls = _padding_layer(_kind, _mode, _nd)
        globals()[_cls.__name__] = _cls
        __all__.append(_cls.__name__)


def conv_input_padding(padding: Any, kernel_size: tuple, dilation: tuple) -> tuple:
    """The `F.pad` tuple (last dimension first) that a convolution with ``padding_mode``
    other than "zeros" applies to its input before convolving with ``padding=0``, as
    PyTorch's ``_reversed_padding_repeated_twice``: ``padding`` is a tuple of ints per
    dimension, "valid", or "same" (any odd total puts the extra element on the right).

    >>> conv_input_padding((1, 2), (3, 5), (1, 1))
    (2, 2, 1, 1)
    """
    if padding == "valid":
        return (0, 0) * len(kernel_size)
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
        sides = [(t // 2, t - t // 2) for t in totals]
    else:
        sides = [(p, p) for p in padding]
    return tuple(v for pair in reversed(sides) for v in pair)
