"""The base of every distribution, as ``torch.distributions.Distribution``: its batch and
event shapes, ``sample``/``rsample``/``sample_n``, ``log_prob``, ``entropy``, ``cdf``,
``icdf``, the moments, ``expand``, and the checks of parameters and values against their
constraints (``validate_args``, on by default as in PyTorch).

A family says what it needs in a few lines: its ``arg_constraints`` and ``support``, its
parameters' formulas, and ``rsample`` (differentiable draws) or ``sample``. Draws come from
tracegrad's generator (``tg.manual_seed``): PyTorch's distributions, not its numbers.
Parameters and values are checked on every call's values, in a compiled function too (a
check op of the graph, as binary_cross_entropy checks its input; see `require`).
"""

from __future__ import annotations

import math
from typing import Any

from ..arguments import require
from ..autograd import no_grad
from ..creation import full
from ..tensor import Tensor
from . import constraints
from .utils import broadcast_all


def _shape(shape: Any) -> tuple:
    return (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)


class Distribution:
    """A probability distribution over tensors of shape ``batch_shape + event_shape``.

    >>> d = tg.distributions.Normal(tg.zeros(3), 1.0)
    >>> d.sample((2,)).shape, d.log_prob(tg.zeros(3))
    ((2, 3), tensor([-0.9189, -0.9189, -0.9189]))
    """

    has_rsample = False
    has_enumerate_support = False
    _validate_args = True
    arg_constraints: dict = {}
    support: Any = None

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Check parameters and values by default (True, PyTorch's default) or not."""
        if value not in (True, False):
            raise ValueError("set_default_validate_args: expects True or False")
        Distribution._validate_args = value

    def __init__(self, batch_shape: Any = (), event_shape: Any = (),
                 validate_args: bool | None = None):
        self._batch_shape = _shape(batch_shape)
        self._event_shape = _shape(event_shape)
        if validate_args is not None:
            self._validate_args = validate_args
        if self._validate_args:
            for param, constraint in self.arg_constraints.items():
                if param not in self.__dict__ and isinstance(
                        getattr(type(self), param, None), _lazy()):
                    continue  # the other parameterization: made from the one given
                value = getattr(self, param)
                require(_satisfies(constraint, value), lambda shown, param=param, value=value,
                        constraint=constraint: (
                            f"Expected parameter {param} ({type(value).__name__} of shape "
                            f"{tuple(value.shape)}) of distribution "
                            f"{repr(self) if shown else type(self).__name__} to satisfy the "
                            f"constraint {constraint!r}, but found invalid values"
                            + (f":\n{value}" if shown else "")))

    @property
    def batch_shape(self) -> tuple:
        """The shape over which parameters are batched (independent distributions)."""
        return self._batch_shape

    @property
    def event_shape(self) -> tuple:
        """The shape of a single draw."""
        return self._event_shape

    def expand(self, batch_shape: Any, _instance: Any = None) -> Distribution:
        """The same distribution with its parameters broadcast to ``batch_shape``."""
        batch_shape = _shape(batch_shape)
        new = type(self).__new__(type(self))
        for param in self.arg_constraints:
            if param in self.__dict__:
                value = self.__dict__[param]
                shape = batch_shape + tuple(value.shape[len(self.batch_shape):])
                new.__dict__[param] = value.expand(shape)
        for key, value in self.__dict__.items():
            if key not in new.__dict__ and not isinstance(value, Tensor):
                new.__dict__[key] = value
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _extended_shape(self, sample_shape: Any = ()) -> tuple:
        return _shape(sample_shape) + self.batch_shape + self.event_shape

    def sample(self, sample_shape: Any = ()) -> Tensor:
        """A draw (or ``sample_shape`` of them) with no gradient."""
        with no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        """A draw that gradients flow through (the reparameterization trick)."""
        raise NotImplementedError(f"{type(self).__name__} has no rsample (its draws are not "
                                  f"differentiable); use sample() and log_prob (REINFORCE)")

    def sample_n(self, n: int) -> Tensor:
        return self.sample((n,))

    def log_prob(self, value: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.log_prob is not implemented")

    def cdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.cdf is not implemented")

    def icdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.icdf is not implemented")

    def entropy(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.entropy is not implemented")

    def enumerate_support(self, expand: bool = True) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no finite support to enumerate")

    def perplexity(self) -> Tensor:
        return self.entropy().exp()

    @property
    def mean(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.mean is not implemented")

    @property
    def mode(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.mode is not implemented")

    @property
    def variance(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.variance is not implemented")

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    def _nan(self, shape: tuple, like: Tensor) -> Tensor:
        return full(shape, math.nan, dtype=like.dtype)

    def _validate_sample(self, value: Any) -> None:
        """Raise unless ``value`` has a shape that broadcasts with this distribution's and
        lies in its support (as PyTorch, in eager code)."""
        if not isinstance(value, Tensor):
            raise ValueError(f"The value argument to log_prob must be a Tensor, got "
                             f"{type(value).__name__}")
        event_dim_start = len(value.shape) - len(self.event_shape)
        if tuple(value.shape[event_dim_start:]) != self.event_shape:
            raise ValueError(f"The right-most size of value must match event_shape: "
                             f"{tuple(value.shape)} vs {self.event_shape}.")
        actual = tuple(value.shape[:event_dim_start])
        expected = self.batch_shape
        for i, j in zip(reversed(actual), reversed(expected)):
            if i != 1 and j != 1 and i != j:
                raise ValueError(f"Value is not broadcastable with batch_shape+event_shape: "
                                 f"{tuple(value.shape)} vs {expected + self.event_shape}.")
        if self.support is not None:
            require(_satisfies(self.support, value), lambda shown: (
                f"Expected value argument ({type(value).__name__} of shape "
                f"{tuple(value.shape)}) to be within the support "
                f"({repr(self.support) if shown else type(self.support).__name__[1:]}) "
                f"of the distribution {repr(self) if shown else type(self).__name__}, but "
                f"found invalid values"
                + (f":\n{value}" if shown else "")))

    def __repr__(self) -> str:
        names = [k for k in self.arg_constraints if k in self.__dict__]
        shown = {k: self.__dict__[k] for k in names}
        args = ", ".join(f"{k}: {v if v.numel() == 1 else tuple(v.shape)}"
                         for k, v in shown.items())
        return f"{type(self).__name__}({args})"


def _lazy() -> type:
    from .utils import lazy_property

    return lazy_property


class LocationScale(Distribution):
    """The common part of the families with a location ``loc`` and a scale ``scale`` over the
    reals (Normal, Laplace, Cauchy, Gumbel): parameters broadcast together, reparameterized
    draws, the mode at ``loc``. A family adds its moments, draws and densities."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc: Any, scale: Any, validate_args: bool | None = None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @property
    def mode(self) -> Tensor:
        return self.loc


def _satisfies(constraint: Any, value: Tensor) -> Any:
    """Where ``value`` satisfies ``constraint`` (a bool tensor)."""
    with no_grad():
        return constraint.check(value.detach())


__all__ = ["Distribution", "LocationScale", "constraints", "require"]
