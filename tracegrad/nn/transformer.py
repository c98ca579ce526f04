"""Attention layers with PyTorch's parameters: MultiheadAttention, TransformerEncoderLayer,
TransformerEncoder, TransformerDecoderLayer, TransformerDecoder and Transformer.

Parameter names are PyTorch's (``in_proj_weight``, ``in_proj_bias``, ``out_proj.weight``,
``self_attn.*``, ``linear1.*``, ``norm1.*``, ...), so a PyTorch state dict loads. Masks
follow ``torch.nn.MultiheadAttention``: a bool ``attn_mask`` or ``key_padding_mask`` marks
the positions that may NOT be attended (the opposite of ``F.scaled_dot_product_attention``),
a float mask is added to the scores.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable

import numpy as np

from .. import dtypes
from .. import functional as F
from ..device import check_device
from ..errors import ShapeError
from ..tensor import Tensor, _leaf
from . import init
from .layers import Dropout, LayerNorm, Linear
from .module import Module, ModuleList, Parameter


def _additive(mask: Any, dtype: np.dtype, what: str) -> Tensor:
    """A mask as scores to add: bool True -> -inf, a float mask as it is."""
    m = mask if isinstance(mask, Tensor) else Tensor(mask)
    if m.dtype == np.bool_:
        # (tensor ops, not NumPy on its values: a mask passed to a compiled function is an
        # input of the program)
        return _leaf(np.zeros(m.shape, dtype)).masked_fill(m, -np.inf)
    if m.dtype.kind != "f":
        raise TypeError(f"MultiheadAttention: {what} must be bool or float, got {m.dtype}")
    return m.to(dtype)


class MultiheadAttention(Module):
    """Multi-head attention, ``torch.nn.MultiheadAttention``'s interface.

    >>> mha = nn.MultiheadAttention(16, 4, batch_first=True)
    >>> out, weights = mha(x, x, x)          # x (N, L, 16): out (N, L, 16), weights (N, L, L)
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim={embed_dim} must be divisible by "
                             f"num_heads={num_heads}")
        if add_bias_kv or add_zero_attn:
            raise ValueError("MultiheadAttention: add_bias_kv and add_zero_attn are not "
                             "supported")
        if (kdim not in (None, embed_dim)) or (vdim not in (None, embed_dim)):
            raise ValueError("MultiheadAttention: kdim and vdim other than embed_dim are not "
                             "supported")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.head_dim, self.batch_first = embed_dim // num_heads, batch_first
        self.kdim = self.vdim = embed_dim
        dt = dtypes.default_float
        self.in_proj_weight = Parameter(np.empty((3 * embed_dim, embed_dim), dt))
        self.in_proj_bias = Parameter(np.zeros(3 * embed_dim, dt)) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias)
        init.xavier_uniform_(self.in_proj_weight)
        if bias:
            init.zeros_(self.out_proj.bias)

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Any = None, need_weights: bool = True, attn_mask: Any = None,
                average_attn_weights: bool = True, is_causal: bool = False) -> tuple:
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim \
                or query.shape[-1] != self.embed_dim or key.shape[-1] != self.embed_dim \
                or value.shape[-1] != self.embed_dim or key.shape[:-1] != value.shape[:-1]:
            layout = "(N, L, E)" if self.batch_first else "(L, N, E)"
            raise ShapeError(
                f"MultiheadAttention({self.embed_dim}, {self.num_heads}): query, key and value "
                f"must be {layout} (or unbatched (L, E)) with E={self.embed_dim} and key/value "
                f"of one shape; got {query.shape}, {key.shape}, {value.shape}"
            )
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = _as_tensor(key_padding_mask).unsqueeze(0)
        elif self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        L, N, E = query.shape
        S, H, d = key.shape[0], self.num_heads, self.head_dim
        w_q, w_k, w_v = F.chunk(self.in_proj_weight, 3, 0)
        b = self.in_proj_bias
        b_q, b_k, b_v = F.chunk(b, 3, 0) if b is not None else (None, None, None)

        def heads(x: Tensor, n: int) -> Tensor:  # (n, N, E) -> (N, H, n, d)
            return x.reshape(n, N, H, d).permute(1, 2, 0, 3)

        q = heads(F.linear(query, w_q, b_q), L)
        k = heads(F.linear(key, w_k, b_k), S)
        v = heads(F.linear(value, w_v, b_v), S)
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d))
        if is_causal and attn_mask is None:
            attn_mask = np.triu(np.ones((L, S), dtype=bool), 1)
        if attn_mask is not None:
            m = _additive(attn_mask, scores.dtype, "attn_mask")
            if m.shape == (L, S):
                scores = scores + m
            elif m.shape == (N * H, L, S):
                scores = scores + m.reshape(N, H, L, S)
            else:
                raise ShapeError(f"MultiheadAttention: attn_mask has shape {m.shape}, expected "
                                 f"({L}, {S}) or ({N * H}, {L}, {S})")
        if key_padding_mask is not None:
            m = _additive(key_padding_mask, scores.dtype, "key_padding_mask")
            if m.shape != (N, S):
                raise ShapeError(f"MultiheadAttention: key_padding_mask has shape {m.shape}, "
                                 f"expected (batch, source length) = ({N}, {S})")
            scores = scores + m.reshape(N, 1, 1, S)
        attn = F.softmax(scores, -1)
        if self.dropout > 0 and self.training:
            attn = F.dropout(attn, self.dropout, True)
        out = (attn @ v).permute(2, 0, 1, 3).reshape(L, N, E)
        out = self.out_proj(out)
        if not batched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        weights = F.mean(attn, 1) if average_attn_weights else attn
        return out, (weights if batched else weights.squeeze(0))


