"""F.ctc_loss / nn.CTCLoss against torch 2.13: values for every reduction and target layout,
gradients through a log_softmax (as every CTC model has it) against torch, the true gradient
with respect to the log-probabilities against finite differences, impossible alignments
(inf, zero_infinity), compiled against eager, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_grads

import tracegrad as tg
from tracegrad import nn
from tracegrad.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

T, N, C = 7, 4, 5
TARGETS = np.array([[1, 2, 2, 3], [4, 4, 0, 0], [3, 0, 0, 0], [2, 1, 3, 1]])
TARGET_LENGTHS = np.array([4, 2, 0, 3])
INPUT_LENGTHS = np.array([7, 5, 3, 6])


def _logits(seed=0, shape=(T, N, C)):
    return np.random.default_rng(seed).standard_normal(shape)


def _both(logits, targets, input_lengths, target_lengths, **kw):
    """Our and torch's losses of log_softmax(logits), and the two logits leaves."""
    x, tx = tg.tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    ours = F.ctc_loss(F.log_softmax(x, -1), tg.tensor(targets), tg.tensor(input_lengths),
                      tg.tensor(target_lengths), **kw)
    theirs = TF.ctc_loss(tx.log_softmax(-1), torch.tensor(targets),
                         torch.tensor(input_lengths), torch.tensor(target_lengths), **kw)
    return ours, theirs, x, tx


def _check(ours, theirs, x, tx):
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-11)
    v = np.random.default_rng(9).standard_normal(tuple(theirs.shape))
    (ours * tg.tensor(v)).sum().backward()
    (theirs * torch.tensor(v)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("blank", [0, 3])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_padded_targets_match_torch(reduction, blank):
    targets = np.where(TARGETS == blank, (blank + 1) % C, TARGETS)  # no label is the blank
    _check(*_both(_logits(), targets, INPUT_LENGTHS, TARGET_LENGTHS, blank=blank,
                  reduction=reduction))


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_concatenated_targets_match_torch(reduction):
    flat = np.concatenate([row[:n] for row, n in zip(TARGETS, TARGET_LENGTHS)])
    _check(*_both(_logits(1), flat, INPUT_LENGTHS, TARGET_LENGTHS, reduction=reduction))


def test_unbatched_matches_torch():
    _check(*_both(_logits(2, (T, C)), np.array([1, 3, 3]), np.array(6), np.array(3),
                  reduction="none"))


@pytest.mark.parametrize("zero_infinity", [False, True])
def test_impossible_alignments(zero_infinity):
    # sample 0: 4 labels with a repeat need 5 frames, it has 4; sample 2: no frames
    ours, theirs, x, tx = _both(_logits(3), TARGETS, np.array([4, 5, 0, 6]),
                                np.array([4, 2, 1, 3]), reduction="none",
                                zero_infinity=zero_infinity)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-11)
    assert np.isinf(ours.numpy()[0]) != zero_infinity
    ours[1].backward()
    theirs[1].backward()
    # (torch's gradient is nan for an infinite loss, even one that its backward weights by
    # 0; ours is 0)
    rows = slice(None) if zero_infinity else slice(1, None)
    np.testing.assert_allclose(x.grad.numpy()[:, rows], tx.grad.numpy()[:, rows], rtol=1e-9,
                               atol=1e-12)
    assert np.all(x.grad.numpy()[:, 0] == 0)
    ours0 = F.ctc_loss(tg.tensor(_logits(3)[:, :1]), tg.tensor(TARGETS[:1]), [0], [0],
                       reduction="none")
    assert ours0.numpy() == 0.0  # no input, empty target: certain, as torch


def test_true_gradient_matches_finite_differences():
    lp = np.log(np.random.default_rng(4).dirichlet(np.ones(C), size=(5, 2)))

    def fn(log_probs):
        return F.ctc_loss(log_probs, tg.tensor(TARGETS[:2, :3]), [5, 4], [3, 2],
                          reduction="none")

    check_grads(fn, lp, order=1)
    check_grads(lambda z: fn(F.log_softmax(z, -1)), _logits(5, (5, 2, C)), order=1)


