"""tg.nn.TransformerDecoderLayer / TransformerDecoder / Transformer against torch.nn: torch's
state dict loads into ours and gives the same outputs and gradients (float64, eval mode,
dropout off), with every kind of mask; compiled against eager."""

from __future__ import annotations

import numpy as np
import pytest
from test_parity_transformer import check_grads, twin

import tracegrad as tg
from tracegrad import nn

torch = pytest.importorskip("torch")
tnn = torch.nn

E, H, FF, T, S, N = 8, 2, 16, 4, 5, 3


def _inputs(g, batch_first, unbatched=False):
    if unbatched:
        return g.standard_normal((T, E)), g.standard_normal((S, E))
    shape = (lambda n: (N, n, E)) if batch_first else (lambda n: (n, N, E))
    return g.standard_normal(shape(T)), g.standard_normal(shape(S))


def _masks(g, kind):
    """tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask."""
    if kind == "none":
        return {}
    causal = np.triu(np.full((T, T), -np.inf), 1)
    if kind == "causal":
        return dict(tgt_mask=causal, tgt_is_causal=True)
    tkp = np.zeros((N, T), dtype=bool)
    tkp[1, -1] = True
    mkp = np.zeros((N, S), dtype=bool)
    mkp[0, -2:] = True
    mm = g.random((T, S)) > 0.7
    mm[:, 0] = False
    if kind == "bool":
        return dict(tgt_mask=np.triu(np.ones((T, T), dtype=bool), 1), memory_mask=mm,
                    tgt_key_padding_mask=tkp, memory_key_padding_mask=mkp)
    return dict(tgt_mask=causal, memory_mask=g.standard_normal((N * H, T, S)),
                tgt_key_padding_mask=tkp, memory_key_padding_mask=mkp)


def _torch_kw(kw):
    return {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}


