"""``tg.nn.utils.parametrizations``, as ``torch.nn.utils.parametrizations``: weight_norm and
spectral_norm as parametrizations (parametrize.py), with PyTorch's state dict keys
(``parametrizations.weight.original0`` / ``original1`` for weight norm's g and v,
``parametrizations.weight.original`` and ``...weight.0._u`` / ``._v`` for spectral norm).

>>> layer = parametrizations.weight_norm(tg.nn.Linear(20, 40))
>>> layer.parametrizations.weight.original0.shape    # g
(40, 1)
"""

from __future__ import annotations

from ... import functional as F
from ...autograd import no_grad
from ...tensor import Tensor
from ..module import Module
from .parametrize import register_parametrization
from .weight_norm import (
    _as_matrix,
    _default_dim,
    _norm_except_dim,
    _power_iteration,
    _randn_like,
    _sigma,
    _weight_norm,
)


class _WeightNorm(Module):
    def __init__(self, dim: int | None = 0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight: Tensor) -> tuple[Tensor, Tensor]:
        return _norm_except_dim(weight, self.dim), weight


class _SpectralNorm(Module):
    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12):
        super().__init__()
        if n_power_iterations <= 0:
            raise ValueError(f"spectral_norm: n_power_iterations must be positive, got "
                             f"{n_power_iterations}")
        self.dim = dim % weight.ndim if weight.ndim else 0
        self.eps, self.n_power_iterations = eps, n_power_iterations
        if weight.ndim > 1:
            with no_grad():
                w = _as_matrix(weight, self.dim)
                self.register_buffer("_u", F.normalize(_randn_like(weight, w.shape[0]),
                                                       dim=0, eps=eps))
                self.register_buffer("_v", F.normalize(_randn_like(weight, w.shape[1]),
                                                       dim=0, eps=eps))
                _power_iteration(w, self._u, self._v, 15, eps, v_first=False)

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return F.normalize(weight, dim=0, eps=self.eps)
        w = _as_matrix(weight, self.dim)
        if self.training:
            _power_iteration(w.detach(), self._u, self._v, self.n_power_iterations,
                             self.eps, v_first=False)
        return weight / _sigma(w, self._u, self._v)

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """``module.<name> = g * v / ||v||`` as a parametrization (g: ``original0``, v:
    ``original1``); the norm over every dimension but ``dim`` (all for ``dim=None``)."""
    return register_parametrization(module, name, _WeightNorm(dim), unsafe=True)


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """``module.<name>`` divided by its largest singular value, estimated by the power
    method (``n_power_iterations`` steps per access in training mode; 15 at the start)."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"spectral_norm: {type(module).__name__} has no tensor {name!r}")
    dim = _default_dim(module) if dim is None else dim
    return register_parametrization(
        module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))


__all__ = ["spectral_norm", "weight_norm"]
