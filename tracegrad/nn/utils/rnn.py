"""Batches of sequences of different lengths, as ``torch.nn.utils.rnn``: padding them into
one tensor (`pad_sequence`, `unpad_sequence`) and packing them (`PackedSequence`,
`pack_padded_sequence`, `pad_packed_sequence`, `pack_sequence`, `unpack_sequence`), which
RNN, LSTM and GRU read and write.

A packed batch is time-major: ``data`` holds the first step of every sequence, then the
second step of those that have one, and so on, the sequences sorted longest first;
``batch_sizes[t]`` is how many sequences run at step ``t``. Packing and unpacking are
gathers (`index_select`), so gradients flow through both. The lengths decide the packed
shapes, so they are read as Python ints: in a compiled function they must be a Python
list (each new list traces again) or a tensor the function makes from one; a tensor the
function is given, or computes, raises `tg.TraceError` (its values change between calls).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from ... import dtypes
from ...errors import TraceError
from ...tensor import Tensor, cat, stack


class _PackedFields(NamedTuple):
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None
    unsorted_indices: Tensor | None


class PackedSequence(_PackedFields):
    """A batch of sequences of different lengths, packed (see the module's docstring); made
    by `pack_padded_sequence` or `pack_sequence`, read by the recurrent layers.

    >>> p = pack_sequence([tg.tensor([1, 2, 3]), tg.tensor([4, 5]), tg.tensor([6])])
    >>> p.data, p.batch_sizes
    (tensor([1, 4, 6, 2, 5, 3]), tensor([3, 2, 1]))

    ``sorted_indices[k]`` is the batch position of the k-th longest sequence (None when the
    batch came sorted), ``unsorted_indices`` its inverse. Like a tuple it unpacks as
    ``data, batch_sizes, sorted_indices, unsorted_indices``.
    """

    __slots__ = ()

    def __new__(cls, data: Any, batch_sizes: Tensor | None = None,
                sorted_indices: Tensor | None = None,
                unsorted_indices: Tensor | None = None) -> "PackedSequence":
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:  # PackedSequence((data, batch_sizes), ...), as torch allows
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise TypeError("PackedSequence: give (data, batch_sizes) or data and "
                                "batch_sizes; make one with pack_padded_sequence or "
                                "pack_sequence")
            data, batch_sizes = data
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args: Any, **kwargs: Any) -> "PackedSequence":
        """``data.to(...)`` (``batch_sizes`` and the indices stay int64); ``self`` when
        nothing changes, as ``torch``'s."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        return type(self)(data, self.batch_sizes, self.sorted_indices, self.unsorted_indices)

    def cpu(self) -> "PackedSequence":
        return self.to("cpu")

    def cuda(self, *args: Any, **kwargs: Any) -> "PackedSequence":
        return self.to("cuda")  # raises, as Tensor.cuda does: tracegrad runs on the CPU

    @property
    def is_cuda(self) -> bool:
        return False


def _converter(dtype: np.dtype) -> Any:
    def convert(self: PackedSequence) -> PackedSequence:
        return self.to(dtype)

    convert.__doc__ = f"``data`` as {dtype.name}."
    return convert


for _name, _dtype in [("double", dtypes.float64), ("float", dtypes.float32),
                      ("half", dtypes.float16), ("long", dtypes.int64),
                      ("int", dtypes.int32), ("short", dtypes.int16),
                      ("char", dtypes.int8), ("byte", dtypes.uint8)]:
    setattr(PackedSequence, _name, _converter(_dtype))
    getattr(PackedSequence, _name).__name__ = _name


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The inverse of a permutation (a 1-d int tensor), or None for None.

    >>> invert_permutation(tg.tensor([2, 0, 1]))
    tensor([1, 2, 0])
    """
    return None if permutation is None else permutation.argsort()


def _int_list(values: Any, op: str, what: str) -> list[int]:
    """``values`` (a 1-d tensor or a sequence of numbers) as Python ints. A tensor's
    ``tolist`` refuses, in a compiled function, values that change between calls."""
    if isinstance(values, Tensor):
        if values.ndim != 1:
            raise RuntimeError(f"{op}: '{what}' must be a 1-d tensor or a list of ints, got "
                               f"a tensor of shape {values.shape}")
        try:
            values = values.tolist()
        except TraceError as error:
            refused = TraceError(
                f"{op}: the '{what}' tensor holds values that change between calls of the "
                f"compiled function, and they decide the packed shapes. Give the lengths "
                f"as a Python list (a new list traces again), or pack outside the compiled "
                f"function.\n{error}")
            refused.setting = getattr(error, "setting", None)
            raise refused from None
    return [int(v) for v in values]


def _step_sizes(sequence: PackedSequence, op: str) -> list[int]:
    """``sequence.batch_sizes`` as Python ints, checked."""
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"{op}: expects a PackedSequence (from pack_padded_sequence or "
                        f"pack_sequence), got {type(sequence).__name__}")
    sizes = _int_list(sequence.batch_sizes, op, "batch_sizes")
    if not sizes or sizes[-1] < 1 or any(a < b for a, b in zip(sizes, sizes[1:])):
        raise ValueError(f"{op}: batch_sizes must be positive and non-increasing, got "
                         f"{sizes}")
    return sizes


def _valid(lengths: np.ndarray, steps: int) -> np.ndarray:
    """(steps, batch) booleans: whether step t of sequence b exists."""
    return np.arange(steps)[:, None] < lengths[None, :]


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


def pack_padded_sequence(input: Tensor, lengths: Any, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (T, B, *) (or (B, T, *) with ``batch_first``) of sequences of
    the given lengths; steps past a sequence's length are left out. With
    ``enforce_sorted`` (the default) the lengths must not increase along the batch, else
    the batch is sorted here (ties keep their order) and ``sorted_indices`` records how.

    >>> p = pack_padded_sequence(tg.randn(5, 3, 2), [5, 3, 2])
    >>> p.data.shape, p.batch_sizes
    ((10, 2), tensor([3, 3, 2, 1, 1]))
    """
    op = "pack_padded_sequence"
    lengths = _int_list(lengths, op, "lengths")
    if input.ndim < 2:
        raise ValueError(f"{op}: input must be (T, B, *) or, with batch_first, (B, T, *); "
                         f"got shape {input.shape}")
    if input.numel() == 0:
        raise RuntimeError(f"{op}: Cannot pack empty tensors (input {input.shape})")
    batch, steps = input.shape[:2] if batch_first else input.shape[1::-1]
    if len(lengths) != batch:
        raise RuntimeError(f"{op}: Expected `len(lengths)` to be equal to batch_size, but got "
                           f"{len(lengths)} (batch_size={batch})")
    order = list(range(batch))
    sorted_indices = None
    if not enforce_sorted:
        order.sort(key=lambda b: -lengths[b])
        sorted_indices = Tensor(np.asarray(order, np.int64))
    ordered = np.asarray([lengths[b] for b in order], np.int64)
    if ordered[-1] <= 0:  # torch's checks, in torch's order
        raise RuntimeError(f"{op}: Length of all samples has to be greater than 0, but found "
                           f"an element in 'lengths' that is <= 0 (lengths {lengths})")
    if np.any(ordered[1:] > ordered[:-1]):
        raise RuntimeError(f"{op}: `lengths` array must be sorted in decreasing order when "
                           f"`enforce_sorted` is True (got {lengths}). You can pass "
                           f"`enforce_sorted=False` to pack_padded_sequence and/or "
                           f"pack_sequence to sidestep this requirement if you do not need "
                           f"ONNX exportability.")
    if ordered[0] > steps:  # (torch reads past the end of the input here)
        raise RuntimeError(f"{op}: a sequence of length {ordered[0]} is longer than the "
                           f"input's {steps} time steps (input {input.shape}, lengths "
                           f"{lengths}, batch_first={batch_first})")
    valid = _valid(ordered, int(ordered[0]))
    t, k = np.nonzero(valid)  # row by row: the packed order
    b = np.asarray(order, np.int64)[k]
    flat = b * steps + t if batch_first else t * batch + b
    rows = input.reshape(batch * steps, *input.shape[2:])
    data = rows.index_select(0, Tensor(flat.astype(np.int64)))
    return PackedSequence(data, Tensor(valid.sum(1).astype(np.int64)), sorted_indices)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0,
                        total_length: int | None = None) -> tuple[Tensor, Tensor]:
    """Unpack into a padded (T, B, *) tensor (or (B, T, *) with ``batch_first``) in the
    batch's original order, T the longest length (or ``total_length``), and the lengths
    (int64). The inverse of `pack_padded_sequence`.

    >>> padded, lengths = pad_packed_sequence(pack_sequence([tg.ones(3), tg.ones(1)]))
    >>> padded.shape, lengths
    ((3, 2), tensor([3, 1]))
    """
    op = "pad_packed_sequence"
    sizes = _step_sizes(sequence, op)
    data = sequence.data
    if data.ndim < 1 or data.shape[0] != sum(sizes):
        raise ValueError(f"{op}: data has shape {data.shape} but batch_sizes {sizes} add up "
                         f"to {sum(sizes)} rows")
    steps = len(sizes)
    if total_length is not None:
        if total_length < steps:
            raise ValueError(f"{op}: Expected total_length to be at least the length of the "
                             f"longest sequence in input, but got total_length="
                             f"{total_length} and max sequence length being {steps}")
        steps = total_length
    lengths = (np.asarray(sizes)[:, None] > np.arange(sizes[0])).sum(0)  # longest first
    valid = _valid(lengths, steps)
    rows = np.full(valid.shape, data.shape[0], np.int64)  # the padding row, else ...
    rows[valid] = np.arange(data.shape[0])  # ... the packed row (both row by row)
    if batch_first:
        rows = rows.T
    fill = Tensor.new_full(data, (1, *data.shape[1:]), padding_value)
    padded = cat([data, fill]).index_select(0, Tensor(rows.reshape(-1)))
    padded = padded.reshape(*rows.shape, *data.shape[1:])
    lengths = Tensor(lengths.astype(np.int64))
    if sequence.unsorted_indices is not None:
        padded = padded.index_select(0 if batch_first else 1, sequence.unsorted_indices)
        lengths = lengths.index_select(0, sequence.unsorted_indices)
    return padded, lengths


