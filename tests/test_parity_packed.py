"""Packed sequences (tg.nn.utils.rnn) against torch.nn.utils.rnn: packing, unpacking and
their gradients, RNN/LSTM/GRU on packed batches (outputs, final states and every gradient),
the errors torch raises, and what a compiled function does when the lengths change."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from gradcheck import check_grads

import tracegrad as tg
from tracegrad import nn
from tracegrad.nn.utils import rnn as R

torch = pytest.importorskip("torch")
TR = torch.nn.utils.rnn

RNG = np.random.default_rng(0)


def padded(lengths, batch_first, features=(3,), seed=0):
    """A float64 padded batch for ``lengths`` (the padding holds numbers too: packing must
    leave it out)."""
    shape = (len(lengths), max(lengths)) if batch_first else (max(lengths), len(lengths))
    return np.random.default_rng(seed).standard_normal(shape + tuple(features))


def same(ours, theirs, what=""):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert ours.shape == theirs.shape, what
    np.testing.assert_allclose(ours.detach().numpy(), theirs, rtol=1e-10, atol=1e-12,
                               err_msg=what)


def same_packed(p, q):
    same(p.data, q.data, "data")
    assert p.batch_sizes.dtype == tg.int64
    assert p.batch_sizes.tolist() == q.batch_sizes.tolist()
    for a, b in [(p.sorted_indices, q.sorted_indices), (p.unsorted_indices, q.unsorted_indices)]:
        assert (a is None and b is None) or a.tolist() == b.tolist()


LENGTHS = [([5, 3, 2], True), ([5, 3, 2], False), ([2, 5, 3], False), ([4, 1, 4, 2], False),
           ([3, 3, 3], True), ([1], True)]


@pytest.mark.parametrize("lengths, enforce_sorted", LENGTHS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_pack_and_pad_match_torch_with_gradients(lengths, enforce_sorted, batch_first):
    x = padded(lengths, batch_first, features=(2, 3))
    if max(lengths) == 5:  # a longer padded input: packing drops the extra steps too
        x = np.concatenate([x, x[:, :1] if batch_first else x[:1]], 1 if batch_first else 0)
    xt, tx = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    p = R.pack_padded_sequence(xt, lengths, batch_first, enforce_sorted)
    q = TR.pack_padded_sequence(tx, lengths, batch_first, enforce_sorted)
    same_packed(p, q)
    for total in (None, 7):
        out, lens = R.pad_packed_sequence(p, batch_first, -1.5, total)
        tout, tlens = TR.pad_packed_sequence(q, batch_first, -1.5, total)
        same(out, tout, f"padded, total_length={total}")
        assert lens.dtype == tg.int64 and lens.tolist() == tlens.tolist() == lengths
    w = RNG.standard_normal(tuple(tout.shape))
    (out * tg.tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    same(xt.grad, tx.grad, "gradient of the padded input")


def test_pack_and_pad_gradients_match_finite_differences():
    def pack_pad(x):
        p = R.pack_padded_sequence(x, [1, 3, 2], batch_first=True, enforce_sorted=False)
        return R.pad_packed_sequence(p, total_length=4)[0] * p.data.sum()

    check_grads(pack_pad, tg.tensor(padded([1, 3, 2], True, features=(2,))))


@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_pack_sequence_unpack_sequence_and_unpad_sequence_match_torch(enforce_sorted):
    values = [RNG.standard_normal((n, 2)) for n in ((4, 3, 1) if enforce_sorted else (2, 4, 1))]
    seqs = [tg.tensor(v, requires_grad=True) for v in values]
    tseqs = [torch.tensor(v, requires_grad=True) for v in values]
    p, q = R.pack_sequence(seqs, enforce_sorted), TR.pack_sequence(tseqs, enforce_sorted)
    same_packed(p, q)
    back, tback = R.unpack_sequence(p), TR.unpack_sequence(q)
    assert len(back) == len(tback) == 3
    loss, tloss = 0, 0
    for k, (s, t) in enumerate(zip(back, tback)):
        same(s, t, f"sequence {k}")
        same(s, values[k])
        w = RNG.standard_normal(s.shape)
        loss, tloss = loss + (s * tg.tensor(w)).sum() ** 2, tloss + (t * torch.tensor(w)).sum() ** 2
    loss.backward()
    tloss.backward()
    for s, t in zip(seqs, tseqs):
        same(s.grad, t.grad, "gradient of a sequence")
    for batch_first in (False, True):  # unpad_sequence undoes pad_sequence
        pad = R.pad_sequence(seqs, batch_first)
        before = pad.shape
        for s, v in zip(R.unpad_sequence(pad, tg.tensor([len(v) for v in values]), batch_first),
                        values):
            same(s, v)
        assert pad.shape == before  # (torch's transposes its argument in place)


def test_one_dimensional_sequences_and_integer_data():
    p = R.pack_sequence([tg.tensor([1, 2, 3]), tg.tensor([4, 5]), tg.tensor([6])])
    assert p.data.tolist() == [1, 4, 6, 2, 5, 3] and p.batch_sizes.tolist() == [3, 2, 1]
    out, lens = R.pad_packed_sequence(p, batch_first=True, padding_value=-1)
    assert out.dtype == tg.int64 and out.tolist() == [[1, 2, 3], [4, 5, -1], [6, -1, -1]]
    assert lens.tolist() == [3, 2, 1]


def test_packed_sequence_is_a_named_tuple_with_torch_conversions():
    x = tg.tensor(padded([3, 1], False, seed=1), dtype=tg.float32)
    p = R.pack_padded_sequence(x, [1, 3], enforce_sorted=False)
    data, batch_sizes, sorted_indices, unsorted_indices = p
    assert data is p.data and p._fields == ("data", "batch_sizes", "sorted_indices",
                                            "unsorted_indices")
    assert sorted_indices.tolist() == [1, 0] and unsorted_indices.tolist() == [1, 0]
    assert p.float() is p and p.to(tg.float32) is p and p.cpu() is p and not p.is_cuda
    for method, dtype in [("double", tg.float64), ("half", tg.float16), ("long", tg.int64),
                          ("int", tg.int32), ("short", tg.int16), ("char", tg.int8),
                          ("byte", tg.uint8)]:
        q = getattr(p, method)()
        assert type(q) is R.PackedSequence and q.data.dtype == dtype, method
        assert q.batch_sizes is p.batch_sizes and q.sorted_indices is p.sorted_indices
    assert p.to(tg.float64).data.dtype == tg.float64
    with pytest.raises(Exception, match="cuda|CUDA"):
        p.cuda()
    # made from (data, batch_sizes) and sorted_indices alone, the inverse is computed
    q = R.PackedSequence((p.data, p.batch_sizes), sorted_indices=tg.tensor([2, 0, 1]))
    assert q.unsorted_indices.tolist() == [1, 2, 0]
    perm = torch.randperm(7)
    assert R.invert_permutation(tg.tensor(perm.numpy())).tolist() == \
        TR.invert_permutation(perm).tolist()
    assert R.invert_permutation(None) is None
    assert repr(p).startswith("PackedSequence(data=tensor(")


# ------------------------------------------------------------------------ recurrent layers


def twin(name, *args, **kw):
    theirs = getattr(torch.nn, name)(*args, **kw).double()
    ours = getattr(nn, name)(*args, **kw).double()
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def states(out):
    """h_n, or h_n and c_n, as a list."""
    return list(out) if isinstance(out, tuple) else [out]


def run_packed(name, layers, bidirectional, batch_first, enforce_sorted, with_hx, lengths,
               **kw):
    """Run ours and torch's on the same packed batch; compare the packed output, the padded
    output, the final states and the gradients of the input, the initial states and every
    weight."""
    ours, theirs = twin(name, 3, 4, num_layers=layers, bidirectional=bidirectional,
                        batch_first=batch_first, **kw)
    x = padded(lengths, batch_first, seed=len(lengths))
    xt, tx = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    args, targs = [R.pack_padded_sequence(xt, lengths, batch_first, enforce_sorted)], \
        [TR.pack_padded_sequence(tx, lengths, batch_first, enforce_sorted)]
    hs, ths = [], []
    if with_hx:
        dirs = 2 if bidirectional else 1
        for _ in range(2 if name == "LSTM" else 1):
            h = RNG.standard_normal((layers * dirs, len(lengths), 4))
            hs.append(tg.tensor(h, requires_grad=True))
            ths.append(torch.tensor(h, requires_grad=True))
        args.append(tuple(hs) if name == "LSTM" else hs[0])
        targs.append(tuple(ths) if name == "LSTM" else ths[0])
    out, hn = ours(*args)
    tout, thn = theirs(*targs)
    assert type(out) is R.PackedSequence
    same_packed(out, tout)
    pad, _ = R.pad_packed_sequence(out, batch_first)
    tpad, _ = TR.pad_packed_sequence(tout, batch_first)
    same(pad, tpad, "padded output")
    results, tresults = [pad] + states(hn), [tpad] + states(thn)
    loss, tloss = 0, 0
    for k, (o, t) in enumerate(zip(results, tresults)):
        same(o, t, ["output", "h_n", "c_n"][k])
        w = RNG.standard_normal(o.shape)
        loss, tloss = loss + (o * tg.tensor(w)).sum(), tloss + (t * torch.tensor(w)).sum()
    loss.backward()
    tloss.backward()
    same(xt.grad, tx.grad, "input gradient")
    for h, th in zip(hs, ths):
        same(h.grad, th.grad, "initial state gradient")
    tparams = dict(theirs.named_parameters())
    for pname, p in ours.named_parameters():
        same(p.grad, tparams[pname].grad, pname)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("layers, bidirectional, batch_first, enforce_sorted, with_hx",
                         list(itertools.product([1, 2], [False, True], [False, True],
                                                [True, False], [False, True])),
                         ids=lambda v: str(int(v)))
def test_recurrent_layers_on_packed_batches_match_torch(name, layers, bidirectional,
                                                        batch_first, enforce_sorted, with_hx):
    lengths = [5, 3, 3, 1] if enforce_sorted else [2, 5, 1, 3]
    run_packed(name, layers, bidirectional, batch_first, enforce_sorted, with_hx, lengths)


@pytest.mark.parametrize("name, kw", [("RNN", {"nonlinearity": "relu", "bias": False}),
                                      ("GRU", {"bias": False}), ("LSTM", {})])
def test_packed_edge_cases_match_torch(name, kw):
    run_packed(name, 2, True, False, False, True, [1, 1], **kw)  # every sequence one step
    run_packed(name, 1, True, True, True, False, [4, 4, 4], **kw)  # all full length
    run_packed(name, 2, True, True, False, True, [1, 6, 2, 6, 3], **kw)  # ties


def test_packed_full_batch_equals_the_padded_forward():
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True).double()
    x = tg.tensor(padded([5, 5], False))
    out, (h, c) = lstm(x)
    pout, (ph, pc) = lstm(R.pack_padded_sequence(x, [5, 5]))
    np.testing.assert_allclose(R.pad_packed_sequence(pout)[0].numpy(), out.numpy(), 1e-12)
    np.testing.assert_allclose(ph.numpy(), h.numpy(), 1e-12)
    np.testing.assert_allclose(pc.numpy(), c.numpy(), 1e-12)


# ---------------------------------------------------------------------------------- errors


def both_raise(fn, *args, match, **kw):
    """Ours and torch's raise RuntimeError saying ``match``."""
    ours = [tg.tensor(a) if isinstance(a, np.ndarray) else a for a in args]
    theirs = [torch.tensor(a) if isinstance(a, np.ndarray) else a for a in args]
    with pytest.raises(RuntimeError, match=match):
        getattr(TR, fn)(*theirs, **kw)
    with pytest.raises(RuntimeError, match=match):
        getattr(R, fn)(*ours, **kw)


