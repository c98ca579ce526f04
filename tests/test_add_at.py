"""ops.movement.add_at: the scatter-add of an embedding's gradient (sorted rows, each row's
occurrences added in order) gives np.add.at's result bit for bit, eager and compiled."""

from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.functional as F
from tracegrad.ops.movement import add_at


def _old(shape: tuple, full: tuple, g: np.ndarray) -> np.ndarray:
    out = np.zeros(shape, g.dtype)
    np.add.at(out, full, g)
    return out


def _new(shape: tuple, full: tuple, g: np.ndarray) -> np.ndarray:
    out = np.zeros(shape, g.dtype)
    add_at(out, full, g)
    return out


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and \
        a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows,width,idx_shape", [
    (1, 3, (50,)), (3, 2, (7, 9)), (65, 128, (16, 64)), (50, 17, (2000,)), (4, 1, (30,)),
    (5, 4, (1,)), (6, 2, (3, 0))])
def test_add_at_is_np_add_at_bit_for_bit(dtype, rows, width, idx_shape):
    rng = np.random.default_rng(rows * 1000 + width)
    idx = rng.integers(0, rows, size=idx_shape)
    shape = (rows, width)
    g = rng.standard_normal(idx_shape + (width,)) * 10.0 ** rng.uniform(-4, 4, idx_shape +
                                                                         (width,))
    g[rng.random(g.shape) < 0.1] = -0.0  # zeros of both signs add as np.add.at adds them
    g = g.astype(dtype)
    assert _same_bits(_new(shape, (idx,), g), _old(shape, (idx,), g))


def test_add_at_with_rows_of_several_dimensions_and_other_indices():
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 5, size=(40,))
    g = rng.standard_normal((40, 3, 4)).astype(np.float32)
    assert _same_bits(_new((5, 3, 4), (idx,), g), _old((5, 3, 4), (idx,), g))
    neg = idx - 5  # negative indices count from the end, as in np.add.at
    assert _same_bits(_new((5, 3, 4), (neg,), g), _old((5, 3, 4), (neg,), g))
    j = rng.integers(0, 3, size=(40,))  # two index arrays: np.add.at itself
    assert _same_bits(_new((5, 3, 4), (idx, j), g[:, 0]), _old((5, 3, 4), (idx, j), g[:, 0]))
    out = np.zeros((5, 8), np.float64)[:, ::2]  # not contiguous: np.add.at itself
    add_at(out, (idx,), g[:, 0].astype(np.float64))
    assert _same_bits(out, _old((5, 4), (idx,), g[:, 0].astype(np.float64)))


@pytest.mark.parametrize("dtype", [tg.float32, tg.float64])
def test_embedding_gradient_eager_and_compiled_is_np_add_at(dtype):
    rng = np.random.default_rng(1)
    weight = tg.tensor(rng.standard_normal((11, 6)), dtype=dtype, requires_grad=True)
    idx = tg.tensor(rng.integers(0, 11, size=(4, 25)))
    upstream = rng.standard_normal((4, 25, 6)).astype(weight.dtype)
    expected = _old((11, 6), (idx.numpy(),), upstream)

    def grad(w: tg.Tensor, i: tg.Tensor) -> tg.Tensor:
        (g,) = tg.autograd.grad((F.embedding(i, w) * tg.tensor(upstream)).sum(), [w])
        return g

    assert _same_bits(grad(weight, idx).numpy(), expected)
    compiled = tg.compile(grad, backend="numpy")
    for _ in range(3):  # eager, then compiled
        assert _same_bits(compiled(weight, idx).numpy(), expected)
    assert "add_at(" in compiled.source()
