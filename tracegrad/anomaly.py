"""``tg.detect_anomaly()``: stop at the first NaN or inf, naming the op and the user's line.

The switches every op reads (`_Anomaly`: one attribute test when it is off) and the check
of one result (`_check_anomaly`) live here too; tensor.py and the optimizers call them.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .tensor import Tensor


class _ThreadAnomaly(threading.local):
    on = False  # this thread is inside detect_anomaly()
    backward_of: tuple | None = None  # (op, line) whose gradient this thread is computing


class _Switches:
    """``tg.detect_anomaly()``'s switches (one object, `_Anomaly`). ``enabled`` is True while
    some thread is inside the block: the one attribute test every op makes when it is off (of
    an instance with slots, which Python 3.11 reads faster than a class attribute). Then
    ``here.on`` says whether this thread is (a thread in the block does not turn it on for
    the others)."""

    __slots__ = ("enabled", "blocks", "lock", "here", "created")

    def __init__(self) -> None:
        self.enabled = False
        self.blocks = 0  # detect_anomaly() blocks open, in all threads
        self.lock = threading.Lock()
        self.here = _ThreadAnomaly()
        self.created: dict = {}  # id(tensor) -> (weakref, the user's line that created it)


_Anomaly = _Switches()


def _user_line() -> str:
    import traceback

    frames = [f for f in traceback.extract_stack()
              if "/tracegrad/" not in f.filename.replace("\\", "/")]
    last = frames[-1] if frames else None
    return f"{last.filename}:{last.lineno}: {last.line}" if last else "?"


def _check_anomaly(t: "Tensor", prim_name: str) -> None:
    """detect_anomaly's check of one result: raise if it holds nan/inf, else remember the
    user's line that made it (so a later backward failure can point at it)."""
    here = _Anomaly.here
    if not here.on:
        return
    arr = t._data
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = "nan" if np.isnan(arr).any() else "inf"
        if here.backward_of is not None:
            op, line = here.backward_of
            raise FloatingPointError(
                f"detect_anomaly: the gradient of {op} produced {bad} in the backward pass "
                f"(in its rule's {prim_name}); the {op} was created at {line}"
            )
        raise FloatingPointError(
            f"detect_anomaly: {prim_name} produced {bad} in the forward pass "
            f"(created at {_user_line()})"
        )
    if here.backward_of is None and t._op is not None:
        created = _Anomaly.created
        if len(created) > 100_000:
            created.clear()
        created[id(t)] = (weakref.ref(t), _user_line())


class detect_anomaly:
    """Inside this block (or decorated function), any op whose forward or backward result
    holds a NaN or inf raises ``FloatingPointError`` naming the op and the line of user code
    that created it; in-place ops (``x.mul_``, ``x[i] = v``, ``copy_``) and optimizer steps
    are checked too. It checks every result, so it is slow: use it to debug. It is per
    thread: turning it on in one thread leaves the others unchecked.

    >>> with tg.detect_anomaly():
    ...     tg.tensor([-1.0], requires_grad=True).log()   # raises: log produced nan
    """

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan

    def __enter__(self) -> "detect_anomaly":
        here = _Anomaly.here
        self._saved = here.on
        here.on = self.check_nan
        self._count(+1)
        return self

    def __exit__(self, *exc: Any) -> None:
        _Anomaly.here.on = self._saved
        self._count(-1)

    def _count(self, step: int) -> None:
        if self.check_nan:
            with _Anomaly.lock:
                _Anomaly.blocks += step
                _Anomaly.enabled = _Anomaly.blocks > 0

    def __call__(self, fn: Any) -> Any:
        import functools

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)

        return wrapper