def test_bad_lengths_raise_as_in_torch():
    x = padded([5, 3, 2], False)
    both_raise("pack_padded_sequence", x, [3, 5, 2],
               match=r"must be sorted in decreasing order .*enforce_sorted=False")
    with pytest.raises(RuntimeError, match="enforce_sorted=False"):
        R.pack_sequence([tg.ones(2), tg.ones(3)])
    with pytest.raises(RuntimeError, match="enforce_sorted=False"):
        TR.pack_sequence([torch.ones(2), torch.ones(3)])
    for lengths, sort in [([5, 3, 0], True), ([0, 5, 3], False), ([5, -1, 2], False)]:
        both_raise("pack_padded_sequence", x, lengths, enforce_sorted=sort,
                   match="Length of all samples has to be greater than 0")
    both_raise("pack_padded_sequence", x, [5, 3], match=r"Expected `len\(lengths\)` to be "
                                                        r"equal to batch_size, but got 2 "
                                                        r"\(batch_size=3\)")
    both_raise("pack_padded_sequence", np.ones((0, 3)), [], match="Cannot pack empty tensors")
    with pytest.raises(ValueError, match="total_length=3 and max sequence length being 5"):
        R.pad_packed_sequence(R.pack_padded_sequence(tg.tensor(x), [5, 3, 2]), total_length=3)
    with pytest.raises(RuntimeError, match="1-d"):
        R.pack_padded_sequence(tg.tensor(x), tg.tensor([[5, 3, 2]]))


