"""F.embedding_bag and nn.EmbeddingBag against torch 2.13: every mode, 1-d input with offsets
(empty bags, include_last_offset) and 2-d input, padding_idx, per_sample_weights; values and
gradients (float64), finite differences, compiled against eager, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_grads
from hypothesis import given, settings
from hypothesis import strategies as st

import tracegrad as tg
from tracegrad import nn
from tracegrad.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

ROWS, DIM = 7, 3
INPUT = np.array([1, 2, 4, 5, 4, 3, 2, 6, 0, 2, 2])
LAYOUTS = {  # name -> (input, offsets, include_last_offset)
    "offsets": (INPUT, np.array([0, 4, 4, 7, 10]), False),   # an empty bag, a bag of one
    "last-offset": (INPUT, np.array([0, 3, 3, 8, 11]), True),
    "2-d": (INPUT[:10].reshape(2, 5), None, False),
    "first-empty": (INPUT[:5], np.array([0, 0, 2]), False),
}


def _weight():
    return np.random.default_rng(0).standard_normal((ROWS, DIM))


def _run(lib, layout, mode, padding_idx=None, weighted=False):
    inp, off, last = LAYOUTS[layout]
    t = torch.tensor if lib == "torch" else tg.tensor
    w = t(_weight(), requires_grad=True)
    kw = dict(mode=mode, padding_idx=padding_idx, include_last_offset=last)
    psw = None
    if weighted:
        psw = t(np.random.default_rng(1).standard_normal(inp.shape), requires_grad=True)
        kw["per_sample_weights"] = psw
    out = (TF if lib == "torch" else F).embedding_bag(
        t(inp), w, None if off is None else t(off), **kw)
    return out, [w] + ([psw] if weighted else [])


@pytest.mark.parametrize("padding_idx", [None, 2, -5])
@pytest.mark.parametrize("mode,weighted", [("sum", False), ("sum", True), ("mean", False),
                                           ("max", False)])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_matches_torch(layout, mode, weighted, padding_idx):
    ours, ours_in = _run("tg", layout, mode, padding_idx, weighted)
    theirs, their_in = _run("torch", layout, mode, padding_idx, weighted)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12,
                               atol=1e-15)
    v = np.random.default_rng(2).standard_normal(tuple(theirs.shape))
    (ours * tg.tensor(v)).sum().backward()
    (theirs * torch.tensor(v)).sum().backward()
    for a, b in zip(ours_in, their_in):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_gradients_match_finite_differences(mode):
    inp, off, _ = LAYOUTS["offsets"]
    idx, offsets = tg.tensor(inp), tg.tensor(off)
    if mode == "sum":
        check_grads(lambda w, s: F.embedding_bag(idx, w, offsets, mode="sum",
                                                 per_sample_weights=s, padding_idx=4),
                    _weight(), np.linspace(-1, 1, inp.size), order=1)
    else:
        check_grads(lambda w: F.embedding_bag(idx, w, offsets, mode=mode), _weight(),
                    order=1)


def test_module_matches_torch():
    theirs = torch.nn.EmbeddingBag(ROWS, DIM, mode="sum", padding_idx=3).double()
    ours = nn.EmbeddingBag(ROWS, DIM, mode="sum", padding_idx=3).double()
    assert np.all(ours.weight.numpy()[3] == 0)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    ours.load_state_dict({"weight": _weight()})
    inp, off, _ = LAYOUTS["offsets"]
    psw = np.linspace(0.5, 1.5, inp.size)
    got = ours(tg.tensor(inp), tg.tensor(off), per_sample_weights=tg.tensor(psw))
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(_weight()))
    want = theirs(torch.tensor(inp), torch.tensor(off), per_sample_weights=torch.tensor(psw))
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-12)
    assert repr(ours) == "EmbeddingBag(7, 3, mode='sum', padding_idx=3)"

    pre = nn.EmbeddingBag.from_pretrained(tg.tensor(_weight()), mode="max")
    assert not pre.weight.requires_grad
    want = torch.nn.EmbeddingBag.from_pretrained(torch.tensor(_weight()), mode="max")(
        torch.tensor(inp), torch.tensor(off))
    np.testing.assert_allclose(pre(tg.tensor(inp), tg.tensor(off)).numpy(), want.numpy(),
                               rtol=1e-12)
    assert nn.EmbeddingBag.from_pretrained(tg.tensor(_weight()), freeze=False) \
        .weight.requires_grad


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_compiled_reads_each_calls_offsets(mode):
    bag = nn.EmbeddingBag(ROWS, DIM, mode=mode).double()
    step = lambda i, o: bag(i, o).sum(1)  # noqa: E731
    compiled = tg.compile(step)
    g = np.random.default_rng(3)
    for _ in range(3):  # other indices and other offsets, same sizes
        inp = g.integers(0, ROWS, 9)
        off = np.sort(np.concatenate([[0], g.integers(0, 10, 3)]))
        got = []
        for f in (step, compiled):
            bag.zero_grad()
            out = f(tg.tensor(inp), tg.tensor(off))
            out.sum().backward()
            got.append((out.numpy(), bag.weight.grad.numpy()))
        np.testing.assert_allclose(got[1][0], got[0][0], rtol=1e-12)
        np.testing.assert_allclose(got[1][1], got[0][1], rtol=1e-12)


def test_compiled_max():
    bag = nn.EmbeddingBag(ROWS, DIM, mode="max").double()
    compiled = tg.compile(lambda i: bag(i))
    g = np.random.default_rng(4)
    for _ in range(2):  # 2-d input: the bags' layout is its shape
        inp = g.integers(0, ROWS, (3, 4))
        np.testing.assert_allclose(compiled(tg.tensor(inp)).numpy(),
                                   bag(tg.tensor(inp)).numpy(), rtol=1e-12)
    # 1-d with offsets: the longest bag is a shape, so offsets that change from call to call
    # are refused (once tg.compile sees them change), never answered with the old layout
    compiled1 = tg.compile(lambda i, o: bag(i, o))
    np.testing.assert_array_equal(compiled1(tg.tensor(INPUT), tg.tensor([0, 4, 4, 7, 10]))
                                  .numpy(), bag(tg.tensor(INPUT), tg.tensor([0, 4, 4, 7, 10]))
                                  .numpy())
    with pytest.raises(tg.TraceError, match="embedding_bag"):
        compiled1(tg.tensor(INPUT), tg.tensor([0, 1, 2, 3, 4]))


def test_errors():
    w = tg.tensor(_weight())
    idx = tg.tensor(INPUT)
    with pytest.raises(ValueError, match="needs offsets"):
        F.embedding_bag(idx, w)
    with pytest.raises(ValueError, match="offsets must be None"):
        F.embedding_bag(idx.reshape(1, -1), w, tg.tensor([0]))
    with pytest.raises(ValueError, match=r"offsets\[0\] must be 0"):
        F.embedding_bag(idx, w, tg.tensor([1, 3]))
    with pytest.raises(ValueError, match="must not decrease"):
        F.embedding_bag(idx, w, tg.tensor([0, 3, 2]))
    with pytest.raises(ValueError, match="more than the input's length"):
        F.embedding_bag(idx, w, tg.tensor([0, 12]))
    with pytest.raises(ValueError, match="include_last_offset=True"):
        F.embedding_bag(idx, w, tg.tensor([0, 3, 5]), include_last_offset=True)
    with pytest.raises(NotImplementedError, match="only supported for mode='sum'"):
        F.embedding_bag(idx, w, tg.tensor([0]), per_sample_weights=tg.ones(11))
    with pytest.raises(tg.ShapeError, match="per_sample_weights has shape"):
        F.embedding_bag(idx, w, tg.tensor([0]), mode="sum", per_sample_weights=tg.ones(3))
    with pytest.raises(IndexError, match="table has 7 rows"):
        F.embedding_bag(tg.tensor([0, 7]), w, tg.tensor([0]))
    with pytest.raises(ValueError, match="mode must be"):
        F.embedding_bag(idx, w, tg.tensor([0]), mode="min")
    with pytest.raises(NotImplementedError, match="max_norm"):
        nn.EmbeddingBag(3, 2, max_norm=1.0)
    with pytest.raises(TypeError, match="must be integers"):
        F.embedding_bag(tg.tensor([0.0, 1.0]), w, tg.tensor([0]))


@settings(max_examples=25, deadline=None)
@given(lengths=st.lists(st.integers(0, 4), min_size=1, max_size=5),
       mode=st.sampled_from(["sum", "mean", "max"]), last=st.booleans(),
       padding_idx=st.sampled_from([None, 0, 3]), seed=st.integers(0, 2**16))
def test_random_bags_match_torch(lengths, mode, last, padding_idx, seed):
    g = np.random.default_rng(seed)
    inp = g.integers(0, ROWS, sum(lengths))
    off = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    if last:
        off = np.append(off, inp.size)
    w = g.standard_normal((ROWS, DIM))
    x, tx = tg.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    kw = dict(mode=mode, include_last_offset=last, padding_idx=padding_idx)
    ours = F.embedding_bag(tg.tensor(inp), x, tg.tensor(off), **kw)
    theirs = TF.embedding_bag(torch.tensor(inp), tx, torch.tensor(off), **kw)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12,
                               atol=1e-15)
    v = g.standard_normal(tuple(theirs.shape))
    (ours * tg.tensor(v)).sum().backward()
    (theirs * torch.tensor(v)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-15)
