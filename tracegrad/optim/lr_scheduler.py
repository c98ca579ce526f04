"""Learning-rate schedules: StepLR and CosineAnnealingLR, as in ``torch.optim.lr_scheduler``.

>>> sched = tg.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
>>> for epoch in range(30):
...     train_one_epoch(); sched.step()
"""

from __future__ import annotations

import math
from typing import Any

from ..autograd import no_grad
from ..tensor import Tensor
from .optimizer import Optimizer


class LRScheduler:
    """Base class: sets each group's ``lr`` from ``get_lr()`` at every ``step()``."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} needs a tg.optim optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        for g in optimizer.param_groups:
            if last_epoch == -1:
                g.setdefault("initial_lr", float(g["lr"]))
            elif "initial_lr" not in g:
                raise KeyError("resuming a schedule (last_epoch != -1) needs 'initial_lr' in "
                               "every parameter group")
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self) -> list[float]:
        raise TypeError(f"{type(self).__name__} does not define get_lr")

    def step(self) -> None:
        self.last_epoch += 1
        lrs = self.get_lr()
        for g, lr in zip(self.optimizer.param_groups, lrs):
            if isinstance(g["lr"], Tensor):
                # A tensor lr is changed in place: a compiled step reads it as an input, so
                # a new rate needs no recompile (a float lr is a constant of the program).
                with no_grad():
                    g["lr"].fill_(lr)
            else:
                g["lr"] = lr
        self._last_lr = lrs

    def _lrs(self) -> list[float]:
        """Each group's current lr, as a float (also when it is a tensor)."""
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` steps."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        # PyTorch's chainable form: it continues from the groups' current lr (so a resumed
        # optimizer keeps its loaded lr).
        lrs = self._lrs()
        if self.last_epoch == 0 or self.last_epoch % self.step_size:
            return lrs
        return [lr * self.gamma for lr in lrs]


class CosineAnnealingLR(LRScheduler):
    """Anneal from the initial lr to ``eta_min`` along half a cosine over ``T_max`` steps."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1):
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        # PyTorch's recursive form, step by step from the current lr.
        t, T, eta = self.last_epoch, self.T_max, self.eta_min
        lrs = self._lrs()
        if t == 0:
            return lrs
        if (t - 1 - T) % (2 * T) == 0:
            return [lr + (base - eta) * (1 - math.cos(math.pi / T)) / 2
                    for lr, base in zip(lrs, self.base_lrs)]
        return [(1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (lr - eta) + eta for lr in lrs]
