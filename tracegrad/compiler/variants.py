"""The variant cache that both compilers keep (tensor programs in api.py, Value programs in
values_api.py): variants by cache key, newest first, at most `MAX_KEPT` in all (the oldest
goes), and one warning once a function has compiled more than `MAX_VARIANTS` times."""

from __future__ import annotations

import warnings
from typing import Any

MAX_VARIANTS = 8  # compiles after which a warning says why the function keeps recompiling
MAX_KEPT = 32  # variants kept per compiled function (the oldest is dropped)


def keep(variants: dict, order: list, key: Any, variant: Any) -> None:
    """Put ``variant`` first under ``key``; drop the oldest variant beyond `MAX_KEPT`, so
    memory stays bounded."""
    variants.setdefault(key, []).insert(0, variant)
    order.append((key, variant))
    if len(order) > MAX_KEPT:
        old_key, old = order.pop(0)
        variants[old_key].remove(old)
        if not variants[old_key]:
            del variants[old_key]


def warn_recompiling(fn: Any, misses: int, reason: str, advice: str) -> None:
    """The warning for a function compiled more than `MAX_VARIANTS` times."""
    warnings.warn(
        f"tg.compile: {getattr(fn, '__name__', 'the function')} has been compiled "
        f"{misses} times (last reason: {reason}). {advice}", stacklevel=4)
