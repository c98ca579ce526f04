"""Tests of `tracegrad.data`: TensorDataset and DataLoader (batching, shuffling, drop_last)."""

from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg
from tracegrad.data import DataLoader, TensorDataset


def make_dataset(n=10):
    x = tg.from_numpy(np.arange(n * 3, dtype=np.float32).reshape(n, 3))
    y = tg.arange(n)
    return TensorDataset(x, y)


def labels(loader):
    """The sample indices of one epoch, batch by batch (y holds each sample's index)."""
    return [yb.tolist() for _, yb in loader]


def test_tensor_dataset_items():
    ds = make_dataset(4)
    assert len(ds) == 4
    x, y = ds[2]
    assert x.tolist() == [6.0, 7.0, 8.0] and y.item() == 2
    assert isinstance(ds[0], tuple) and len(ds[0]) == 2


def test_tensor_dataset_size_mismatch_names_sizes():
    with pytest.raises(ValueError, match=r"\[5, 4\]"):
        TensorDataset(tg.zeros(5, 2), tg.zeros(4))
    with pytest.raises(ValueError):
        TensorDataset()
    with pytest.raises(ValueError, match="0-dimensional"):
        TensorDataset(tg.tensor(1.0))


def test_batches_in_order_with_a_last_partial_batch():
    loader = DataLoader(make_dataset(10), batch_size=4)
    assert len(loader) == 3
    batches = list(loader)
    assert [xb.shape for xb, _ in batches] == [(4, 3), (4, 3), (2, 3)]
    assert [yb.shape for _, yb in batches] == [(4,), (4,), (2,)]
    assert labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[2][0].tolist() == [[24.0, 25.0, 26.0], [27.0, 28.0, 29.0]]


def test_drop_last():
    loader = DataLoader(make_dataset(10), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    exact = DataLoader(make_dataset(8), batch_size=4, drop_last=True)
    assert len(exact) == 2 and len(list(exact)) == 2
    assert len(DataLoader(make_dataset(3), batch_size=4, drop_last=True)) == 0
    assert list(DataLoader(make_dataset(3), batch_size=4, drop_last=True)) == []


@pytest.mark.parametrize("n, batch_size, drop_last", [(10, 1, False), (10, 3, False),
                                                      (10, 3, True), (10, 10, False),
                                                      (10, 64, False), (0, 4, False)])
def test_len_matches_the_number_of_batches(n, batch_size, drop_last):
    loader = DataLoader(make_dataset(n), batch_size=batch_size, shuffle=True, seed=0,
                        drop_last=drop_last)
    assert len(loader) == len(list(loader))


def test_shuffle_visits_every_sample_once_per_epoch():
    loader = DataLoader(make_dataset(23), batch_size=5, shuffle=True, seed=1)
    for _ in range(3):
        epoch = labels(loader)
        assert [len(b) for b in epoch] == [5, 5, 5, 5, 3]
        assert sorted(sum(epoch, [])) == list(range(23))


def test_shuffle_batches_keep_x_and_y_together():
    for xb, yb in DataLoader(make_dataset(10), batch_size=3, shuffle=True, seed=0):
        np.testing.assert_array_equal(xb.numpy()[:, 0], yb.numpy() * 3)


def test_shuffle_is_reproducible_with_a_seed_and_new_each_epoch():
    a = DataLoader(make_dataset(20), batch_size=4, shuffle=True, seed=7)
    b = DataLoader(make_dataset(20), batch_size=4, shuffle=True, seed=7)
    a_epochs = [labels(a) for _ in range(3)]
    assert a_epochs == [labels(b) for _ in range(3)]
    assert a_epochs[0] != a_epochs[1] != a_epochs[2]
    assert a_epochs[0] != labels(DataLoader(make_dataset(20), batch_size=4, shuffle=True,
                                            seed=8))
    assert sum(a_epochs[0], []) != list(range(20))


def test_shuffle_without_a_seed_follows_manual_seed():
    loader = DataLoader(make_dataset(20), batch_size=4, shuffle=True)
    tg.manual_seed(123)
    first = [labels(loader), labels(loader)]
    tg.manual_seed(123)
    assert [labels(loader), labels(loader)] == first
    assert first[0] != first[1]


def test_drop_last_with_shuffle_drops_a_different_remainder():
    loader = DataLoader(make_dataset(10), batch_size=4, shuffle=True, drop_last=True, seed=0)
    epochs = [sum(labels(loader), []) for _ in range(5)]
    assert all(len(e) == 8 and len(set(e)) == 8 for e in epochs)
    assert len({tuple(sorted(e)) for e in epochs}) > 1


class Squares:
    """A map-style dataset that is not a TensorDataset: items are stacked one by one."""

    def __len__(self):
        return 7

    def __getitem__(self, i):
        return tg.tensor([float(i), float(i * i)]), i, {"half": i / 2}


def test_generic_dataset_items_are_stacked():
    loader = DataLoader(Squares(), batch_size=3)
    assert len(loader) == 3
    batches = list(loader)
    x, idx, extra = batches[0]
    assert x.shape == (3, 2) and x.tolist() == [[0.0, 0.0], [1.0, 1.0], [2.0, 4.0]]
    assert idx.tolist() == [0, 1, 2] and idx.dtype == tg.int64
    assert extra["half"].tolist() == [0.0, 0.5, 1.0]
    assert batches[2][0].shape == (1, 2)
    shuffled = DataLoader(Squares(), batch_size=3, shuffle=True, seed=0)
    assert sorted(sum((b[1].tolist() for b in shuffled), [])) == list(range(7))


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(make_dataset(), batch_size=0)
    with pytest.raises(TypeError, match="__len__"):
        DataLoader(iter(range(3)))


def test_a_training_loop_runs():
    tg.manual_seed(0)
    x = tg.randn(32, 2)
    y = (x.sum(dim=1) > 0).float()
    w = tg.zeros(2, requires_grad=True)
    for _ in range(2):
        for xb, yb in DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True):
            loss = ((xb @ w - yb) ** 2).mean()
            loss.backward()
            with tg.no_grad():
                w -= 0.1 * w.grad
            w.grad = None
    assert np.all(np.isfinite(w.numpy()))
