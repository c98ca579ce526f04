"""tg.nn.MultiheadAttention / TransformerEncoderLayer / TransformerEncoder against torch.nn:
torch's state dict loads into ours and gives the same outputs, attention weights and
gradients (float64, dropout off)."""

from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg
from tracegrad import nn

torch = pytest.importorskip("torch")
tnn = torch.nn


def twin(make):
    theirs = make(tnn).double().eval()
    ours = make(nn).double().eval()
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    with torch.no_grad():  # non-zero biases everywhere, so each one is checked
        for p in theirs.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in
                          theirs.state_dict().items()})
    return ours, theirs


def check_grads(ours, theirs, pairs, rtol=1e-9):
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), rtol=rtol,
                                   atol=1e-11, err_msg=name)
    for a, b in pairs:
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=1e-11)


def _mask(kind, L, S, N, H, g):
    if kind == "bool":
        m = g.random((L, S)) > 0.6
        m[:, 0] = False  # every query keeps one key
        return m
    if kind == "float":
        return g.standard_normal((L, S))
    if kind == "per-head":
        return g.standard_normal((N * H, L, S))
    return None


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("mask", [None, "bool", "float", "per-head"])
@pytest.mark.parametrize("padding", [False, True])
def test_multihead_attention(batch_first, mask, padding):
    E, H, L, S, N = 8, 2, 4, 5, 3
    ours, theirs = twin(lambda m: m.MultiheadAttention(E, H, batch_first=batch_first))
    g = np.random.default_rng(0)
    shape = (lambda n: (N, n, E)) if batch_first else (lambda n: (n, N, E))
    q, k, v = g.standard_normal(shape(L)), g.standard_normal(shape(S)), \
        g.standard_normal(shape(S))
    am = _mask(mask, L, S, N, H, g)
    kpm = None
    if padding:
        kpm = np.zeros((N, S), dtype=bool)
        kpm[0, -2:] = True
    ts = [tg.tensor(a, requires_grad=True) for a in (q, k, v)]
    tts = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    kw = dict(attn_mask=am, key_padding_mask=kpm)
    tkw = {k_: (None if a is None else torch.tensor(a)) for k_, a in kw.items()}
    out, w = ours(*ts, **kw)
    tout, tw = theirs(*tts, **tkw)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), rtol=1e-10, atol=1e-12)
    wts = g.standard_normal(out.shape)
    (out * tg.tensor(wts)).sum().backward()
    (tout * torch.tensor(wts)).sum().backward()
    check_grads(ours, theirs, zip(ts, tts))


def test_multihead_attention_options():
    ours, theirs = twin(lambda m: m.MultiheadAttention(6, 3, bias=False))
    g = np.random.default_rng(1)
    x = g.standard_normal((4, 2, 6))
    out, w = ours(tg.tensor(x), tg.tensor(x), tg.tensor(x), average_attn_weights=False)
    tout, tw = theirs(*(torch.tensor(x),) * 3, average_attn_weights=False)
    assert w.shape == tuple(tw.shape) == (2, 3, 4, 4)
    np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), rtol=1e-10)
    out, w = ours(tg.tensor(x), tg.tensor(x), tg.tensor(x), need_weights=False)
    assert w is None
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10)
    u = x[:, 0]  # unbatched (L, E)
    out, w = ours(tg.tensor(u), tg.tensor(u), tg.tensor(u))
    tout, tw = theirs(*(torch.tensor(u),) * 3)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), rtol=1e-10)
    causal = np.triu(np.ones((4, 4), dtype=bool), 1)
    out, _ = ours(tg.tensor(x), tg.tensor(x), tg.tensor(x), attn_mask=causal, is_causal=True)
    tout, _ = theirs(*(torch.tensor(x),) * 3, attn_mask=torch.tensor(causal), is_causal=True)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10)
    with pytest.raises(tg.ShapeError, match=r"MultiheadAttention\(6, 3\).*\(4, 2, 5\)"):
        ours(tg.ones(4, 2, 5), tg.ones(4, 2, 5), tg.ones(4, 2, 5))
    with pytest.raises(ValueError, match="divisible by num_heads=4"):
        nn.MultiheadAttention(6, 4)


@pytest.mark.parametrize("kw", [dict(), dict(norm_first=True), dict(activation="gelu"),
                                dict(batch_first=True), dict(bias=False)],
                         ids=["post-norm", "pre-norm", "gelu", "batch-first", "no-bias"])
def test_transformer_encoder_layer(kw):
    ours, theirs = twin(lambda m: m.TransformerEncoderLayer(8, 2, dim_feedforward=16, **kw))
    g = np.random.default_rng(2)
    x = g.standard_normal((3, 5, 8) if kw.get("batch_first") else (5, 3, 8))  # L = 5
    mask = np.triu(np.full((5, 5), -np.inf), 1)
    xt, tx = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out = ours(xt, src_mask=mask)
    tout = theirs(tx, src_mask=torch.tensor(mask))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-9, atol=1e-11)
    w = g.standard_normal(out.shape)
    (out * tg.tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    check_grads(ours, theirs, [(xt, tx)])


def test_transformer_encoder_stack_with_padding():
    def make(m):
        layer = m.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True)
        return m.TransformerEncoder(layer, 2, norm=m.LayerNorm(8), enable_nested_tensor=False)

    ours, theirs = twin(make)
    g = np.random.default_rng(3)
    x = g.standard_normal((2, 6, 8))
    pad = np.zeros((2, 6), dtype=bool)
    pad[1, 4:] = True
    out = ours(tg.tensor(x), src_key_padding_mask=pad)
    tout = theirs(torch.tensor(x), src_key_padding_mask=torch.tensor(pad))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-9, atol=1e-11)
    # the copies are independent: changing one layer does not change the other
    with tg.no_grad():
        ours.layers[0].linear1.weight.fill_(0.0)
    assert not np.all(ours.layers[1].linear1.weight.numpy() == 0.0)


@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_bool_masks_passed_to_a_compiled_function_are_inputs(backend):
    """A bool attn_mask or key_padding_mask was turned into scores with NumPy on its values,
    so a compiled function taking the mask as an argument raised a TraceError (reading a
    traced tensor) where eager ran. The masks are tensor ops now: each call's mask is used."""
    tg.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)

    def attend(q, mask, padding):
        out, _ = mha(q, q, q, attn_mask=mask, key_padding_mask=padding)
        return out

    compiled = tg.compile(attend, backend=backend)
    rng = np.random.default_rng(0)
    q = tg.tensor(rng.standard_normal((2, 4, 8)).astype(np.float32))
    causal = np.triu(np.ones((4, 4), bool), 1)
    later = np.tril(np.ones((4, 4), bool), -1)  # (each query sees itself and what follows)
    for mask, pad in [(causal, [0, 0, 0, 1]), (causal, [0, 0, 0, 1]), (later, [1, 1, 0, 0]),
                      (np.zeros((4, 4), bool), [0, 0, 0, 0])]:
        padding = tg.tensor(np.array([pad, [0, 0, 0, 0]], bool))
        want = attend(q, tg.tensor(mask), padding).numpy()
        got = compiled(q, tg.tensor(mask), padding).numpy()
        assert np.isfinite(want).all()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert compiled.cache_info().variants == 1
