"""Random numbers, as ``torch.random``: ``tg.Generator`` (a seedable source of its own),
``tg.default_generator`` (the one behind rand, randn, dropout and init when no
``generator=`` is given) and the global functions ``manual_seed``, ``seed``,
``initial_seed``, ``get_rng_state``, ``set_rng_state`` and ``fork_rng``. Imports nothing of
ours but device.py (tensor.py, for a state tensor and for `_eager_only`, when called).

>>> g = tg.Generator().manual_seed(0)
>>> tg.randn(3, generator=g)          # the same three numbers after every manual_seed(0)

The streams are NumPy's PCG64: a seed reproduces tracegrad's numbers, not PyTorch's (the
same seed gives different numbers than ``torch.manual_seed``), and the distributions are
the same. Draws are safe from several threads (NumPy locks each generator per draw).

A compiled function draws from a generator when it runs, exactly as eager code would: the
draws made while tracing come from copies (`drawing_aside`), so tracing uses up no numbers.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any, Iterator

import numpy as np

from .device import CPU, check_device

_SEEDS = (-2**63, 2**64)  # torch's range; a negative seed wraps to seed + 2**64, as torch's
_creating = threading.Lock()  # making a generator's NumPy generator, once
_local = threading.local()  # .aside: this thread's copies while it is traced


class Generator:
    """A seedable random-number generator, as ``torch.Generator``: pass it as
    ``generator=`` to rand, randn, randint, randperm, normal, bernoulli, poisson,
    multinomial, the in-place fills (``x.normal_(generator=g)``), DataLoader, the samplers and
    ``random_split``. Independent of ``tg.manual_seed``'s global generator.

    >>> g = tg.Generator().manual_seed(42)
    >>> state = g.get_state(); a = tg.rand(2, generator=g)
    >>> g.set_state(state); bool((tg.rand(2, generator=g) == a).all())
    True
    """

    def __init__(self, device: Any = "cpu"):
        check_device(device)
        self.device = CPU
        self._rng: np.random.Generator | None = None  # made at the first draw (see _numpy)
        self._seed: int | None = None

    def manual_seed(self, seed: int) -> Generator:
        """Reseed; returns the generator (``tg.Generator().manual_seed(0)``)."""
        _not_traced("Generator.manual_seed")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"manual_seed: the seed must be an int, got {type(seed).__name__}")
        seed = int(seed)
        if not _SEEDS[0] <= seed < _SEEDS[1]:
            raise ValueError(f"manual_seed: the seed must be in [-2**63, 2**64), got {seed}")
        return self._reseed(seed % 2**64)

    def seed(self) -> int:
        """Reseed from fresh entropy (os.urandom) and return the new seed."""
        _not_traced("Generator.seed")
        return self._reseed(int.from_bytes(os.urandom(8), "little") >> 1)._seed

    def _reseed(self, seed: int) -> Generator:
        self._seed, self._rng = seed, np.random.default_rng(seed)
        return self

    def initial_seed(self) -> int:
        """The seed last given (by ``manual_seed`` or ``seed``)."""
        _not_traced("Generator.initial_seed")
        self._numpy()
        return self._seed

    def get_state(self) -> Any:
        """The state, as a uint8 tensor (as torch's; its bytes are tracegrad's own): give it
        to ``set_state`` to draw the same numbers again. ``tg.save`` stores it."""
        from .tensor import _leaf

        _not_traced("Generator.get_state")
        bits = self._numpy().bit_generator.state
        words = [self._seed, bits["state"]["state"], bits["state"]["inc"],
                 bits["has_uint32"], bits["uinteger"]]
        raw = b"".join(int(w).to_bytes(n, "little") for w, n in zip(words, _STATE_BYTES))
        return _leaf(np.frombuffer(raw, np.uint8).copy())

    def set_state(self, new_state: Any) -> Generator:
        """Restore a state ``get_state`` returned (this generator's or another's)."""
        _not_traced("Generator.set_state")
        data = getattr(new_state, "_data", new_state)
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or \
                data.shape != (sum(_STATE_BYTES),):
            what = (f"{data.dtype} of shape {data.shape}" if isinstance(data, np.ndarray)
                    else type(new_state).__name__)
            raise TypeError(f"set_state: expects the uint8 tensor of {sum(_STATE_BYTES)} bytes "
                            f"that get_state returns, got {what}")
        raw, words = data.tobytes(), []
        for n in _STATE_BYTES:
            words.append(int.from_bytes(raw[:n], "little"))
            raw = raw[n:]
        seed, state, inc, has_uint32, uinteger = words
        rng = np.random.default_rng(seed)
        rng.bit_generator.state = {"bit_generator": "PCG64",
                                   "state": {"state": state, "inc": inc},
                                   "has_uint32": has_uint32, "uinteger": uinteger}
        self._seed, self._rng = seed, rng
        return self

    def _numpy(self) -> np.random.Generator:
        """The NumPy generator underneath, seeded from entropy if never seeded."""
        if self._rng is None:
            with _creating:  # (two threads' first draws: one seed)
                if self._rng is None:
                    self._reseed(int.from_bytes(os.urandom(8), "little") >> 1)
        return self._rng

    def __repr__(self) -> str:
        return f"tg.Generator(initial_seed={self._seed})"


# initial seed (u64), PCG64's state and increment (u128 each), has_uint32, uinteger (u32)
_STATE_BYTES = (8, 16, 16, 1, 4)

default_generator = Generator()


def _not_traced(what: str) -> None:
    from .tensor import _eager_only  # (tensor imports this module)

    _eager_only(f"{what} (a compiled program would not redo it on every call: seed, save "
                f"and restore generators outside, and pass one in as generator=, as an "
                f"argument or from a closure; its draws then match eager's)")


def _checked(generator: Any, who: str) -> Generator:
    if generator is None:
        return default_generator
    if not isinstance(generator, Generator):
        raise TypeError(f"{who or 'random'}: generator must be a tg.Generator "
                        f"(tg.Generator().manual_seed(0)) or None, got "
                        f"{type(generator).__name__}")
    return generator


def numpy_rng(generator: Any = None, who: str = "") -> np.random.Generator:
    """The NumPy generator a random primitive draws from: ``generator``'s (a tg.Generator),
    or the default one for None; a copy while this thread is traced (`drawing_aside`)."""
    generator = default_generator if generator is None else _checked(generator, who)
    rng = generator._rng or generator._numpy()
    aside = getattr(_local, "aside", None)
    if aside is None:
        return rng
    if id(generator) not in aside:  # (the generator kept: its id stays its own)
        state = rng.bit_generator.state
        copy = np.random.Generator(type(rng.bit_generator)())
        copy.bit_generator.state = state
        aside[id(generator)] = (generator, copy)
    return aside[id(generator)][1]


def generator_attrs(generator: Any, who: str) -> dict:
    """A random primitive's ``generator`` attribute for ``generator=`` (checked): none for
    the default generator, so its graphs print as they always did."""
    return {} if generator is None else {"generator": _checked(generator, who)}


def python_side_rng(generator: Any, who: str) -> np.random.Generator:
    """The NumPy generator behind ``generator`` for draws made in Python (samplers,
    random_split, nn.init): a tg.Generator, a NumPy Generator, or None for the default one.
    Refused while this thread is traced: a compiled program would reuse the numbers."""
    _not_traced(f"{who} drawing random numbers in Python")
    if isinstance(generator, np.random.Generator):
        return generator
    return numpy_rng(generator, who)


@contextlib.contextmanager
def drawing_aside() -> Iterator[None]:
    """Within: this thread's random primitives draw from copies of the generators, which keep
    their state (a trace draws numbers that its compiled program then draws for real)."""
    saved = getattr(_local, "aside", None)
    _local.aside = {}
    try:
        yield
    finally:
        _local.aside = saved


def manual_seed(seed: int) -> Generator:
    """Seed tracegrad's global random numbers (rand, randn, dropout, init) for reproducible
    runs; returns ``tg.default_generator``, as torch.manual_seed."""
    _not_traced("tg.manual_seed")
    return default_generator.manual_seed(seed)


def seed() -> int:
    """Seed the global generator from fresh entropy; returns the seed."""
    return default_generator.seed()


def initial_seed() -> int:
    """The global generator's seed (from ``manual_seed`` or ``seed``; one drawn from entropy
    when neither was called: unlike PyTorch's fixed default seed, an unseeded run differs)."""
    return default_generator.initial_seed()


def get_rng_state() -> Any:
    """The global generator's state, a uint8 tensor for ``set_rng_state``."""
    return default_generator.get_state()


def set_rng_state(new_state: Any) -> None:
    """Restore the global generator's state from ``get_rng_state``: the draws after it
    repeat."""
    default_generator.set_state(new_state)


@contextlib.contextmanager
def fork_rng(devices: Any = None, enabled: bool = True,
             device_type: str = "cpu") -> Iterator[None]:
    """Within: draw from the global generator freely; on exit its state is restored, as
    ``torch.random.fork_rng`` (the CPU's: the only device).

    >>> with tg.random.fork_rng():
    ...     noise = tg.randn(3)       # the global stream continues as if never drawn from
    """
    if not enabled:
        yield
        return
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)
