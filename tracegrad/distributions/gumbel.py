"""The Gumbel distribution, as ``torch.distributions.Gumbel``."""

from __future__ import annotations

import math
from typing import Any

from ..creation import rand
from ..dtype_info import finfo
from ..tensor import Tensor
from .distribution import LocationScale

_EULER = 0.57721566490153286060


class Gumbel(LocationScale):
    """Gumbel (type-I extreme value) with location ``loc`` and scale ``scale``.

    >>> tg.distributions.Gumbel(0.0, 1.0).log_prob(tg.tensor(0.0))
    tensor(-1.)
    """


    @property
    def mean(self) -> Tensor:
        return self.loc + self.scale * _EULER

    @property
    def stddev(self) -> Tensor:
        return (math.pi / math.sqrt(6)) * self.scale

    @property
    def variance(self) -> Tensor:
        return self.stddev.pow(2)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        info = finfo(self.loc.dtype)
        u = rand(*shape, dtype=self.loc.dtype).clamp(min=info.tiny, max=1 - info.eps)
        return self.loc - self.scale * (-u.log()).log()

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        return -(self.scale.log() + z + (-z).exp())

    def cdf(self, value: Tensor) -> Tensor:
        return (-(-(value - self.loc) / self.scale).exp()).exp()

    def icdf(self, value: Tensor) -> Tensor:
        return self.loc - self.scale * (-value.log()).log()

    def entropy(self) -> Tensor:
        return self.scale.log() + (1 + _EULER)
