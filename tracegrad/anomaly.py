"""``tg.detect_anomaly()``: stop at the first NaN or inf, naming the op and the user's line."""

from __future__ import annotations

from typing import Any

from .tensor import _Anomaly


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
