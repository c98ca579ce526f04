"""``x.data`` is a Tensor sharing memory with ``x`` and no gradient history (issue 17 item 2):
PyTorch's idioms against PyTorch, what tracegrad does differently (a change through ``.data``
is counted, so a stale backward raises), and the same idioms compiled."""

from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg

torch = pytest.importorskip("torch")


def _pair(module_tg, module_torch):
    module_tg.load_state_dict({k: tg.tensor(v.detach().numpy())
                               for k, v in module_torch.state_dict().items()})
    return module_tg, module_torch


def _sgd_by_hand(lib, model, x, y, idiom: str, lr: float = 0.1) -> float:
    loss = ((model(x) - y) ** 2).mean()
    for p in model.parameters():
        p.grad = None
    loss.backward()
    for p in model.parameters():
        if idiom == "isub":
            p.data -= lr * p.grad
        elif idiom == "assign":
            p.data = p.data - lr * p.grad
        else:  # add_ with alpha
            p.data.add_(p.grad, alpha=-lr)
    return loss.item()


@pytest.mark.parametrize("idiom", ["isub", "assign", "add_"])
def test_training_by_hand_through_data_matches_pytorch(idiom: str) -> None:
    torch.manual_seed(0)
    ours, theirs = _pair(tg.nn.Linear(3, 2), torch.nn.Linear(3, 2))
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3)).astype(np.float32), rng.standard_normal((8, 2))
    for _ in range(5):
        a = _sgd_by_hand(tg, ours, tg.tensor(x), tg.tensor(y.astype(np.float32)), idiom)
        b = _sgd_by_hand(torch, theirs, torch.tensor(x), torch.tensor(y.astype(np.float32)),
                         idiom)
        assert abs(a - b) <= 1e-6 * max(1.0, abs(b))
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k].numpy(), v.numpy(), rtol=1e-6)


def test_data_is_a_tensor_sharing_memory_without_history() -> None:
    w = tg.nn.Parameter(tg.tensor([1.0, 2.0]))
    d = w.data
    assert type(d) is tg.Tensor and not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.numpy(), w.numpy())
    assert isinstance(w.data.numpy(), np.ndarray)
    d[0] = 5.0
    assert w.tolist() == [5.0, 2.0] and w.requires_grad
    m = tg.nn.Linear(2, 2)
    m.bias.data.fill_(0.01)
    m.weight.data.normal_(0, 0.02)
    np.testing.assert_allclose(m.bias.numpy(), [0.01, 0.01], rtol=1e-6)
    assert m.weight.requires_grad and m.weight.is_leaf
    w.data = np.array([7.0, 8.0], dtype=np.float32)  # an array works too
    assert w.tolist() == [7.0, 8.0]
    w.data = tg.zeros(3, dtype=tg.float64)  # another shape or dtype: w takes it, as PyTorch
    assert w.shape == (3,) and w.dtype == tg.float64 and w.requires_grad
    with pytest.raises(TypeError, match="expects a tg.Tensor or an ndarray"):
        w.data = [1.0]


def test_a_change_through_data_is_counted_where_pytorch_would_compute_a_wrong_gradient() -> None:
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    x.data.mul_(2)  # PyTorch's backward would silently use the new values
    with pytest.raises(RuntimeError, match="changed in place"):
        y.backward()
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    x.data = tg.tensor([3.0, 4.0])
    with pytest.raises(RuntimeError, match="changed in place"):
        y.backward()


def test_data_idioms_compile_and_agree_with_eager() -> None:
    def make():
        tg.manual_seed(3)
        return tg.nn.Sequential(tg.nn.Linear(3, 4), tg.nn.Tanh(), tg.nn.Linear(4, 1))

    def step_for(model, idiom):
        def step(x, y, lr):
            loss = ((model(x) - y) ** 2).mean()
            for p in model.parameters():
                p.grad = None
            loss.backward()
            for p in model.parameters():  # (no tg.no_grad() needed, as in PyTorch)
                if idiom == "isub":
                    p.data -= lr * p.grad
                else:
                    p.data = p.data - lr * p.grad
            return loss
        return step

    rng = np.random.default_rng(1)
    batches = [(tg.tensor(rng.standard_normal((5, 3)).astype(np.float32)),
                tg.tensor(rng.standard_normal((5, 1)).astype(np.float32))) for _ in range(5)]
    for idiom in ("isub", "assign"):
        eager_model, compiled_model = make(), make()
        eager_step = step_for(eager_model, idiom)
        compiled_step = tg.compile(step_for(compiled_model, idiom), backend="numpy")
        for i, (x, y) in enumerate(batches):
            lr = 0.05 + 0.01 * i  # a new learning rate: an input, no retrace
            a, b = eager_step(x, y, lr), compiled_step(x, y, lr)
            np.testing.assert_allclose(b.item(), a.item(), rtol=1e-5)
        for p, q in zip(eager_model.parameters(), compiled_model.parameters()):
            np.testing.assert_allclose(q.numpy(), p.numpy(), rtol=1e-5, atol=1e-6)
        assert compiled_step.cache_info().misses == 1


def test_reading_data_values_in_a_compiled_function_raises() -> None:
    f = tg.compile(lambda x: x * 2 if x.data.numpy().sum() > 0 else x)
    f(tg.ones(2))
    with pytest.raises(tg.TraceError, match="x.numpy"):
        f(tg.ones(2))
    w = tg.ones(2)

    def reshape_data(x):
        w.data = tg.zeros(3)
        return x

    g = tg.compile(reshape_data)
    g(tg.ones(1))
    w.data = tg.ones(2)
    with pytest.raises(tg.TraceError, match="new shape or dtype"):
        g(tg.ones(1))
