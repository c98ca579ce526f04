"""Weight normalisation (Salimans & Kingma) and spectral normalisation (Miyato et al.), as
``torch.nn.utils.weight_norm`` / ``spectral_norm`` and their ``remove_`` functions.

The math (``_weight_norm``, ``_norm_except_dim``, ``_as_matrix``, ``_power_iteration``)
is shared with the newer parametrizations (parametrizations.py). Here, as in PyTorch's older
functions, the module keeps ``weight_g``/``weight_v`` (or ``weight_orig`` and the buffers
``weight_u``/``weight_v``) and ``module.weight`` is computed from them; the one difference
is that ours is computed at each access (PyTorch's is set by a forward pre-hook, so it is
stale between an optimizer step and the next forward).

>>> layer = tg.nn.utils.weight_norm(tg.nn.Linear(20, 40))
>>> sorted(layer.state_dict())
['bias', 'weight_g', 'weight_v']
"""

from __future__ import annotations

from ... import functional as F
from ...autograd import no_grad
from ...creation import randn
from ...tensor import Tensor
from ..module import Module, Parameter
from .parametrize import computed_attribute, remove_computed_attribute


def _norm_except_dim(v: Tensor, dim: int | None) -> Tensor:
    """The 2-norm of ``v`` over every dimension but ``dim``, shaped to broadcast against
    ``v``; over everything (a 0-d tensor) when ``dim`` is None or -1 (PyTorch's rule)."""
    if dim is None or dim == -1:
        return (v * v).sum().sqrt()
    dim = dim % v.ndim
    others = tuple(d for d in range(v.ndim) if d != dim)
    return (v * v).sum(dim=others, keepdim=True).sqrt()


def _weight_norm(v: Tensor, g: Tensor, dim: int | None) -> Tensor:
    return v * (g / _norm_except_dim(v, dim))


def _as_matrix(weight: Tensor, dim: int) -> Tensor:
    """``weight`` as a matrix with dimension ``dim`` as its rows."""
    if dim != 0:
        weight = weight.permute(dim, *(d for d in range(weight.ndim) if d != dim))
    return weight.reshape(weight.shape[0], -1)


def _power_iteration(w: Tensor, u: Tensor, v: Tensor, n: int, eps: float,
                     v_first: bool) -> None:
    """``n`` steps of the power method for the top singular vectors of ``w``, written into
    ``u`` and ``v`` in place (v then u in the older spectral_norm, u then v in the
    parametrization, as in PyTorch)."""
    with no_grad():
        for _ in range(n):
            if v_first:
                v.copy_(F.normalize(w.T @ u, dim=0, eps=eps))
            u.copy_(F.normalize(w @ v, dim=0, eps=eps))
            if not v_first:
                v.copy_(F.normalize(w.T @ u, dim=0, eps=eps))


def _sigma(w: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """The estimate ``u . (w v)`` of the largest singular value; u and v are constants (a
    gradient flows through ``w`` only)."""
    return (u.detach() * (w @ v.detach())).sum()


def _check_parameter(module: Module, name: str, who: str) -> Parameter:
    param = module._parameters.get(name)
    if not isinstance(param, Parameter):
        raise ValueError(f"{who}: {type(module).__name__} has no parameter {name!r}")
    return param


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparametrize ``module.<name>`` as ``g * v / ||v||`` (the norm over every dimension
    but ``dim``; over all of them for ``dim=None``), training ``<name>_g`` and ``<name>_v``.

    >>> conv = tg.nn.utils.weight_norm(tg.nn.Conv2d(3, 8, 3))
    """
    weight = _check_parameter(module, name, "weight_norm")
    if getattr(type(module), "_computed", {}).get(name):
        raise RuntimeError(f"weight_norm: {name!r} of {type(module).__name__} is already "
                           f"normalised")
    del module._parameters[name]
    with no_grad():
        module.register_parameter(f"{name}_g", Parameter(_norm_except_dim(weight, dim)))
        module.register_parameter(f"{name}_v", Parameter(weight.detach().clone()))
    computed_attribute(module, name, lambda m: _weight_norm(
        getattr(m, f"{name}_v"), getattr(m, f"{name}_g"), dim))
    return module


def remove_weight_norm(module: Module, name: str = "weight") -> Module:
    """Undo `weight_norm`: ``module.<name>`` becomes a plain parameter with its current
    value."""
    if f"{name}_g" not in module._parameters or not getattr(type(module), "_computed", {}
                                                             ).get(name):
        raise ValueError(f"remove_weight_norm: weight_norm of {name!r} not found in "
                         f"{type(module).__name__}")
    return _freeze(module, name, (f"{name}_g", f"{name}_v"))


def _freeze(module: Module, name: str, gone: tuple[str, ...]) -> Module:
    with no_grad():
        value = getattr(module, name).detach().clone()
    remove_computed_attribute(module, name)
    for k in gone:
        delattr(module, k)
    module.register_parameter(name, Parameter(value))
    return module


def _default_dim(module: Module) -> int:
    """ConvTranspose weights are (in, out, ...): their output dimension is 1."""
    return 1 if "ConvTranspose" in type(module).__name__ else 0


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """Divide ``module.<name>`` by its largest singular value, estimated by
    ``n_power_iterations`` steps of the power method at each forward in training mode
    (buffers ``<name>_u``, ``<name>_v``); the trained parameter is ``<name>_orig``.

    >>> layer = tg.nn.utils.spectral_norm(tg.nn.Linear(20, 40))
    """
    weight = _check_parameter(module, name, "spectral_norm")
    if n_power_iterations <= 0:
        raise ValueError(f"spectral_norm: n_power_iterations must be positive, got "
                         f"{n_power_iterations}")
    dim = _default_dim(module) if dim is None else dim % weight.ndim
    with no_grad():
        h, w = _as_matrix(weight, dim).shape
        u = F.normalize(_randn_like(weight, h), dim=0, eps=eps)
        v = F.normalize(_randn_like(weight, w), dim=0, eps=eps)
    del module._parameters[name]
    module.register_parameter(f"{name}_orig", weight)
    module.register_buffer(f"{name}_u", u)
    module.register_buffer(f"{name}_v", v)

    def matrix(m: Module) -> Tensor:
        return _as_matrix(getattr(m, f"{name}_orig"), dim)

    def get(m: Module) -> Tensor:
        return getattr(m, f"{name}_orig") / _sigma(matrix(m), getattr(m, f"{name}_u"),
                                                   getattr(m, f"{name}_v"))

    def iterate(m: Module) -> None:
        if m.training:
            _power_iteration(matrix(m), getattr(m, f"{name}_u"), getattr(m, f"{name}_v"),
                             n_power_iterations, eps, v_first=True)

    computed_attribute(module, name, get, before_forward=iterate)
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Undo `spectral_norm`: ``module.<name>`` becomes a plain parameter holding the
    normalised weight (with the current u and v, no further iteration)."""
    if f"{name}_orig" not in module._parameters or not getattr(type(module), "_computed",
                                                                {}).get(name):
        raise ValueError(f"remove_spectral_norm: spectral_norm of {name!r} not found in "
                         f"{type(module).__name__}")
    return _freeze(module, name, (f"{name}_orig", f"{name}_u", f"{name}_v"))


def _randn_like(weight: Tensor, n: int) -> Tensor:
    """n standard normal numbers in ``weight``'s dtype (from tg.manual_seed's generator)."""
    return randn(n, dtype=weight.dtype)


__all__ = ["remove_spectral_norm", "remove_weight_norm", "spectral_norm", "weight_norm"]
