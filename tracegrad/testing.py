"""``tg.testing.assert_close``: PyTorch's comparison for tests, with its default tolerances
by dtype (float32: rtol 1.3e-6, atol 1e-5; float64: 1e-7 and 1e-7; integers and bools
exactly), on tensors, numbers, NumPy arrays and sequences or mappings of them."""

from __future__ import annotations

from typing import Any

import numpy as np

from .tensor import Tensor

# dtype -> (rtol, atol), PyTorch's defaults
_TOLERANCES = {np.dtype(np.float16): (1e-3, 1e-5), np.dtype(np.float32): (1.3e-6, 1e-5),
               np.dtype(np.float64): (1e-7, 1e-7)}


def _array(x: Any) -> np.ndarray:
    if isinstance(x, Tensor):
        return np.asarray(x.detach().numpy())
    return np.asarray(x)


def assert_close(actual: Any, expected: Any, *, allow_subclasses: bool = True,
                 rtol: float | None = None, atol: float | None = None,
                 equal_nan: bool = False, check_device: bool = True, check_dtype: bool = True,
                 check_layout: bool = True, check_stride: bool = False,
                 msg: Any = None) -> None:
    """Raise AssertionError unless ``|actual - expected| <= atol + rtol * |expected|``
    everywhere (shapes and, with ``check_dtype``, dtypes equal), as
    ``torch.testing.assert_close``.

    >>> tg.testing.assert_close(tg.tensor([1.0]), tg.tensor([1.0 + 1e-7]))
    """
    if (rtol is None) != (atol is None):
        raise ValueError(f"Both 'rtol' and 'atol' must be either specified or omitted, but "
                         f"got no {'rtol' if rtol is None else 'atol'}.")
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or set(actual) != set(expected):
            raise AssertionError(f"The keys of the mappings do not match: "
                                 f"{sorted(map(str, actual))} != {sorted(map(str, expected))}")
        for k in expected:
            assert_close(actual[k], expected[k], rtol=rtol, atol=atol, equal_nan=equal_nan,
                         check_dtype=check_dtype, msg=msg)
        return
    if isinstance(expected, (list, tuple)) and not isinstance(actual, (Tensor, np.ndarray)):
        if len(actual) != len(expected):
            raise AssertionError(f"The length of the sequences mismatch: {len(actual)} != "
                                 f"{len(expected)}")
        for a, e in zip(actual, expected):
            assert_close(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan,
                         check_dtype=check_dtype, msg=msg)
        return
    if isinstance(expected, Tensor) != isinstance(actual, Tensor) and not (
            isinstance(expected, (int, float, bool)) and isinstance(actual, (int, float, bool))):
        raise AssertionError(f"Comparing a {type(actual).__name__} with a "
                             f"{type(expected).__name__}: give both as tensors")
    a, e = _array(actual), _array(expected)
    if a.shape != e.shape:
        raise AssertionError(msg or f"The values for attribute 'shape' do not match: "
                                    f"{a.shape} != {e.shape}.")
    if check_dtype and isinstance(expected, Tensor) and a.dtype != e.dtype:
        raise AssertionError(msg or f"The values for attribute 'dtype' do not match: "
                                    f"{a.dtype} != {e.dtype}.")
    if rtol is None:
        dtype = np.promote_types(a.dtype, e.dtype)
        rtol, atol = _TOLERANCES.get(dtype, (0.0, 0.0))
    if a.dtype.kind in "biu" and e.dtype.kind in "biu":
        ok = a == e
    else:
        a64, e64 = a.astype(np.float64), e.astype(np.float64)
        with np.errstate(invalid="ignore"):
            ok = np.abs(a64 - e64) <= atol + rtol * np.abs(e64)
            ok |= a64 == e64  # (infinities of one sign)
        if equal_nan:
            ok |= np.isnan(a64) & np.isnan(e64)
    if not np.all(ok):
        bad = int(np.size(ok) - np.count_nonzero(ok))
        if msg is not None:
            raise AssertionError(msg)
        with np.errstate(invalid="ignore"):
            diff = np.where(ok, 0.0, np.abs(a.astype(np.float64) - e.astype(np.float64)))
        diff = np.where(np.isnan(diff), np.inf, diff)  # (a nan is as far as it gets)
        worst = tuple(int(i) for i in np.unravel_index(np.argmax(diff), np.shape(ok)))
        raise AssertionError(
            f"Tensor-likes are not close!\n\nMismatched elements: {bad} / {np.size(ok)} "
            f"({100 * bad / max(np.size(ok), 1):.1f}%)\nGreatest absolute difference: "
            f"{diff.max()} at index {worst} (up to {atol} allowed)\n"
            f"(actual {a.ravel()[:6]}, expected {e.ravel()[:6]})")


def assert_allclose(actual: Any, expected: Any, rtol: float | None = None,
                    atol: float | None = None, equal_nan: bool = True, msg: str = "") -> None:
    """The deprecated ``torch.testing.assert_allclose`` (no dtype check)."""
    assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=equal_nan,
                 check_dtype=False, msg=msg or None)


__all__ = ["assert_close", "assert_allclose"]
