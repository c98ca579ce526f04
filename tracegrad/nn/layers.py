"""The layers people expect, each a thin Module over a function in `tracegrad.functional`."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .. import dtypes
from .. import functional as F
from ..autograd import no_grad
from ..creation import zeros
from ..device import check_device
from ..errors import ShapeError
from ..tensor import Tensor
from . import init
from .activation import prelu, rrelu, softmax2d
from .conv import _ConvNd
from .distance import bilinear, pairwise_distance
from .dropout import alpha_dropout, dropout1d, dropout2d, dropout3d, feature_alpha_dropout
from .module import Module, Parameter
from .normalization import batch_norm, instance_norm, local_response_norm, rms_norm


def _param(*shape: int) -> Parameter:
    return Parameter(np.empty(shape, dtype=dtypes.default_float))


class Linear(Module):
    """``y = x @ weight.T + bias`` with ``weight`` of shape (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = _param(out_features, in_features)
        self.bias = _param(out_features) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_reset(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1:] != (self.in_features,):
            raise ShapeError(
                f"Linear({self.in_features}, {self.out_features}): input of shape {x.shape} "
                f"has {x.shape[-1] if x.ndim else 'no'} features in its last dimension, "
                f"expected {self.in_features}"
            )
        params = self._parameters  # (self.weight would go through Module.__getattr__)
        return F.linear(x, params["weight"], params.get("bias"))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Conv2d(_ConvNd):
    """2-d convolution over (N, C_in, H, W) inputs; weight (C_out, C_in/groups, kh, kw).

    Arguments as PyTorch's (``padding`` may be ``"same"`` or ``"valid"``; ``groups`` for
    grouped and depthwise convolutions); the shared code is `conv._ConvNd`.
    """

    _nd = 2
    _fn = staticmethod(F.conv2d)


class Embedding(Module):
    """A lookup table: row ``i`` of ``weight`` for index ``i``; weight ~ N(0, 1).

    ``padding_idx``: that row starts as zeros and gets no gradient (so it stays as it is),
    as in PyTorch."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, sparse: bool = False,
                 _weight: Tensor | None = None, _freeze: bool = False,
                 device: Any = None, dtype: Any = None):
        super().__init__()
        check_device(device)
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise NotImplementedError("Embedding: max_norm, scale_grad_by_freq and sparse are "
                                      "not supported by tracegrad")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = F._padding_index(padding_idx, num_embeddings)
        if _weight is None:
            self.weight = _param(num_embeddings, embedding_dim)
            init.normal_(self.weight)
            if self.padding_idx is not None:
                with no_grad():
                    self.weight[self.padding_idx].fill_(0)
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ShapeError(f"Embedding: _weight has shape {tuple(_weight.shape)}, "
                                 f"expected {(num_embeddings, embedding_dim)}")
            self.weight = Parameter(_weight.detach().clone(), requires_grad=not _freeze)
        if dtype is not None:
            self.to(dtype=dtype)

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True,
                        padding_idx: int | None = None, **kwargs: Any) -> "Embedding":
        """An Embedding holding ``embeddings`` (rows, dim); frozen unless ``freeze=False``."""
        if embeddings.ndim != 2:
            raise ShapeError(f"Embedding.from_pretrained: embeddings must be 2-d, got "
                             f"{tuple(embeddings.shape)}")
        return cls(*embeddings.shape, padding_idx=padding_idx, _weight=embeddings,
                   _freeze=freeze, **kwargs)

    def forward(self, indices: Any) -> Tensor:
        return F.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


class LayerNorm(Module):
    """Normalize over the last dimensions, then scale by ``weight`` and shift by ``bias``."""

    def __init__(self, normalized_shape: Any, eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(
            normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.ones(shape, dtype=dtypes.default_float))
            self.bias = Parameter(np.zeros(shape, dtype=dtypes.default_float)) if bias else None
        else:
            self.weight = self.bias = None

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}"
                + f", bias={self.bias is not None}")


class _BatchNorm(Module):
    """Batch normalization with running statistics, PyTorch's: training normalizes by the
    batch's (biased) variance and updates the running mean and (unbiased) variance by
    ``momentum`` (``None``: a cumulative average); eval normalizes by the running
    statistics. State-dict names: weight, bias, running_mean, running_var,
    num_batches_tracked."""

    _ranks: tuple[int, ...] = ()
    _shape_text = ""
    _optional_state = ("num_batches_tracked",)  # (older PyTorch had none; PyTorch's too)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dt = dtypes.default_float
        self.weight = Parameter(np.ones(num_features, dtype=dt)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=dt)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dtypes.default_float)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            with no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1.0)
                self.num_batches_tracked.zero_()

    def _check_input(self, x: Tensor) -> None:
        if x.ndim not in self._ranks or x.shape[1] != self.num_features:
            c = self.num_features
            raise ShapeError(
                f"{type(self).__name__}({c}): expects input "
                f"{self._shape_text.format(c=c)}, got {x.shape}"
            )

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        m = self.momentum
        if self.training and self.track_running_stats:
            # In-place tensor updates, so a compiled training step writes them back.
            with no_grad():
                self.num_batches_tracked._assign(self.num_batches_tracked + 1)
            if m is None:  # a cumulative average, as in PyTorch
                m = 1.0 / self.num_batches_tracked.to(x.dtype)
        use_batch = self.training or not self.track_running_stats
        # (eval without running statistics normalizes by the batch's, as in PyTorch)
        running = (self.running_mean, self.running_var) if self.training or not use_batch \
            else (None, None)
        return batch_norm(x, *running, self.weight, self.bias, use_batch, m, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization over (N, C) or (N, C, L) inputs, per channel C."""

    _ranks, _shape_text = (2, 3), "(N, {c}) or (N, {c}, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalization over (N, C, H, W) inputs, per channel C."""

    _ranks, _shape_text = (4,), "(N, {c}, H, W)"


class BatchNorm3d(_BatchNorm):
    """Batch normalization over (N, C, D, H, W) inputs, per channel C."""

    _ranks, _shape_text = (5,), "(N, {c}, D, H, W)"


class _InstanceNorm(_BatchNorm):
    """Instance normalization: each sample's channel normalized over its own spatial
    elements; ``affine`` and ``track_running_stats`` off by default, as in PyTorch. An
    input without the batch dimension is one sample."""

    _nd = 0

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False):
        super().__init__(num_features, eps, momentum, affine, track_running_stats)

    def forward(self, x: Tensor) -> Tensor:
        name, nd = type(self).__name__, self._nd
        if x.ndim not in (nd + 1, nd + 2):
            raise ShapeError(f"{name}: expects a {nd + 1}-d (unbatched) or {nd + 2}-d input, "
                             f"got shape {x.shape}")
        channels = x.shape[x.ndim - nd - 1]
        if channels != self.num_features:
            text = (f"{name}({self.num_features}): input of shape {x.shape} has {channels} "
                    f"channels in dimension {x.ndim - nd - 1}")
            if self.affine or self.track_running_stats:
                raise ShapeError(text + f", expected {self.num_features}")
            warnings.warn(text + "; num_features is not used (affine=False), as PyTorch warns",
                          UserWarning, stacklevel=2)
        if x.ndim == nd + 1:
            return self.forward(x.unsqueeze(0)).squeeze(0)
        return instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                             self.training or not self.track_running_stats,
                             0.0 if self.momentum is None else self.momentum, self.eps)


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization over (N, C, L) or (C, L) inputs."""

    _nd = 1


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization over (N, C, H, W) or (C, H, W) inputs."""

    _nd = 2


