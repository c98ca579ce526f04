"""Probability distributions, as ``torch.distributions``: parameters that gradients flow
into, ``log_prob``, ``entropy``, ``sample``/``rsample``, the moments, constraints, and
``kl_divergence`` with ``register_kl``. Draws come from tracegrad's generator (its
distributions, not PyTorch's stream of numbers).

>>> from tracegrad.distributions import Categorical
>>> m = Categorical(logits=tg.zeros(4))
>>> m.log_prob(tg.tensor(1)), m.entropy()
(tensor(-1.3863), tensor(1.3863))
"""

from . import constraints
from .bernoulli import Bernoulli
from .beta import Beta
from .categorical import Categorical
from .dirichlet import Dirichlet
from .distribution import Distribution
from .exponential import Exponential
from .gamma import Gamma
from .independent import Independent
from .kl import kl_divergence, register_kl
from .laplace import Laplace
from .multivariate_normal import MultivariateNormal
from .normal import Normal
from .one_hot_categorical import OneHotCategorical
from .poisson import Poisson
from .uniform import Uniform

__all__ = ["Bernoulli", "Beta", "Categorical", "Dirichlet", "Distribution", "Exponential",
           "Gamma", "Independent", "Laplace", "MultivariateNormal", "Normal",
           "OneHotCategorical", "Poisson", "Uniform", "constraints", "kl", "kl_divergence",
           "register_kl"]
