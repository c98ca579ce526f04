"""Linear refuses mixed dtypes as PyTorch does; Embedding's padding_idx and from_pretrained
against PyTorch (values, gradients, a training step)."""

from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn.functional as F

torch = pytest.importorskip("torch")


def test_linear_refuses_mixed_dtypes_as_pytorch_does() -> None:
    layer = tg.nn.Linear(3, 2)
    with pytest.raises(RuntimeError):
        torch.nn.Linear(3, 2)(torch.randn(1, 3, dtype=torch.float64))
    for err in (RuntimeError, TypeError, tg.DTypeError):
        with pytest.raises(err, match="float64, float32 and float32"):
            layer(tg.randn(1, 3, dtype=tg.float64))
    with pytest.raises(tg.DTypeError, match="model.double"):
        F.linear(tg.randn(2, 3), tg.randn(4, 3, dtype=tg.float64))
    with pytest.raises(tg.DTypeError):
        layer(tg.ones(1, 3, dtype=tg.int64))
    assert layer.double()(tg.randn(1, 3, dtype=tg.float64)).dtype == tg.float64


@pytest.mark.parametrize("padding_idx", [0, 3, -1])
def test_embedding_padding_idx_matches_pytorch(padding_idx: int) -> None:
    ours = tg.nn.Embedding(5, 3, padding_idx=padding_idx)
    theirs = torch.nn.Embedding(5, 3, padding_idx=padding_idx)
    assert ours.padding_idx == theirs.padding_idx
    row = padding_idx % 5
    assert (ours.weight.numpy()[row] == 0).all()
    assert "padding_idx" in repr(ours)
    w = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    ours.load_state_dict({"weight": tg.tensor(w)})
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(w))
    idx = np.array([[0, 3, 4, 3], [4, 1, 0, 0]])
    out, tout = ours(tg.tensor(idx)), theirs(torch.tensor(idx))
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy())
    cot = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    (out * tg.tensor(cot)).sum().backward()
    (tout * torch.tensor(cot)).sum().backward()
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-6)
    assert (ours.weight.grad.numpy()[row] == 0).all()
    np.testing.assert_allclose(
        F.embedding(tg.tensor(idx), tg.tensor(w), padding_idx=padding_idx).numpy(),
        torch.nn.functional.embedding(torch.tensor(idx), torch.tensor(w),
                                      padding_idx=padding_idx).numpy())


def test_embedding_from_pretrained_and_padding_compiles() -> None:
    w = tg.randn(4, 2)
    frozen = tg.nn.Embedding.from_pretrained(w)
    assert not frozen.weight.requires_grad and np.array_equal(frozen.weight.numpy(), w.numpy())
    trainable = tg.nn.Embedding.from_pretrained(w, freeze=False, padding_idx=1)
    assert trainable.weight.requires_grad and trainable.padding_idx == 1

    def step(i):
        trainable.weight.grad = None
        trainable(i).sum().backward()
        return trainable.weight.grad

    compiled = tg.compile(step)
    for _ in range(3):
        i = tg.randint(0, 4, (6,))
        want = np.bincount(i.numpy(), minlength=4)[:, None] * np.ones((1, 2), np.float32)
        want[1] = 0
        np.testing.assert_allclose(compiled(i).numpy(), want)
    with pytest.raises(ValueError, match="padding_idx 7"):
        tg.nn.Embedding(4, 2, padding_idx=7)
