"""``tg.nn.utils.skip_init``, as ``torch.nn.utils.skip_init``."""

from __future__ import annotations

from typing import Any

from ... import rng


def skip_init(module_cls: type, *args: Any, **kwargs: Any) -> Any:
    """``module_cls(*args, **kwargs)`` whose parameter values are not promised (you set
    them next), and which leaves tracegrad's random numbers where they were, as PyTorch's
    (which builds on the meta device and never draws).

    >>> layer = skip_init(tg.nn.Linear, 784, 10)
    """
    with rng.fork_rng():  # the draws the constructor makes are undone on the way out
        return module_cls(*args, **kwargs)


__all__ = ["skip_init"]
