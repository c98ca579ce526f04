"""Datasets and a DataLoader: just enough to feed a training loop, PyTorch-shaped.

>>> ds = TensorDataset(tg.randn(100, 3), tg.randint(0, 2, size=(100,)))
>>> for xb, yb in DataLoader(ds, batch_size=32, shuffle=True, seed=0):
...     ...                                  # xb: (32, 3), yb: (32,); the last batch (4, 3)
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np

from .creation import tensor
from .rng import generator
from .tensor import Tensor, stack

__all__ = ["TensorDataset", "DataLoader"]


class TensorDataset:
    """Samples are rows of the given tensors: ``ds[i] == (t0[i], t1[i], ...)``.

    >>> ds = TensorDataset(tg.zeros(4, 2), tg.arange(4))
    >>> len(ds), ds[1]
    (4, (tensor([0., 0.]), tensor(1)))
    """

    def __init__(self, *tensors: Any):
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        self.tensors = tuple(t if isinstance(t, Tensor) else tensor(t) for t in tensors)
        for i, t in enumerate(self.tensors):
            if t.ndim == 0:
                raise ValueError(
                    f"TensorDataset: tensor {i} is 0-dimensional; every tensor needs a first "
                    f"dimension that indexes the samples"
                )
        sizes = [t.shape[0] for t in self.tensors]
        if len(set(sizes)) != 1:
            raise ValueError(
                f"TensorDataset: the tensors have different first dimensions {sizes}; every "
                f"tensor must hold one row per sample (shapes: "
                + ", ".join(str(t.shape) for t in self.tensors) + ")"
            )

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __getitem__(self, index: Any) -> tuple:
        return tuple(t[index] for t in self.tensors)

    def __repr__(self) -> str:
        return f"TensorDataset({', '.join(str(t.shape) for t in self.tensors)})"


class DataLoader:
    """Iterates over a dataset in batches, optionally shuffled, one permutation per epoch.

    >>> loader = DataLoader(TensorDataset(tg.randn(100, 3)), batch_size=32, shuffle=True, seed=0)
    >>> len(loader), [xb.shape for (xb,) in loader]
    (4, [(32, 3), (32, 3), (32, 3), (4, 3)])

    Samples are stacked along a new first dimension (tuples of tensors batch position by
    position). ``seed=None`` shuffles with tracegrad's generator, so ``tg.manual_seed`` makes
    a run reproducible; an int seed gives the loader its own generator, and each pass over the
    loader draws the next permutation from it.
    """

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, seed: int | None = None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(
                f"DataLoader: the dataset ({type(dataset).__name__}) must have __len__ and "
                f"__getitem__, like TensorDataset"
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self) -> np.ndarray | None:
        """This epoch's sample order; None means 0..n-1, which lets batches be slices."""
        if not self.shuffle:
            return None
        # tracegrad's generator is looked up per epoch: tg.manual_seed replaces it.
        rng = self._rng if self._rng is not None else generator()
        return rng.permutation(len(self.dataset))

    def __iter__(self) -> Iterator[Any]:
        n = len(self.dataset)
        order = self._order()
        stop = len(self) * self.batch_size
        for start in range(0, min(stop, n), self.batch_size):
            end = min(start + self.batch_size, n)
            index = slice(start, end) if order is None else order[start:end]
            if isinstance(self.dataset, TensorDataset):
                # Fast path: one indexing op per tensor instead of stacking row by row.
                yield self.dataset[index]
            else:
                rows = range(start, end) if order is None else index
                yield _collate([self.dataset[int(i)] for i in rows])

    def __repr__(self) -> str:
        return (f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last})")


def _collate(samples: list) -> Any:
    """Stack a list of samples into a batch: tensors, arrays and numbers stack along a new
    first dimension; tuples, lists and dicts are batched field by field."""
    first = samples[0]
    if isinstance(first, Tensor):
        return stack(samples)
    if isinstance(first, (tuple, list)):
        if any(len(s) != len(first) for s in samples):
            raise ValueError("DataLoader: samples have different numbers of fields")
        return tuple(_collate(list(field)) for field in zip(*samples))
    if isinstance(first, dict):
        return {k: _collate([s[k] for s in samples]) for k in first}
    if isinstance(first, (np.ndarray, int, float, bool, np.number, np.bool_)):
        return tensor(np.stack([np.asarray(s) for s in samples]))
    raise TypeError(
        f"DataLoader: cannot batch samples of type {type(first).__name__}; a dataset item "
        f"should be a tensor, an array, a number, or a tuple/list/dict of them"
    )
