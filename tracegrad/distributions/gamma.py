"""The gamma distribution, as ``torch.distributions.Gamma``; and the standard gamma draws
that Gamma, Dirichlet and Beta sample from."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..creation import from_numpy
from ..dtype_info import finfo
from ..rng import python_side_rng
from ..tensor import Tensor
from . import constraints
from .distribution import Distribution
from .utils import broadcast_all


def standard_gamma(concentration: Tensor, who: str) -> Tensor:
    """Draws of Gamma(concentration, 1), no gradient, from tracegrad's generator (in eager
    code: a compiled function refuses them, tg.TraceError). A draw of a differentiable
    concentration (``rsample``) needs the implicit reparameterization gradient, which
    tracegrad does not have: that raises."""
    if concentration.requires_grad:
        raise NotImplementedError(
            f"{who}.rsample: the gradient of a gamma draw with respect to its concentration "
            f"is not implemented in tracegrad; use sample() (no gradient) and log_prob, or "
            f"detach the concentration")
    rng = python_side_rng(None, f"{who}.sample")
    a = concentration.detach().numpy()
    draws = rng.standard_gamma(a).astype(a.dtype, copy=False)
    return from_numpy(np.maximum(draws, finfo(a.dtype).tiny))


class Gamma(Distribution):
    """Gamma with shape ``concentration`` and ``rate`` (mean ``concentration / rate``).

    >>> tg.distributions.Gamma(2.0, 1.0).log_prob(tg.tensor(1.0))
    tensor(-1.)
    """

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, concentration: Any, rate: Any, validate_args: bool | None = None):
        self.concentration, self.rate = broadcast_all(concentration, rate)
        super().__init__(self.concentration.shape, validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.concentration / self.rate

    @property
    def mode(self) -> Tensor:
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self) -> Tensor:
        return self.concentration / self.rate.pow(2)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        draws = standard_gamma(self.concentration.expand(shape), "Gamma")
        return draws / self.rate.expand(shape)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return (self.concentration.xlogy(self.rate) + (self.concentration - 1).xlogy(value)
                - self.rate * value - self.concentration.lgamma())

    def cdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError("Gamma.cdf needs the regularized incomplete gamma function "
                                  "(torch.special.gammainc), which tracegrad does not have")

    def entropy(self) -> Tensor:
        c = self.concentration
        return c - self.rate.log() + c.lgamma() + (1.0 - c) * c.digamma()