class InstanceNorm3d(_InstanceNorm):
    """Instance normalization over (N, C, D, H, W) or (C, D, H, W) inputs."""

    _nd = 3


class RMSNorm(Module):
    """``x / sqrt(mean(x**2) + eps) * weight`` over the last dimensions (``F.rms_norm``);
    ``eps=None`` is the machine epsilon of the input's dtype."""

    def __init__(self, normalized_shape: Any, eps: float | None = None,
                 elementwise_affine: bool = True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(
            normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self.elementwise_affine = elementwise_affine
        self.weight = (Parameter(np.ones(shape, dtype=dtypes.default_float))
                       if elementwise_affine else None)

    def forward(self, x: Tensor) -> Tensor:
        return rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class LocalResponseNorm(Module):
    """``F.local_response_norm`` across the channels of (N, C, ...) inputs."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x: Tensor) -> Tensor:
        return local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class GroupNorm(Module):
    """Normalize each group of ``num_channels / num_groups`` channels (with the spatial
    dimensions) of an (N, C, ...) input, then scale and shift per channel."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels={num_channels} must be divisible by "
                             f"num_groups={num_groups}")
        self.num_groups, self.num_channels, self.eps, self.affine = (num_groups, num_channels,
                                                                     eps, affine)
        dt = dtypes.default_float
        self.weight = Parameter(np.ones(num_channels, dtype=dt)) if affine else None
        self.bias = Parameter(np.zeros(num_channels, dtype=dt)) if affine else None

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ShapeError(f"GroupNorm({self.num_groups}, {self.num_channels}): expects "
                             f"input (N, {self.num_channels}, ...), got {x.shape}")
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.affine}")