def test_module_matches_torch():
    lp = TF.log_softmax(torch.tensor(_logits(6)), -1)
    args = (torch.tensor(TARGETS), torch.tensor(INPUT_LENGTHS), torch.tensor(TARGET_LENGTHS))
    ours = nn.CTCLoss(blank=0, reduction="sum")(tg.tensor(lp.numpy()),
                                                 *[tg.tensor(a.numpy()) for a in args])
    theirs = torch.nn.CTCLoss(blank=0, reduction="sum")(lp, *args)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-11)
    assert repr(nn.CTCLoss()) == "CTCLoss()"


def test_compiled_matches_eager():
    def step(logits, targets, input_lengths, target_lengths):
        return F.ctc_loss(F.log_softmax(logits, -1), targets, input_lengths, target_lengths)

    compiled = tg.compile(step)
    g = np.random.default_rng(7)
    for seed in range(3):  # other values, targets and lengths each call
        targets = g.integers(1, C, (N, 4))
        args = (targets, g.integers(4, T + 1, N), g.integers(0, 5, N))
        got = []
        for f in (step, compiled):
            x = tg.tensor(_logits(seed), requires_grad=True)
            loss = f(x, *[tg.tensor(a) for a in args])
            loss.backward()
            got.append((loss.detach().numpy(), x.grad.numpy()))
        np.testing.assert_allclose(got[1][0], got[0][0], rtol=1e-12)
        np.testing.assert_allclose(got[1][1], got[0][1], rtol=1e-12, atol=1e-15)


def test_errors():
    lp = F.log_softmax(tg.tensor(_logits()), -1)
    tgts, il, tl = tg.tensor(TARGETS), tg.tensor(INPUT_LENGTHS), tg.tensor(TARGET_LENGTHS)
    with pytest.raises(ValueError, match="input_lengths must be in"):
        F.ctc_loss(lp, tgts, tg.tensor([8, 1, 1, 1]), tl)
    with pytest.raises(ValueError, match="target_lengths must be in"):
        F.ctc_loss(lp, tgts, il, tg.tensor([5, 1, 1, 1]))
    with pytest.raises(IndexError, match="other than the blank 0"):
        F.ctc_loss(lp, tg.tensor(TARGETS * 0), il, tl)
    with pytest.raises(tg.ShapeError, match="one length per sample"):
        F.ctc_loss(lp, tgts, il[:2], tl)
    with pytest.raises(ValueError, match="blank=5"):
        F.ctc_loss(lp, tgts, il, tl, blank=5)
    with pytest.raises(tg.ShapeError, match="log_probs must be"):
        F.ctc_loss(lp[0, 0], tgts, il, tl)
    with pytest.raises(ValueError, match="reduction must be"):
        F.ctc_loss(lp, tgts, il, tl, reduction="batchmean")


def test_compiled_concatenated_targets_refuse_changing_lengths():
    # 1-d targets: the longest target sets a shape, so lengths that change from call to
    # call are refused (tg.TraceError), never answered with the first call's layout
    lp = F.log_softmax(tg.tensor(_logits(8, (6, 2, C))), -1)
    compiled = tg.compile(lambda *a: F.ctc_loss(*a))
    args = (tg.tensor([1, 2, 3, 4]), tg.tensor([6, 5]))
    np.testing.assert_allclose(compiled(lp, *args, tg.tensor([2, 2])).numpy(),
                               F.ctc_loss(lp, *args, tg.tensor([2, 2])).numpy(), rtol=1e-12)
    with pytest.raises(tg.TraceError, match="ctc_loss with 1-d targets"):
        compiled(lp, *args, tg.tensor([1, 3]))
