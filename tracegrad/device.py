"""Devices, as PyTorch names them: tracegrad runs on the CPU.

``tg.device("cpu")``, ``device=`` arguments, ``x.to("cpu")``, ``x.device`` and
``model.to(device)`` work as in PyTorch, so ported code runs unchanged; asking for any other
device raises an error that says tracegrad runs on the CPU only.

>>> tg.zeros(3, device="cpu").device
device(type='cpu')
"""

from __future__ import annotations

import functools
from typing import Any, Callable

_type_of = type  # (device's first argument is named `type`, as in PyTorch)


class device:  # noqa: N801  (torch.device's name)
    """A device: only ``"cpu"`` (or ``"cpu:0"``) exists here."""

    __slots__ = ("type", "index")

    def __init__(self, type: Any, index: int | None = None):  # noqa: A002  (torch's name)
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if not isinstance(type, str):
            raise TypeError(f"device: expects a string such as 'cpu', got "
                            f"{_type_of(type).__name__}")
        name, _, number = type.partition(":")
        if name != "cpu":
            raise RuntimeError(
                f"device {type!r}: tracegrad runs on the CPU only (there is no CUDA, MPS or "
                f"other accelerator support); use device='cpu', or leave device= out"
            )
        self.type = "cpu"
        self.index = int(number) if number else index

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except (RuntimeError, ValueError):
                return False
        return isinstance(other, device) and other.type == self.type

    def __hash__(self) -> int:
        return hash(self.type)

    def __repr__(self) -> str:
        return f"device(type='{self.type}')" if self.index is None else \
            f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


CPU = device("cpu")


def check_device(where: Any) -> device:
    """The device a ``device=`` argument names (None: the CPU); any other raises."""
    return CPU if where is None else device(where)


def on_cpu(fn: Callable) -> Callable:
    """Give a creation function PyTorch's ``device=`` keyword: checked, then the CPU."""
    @functools.wraps(fn)
    def wrapper(*args: Any, device: Any = None, **kwargs: Any) -> Any:
        check_device(device)
        return fn(*args, **kwargs)

    return wrapper
