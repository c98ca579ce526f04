"""Datasets, samplers and a DataLoader with ``torch.utils.data``'s names and behaviour.

>>> from tracegrad.utils.data import DataLoader, TensorDataset, random_split
>>> ds = TensorDataset(tg.randn(100, 3), tg.randint(0, 2, size=(100,)))
>>> train, val = random_split(ds, [0.8, 0.2], generator=tg.Generator().manual_seed(0))
>>> for xb, yb in DataLoader(train, batch_size=32, shuffle=True):
...     ...                                  # xb: (32, 3), yb: (32,); the last batch (16, 3)

Everything runs in the calling process: ``num_workers``, ``pin_memory`` and the other
worker options are accepted (so PyTorch code runs unchanged) and have no effect.
``tracegrad.data`` is the same API under its older name.
"""

from __future__ import annotations

import bisect
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ..creation import tensor
from ..rng import Generator, python_side_rng
from ..tensor import Tensor, _eager_only, stack

__all__ = [
    "Dataset", "IterableDataset", "TensorDataset", "ConcatDataset", "Subset", "random_split",
    "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "BatchSampler",
    "DataLoader", "default_collate", "default_convert", "Generator",
]


# ---------------------------------------------------------------- datasets


class Dataset:
    """A map-style dataset: subclasses define ``__getitem__(i)`` and ``__len__()``.

    >>> class Squares(Dataset):
    ...     def __len__(self): return 10
    ...     def __getitem__(self, i): return float(i), float(i * i)
    """

    def __getitem__(self, index: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset that is a stream: subclasses define ``__iter__``. A DataLoader batches
    the stream in order (no shuffling, no sampler)."""

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class TensorDataset(Dataset):
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


class ConcatDataset(Dataset):
    """Several datasets one after another (``ds1 + ds2`` builds one)."""

    def __init__(self, datasets: Iterable[Dataset]):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: needs at least one dataset")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset: an IterableDataset cannot be indexed; chain "
                                "streams with itertools.chain instead")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]))

    def __len__(self) -> int:
        return int(self.cumulative_sizes[-1])

    def __getitem__(self, index: int) -> Any:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"ConcatDataset: index {index} is out of range for {n} samples")
        index %= n
        which = bisect.bisect_right(self.cumulative_sizes, index)
        start = int(self.cumulative_sizes[which - 1]) if which else 0
        return self.datasets[which][index - start]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset: Any, indices: Sequence[int]):
        self.dataset, self.indices = dataset, indices

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return f"Subset({self.dataset!r}, {len(self)} samples)"


def random_split(dataset: Any, lengths: Sequence[float], generator: Any = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random subsets of the given lengths, or of the
    given fractions of its length (the remainder spread one by one from the first split,
    as PyTorch does).

    >>> train, val = random_split(range(10), [0.7, 0.3], generator=tg.Generator().manual_seed(0))
    >>> len(train), len(val)
    (7, 3)
    """
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        sizes = []
        for i, frac in enumerate(lengths):
            if not 0 <= frac <= 1:
                raise ValueError(f"random_split: fraction {i} is {frac}, not in [0, 1]")
            sizes.append(math.floor(n * frac))
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        for i, size in enumerate(sizes):
            if size == 0:
                warnings.warn(f"random_split: split {i} is empty", stacklevel=2)
        lengths = sizes
    if any(isinstance(x, float) and x != int(x) or x < 0 for x in lengths):
        raise ValueError(f"random_split: lengths must be counts >= 0 or fractions summing to "
                         f"1, got {lengths}")
    lengths = [int(x) for x in lengths]
    if sum(lengths) != n:
        raise ValueError(f"random_split: the lengths {lengths} sum to {sum(lengths)}, but the "
                         f"dataset has {n} samples")
    order = python_side_rng(generator, "random_split").permutation(n).tolist()
    bounds = np.cumsum([0] + lengths)
    return [Subset(dataset, order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


# ---------------------------------------------------------------- samplers


class Sampler:
    """Yields dataset indices (or, for a batch sampler, lists of them)."""

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source: Any):
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random permutation each pass (or ``num_samples`` draws with ``replacement``)."""

    def __init__(self, data_source: Any, replacement: bool = False,
                 num_samples: int | None = None, generator: Any = None):
        self.data_source, self.replacement = data_source, replacement
        self._num_samples, self.generator = num_samples, generator
        if num_samples is not None and (not isinstance(num_samples, int) or num_samples <= 0):
            raise ValueError(f"RandomSampler: num_samples must be a positive int, got "
                             f"{num_samples!r}")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        rng = python_side_rng(self.generator, "RandomSampler")
        n = len(self.data_source)
        if self.replacement:
            return iter(rng.integers(0, n, size=self.num_samples).tolist())
        if n == 0:
            return iter([])
        full, rest = divmod(self.num_samples, n)
        order = [rng.permutation(n) for _ in range(full)] + [rng.permutation(n)[:rest]]
        return iter(np.concatenate(order).tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a random order each pass."""

    def __init__(self, indices: Sequence[int], generator: Any = None):
        self.indices, self.generator = indices, generator

    def __iter__(self) -> Iterator[int]:
        rng = python_side_rng(self.generator, "SubsetRandomSampler")
        return iter([self.indices[i] for i in rng.permutation(len(self.indices))])

    def __len__(self) -> int:
        return len(self.indices)


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size``."""

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"BatchSampler: batch_size must be a positive int, got "
                             f"{batch_size!r}")
        self.sampler, self.batch_size, self.drop_last = sampler, int(batch_size), drop_last

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for i in self.sampler:
            batch.append(int(i))
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)


# ---------------------------------------------------------------- collation


def default_collate(batch: list) -> Any:
    """Stack a list of samples into a batch, as ``torch.utils.data.default_collate``:
    tensors and arrays stack along a new first dimension; Python floats become a float64
    tensor, ints int64, bools bool; strings stay a list; dicts, named tuples and
    tuples/lists are batched field by field (tuples and lists give a list, as in PyTorch).
    """
    first = batch[0]
    if isinstance(first, Tensor):
        shapes = {s.shape for s in batch}
        if len(shapes) > 1:
            raise ValueError(f"default_collate: cannot stack samples of different shapes "
                             f"{sorted(shapes)}; pad them, or pass a collate_fn")
        return stack(batch)
    if isinstance(first, np.ndarray):
        if first.dtype.kind in "USO":
            raise TypeError(f"default_collate: cannot batch arrays of dtype {first.dtype}")
        return default_collate([tensor(s) for s in batch])
    if isinstance(first, (np.number, np.bool_)):
        return tensor(np.array(batch))
    if isinstance(first, bool):
        return tensor(np.array(batch, dtype=np.bool_))
    if isinstance(first, int):
        return tensor(np.array(batch, dtype=np.int64))
    if isinstance(first, float):
        return tensor(np.array(batch, dtype=np.float64))
    if isinstance(first, (str, bytes)):
        return list(batch)
    if isinstance(first, Mapping):
        return {k: default_collate([s[k] for s in batch]) for k in first}
    if isinstance(first, tuple) and hasattr(first, "_fields"):
        return type(first)(*(default_collate(list(f)) for f in zip(*batch)))
    if isinstance(first, (tuple, list)):
        if any(len(s) != len(first) for s in batch):
            raise ValueError(f"default_collate: samples have different numbers of fields "
                             f"({sorted({len(s) for s in batch})}); each must have the same")
        return [default_collate(list(f)) for f in zip(*batch)]
    raise TypeError(
        f"default_collate: cannot batch samples of type {type(first).__name__}; a dataset "
        f"item should be a tensor, an array, a number, a string, or a tuple/list/dict of "
        f"them (or pass collate_fn=)"
    )


def default_convert(data: Any) -> Any:
    """One unbatched sample with its NumPy arrays and scalars as tensors (tuples become
    lists, as in PyTorch): what a DataLoader with ``batch_size=None`` yields."""
    if isinstance(data, (np.ndarray, np.number, np.bool_)):
        return data if getattr(data, "dtype", None) is not None and data.dtype.kind in "USO" \
            else tensor(np.asarray(data))
    if isinstance(data, Mapping):
        return {k: default_convert(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, (tuple, list)):
        return [default_convert(d) for d in data]
    return data


# ---------------------------------------------------------------- the loader


class _Batches:
    """A DataLoader's iterator. Drawing a batch while this thread is traced raises, before
    the draw (so no batch is lost): a compiled program would bake the batch in."""

    def __init__(self, batches: Iterator[Any]):
        self._batches = batches

    def __iter__(self) -> "_Batches":
        return self

    def __next__(self) -> Any:
        _eager_only("drawing a batch from a DataLoader (the program would keep this batch)")
        return next(self._batches)


class DataLoader:
    """Iterates over a dataset in batches, with PyTorch's arguments.

    >>> loader = DataLoader(TensorDataset(tg.randn(100, 3)), batch_size=32, shuffle=True,
    ...                     generator=tg.Generator().manual_seed(0))
    >>> len(loader), [xb.shape for (xb,) in loader]
    (4, [(32, 3), (32, 3), (32, 3), (4, 3)])

    ``shuffle=True`` draws a new permutation each pass, from ``generator`` if given, else
    from tracegrad's global generator (``tg.manual_seed`` makes it reproducible). ``seed=``
    (an int) is shorthand for ``generator=tg.Generator().manual_seed(seed)``.
    """

    def __init__(self, dataset: Any, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Any = None, batch_sampler: Any = None, num_workers: int = 0,
                 collate_fn: Callable[[list], Any] | None = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn: Any = None,
                 multiprocessing_context: Any = None, generator: Any = None, *,
                 prefetch_factor: int | None = None, persistent_workers: bool = False,
                 pin_memory_device: str = "", in_order: bool = True, seed: int | None = None):
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(
                batch_size, (int, np.integer)) or batch_size < 1):
            raise ValueError(f"DataLoader: batch_size must be a positive int or None, got "
                             f"{batch_size!r}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or \
                num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be an int >= 0, got "
                             f"{num_workers!r}")
        iterable = isinstance(dataset, IterableDataset)
        if not iterable and (not hasattr(dataset, "__len__")
                             or not hasattr(dataset, "__getitem__")):
            raise TypeError(
                f"DataLoader: the dataset ({type(dataset).__name__}) must have __len__ and "
                f"__getitem__ (a map-style dataset, like TensorDataset), or be an "
                f"IterableDataset"
            )
        if seed is not None:
            if generator is not None:
                raise ValueError("DataLoader: give generator= or seed=, not both")
            generator = Generator().manual_seed(seed)
        if iterable and (shuffle or sampler is not None or batch_sampler is not None):
            raise ValueError("DataLoader: an IterableDataset is read in order; shuffle, "
                             "sampler and batch_sampler do not apply to it")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler and shuffle=True are mutually exclusive "
                             "(the sampler decides the order)")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None
                                          or drop_last):
            raise ValueError("DataLoader: batch_sampler is mutually exclusive with "
                             "batch_size, shuffle, sampler and drop_last")
        self.dataset = dataset
        self.batch_size = None if batch_size is None or batch_sampler is not None \
            else int(batch_size)
        self.shuffle, self.drop_last = bool(shuffle), drop_last
        self.num_workers, self.pin_memory, self.timeout = num_workers, pin_memory, timeout
        self.generator = generator
        self.collate_fn = collate_fn
        self._custom_collate = collate_fn is not None
        if not iterable:
            if sampler is None:
                sampler = (RandomSampler(dataset, generator=generator) if shuffle
                           else SequentialSampler(dataset))
            if batch_sampler is None and self.batch_size is not None:
                batch_sampler = BatchSampler(sampler, self.batch_size, drop_last)
        self.sampler, self.batch_sampler = sampler, batch_sampler

    def __len__(self) -> int:
        if isinstance(self.dataset, IterableDataset):
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)

    def _collate(self, samples: list) -> Any:
        return self.collate_fn(samples) if self._custom_collate else default_collate(samples)

    def _convert(self, sample: Any) -> Any:
        return self.collate_fn(sample) if self._custom_collate else default_convert(sample)

    def __iter__(self) -> Iterator[Any]:
        return _Batches(self._batches())

    def _batches(self) -> Iterator[Any]:
        if isinstance(self.dataset, IterableDataset):
            yield from self._iterate_stream()
            return
        if self.batch_sampler is None:  # batch_size=None: samples one by one, unbatched
            for i in self.sampler:
                yield self._convert(self.dataset[i])
            return
        fast = isinstance(self.dataset, TensorDataset) and not self._custom_collate
        for indices in self.batch_sampler:
            if fast:
                # One indexing op per tensor instead of stacking row by row.
                yield list(self.dataset[np.asarray(indices, dtype=np.int64)])
            else:
                yield self._collate([self.dataset[i] for i in indices])

    def _iterate_stream(self) -> Iterator[Any]:
        if self.batch_size is None:
            for sample in self.dataset:
                yield self._convert(sample)
            return
        batch: list = []
        for sample in self.dataset:
            batch.append(sample)
            if len(batch) == self.batch_size:
                yield self._collate(batch)
                batch = []
        if batch and not self.drop_last:
            yield self._collate(batch)

    def __repr__(self) -> str:
        return (f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last})")


# ---------------------------------------------------------------- more of torch.utils.data


class StackDataset(Dataset):
    """Several datasets of one length side by side: sample i is the tuple (or, given by
    keyword, the dict) of their samples i.

    >>> ds = StackDataset(images=images, labels=labels)
    >>> ds[0]                   # {"images": images[0], "labels": labels[0]}
    """

    def __init__(self, *args: Any, **kwargs: Any):
        if args and kwargs:
            raise ValueError("StackDataset: give datasets as positional arguments (samples "
                             "are tuples) or as keyword arguments (dicts), not both")
        if not args and not kwargs:
            raise ValueError("StackDataset: needs at least one dataset")
        self.datasets: Any = args if args else kwargs
        parts = args if args else tuple(kwargs.values())
        lengths = [len(d) for d in parts]
        if len(set(lengths)) != 1:
            names = [f"{i}" for i in range(len(args))] if args else list(kwargs)
            raise ValueError(f"StackDataset: the datasets differ in length: "
                             f"{dict(zip(names, lengths))}")
        self._length = lengths[0]

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: Any) -> Any:
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)


class ChainDataset(IterableDataset):
    """Several stream datasets one after another (``len`` is their total, when each has
    one).

    >>> for sample in ChainDataset([stream_a, stream_b]): ...
    """

    def __init__(self, datasets: Iterable[Dataset]):
        self.datasets = datasets

    def __iter__(self) -> Iterator[Any]:
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise TypeError(f"ChainDataset only chains IterableDatasets, got "
                                f"{type(d).__name__}")
            yield from d

    def __len__(self) -> int:
        total = 0
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise TypeError(f"ChainDataset only chains IterableDatasets, got "
                                f"{type(d).__name__}")
            total += len(d)
        return total


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn with probabilities proportional to ``weights`` (with
    ``replacement``, or each index at most once).

    >>> sampler = WeightedRandomSampler([0.1, 0.9, 0.4], num_samples=5)
    """

    def __init__(self, weights: Any, num_samples: int, replacement: bool = True,
                 generator: Any = None):
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or \
                num_samples <= 0:
            raise ValueError(f"WeightedRandomSampler: num_samples must be a positive int, "
                             f"got {num_samples!r}")
        if not isinstance(replacement, bool):
            raise ValueError(f"WeightedRandomSampler: replacement must be a bool, got "
                             f"{replacement!r}")
        w = np.asarray(weights._data if isinstance(weights, Tensor) else weights,
                       dtype=np.float64)
        if w.ndim != 1 or not len(w):
            raise ValueError(f"WeightedRandomSampler: weights must be a non-empty 1-d "
                             f"sequence, got shape {w.shape}")
        if not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
            raise ValueError("WeightedRandomSampler: weights must be finite and >= 0, with "
                             "a positive sum")
        if not replacement and num_samples > np.count_nonzero(w):
            raise ValueError(f"WeightedRandomSampler: cannot draw {num_samples} samples "
                             f"without replacement from {np.count_nonzero(w)} indices of "
                             f"nonzero weight")
        self.weights = tensor(w)
        self.num_samples, self.replacement, self.generator = num_samples, replacement, generator

    def __iter__(self) -> Iterator[int]:
        rng = python_side_rng(self.generator, "WeightedRandomSampler")
        w = self.weights._data
        return iter(rng.choice(len(w), size=self.num_samples, replace=self.replacement,
                               p=w / w.sum()).tolist())

    def __len__(self) -> int:
        return self.num_samples


def get_worker_info() -> None:
    """Information about the DataLoader worker process running this code: always None,
    since tracegrad's DataLoader loads in the calling process (as torch's does in the main
    process)."""
    return None


__all__ += ["StackDataset", "ChainDataset", "WeightedRandomSampler", "get_worker_info"]
