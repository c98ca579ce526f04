"""Batches of sequences of different lengths, as ``torch.nn.utils.rnn``: `pad_sequence`."""

from __future__ import annotations

from typing import Sequence

from ...tensor import Tensor, cat, stack


def pad_sequence(sequences: Sequence[Tensor] | Tensor, batch_first: bool = False,
                 padding_value: float = 0.0, padding_side: str = "right") -> Tensor:
    """Stack sequences of shapes (L_i, *) into one (max L, batch, *) tensor, or (batch,
    max L, *) with ``batch_first``, filling the rest with ``padding_value`` after each one
    (or before it, ``padding_side="left"``). Differentiable in the sequences; the result
    has the first sequence's dtype, as in PyTorch."""
    if padding_side not in ("left", "right"):
        raise ValueError(f"pad_sequence: padding_side must be 'left' or 'right', got "
                         f"{padding_side!r}")
    seqs = list(sequences.unbind(0)) if isinstance(sequences, Tensor) else list(sequences)
    if not seqs:
        raise RuntimeError("pad_sequence: received an empty list of sequences")
    first = seqs[0]
    rest = tuple(first.shape[1:])
    for k, s in enumerate(seqs):
        if not isinstance(s, Tensor) or s.ndim < 1 or tuple(s.shape[1:]) != rest:
            what = f"shape {tuple(s.shape)}" if isinstance(s, Tensor) else type(s).__name__
            raise RuntimeError(f"pad_sequence: sequence {k} has {what}, the first one "
                               f"{tuple(first.shape)}; all must be (length, "
                               f"{', '.join(map(str, rest))})")
    longest = max(s.shape[0] for s in seqs)
    padded = []
    for s in seqs:
        s = s.to(first.dtype)
        missing = longest - s.shape[0]
        if missing:
            fill = Tensor.new_full(s, (missing, *rest), padding_value)
            s = cat([s, fill] if padding_side == "right" else [fill, s])
        padded.append(s)
    return stack(padded, 0 if batch_first else 1)
