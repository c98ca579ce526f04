"""The one random generator behind rand, randn, dropout and init. Imports nothing of ours
(but `manual_seed` asks tensor.py whether this thread is traced).

``tg.manual_seed(0)`` makes every random draw after it reproducible.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Made at the first draw: NumPy's random module is not imported by ``import numpy``, and
# importing it costs about a tenth of ``import numpy`` (see `python -m bench --only imports`).
_state: dict[str, Any] = {"rng": None}


def manual_seed(seed: int) -> None:
    """Seed tracegrad's random numbers (rand, randn, dropout, init) for reproducible runs."""
    from .tensor import _eager_only  # (tensor imports this module)

    _eager_only("tg.manual_seed (a compiled program draws afresh on every call)")
    _state["rng"] = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    g = _state["rng"]
    if g is None:
        g = _state["rng"] = np.random.default_rng()
    return g
