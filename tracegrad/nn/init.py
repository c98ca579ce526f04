"""Weight initialisations, in place, as ``torch.nn.init`` (random numbers from ``generator=``,
else tg.manual_seed's global generator; drawn in Python, so not inside a compiled function).

>>> w = tg.nn.Parameter(tg.zeros(16, 8))
>>> tg.nn.init.kaiming_uniform_(w, a=5 ** 0.5)   # what Linear does by default
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from ..rng import python_side_rng
from ..tensor import Tensor, _bump


def _fill(t: Tensor, values: np.ndarray) -> Tensor:
    t._data[...] = values.astype(t._data.dtype, copy=False)
    _bump(t)
    return t


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The scale that keeps activations' variance steady through ``nonlinearity``."""
    linear = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid"}
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(t: Tensor) -> tuple[int, int]:
    if t.ndim < 2:
        raise ValueError(
            f"fan in/out needs a tensor with at least 2 dimensions, got shape {t.shape}"
        )
    receptive = math.prod(t.shape[2:]) if t.ndim > 2 else 1
    return t.shape[1] * receptive, t.shape[0] * receptive


def _fan(t: Tensor, mode: str) -> int:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Tensor:
    return _fill(t, python_side_rng(generator, "nn.init.uniform_").uniform(a, b, t.shape))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Tensor:
    return _fill(t, python_side_rng(generator, "nn.init.normal_").normal(mean, std, t.shape))


def constant_(t: Tensor, val: float) -> Tensor:
    return _fill(t, np.full(t.shape, val))


def zeros_(t: Tensor) -> Tensor:
    return constant_(t, 0.0)


def ones_(t: Tensor) -> Tensor:
    return constant_(t, 1.0)


def xavier_uniform_(t: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -bound, bound, generator)


def xavier_normal_(t: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _no_elements(t: Tensor) -> bool:
    """PyTorch's kaiming inits leave a zero-element tensor as it is, with a warning (its
    fan can be 0: nn.Linear(0, 3) is legal)."""
    if 0 in t.shape:
        import warnings

        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return True
    return False


def kaiming_uniform_(t: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator: Any = None) -> Tensor:
    if _no_elements(t):
        return t
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(t, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(t, -bound, bound, generator)


def kaiming_normal_(t: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator: Any = None) -> Tensor:
    if _no_elements(t):
        return t
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(t, mode))
    return normal_(t, 0.0, std, generator)


def _default_bias_bound(weight: Any) -> float:
    fan_in, _ = _calculate_fan_in_and_fan_out(weight)
    return 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0


def default_reset(weight: Any, bias: Any) -> None:
    """PyTorch's default for Linear and Conv layers: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for
    the weight (kaiming_uniform_ with a=sqrt(5)) and for the bias alike."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        b = _default_bias_bound(weight)
        uniform_(bias, -b, b)


def trunc_normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator: Any = None) -> Tensor:
    """Normal(mean, std) values conditioned on ``a <= x <= b`` (absolute bounds, as in
    torch). Drawn by rejection: out-of-range values are drawn again.

    >>> tg.nn.init.trunc_normal_(w, std=0.02)    # ViT/GPT style
    """
    if not a < b:
        raise ValueError(f"trunc_normal_: needs a < b, got a={a}, b={b}")
    g = python_side_rng(generator, "nn.init.trunc_normal_")
    # P(a <= X <= b): how many draws on average give one accepted value.
    accept = 0.5 * (math.erf((b - mean) / (std * math.sqrt(2)))
                    - math.erf((a - mean) / (std * math.sqrt(2))))
    if accept < 1e-6:
        raise ValueError(
            f"trunc_normal_: [a, b] = [{a}, {b}] holds a fraction {accept:.1e} of "
            f"Normal({mean}, {std}); put the bounds nearer the mean")
    out = g.normal(mean, std, t.shape)
    bad = (out < a) | (out > b)
    while bad.any():
        out[bad] = g.normal(mean, std, int(bad.sum()))
        bad = (out < a) | (out > b)
    return _fill(t, out)


def orthogonal_(t: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """A (semi-)orthogonal matrix, of the tensor flattened to (shape[0], rest), as in torch:
    the Q of a QR decomposition of a Gaussian matrix, signs fixed by R's diagonal.

    >>> tg.nn.init.orthogonal_(w)    # w @ w.T == I when w has no more rows than columns
    """
    if t.ndim < 2:
        raise ValueError(f"orthogonal_: needs a tensor with at least 2 dimensions, got shape "
                         f"{t.shape}")
    if t.numel() == 0:
        return t
    rows = t.shape[0]
    cols = t.numel() // rows
    flat = python_side_rng(generator, "nn.init.orthogonal_").normal(0.0, 1.0, (rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(t, gain * q.reshape(t.shape))


def eye_(t: Tensor) -> Tensor:
    """The identity matrix, in a 2-d tensor (ones on the diagonal of a rectangle too)."""
    if t.ndim != 2:
        raise ValueError(f"eye_: needs a 2-d tensor, got shape {t.shape}")
    return _fill(t, np.eye(*t.shape))


def dirac_(t: Tensor, groups: int = 1) -> Tensor:
    """A convolution weight (3-, 4- or 5-d) that passes its input through: in each of
    ``groups`` groups, output channel d copies input channel d at the kernel's centre."""
    if t.ndim not in (3, 4, 5):
        raise ValueError(f"dirac_: needs a 3-, 4- or 5-d tensor, got shape {t.shape}")
    if t.shape[0] % groups:
        raise ValueError(f"dirac_: dim 0 ({t.shape[0]}) must be divisible by groups "
                         f"({groups})")
    per_group = t.shape[0] // groups
    out = np.zeros(t.shape)
    centre = tuple(k // 2 for k in t.shape[2:])
    for g in range(groups):
        for d in range(min(per_group, t.shape[1])):
            out[(g * per_group + d, d) + centre] = 1
    return _fill(t, out)


def sparse_(t: Tensor, sparsity: float, std: float = 0.01, generator: Any = None) -> Tensor:
    """Normal(0, std) values with a fraction ``sparsity`` of each column set to zero
    (``ceil(sparsity * rows)`` rows chosen at random per column), in a 2-d tensor."""
    if t.ndim != 2:
        raise ValueError(f"sparse_: needs a 2-d tensor, got shape {t.shape}")
    rows, cols = t.shape
    g = python_side_rng(generator, "nn.init.sparse_")
    out = g.normal(0.0, std, (rows, cols))
    zeros = math.ceil(sparsity * rows)
    for c in range(cols):
        out[g.permutation(rows)[:zeros], c] = 0
    return _fill(t, out)


def _deprecated(fn: Any) -> Any:
    """torch's old name without the underscore, which warns and calls the new one."""
    def old(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(f"nn.init.{old.__name__} is deprecated in favor of "
                      f"nn.init.{fn.__name__}", FutureWarning, stacklevel=2)
        return fn(*args, **kwargs)

    old.__name__ = old.__qualname__ = fn.__name__.rstrip("_")
    old.__doc__ = f"Deprecated: use ``{fn.__name__}``."
    return old


uniform, normal, constant, eye, dirac, xavier_uniform, xavier_normal, kaiming_uniform, \
    kaiming_normal, orthogonal, sparse = map(_deprecated, (
        uniform_, normal_, constant_, eye_, dirac_, xavier_uniform_, xavier_normal_,
        kaiming_uniform_, kaiming_normal_, orthogonal_, sparse_))
