"""Recurrent layers with PyTorch's parameters and conventions: RNN, LSTM, GRU and their
cells.

Parameter names and shapes are PyTorch's (``weight_ih_l0``, ``weight_hh_l0``,
``bias_ih_l0``, ``bias_hh_l0``, ``..._reverse`` for the backward direction; gates stacked
in PyTorch's order: LSTM ``i, f, g, o``, GRU ``r, z, n``), so a PyTorch state dict loads
and gives the same outputs. Each step is tensor ops, so gradients (and compilation) come
for free; the input projection of all time steps is one matmul before the loop.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import dtypes
from .. import functional as F
from ..errors import ShapeError
from ..tensor import Tensor, stack
from . import init
from .module import Module, Parameter


def _rnn_step(gi: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None,
              nonlinearity: str) -> Tensor:
    pre = gi + F.linear(h, w_hh, b_hh)
    return pre.tanh() if nonlinearity == "tanh" else pre.relu()


def _lstm_step(gi: Tensor, state: tuple, w_hh: Tensor, b_hh: Tensor | None) -> tuple:
    h, c = state
    i, f, g, o = F.chunk(gi + F.linear(h, w_hh, b_hh), 4, -1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c.tanh(), c


def _gru_step(gi: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
    i_r, i_z, i_n = F.chunk(gi, 3, -1)
    h_r, h_z, h_n = F.chunk(F.linear(h, w_hh, b_hh), 3, -1)
    r = (i_r + h_r).sigmoid()
    z = (i_z + h_z).sigmoid()
    n = (i_n + r * h_n).tanh()
    return n + z * (h - n)  # (1 - z) * n + z * h


_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class RNNBase(Module):
    """Shared by RNN, LSTM and GRU: the parameters, input checks and the layer loop."""

    mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0):
        super().__init__()
        name = type(self).__name__
        if proj_size:
            raise ValueError(f"{name}: proj_size is not supported (use proj_size=0)")
        if not 0 <= dropout <= 1:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        if num_layers < 1 or hidden_size < 1:
            raise ValueError(f"{name}: num_layers and hidden_size must be >= 1, got "
                             f"{num_layers} and {hidden_size}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        gates = _GATES[self.mode] * hidden_size
        dirs = 2 if bidirectional else 1
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else hidden_size * dirs
            for suffix in ["", "_reverse"][:dirs]:
                self.register_parameter(f"weight_ih_l{layer}{suffix}", Parameter(
                    np.empty((gates, layer_in), dtypes.default_float)))
                self.register_parameter(f"weight_hh_l{layer}{suffix}", Parameter(
                    np.empty((gates, hidden_size), dtypes.default_float)))
                if bias:
                    self.register_parameter(f"bias_ih_l{layer}{suffix}", Parameter(
                        np.empty(gates, dtypes.default_float)))
                    self.register_parameter(f"bias_hh_l{layer}{suffix}", Parameter(
                        np.empty(gates, dtypes.default_float)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # PyTorch's: every weight and bias ~ U(-1/sqrt(hidden), 1/sqrt(hidden)).
        k = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -k, k)

    def _weights(self, layer: int, suffix: str) -> tuple:
        p = self._parameters
        return (p[f"weight_ih_l{layer}{suffix}"], p[f"weight_hh_l{layer}{suffix}"],
                p.get(f"bias_ih_l{layer}{suffix}"), p.get(f"bias_hh_l{layer}{suffix}"))

    def _step(self, gi: Tensor, state: Any, w_hh: Tensor, b_hh: Tensor | None) -> Any:
        if self.mode == "LSTM":
            return _lstm_step(gi, state, w_hh, b_hh)
        if self.mode == "GRU":
            return _gru_step(gi, state, w_hh, b_hh)
        return _rnn_step(gi, state, w_hh, b_hh, "tanh" if self.mode == "RNN_TANH" else "relu")

    def _check(self, x: Tensor, hx: Any) -> tuple[bool, int]:
        name = type(self).__name__
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            layout = "(N, L, H_in)" if self.batch_first else "(L, N, H_in)"
            raise ShapeError(
                f"{name}(input_size={self.input_size}): expects input {layout} or (L, H_in) "
                f"with H_in={self.input_size}, got {x.shape}"
            )
        batched = x.ndim == 3
        n = (x.shape[0] if self.batch_first else x.shape[1]) if batched else 1
        dirs = 2 if self.bidirectional else 1
        want = (self.num_layers * dirs, n, self.hidden_size) if batched else (
            self.num_layers * dirs, self.hidden_size)
        states = hx if isinstance(hx, tuple) else (() if hx is None else (hx,))
        for s in states:
            if tuple(s.shape) != want:
                raise ShapeError(f"{name}: the initial state has shape {s.shape}, expected "
                                 f"{want} (num_layers * num_directions, batch, hidden_size)")
        return batched, n

    def forward(self, x: Tensor, hx: Any = None) -> tuple:
        batched, n = self._check(x, hx)
        lstm = self.mode == "LSTM"
        if not batched:
            x = x.unsqueeze(1)
            if hx is not None:
                hx = tuple(s.unsqueeze(1) for s in hx) if lstm else hx.unsqueeze(1)
        if self.batch_first:
            x = x.transpose(0, 1)
        dirs = 2 if self.bidirectional else 1
        zeros = Tensor(np.zeros((self.num_layers * dirs, n, self.hidden_size), x.dtype))
        if hx is None:
            hx = (zeros, zeros) if lstm else zeros
        h_n, c_n = [], []
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d, suffix in enumerate(["", "_reverse"][:dirs]):
                w_ih, w_hh, b_ih, b_hh = self._weights(layer, suffix)
                k = layer * dirs + d
                state = (hx[0][k], hx[1][k]) if lstm else hx[k]
                gi = F.linear(layer_in, w_ih, b_ih)  # every time step at once
                steps = range(gi.shape[0])
                seq = []
                for t in (reversed(steps) if d else steps):
                    state = self._step(gi[t], state, w_hh, b_hh)
                    seq.append(state[0] if lstm else state)
                if d:
                    seq.reverse()
                outs.append(stack(seq))
                h_n.append(state[0] if lstm else state)
                if lstm:
                    c_n.append(state[1])
            layer_in = outs[0] if dirs == 1 else F.cat(outs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, True)
        out = layer_in.transpose(0, 1) if self.batch_first else layer_in
        h = stack(h_n)
        c = stack(c_n) if lstm else None
        if not batched:
            out, h = out.squeeze(1), h.squeeze(1)
            c = c.squeeze(1) if lstm else None
        return out, ((h, c) if lstm else h)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:  # (PyTorch does not print nonlinearity here; neither do we)
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or relu).

    >>> rnn = nn.RNN(10, 20, num_layers=2, batch_first=True)
    >>> out, h_n = rnn(tg.randn(3, 5, 10))      # out (3, 5, 20), h_n (2, 3, 20)
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got "
                             f"{nonlinearity!r}")
        self.mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional)


class LSTM(RNNBase):
    """Long short-term memory; ``forward(x, (h_0, c_0))`` returns ``out, (h_n, c_n)``.

    >>> lstm = nn.LSTM(10, 20, batch_first=True)
    >>> out, (h_n, c_n) = lstm(tg.randn(3, 5, 10))
    """

    mode = "LSTM"


class GRU(RNNBase):
    """Gated recurrent unit; ``forward(x, h_0)`` returns ``out, h_n``."""

    mode = "GRU"


class _CellBase(Module):
    mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        gates = _GATES[self.mode] * hidden_size
        self.weight_ih = Parameter(np.empty((gates, input_size), dtypes.default_float))
        self.weight_hh = Parameter(np.empty((gates, hidden_size), dtypes.default_float))
        self.bias_ih = Parameter(np.empty(gates, dtypes.default_float)) if bias else None
        self.bias_hh = Parameter(np.empty(gates, dtypes.default_float)) if bias else None
        k = 1.0 / math.sqrt(hidden_size)
        for p in self.parameters():
            init.uniform_(p, -k, k)

    def forward(self, x: Tensor, hx: Any = None) -> Any:
        name = type(self).__name__
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ShapeError(f"{name}({self.input_size}, {self.hidden_size}): expects input "
                             f"(N, {self.input_size}) or ({self.input_size},), got {x.shape}")
        batched = x.ndim == 2
        lstm = self.mode == "LSTM"
        if not batched:
            x = x.unsqueeze(0)
            if hx is not None:
                hx = tuple(s.unsqueeze(0) for s in hx) if lstm else hx.unsqueeze(0)
        if hx is None:
            z = Tensor(np.zeros((x.shape[0], self.hidden_size), x.dtype))
            hx = (z, z) if lstm else z
        gi = F.linear(x, self.weight_ih, self.bias_ih)
        p = self._parameters
        if lstm:
            out = _lstm_step(gi, hx, p["weight_hh"], p.get("bias_hh"))
            return out if batched else (out[0].squeeze(0), out[1].squeeze(0))
        if self.mode == "GRU":
            out = _gru_step(gi, hx, p["weight_hh"], p.get("bias_hh"))
        else:
            out = _rnn_step(gi, hx, p["weight_hh"], p.get("bias_hh"),
                            "tanh" if self.mode == "RNN_TANH" else "relu")
        return out if batched else out.squeeze(0)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity=relu"
        return s


class RNNCell(_CellBase):
    """One step of RNN: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got "
                             f"{nonlinearity!r}")
        self.mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias)


class LSTMCell(_CellBase):
    """One step of LSTM: ``(h', c') = cell(x, (h, c))``."""

    mode = "LSTM"


class GRUCell(_CellBase):
    """One step of GRU: ``h' = cell(x, h)``."""

    mode = "GRU"


__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "RNNBase"]
