"""tracegrad.utils.data's WeightedRandomSampler, StackDataset, ChainDataset and
get_worker_info against torch.utils.data 2.13 (distributions by frequency: the random streams
differ)."""

from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg
from tracegrad.utils.data import (
    ChainDataset,
    DataLoader,
    IterableDataset,
    StackDataset,
    TensorDataset,
    WeightedRandomSampler,
    get_worker_info,
)

torch = pytest.importorskip("torch")
tud = torch.utils.data


def as_numpy(x):
    """A sample or batch from either library with NumPy arrays for tensors."""
    if isinstance(x, (tg.Tensor, torch.Tensor)):
        return x.numpy().tolist(), str(x.numpy().dtype)
    if isinstance(x, dict):
        return {k: as_numpy(v) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x).__name__, [as_numpy(v) for v in x]
    return int(x) if isinstance(x, np.integer) else x


@pytest.mark.parametrize("weights", [[0.1, 0.9, 0.4, 0.0, 2.0], tg.tensor([1.0, 3.0, 6.0])])
def test_weighted_random_sampler_frequencies_match_the_weights_and_torch(weights):
    n = 40000
    ours = WeightedRandomSampler(weights, n, generator=tg.Generator().manual_seed(0))
    tw = weights.numpy() if isinstance(weights, tg.Tensor) else weights
    theirs = tud.WeightedRandomSampler(tw, n, generator=torch.Generator().manual_seed(0))
    assert len(ours) == len(theirs) == n
    p = np.asarray(tw, dtype=float) / np.sum(tw)
    for sample in (list(ours), list(theirs)):
        freq = np.bincount(sample, minlength=len(p)) / n
        np.testing.assert_allclose(freq, p, atol=4 * np.sqrt(0.25 / n))
    assert ours.weights.dtype == tg.float64 and theirs.weights.dtype == torch.float64
    # seeded: the same generator seed, the same draw
    def fresh():
        return list(WeightedRandomSampler(weights, 50, generator=tg.Generator().manual_seed(1)))

    assert fresh() == fresh()


def test_weighted_random_sampler_without_replacement_and_errors():
    s = WeightedRandomSampler([1.0, 0.0, 2.0, 5.0], 3, replacement=False)
    for _ in range(20):
        drawn = list(s)
        assert sorted(drawn) == [0, 2, 3]  # never the zero-weight index, never twice
    ts = tud.WeightedRandomSampler([1.0, 0.0, 2.0, 5.0], 3, replacement=False)
    assert sorted(ts) == [0, 2, 3]
    for bad in (dict(num_samples=0), dict(num_samples=2.5), dict(replacement=1)):
        kw = {"weights": [1.0, 2.0], "num_samples": 2, **bad}
        with pytest.raises(ValueError):
            WeightedRandomSampler(**kw)
        with pytest.raises(ValueError):
            tud.WeightedRandomSampler(**kw)
    with pytest.raises(ValueError, match="without replacement"):
        WeightedRandomSampler([1.0, 0.0], 2, replacement=False)
    with pytest.raises(ValueError, match=">= 0"):
        WeightedRandomSampler([1.0, -1.0], 2)


def test_a_dataloader_with_a_weighted_sampler():
    ds = TensorDataset(tg.arange(6))
    loader = DataLoader(ds, batch_size=4,
                        sampler=WeightedRandomSampler([0, 0, 1, 0, 0, 0], 8))
    batches = [b[0].tolist() for b in loader]
    assert batches == [[2, 2, 2, 2], [2, 2, 2, 2]]


def test_stack_dataset_matches_torch():
    a, b = np.arange(10.0).reshape(5, 2), np.arange(5)
    ours = StackDataset(TensorDataset(tg.tensor(a)), list(b))
    theirs = tud.StackDataset(tud.TensorDataset(torch.tensor(a)), list(b))
    assert len(ours) == len(theirs) == 5
    assert as_numpy(ours[3]) == as_numpy(theirs[3])
    ours_kw = StackDataset(x=tg.tensor(a), y=tg.tensor(b))
    theirs_kw = tud.StackDataset(x=torch.tensor(a), y=torch.tensor(b))
    assert as_numpy(ours_kw[1]) == as_numpy(theirs_kw[1])
    assert as_numpy(next(iter(DataLoader(ours_kw, batch_size=5)))) == \
        as_numpy(next(iter(tud.DataLoader(theirs_kw, batch_size=5))))
    with pytest.raises(ValueError, match="differ in length"):
        StackDataset([1, 2], [1])
    with pytest.raises(ValueError, match="not both"):
        StackDataset([1], y=[2])


def _stream(base):
    """The numbers start, ..., stop - 1 as an iterable dataset of ``base`` (ours, torch's)."""
    class Stream(base):
        def __init__(self, start, stop):
            self.start, self.stop = start, stop

        def __iter__(self):
            return iter(range(self.start, self.stop))

        def __len__(self):
            return self.stop - self.start
    return Stream


Stream, TStream = _stream(IterableDataset), _stream(tud.IterableDataset)


def test_chain_dataset_matches_torch():
    ours = ChainDataset([Stream(0, 3), Stream(10, 12)])
    theirs = tud.ChainDataset([TStream(0, 3), TStream(10, 12)])
    assert list(ours) == list(theirs) == [0, 1, 2, 10, 11]
    assert len(ours) == len(theirs) == 5
    batches = [b.tolist() for b in DataLoader(ours, batch_size=2)]
    assert batches == [b.tolist() for b in tud.DataLoader(theirs, batch_size=2)]
    with pytest.raises(TypeError, match="only chains IterableDatasets"):
        list(ChainDataset([Stream(0, 1), [5]]))


def test_get_worker_info_is_none_in_the_main_process():
    assert get_worker_info() is None and tud.get_worker_info() is None
    seen = []

    class Probe(IterableDataset):
        def __iter__(self):
            seen.append(get_worker_info())
            return iter([1])

    list(DataLoader(Probe(), batch_size=1, num_workers=2))
    assert seen == [None]
