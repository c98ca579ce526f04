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
from ..tensor import Tensor, cat, stack
from . import init
from .module import Module, Parameter
from .utils.rnn import PackedSequence, _step_sizes


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


def _scan(step: Any, gi: Tensor, state: tuple, sizes: list[int], reverse: bool) -> tuple:
    """Run ``step(gates, state) -> state`` over time steps packed as in a `PackedSequence`:
    the rows of ``gi`` are step 0 of the ``sizes[0]`` sequences (longest first), then step
    1 of the first ``sizes[1]``, and so on. ``state`` holds (sizes[0], H) tensors. Returns
    the packed outputs (each step's ``state[0]``) and the final states: each sequence's
    after its own last step, or, with ``reverse`` (which runs from each sequence's last
    step back to its first), after its first step. A full batch (equal sizes) is the plain
    loop: nothing is sliced."""
    starts = np.cumsum([0, *sizes]).tolist()
    initial, outs, ended = state, [], []
    if reverse:
        state = tuple(s[:sizes[-1]] for s in initial) if sizes[-1] < sizes[0] else initial
    for t in (reversed(range(len(sizes))) if reverse else range(len(sizes))):
        n, running = sizes[t], state[0].shape[0]
        if n > running:  # backwards, sequences join at their last step from their h_0
            state = tuple(cat([s, s0[running:n]]) for s, s0 in zip(state, initial))
        elif n < running:  # forwards, the longer ones go on alone
            ended.append(tuple(s[n:] for s in state))
            state = tuple(s[:n] for s in state)
        state = step(gi[starts[t]:starts[t + 1]], state)
        outs.append(state[0])
    if reverse:
        outs.reverse()
    if ended:
        state = tuple(cat([state[i], *(e[i] for e in reversed(ended))])
                      for i in range(len(state)))
    return cat(outs), state


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

    def _step(self, gi: Tensor, state: tuple, w_hh: Tensor, b_hh: Tensor | None) -> tuple:
        """One time step; the state is ``(h,)``, or ``(h, c)`` for LSTM."""
        if self.mode == "LSTM":
            return _lstm_step(gi, state, w_hh, b_hh)
        if self.mode == "GRU":
            return (_gru_step(gi, state[0], w_hh, b_hh),)
        return (_rnn_step(gi, state[0], w_hh, b_hh,
                          "tanh" if self.mode == "RNN_TANH" else "relu"),)

    def _check_input(self, x: Tensor, packed: bool) -> None:
        if x.ndim in ((2,) if packed else (2, 3)) and x.shape[-1] == self.input_size:
            return
        layout = "(N, L, H_in)" if self.batch_first else "(L, N, H_in)"
        layout = "a PackedSequence with data (sum of lengths, H_in)" if packed else \
            f"input {layout} or (L, H_in)"
        raise ShapeError(f"{type(self).__name__}(input_size={self.input_size}): expects "
                         f"{layout} with H_in={self.input_size}, got {x.shape}")

    def _initial_states(self, hx: Any, want: tuple, dtype: Any) -> tuple:
        """The initial states as a tuple, ``(h_0,)`` or ``(h_0, c_0)``, zeros if not given."""
        if hx is None:
            zeros = Tensor(np.zeros(want, dtype))
            return (zeros, zeros) if self.mode == "LSTM" else (zeros,)
        states = hx if isinstance(hx, tuple) else (hx,)
        for s in states:
            if tuple(s.shape) != want:
                raise ShapeError(f"{type(self).__name__}: the initial state has shape "
                                 f"{s.shape}, expected {want} (num_layers * num_directions, "
                                 f"batch, hidden_size)")
        return states

    def forward(self, x: Any, hx: Any = None) -> tuple:
        """``out, h_n`` (``out, (h_n, c_n)`` for LSTM). ``x`` is (L, N, H_in), (N, L, H_in)
        with ``batch_first``, (L, H_in) unbatched, or a `PackedSequence`, which gives a
        packed ``out`` and, per sequence, the states after its own last step."""
        dirs = 2 if self.bidirectional else 1
        lstm = self.mode == "LSTM"
        if isinstance(x, PackedSequence):
            sizes = _step_sizes(x, type(self).__name__)
            self._check_input(x.data, True)
            want = (self.num_layers * dirs, sizes[0], self.hidden_size)
            states = self._initial_states(hx, want, x.data.dtype)
            if x.sorted_indices is not None:  # the states follow the packed (sorted) order
                states = tuple(s.index_select(1, x.sorted_indices) for s in states)
            out, finals = self._layers(x.data, sizes, states)
            if x.unsorted_indices is not None:
                finals = tuple(s.index_select(1, x.unsorted_indices) for s in finals)
            out = PackedSequence(out, x.batch_sizes, x.sorted_indices, x.unsorted_indices)
            return out, (finals if lstm else finals[0])
        self._check_input(x, False)
        batched = x.ndim == 3
        if not batched:
            x = x.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        steps, n = x.shape[:2]
        want = (self.num_layers * dirs, n, self.hidden_size)
        states = self._initial_states(
            hx, want if batched else (want[0], want[2]), x.dtype)
        if not batched:
            states = tuple(s.unsqueeze(1) for s in states)
        out, finals = self._layers(x.reshape(steps * n, self.input_size), [n] * steps, states)
        out = out.reshape(steps, n, out.shape[-1])
        if not batched:
            out, finals = out.squeeze(1), tuple(s.squeeze(1) for s in finals)
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, (finals if lstm else finals[0])

    def _layers(self, x: Tensor, sizes: list[int], states: tuple) -> tuple:
        """Every layer and direction over the packed time steps ``x`` (rows as `_scan`
        reads them): the last layer's packed output and the stacked final states."""
        dirs = 2 if self.bidirectional else 1
        finals: list[tuple] = []
        for layer in range(self.num_layers):
            outs = []
            for d, suffix in enumerate(["", "_reverse"][:dirs]):
                w_ih, w_hh, b_ih, b_hh = self._weights(layer, suffix)
                k = layer * dirs + d
                gi = F.linear(x, w_ih, b_ih)  # every time step at once

                def step(g: Tensor, state: tuple, w_hh: Tensor = w_hh,
                         b_hh: Tensor | None = b_hh) -> tuple:
                    return self._step(g, state, w_hh, b_hh)

                out, final = _scan(step, gi, tuple(s[k] for s in states), sizes, bool(d))
                outs.append(out)
                finals.append(final)
            x = outs[0] if dirs == 1 else F.cat(outs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        return x, tuple(stack([f[i] for f in finals]) for i in range(len(states)))

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
