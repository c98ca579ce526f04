"""The one random generator behind rand, randn, dropout and init. Imports nothing of ours.

``tg.manual_seed(0)`` makes every random draw after it reproducible.
"""

from __future__ import annotations

import numpy as np

_state = {"rng": np.random.default_rng()}


def manual_seed(seed: int) -> None:
    """Seed tracegrad's random numbers (rand, randn, dropout, init) for reproducible runs."""
    _state["rng"] = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    return _state["rng"]
