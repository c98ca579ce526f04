"""Stochastic weight averaging and exponential moving averages of a model's weights, as
``torch.optim.swa_utils``: `AveragedModel`, `SWALR`, `update_bn` and the averaging functions.

>>> ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999))
>>> for x, y in loader:
...     train_step(x, y); ema.update_parameters(model)
>>> update_bn(loader, ema)        # batch-norm statistics for the averaged weights
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any, Callable, Iterable

import numpy as np

from ..autograd import no_grad
from ..nn.layers import _BatchNorm
from ..nn.module import Module
from ..tensor import Tensor
from .lr_scheduler import LRScheduler, _check_optimizer, _per_group
from .optimizer import Optimizer

AvgFn = Callable[[Tensor, Tensor, Tensor], Tensor]
MultiAvgFn = Callable[[list, list, Tensor], None]


def _weight(n: Tensor | float, like: Tensor) -> Any:
    """``1 / (n + 1)`` in ``like``'s dtype, computed in float64 (n may be a count tensor)."""
    if isinstance(n, Tensor):
        return (1.0 / (n.to(np.float64) + 1)).to(like.dtype)
    return 1.0 / (n + 1)


def get_ema_avg_fn(decay: float = 0.999) -> AvgFn:
    """``decay * averaged + (1 - decay) * current``, for ``AveragedModel(avg_fn=...)``."""
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"get_ema_avg_fn: decay must be in [0, 1], got {decay}")

    def ema_update(ema: Tensor, current: Tensor, num_averaged: Any) -> Tensor:
        return decay * ema + (1 - decay) * current

    return ema_update


def get_swa_avg_fn() -> AvgFn:
    """The running mean ``averaged + (current - averaged) / (n + 1)``."""
    def swa_update(averaged: Tensor, current: Tensor, num_averaged: Any) -> Tensor:
        return averaged + (current - averaged) / (num_averaged + 1)

    return swa_update


def _lerp_(averaged: list, current: list, weight: Callable[[Tensor], Any],
           integer: Callable[[Tensor, Tensor], Tensor]) -> None:
    """Move each floating averaged tensor towards its current one by ``weight(tensor)``, in
    place (torch's lerp_); an integer one (a count) becomes ``integer(averaged, current)``."""
    with no_grad():
        for a, c in zip(averaged, current):
            a.copy_(a + (c - a) * weight(a) if a.dtype.kind == "f" else integer(a, c))


def get_ema_multi_avg_fn(decay: float = 0.999) -> MultiAvgFn:
    """An exponential moving average, in place over lists of tensors (integer buffers too,
    truncated, as torch's), for ``AveragedModel(multi_avg_fn=...)``."""
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"get_ema_multi_avg_fn: decay must be in [0, 1], got {decay}")

    def ema_update(ema: list, current: list, num_averaged: Any) -> None:
        _lerp_(ema, current, lambda a: 1 - decay,
               lambda a, c: (a * decay + c * (1 - decay)).to(a.dtype))

    return ema_update


def get_swa_multi_avg_fn() -> MultiAvgFn:
    """The running mean, in place over lists of tensors (AveragedModel's default)."""
    def swa_update(averaged: list, current: list, num_averaged: Any) -> None:
        _lerp_(averaged, current, lambda a: _weight(num_averaged, a),
               lambda a, c: (a + (c - a) / (num_averaged + 1)).to(a.dtype))

    return swa_update


