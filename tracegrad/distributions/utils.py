"""The helpers torch.distributions.utils has, in tracegrad ops: broadcasting parameters,
probabilities to and from logits, clamping them off 0 and 1, summing the rightmost dims,
and the lazy property that turns one parameterization into the other on first use."""

from __future__ import annotations

import numbers
from typing import Any

from .. import dtypes
from ..creation import tensor
from ..dtype_info import finfo
from ..nn import functional as F
from ..tensor import Tensor


def broadcast_all(*values: Any) -> tuple:
    """The values (tensors and numbers) as tensors of one broadcast shape, as
    ``torch.distributions.utils.broadcast_all``: numbers take the first tensor's dtype (the
    default float dtype if there is none).

    >>> broadcast_all(tg.zeros(2), 1.0)
    (tensor([0., 0.]), tensor([1., 1.]))
    """
    if not all(isinstance(v, (Tensor, numbers.Number)) for v in values):
        raise ValueError("broadcast_all: input arguments must all be tensors or numbers, got "
                         + ", ".join(type(v).__name__ for v in values))
    if not any(isinstance(v, Tensor) for v in values):
        dt = dtypes.default_float
        return tuple(tensor(v, dtype=dt) for v in values)
    dt = next(v.dtype for v in values if isinstance(v, Tensor))
    from ..functional import broadcast_tensors

    as_tensors = [v if isinstance(v, Tensor) else tensor(v, dtype=dt) for v in values]
    return tuple(broadcast_tensors(*as_tensors))


def clamp_probs(probs: Tensor) -> Tensor:
    """``probs`` clamped into [eps, 1 - eps] (eps of their dtype), so their logs are finite."""
    eps = finfo(probs.dtype).eps
    return probs.clamp(min=eps, max=1 - eps)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    """Logits of probabilities: ``log p`` (or ``log p - log(1 - p)`` when binary), clamped."""
    ps_clamped = clamp_probs(probs)
    if is_binary:
        return ps_clamped.log() - (-ps_clamped).log1p()
    return ps_clamped.log()


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    """Probabilities of logits: sigmoid when binary, else softmax over the last dim."""
    if is_binary:
        return logits.sigmoid()
    return F.softmax(logits, dim=-1)


def sum_rightmost(value: Tensor, dim: int) -> Tensor:
    """``value`` summed over its ``dim`` rightmost dims."""
    if dim == 0:
        return value
    return value.reshape(value.shape[:-dim] + (-1,)).sum(-1)


_sum_rightmost = sum_rightmost


class lazy_property:
    """A property computed on first use and then kept on the instance: a distribution made
    from ``probs`` computes ``logits`` only when asked (and the reverse)."""

    def __init__(self, wrapped: Any):
        self.wrapped = wrapped
        self.__doc__ = wrapped.__doc__
        self.__name__ = wrapped.__name__

    def __get__(self, instance: Any, obj_type: Any = None) -> Any:
        if instance is None:
            return self
        value = self.wrapped(instance)
        instance.__dict__[self.wrapped.__name__] = value
        return value


class BinaryParameters:
    """``probs`` and ``logits`` of a family with two outcomes per trial (Bernoulli, Binomial,
    Geometric, LogitRelaxedBernoulli): the one not given is made from the other on first
    use."""

    @lazy_property
    def logits(self) -> Tensor:
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self) -> Tensor:
        return logits_to_probs(self.logits, is_binary=True)
