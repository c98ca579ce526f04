"""``torch.utils.checkpoint``: ``checkpoint(fn, *args)`` and ``checkpoint_sequential``, so
models written with activation checkpointing run unchanged. PyTorch saves memory by
recomputing the forward during backward; tracegrad runs the function once and keeps its
graph, so the values and gradients are the same (its own memory planning is in the
compiler, docs/compiler.md)."""

from __future__ import annotations

from typing import Any, Callable


def checkpoint(function: Callable, *args: Any, use_reentrant: bool | None = None,
               context_fn: Any = None, determinism_check: str = "default",
               debug: bool = False, preserve_rng_state: bool = True, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, with PyTorch's signature.

    >>> checkpoint(lambda x: x * 2, tg.ones(2), use_reentrant=False)
    tensor([2., 2.])
    """
    return function(*args, **kwargs)


def checkpoint_sequential(functions: Any, segments: int, input: Any,
                          use_reentrant: bool | None = None, **kwargs: Any) -> Any:
    """The modules of ``functions`` (a Sequential or a list) applied in turn to ``input``."""
    if isinstance(segments, bool) or not isinstance(segments, int) or segments < 1:
        raise ValueError(f"checkpoint_sequential: segments must be a positive int, got "
                         f"{segments!r}")
    modules = list(functions.children()) if hasattr(functions, "children") else list(functions)
    for module in modules:
        input = module(input)
    return input


__all__ = ["checkpoint", "checkpoint_sequential"]
