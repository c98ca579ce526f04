"""Neural networks: PyTorch's Module interface on tracegrad tensors.

``tracegrad.nn.scalar`` is micrograd's nn on `Value`.
"""

from . import functional, init, scalar, utils
from .containers import ModuleDict, ParameterDict, ParameterList
from .conv import *  # noqa: F401,F403
from .conv import __all__ as _conv
from .layers import *  # noqa: F401,F403
from .layers import __all__ as _layers
from .module import Module, ModuleList, Parameter, Sequential
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell
from .transformer import MultiheadAttention, TransformerEncoder, TransformerEncoderLayer

__all__ = ["Module", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "Parameter",
           "Sequential", "functional", "init", "scalar", "utils", "RNN", "LSTM", "GRU",
           "RNNCell", "LSTMCell", "GRUCell", "RNNBase", "MultiheadAttention",
           "TransformerEncoderLayer", "TransformerEncoder", *_layers]
__all__ += _conv