class AveragedModel(Module):
    """A copy of ``model`` whose parameters (and, with ``use_buffers``, buffers) are a
    running average of ``model``'s, updated by ``update_parameters(model)``: the equal-
    weight SWA average by default, or ``avg_fn(averaged, current, n)`` per tensor, or
    ``multi_avg_fn(averaged_list, current_list, n)`` in place (e.g. get_ema_multi_avg_fn).
    Without ``use_buffers``, buffers are copied from ``model`` at each update.

    >>> swa = AveragedModel(model)
    """

    def __init__(self, model: Module, device: Any = None, avg_fn: AvgFn | None = None,
                 multi_avg_fn: MultiAvgFn | None = None, use_buffers: bool = False):
        super().__init__()
        self.module = copy.deepcopy(model)
        self.register_buffer("n_averaged", Tensor(np.array(0, dtype=np.int64)))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def _tensors(self, model: Module) -> Iterable[Tensor]:
        if self.use_buffers:
            return itertools.chain(model.parameters(), model.buffers())
        return model.parameters()

    def update_parameters(self, model: Module) -> None:
        """Fold ``model``'s current weights into the average (the first call copies them)."""
        ours = list(self._tensors(self.module))
        theirs = [t.detach() for t in self._tensors(model)]
        if len(ours) != len(theirs):
            raise ValueError(f"AveragedModel.update_parameters: the model has {len(theirs)} "
                             f"tensors to average, the averaged copy {len(ours)}; pass the "
                             f"model this AveragedModel was built from")
        n = self.n_averaged
        first = int(n.item()) == 0
        with no_grad():
            if first:
                for a, c in zip(ours, theirs):
                    a.copy_(c)
            elif self.multi_avg_fn is not None or self.avg_fn is None:
                fn = self.multi_avg_fn or get_swa_multi_avg_fn()
                # grouped by dtype, as torch groups by device and dtype
                for dt in dict.fromkeys(a.dtype for a in ours):
                    pairs = [(a, c) for a, c in zip(ours, theirs) if a.dtype == dt]
                    fn([a for a, _ in pairs], [c for _, c in pairs], n)
            else:
                for a, c in zip(ours, theirs):
                    a.copy_(self.avg_fn(a.detach(), c, n))
            if not self.use_buffers:  # buffers follow the model's
                for a, c in zip(self.module.buffers(), model.buffers()):
                    a.copy_(c.detach())
            n.add_(1)


@no_grad()
def update_bn(loader: Iterable[Any], model: Module, device: Any = None) -> None:
    """Recompute ``model``'s batch-norm running statistics by one pass over ``loader`` (a
    cumulative average over its batches; each item's first element if it is a tuple or
    list), e.g. for the weights an AveragedModel holds. The model's mode is restored."""
    momenta = {}
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.reset_running_stats()
            momenta[m] = m.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for m in momenta:
        m.momentum = None
    for batch in loader:
        if isinstance(batch, (list, tuple)):
            batch = batch[0]
        model(batch)
    for m, momentum in momenta.items():
        m.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's lr to ``swa_lr`` over ``anneal_epochs`` steps (cosine or
    linear), then hold it, for the SWA phase of training.

    >>> swa_sched = SWALR(opt, swa_lr=0.05, anneal_epochs=5)
    """

    _ANNEAL = {"cos": lambda t: (1 - math.cos(math.pi * t)) / 2, "linear": lambda t: t}

    def __init__(self, optimizer: Optimizer, swa_lr: float | list[float],
                 anneal_epochs: int = 10, anneal_strategy: str = "cos", last_epoch: int = -1):
        _check_optimizer("SWALR", optimizer)
        for group, lr in zip(optimizer.param_groups, _per_group("SWALR swa_lr", optimizer,
                                                                 swa_lr)):
            group["swa_lr"] = lr
        if anneal_strategy not in self._ANNEAL:
            raise ValueError(f"SWALR: anneal_strategy must be 'cos' or 'linear', got "
                             f"{anneal_strategy!r}")
        if isinstance(anneal_epochs, bool) or not isinstance(anneal_epochs, int) or \
                anneal_epochs < 0:
            raise ValueError(f"SWALR: anneal_epochs must be an int >= 0, got "
                             f"{anneal_epochs!r}")
        self.anneal_strategy, self.anneal_epochs = anneal_strategy, anneal_epochs
        super().__init__(optimizer, last_epoch)

    def anneal_func(self, t: float) -> float:
        return self._ANNEAL[self.anneal_strategy](t)

    @staticmethod
    def _get_initial_lr(lr: float, swa_lr: float, alpha: float) -> float:
        return swa_lr if alpha == 1 else (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self) -> list[float]:
        # The lr before this step's annealing is recovered from the group's current lr,
        # so another schedule changing it in between is respected (PyTorch's formula).
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_alpha = self.anneal_func(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        alpha = self.anneal_func(max(0, min(1, step / max(1, self.anneal_epochs))))
        out = []
        for group in self.optimizer.param_groups:
            lr = self._get_initial_lr(float(group["lr"]), group["swa_lr"], prev_alpha)
            out.append(group["swa_lr"] * alpha + lr * (1 - alpha))
        return out


__all__ = ["SWALR", "AveragedModel", "get_ema_avg_fn", "get_ema_multi_avg_fn",
           "get_swa_avg_fn", "get_swa_multi_avg_fn", "update_bn"]
