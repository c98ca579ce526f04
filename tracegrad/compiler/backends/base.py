"""What a backend is: a lowering table and the capabilities the passes ask about.

A backend turns an optimized graph and its memory plan into something callable. The passes
stay backend-neutral by asking it three questions instead of reading backend-specific sets:

- ``fuses(op)``: may a fused kernel hold this op (the backend can run it as one step of a
  kernel: an in-place ufunc call for NumPy, one line of a C loop body for C);
- ``writes_into(op)``: can it compute this op into a buffer it is given (``out=``);
- ``overwrites(op)``: may it write the result over an operand that dies there (the op must
  also declare the "overwrites" fact: each output element depends only on the same element
  of its inputs);
- ``one_pass(node)``: does it compute this kernel in one pass, each element's operands read
  before its result is written (a C loop), so that the result may go over an operand that a
  later step reads too (NumPy runs a kernel step by step: its first step's result would
  overwrite a value a later step still needs).

Backends register by name (`register_backend`); ``tg.compile(fn, backend=name)`` looks one up
with `get_backend`, and ``"auto"`` takes the first available one in `PREFERENCE` order.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from ...ops import PRIMITIVES


class Backend:
    """A lowering table plus what it can do. Subclasses set ``name`` and implement
    `program`; they override the capability questions where they differ."""

    name = "?"
    # the reductions a fused kernel may end in
    reductions: frozenset = frozenset({"sum", "max", "min"})

    def available(self) -> tuple[bool, str]:
        """(whether this backend can run here, why not / what it uses)."""
        return True, ""

    def fuses(self, op: str) -> bool:
        p = PRIMITIVES.get(op)
        return p is not None and p.fusible

    def writes_into(self, op: str) -> bool:
        raise NotImplementedError

    def overwrites(self, op: str) -> bool:
        if op == "kernel":
            return True
        p = PRIMITIVES.get(op)
        return p is not None and p.overwrites and self.writes_into(op)

    def one_pass(self, node: Any) -> bool:
        return False

    def program(self, graph: Any, plan: Any, check_finite: bool = False) -> Any:
        """The graph lowered: a callable ``(*input arrays) -> tuple of outputs`` with
        ``source()`` (the generated code) and ``owns(k)`` (whether output k is new memory
        on every run)."""
        raise NotImplementedError


_BACKENDS: dict[str, Callable[[], Backend]] = {}
_made: dict[str, Backend] = {}
_lock = threading.Lock()
# What "auto" tries, in order: the first available one runs.
PREFERENCE: list[str] = []


def register_backend(name: str, factory: Callable[[], Backend], *, prefer: int | None = None
                     ) -> None:
    """Make ``backend=name`` available; ``prefer``: its place in "auto"'s order (0 first)."""
    with _lock:
        _BACKENDS[name] = factory
        _made.pop(name, None)
        if name in PREFERENCE:
            PREFERENCE.remove(name)
        PREFERENCE.insert(len(PREFERENCE) if prefer is None else prefer, name)


def backend_names() -> list[str]:
    return list(_BACKENDS)


def get_backend(name: str) -> Backend:
    """The backend called ``name`` ("auto": the first available in `PREFERENCE`). Raises
    ValueError for an unknown name, RuntimeError (saying why) for one that cannot run here."""
    if name == "auto":
        for candidate in PREFERENCE:
            try:
                return get_backend(candidate)
            except RuntimeError:  # cannot run here (no C compiler): the next one
                continue
        raise RuntimeError("tg.compile: no backend is available")  # pragma: no cover
    with _lock:
        b = _made.get(name)
        if b is None:
            factory = _BACKENDS.get(name)
            if factory is None:
                raise ValueError(
                    f"tg.compile: backend {name!r} is not known; use one of "
                    f"{', '.join(repr(n) for n in ['auto', *_BACKENDS])}")
            b = _made[name] = factory()
    ok, why = b.available()
    if not ok:
        raise RuntimeError(f"tg.compile: backend {name!r} cannot run here: {why}")
    return b
