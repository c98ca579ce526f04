"""Normalization functions beyond layer and group norm: ``batch_norm`` (with running
statistics), ``instance_norm``, ``rms_norm`` and ``local_response_norm``, with PyTorch's
signatures and defaults. Composites of tensor ops; the layers over them are in `layers.py`.

Running statistics are updated in place (``_assign`` under no_grad), as PyTorch does, so a
compiled training step writes them back.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import functional as F
from ..autograd import no_grad
from ..errors import ShapeError
from ..tensor import Tensor


def _per_channel(op: str, input: Tensor, **tensors: Any) -> int:
    """Check that ``input`` is (N, C, ...) and each given tensor has C elements; return C."""
    if input.ndim < 2:
        raise ShapeError(f"{op}: input must be (N, C, ...), got shape {input.shape}")
    c = input.shape[1]
    for name, t in tensors.items():
        if t is not None and t.numel() != c:
            raise ShapeError(f"{op}: {name} should have {c} elements (the channels of an input "
                             f"of shape {input.shape}), got shape {t.shape}")
    return c


def _update(running: Tensor | None, value: Tensor, momentum: Any) -> None:
    if running is not None:
        with no_grad():
            running._assign(running * (1 - momentum) + value.detach() * momentum)


def _normalize(input: Tensor, mean: Tensor, var: Tensor, weight: Tensor | None,
               bias: Tensor | None, eps: float) -> Tensor:
    shape = (1, input.shape[1]) + (1,) * (input.ndim - 2)
    out = (input - mean) / (var + eps).sqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize (N, C, ...) per channel C: by the batch's statistics when ``training`` (and
    then move ``running_mean``/``running_var`` by ``momentum`` towards the batch's mean and
    unbiased variance, in place), else by the running statistics.

    >>> F.batch_norm(tg.tensor([[1.0], [3.0]]), None, None, training=True)
    tensor([[-1.0000],
            [ 1.0000]])
    """
    c = _per_channel("batch_norm", input, running_mean=running_mean, running_var=running_var,
                     weight=weight, bias=bias)
    shape = (1, c) + (1,) * (input.ndim - 2)
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var must be given when "
                             "training=False (or pass training=True to use the batch's "
                             "statistics)")
        return _normalize(input, running_mean.reshape(shape), running_var.reshape(shape),
                          weight, bias, eps)
    n = input.numel() // c if c else 0
    if n <= 1:
        raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                         f"got input of shape {input.shape}")
    dims = (0,) + tuple(range(2, input.ndim))
    mean = F.mean(input, dims, keepdim=True)
    var = F.var(input, dims, keepdim=True, correction=0)
    _update(running_mean, mean.reshape(-1), momentum)
    _update(running_var, var.reshape(-1) * (n / (n - 1)), momentum)
    return _normalize(input, mean, var, weight, bias, eps)


def instance_norm(input: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each sample's channel of (N, C, ...) over its own spatial elements (or by
    the running statistics when ``use_input_stats`` is False); the running statistics move
    towards the instance statistics averaged over the batch, as in PyTorch."""
    c = _per_channel("instance_norm", input, running_mean=running_mean,
                     running_var=running_var, weight=weight, bias=bias)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm: running_mean and running_var must be given when "
                             "use_input_stats=False")
        shape = (1, c) + (1,) * (input.ndim - 2)
        return _normalize(input, running_mean.reshape(shape), running_var.reshape(shape),
                          weight, bias, eps)
    n = math.prod(input.shape[2:])
    if n <= 1:
        raise ValueError(f"instance_norm: expected more than 1 spatial element, got input of "
                         f"shape {input.shape}")
    dims = tuple(range(2, input.ndim))
    mean = F.mean(input, dims, keepdim=True)
    var = F.var(input, dims, keepdim=True, correction=0)
    flat = (input.shape[0], c)
    _update(running_mean, F.mean(mean.reshape(flat), 0), momentum)
    _update(running_var, F.mean(var.reshape(flat), 0) * (n / (n - 1)), momentum)
    return _normalize(input, mean, var, weight, bias, eps)


def _trailing(op: str, input: Tensor, normalized_shape: Any) -> tuple:
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(
        normalized_shape)
    if not shape or tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise ShapeError(f"{op}: normalized_shape {shape} does not match the last dimensions "
                         f"of the input {input.shape}")
    return tuple(range(input.ndim - len(shape), input.ndim))


def rms_norm(input: Tensor, normalized_shape: Any, weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """``input / sqrt(mean(input**2) + eps) * weight`` over the last dimensions;
    ``eps=None`` is the machine epsilon of the input's dtype, as in PyTorch.

    >>> F.rms_norm(tg.tensor([[3.0, 4.0]]), (2,), eps=0.0)
    tensor([[0.8485, 1.1314]])
    """
    dims = _trailing("rms_norm", input, normalized_shape)
    if eps is None:
        eps = float(np.finfo(input.dtype).eps)
    out = input * (F.mean(input * input, dims, keepdim=True) + eps).rsqrt()
    return out * weight if weight is not None else out


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """Divide each element of (N, C, ...) by ``(k + alpha * mean of the squares of the
    ``size`` neighbouring channels) ** beta``; the window is zero-padded at the ends, as in
    PyTorch (AlexNet's normalization)."""
    if input.ndim < 3:
        raise ShapeError(f"local_response_norm: expects an input (N, C, ...) of 3 or more "
                         f"dimensions, got shape {input.shape}")
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"local_response_norm: size must be a positive int, got {size!r}")
    if input.numel() == 0:
        return input
    c = input.shape[1]
    sq = F.pad(input * input, (0, 0) * (input.ndim - 2) + (size // 2, (size - 1) // 2))
    window = sq[:, 0:c]
    for i in range(1, size):
        window = window + sq[:, i:i + c]
    return input / (window * (alpha / size) + k) ** beta


__all__ = ["batch_norm", "instance_norm", "rms_norm", "local_response_norm"]
