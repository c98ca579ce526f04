"""``tg.special``: PyTorch's ``torch.special`` names, over tracegrad's ops.

The special functions themselves (lgamma, digamma, polygamma, erfinv, i0, i1) are
primitives (ops/elementwise.py, SPECIAL); the rest are other names of ops tracegrad has
(``expit`` is sigmoid, ``gammaln`` is lgamma) or short composites of them (``entr``).
Integer inputs are computed in the default float dtype, as in PyTorch.

>>> tg.special.gammaln(tg.tensor([1.0, 4.0]))
tensor([0.0000, 1.7918])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import functional as F
from .functional import _floating
from .ops import PRIMITIVES as P
from .tensor import _leaf, apply, where


def _method(name: str, doc: str) -> Any:
    def fn(input: Any) -> Any:
        return getattr(_floating(input), name)()

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


lgamma = _method("lgamma", "The log of the absolute value of the gamma function.")
digamma = _method("digamma", "The derivative of lgamma (psi).")
erfinv = _method("erfinv", "The inverse of erf, on (-1, 1) (+-inf at +-1).")
i0 = _method("i0", "The modified Bessel function of the first kind, order 0.")
i1 = _method("i1", "The modified Bessel function of the first kind, order 1.")
gammaln, psi = lgamma, digamma


def polygamma(n: int, input: Any) -> Any:
    """The n-th derivative of digamma, as ``torch.polygamma(n, input)``.

    >>> tg.special.polygamma(1, tg.tensor([1.0]))  # pi^2 / 6
    tensor([1.6449])
    """
    return apply(P["polygamma"], _floating(input), n=n)


def expit(input: Any) -> Any:
    """The logistic sigmoid, ``1 / (1 + exp(-x))``."""
    return _floating(input).sigmoid()


def erf(input: Any) -> Any:
    return _floating(input).erf()


def erfc(input: Any) -> Any:
    return _floating(input).erfc()


def ndtr(input: Any) -> Any:
    """The standard normal distribution function, ``(1 + erf(x / sqrt 2)) / 2``."""
    return apply(P["normal_cdf"], _floating(input))


def entr(input: Any) -> Any:
    """Elementwise entropy: ``-x log x`` for x > 0, 0 at 0, -inf below."""
    x = _floating(input)
    return where(x < 0, _leaf(np.asarray(-np.inf, x.dtype)), -x.xlogy(x))


def logit(input: Any, eps: float | None = None) -> Any:
    return F.logit(_floating(input), eps)


def xlogy(input: Any, other: Any) -> Any:
    a, b = F._promoted(input, other, floating=True)
    return a.xlogy(b)


def log_softmax(input: Any, dim: int, *, dtype: Any = None) -> Any:
    return F.log_softmax(input if dtype is None else input.to(dtype), dim)


def softmax(input: Any, dim: int, *, dtype: Any = None) -> Any:
    return F.softmax(input if dtype is None else input.to(dtype), dim)


def logsumexp(input: Any, dim: Any, keepdim: bool = False) -> Any:
    return F.logsumexp(input, dim, keepdim)


log1p, expm1, exp2, sinc, round = F.log1p, F.expm1, F.exp2, F.sinc, F._round

__all__ = ["lgamma", "gammaln", "digamma", "psi", "polygamma", "erfinv", "i0", "i1", "expit",
           "erf", "erfc", "ndtr", "entr", "logit", "xlogy", "log_softmax", "softmax",
           "logsumexp", "log1p", "expm1", "exp2", "sinc", "round"]
