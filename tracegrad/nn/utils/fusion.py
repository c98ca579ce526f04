"""Folding an eval-mode batch norm into the convolution or linear layer before it, as
``torch.nn.utils.fusion``: ``bn(conv(x)) == fused(x)`` with one layer's work.

>>> fused = tg.nn.utils.fuse_conv_bn_eval(conv.eval(), bn.eval())
"""

from __future__ import annotations

import copy

from ...autograd import no_grad
from ...tensor import Tensor
from ..module import Module, Parameter


def fuse_conv_bn_weights(conv_w: Tensor, conv_b: Tensor | None, bn_rm: Tensor, bn_rv: Tensor,
                         bn_eps: float, bn_w: Tensor | None, bn_b: Tensor | None,
                         transpose: bool = False) -> tuple[Parameter, Parameter]:
    """The weight and bias of a convolution that computes ``bn(conv(x))`` (``transpose``:
    for a transposed convolution, whose output channels are its weight's dimension 1)."""
    with no_grad():
        zeros = bn_rm * 0
        conv_b = zeros if conv_b is None else conv_b
        bn_w = zeros + 1 if bn_w is None else bn_w
        bn_b = zeros if bn_b is None else bn_b
        scale = bn_w * (bn_rv + bn_eps).rsqrt()
        shape = ([1, -1] if transpose else [-1, 1]) + [1] * (conv_w.ndim - 2)
        w = (conv_w * scale.reshape(shape)).to(conv_w.dtype)
        b = ((conv_b - bn_rm) * scale + bn_b).to(conv_w.dtype)
    return (Parameter(w, requires_grad=conv_w.requires_grad),
            Parameter(b, requires_grad=conv_b.requires_grad))


def fuse_conv_bn_eval(conv: Module, bn: Module, transpose: bool = False) -> Module:
    """A copy of ``conv`` that computes ``bn(conv(x))`` for eval-mode modules."""
    if conv.training or bn.training:
        raise ValueError("fuse_conv_bn_eval: fusion is for eval mode only; call .eval() on "
                         "both modules first")
    fused = copy.deepcopy(conv)
    fused.weight, fused.bias = fuse_conv_bn_weights(
        fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight,
        bn.bias, transpose)
    return fused


def fuse_linear_bn_weights(linear_w: Tensor, linear_b: Tensor | None, bn_rm: Tensor,
                           bn_rv: Tensor, bn_eps: float, bn_w: Tensor,
                           bn_b: Tensor) -> tuple[Parameter, Parameter]:
    """The weight and bias of a linear layer that computes ``bn(linear(x))``."""
    return fuse_conv_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b)


def fuse_linear_bn_eval(linear: Module, bn: Module) -> Module:
    """A copy of ``linear`` that computes ``bn(linear(x))`` for eval-mode modules."""
    if linear.out_features != bn.num_features:
        raise ValueError(f"fuse_linear_bn_eval: the linear layer has {linear.out_features} "
                         f"outputs, the batch norm {bn.num_features} features")
    return fuse_conv_bn_eval(linear, bn)


__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval",
           "fuse_linear_bn_weights"]
