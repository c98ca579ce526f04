"""Neural networks: PyTorch's Module interface on tracegrad tensors.

``tracegrad.nn.scalar`` is micrograd's nn on `Value`.
"""

from . import functional, init, scalar, utils
from .conv import Conv1d  # noqa: F401
from .layers import *  # noqa: F401,F403
from .layers import __all__ as _layers
from .module import Module, ModuleList, Parameter, Sequential

__all__ = ["Module", "ModuleList", "Parameter", "Sequential", "functional", "init", "scalar",
           "utils", *_layers]
