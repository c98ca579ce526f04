"""Trees of values: the (nested) tuples, lists, named tuples and dicts that the function
transforms take and return, as ``torch.utils._pytree`` and JAX see them. A *leaf* is anything
else (a tensor, a number, None).

>>> leaves, rebuild = tree_flatten({"w": w, "b": (b1, b2)})    # [w, b1, b2]
>>> rebuild([2 * w, b1, b2])                                  # {"w": 2w, "b": (b1, b2)}

Imports nothing of ours: the backward engine (``autograd``) and the transforms both use it.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["tree_flatten", "tree_map"]


def tree_flatten(obj: Any) -> tuple[list, Callable[[list], Any]]:
    """The leaves of ``obj`` in order, and a function that rebuilds the same structure from
    as many new leaves."""
    if isinstance(obj, (tuple, list)):
        parts = [tree_flatten(o) for o in obj]
        sizes = [len(p[0]) for p in parts]

        def rebuild(leaves: list) -> Any:
            out, k = [], 0
            for (_, rb), n in zip(parts, sizes):
                out.append(rb(leaves[k:k + n]))
                k += n
            if isinstance(obj, list):
                return out
            return type(obj)(*out) if hasattr(obj, "_fields") else type(obj)(out)

        return [x for p in parts for x in p[0]], rebuild
    if isinstance(obj, dict):
        keys = list(obj)
        inner, rb = tree_flatten([obj[k] for k in keys])
        return inner, lambda leaves: dict(zip(keys, rb(leaves)))
    return [obj], lambda leaves: leaves[0]


def tree_map(fn: Callable[[Any], Any], obj: Any) -> Any:
    """``obj`` with ``fn`` applied to every leaf."""
    leaves, rebuild = tree_flatten(obj)
    return rebuild([fn(x) for x in leaves])