def _as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


_ACTIVATIONS: dict[str, Callable] = {"relu": F.relu, "gelu": F.gelu}


def _activation(activation: str | Callable, layer: str) -> Callable:
    if not isinstance(activation, str):
        return activation
    if activation not in _ACTIVATIONS:
        raise ValueError(f"{layer}: activation must be 'relu', 'gelu' or a callable, got "
                         f"{activation!r}")
    return _ACTIVATIONS[activation]


class _TransformerLayer(Module):
    """What the encoder and decoder layers share: their attention blocks (``attentions``,
    named as PyTorch's), the feed-forward block, and a layer norm and a dropout per block,
    registered in PyTorch's order (so its state dicts load), and the self-attention and
    feed-forward steps. The last block's dropout is the feed-forward's."""

    _attentions: tuple = ()

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str | Callable = "relu",
                 layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True):
        super().__init__()
        for name in self._attentions:
            setattr(self, name, MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                   batch_first=batch_first))
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first
        blocks = len(self._attentions) + 1
        for k in range(1, blocks + 1):
            setattr(self, f"norm{k}", LayerNorm(d_model, eps=layer_norm_eps, bias=bias))
        for k in range(1, blocks + 1):
            setattr(self, f"dropout{k}", Dropout(dropout))
        self.activation = _activation(activation, type(self).__name__)

    def _sa(self, x: Tensor, mask: Any, padding: Any, is_causal: bool) -> Tensor:
        out, _ = self.self_attn(x, x, x, attn_mask=mask, key_padding_mask=padding,
                                need_weights=False, is_causal=is_causal)
        return self.dropout1(out)

    def _ff(self, x: Tensor) -> Tensor:
        last = getattr(self, f"dropout{len(self._attentions) + 1}")
        return last(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerEncoderLayer(_TransformerLayer):
    """Self-attention and a feed-forward block, each with a residual connection and layer
    norm (after, or before with ``norm_first=True``), ``torch.nn.TransformerEncoderLayer``.

    >>> layer = nn.TransformerEncoderLayer(d_model=16, nhead=4, batch_first=True)
    >>> layer(tg.randn(2, 5, 16)).shape
    (2, 5, 16)
    """

    _attentions = ("self_attn",)

    def forward(self, src: Tensor, src_mask: Any = None, src_key_padding_mask: Any = None,
                is_causal: bool = False) -> Tensor:
        x = src
        if self.norm_first:
            x = x + self._sa(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff(self.norm2(x))
        x = self.norm1(x + self._sa(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff(x))


class TransformerEncoder(Module):
    """``num_layers`` copies of ``encoder_layer`` (independent weights), then ``norm``."""

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int,
                 norm: Module | None = None, enable_nested_tensor: bool = True):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers, self.norm = num_layers, norm

    def forward(self, src: Tensor, mask: Any = None, src_key_padding_mask: Any = None,
                is_causal: bool | None = None) -> Tensor:
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                      is_causal=bool(is_causal))
        return self.norm(x) if self.norm is not None else x


class TransformerDecoderLayer(_TransformerLayer):
    """Self-attention over the target, attention to the encoder's ``memory``, and a
    feed-forward block, each with a residual connection and layer norm (after, or before
    with ``norm_first=True``), ``torch.nn.TransformerDecoderLayer``.

    >>> layer = nn.TransformerDecoderLayer(d_model=16, nhead=4, batch_first=True)
    >>> layer(tg.randn(2, 5, 16), tg.randn(2, 7, 16)).shape
    (2, 5, 16)
    """

    _attentions = ("self_attn", "multihead_attn")

    def _mha(self, x: Tensor, memory: Tensor, mask: Any, padding: Any,
             is_causal: bool) -> Tensor:
        out, _ = self.multihead_attn(x, memory, memory, attn_mask=mask, key_padding_mask=padding,
                                     need_weights=False, is_causal=is_causal)
        return self.dropout2(out)

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Any = None,
                memory_mask: Any = None, tgt_key_padding_mask: Any = None,
                memory_key_padding_mask: Any = None, tgt_is_causal: bool = False,
                memory_is_causal: bool = False) -> Tensor:
        x = tgt
        if self.norm_first:
            x = x + self._sa(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha(self.norm2(x), memory, memory_mask, memory_key_padding_mask,
                              memory_is_causal)
            return x + self._ff(self.norm3(x))
        x = self.norm1(x + self._sa(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
        x = self.norm2(x + self._mha(x, memory, memory_mask, memory_key_padding_mask,
                                     memory_is_causal))
        return self.norm3(x + self._ff(x))


class TransformerDecoder(Module):
    """``num_layers`` copies of ``decoder_layer`` (independent weights), then ``norm``."""

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int,
                 norm: Module | None = None):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers, self.norm = num_layers, norm

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Any = None,
                memory_mask: Any = None, tgt_key_padding_mask: Any = None,
                memory_key_padding_mask: Any = None, tgt_is_causal: bool | None = None,
                memory_is_causal: bool = False) -> Tensor:
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal)
        return self.norm(x) if self.norm is not None else x


