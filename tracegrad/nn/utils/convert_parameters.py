"""Parameters as one flat vector and back, as ``torch.nn.utils.parameters_to_vector`` and
``vector_to_parameters`` (flat-parameter optimizers, weight averaging, hypernetworks)."""

from __future__ import annotations

from typing import Iterable

from ...tensor import Tensor, cat


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """One vector of every parameter's values, flattened and joined in order (with their
    gradients: it is made of ops)."""
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Write consecutive pieces of ``vec`` into the parameters, in order (their ``.data``:
    no gradient is recorded). Unlike PyTorch, each parameter keeps its own memory and gets
    the values, rather than becoming a view of ``vec``."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected a tg.Tensor, but got "
                        f"{type(vec).__name__}")
    start = 0
    for p in parameters:
        n = p.numel()
        piece = vec[start:start + n]
        if piece.numel() != n:
            raise RuntimeError(f"vector_to_parameters: a vector of {vec.numel()} values "
                               f"runs out at a parameter of shape {tuple(p.shape)} (it needs "
                               f"{start + n} values so far)")
        p.data = piece.reshape(p.shape).to(p.dtype)
        start += n
