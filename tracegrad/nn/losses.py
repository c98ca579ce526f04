"""PyTorch's margin, ranking, metric-learning and likelihood losses, each an ``F.`` function
and a loss Module: margin_ranking_loss, hinge_embedding_loss, soft_margin_loss,
multilabel_soft_margin_loss, cosine_embedding_loss, triplet_margin_loss,
triplet_margin_with_distance_loss, multi_margin_loss, multilabel_margin_loss,
poisson_nll_loss, gaussian_nll_loss and ctc_loss.

Every one is a composite of tracegrad ops (so it differentiates, traces and compiles); class
indices and targets are operands, never baked-in constants. The older losses (mse, l1,
cross-entropy, nll, bce, smooth-l1, huber, kl_div) live in `tracegrad.functional`; the
reduction rule is theirs (`functional._reduce`), and the Modules are built by the same
`layers._stateless` table.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .. import functional as F
from ..arguments import _static_data, checked
from ..errors import ShapeError
from ..functional import _reduce
from ..tensor import Tensor, _leaf, _operand, where
from .distance import pairwise_distance
from .layers import _stateless

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str, op: str) -> None:
    # (for the losses that reduce by themselves before `_reduce` would see the argument)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _broadcast(op: str, **tensors: Tensor) -> None:
    try:
        np.broadcast_shapes(*(t.shape for t in tensors.values()))
    except ValueError:
        shapes = ", ".join(f"{k} {t.shape}" for k, t in tensors.items())
        raise ShapeError(f"{op}: {shapes} do not broadcast") from None


def _same_ndim(op: str, **tensors: Tensor) -> None:
    if len({t.ndim for t in tensors.values()}) > 1:
        shapes = ", ".join(f"{k} {t.shape}" for k, t in tensors.items())
        raise ShapeError(f"{op}: all inputs must have the same number of dimensions, got "
                         f"{shapes}")


# At a hinge's kink the gradient is PyTorch's: clamp's (it passes) where torch clamps,
# relu's (it stops) where torch's kernel tests z > 0 (multi_margin, multilabel_margin).


def _class_indices(target: Any, op: str) -> Tensor:
    target = target if isinstance(target, Tensor) else Tensor(target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got {target.dtype}")
    return target.long()


def margin_ranking_loss(input1: Tensor, input2: Any, target: Any, margin: float = 0.0,
                        reduction: str = "mean") -> Tensor:
    """``max(0, -target * (input1 - input2) + margin)``, target +1 or -1 (``input1`` should
    rank higher, or lower).

    >>> F.margin_ranking_loss(tg.tensor([1.0]), tg.tensor([2.0]), tg.tensor([1.0]))
    tensor(1.)
    """
    input2, target = _operand(input2, input1), _operand(target, input1)
    _same_ndim("margin_ranking_loss", input1=input1, input2=input2, target=target)
    _broadcast("margin_ranking_loss", input1=input1, input2=input2, target=target)
    loss = F.clamp(-target * (input1 - input2) + margin, min=0.0)
    return _reduce(loss, reduction, "margin_ranking_loss")


def hinge_embedding_loss(input: Tensor, target: Any, margin: float = 1.0,
                         reduction: str = "mean") -> Tensor:
    """``input`` where target is 1, ``max(0, margin - input)`` where it is -1 (PyTorch's
    rule: a target that is neither gets both terms)."""
    target = _operand(target, input)
    _broadcast("hinge_embedding_loss", input=input, target=target)
    zero = _operand(0.0, input)
    loss = (where(target != 1, F.clamp(margin - input, min=0.0), zero)
            + where(target != -1, input, zero))
    return _reduce(loss, reduction, "hinge_embedding_loss")


def soft_margin_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """``log(1 + exp(-target * input))``, the logistic loss for targets +1 / -1 (as a
    softplus: finite where PyTorch's ``log1p(exp(...))`` overflows to inf)."""
    target = _operand(target, input)
    _broadcast("soft_margin_loss", input=input, target=target)
    return _reduce((-target * input).softplus(), reduction, "soft_margin_loss")  # (stable)


def multilabel_soft_margin_loss(input: Tensor, target: Any, weight: Any = None,
                                reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of logits per class, averaged over the classes (the last
    dimension): one loss per sample, then ``reduction``."""
    _check_reduction(reduction, "multilabel_soft_margin_loss")
    target = _operand(target, input)
    if input.ndim == 0:
        raise ShapeError("multilabel_soft_margin_loss: input must have a class dimension")
    _broadcast("multilabel_soft_margin_loss", input=input, target=target)
    loss = -(target * F.logsigmoid(input) + (1 - target) * F.logsigmoid(-input))
    if weight is not None:
        loss = loss * _operand(weight, input)
    loss = loss.sum(input.ndim - 1) * (1.0 / input.shape[-1])
    return _reduce(loss, reduction, "multilabel_soft_margin_loss")


_COSINE_EPS = 1e-12  # PyTorch's EPSILON in cosine_embedding_loss


def cosine_embedding_loss(input1: Tensor, input2: Any, target: Any, margin: float = 0.0,
                          reduction: str = "mean") -> Tensor:
    """``1 - cos(x1, x2)`` where target is 1, ``max(0, cos(x1, x2) - margin)`` where it is
    -1; inputs (N, D) or (D,), target (N,) or ()."""
    op = "cosine_embedding_loss"
    input2, target = _operand(input2, input1), _operand(target, input1)
    if input1.ndim not in (1, 2) or input1.shape != input2.shape \
            or target.ndim != input1.ndim - 1 or (target.ndim and target.shape[0]
                                                   != input1.shape[0]):
        raise ShapeError(f"{op}: expects input1 and input2 of one shape (N, D) or (D,) and "
                         f"target (N,) or (); got {input1.shape}, {input2.shape}, "
                         f"{target.shape}")
    d = input1.ndim - 1
    dot = (input1 * input2).sum(d)
    sq1 = (input1 * input1).sum(d) + _COSINE_EPS
    sq2 = (input2 * input2).sum(d) + _COSINE_EPS
    cos = dot / (sq1 * sq2).sqrt()
    zero = _operand(0.0, cos)
    loss = (where(target == 1, 1 - cos, zero)
            + where(target == -1, F.clamp(cos - margin, min=0.0), zero))
    return _reduce(loss, reduction, op)


def _triplet(op: str, anchor: Tensor, positive: Tensor, negative: Tensor, margin: float,
             swap: bool, distance: Callable, reduction: str) -> Tensor:
    if margin <= 0:
        raise ValueError(f"{op}: margin must be greater than 0, got {margin}")
    _check_reduction(reduction, op)
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise ShapeError(f"{op}: anchor, positive and negative must have the same number of "
                         f"dimensions, got {anchor.shape}, {positive.shape}, {negative.shape}")
    dist_pos = distance(anchor, positive)
    dist_neg = distance(anchor, negative)
    if swap:
        dist_neg = F.minimum(dist_neg, distance(positive, negative))
    return _reduce(F.clamp(margin + dist_pos - dist_neg, min=0.0), reduction, op)


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor,
                        margin: float = 1.0, p: float = 2, eps: float = 1e-6,
                        swap: bool = False, reduction: str = "mean") -> Tensor:
    """``max(0, d(a, p) - d(a, n) + margin)`` with ``d`` the p-norm distance of the last
    dimension (``eps`` added to the difference, as PyTorch); ``swap`` uses ``d(p, n)`` when
    it is smaller."""
    if anchor.ndim == 0:
        raise ShapeError("triplet_margin_loss: inputs need a feature dimension (the last), "
                         "got 0-d tensors")
    if not (isinstance(p, (int, float)) and p > 0):
        raise ValueError(f"triplet_margin_loss: p must be a positive number or inf, got {p!r}")
    return _triplet("triplet_margin_loss", anchor, positive, negative, margin, swap,
                    lambda a, b: pairwise_distance(a, b, p, eps), reduction)


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *,
                                      distance_function: Callable | None = None,
                                      margin: float = 1.0, swap: bool = False,
                                      reduction: str = "mean") -> Tensor:
    """`triplet_margin_loss` with any ``distance_function(x1, x2) -> distances`` (the
    pairwise 2-norm distance by default)."""
    return _triplet("triplet_margin_with_distance_loss", anchor, positive, negative, margin,
                    swap, distance_function or pairwise_distance, reduction)


def _rows(input: Tensor, op: str) -> Tensor:
    """(N, C) scores; a single sample (C,) becomes a batch of 1."""
    if input.ndim not in (1, 2):
        raise ShapeError(f"{op}: expects input (N, C) or (C,), got {input.shape}")
    return input.unsqueeze(0) if input.ndim == 1 else input


def multi_margin_loss(input: Tensor, target: Any, p: int = 1, margin: float = 1.0,
                      weight: Any = None, reduction: str = "mean") -> Tensor:
    """Multi-class hinge loss: ``sum_{j != y} w_y max(0, margin - x_y + x_j)^p / C`` per
    sample (``p`` 1 or 2), for scores (N, C) and class indices (N,)."""
    op = "multi_margin_loss"
    if p not in (1, 2):
        raise ValueError(f"{op}: only p == 1 and p == 2 are supported, got {p!r}")
    target = _class_indices(target, op)
    x = _rows(input, op)
    n, c = x.shape
    single = input.ndim == 1 and target.numel() == 1 and target.ndim <= 1
    t = target.reshape(1) if single else target
    if tuple(t.shape) != (n,):
        raise ShapeError(f"{op}: input {input.shape} needs target of shape "
                         f"{(n,) if input.ndim == 2 else ()}, got {target.shape}")
    t = checked(t, "in_range", (0, c), IndexError,
                f"{op}: target classes range over [{{lo}}, {{hi}}] but the input has {c} "
                f"classes")
    others = t.unsqueeze(1) != _leaf(np.arange(c))  # (N, C): j != y
    z = (margin - F.gather(x, 1, t.unsqueeze(1)) + x).relu()  # (0 gradient at 0, as torch)
    if p == 2:
        z = z * z
    loss = where(others, z, _operand(0.0, z))
    if weight is not None:
        w = _operand(weight, input)
        if w.ndim != 1 or w.shape[0] != c:
            raise ShapeError(f"{op}: weight must be one-dimensional with {c} entries, got "
                             f"{w.shape}")
        loss = loss * w[t].unsqueeze(1)
    loss = loss.sum(1) * (1.0 / c)
    return _reduce(loss.reshape(target.shape) if single else loss, reduction, op)


def multilabel_margin_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Multi-label hinge loss: for each target class ``y`` (the leading entries of a
    target row, up to its first -1) and each non-target class ``k``,
    ``max(0, 1 - (x_y - x_k))``, summed and divided by C."""
    op = "multilabel_margin_loss"
    target = _class_indices(target, op)
    x, single = _rows(input, op), input.ndim == 1
    t = target.unsqueeze(0) if single and target.ndim == 1 else target
    n, c = x.shape
    if tuple(t.shape) != (n, c):
        raise ShapeError(f"{op}: target must have the input's shape {input.shape}, got "
                         f"{target.shape}")
    t = checked(t, "in_range", (-1, c), IndexError,
                f"{op}: target entries must be class indices in [0, {c}) or -1 (the end of a "
                f"row's targets), got values in [{{lo}}, {{hi}}]")
    # A target slot counts up to the row's first negative entry.
    valid = F.cumsum((t < 0).long(), 1) == 0                              # (N, C) slots
    safe = where(valid, t, _operand(0, t))
    classes = _leaf(np.arange(c))
    is_target = F.any((safe.unsqueeze(2) == classes) & valid.unsqueeze(2), 1)  # (N, C)
    x_y = F.gather(x, 1, safe)                                            # (N, slots)
    z = (1 - x_y.unsqueeze(2) + x.unsqueeze(1)).relu()                    # (N, slots, C)
    keep = valid.unsqueeze(2) & ~is_target.unsqueeze(1)
    loss = where(keep, z, _operand(0.0, z)).sum((1, 2)) * (1.0 / c)
    return _reduce(loss.reshape(()) if single else loss, reduction, op)


def poisson_nll_loss(input: Tensor, target: Any, log_input: bool = True, full: bool = False,
                     eps: float = 1e-8, reduction: str = "mean") -> Tensor:
    """Poisson negative log-likelihood: ``exp(input) - target * input`` for log-rates
    (``log_input``), else ``input - target * log(input + eps)``; ``full`` adds Stirling's
    approximation of ``log(target!)`` where target > 1."""
    _check_reduction(reduction, "poisson_nll_loss")
    target = _operand(target, input)
    _broadcast("poisson_nll_loss", input=input, target=target)
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + eps).log()
    if full:
        big = target > 1
        safe = where(big, target, _operand(1.0, target))
        stirling = safe * safe.log() - safe + 0.5 * (2 * math.pi * safe).log()
        loss = loss + where(big, stirling, _operand(0.0, stirling))
    return _reduce(loss, reduction, "poisson_nll_loss")


def gaussian_nll_loss(input: Tensor, target: Any, var: Any, full: bool = False,
                      eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    """Gaussian negative log-likelihood ``0.5 (log var + (input - target)^2 / var)``.

    ``var`` has the input's shape, or one fewer trailing dimension, or a 1 in one
    dimension (homoscedastic), or is a float. It is clamped at ``eps`` for the value only:
    as in PyTorch, the gradient flows to ``var`` as if unclamped."""
    op = "gaussian_nll_loss"
    target = _operand(target, input)
    if isinstance(var, (int, float)) and not isinstance(var, bool):
        if var < 0:
            raise ValueError(f"{op}: var has negative entry/entries ({var})")
        var = F.full_like(input, float(var))
    var = checked(_operand(var, input), "not_below", (0,), ValueError,
                  f"{op}: var has negative entry/entries (the least is {{least}})")
    if var.shape != input.shape:
        if input.shape[:-1] == var.shape:
            var = var.unsqueeze(-1)
        elif not (var.ndim == input.ndim and sum(
                v for i, v in zip(input.shape, var.shape) if i != v) == 1):
            raise ShapeError(f"{op}: var of shape {var.shape} does not fit input "
                             f"{input.shape}: give the input's shape, its shape without the "
                             f"last dimension, or its shape with one dimension 1")
    _check_reduction(reduction, op)
    var = var + (F.clamp(var, min=eps) - var).detach()
    loss = 0.5 * (var.log() + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction, op)


# A log-probability no alignment reaches: finite, so that exp() of it is 0 and the gradient
# through it 0 (where -inf would give 0 * inf = nan); a loss this large means "impossible".
_IMPOSSIBLE = -1e30


def _logsumexp3(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    m = F.maximum(F.maximum(a, b), c).detach()
    return ((a - m).exp() + (b - m).exp() + (c - m).exp()).log() + m


def _lengths(x: Any, n: int, what: str) -> Tensor:
    t = (x if isinstance(x, Tensor) else Tensor(np.asarray(x))).long().reshape(-1)
    if t.shape != (n,):
        raise ShapeError(f"ctc_loss: {what} must hold one length per sample ({n}), got shape "
                         f"{t.shape}")
    return t


def ctc_loss(log_probs: Tensor, targets: Any, input_lengths: Any, target_lengths: Any,
             blank: int = 0, reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    """Connectionist temporal classification loss, ``torch.nn.functional.ctc_loss``:
    ``-log`` of the total probability of the alignments of each target to its input,
    summed by the forward (alpha) recursion in log space.

    ``log_probs`` (T, N, C) (or (T, C)) are log-softmax outputs; ``targets`` (N, S) padded,
    or 1-d, all targets one after another; ``reduction="mean"`` divides each loss by its
    target length, then averages over the batch. An impossible alignment's loss is inf,
    with gradient 0 (PyTorch's is nan); 0 with ``zero_infinity``, as PyTorch's.

    The gradient is the true one. PyTorch's, taken with respect to ``log_probs`` itself,
    adds ``exp(log_probs)`` (it assumes a log_softmax in front): through a log_softmax, as
    in every CTC model, the two agree.
    """
    op = "ctc_loss"
    _check_reduction(reduction, op)
    if log_probs.ndim not in (2, 3):
        raise ShapeError(f"{op}: log_probs must be (T, N, C) or (T, C), got {log_probs.shape}")
    single = log_probs.ndim == 2
    lp = log_probs.unsqueeze(1) if single else log_probs
    T, N, C = lp.shape
    if not 0 <= blank < C:
        raise ValueError(f"{op}: blank={blank} must be a class of the {C} in log_probs")
    tg_ = _class_indices(targets, op)
    in_len = _lengths(input_lengths, N, "input_lengths")
    tl = _lengths(target_lengths, N, "target_lengths")
    in_len = checked(in_len, "in_range", (0, T + 1), ValueError,
                     f"{op}: input_lengths must be in [0, {T}] (log_probs has {T} time "
                     f"steps), got values in [{{lo}}, {{hi}}]")
    if single or tg_.ndim == 1:  # one after another: lay out as (N, longest)
        tv = _static_data(tl, "ctc_loss with 1-d targets (the longest target sets a shape)")
        if tg_.ndim != 1 or tg_.shape[0] < tv.sum():
            raise ShapeError(f"{op}: 1-d targets must hold the {tv.sum()} labels of "
                             f"target_lengths, got shape {tg_.shape}")
        longest = int(tv.max(initial=0))
        pos = (np.cumsum(tv) - tv)[:, None] + np.arange(longest)
        inside = np.arange(longest) < tv[:, None]
        tg_ = where(_leaf(inside), tg_[_leaf(np.where(inside, pos, 0))],
                    _operand(blank, tg_)) if tg_.shape[0] else \
            _leaf(np.full((N, longest), blank, np.int64))
    elif tg_.ndim != 2 or tg_.shape[0] != N:
        raise ShapeError(f"{op}: targets must be (N, S) = ({N}, S) or 1-d, got {tg_.shape}")
    S = tg_.shape[1]
    tl = checked(tl, "in_range", (0, S + 1), ValueError,
                 f"{op}: target_lengths must be in [0, {S}], got values in [{{lo}}, {{hi}}]")
    inside = _leaf(np.arange(S)) < tl.unsqueeze(1)                    # (N, S) labels
    bad = inside & ((tg_ < 0) | (tg_ >= C) | (tg_ == blank))
    checked(bad, "in_range", (0, 1), IndexError,
            f"{op}: target labels must be classes in [0, {C}) other than the blank {blank}")
    # The extended targets: blank, l1, blank, l2, ..., blank (width W = 2S + 1).
    W = 2 * S + 1
    blanks = _operand(blank, tg_).expand((N, S + 1))
    ext = F.stack([blanks[:, :S], tg_], 2).reshape(N, 2 * S) if S else blanks[:, :0]
    ext = F.cat([ext, blanks[:, :1]], 1)
    lpe = F.gather(lp, 2, ext.unsqueeze(0).expand((T, N, W)))            # (T, N, W)
    no = _operand(_IMPOSSIBLE, lpe)
    pad1, pad2 = no.expand((N, 1)), no.expand((N, 2))
    skip = F.cat([_leaf(np.zeros((N, 2), bool)),
                  (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])], 1)  # s-2 -> s
    start = _leaf(np.arange(W) < 2)
    alpha = where(start, lpe[0], no)
    for t in range(1, T):
        a1 = F.cat([pad1, alpha[:, :-1]], 1)
        a2 = where(skip, F.cat([pad2, alpha[:, :-2]], 1), no)
        step = _logsumexp3(alpha, a1, a2) + lpe[t]
        alpha = where((in_len > t).unsqueeze(1), step, alpha)
    last = F.gather(alpha, 1, (2 * tl).unsqueeze(1))
    before = F.gather(alpha, 1, (2 * tl - 1).clamp(min=0).unsqueeze(1))
    before = where((tl > 0).unsqueeze(1), before, no)
    loss = -_logsumexp3(last, before, no.expand((N, 1))).reshape(N)
    # (no input: the empty target is certain, any other impossible)
    loss = where(in_len > 0, loss, where(tl > 0, -no, _operand(0.0, loss)))
    loss = where(loss < -_IMPOSSIBLE / 2, loss, _operand(0.0 if zero_infinity else math.inf,
                                                         loss))
    if reduction == "mean":
        return F.mean(loss / F.clamp(tl, min=1).to(loss.dtype))
    return _reduce(loss.reshape(()) if single else loss, reduction, op)


FUNCTIONS = [
    "margin_ranking_loss", "hinge_embedding_loss", "soft_margin_loss",
    "multilabel_soft_margin_loss", "cosine_embedding_loss", "triplet_margin_loss",
    "triplet_margin_with_distance_loss", "multi_margin_loss", "multilabel_margin_loss",
    "poisson_nll_loss", "gaussian_nll_loss", "ctc_loss",
]

# name, function, keyword parameters with PyTorch's defaults (and order), doc
_LOSSES = [
    ("MarginRankingLoss", margin_ranking_loss, {"margin": 0.0, "reduction": "mean"},
     "max(0, -y (x1 - x2) + margin)"),
    ("HingeEmbeddingLoss", hinge_embedding_loss, {"margin": 1.0, "reduction": "mean"},
     "x where y = 1, max(0, margin - x) where y = -1"),
    ("SoftMarginLoss", soft_margin_loss, {"reduction": "mean"}, "log(1 + exp(-y x))"),
    ("MultiLabelSoftMarginLoss", multilabel_soft_margin_loss,
     {"weight": None, "reduction": "mean"}, "per-class logistic loss, averaged over classes"),
    ("CosineEmbeddingLoss", cosine_embedding_loss, {"margin": 0.0, "reduction": "mean"},
     "1 - cos(x1, x2) where y = 1, max(0, cos(x1, x2) - margin) where y = -1"),
    ("TripletMarginLoss", triplet_margin_loss,
     {"margin": 1.0, "p": 2.0, "eps": 1e-6, "swap": False, "reduction": "mean"},
     "max(0, d(a, p) - d(a, n) + margin), p-norm distances"),
    ("TripletMarginWithDistanceLoss", triplet_margin_with_distance_loss,
     {"distance_function": None, "margin": 1.0, "swap": False, "reduction": "mean"},
     "max(0, d(a, p) - d(a, n) + margin) for any distance d"),
    ("MultiMarginLoss", multi_margin_loss,
     {"p": 1, "margin": 1.0, "weight": None, "reduction": "mean"},
     "multi-class hinge loss on class indices"),
    ("MultiLabelMarginLoss", multilabel_margin_loss, {"reduction": "mean"},
     "multi-label hinge loss, targets listed up to the first -1"),
    ("PoissonNLLLoss", poisson_nll_loss,
     {"log_input": True, "full": False, "eps": 1e-8, "reduction": "mean"},
     "Poisson negative log-likelihood"),
    ("GaussianNLLLoss", gaussian_nll_loss, {"full": False, "eps": 1e-6, "reduction": "mean"},
     "Gaussian negative log-likelihood of (input, target, var)"),
    ("CTCLoss", ctc_loss, {"blank": 0, "reduction": "mean", "zero_infinity": False},
     "connectionist temporal classification loss"),
]

for _name, _fn, _params, _doc in _LOSSES:
    globals()[_name] = _stateless(_name, _fn, _params, _doc)

__all__ = [n for n, *_ in _LOSSES]  # the Modules (tg.nn); FUNCTIONS go to tg.nn.functional
