"""``tg.cuda``: there is no GPU support (tracegrad runs on the CPU), so ported code that asks
``torch.cuda.is_available()`` takes its CPU branch."""

from __future__ import annotations


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0
