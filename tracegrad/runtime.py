"""The process-wide switches PyTorch scripts set before training: the number of CPU threads
(``set_num_threads``: tracegrad's matrix products run in NumPy's BLAS, whose thread pool it
sets through threadpoolctl when that is installed) and deterministic algorithms (tracegrad's
are always deterministic: the flag is kept and reported)."""

from __future__ import annotations

import os

_state = {"threads": None, "interop": 1, "deterministic": False, "warn_only": False}


def set_num_threads(num: int) -> None:
    """The number of threads for intra-op work (NumPy's BLAS), as ``torch.set_num_threads``.

    >>> tg.set_num_threads(1); tg.get_num_threads()
    1
    """
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"set_num_threads: expects a positive integer, got {num!r}")
    _state["threads"] = num
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # (optional: without it the number is only recorded)
        return
    threadpool_limits(limits=num, user_api="blas")


def get_num_threads() -> int:
    """The number set by `set_num_threads`, else the CPUs this process may use."""
    if _state["threads"] is not None:
        return _state["threads"]
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # (not on every platform)
        return os.cpu_count() or 1


def set_num_interop_threads(num: int) -> None:
    """Recorded only: tracegrad runs ops one after another (no inter-op parallelism)."""
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"set_num_interop_threads: expects a positive integer, got {num!r}")
    _state["interop"] = num


def get_num_interop_threads() -> int:
    return _state["interop"]


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Accepted and recorded, as ``torch.use_deterministic_algorithms``: every tracegrad
    algorithm is deterministic already."""
    if not isinstance(mode, bool):
        raise TypeError(f"use_deterministic_algorithms: expects a bool, got "
                        f"{type(mode).__name__}")
    _state["deterministic"], _state["warn_only"] = mode, warn_only


def are_deterministic_algorithms_enabled() -> bool:
    return _state["deterministic"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _state["warn_only"]