def unpad_sequence(padded_sequences: Tensor, lengths: Any,
                   batch_first: bool = False) -> list[Tensor]:
    """The sequences of a padded batch (T, B, *) (or (B, T, *)), cut to their lengths: the
    inverse of `pad_sequence`. (torch's transposes ``padded_sequences`` in place when
    ``batch_first`` is False; this one leaves it alone.)

    >>> [s.shape for s in unpad_sequence(tg.zeros(4, 2, 3), [4, 1])]
    [(4, 3), (1, 3)]
    """
    lengths = _int_list(lengths, "unpad_sequence", "lengths")
    batch = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    if len(lengths) != batch.shape[0]:
        raise ValueError(f"unpad_sequence: {len(lengths)} lengths for a batch of "
                         f"{batch.shape[0]} sequences (padded {padded_sequences.shape}, "
                         f"batch_first={batch_first})")
    return [seq[:n] for seq, n in zip(batch.unbind(0), lengths)]


def pack_sequence(sequences: Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences (L_i, *): `pad_sequence` then `pack_padded_sequence`.

    >>> pack_sequence([tg.tensor([1, 2, 3]), tg.tensor([4, 5]), tg.tensor([6])]).data
    tensor([1, 4, 6, 2, 5, 3])
    """
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """The list of sequences a `PackedSequence` holds, in their original order: the inverse
    of `pack_sequence`."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)


__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence",
           "pad_packed_sequence", "pad_sequence", "unpad_sequence", "pack_sequence",
           "unpack_sequence"]
