"""tracegrad.utils.data against torch.utils.data: batches, collation, samplers, splits."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.utils.data
from tracegrad.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    default_collate,
    random_split,
)

torch = pytest.importorskip("torch")
tud = torch.utils.data

Point = namedtuple("Point", ["x", "y"])


def as_numpy(batch):
    """A batch from either library as nested numpy arrays / lists / dicts, with its kind."""
    if isinstance(batch, (tg.Tensor, torch.Tensor)):
        arr = batch.numpy()
        return ("tensor", str(arr.dtype), arr.shape, arr.tolist())
    if isinstance(batch, dict):
        return {k: as_numpy(v) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return (type(batch).__name__, [as_numpy(v) for v in batch])
    if isinstance(batch, list):
        return ["list"] + [as_numpy(v) for v in batch]
    return batch


def test_the_import_paths_of_pytorch_code():
    assert tracegrad.utils.data.DataLoader is DataLoader is tg.data.DataLoader
    from tracegrad.utils.data import DataLoader as D  # noqa: N814

    assert D is DataLoader and tg.utils.data is tracegrad.utils.data


class Mixed(Dataset):
    """Samples of every kind default_collate handles."""

    def __init__(self, n=7):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {
            "float": i * 0.5, "int": i, "bool": i % 2 == 0, "str": f"s{i}",
            "np32": np.float32(i) / 3, "array": np.arange(3, dtype=np.float32) + i,
            "pair": (i, [float(i), -float(i)]), "point": Point(i, i * 2.0),
            "nested": {"a": np.int32(i)},
        }


class TorchMixed(tud.Dataset):
    def __init__(self, ours):
        self.ours = ours

    def __len__(self):
        return len(self.ours)

    def __getitem__(self, i):
        return self.ours[i]


@pytest.mark.parametrize("batch_size, drop_last", [(3, False), (3, True), (7, False),
                                                   (10, False)])
def test_collation_matches_torch(batch_size, drop_last):
    ours = DataLoader(Mixed(), batch_size=batch_size, drop_last=drop_last)
    theirs = tud.DataLoader(TorchMixed(Mixed()), batch_size=batch_size, drop_last=drop_last)
    assert len(ours) == len(theirs)
    got, want = [as_numpy(b) for b in ours], [as_numpy(b) for b in theirs]
    assert got == want and len(got) == len(theirs)


def test_tensor_rows_and_tensor_dataset_batches_match_torch():
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    y = np.arange(10)
    ours = DataLoader(TensorDataset(tg.tensor(x), tg.tensor(y)), batch_size=4)
    theirs = tud.DataLoader(tud.TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=4)
    assert [as_numpy(b) for b in ours] == [as_numpy(b) for b in theirs]

    class Rows(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return tg.tensor(x[i])

    class TRows(tud.Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return torch.tensor(x[i])

    assert [as_numpy(b) for b in DataLoader(Rows(), batch_size=2)] == \
        [as_numpy(b) for b in tud.DataLoader(TRows(), batch_size=2)]


def test_default_collate_matches_torch_and_names_bad_samples():
    samples = [Mixed()[i] for i in range(4)]
    assert as_numpy(default_collate(samples)) == as_numpy(tud.default_collate(samples))
    with pytest.raises(ValueError, match=r"different shapes \[\(2,\), \(3,\)\]"):
        default_collate([tg.zeros(2), tg.zeros(3)])
    with pytest.raises(ValueError, match="different numbers of fields"):
        default_collate([(1, 2), (1, 2, 3)])
    with pytest.raises(TypeError, match="cannot batch samples of type object"):
        default_collate([object(), object()])


def test_batch_size_none_and_custom_collate():
    assert [as_numpy(b) for b in DataLoader(Mixed(3), batch_size=None)] == \
        [as_numpy(b) for b in tud.DataLoader(TorchMixed(Mixed(3)), batch_size=None)]

    def ints(batch):
        return [b["int"] for b in batch]

    assert list(DataLoader(Mixed(5), batch_size=2, collate_fn=ints)) == \
        list(tud.DataLoader(TorchMixed(Mixed(5)), batch_size=2, collate_fn=ints))


def test_shuffle_with_a_generator():
    ds = TensorDataset(tg.arange(23))

    def epochs(loader, k=3):
        return [[int(v) for (b,) in loader for v in b.tolist()] for _ in range(k)]

    a = epochs(DataLoader(ds, batch_size=5, shuffle=True, generator=tg.Generator().manual_seed(3)))
    b = epochs(DataLoader(ds, batch_size=5, shuffle=True, generator=tg.Generator().manual_seed(3)))
    c = epochs(DataLoader(ds, batch_size=5, shuffle=True, generator=tg.Generator().manual_seed(4)))
    assert a == b and a != c
    assert all(sorted(e) == list(range(23)) for e in a)  # each sample once per epoch
    assert len({tuple(e) for e in a}) == 3  # a new order each epoch
    assert a[0] != list(range(23))
    dropped = DataLoader(ds, batch_size=5, shuffle=True, drop_last=True,
                         generator=tg.Generator().manual_seed(0))
    assert len(dropped) == 4 and [b.shape for (b,) in dropped] == [(5,)] * 4


def test_pytorch_worker_options_are_accepted():
    ds = TensorDataset(tg.arange(6))
    loader = DataLoader(ds, batch_size=4, num_workers=2, pin_memory=True,
                        persistent_workers=True, prefetch_factor=2, timeout=5)
    assert [b.tolist() for (b,) in loader] == [[0, 1, 2, 3], [4, 5]]


@pytest.mark.parametrize("kw, match", [
    (dict(sampler=SequentialSampler(range(3)), shuffle=True), "mutually exclusive"),
    (dict(batch_sampler=[[0, 1]], batch_size=2), "batch_sampler is mutually exclusive"),
    (dict(batch_size=0), "batch_size must be a positive int or None"),
    (dict(num_workers=-1), "num_workers must be an int >= 0"),
])
def test_bad_loader_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        DataLoader(TensorDataset(tg.arange(3)), **kw)
    with pytest.raises(ValueError):  # torch refuses them as well
        tud.DataLoader(tud.TensorDataset(torch.arange(3)), **{
            k: (tud.SequentialSampler(range(3)) if k == "sampler" else v)
            for k, v in kw.items()})


def test_samplers_match_torch():
    data = list(range(10))
    assert list(SequentialSampler(data)) == list(tud.SequentialSampler(data))
    for bs, drop in [(3, False), (3, True), (5, True)]:
        ours = BatchSampler(SequentialSampler(data), bs, drop)
        theirs = tud.BatchSampler(tud.SequentialSampler(data), bs, drop)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)
    g = tg.Generator().manual_seed(0)
    drawn = list(RandomSampler(data, generator=g))
    assert sorted(drawn) == data and len(RandomSampler(data)) == 10
    more = list(RandomSampler(data, num_samples=25, generator=g))
    assert len(more) == 25 and all(more.count(i) in (2, 3) for i in data)
    rep = list(RandomSampler(data, replacement=True, num_samples=50, generator=g))
    assert len(rep) == 50 and set(rep) <= set(data)
    sub = list(SubsetRandomSampler([1, 5, 7], generator=g))
    assert sorted(sub) == [1, 5, 7]
    loader = DataLoader(data, batch_sampler=BatchSampler(SequentialSampler(data), 4, False))
    assert [b.tolist() for b in loader] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    loader = DataLoader(data, batch_size=3, sampler=SubsetRandomSampler([0, 2, 4, 6], g))
    assert sorted(v for b in loader for v in b.tolist()) == [0, 2, 4, 6]


@pytest.mark.parametrize("n, lengths", [(10, [3, 7]), (10, [0.3, 0.3, 0.4]), (11, [0.5, 0.5]),
                                        (23, [0.1, 0.2, 0.7]), (7, [1.0]), (5, [0, 5])])
def test_random_split_lengths_match_torch(n, lengths):
    ours = random_split(range(n), lengths, generator=tg.Generator().manual_seed(0))
    theirs = tud.random_split(range(n), lengths, generator=torch.Generator().manual_seed(0))
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    assert sorted(i for s in ours for i in s) == list(range(n))  # a partition
    again = random_split(range(n), lengths, generator=tg.Generator().manual_seed(0))
    assert [list(s) for s in ours] == [list(s) for s in again]
    if n > 5:
        other = random_split(range(n), lengths, generator=tg.Generator().manual_seed(1))
        assert [list(s) for s in ours] != [list(s) for s in other]


def test_random_split_refuses_wrong_lengths():
    with pytest.raises(ValueError, match=r"sum to 9, but the dataset has 10"):
        random_split(range(10), [4, 5])
    with pytest.raises(ValueError, match="not in \\[0, 1\\]"):
        random_split(range(10), [1.5, -0.5])
    tg.manual_seed(5)
    a = [list(s) for s in random_split(range(10), [5, 5])]
    tg.manual_seed(5)
    assert a == [list(s) for s in random_split(range(10), [5, 5])]


def test_subset_and_concat_match_torch():
    base = list(range(100, 110))
    assert [Subset(base, [3, 1, 4])[i] for i in range(3)] == \
        [tud.Subset(base, [3, 1, 4])[i] for i in range(3)]
    rows = np.arange(10) * 10
    (got,) = Subset(TensorDataset(tg.tensor(rows)), [3, 1, 4])[[0, 2]]
    (want,) = tud.Subset(tud.TensorDataset(torch.tensor(rows)), [3, 1, 4])[[0, 2]]
    assert got.tolist() == want.tolist() == [30, 40]
    ours = ConcatDataset([Subset(base, [0, 1]), Subset(base, [5, 6, 7])])
    theirs = tud.ConcatDataset([tud.Subset(base, [0, 1]), tud.Subset(base, [5, 6, 7])])
    assert len(ours) == len(theirs) == 5
    assert [ours[i] for i in range(-5, 5)] == [theirs[i] for i in range(-5, 5)]
    both = Mixed(2) + Mixed(3)
    assert isinstance(both, ConcatDataset) and both[4]["int"] == 2
    with pytest.raises(IndexError, match="out of range for 5"):
        ours[5]


class Stream(IterableDataset):
    def __iter__(self):
        return iter({"v": float(i)} for i in range(7))


class TStream(tud.IterableDataset):
    def __iter__(self):
        return iter({"v": float(i)} for i in range(7))


@pytest.mark.parametrize("kw", [dict(batch_size=3), dict(batch_size=3, drop_last=True),
                                dict(batch_size=None)])
def test_iterable_dataset_matches_torch(kw):
    assert [as_numpy(b) for b in DataLoader(Stream(), **kw)] == \
        [as_numpy(b) for b in tud.DataLoader(TStream(), **kw)]
    with pytest.raises(ValueError, match="IterableDataset is read in order"):
        DataLoader(Stream(), shuffle=True)


def test_generator_object():
    g = tg.Generator().manual_seed(7)
    assert g.initial_seed() == 7
    state = g.get_state()
    first = list(RandomSampler(range(10), generator=g))
    g.set_state(state)
    assert list(RandomSampler(range(10), generator=g)) == first
    assert tg.Generator().seed() != tg.Generator().seed()
    with pytest.raises(TypeError, match="must be a tg.Generator"):
        random_split(range(4), [2, 2], generator=torch.Generator())