class Transformer(Module):
    """An encoder-decoder transformer, ``torch.nn.Transformer``: ``encoder`` (a
    `TransformerEncoder` with a final LayerNorm) reads ``src``, ``decoder`` (a
    `TransformerDecoder`, the same) reads ``tgt`` and the encoder's output. Weight matrices
    start Xavier-uniform, as PyTorch's.

    >>> model = nn.Transformer(d_model=16, nhead=4, num_encoder_layers=2,
    ...                        num_decoder_layers=2, dim_feedforward=32, batch_first=True)
    >>> mask = nn.Transformer.generate_square_subsequent_mask(5)
    >>> model(tg.randn(2, 7, 16), tg.randn(2, 5, 16), tgt_mask=mask).shape
    (2, 5, 16)
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str | Callable = "relu",
                 custom_encoder: Module | None = None, custom_decoder: Module | None = None,
                 layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True):
        super().__init__()
        layer_args = dict(d_model=d_model, nhead=nhead, dim_feedforward=dim_feedforward,
                          dropout=dropout, activation=activation, layer_norm_eps=layer_norm_eps,
                          batch_first=batch_first, norm_first=norm_first, bias=bias)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(TransformerEncoderLayer(**layer_args),
                                              num_encoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(TransformerDecoderLayer(**layer_args),
                                              num_decoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias))
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first

    def forward(self, src: Tensor, tgt: Tensor, src_mask: Any = None, tgt_mask: Any = None,
                memory_mask: Any = None, src_key_padding_mask: Any = None,
                tgt_key_padding_mask: Any = None, memory_key_padding_mask: Any = None,
                src_is_causal: bool | None = None, tgt_is_causal: bool | None = None,
                memory_is_causal: bool = False) -> Tensor:
        batch = 0 if self.batch_first else 1
        if src.ndim == 3 and (tgt.ndim != 3 or src.shape[batch] != tgt.shape[batch]):
            raise ShapeError(f"Transformer: src {src.shape} and tgt {tgt.shape} must have the "
                             f"same batch size (dimension {batch}; batch_first="
                             f"{self.batch_first})")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise ShapeError(f"Transformer: src {src.shape} and tgt {tgt.shape} must have "
                             f"d_model={self.d_model} features in their last dimension")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device: Any = None,
                                        dtype: Any = None) -> Tensor:
        """A (sz, sz) float mask: 0 on and below the diagonal, -inf above (position i
        attends to positions <= i), of ``dtype`` (the default float type if None).

        >>> nn.Transformer.generate_square_subsequent_mask(3)
        tensor([[0., -inf, -inf],
                [0., 0., -inf],
                [0., 0., 0.]])
        """
        check_device(device)
        dt = dtypes.default_float if dtype is None else np.dtype(dtype)
        return _leaf(np.triu(np.full((sz, sz), -np.inf, dtype=dt), 1))


__all__ = ["MultiheadAttention", "TransformerEncoderLayer", "TransformerEncoder",
           "TransformerDecoderLayer", "TransformerDecoder", "Transformer"]