class AdaptiveAvgPool2d(Module):
    """Average (N, C, H, W) down to ``output_size`` (int or pair; None keeps a side)."""

    def __init__(self, output_size: Any):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class Unflatten(Module):
    """Split dimension ``dim`` into ``unflattened_size``: the inverse of Flatten."""

    def __init__(self, dim: int, unflattened_size: Any):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        return F.unflatten(x, self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class CosineSimilarity(Module):
    """``F.cosine_similarity(x1, x2, dim, eps)`` as a layer."""

    def __init__(self, dim: int = 1, eps: float = 1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


class Dropout(Module):
    """Zero elements with probability ``p`` in training (scaling the rest); identity in eval."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p, self.inplace = p, inplace  # inplace is accepted; the result is the same

    def forward(self, x: Tensor) -> Tensor:
        return type(self)._fn(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"

    _fn = staticmethod(F.dropout)


class Dropout1d(Dropout):
    """Zero whole channels of (N, C, L) or (C, L) inputs in training (``F.dropout1d``)."""

    _fn = staticmethod(dropout1d)


class Dropout2d(Dropout):
    """Zero whole channels of (N, C, H, W) inputs in training (``F.dropout2d``)."""

    _fn = staticmethod(dropout2d)


class Dropout3d(Dropout):
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) inputs in training."""

    _fn = staticmethod(dropout3d)


class AlphaDropout(Dropout):
    """Alpha dropout for SELU networks in training (``F.alpha_dropout``); identity in eval."""

    _fn = staticmethod(alpha_dropout)


class FeatureAlphaDropout(Dropout):
    """Alpha dropout of whole channels in training (``F.feature_alpha_dropout``)."""

    _fn = staticmethod(feature_alpha_dropout)


class Bilinear(Module):
    """``y = x1^T A x2 + b`` per output: weight (out_features, in1_features, in2_features),
    bias (out_features,), both ~ U(-1/sqrt(in1_features), 1/sqrt(in1_features)) as in
    PyTorch."""

    def __init__(self, in1_features: int, in2_features: int, out_features: int,
                 bias: bool = True):
        super().__init__()
        self.in1_features, self.in2_features = in1_features, in2_features
        self.out_features = out_features
        self.weight = _param(out_features, in1_features, in2_features)
        self.bias = _param(out_features) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / np.sqrt(self.in1_features)
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        params = self._parameters
        return bilinear(x1, x2, params["weight"], params.get("bias"))

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


class PairwiseDistance(Module):
    """``F.pairwise_distance(x1, x2, p, eps, keepdim)`` as a layer."""

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim  # (PyTorch's attribute names)

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


class PReLU(Module):
    """``x`` where positive, ``weight * x`` elsewhere, with a learned slope (one, or one
    per channel: ``num_parameters``), ``init`` at first."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25):
        super().__init__()
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(np.full(num_parameters, init, dtype=dtypes.default_float))

    def forward(self, x: Tensor) -> Tensor:
        return prelu(x, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class RReLU(Module):
    """Randomized leaky ReLU: a slope drawn from U(lower, upper) per element in training,
    ``(lower + upper) / 2`` in eval."""

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False):
        super().__init__()
        if lower > upper:
            raise ValueError(f"RReLU: lower={lower} must be at most upper={upper}")
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, x: Tensor) -> Tensor:
        return rrelu(x, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"lower={self.lower}, upper={self.upper}" + (", inplace=True" if self.inplace
                                                           else "")


class Softmax2d(Module):
    """Softmax over the channels of (N, C, H, W) or (C, H, W) inputs."""

    def forward(self, x: Tensor) -> Tensor:
        return softmax2d(x)


class MaxPool2d(Module):
    """`F.max_pool2d` as a layer, PyTorch's arguments in its order (``return_indices``: the
    output and the flat index of each window's maximum, for `MaxUnpool2d`)."""

    _fn = staticmethod(F.max_pool2d)

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 dilation: Any = 1, return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode
        self.return_indices = return_indices

    def forward(self, x: Tensor) -> Any:
        return type(self)._fn(x, self.kernel_size, self.stride, self.padding, self.dilation,
                              self.ceil_mode, self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """`F.avg_pool2d` as a layer, PyTorch's arguments in its order."""

    _fn = staticmethod(F.avg_pool2d)

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x: Tensor) -> Tensor:
        return type(self)._fn(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                              self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool1d(MaxPool2d):
    """`F.max_pool1d` over (N, C, L) inputs, PyTorch's arguments."""

    _fn = staticmethod(F.max_pool1d)


class MaxPool3d(MaxPool2d):
    """`F.max_pool3d` over (N, C, D, H, W) inputs, PyTorch's arguments.

    >>> tg.nn.MaxPool3d(2)(tg.randn(1, 3, 4, 4, 4)).shape
    (1, 3, 2, 2, 2)
    """

    _fn = staticmethod(F.max_pool3d)


class AvgPool3d(AvgPool2d):
    """`F.avg_pool3d` over (N, C, D, H, W) inputs, PyTorch's arguments (``divisor_override``
    too)."""

    _fn = staticmethod(F.avg_pool3d)


class AvgPool1d(AvgPool2d):
    """`F.avg_pool1d` over (N, C, L) inputs, PyTorch's arguments (no ``divisor_override``,
    as there)."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def extra_repr(self) -> str:  # (PyTorch prints these as 1-tuples)
        one = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v,)  # noqa: E731
        return (f"kernel_size={one(self.kernel_size)}, stride={one(self.stride)}, "
                f"padding={one(self.padding)}")


class Flatten(Module):
    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Returns its input; any constructor arguments are ignored, as in PyTorch."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()

    def forward(self, x: Any) -> Any:
        return x


# ---------------------------------------------------------------- stateless layers from a table


def _stateless(name: str, fn: Any, params: dict[str, Any], doc: str) -> type:
    quiet = name.endswith("Loss")  # PyTorch prints loss modules as "CrossEntropyLoss()"
    """A Module whose forward is ``fn(x, **params)``; keyword params become attributes."""

    def __init__(self: Module, *args: Any, **kwargs: Any) -> None:
        Module.__init__(self)
        values = dict(params)
        for key, value in zip(params, args):
            values[key] = value
        unknown = set(kwargs) - set(params)
        if unknown or len(args) > len(params):
            raise TypeError(f"{name}() got unexpected arguments {sorted(unknown) or args}")
        values.update(kwargs)
        for key, value in values.items():
            setattr(self, key, value)

    def forward(self: Module, x: Tensor, *rest: Any) -> Tensor:
        return fn(x, *rest, **{k: getattr(self, k) for k in params if k not in _IGNORED})

    def extra_repr(self: Module) -> str:
        if quiet:
            return ""
        return ", ".join(f"{k}={getattr(self, k)!r}" for k in params
                         if k not in _IGNORED or getattr(self, k))

    return type(name, (Module,), {"__init__": __init__, "forward": forward,
                                  "extra_repr": extra_repr, "__doc__": doc})


def _implicit_dim(fn: Any, name: str) -> Any:
    """``fn(x, dim)`` with PyTorch's legacy choice when ``dim`` is None (0 for 0-, 1- and
    3-d inputs, else 1), and PyTorch's warning."""

    def along(x: Tensor, dim: int | None = None) -> Tensor:
        if dim is None:
            dim = 0 if x.ndim in (0, 1, 3) else 1
            warnings.warn(f"{name}() without dim picks dim={dim} for a {x.ndim}-d input, as "
                          f"PyTorch does; pass dim= explicitly ({name}(dim=-1) is usual)",
                          UserWarning, stacklevel=3)
        return fn(x, dim)

    return along


# Accepted for PyTorch's signatures, not passed on: an in-place activation gives the same
# values as an out-of-place one, and tracegrad computes out of place.
_IGNORED = {"inplace"}

# name, function, keyword parameters with defaults
_STATELESS = [
    ("ReLU", F.relu, {"inplace": False}, "max(x, 0)"),
    ("Tanh", F.tanh, {}, "tanh(x)"),
    ("Sigmoid", F.sigmoid, {}, "1 / (1 + exp(-x))"),
    ("SiLU", F.silu, {"inplace": False}, "x * sigmoid(x)"),
    ("LeakyReLU", F.leaky_relu, {"negative_slope": 0.01, "inplace": False},
     "x where x > 0, else negative_slope * x"),
    ("ELU", F.elu, {"alpha": 1.0, "inplace": False}, "x where x > 0, else alpha (exp(x) - 1)"),
    ("Softplus", F.softplus, {"beta": 1.0, "threshold": 20.0},
     "log(1 + exp(beta x)) / beta, linear above threshold"),
    ("GELU", F.gelu, {"approximate": "none"}, "x * Phi(x); approximate='tanh' for the tanh form"),
    ("Hardtanh", F.hardtanh, {"min_val": -1.0, "max_val": 1.0, "inplace": False},
     "x clamped to [min_val, max_val]"),
    ("ReLU6", F.relu6, {"inplace": False}, "min(max(x, 0), 6)"),
    ("Hardsigmoid", F.hardsigmoid, {"inplace": False}, "relu6(x + 3) / 6"),
    ("Hardswish", F.hardswish, {"inplace": False}, "x * hardsigmoid(x)"),
    ("SELU", F.selu, {"inplace": False}, "scale * elu(x, alpha), self-normalizing"),
    ("CELU", F.celu, {"alpha": 1.0, "inplace": False},
     "x where x > 0, else alpha (exp(x / alpha) - 1)"),
    ("Softsign", F.softsign, {}, "x / (1 + |x|)"),
    ("Tanhshrink", F.tanhshrink, {}, "x - tanh(x)"),
    ("Hardshrink", F.hardshrink, {"lambd": 0.5}, "x where |x| > lambd, else 0"),
    ("Softshrink", F.softshrink, {"lambd": 0.5}, "x moved lambd towards 0, 0 within lambd"),
    ("Threshold", F.threshold, {"threshold": 0.0, "value": 0.0, "inplace": False},
     "x where x > threshold, else value"),
    ("Mish", F.mish, {"inplace": False}, "x * tanh(softplus(x))"),
    ("LogSigmoid", F.logsigmoid, {}, "log(sigmoid(x))"),
    ("GLU", F.glu, {"dim": -1}, "first half times sigmoid of the second half along dim"),
    ("Softmin", _implicit_dim(F.softmin, "Softmin"), {"dim": None}, "softmax of -x along dim"),
    ("Softmax", _implicit_dim(F.softmax, "Softmax"), {"dim": None}, "softmax along dim"),
    ("LogSoftmax", _implicit_dim(F.log_softmax, "LogSoftmax"), {"dim": None},
     "log_softmax along dim"),
    ("CrossEntropyLoss", F.cross_entropy,
     {"weight": None, "ignore_index": -100, "reduction": "mean", "label_smoothing": 0.0},
     "cross-entropy of logits against class indices or probabilities"),
    ("NLLLoss", F.nll_loss, {"weight": None, "ignore_index": -100, "reduction": "mean"},
     "negative log-likelihood of log-probabilities"),
    ("MSELoss", F.mse_loss, {"reduction": "mean"}, "mean squared error"),
    ("L1Loss", F.l1_loss, {"reduction": "mean"}, "mean absolute error"),
    ("BCEWithLogitsLoss", F.binary_cross_entropy_with_logits,
     {"weight": None, "reduction": "mean", "pos_weight": None}, "binary cross-entropy of logits"),
    ("BCELoss", F.binary_cross_entropy, {"weight": None, "reduction": "mean"},
     "binary cross-entropy of probabilities"),
    ("SmoothL1Loss", F.smooth_l1_loss, {"reduction": "mean", "beta": 1.0},
     "squared error below beta, absolute error above"),
    ("HuberLoss", F.huber_loss, {"reduction": "mean", "delta": 1.0},
     "squared error below delta, delta-scaled absolute error above"),
    ("KLDivLoss", F.kl_div, {"reduction": "mean", "log_target": False},
     "KL divergence of a target distribution from log-probabilities"),
]

for _name, _fn, _params, _doc in _STATELESS:
    globals()[_name] = _stateless(_name, _fn, _params, _doc)

__all__ = ["Linear", "Conv2d", "Embedding", "LayerNorm", "BatchNorm1d", "BatchNorm2d",
           "GroupNorm", "Dropout", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Flatten",
           "Unflatten", "Identity", "CosineSimilarity"] + [n for n, *_ in _STATELESS]
__all__ += ["MaxPool1d", "AvgPool1d", "MaxPool3d", "AvgPool3d"]
__all__ += ["BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "RMSNorm",
            "LocalResponseNorm"]
__all__ += ["PReLU", "RReLU", "Softmax2d"]
__all__ += ["Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
            "Bilinear", "PairwiseDistance"]
