"""``tg.Size``: a shape, as ``torch.Size`` (a tuple of ints). A tensor's ``.shape`` is a
plain tuple, equal to the Size of the same dims, so ``x.shape == torch.Size([2, 3])`` holds
after the import swap."""

from __future__ import annotations

import math
from typing import Any


class Size(tuple):
    """A tuple of dims with ``numel()``.

    >>> tg.Size([2, 3]) == (2, 3), tg.Size([2, 3]).numel()
    (True, 6)
    """

    def __new__(cls, dims: Any = ()) -> Size:
        dims = tuple(dims)
        for d in dims:
            if isinstance(d, bool) or not hasattr(d, "__index__"):
                raise TypeError(f"Size: expects ints, got {type(d).__name__} ({d!r})")
        return super().__new__(cls, (int(d) for d in dims))

    def numel(self) -> int:
        """The number of elements of a tensor of this shape."""
        return math.prod(self)

    def __getitem__(self, index: Any) -> Any:
        out = super().__getitem__(index)
        return Size(out) if isinstance(index, slice) else out

    def __add__(self, other: Any) -> Size:
        return Size(tuple(self) + tuple(other))

    def __repr__(self) -> str:
        return f"tracegrad.Size({list(self)})"
