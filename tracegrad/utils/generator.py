"""``tg.Generator``: a seedable random source of its own, like ``torch.Generator``.

>>> g = tg.Generator().manual_seed(42)
>>> loader = DataLoader(ds, batch_size=32, shuffle=True, generator=g)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..rng import generator as _global_generator


class Generator:
    """A random-number generator object for DataLoader, samplers and ``random_split``,
    independent of tracegrad's global one (``tg.manual_seed``). NumPy's PCG64 underneath,
    so draws reproduce within tracegrad, not PyTorch's exact numbers."""

    def __init__(self, device: Any = "cpu"):
        if str(device) != "cpu":
            raise ValueError(f"tg.Generator: only device='cpu' exists, got {device!r}")
        self.device = "cpu"
        self.seed()

    def manual_seed(self, seed: int) -> Generator:
        """Reseed; returns the generator (``tg.Generator().manual_seed(0)``)."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"tg.Generator.manual_seed: the seed must be an int, got "
                            f"{type(seed).__name__}")
        self._seed = int(seed) % 2**64
        self._rng = np.random.default_rng(self._seed)
        return self

    def seed(self) -> int:
        """Reseed from fresh entropy and return the new seed."""
        self.manual_seed(int(np.random.SeedSequence().entropy) % 2**63)
        return self._seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        return self._rng.bit_generator.state

    def set_state(self, state: dict) -> Generator:
        self._rng.bit_generator.state = state
        return self

    def __repr__(self) -> str:
        return f"tg.Generator(initial_seed={self._seed})"


def numpy_generator(generator: Any, who: str) -> np.random.Generator:
    """The NumPy generator behind ``generator``: a ``tg.Generator``, a NumPy Generator, or
    None for tracegrad's global one (looked up now, so ``tg.manual_seed`` takes effect)."""
    if generator is None:
        return _global_generator()
    if isinstance(generator, Generator):
        return generator._rng
    if isinstance(generator, np.random.Generator):
        return generator
    raise TypeError(f"{who}: generator must be a tg.Generator (tg.Generator().manual_seed(0)) "
                    f"or None, got {type(generator).__name__}")
