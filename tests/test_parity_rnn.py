"""tg.nn.RNN / LSTM / GRU and their cells against torch.nn: a torch state dict loads into
ours (same names and shapes) and gives the same outputs, final states and gradients."""

from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg
from tracegrad import nn

torch = pytest.importorskip("torch")
tnn = torch.nn


def twin(name, *args, **kw):
    theirs = getattr(tnn, name)(*args, **kw).double()
    ours = getattr(nn, name)(*args, **kw).double()
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in
                          theirs.state_dict().items()})
    assert repr(ours) == repr(theirs)
    return ours, theirs


def flat(out):
    """(output, h) or (output, (h, c)) as a flat list."""
    if isinstance(out, tuple):
        return [t for o in out for t in flat(o)]
    return [out]


def check(ours, theirs, x, hx=None):
    g = np.random.default_rng(1)
    xt, tx = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    args, targs = [xt], [tx]
    if hx is not None:
        hs = [tg.tensor(h, requires_grad=True) for h in hx]
        ths = [torch.tensor(h, requires_grad=True) for h in hx]
        args.append(tuple(hs) if len(hx) == 2 else hs[0])
        targs.append(tuple(ths) if len(hx) == 2 else ths[0])
    outs, touts = flat(ours(*args)), flat(theirs(*targs))
    assert len(outs) == len(touts)
    loss, tloss = 0, 0
    for o, t in zip(outs, touts):
        assert o.shape == tuple(t.shape)
        np.testing.assert_allclose(o.numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12)
        w = g.standard_normal(o.shape)
        loss = loss + (o * tg.tensor(w)).sum()
        tloss = tloss + (t * torch.tensor(w)).sum()
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    if hx is not None:
        for h, th in zip(hs, ths):
            np.testing.assert_allclose(h.grad.numpy(), th.grad.numpy(), rtol=1e-9, atol=1e-11)
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), rtol=1e-9,
                                   atol=1e-11, err_msg=name)


CONFIGS = [
    dict(), dict(num_layers=2), dict(batch_first=True), dict(bidirectional=True),
    dict(num_layers=3, bidirectional=True, batch_first=True), dict(bias=False),
]


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: "-".join(kw) or "default")
def test_recurrent_layers_match_torch(name, kw):
    ours, theirs = twin(name, 3, 5, **kw)
    g = np.random.default_rng(0)
    shape = (2, 4, 3) if kw.get("batch_first") else (4, 2, 3)
    check(ours, theirs, g.standard_normal(shape))


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_initial_states_and_unbatched_input(name):
    ours, theirs = twin(name, 3, 4, num_layers=2, bidirectional=True)
    g = np.random.default_rng(2)
    n_states = 2 if name == "LSTM" else 1
    check(ours, theirs, g.standard_normal((6, 2, 3)),
          [g.standard_normal((4, 2, 4)) for _ in range(n_states)])
    ours.zero_grad()
    theirs.zero_grad()
    check(ours, theirs, g.standard_normal((6, 3)),  # (L, H_in): no batch dimension
          [g.standard_normal((4, 4)) for _ in range(n_states)])


def test_relu_rnn_and_dropout_in_eval():
    ours, theirs = twin("RNN", 3, 4, num_layers=2, nonlinearity="relu", dropout=0.5)
    ours.eval()
    theirs.eval()
    check(ours, theirs, np.random.default_rng(3).standard_normal((5, 2, 3)))
    ours.train()
    out1, _ = ours(tg.tensor(np.ones((5, 2, 3))))
    out2, _ = ours(tg.tensor(np.ones((5, 2, 3))))
    assert not np.allclose(out1.numpy(), out2.numpy())  # dropout between layers in training


@pytest.mark.parametrize("name, kw", [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}),
                                      ("LSTMCell", {}), ("GRUCell", {}),
                                      ("GRUCell", {"bias": False})])
def test_cells_match_torch(name, kw):
    ours, theirs = twin(name, 3, 4, **kw)
    g = np.random.default_rng(4)
    n_states = 2 if name == "LSTMCell" else 1
    check(ours, theirs, g.standard_normal((2, 3)))
    ours.zero_grad()
    theirs.zero_grad()
    check(ours, theirs, g.standard_normal((2, 3)),
          [g.standard_normal((2, 4)) for _ in range(n_states)])


def test_shape_errors_name_the_layout():
    with pytest.raises(tg.ShapeError, match=r"LSTM\(input_size=3\): expects input \(N, L, "
                                            r"H_in\).*got \(2, 5, 4\)"):
        nn.LSTM(3, 4, batch_first=True)(tg.ones(2, 5, 4))
    with pytest.raises(RuntimeError, match=r"GRU: the initial state has shape \(1, 2, 3\), "
                                           r"expected \(2, 2, 4\)"):
        nn.GRU(3, 4, num_layers=2)(tg.ones(5, 2, 3), tg.ones(1, 2, 3))


def test_lstm_trains_in_a_compiled_step():
    tg.manual_seed(0)
    model = nn.LSTM(2, 3, batch_first=True)
    head = nn.Linear(3, 1)
    params = list(model.parameters()) + list(head.parameters())
    opt = tg.optim.Adam(params, lr=0.05)

    def step(x, y):
        opt.zero_grad()
        out, _ = model(x)
        loss = nn.functional.mse_loss(head(out[:, -1]), y)
        loss.backward()
        opt.step()
        return loss

    compiled = tg.compile(step)
    g = np.random.default_rng(5)
    x = tg.tensor(g.standard_normal((8, 4, 2)).astype(np.float32))
    y = x.sum(1)[:, :1]
    losses = [compiled(x, y).item() for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]