def test_lengths_longer_than_the_input_raise():
    # torch 2.13 does not check this: it reads past the end of the input and returns a
    # batch_sizes that does not add up to its data. We refuse.
    for batch_first in (False, True):
        x = tg.tensor(padded([5, 3, 2], batch_first))
        with pytest.raises(RuntimeError, match=r"length 6 is longer than the input's 5 time "
                                               r"steps"):
            R.pack_padded_sequence(x, [6, 3, 2], batch_first, enforce_sorted=False)


def test_recurrent_layers_check_packed_shapes():
    p = R.pack_padded_sequence(tg.tensor(padded([3, 2], False, features=(2,))), [3, 2])
    with pytest.raises(tg.ShapeError, match=r"GRU\(input_size=3\): expects a PackedSequence "
                                            r"with data .*got \(5, 2\)"):
        nn.GRU(3, 4)(p)
    p = R.pack_padded_sequence(tg.tensor(padded([3, 2], False)), [3, 2])
    with pytest.raises(tg.ShapeError, match=r"initial state has shape \(1, 3, 4\), expected "
                                            r"\(1, 2, 4\)"):
        nn.LSTM(3, 4)(p, (tg.zeros(1, 3, 4), tg.zeros(1, 3, 4)))
    with pytest.raises(TypeError, match="expects a PackedSequence"):
        R.pad_packed_sequence(tg.zeros(3, 2))


