"""Neural networks: PyTorch's Module interface on tracegrad tensors.

``tracegrad.nn.scalar`` is micrograd's nn on `Value`.
"""

from . import functional, init, scalar, utils
from .containers import ModuleDict, ParameterDict, ParameterList
from .conv import *  # noqa: F401,F403
from .conv import __all__ as _conv
from .layers import *  # noqa: F401,F403
from .layers import __all__ as _layers
from .losses import *  # noqa: F401,F403
from .losses import __all__ as _losses
from .module import Module, ModuleList, Parameter, Sequential
from .padding import *  # noqa: F401,F403
from .padding import __all__ as _padding
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell
from .sparse import EmbeddingBag
from .spatial_layers import *  # noqa: F401,F403
from .spatial_layers import __all__ as _spatial_layers
from .transformer import (
    MultiheadAttention,
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ = ["Module", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "Parameter",
           "Sequential", "functional", "init", "scalar", "utils", "RNN", "LSTM", "GRU",
           "RNNCell", "LSTMCell", "GRUCell", "RNNBase", "MultiheadAttention",
           "TransformerEncoderLayer", "TransformerEncoder", *_layers]
__all__ += _losses
__all__ += ["Transformer", "TransformerDecoder", "TransformerDecoderLayer"]
__all__ += ["EmbeddingBag"]
__all__ += _padding
__all__ += _conv
__all__ += _spatial_layers
