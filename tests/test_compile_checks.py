"""A compiled function validates each call's values, as eager code does.

Library code that tests values (labels in range, probabilities in [0, 1], a finite norm)
used to read them in Python: in a compiled function that tested only the call it was traced
with, and a later call with bad values returned a number (a wrapped-around index, a nan, a
wrong one-hot row) where eager code raises. Each case here calls a compiled function with
good values until it runs the compiled program, then with bad ones: it must raise eager's
error, with eager's message, and then still run good calls.
"""

from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn as nn
import tracegrad.nn.functional as F

X = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)


def _ints(*v):
    return tg.tensor(np.array(v, np.int64))


emb = nn.Embedding(4, 2)
bag = nn.EmbeddingBag(4, 2, mode="sum")

# (name, fn, good arguments, bad arguments)
CASES = [
    ("cross_entropy negative label", lambda x, y: F.cross_entropy(x, y),
     (tg.tensor(X), _ints(0, 1, 2)), (tg.tensor(X), _ints(0, -1, 2))),
    ("cross_entropy label too large", lambda x, y: F.cross_entropy(x, y),
     (tg.tensor(X), _ints(0, 1, 2)), (tg.tensor(X), _ints(0, 7, 2))),
    ("cross_entropy ignore_index passes, others checked",
     lambda x, y: F.cross_entropy(x, y, ignore_index=-1),
     (tg.tensor(X), _ints(0, -1, 2)), (tg.tensor(X), _ints(-1, -2, 2))),
    ("nll_loss", lambda x, y: F.nll_loss(x.log_softmax(1), y),
     (tg.tensor(X), _ints(4, 1, 2)), (tg.tensor(X), _ints(5, 1, 2))),
    ("multi_margin_loss", lambda x, y: F.multi_margin_loss(x, y),
     (tg.tensor(X), _ints(4, 1, 2)), (tg.tensor(X), _ints(-1, 1, 2))),
    ("multilabel_margin_loss", lambda x, y: F.multilabel_margin_loss(x, y),
     (tg.tensor(X), _ints(*[[0, -1, 0, 0, 0]] * 3)),
     (tg.tensor(X), _ints(*[[0, -2, 0, 0, 0]] * 3))),
    ("gather negative index", lambda x, i: x.gather(1, i),
     (tg.tensor(X), _ints([0], [1], [2])), (tg.tensor(X), _ints([0], [-1], [2]))),
    ("index_select", lambda x, i: x.index_select(1, i),
     (tg.tensor(X), _ints(0, 4)), (tg.tensor(X), _ints(0, 5))),
    ("scatter", lambda x, i: tg.zeros(3, 5).scatter(1, i, x[:, :1]),
     (tg.tensor(X), _ints([0], [1], [2])), (tg.tensor(X), _ints([0], [9], [2]))),
    ("take", lambda x, i: x.take(i), (tg.tensor(X), _ints(0, -15)), (tg.tensor(X), _ints(15))),
    ("put", lambda x, i: x.put(i, tg.ones(2)), (tg.tensor(X), _ints(0, -15)),
     (tg.tensor(X), _ints(0, -16))),
    ("unravel_index", lambda i: tg.unravel_index(i, (2, 3))[0], (_ints(5, -6),), (_ints(6),)),
    ("embedding negative index", lambda i: emb(i), (_ints(0, 3),), (_ints(0, -1),)),
    ("embedding_bag", lambda i: bag(i, _ints(0, 1)), (_ints(0, 3),), (_ints(0, 4),)),
    ("one_hot", lambda y: F.one_hot(y, 4), (_ints(0, 3),), (_ints(0, 4),)),
    ("binary_cross_entropy", lambda p: F.binary_cross_entropy(p, tg.tensor([1.0, 0.0])),
     (tg.tensor([0.5, 0.25]),), (tg.tensor([1.5, 0.25]),)),
    ("binary_cross_entropy nan", lambda p: F.binary_cross_entropy(p, tg.tensor([1.0, 0.0])),
     (tg.tensor([0.5, 0.25]),), (tg.tensor([np.nan, 0.25]),)),
    ("gaussian_nll_loss var", lambda v: F.gaussian_nll_loss(tg.zeros(2), tg.ones(2), v),
     (tg.tensor([0.5, 1.0]),), (tg.tensor([0.5, -1.0]),)),
    ("multinomial negative weight", lambda p: tg.multinomial(p, 1),
     (tg.tensor([0.5, 0.5]),), (tg.tensor([-0.5, 1.5]),)),
    ("multinomial zero row", lambda p: tg.multinomial(p, 1),
     (tg.tensor([0.5, 0.5]),), (tg.tensor([0.0, 0.0]),)),
    ("multinomial too few categories", lambda p: tg.multinomial(p, 2),
     (tg.tensor([0.5, 0.5]),), (tg.tensor([0.0, 1.0]),)),
    ("integer floor division by zero", lambda a, b: a // b, (_ints(7, -7), _ints(2, 3)),
     (_ints(7, -7), _ints(2, 0))),
    ("integer remainder by zero", lambda a, b: a % b, (_ints(7, -7), _ints(2, 3)),
     (_ints(7, -7), _ints(0, 3))),
    ("bernoulli p", lambda p: tg.bernoulli(p), (tg.tensor([0.25, 1.0]),),
     (tg.tensor([0.25, 1.5]),)),
    ("normal std", lambda s: tg.normal(tg.zeros(2), s), (tg.tensor([0.5, 0.0]),),
     (tg.tensor([0.5, -1.0]),)),
    ("quantile q", lambda q: tg.quantile(tg.tensor(X), q), (tg.tensor([0.25, 1.0]),),
     (tg.tensor([0.25, 1.5]),)),
    ("ctc_loss input_lengths", lambda n: F.ctc_loss(
        tg.zeros(4, 1, 3).log_softmax(2), _ints([1, 2]), n, _ints(2)),
     (_ints(4),), (_ints(5),)),
]