# --------------------------------------------------------------------------------- compile


GRU = nn.GRU(3, 4, num_layers=2, bidirectional=True).double()


def gru_on(x, lengths):
    """Pack, run the GRU, unpack: what a ported NLP model does."""
    out, h = GRU(R.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    return R.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0], h


def allclose(results, expected):
    for r, e in zip(results, expected):
        np.testing.assert_allclose(r.detach().numpy(), e.detach().numpy(), rtol=1e-12,
                                   atol=1e-14)


def test_compiled_with_python_lengths_gives_each_calls_result():
    # The same shapes every call; the lengths (ints: guards) choose the variant. [5, 4, 1]
    # packs to the same number of rows and steps as [5, 3, 2]: only the values differ.
    compiled = tg.compile(gru_on)
    x = tg.tensor(padded([5, 5, 5], True))
    for lengths in ([5, 3, 2], [4, 4, 1], [5, 4, 1], [5, 3, 2], [2, 3, 5], [4, 4, 1]):
        allclose(compiled(x, lengths), gru_on(x, lengths))

    def loss(x, lengths):
        out, h = gru_on(x, lengths)
        return (out ** 2).sum() + h.sum()

    compiled_loss = tg.compile(loss)
    for lengths in ([5, 3, 2], [4, 4, 1], [5, 4, 1], [5, 3, 2]):
        xe = x.detach().requires_grad_()
        GRU.zero_grad()
        loss(xe, lengths).backward()
        eager = [xe.grad] + [p.grad for p in GRU.parameters()]
        GRU.zero_grad()
        xc = x.detach().requires_grad_()
        compiled_loss(xc, lengths).backward()
        allclose([xc.grad] + [p.grad for p in GRU.parameters()], eager)


def test_compiled_with_lengths_in_a_list_changed_in_place_follows_the_list():
    lengths = [5, 3, 2]

    def f(x):
        return gru_on(x, lengths)

    compiled = tg.compile(f)
    x = tg.tensor(padded([5, 5, 5], True))
    for new in ([5, 3, 2], [4, 4, 1], [5, 4, 1], [5, 3, 2]):
        lengths[:] = new
        allclose(compiled(x), gru_on(x, new))


def test_compiled_with_lengths_as_data_raises_trace_error():
    # A lengths tensor given to the function (or a packed batch, whose batch_sizes are
    # data) would fix the packed layout at the traced call's values: a TraceError instead.
    # (The first call of a compiled function runs eagerly.)
    x = tg.tensor(padded([5, 5, 5], True))
    compiled = tg.compile(gru_on)
    allclose(compiled(x, tg.tensor([5, 3, 2])), gru_on(x, [5, 3, 2]))
    for lengths in ([4, 4, 1], [5, 3, 2]):
        with pytest.raises(tg.TraceError, match=r"pack_padded_sequence: the 'lengths' tensor "
                                                r"holds values that change .*Python list"):
            compiled(x, tg.tensor(lengths))

    def on_packed(p):
        out, h = GRU(p)
        return out.data, h

    compiled = tg.compile(on_packed)
    p = R.pack_padded_sequence(x, [5, 3, 2], batch_first=True)
    allclose(compiled(p), on_packed(p))
    p = R.pack_padded_sequence(x, [5, 4, 1], batch_first=True)  # the same shapes
    with pytest.raises(tg.TraceError, match="GRU: the 'batch_sizes' tensor"):
        compiled(p)

    def from_data(x):  # lengths computed from the values: data as well
        return gru_on(x, (x[:, :, 0] != 0).sum(1))

    compiled = tg.compile(from_data)
    compiled(x)
    with pytest.raises(tg.TraceError):
        compiled(x)
