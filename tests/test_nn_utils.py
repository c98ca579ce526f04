"""tg.nn.utils against torch.nn.utils: clipping pieces, parameters as a vector, padding."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tracegrad as tg
from tracegrad import nn


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _grads(rng, shapes):
    return [rng.normal(size=s) for s in shapes]


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_get_total_norm_and_clip_grads_with_norm_match_torch(torch, norm_type):
    rng = np.random.default_rng(0)
    values = _grads(rng, [(3, 4), (5,), ()])
    got = nn.utils.get_total_norm([tg.tensor(v) for v in values], norm_type)
    want = torch.nn.utils.get_total_norm([torch.tensor(v) for v in values], norm_type)
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-12)
    ps, tps = [], []
    for v in values:
        p, tp = nn.Parameter(tg.tensor(v)), torch.nn.Parameter(torch.tensor(v))
        p.grad, tp.grad = tg.tensor(v * 3), torch.tensor(v * 3)
        ps.append(p)
        tps.append(tp)
    nn.utils.clip_grads_with_norm_(ps, 0.5, got)
    torch.nn.utils.clip_grads_with_norm_(tps, 0.5, want)
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-12)


def test_get_total_norm_of_nothing_and_of_a_nonfinite_gradient():
    assert nn.utils.get_total_norm([]).item() == 0.0
    with pytest.raises(RuntimeError, match="norm"):
        nn.utils.get_total_norm([tg.tensor([np.inf, 1.0])], error_if_nonfinite=True)


def test_parameters_to_vector_and_back_match_torch(torch):
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    tmodel = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        for p, tp in zip(model.parameters(), tmodel.parameters()):
            tp.copy_(torch.tensor(p.numpy()))
    vec = nn.utils.parameters_to_vector(model.parameters())
    tvec = torch.nn.utils.parameters_to_vector(tmodel.parameters())
    np.testing.assert_array_equal(vec.numpy(), tvec.detach().numpy())
    (vec * vec).sum().backward()  # the gradient reaches each parameter
    np.testing.assert_allclose(model[0].weight.grad.numpy(), 2 * model[0].weight.numpy())
    new = np.arange(vec.numel(), dtype=np.float32) / 10
    nn.utils.vector_to_parameters(tg.tensor(new), model.parameters())
    torch.nn.utils.vector_to_parameters(torch.tensor(new), tmodel.parameters())
    for p, tp in zip(model.parameters(), tmodel.parameters()):
        np.testing.assert_array_equal(p.numpy(), tp.detach().numpy())
    x = np.ones((2, 3), np.float32)
    np.testing.assert_allclose(model(tg.tensor(x)).detach().numpy(),
                               tmodel(torch.tensor(x)).detach().numpy(), rtol=1e-6)


def test_vector_to_parameters_refuses_what_torch_refuses():
    with pytest.raises(TypeError, match="tg.Tensor"):
        nn.utils.vector_to_parameters([1.0, 2.0], [nn.Parameter(tg.ones(2))])
    with pytest.raises(RuntimeError, match="runs out"):
        nn.utils.vector_to_parameters(tg.ones(3), [nn.Parameter(tg.ones(2)),
                                                  nn.Parameter(tg.ones(2))])


def test_parameters_as_a_vector_in_a_compiled_function_match_eager():
    def run(compiled):
        tg.manual_seed(1)
        model = nn.Linear(2, 2)

        def step(v):
            nn.utils.vector_to_parameters(v, model.parameters())
            flat = nn.utils.parameters_to_vector(model.parameters())
            return flat * 2 + model(tg.ones(1, 2)).sum()

        f = tg.compile(step) if compiled else step
        return [f(tg.arange(6.0) * k).numpy() for k in (1, 2, 3)], model.weight.numpy()

    (eager, we), (compiled, wc) = run(False), run(True)
    for a, b in zip(eager, compiled):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(we, wc)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_sequence_matches_torch_with_gradients(torch, batch_first, side):
    rng = np.random.default_rng(2)
    values = [rng.normal(size=(n, 3)) for n in (2, 5, 1)]
    seqs = [tg.tensor(v, requires_grad=True) for v in values]
    tseqs = [torch.tensor(v, requires_grad=True) for v in values]
    out = nn.utils.rnn.pad_sequence(seqs, batch_first, -1.0, side)
    tout = torch.nn.utils.rnn.pad_sequence(tseqs, batch_first, -1.0, side)
    np.testing.assert_array_equal(out.detach().numpy(), tout.detach().numpy())
    weight = rng.normal(size=tuple(tout.shape))
    (out * tg.tensor(weight)).sum().backward()
    (tout * torch.tensor(weight)).sum().backward()
    for s, ts in zip(seqs, tseqs):
        np.testing.assert_allclose(s.grad.numpy(), ts.grad.numpy(), rtol=1e-12)


def test_pad_sequence_refuses_what_torch_refuses():
    with pytest.raises(RuntimeError, match="empty"):
        nn.utils.rnn.pad_sequence([])
    with pytest.raises(RuntimeError, match="sequence 1"):
        nn.utils.rnn.pad_sequence([tg.ones(2, 3), tg.ones(2, 4)])
    with pytest.raises(ValueError, match="padding_side"):
        nn.utils.rnn.pad_sequence([tg.ones(2)], padding_side="middle")


def test_pad_sequence_in_a_compiled_function_matches_eager():
    def f(a, b):
        return (nn.utils.rnn.pad_sequence([a, b], batch_first=True) * 2).sum(1)

    compiled = tg.compile(f)
    for n in (1, 3, 4):
        a, b = tg.ones(n, 2), tg.arange(6.0).reshape(3, 2)
        np.testing.assert_array_equal(compiled(a, b).numpy(), f(a, b).numpy())
