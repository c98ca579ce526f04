"""``copy.deepcopy`` of tensors and modules (a target network, an EMA copy of a model), as
PyTorch's: each copy has its own memory and version counter; leaves only."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import tracegrad as tg

torch = pytest.importorskip("torch")


def _model(lib):
    lib.manual_seed(0)
    nn = lib.nn
    return nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6), nn.BatchNorm1d(6), nn.Tanh(),
                         nn.Linear(6, 2))


def test_a_deep_copied_model_trains_as_the_original():
    # The copies shared one version counter (the deep copy of the "unchanged" sentinel):
    # BatchNorm's running-stat update in the forward bumped every copied parameter's
    # version, and backward refused ("an input of add was changed in place").
    original = _model(tg)
    twin = copy.deepcopy(original)
    weights = {k: v.numpy().copy() for k, v in original.state_dict().items()}
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((8, 4)).astype(np.float32),
                rng.standard_normal((8, 2)).astype(np.float32)) for _ in range(3)]
    losses = []
    for model in (twin, original):
        opt = tg.optim.Adam(model.parameters(), lr=0.01)
        run = []
        for x, y in batches:
            opt.zero_grad()
            loss = tg.nn.functional.mse_loss(model(tg.tensor(x)), tg.tensor(y))
            loss.backward()
            opt.step()
            run.append(loss.item())
        losses.append(run)
        if model is twin:  # training the copy left the original alone
            for k, v in original.state_dict().items():
                np.testing.assert_array_equal(v.numpy(), weights[k])
    assert losses[0] == losses[1]


def test_deepcopy_keeps_types_grads_and_shared_memory():
    p = tg.nn.Parameter(tg.ones(3))
    p.grad = tg.full((3,), 5.0)
    q = copy.deepcopy(p)
    assert type(q) is tg.nn.Parameter and q.requires_grad and q is not p
    np.testing.assert_array_equal(q.grad.numpy(), [5.0, 5.0, 5.0])
    assert not np.shares_memory(q.numpy(), p.numpy())
    base = tg.arange(6.0).reshape(2, 3)
    row = base[0]
    base2, row2 = copy.deepcopy((base, row))
    row2.add_(10)  # still a view of the copied base, as in PyTorch
    np.testing.assert_array_equal(base2.numpy(), [[10, 11, 12], [3, 4, 5]])
    np.testing.assert_array_equal(base.numpy(), [[0, 1, 2], [3, 4, 5]])


def test_deepcopy_of_a_computed_tensor_is_refused_as_in_pytorch():
    x = tg.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="graph leaves"):
        copy.deepcopy(x)
    with pytest.raises(RuntimeError):
        copy.deepcopy(torch.ones(2, requires_grad=True) * 2)
    assert copy.deepcopy(x.detach()).tolist() == [2.0, 2.0]


def test_deepcopy_of_a_compiled_model_is_a_compiled_copy():
    # It raised "cannot pickle '_thread.RLock' object"; torch.compile's model deep-copies.
    model = _model(tg).eval()
    fast = tg.compile(model, backend="numpy")
    x = tg.randn(5, 4)
    for _ in range(3):  # eager, then compiled
        fast(x)
    twin = copy.deepcopy(fast)
    assert type(twin) is type(fast) and twin.fn is not model
    for _ in range(3):
        np.testing.assert_array_equal(twin(x).numpy(), fast(x).numpy())
    with tg.no_grad():
        for p in twin.parameters():
            p.add_(1.0)
    assert not np.allclose(twin(x).numpy(), fast(x).numpy())  # the copy has its own weights
    np.testing.assert_array_equal(fast(x).numpy(), model(x).numpy())