def _compare(ours, theirs, args, kw, g, rtol=1e-9):
    xs = [tg.tensor(a, requires_grad=True) for a in args]
    txs = [torch.tensor(a, requires_grad=True) for a in args]
    out, tout = ours(*xs, **kw), theirs(*txs, **_torch_kw(kw))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=rtol, atol=1e-11)
    w = g.standard_normal(out.shape)
    (out * tg.tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    check_grads(ours, theirs, zip(xs, txs), rtol=rtol)


LAYER_OPTIONS = [dict(), dict(norm_first=True), dict(activation="gelu"),
                 dict(batch_first=True), dict(bias=False), dict(activation=tg.tanh)]


@pytest.mark.filterwarnings("ignore:Support for mismatched")
@pytest.mark.parametrize("kw", LAYER_OPTIONS,
                         ids=["post-norm", "pre-norm", "gelu", "batch-first", "no-bias",
                              "callable"])
@pytest.mark.parametrize("masks", ["none", "causal", "bool", "float"])
def test_decoder_layer(kw, masks):
    tkw = dict(kw)
    if kw.get("activation") is tg.tanh:
        tkw["activation"] = torch.tanh
    ours, theirs = twin(lambda m: m.TransformerDecoderLayer(
        E, H, dim_feedforward=FF, **(kw if m is nn else tkw)))
    g = np.random.default_rng(0)
    _compare(ours, theirs, _inputs(g, kw.get("batch_first", False)), _masks(g, masks), g)


def test_decoder_layer_unbatched():
    ours, theirs = twin(lambda m: m.TransformerDecoderLayer(E, H, dim_feedforward=FF))
    g = np.random.default_rng(1)
    mkp = np.array([False, False, False, True, True])
    _compare(ours, theirs, _inputs(g, False, unbatched=True),
             dict(tgt_mask=np.triu(np.full((T, T), -np.inf), 1), memory_key_padding_mask=mkp),
             g)


@pytest.mark.filterwarnings("ignore:Support for mismatched")
@pytest.mark.parametrize("batch_first", [False, True])
def test_decoder_stack(batch_first):
    def make(m):
        layer = m.TransformerDecoderLayer(E, H, dim_feedforward=FF, batch_first=batch_first)
        return m.TransformerDecoder(layer, 2, norm=m.LayerNorm(E))

    ours, theirs = twin(make)
    g = np.random.default_rng(2)
    _compare(ours, theirs, _inputs(g, batch_first), _masks(g, "bool"), g)
    g = np.random.default_rng(2)  # the causal mask detected (torch) or not: same numbers
    _compare(ours, theirs, _inputs(g, batch_first), dict(tgt_mask=_masks(g, "causal")[
        "tgt_mask"]), g)


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
@pytest.mark.filterwarnings("ignore:Support for mismatched")
@pytest.mark.parametrize("kw", [dict(), dict(batch_first=True, norm_first=True),
                                dict(activation="gelu", bias=False)],
                         ids=["default", "batch-first-pre-norm", "gelu-no-bias"])
def test_transformer(kw):
    ours, theirs = twin(lambda m: m.Transformer(E, H, 2, 2, FF, **kw))
    g = np.random.default_rng(3)
    bf = kw.get("batch_first", False)
    src = g.standard_normal((N, 6, E) if bf else (6, N, E))
    tgt = g.standard_normal((N, T, E) if bf else (T, N, E))
    skp = np.zeros((N, 6), dtype=bool)
    skp[2, -3:] = True
    masks = dict(tgt_mask=nn.Transformer.generate_square_subsequent_mask(T, dtype=tg.float64)
                 .numpy(), src_key_padding_mask=skp, memory_key_padding_mask=skp,
                 tgt_key_padding_mask=_masks(g, "bool")["tgt_key_padding_mask"],
                 src_mask=g.standard_normal((6, 6)))
    _compare(ours, theirs, (src, tgt), masks, g, rtol=1e-8)


def test_generate_square_subsequent_mask():
    for dtype, tdtype in ((None, None), (tg.float64, torch.float64)):
        ours = nn.Transformer.generate_square_subsequent_mask(4, dtype=dtype)
        theirs = tnn.Transformer.generate_square_subsequent_mask(4, dtype=tdtype)
        assert ours.dtype == np.dtype(str(theirs.dtype).split(".")[1])
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_transformer_init_and_errors():
    model = nn.Transformer(E, H, 1, 1, FF)
    w = model.decoder.layers[0].linear1.weight.numpy()
    bound = np.sqrt(6 / (E + FF))  # xavier_uniform_, as torch's _reset_parameters
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.5 * bound
    with pytest.raises(tg.ShapeError, match="same batch size"):
        model(tg.randn(6, 2, E), tg.randn(4, 3, E))
    with pytest.raises(tg.ShapeError, match="d_model=8"):
        model(tg.randn(6, 2, E), tg.randn(4, 2, 6))
    with pytest.raises(ValueError, match="TransformerDecoderLayer: activation must be"):
        nn.TransformerDecoderLayer(E, H, activation="tanh")
    layer = nn.TransformerDecoderLayer(E, H, FF)
    assert [k for k in layer.state_dict()] == [
        k for k in tnn.TransformerDecoderLayer(E, H, FF).state_dict()]


def test_compiled_matches_eager():
    model = nn.Transformer(E, H, 1, 1, FF, dropout=0.0, batch_first=True).double()
    mask = nn.Transformer.generate_square_subsequent_mask(T, dtype=tg.float64)

    def step(src, tgt):
        out = model(src, tgt, tgt_mask=mask)
        return out, (out * out).sum()

    compiled = tg.compile(step)
    g = np.random.default_rng(4)
    for _ in range(2):
        src, tgt = g.standard_normal((N, 6, E)), g.standard_normal((N, T, E))
        got = []
        for f in (step, compiled):
            model.zero_grad()
            out, loss = f(tg.tensor(src), tg.tensor(tgt))
            loss.backward()
            got.append([out.detach().numpy()] + [p.grad.numpy() for p in model.parameters()])
        for a, b in zip(*got):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
