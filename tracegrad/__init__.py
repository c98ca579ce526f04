"""tracegrad: automatic differentiation you can read, with a compiler for speed."""

from . import nn
from .autograd import enable_grad, grad, is_grad_enabled, no_grad, value_and_grad
from .scalar import Value

__version__ = "0.1.0"

__all__ = [
    "Value",
    "enable_grad",
    "grad",
    "is_grad_enabled",
    "nn",
    "no_grad",
    "value_and_grad",
]