def _outcome(fn, args):
    try:
        out = fn(*args)
    except Exception as e:  # noqa: BLE001 (the outcome is what is compared)
        return type(e), str(e)
    return None, out.detach().numpy().copy()


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("name,fn,good,bad", CASES, ids=[c[0] for c in CASES])
def test_compiled_calls_raise_what_eager_raises(name, fn, good, bad, backend):
    tg.manual_seed(0)
    error, message = _outcome(fn, bad)
    assert error is not None, f"{name}: eager runs the bad call"
    tg.manual_seed(0)
    want = fn(*good).detach().numpy()
    compiled = tg.compile(fn, backend=backend)
    for _ in range(3):  # eager, traced, then the program
        tg.manual_seed(0)
        np.testing.assert_allclose(compiled(*good).detach().numpy(), want, rtol=1e-6)
    assert compiled.cache_info().hits >= 1
    got_error, got_message = _outcome(compiled, bad)
    assert (got_error, got_message) == (error, message)
    tg.manual_seed(0)
    np.testing.assert_allclose(compiled(*good).detach().numpy(), want, rtol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_clip_grad_norm_error_if_nonfinite_in_a_compiled_step(backend):
    """The check of the total norm runs in the compiled step (it raised TraceError before:
    float(total) read a traced value); a failing call changes no parameter."""
    tg.manual_seed(0)
    model = nn.Linear(3, 1)
    opt = tg.optim.SGD(model.parameters(), lr=0.1)

    def step(x):
        opt.zero_grad()
        model(x).sum().backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), 1.0, error_if_nonfinite=True)
        opt.step()
        return norm

    compiled = tg.compile(step, backend=backend)
    for _ in range(3):
        assert np.isclose(float(compiled(tg.ones(2, 3))), 4.0)
    before = model.weight.detach().numpy().copy()
    with pytest.raises(RuntimeError, match="the total norm of order 2.0 is inf"):
        compiled(tg.tensor([[np.inf, 1.0, 1.0]]))
    np.testing.assert_array_equal(model.weight.detach().numpy(), before)
    assert compiled.cache_info().hits >= 1


def test_bce_gradient_passes_through_the_check():
    """The compiled gradient of a checked operand is eager's."""
    p0 = np.array([0.2, 0.7, 0.9], np.float32)
    target = tg.tensor([1.0, 0.0, 1.0])

    def grad(p):
        p.grad = None
        F.binary_cross_entropy(p.sigmoid(), target).backward()
        return p.grad

    eager = grad(tg.tensor(p0, requires_grad=True)).numpy()
    compiled = tg.compile(grad)
    for _ in range(3):
        np.testing.assert_allclose(compiled(tg.tensor(p0, requires_grad=True)).numpy(), eager,
                                   rtol=1e-6)


# Checks whose result nothing reads: dead-code elimination keeps them (the "raises" fact).
UNUSED = [
    ("ctc_loss label equal to the blank", lambda t: F.ctc_loss(
        tg.zeros(4, 1, 3).log_softmax(2), t, _ints(4), _ints(2)),
     (_ints([1, 2]),), (_ints([1, 0]),)),
    ("ctc_loss label out of range", lambda t: F.ctc_loss(
        tg.zeros(4, 1, 3).log_softmax(2), t, _ints(4), _ints(2)),
     (_ints([1, 2]),), (_ints([1, 3]),)),
    ("embedding_bag offsets start", lambda o: bag(_ints(0, 3, 1), o), (_ints(0, 1),),
     (_ints(1, 1),)),
    ("embedding_bag offsets decrease", lambda o: bag(_ints(0, 3, 1), o), (_ints(0, 2),),
     (_ints(0, -1),)),
    ("embedding_bag offsets beyond the input", lambda o: bag(_ints(0, 3, 1), o),
     (_ints(0, 3),), (_ints(0, 4),)),
    ("embedding_bag include_last_offset", lambda o: F.embedding_bag(
        _ints(0, 3, 1), bag.weight, o, mode="sum", include_last_offset=True),
     (_ints(0, 1, 3),), (_ints(0, 1, 2),)),
]


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("name,fn,good,bad", UNUSED, ids=[c[0] for c in UNUSED])
def test_a_check_nothing_reads_still_runs(name, fn, good, bad, backend):
    test_compiled_calls_raise_what_eager_raises(name, fn, good, bad, backend)
