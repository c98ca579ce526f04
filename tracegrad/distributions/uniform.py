"""The continuous uniform distribution on ``[low, high)``, as
``torch.distributions.Uniform``."""

from __future__ import annotations

import math
from typing import Any

from ..creation import rand
from ..tensor import Tensor
from . import constraints
from .distribution import Distribution, require
from .utils import broadcast_all


class Uniform(Distribution):
    """Uniform on ``[low, high)`` (broadcast together).

    >>> tg.distributions.Uniform(0.0, 4.0).log_prob(tg.tensor(1.0))
    tensor(-1.3863)
    """

    arg_constraints = {"low": constraints.real, "high": constraints.real}
    has_rsample = True

    def __init__(self, low: Any, high: Any, validate_args: bool | None = None):
        self.low, self.high = broadcast_all(low, high)
        super().__init__(self.low.shape, validate_args=validate_args)
        if self._validate_args:
            require(self.low.detach() < self.high.detach(), lambda shown: (
                "Uniform: expects low < high everywhere"
                + (f", got low={self.low} and high={self.high}" if shown else "")))

    @property
    def support(self) -> Any:
        return constraints.interval(self.low, self.high)

    @property
    def mean(self) -> Tensor:
        return (self.high + self.low) / 2

    @property
    def mode(self) -> Tensor:
        return math.nan * self.high  # (connected to high, as PyTorch's)

    @property
    def stddev(self) -> Tensor:
        return (self.high - self.low) / 12 ** 0.5

    @property
    def variance(self) -> Tensor:
        return (self.high - self.low).pow(2) / 12

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        u = rand(*shape, dtype=self.low.dtype)
        return self.low + u * (self.high - self.low)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        lb = self.low.le(value).type_as(self.low)
        ub = self.high.gt(value).type_as(self.low)
        return (lb * ub).log() - (self.high - self.low).log()

    def cdf(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        result = (value - self.low) / (self.high - self.low)
        return result.clamp(min=0, max=1)

    def icdf(self, value: Tensor) -> Tensor:
        return value * (self.high - self.low) + self.low

    def entropy(self) -> Tensor:
        return (self.high - self.low).log()
